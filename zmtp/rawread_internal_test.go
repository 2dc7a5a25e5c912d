//go:build unix

package zmtp

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestRawReader: the raw read(2) reader a connection reads with after its handshake behaves as
// net.Conn's Read for what the reader loop tells apart: bytes as they come (a read waiting
// for them through the netpoller), io.EOF when the peer closes, a timeout error (net.Error)
// when the read deadline passes, an error that is not io.EOF when the peer resets, and the
// closed error (net.ErrClosed) when the connection is closed under a waiting read.
func TestRawReader(t *testing.T) {
	cases := []struct {
		name string
		peer func(t *testing.T, local, peer net.Conn) // what happens while the read waits
		want func(n int, err error) error
	}{
		{"data", func(t *testing.T, _, p net.Conn) {
			if _, err := p.Write([]byte("hello")); err != nil {
				t.Error(err)
			}
		}, func(n int, err error) error {
			if err != nil || n != 5 {
				return errors.New("want 5 bytes")
			}
			return nil
		}},
		{"eof", func(t *testing.T, _, p net.Conn) { _ = p.Close() }, func(_ int, err error) error {
			if err != io.EOF {
				return errors.New("want io.EOF")
			}
			return nil
		}},
		{"deadline", func(t *testing.T, l, _ net.Conn) {
			_ = l.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		}, func(_ int, err error) error {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !isTimeoutErr(err) {
				return errors.New("want a timeout")
			}
			return nil
		}},
		{"reset", func(t *testing.T, _, p net.Conn) {
			_ = p.(*net.TCPConn).SetLinger(0)
			_ = p.Close()
		}, func(_ int, err error) error {
			if err == nil || err == io.EOF || !errors.Is(err, syscall.ECONNRESET) {
				return errors.New("want ECONNRESET")
			}
			var se *os.SyscallError
			if !errors.As(err, &se) {
				return errors.New("want an *os.SyscallError")
			}
			return nil
		}},
		{"closed", func(t *testing.T, l, _ net.Conn) { _ = l.Close() }, func(_ int, err error) error {
			if !errors.Is(err, net.ErrClosed) {
				return errors.New("want net.ErrClosed")
			}
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			local, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer local.Close()
			peer, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			rd := newRawReader(local)
			if rd == nil {
				t.Fatal("no raw reader for a TCP connection")
			}
			_ = local.SetReadDeadline(time.Now().Add(wait))
			type res struct {
				n   int
				err error
			}
			got := make(chan res, 1)
			go func() {
				n, err := rd.Read(make([]byte, 64))
				got <- res{n, err}
			}()
			tc.peer(t, local, peer)
			r := <-got
			if err := tc.want(r.n, r.err); err != nil {
				t.Fatalf("Read = %d, %v: %v", r.n, r.err, err)
			}
		})
	}
}

// TestConnReadsRaw: a TCP connection reads with the raw reader once its handshake is done, so
// the path above is the one every message takes.
func TestConnReadsRaw(t *testing.T) {
	r := newBound(t, Router, Options{}, "tcp")
	d := newConnected(t, Dealer, Options{}, r.LastEndpoint())
	waitPeers(t, r, 1)
	send(t, d, []byte("x"))
	recv(t, r)
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		if _, ok := c.fr.rd.(*rawReader); !ok {
			t.Errorf("connection reads with %T, want *rawReader", c.fr.rd)
		}
	}
}
