package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m, 5*time.Second, nil) }

// echoServer accepts connections and writes back what it reads; it records what each
// connection received in all, and whether it saw the end of its input.
type echoServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []*bytes.Buffer
	eofs int
}

func startEcho(t *testing.T, echo bool) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			b := &bytes.Buffer{}
			s.got = append(s.got, b)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					s.mu.Lock()
					b.Write(buf[:n])
					if err == io.EOF {
						s.eofs++
					}
					s.mu.Unlock()
					if n > 0 && echo {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// received returns what connection i of the server received so far, and its count of EOFs.
func (s *echoServer) received(i int) ([]byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.got) {
		return nil, s.eofs
	}
	return append([]byte(nil), s.got[i].Bytes()...), s.eofs
}

func startProxy(t *testing.T, target string, seed uint64) *Proxy {
	t.Helper()
	p, err := Start(Config{Target: "tcp://" + target, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialProxy(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes b and reads as many bytes back.
func roundTrip(t *testing.T, c net.Conn, b []byte) []byte {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(b))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back %d bytes: %v", len(b), err)
	}
	return got
}

func TestForwardsBothWays(t *testing.T) {
	srv := startEcho(t, true)
	p := startProxy(t, srv.ln.Addr().String(), 1)
	c := dialProxy(t, p)
	// 1 MiB of varied bytes, written from one goroutine and read back from another.
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Write(data); errc <- err }()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the bytes came back changed")
	}
	if s := p.Stats(); s.Accepted != 1 || s.Open != 1 {
		t.Errorf("stats %+v, want 1 accepted and open", s)
	}
}

func TestDelay(t *testing.T) {
	srv := startEcho(t, true)
	p := startProxy(t, srv.ln.Addr().String(), 1)
	const d = 20 * time.Millisecond
	if err := p.SetDelay(d, d); err != nil {
		t.Fatal(err)
	}
	c := dialProxy(t, p)
	for range 5 {
		start := time.Now()
		roundTrip(t, c, []byte("ping"))
		if rtt := time.Since(start); rtt < 2*d {
			t.Errorf("round trip %v through a proxy delaying %v each way", rtt, d)
		}
	}
	// Random delays keep the order of the bytes.
	if err := p.SetDelay(time.Millisecond, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 200 {
		b := []byte{byte(i)}
		want = append(want, b...)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, len(want))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %v (%v), want the bytes in order", got, err)
	}
}

// TestBounds: each fault is accepted at its bound and refused past it.
func TestBounds(t *testing.T) {
	srv := startEcho(t, true)
	p := startProxy(t, srv.ln.Addr().String(), 1)
	for _, tc := range []struct {
		min, max time.Duration
		ok       bool
	}{
		{0, 0, true},
		{0, MaxDelay, true},
		{MaxDelay, MaxDelay, true},
		{0, MaxDelay + 1, false},
		{-1, 0, false},
		{2, 1, false},
	} {
		if err := p.SetDelay(tc.min, tc.max); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadDelay)) {
			t.Errorf("SetDelay(%v, %v) = %v, want ok %v", tc.min, tc.max, err, tc.ok)
		}
	}
	_ = p.SetDelay(0, 0)
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{{MaxStall, true}, {MaxStall + 1, false}, {0, false}, {-1, false}} {
		if _, err := p.Stall(Both, tc.d); (err == nil) != tc.ok {
			t.Errorf("Stall(%v) = %v, want ok %v", tc.d, err, tc.ok)
		}
		if _, err := p.HalfClose(Both, tc.d); (err == nil) != tc.ok {
			t.Errorf("HalfClose(%v) = %v, want ok %v", tc.d, err, tc.ok)
		}
	}
	if _, err := p.Stall(0, time.Second); !errors.Is(err, ErrBadDir) {
		t.Errorf("Stall with no direction: %v", err)
	}
}

func TestStall(t *testing.T) {
	srv := startEcho(t, true)
	p := startProxy(t, srv.ln.Addr().String(), 1)
	c := dialProxy(t, p)
	roundTrip(t, c, []byte("before"))
	const d = 300 * time.Millisecond
	start := time.Now()
	if n, err := p.Stall(Up, d); err != nil || n != 1 {
		t.Fatalf("Stall: %d, %v", n, err)
	}
	got := roundTrip(t, c, []byte("during"))
	if el := time.Since(start); el < d || string(got) != "during" {
		t.Errorf("a round trip through a stall of %v took %v and brought %q", d, el, got)
	}
	// The stall is over: the next round trip is quick.
	start = time.Now()
	roundTrip(t, c, []byte("after"))
	if el := time.Since(start); el > d {
		t.Logf("round trip after the stall took %v (loaded machine?)", el)
	}
}

