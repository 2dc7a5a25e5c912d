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

// rawFrom completes a NULL handshake as sockType, speaking ZMTP 3.minor, from the loopback
// source address src, and returns the connection (closed when the test ends). It reports
// false when the broker closed the connection instead.
func rawFrom(t *testing.T, src, endpoint, sockType string, minor byte) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xFF, 0x7F, 3, minor
	copy(g[12:], "NULL")
	body := append([]byte{5}, "READY"...)
	body = append(body, byte(len("Socket-Type")))
	body = append(body, "Socket-Type"...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(sockType)))
	body = append(body, sockType...)
	out := append(g, 0x04, byte(len(body)))
	if _, err := c.Write(append(out, body...)); err != nil {
		return c, false
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	r := bufio.NewReader(c)
	if _, err := io.ReadFull(r, make([]byte, 64)); err != nil {
		return c, false
	}
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return c, false
	}
	if _, err := io.ReadFull(r, make([]byte, hdr[1])); err != nil {
		return c, false
	}
	return c, true
}

// closedWithin reports how long the broker took to close c (reading and dropping whatever
// it sends, PINGs included), failing the test past d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after %v", d)
			}
			return time.Since(start)
		}
	}
}

// TestConnsPerAddr: Config.MaxConnsPerAddr holds one source address to its share of the
// ROUTER's and of the PUB's connections, while clients from elsewhere are served.
func TestConnsPerAddr(t *testing.T) {
	const limit = 2
	const hog = "127.0.0.2"
	b := startBroker(t, Config{MaxConnsPerAddr: limit})
	for _, sock := range []struct{ ep, typ string }{{b.Addr(), "DEALER"}, {b.PubAddr(), "SUB"}} {
		for range limit {
			if _, ok := rawFrom(t, hog, sock.ep, sock.typ, 1); !ok {
				t.Fatalf("%s: a connection within the bound was refused", sock.typ)
			}
		}
		c, _ := rawFrom(t, hog, sock.ep, sock.typ, 1)
		if took := closedWithin(t, c, 2*time.Second); took > time.Second {
			t.Fatalf("%s: connection past the bound closed after %v", sock.typ, took)
		}
	}
	d := dealer(t, b) // from 127.0.0.1
	if got := d.call(`{"jsonrpc":"2.0","id":1,"method":"broker.stats"}`); !strings.Contains(got, `"result"`) {
		t.Fatalf("client from another address: %s", got)
	}
}

// TestSilentPeersClosed: on both broker sockets, a peer that completes its handshake and
// then says nothing is closed within 3 heartbeat intervals, over ZMTP 3.0 (no PING to
// answer) as over 3.1 (PINGs unanswered).
func TestSilentPeersClosed(t *testing.T) {
	const ivl = 100 * time.Millisecond
	b := startBroker(t, Config{HeartbeatInterval: ivl})
	for _, sock := range []struct{ ep, typ string }{{b.Addr(), "DEALER"}, {b.PubAddr(), "SUB"}} {
		for _, minor := range []byte{0, 1} {
			c, ok := rawFrom(t, "127.0.0.1", sock.ep, sock.typ, minor)
			if !ok {
				t.Fatalf("%s 3.%d: handshake failed", sock.typ, minor)
			}
			// One interval of slack for scheduling on a loaded machine.
			if took := closedWithin(t, c, 5*time.Second); took > 4*ivl {
				t.Fatalf("%s 3.%d: silent peer closed after %v, want within 3 intervals (%v)", sock.typ, minor, took, 3*ivl)
			}
		}
	}
}
