package zmtp_test

// Cross-library benchmarks: our engine and go-zeromq/zmq4 doing the same work over tcp
// loopback, both ends in this process. bench/zmtp/run.sh runs them beside libzmq (a C driver,
// bench/zmtp/zbench.c, with the same shapes) and prints the ratios.
//
//	go test -run '^$' -bench '^BenchmarkCross' -benchtime 2s ./zmtp
//
// Metrics: msg/s (messages delivered per second, timed at the receiver), allocs/op (per
// message, both ends together), and for round trips p50-ns / p99-ns of the per-trip latency.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/zerotask/zerotask/zmtp"
)

var crossSizes = []int{64, 1024}

// benchHWM (with no SendHWMBytes bound) lifts the PUB/SUB queues for the pub-sub runs so that
// a burst is delivered, not dropped, as libzmq's driver does with HWM 0; drops that still
// happen are reported.
const benchHWM = 1 << 17

func BenchmarkCrossOneWay(b *testing.B) {
	for _, pattern := range []string{"dealer-router", "pub-sub"} {
		for _, size := range crossSizes {
			b.Run(fmt.Sprintf("%s/size=%d/lib=zmtp", pattern, size), func(b *testing.B) {
				benchOneWayZmtp(b, pattern, size)
			})
			b.Run(fmt.Sprintf("%s/size=%d/lib=zmq4", pattern, size), func(b *testing.B) {
				benchOneWayZmq4(b, pattern, size)
			})
		}
	}
}

// BenchmarkCrossCurve: the DEALER->ROUTER one-way and REQ/REP round-trip figures with CURVE
// on the connection (the bound socket is the CURVE server), beside zbench's "curve" runs.
func BenchmarkCrossCurve(b *testing.B) {
	for _, size := range crossSizes {
		b.Run(fmt.Sprintf("one-way/dealer-router/size=%d/lib=zmtp", size), func(b *testing.B) {
			benchOneWayZmtpOpts(b, "dealer-router", size, crossCurve(true), crossCurve(false))
		})
	}
	for _, size := range crossSizes {
		b.Run(fmt.Sprintf("round-trip/req-rep/size=%d/lib=zmtp", size), func(b *testing.B) {
			benchRTTZmtpOpts(b, zmtp.Req, zmtp.Rep, size, crossCurve(true), crossCurve(false))
		})
	}
}

// crossCurveKeys are the benchmarks' CURVE keys: one pair per process.
var crossCurveKeys = sync.OnceValues(func() (zmtp.CurveKeyPair, zmtp.CurveKeyPair) {
	s, err := zmtp.NewCurveKeyPair()
	if err != nil {
		panic(err)
	}
	c, err := zmtp.NewCurveKeyPair()
	if err != nil {
		panic(err)
	}
	return s, c
})

// crossCurve returns the options of the CURVE server (bound) or client side.
func crossCurve(server bool) zmtp.Options {
	s, c := crossCurveKeys()
	if server {
		return zmtp.Options{Security: zmtp.CurveServer(s, zmtp.CurveAllow(c.Public))}
	}
	return zmtp.Options{Security: zmtp.CurveClient(s.Public, c)}
}

func BenchmarkCrossRoundTrip(b *testing.B) {
	for _, size := range crossSizes {
		b.Run(fmt.Sprintf("req-rep/size=%d/lib=zmtp", size), func(b *testing.B) { benchRTTZmtp(b, zmtp.Req, zmtp.Rep, size) })
		b.Run(fmt.Sprintf("dealer-router/size=%d/lib=zmtp", size), func(b *testing.B) { benchRTTZmtp(b, zmtp.Dealer, zmtp.Router, size) })
		b.Run(fmt.Sprintf("req-rep/size=%d/lib=zmq4", size), func(b *testing.B) { benchRTTZmq4(b, size) })
	}
}

// reportRate reports messages per second and sets bytes per op.
func reportRate(b *testing.B, n int, size int, el time.Duration) {
	b.SetBytes(int64(size))
	if el > 0 {
		b.ReportMetric(float64(n)/el.Seconds(), "msg/s")
	}
}

// reportLatency reports the median and 99th percentile of rtts.
func reportLatency(b *testing.B, rtts []time.Duration) {
	if len(rtts) == 0 {
		return
	}
	slices.Sort(rtts)
	b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(rtts[len(rtts)*99/100].Nanoseconds()), "p99-ns")
}