// TestCutNextIsDeterministic: a cut armed on a new connection falls within its byte bound, and
// the same seed puts it at the same byte.
func TestCutNextIsDeterministic(t *testing.T) {
	const within = 1000
	cutAt := func(seed uint64) int {
		srv := startEcho(t, false)
		p := startProxy(t, srv.ln.Addr().String(), seed)
		p.CutNext(1, Cut{Dir: Up, Within: within, By: 30 * time.Second})
		c := dialProxy(t, p)
		data := bytes.Repeat([]byte("x"), 10*within)
		for i := 0; i < len(data); i += 10 {
			if _, err := c.Write(data[i : i+10]); err != nil {
				break // reset by the cut
			}
		}
		testutil.Eventually(t, 10*time.Second, func() bool { return p.Stats().Cut == 1 && p.Stats().Open == 0 }, "the connection cut")
		return int(p.Stats().Up)
	}
	a, b, other := cutAt(7), cutAt(7), cutAt(8)
	if a >= within || a != b {
		t.Errorf("seed 7 cut after %d and %d bytes, want the same, below %d", a, b, within)
	}
	t.Logf("seed 7: cut after %d bytes; seed 8: %d", a, other)
}

func TestCutOpenByTime(t *testing.T) {
	srv := startEcho(t, true)
	p := startProxy(t, srv.ln.Addr().String(), 1)
	c := dialProxy(t, p)
	roundTrip(t, c, []byte("hello"))
	// An idle connection: the bytes never come, the time bound cuts it.
	start := time.Now()
	if n := p.CutOpen(Cut{Within: 1 << 20, By: 100 * time.Millisecond}); n != 1 {
		t.Fatalf("armed %d connections", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a cut connection succeeded")
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("cut after %v, before its bound", el)
	}
	// Within 0 cuts at once; a new connection still goes through.
	c2 := dialProxy(t, p)
	roundTrip(t, c2, []byte("x"))
	p.CutOpen(Cut{})
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a cut connection succeeded")
	}
	if s := p.Stats(); s.Cut != 2 {
		t.Errorf("stats %+v, want 2 cuts", s)
	}
}

func TestHalfClose(t *testing.T) {
	srv := startEcho(t, false)
	p := startProxy(t, srv.ln.Addr().String(), 1)
	c := dialProxy(t, p)
	if _, err := c.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { b, _ := srv.received(0); return string(b) == "abc" }, "abc at the target")
	if n, err := p.HalfClose(Up, 10*time.Second); err != nil || n != 1 {
		t.Fatalf("HalfClose: %d, %v", n, err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { _, eofs := srv.received(0); return eofs == 1 }, "the target sees the end of its input")
	// What the client writes now is dropped, and its connection stays open.
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatalf("write after the half-close: %v", err)
	}
	if b, _ := srv.received(0); string(b) != "abc" {
		t.Errorf("the target received %q", b)
	}
}

func TestRefuse(t *testing.T) {
	srv := startEcho(t, true)
	p := startProxy(t, srv.ln.Addr().String(), 1)
	open := dialProxy(t, p)
	roundTrip(t, open, []byte("x"))
	p.Refuse(true)
	// The proxy accepts and resets a refused connection: on loopback the reset can come before
	// the dial has read its own outcome, so a dial that fails with it is refused too.
	if c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second); err == nil {
		t.Cleanup(func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write([]byte("y"))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a refused connection answered")
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dial while refusing: %v, want a connection that is reset", err)
	}
	// The refusal is counted once the proxy has accepted and reset it.
	testutil.Eventually(t, 10*time.Second, func() bool { return p.Stats().Refused == 1 }, "the refused connection counted")
	roundTrip(t, open, []byte("still")) // open connections are not touched
	p.Refuse(false)
	roundTrip(t, dialProxy(t, p), []byte("again"))
	if s := p.Stats(); s.Refused != 1 || s.Accepted != 2 {
		t.Errorf("stats %+v, want 1 refused, 2 accepted", s)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	srv := startEcho(t, true)
	p := startProxy(t, srv.ln.Addr().String(), 1)
	c := dialProxy(t, p)
	roundTrip(t, c, []byte("x"))
	if _, err := p.Stall(Both, time.Minute); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Close took %v through a stall", el)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
