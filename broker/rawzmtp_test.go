package broker

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawConn is a minimal ZMTP 3.1 DEALER over a plain TCP connection, written out here so a test
// can make a peer that completes the handshake and then goes silent (answering no PING), which
// a zmtp socket never does.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, endpoint, identity string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(endpoint, "tcp://"), wait)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(wait))
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, 3, 1
	copy(g[12:], "NULL")
	if _, err := c.Write(g); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if _, err := io.ReadFull(rc.r, make([]byte, 64)); err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	body := append([]byte{5}, "READY"...)
	prop := func(name, value string) {
		body = append(body, byte(len(name)))
		body = append(body, name...)
		body = binary.BigEndian.AppendUint32(body, uint32(len(value)))
		body = append(body, value...)
	}
	prop("Socket-Type", "DEALER")
	prop("Identity", identity)
	rc.writeFrame(0x04, body)
	for {
		flags, b := rc.readFrame()
		if flags&0x04 != 0 && len(b) > 6 && string(b[1:6]) == "READY" {
			return rc
		}
	}
}

func (rc *rawConn) writeFrame(flags byte, body []byte) {
	rc.t.Helper()
	var hdr []byte
	if len(body) < 256 {
		hdr = []byte{flags, byte(len(body))}
	} else {
		hdr = binary.BigEndian.AppendUint64([]byte{flags | 0x02}, uint64(len(body)))
	}
	if _, err := rc.c.Write(append(hdr, body...)); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

func (rc *rawConn) readFrame() (byte, []byte) {
	rc.t.Helper()
	flags, err := rc.r.ReadByte()
	if err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	var n uint64
	if flags&0x02 != 0 {
		var b [8]byte
		if _, err := io.ReadFull(rc.r, b[:]); err != nil {
			rc.t.Fatalf("read: %v", err)
		}
		n = binary.BigEndian.Uint64(b[:])
	} else {
		s, err := rc.r.ReadByte()
		if err != nil {
			rc.t.Fatalf("read: %v", err)
		}
		n = uint64(s)
	}
	if n > 1<<20 {
		rc.t.Fatalf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rc.r, b); err != nil {
		rc.t.Fatalf("read: %v", err)
	}
	return flags, b
}

// sendMsg sends a one-frame message.
func (rc *rawConn) sendMsg(body string) { rc.writeFrame(0x00, []byte(body)) }

// readMsg returns the last frame of the next message, skipping commands (PINGs are read but
// never answered).
func (rc *rawConn) readMsg() string {
	rc.t.Helper()
	_ = rc.c.SetDeadline(time.Now().Add(wait))
	for {
		flags, b := rc.readFrame()
		if flags&0x04 != 0 || flags&0x01 != 0 {
			continue
		}
		return string(b)
	}
}
