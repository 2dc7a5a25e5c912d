package zmtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
)

// handshake is the state of one connection's greeting and security handshake. It runs on the
// connection's own goroutine, under the connection's handshake deadline.
type handshake struct {
	w        io.Writer
	fr       *frameReader
	msg      *Msg
	out      []byte
	typ      SocketType
	identity []byte
	remote   net.Addr

	// results
	peerTypeName []byte
	peerIdentity []byte
	minor        byte
	cipher       *curveCipher // CURVE: the data path's keys and nonces
	curveKey     CurveKey     // CURVE server: the client's authenticated long-term key
	plain        bool         // PLAIN server: the client authenticated
	plainUser    string       // PLAIN server: the client's accepted username
}

// peerInfo is what a completed handshake tells about the peer.
type peerInfo struct {
	typeName  []byte
	identity  []byte
	minor     byte
	cipher    *curveCipher
	curveKey  CurveKey
	plain     bool
	plainUser string
}

// runHandshake exchanges greetings, then runs mech's handshake. Every error wraps ErrHandshake
// (and ErrProtocol for a protocol violation).
func runHandshake(w io.Writer, fr *frameReader, t SocketType, identity []byte, mech Mechanism, remote net.Addr) (peerInfo, error) {
	h := &handshake{w: w, fr: fr, typ: t, identity: identity, remote: remote, msg: AcquireMsg()}
	defer h.msg.Release()
	info, err := h.run(mech)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return info, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return info, nil
}

func (h *handshake) run(mech Mechanism) (peerInfo, error) {
	h.out = appendGreeting(make([]byte, 0, 256), mech.Name(), mech.isServer())
	if err := h.send(h.out); err != nil {
		return peerInfo{}, err
	}
	var gb [greetingSize]byte
	if err := h.fr.readFull(gb[:]); err != nil {
		return peerInfo{}, err
	}
	g, err := parseGreeting(gb[:])
	if err != nil {
		return peerInfo{}, err
	}
	h.minor = g.minor
	if !bytes.Equal(g.mechName(), []byte(mech.Name())) {
		return peerInfo{}, fmt.Errorf("%w: peer mechanism %q, ours %q", ErrProtocol, g.mechName(), mech.Name())
	}
	// The peer's as-server flag is not checked: our role comes from our mechanism, as in
	// libzmq (whose PLAIN server and zmq4 both send as-server 0).
	if err := mech.run(h); err != nil {
		return peerInfo{}, err
	}
	return peerInfo{typeName: h.peerTypeName, identity: h.peerIdentity, minor: h.minor, cipher: h.cipher, curveKey: h.curveKey, plain: h.plain, plainUser: h.plainUser}, nil
}

// send writes b whole.
func (h *handshake) send(b []byte) error {
	_, err := h.w.Write(b)
	h.out = b[:0]
	return err
}

// metadata returns our READY/INITIATE properties.
func (h *handshake) metadata() []byte {
	return appendMetadata(nil, h.typ, h.identity)
}

// recvCommand reads the next frame, which must be a command.
func (h *handshake) recvCommand() (name, data []byte, err error) {
	h.msg.reset()
	kind, err := h.fr.readMsg(h.msg)
	if err != nil {
		return nil, nil, err
	}
	if kind != kindCommand {
		return nil, nil, fmt.Errorf("%w: message before the handshake completed", ErrProtocol)
	}
	return splitCommand(h.msg.Frames[0])
}

// expect reads the next command and returns its data when it is the command want; any other
// command (or an ERROR) fails the handshake.
func (h *handshake) expect(want string) (data []byte, err error) {
	name, data, err := h.recvCommand()
	if err != nil {
		return nil, err
	}
	if !isCommand(name, want) {
		return nil, h.unexpected(name, data, want)
	}
	return data, nil
}

// unexpected builds the error for a command other than want; an ERROR command's reason is
// reported.
func (h *handshake) unexpected(name, data []byte, want string) error {
	if isCommand(name, "ERROR") || isCommand(name, libzmqPlainError) {
		reason := data
		if len(reason) > 0 && int(reason[0]) <= len(reason)-1 {
			reason = reason[1 : 1+int(reason[0])]
		}
		return fmt.Errorf("%w: peer sent ERROR %q", errPeerError, reason)
	}
	return fmt.Errorf("%w: got command %q, want %s", ErrProtocol, name, want)
}

// errPeerError marks an ERROR command received from the peer.
var errPeerError = errors.New("zmtp: peer error")

// peerMetadata checks the peer's metadata: its socket type must be compatible with ours (else
// it gets an ERROR command and the handshake fails), and its identity is kept.
func (h *handshake) peerMetadata(data []byte) error {
	md, err := parseMetadata(data)
	if err != nil {
		return err
	}
	if !md.hasType {
		return fmt.Errorf("%w: metadata without Socket-Type", ErrProtocol)
	}
	if !h.typ.compatible(md.socketType) {
		_ = h.send(appendCommand(h.out[:0], "ERROR", errorReason("Invalid socket type")))
		return fmt.Errorf("%w: peer socket type %q cannot talk to %s", ErrProtocol, md.socketType, h.typ)
	}
	if len(md.identity) > maxIdentity {
		return fmt.Errorf("%w: identity over %d bytes", ErrProtocol, maxIdentity)
	}
	h.peerTypeName = append([]byte(nil), md.socketType...)
	if len(md.identity) > 0 {
		h.peerIdentity = append([]byte(nil), md.identity...)
	}
	return nil
}
