package zmtp_test

// A hand-written ZMTP 3.1 client over a raw net.Conn, independent of the engine under test: the
// hostile-peer tests use it to send exactly the bytes they want (broken greetings, huge frame
// headers, silence) and to watch how the engine's side of the connection ends.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

// greeting returns a 64-byte ZMTP greeting (rfc 23 / 37).
func greeting(major, minor byte, mechanism string, asServer bool) []byte {
	g := make([]byte, 64)
	g[0] = 0xFF
	g[9] = 0x7F
	g[10], g[11] = major, minor
	copy(g[12:32], mechanism)
	if asServer {
		g[32] = 1
	}
	return g
}

// frameHeader returns a frame header: the short form when size < 256 and !forceLong.
func frameHeader(flags byte, size uint64, forceLong bool) []byte {
	if size < 256 && !forceLong {
		return []byte{flags &^ flagLong, byte(size)}
	}
	h := make([]byte, 9)
	h[0] = flags | flagLong
	binary.BigEndian.PutUint64(h[1:], size)
	return h
}

// frame returns a whole frame: header and body.
func frame(flags byte, body []byte) []byte {
	return append(frameHeader(flags, uint64(len(body)), false), body...)
}

// command returns a command frame with the given name and metadata properties (name, value,
// name, value...), as READY carries them.
func command(name string, props ...string) []byte {
	body := []byte{byte(len(name))}
	body = append(body, name...)
	for i := 0; i+1 < len(props); i += 2 {
		body = append(body, byte(len(props[i])))
		body = append(body, props[i]...)
		body = binary.BigEndian.AppendUint32(body, uint32(len(props[i+1])))
		body = append(body, props[i+1]...)
	}
	return frame(flagCommand, body)
}

// rawConn is one raw TCP connection to the engine.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

// dialRaw connects to a "tcp://host:port" endpoint and closes the connection when the test
// ends.
func dialRaw(t testing.TB, ep string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(ep, "tcp://"), 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", ep, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (rc *rawConn) write(b []byte) error {
	_ = rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.c.Write(b)
	return err
}

func (rc *rawConn) mustWrite(b []byte) {
	rc.t.Helper()
	if err := rc.write(b); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

// readFrame reads one frame, refusing bodies larger than limit (the raw client is bounded too).
func (rc *rawConn) readFrame(timeout time.Duration, limit int) (flags byte, body []byte, err error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(timeout))
	defer rc.c.SetReadDeadline(time.Time{})
	flags, err = rc.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	var size uint64
	if flags&flagLong != 0 {
		var b [8]byte
		if _, err = io.ReadFull(rc.r, b[:]); err != nil {
			return 0, nil, err
		}
		size = binary.BigEndian.Uint64(b[:])
	} else {
		b, err := rc.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		size = uint64(b)
	}
	if size > uint64(limit) {
		return 0, nil, fmt.Errorf("raw client: frame of %d bytes over its limit %d", size, limit)
	}
	body = make([]byte, size)
	_, err = io.ReadFull(rc.r, body)
	return flags, body, err
}

// readMsg reads one whole message (frames until one without MORE), skipping commands such as
// PING.
func (rc *rawConn) readMsg(timeout time.Duration, limit int) ([][]byte, error) {
	var frames [][]byte
	for {
		flags, body, err := rc.readFrame(timeout, limit)
		if err != nil {
			return nil, err
		}
		if flags&flagCommand != 0 {
			continue
		}
		frames = append(frames, body)
		if flags&flagMore == 0 {
			return frames, nil
		}
	}
}

// sendMsg writes one message as frames.
func (rc *rawConn) sendMsg(frames ...[]byte) error {
	var b []byte
	for i, f := range frames {
		var flags byte
		if i < len(frames)-1 {
			flags = flagMore
		}
		b = append(b, frameHeader(flags, uint64(len(f)), false)...)
		b = append(b, f...)
	}
	return rc.write(b)
}

// handshake runs a NULL handshake as sockType (with an optional identity): it sends a greeting
// and READY, then reads the engine's greeting and READY. It returns the engine's READY body.
func (rc *rawConn) handshake(sockType, identity string) ([]byte, error) {
	props := []string{"Socket-Type", sockType}
	if identity != "" {
		props = append(props, "Identity", identity)
	}
	if err := rc.write(append(greeting(3, 1, "NULL", false), command("READY", props...)...)); err != nil {
		return nil, err
	}
	_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	g := make([]byte, 64)
	if _, err := io.ReadFull(rc.r, g); err != nil {
		return nil, fmt.Errorf("engine greeting: %w", err)
	}
	if g[0] != 0xFF || g[9] != 0x7F || g[10] != 3 {
		return nil, fmt.Errorf("engine greeting: bad signature/version % x", g[:12])
	}
	if mech := strings.TrimRight(string(g[12:32]), "\x00"); mech != "NULL" {
		return nil, fmt.Errorf("engine greeting: mechanism %q, want NULL", mech)
	}
	flags, body, err := rc.readFrame(5*time.Second, 1<<16)
	if err != nil {
		return nil, fmt.Errorf("engine READY: %w", err)
	}
	if flags&flagCommand == 0 || len(body) < 6 || string(body[1:6]) != "READY" {
		return nil, fmt.Errorf("engine READY: got flags %#x body %q", flags, body)
	}
	return body, nil
}

func (rc *rawConn) mustHandshake(sockType, identity string) {
	rc.t.Helper()
	if _, err := rc.handshake(sockType, identity); err != nil {
		rc.t.Fatalf("raw handshake as %s: %v", sockType, err)
	}
}

// waitClosed reads (and discards) until the engine ends the connection, and returns how long
// that took; it fails the test if the connection is still open after within.
func (rc *rawConn) waitClosed(within time.Duration) time.Duration {
	rc.t.Helper()
	start := time.Now()
	_ = rc.c.SetReadDeadline(start.Add(within))
	_, err := io.Copy(io.Discard, rc.r)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		rc.t.Fatalf("engine kept the connection open for %v (want it closed)", within)
	}
	// err == nil is EOF; anything else (connection reset) is a close too.
	return took
}

// closedAt reads (and discards) on a goroutine of its own until the engine ends the
// connection, and then sends the time it saw the end; the zero time if the connection was
// still open after within. The caller must not read from rc until the result arrives.
func (rc *rawConn) closedAt(within time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	_ = rc.c.SetReadDeadline(time.Now().Add(within))
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := rc.r.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					ch <- time.Time{}
				} else {
					ch <- time.Now()
				}
				return
			}
		}
	}()
	return ch
}

// stillOpen reports whether the engine has not closed the connection (a read blocks for d).
func (rc *rawConn) stillOpen(d time.Duration) bool {
	_ = rc.c.SetReadDeadline(time.Now().Add(d))
	defer rc.c.SetReadDeadline(time.Time{})
	for {
		_, err := rc.r.ReadByte()
		if err == nil {
			continue
		}
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
}
