package zmtp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
)

// Mechanism is a ZMTP security mechanism: NULL (Null), PLAIN (PlainClient, PlainServer) or
// CURVE (CurveClient, CurveServer). Mechanisms are built by this package's constructors only.
type Mechanism interface {
	// Name returns the mechanism's name as sent in the greeting ("NULL", "PLAIN").
	Name() string
	// isServer is the greeting's as-server flag.
	isServer() bool
	// run performs the mechanism's handshake after the greetings were exchanged, ending with
	// both sides' metadata exchanged (READY, or INITIATE/READY).
	run(h *handshake) error
}

// Null returns the NULL mechanism: no authentication, no encryption (rfc 37). It is the default.
func Null() Mechanism { return nullMech{} }

type nullMech struct{}

func (nullMech) Name() string   { return "NULL" }
func (nullMech) isServer() bool { return false }

// run: each side sends READY with its metadata and expects the peer's READY (or an ERROR).
func (nullMech) run(h *handshake) error {
	if err := h.send(appendCommand(h.out[:0], "READY", h.metadata())); err != nil {
		return err
	}
	data, err := h.expect("READY")
	if err != nil {
		return err
	}
	return h.peerMetadata(data)
}

// PlainClient returns the client side of PLAIN (rfc.zeromq.org/spec/24): it sends username and
// password in clear text. Each is at most 255 bytes (longer ones fail the handshake).
func PlainClient(username, password string) Mechanism {
	return plainClient{user: username, pass: password}
}

type plainClient struct{ user, pass string }

func (plainClient) Name() string   { return "PLAIN" }
func (plainClient) isServer() bool { return false }

// run: HELLO(user, pass) -> WELCOME, then INITIATE(metadata) -> READY(metadata).
func (p plainClient) run(h *handshake) error {
	if len(p.user) > 255 || len(p.pass) > 255 {
		return fmt.Errorf("%w: PLAIN username or password over 255 bytes", ErrBadOption)
	}
	b := h.out[:0]
	hello := make([]byte, 0, 2+len(p.user)+len(p.pass))
	hello = append(hello, byte(len(p.user)))
	hello = append(hello, p.user...)
	hello = append(hello, byte(len(p.pass)))
	hello = append(hello, p.pass...)
	if err := h.send(appendCommand(b, "HELLO", hello)); err != nil {
		return err
	}
	data, err := h.expect("WELCOME")
	if err != nil {
		return err
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: WELCOME with data", ErrProtocol)
	}
	if err := h.send(appendCommand(h.out[:0], "INITIATE", h.metadata())); err != nil {
		return err
	}
	data, err = h.expect("READY")
	if err != nil {
		return err
	}
	return h.peerMetadata(data)
}

// PlainServer returns the server side of PLAIN. auth decides each client's credentials; it
// must not be nil (a nil auth refuses everyone: there is no accept-anything mode). A refused
// client gets an ERROR command and is disconnected.
func PlainServer(auth func(username, password string, peer net.Addr) bool) Mechanism {
	return plainServer{auth: auth}
}

type plainServer struct {
	auth func(username, password string, peer net.Addr) bool
}

func (plainServer) Name() string   { return "PLAIN" }
func (plainServer) isServer() bool { return true }

// run: HELLO -> WELCOME or ERROR, then INITIATE -> READY.
func (p plainServer) run(h *handshake) error {
	data, err := h.expect("HELLO")
	if err != nil {
		return err
	}
	if len(data) < 1 || int(data[0]) > len(data)-2 {
		return fmt.Errorf("%w: malformed HELLO", ErrProtocol)
	}
	ul := int(data[0])
	user := data[1 : 1+ul]
	rest := data[1+ul:]
	if len(rest) < 1 || int(rest[0]) != len(rest)-1 {
		return fmt.Errorf("%w: malformed HELLO", ErrProtocol)
	}
	pass := rest[1:]
	if p.auth == nil || !p.auth(string(user), string(pass), h.remote) {
		// libzmq's PLAIN (every version: its "\x05ERROR" C literal parses as "\x5E" + "RROR")
		// sends and only understands an ERROR command named "^RROR", with a ZAP status code
		// as reason. We send that form so libzmq clients report an authentication failure;
		// any other peer sees an unknown command, which fails its handshake just the same.
		_ = h.send(appendCommand(h.out[:0], libzmqPlainError, errorReason("400")))
		return fmt.Errorf("%w: PLAIN credentials refused", ErrHandshake)
	}
	h.plain, h.plainUser = true, string(user)
	if err := h.send(appendCommand(h.out[:0], "WELCOME")); err != nil {
		return err
	}
	data, err = h.expect("INITIATE")
	if err != nil {
		return err
	}
	if err := h.peerMetadata(data); err != nil {
		return err
	}
	return h.send(appendCommand(h.out[:0], "READY", h.metadata()))
}

// PlainCredentials returns an auth function for PlainServer accepting exactly the given
// username/password pairs (compared in constant time).
func PlainCredentials(users map[string]string) func(username, password string, peer net.Addr) bool {
	m := make(map[string]string, len(users))
	for u, p := range users {
		m[u] = p
	}
	return func(username, password string, _ net.Addr) bool {
		want, ok := m[username]
		return ok && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
	}
}

// libzmqPlainError is the ERROR command as libzmq's PLAIN mechanism spells it (see above).
const libzmqPlainError = "^RROR"

// errorReason encodes an ERROR command's body: reason-size then reason (at most 255 bytes).
func errorReason(reason string) []byte {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	b := make([]byte, 0, 1+len(reason))
	b = append(b, byte(len(reason)))
	return append(b, reason...)
}

// PlainUser returns the username the sending peer authenticated with, for a message received
// on a PLAIN server socket (ok false otherwise). A broker uses it to tell what a peer may do.
func (m *Msg) PlainUser() (user string, ok bool) {
	if m.from == nil || !m.from.plain {
		return "", false
	}
	return m.from.plainUser, true
}

// errPlainRevoked ends the connections ClosePlainPeers drops.
var errPlainRevoked = errors.New("zmtp: PLAIN user revoked")

// ClosePlainPeers closes the ready connections whose peer authenticated (on this PLAIN server
// socket) with a username for which drop returns true, and returns how many it closed: after
// the users allowed change, the connections of a removed user go too.
func (s *Socket) ClosePlainPeers(drop func(user string) bool) int {
	n := 0
	for _, c := range *s.peers.Load() {
		if c.plain && drop(c.plainUser) {
			c.shutdown(errPlainRevoked)
			n++
		}
	}
	return n
}