func benchOneWayZmtp(b *testing.B, pattern string, size int) {
	benchOneWayZmtpOpts(b, pattern, size, zmtp.Options{}, zmtp.Options{})
}

// benchOneWayZmtpOpts is benchOneWayZmtp with options for the bound and the connecting
// socket (dealer-router only; pub-sub sets its own).
func benchOneWayZmtpOpts(b *testing.B, pattern string, size int, bo, co zmtp.Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var send, recv *zmtp.Socket
	payload := make([]byte, size)
	payload[0] = 'M'
	switch pattern {
	case "dealer-router":
		r, ep := bindSocket(b, zmtp.Router, bo)
		recv = r
		send = connectSocket(b, zmtp.Dealer, co, ep)
		waitPeers(b, send, 1, joinWait)
	case "pub-sub":
		p, ep := bindSocket(b, zmtp.Pub, zmtp.Options{SendHWM: benchHWM, SendHWMBytes: -1})
		send = p
		recv = connectSocket(b, zmtp.Sub, zmtp.Options{RecvHWM: benchHWM}, ep)
		if err := recv.Subscribe(nil); err != nil {
			b.Fatal(err)
		}
		joinSub(b, p, recv)
	}
	// The PUB may drop (at a subscriber's HWM), so the receiver cannot just wait for b.N
	// messages: a watchdog ends its context once the sender is done and nothing has arrived
	// for a while. One context for the whole run keeps the receive loop allocation-free.
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	var got atomic.Int64
	errc := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		var err error
		for range b.N {
			if err = send.SendFrames(ctx, payload); err != nil {
				break
			}
		}
		errc <- err
		if pattern != "pub-sub" {
			return
		}
		for last := int64(-1); ; last = got.Load() {
			select {
			case <-rctx.Done():
				return
			case <-time.After(time.Second):
			}
			if got.Load() == last || got.Load() >= int64(b.N) {
				rcancel()
				return
			}
		}
	}()
	var start, lastAt time.Time
	body := len(payload) // the ROUTER puts the identity first: count the last frame
	for n := 0; n < b.N; {
		m, err := recv.Recv(rctx)
		if err != nil {
			if pattern == "pub-sub" && errors.Is(err, context.Canceled) {
				break
			}
			b.Fatalf("Recv: %v", err)
		}
		// Probes are 1 byte: the length tells them apart without touching the payload,
		// which libzmq's driver does not read either.
		if len(m.Frames[len(m.Frames)-1]) == body {
			if n == 0 {
				start = time.Now()
			}
			n++
			if pattern == "pub-sub" { // the watchdog's progress; the run may end in its idle wait
				got.Store(int64(n))
				lastAt = time.Now()
			} else if n == b.N {
				got.Store(int64(n))
			}
		}
		m.Release()
	}
	el := time.Since(start)
	if pattern == "pub-sub" {
		el = lastAt.Sub(start)
	}
	b.StopTimer()
	rcancel()
	if err := <-errc; err != nil {
		b.Fatalf("Send: %v", err)
	}
	n := int(got.Load())
	if n > 1 {
		reportRate(b, n-1, size, el)
	}
	if pattern == "pub-sub" {
		b.ReportMetric(float64(b.N-n), "dropped")
	}
}

// joinSub publishes probes until the SUB has one: the subscription has reached the PUB.
func joinSub(b *testing.B, pub, sub *zmtp.Socket) {
	ctx, cancel := context.WithTimeout(context.Background(), joinWait)
	defer cancel()
	for ctx.Err() == nil {
		if err := pub.SendFrames(ctx, []byte("P")); err != nil {
			b.Fatal(err)
		}
		if _, ok := tryRecv(sub, 10*time.Millisecond); ok {
			return
		}
	}
	b.Fatal("SUB never joined")
}

