package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/zmtp"
)

// echoServer is an allocation-free stand-in for broker plus node: a ROUTER that answers every
// request with its own params as the result (hello included), batches member by member in one
// reply. It measures the client alone.
type echoServer struct {
	r    *zmtp.Socket
	Addr string
	stop context.CancelFunc
	done chan struct{}
}

func newEchoServer(t testing.TB, security ...zmtp.Mechanism) *echoServer {
	t.Helper()
	o := zmtp.Options{SendHWM: 100000, RecvHWM: 100000}
	if len(security) == 1 {
		o.Security = security[0]
	}
	r := zmtp.NewRouter(o)
	if err := r.Bind("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &echoServer{r: r, Addr: r.LastEndpoint(), stop: cancel, done: make(chan struct{})}
	go s.serve(ctx)
	t.Cleanup(func() {
		cancel()
		r.Close()
		<-s.done
	})
	return s
}

var helloReply = []byte(`{"broker":"echo","heartbeat_ms":1000,"max_batch":1024}`)

func (s *echoServer) serve(ctx context.Context) {
	defer close(s.done)
	var h codec.Header
	var it codec.BatchIter
	out := make([]byte, 0, 64<<10)
	reply := func(dst []byte, h *codec.Header) []byte {
		res := h.Params
		if string(h.Method) == "broker.hello" {
			res = helloReply
		}
		return codec.AppendResult(dst, h.ID, res)
	}
	for {
		m, err := s.r.Recv(ctx)
		if err != nil {
			return
		}
		body := m.Frames[len(m.Frames)-1]
		out = out[:0]
		if codec.Scan(body, &h) == nil {
			if h.Kind == codec.KindRequest {
				out = reply(out, &h)
			} else if h.Kind == codec.KindBatch {
				var bw codec.BatchWriter
				out = bw.Begin(out)
				it.Reset(body)
				for it.Next() {
					if eh, err := it.Header(); err == nil && eh.Kind == codec.KindRequest {
						out = bw.Next(out)
						out = reply(out, eh)
					}
				}
				out = bw.End(out)
			}
		}
		if len(out) > 0 {
			_ = s.r.SendFrames(ctx, m.Frames[0], out)
		}
		m.Release()
	}
}

func dialEcho(t testing.TB, s *echoServer, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := Dial(ctx, s.Addr, append([]Option{WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCallRawAllocs: a raw call, end to end over loopback (both sockets included), allocates at
// most 4 times (the target), and nothing in practice.
func TestCallRawAllocs(t *testing.T) {
	s := newEchoServer(t)
	c := dialEcho(t, s)
	ctx := context.Background()
	params := []byte(`[5,6]`)
	dst := make([]byte, 0, 64)
	call := func() {
		var err error
		dst, err = c.CallRaw(ctx, dst[:0], "echo", params)
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		call()
	}
	if string(dst) != "[5,6]" {
		t.Fatalf("echo = %s", dst)
	}
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a := testing.AllocsPerRun(2000, call)
	t.Logf("%.3f allocs per CallRaw round trip", a)
	if a > 4 {
		t.Errorf("%v allocs per CallRaw, target <= 4", a)
	}
}

// BenchmarkCallRaw is the sequential round trip over loopback to an echo server: the client's
// own cost plus two zmtp hops. It reports p50/p99 latency.
func BenchmarkCallRaw(b *testing.B) {
	for _, size := range []int{16, 256, 4096} {
		b.Run(fmt.Sprintf("params=%d", size), func(b *testing.B) {
			s := newEchoServer(b)
			c := dialEcho(b, s)
			ctx := context.Background()
			params := make([]byte, 0, size)
			params = append(params, `["`...)
			for len(params) < size-2 {
				params = append(params, 'x')
			}
			params = append(params, `"]`...)
			dst := make([]byte, 0, size+64)
			lat := make([]time.Duration, 0, b.N)
			b.SetBytes(int64(len(params)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				var err error
				dst, err = c.CallRaw(ctx, dst[:0], "echo", params)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// BenchmarkCallParallel is many goroutines calling at once: the requests coalesce into batches.
func BenchmarkCallParallel(b *testing.B) {
	s := newEchoServer(b)
	c := dialEcho(b, s)
	ctx := context.Background()
	params := []byte(`[5,6]`)
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 64)
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			var err error
			dst, err = c.CallRaw(ctx, dst[:0], "echo", params)
			if err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	reportLatency(b, all)
}

// BenchmarkMap fans calls out with Map (1,000 in flight).
func BenchmarkMap(b *testing.B) {
	s := newEchoServer(b)
	c := dialEcho(b, s)
	ctx := context.Background()
	const n = 10000
	inputs := make([]any, n)
	for i := range inputs {
		inputs[i] = i
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := Map[[]int](ctx, c, "echo", inputs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "calls/s")
}

// reportLatency adds p50 and p99 metrics.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
}