func benchOneWayZmq4(b *testing.B, pattern string, size int) {
	payload := make([]byte, size)
	payload[0] = 'M'
	var send, recv zmq4.Socket
	switch pattern {
	case "dealer-router":
		recv = newZ(b, zmq4.NewRouter)
		if err := recv.Listen("tcp://127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		send = newZ(b, zmq4.NewDealer)
		if err := send.Dial(zEndpoint(b, recv)); err != nil {
			b.Fatal(err)
		}
	case "pub-sub":
		send = newZ(b, zmq4.NewPub)
		if err := send.Listen("tcp://127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		recv = newZ(b, zmq4.NewSub)
		if err := recv.SetOption(zmq4.OptionSubscribe, ""); err != nil {
			b.Fatal(err)
		}
		if err := recv.Dial(zEndpoint(b, send)); err != nil {
			b.Fatal(err)
		}
	}
	// Probe until one message goes through (the subscription, or the DEALER's connection).
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		for {
			m, err := recv.Recv()
			if err != nil {
				return
			}
			if f := m.Frames[len(m.Frames)-1]; len(f) == 1 && f[0] == 'P' {
				return
			}
		}
	}()
	deadline := time.Now().Add(joinWait)
	for waiting := true; waiting; {
		_ = send.Send(zmq4.NewMsg([]byte("P")))
		select {
		case <-joined:
			waiting = false
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				b.Fatal("zmq4 peers never joined")
			}
		}
	}
	errc := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if err := send.Send(zmq4.NewMsg(payload)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	type res struct {
		got int
		el  time.Duration
		err error
	}
	done := make(chan res, 1)
	go func() {
		var start time.Time
		got := 0
		for got < b.N {
			m, err := recv.Recv()
			if err != nil {
				done <- res{got, time.Since(start), err}
				return
			}
			if f := m.Frames[len(m.Frames)-1]; len(f) == size && f[0] == 'M' {
				if got == 0 {
					start = time.Now()
				}
				got++
			}
		}
		done <- res{got, time.Since(start), nil}
	}()
	var r res
	select {
	case r = <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("zmq4 receiver stuck")
	}
	b.StopTimer()
	if err := <-errc; err != nil {
		b.Fatalf("zmq4 send: %v", err)
	}
	if r.err != nil {
		b.Fatalf("zmq4 recv: %v", r.err)
	}
	if r.got > 1 {
		reportRate(b, r.got-1, size, r.el)
	}
}

func benchRTTZmtp(b *testing.B, client, server zmtp.SocketType, size int) {
	benchRTTZmtpOpts(b, client, server, size, zmtp.Options{}, zmtp.Options{})
}

// benchRTTZmtpOpts is benchRTTZmtp with options for the bound (echoing) and the connecting
// socket.
func benchRTTZmtpOpts(b *testing.B, client, server zmtp.SocketType, size int, bo, co zmtp.Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, ep := bindSocket(b, server, bo)
	cli := connectSocket(b, client, co, ep)
	waitPeers(b, cli, 1, joinWait)
	payload := make([]byte, size)
	echoDone := make(chan error, 1)
	go func() {
		for {
			m, err := srv.Recv(ctx)
			if err != nil {
				echoDone <- nil // closed at the end of the benchmark
				return
			}
			err = srv.Send(ctx, m)
			m.Release()
			if err != nil {
				echoDone <- err
				return
			}
		}
	}()
	rtts := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := cli.SendFrames(ctx, payload); err != nil {
			b.Fatalf("Send: %v", err)
		}
		m, err := cli.Recv(ctx)
		if err != nil {
			b.Fatalf("Recv: %v", err)
		}
		m.Release()
		rtts[i] = time.Since(t0)
	}
	b.StopTimer()
	reportLatency(b, rtts)
	_ = srv.Close()
	if err := <-echoDone; err != nil {
		b.Fatalf("echo: %v", err)
	}
}

func benchRTTZmq4(b *testing.B, size int) {
	rep := newZ(b, zmq4.NewRep)
	if err := rep.Listen("tcp://127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	req := newZ(b, zmq4.NewReq)
	if err := req.Dial(zEndpoint(b, rep)); err != nil {
		b.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		for {
			m, err := rep.Recv()
			if err != nil {
				return
			}
			if err := rep.Send(m); err != nil {
				return
			}
		}
	}()
	payload := make([]byte, size)
	rtts := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := req.Send(zmq4.NewMsg(payload)); err != nil {
			b.Fatalf("zmq4 Send: %v", err)
		}
		if _, err := req.Recv(); err != nil {
			b.Fatalf("zmq4 Recv: %v", err)
		}
		rtts[i] = time.Since(t0)
	}
	b.StopTimer()
	reportLatency(b, rtts)
	_ = rep.Close()
	<-echoDone
}
