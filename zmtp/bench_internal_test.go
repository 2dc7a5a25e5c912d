package zmtp

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// benchPair returns a bound socket of type bt and a socket of type ct connected to it over
// transport ("tcp" or "ipc"), ready (both sides see a peer).
func benchPair(tb testing.TB, transport string, bt, ct SocketType, bo, co Options) (bound, conn *Socket) {
	tb.Helper()
	bound = NewSocket(bt, bo)
	ep := "tcp://127.0.0.1:0"
	if transport == "ipc" {
		ep = "ipc://" + filepath.Join(tb.TempDir(), "s.sock")
	}
	if err := bound.Bind(ep); err != nil {
		tb.Fatal(err)
	}
	conn = NewSocket(ct, co)
	if err := conn.Connect(bound.LastEndpoint()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(); bound.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for bound.Stats().Peers < 1 || conn.Stats().Peers < 1 {
		if time.Now().After(deadline) {
			tb.Fatal("peers did not connect")
		}
		time.Sleep(time.Millisecond) // polling for readiness, not synchronization of data
	}
	return bound, conn
}

// BenchmarkDealerToRouter measures one-way throughput: a DEALER sends b.N messages, a ROUTER
// receives them.
func BenchmarkDealerToRouter(b *testing.B) {
	for _, transport := range []string{"tcp", "ipc"} {
		for _, size := range []int{64, 1024} {
			for _, mode := range []string{"one", "batch"} {
				b.Run(fmt.Sprintf("%s/size=%d/recv=%s", transport, size, mode), func(b *testing.B) {
					r, d := benchPair(b, transport, Router, Dealer, Options{}, Options{})
					payload := make([]byte, size)
					ctx := context.Background()
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.ResetTimer()
					errc := make(chan error, 1)
					go func() {
						for range b.N {
							if err := d.SendFrames(ctx, payload); err != nil {
								errc <- err
								return
							}
						}
						errc <- nil
					}()
					var batch [64]*Msg
					for n := 0; n < b.N; {
						if mode == "one" {
							m, err := r.Recv(ctx)
							if err != nil {
								b.Fatal(err)
							}
							m.Release()
							n++
							continue
						}
						k, err := r.RecvBatch(ctx, batch[:min(len(batch), b.N-n)])
						if err != nil {
							b.Fatal(err)
						}
						for _, m := range batch[:k] {
							m.Release()
						}
						n += k
					}
					if err := <-errc; err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
				})
			}
		}
	}
}

// BenchmarkPubSub measures PUB->SUB throughput with one subscriber that matches everything.
// A PUB drops for a subscriber at its HWM, so the publisher paces itself on the count the
// subscriber has received (bounded lead), and the benchmark counts what arrives.
func BenchmarkPubSub(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("tcp/size=%d", size), func(b *testing.B) {
			const hwm = 100000
			pub, sub := benchPair(b, "tcp", Pub, Sub, Options{SendHWM: hwm}, Options{RecvHWM: hwm})
			if err := sub.Subscribe(nil); err != nil {
				b.Fatal(err)
			}
			for pub.peerSubscribed() == 0 {
				time.Sleep(time.Millisecond) // polling for the subscription to arrive
			}
			payload := make([]byte, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < b.N; i++ {
					if i%256 == 0 {
						for uint64(i)-sub.stats.msgsIn.Load() >= hwm/2 {
							time.Sleep(10 * time.Microsecond) // pacing below the HWM
						}
					}
					_ = pub.SendFrames(ctx, payload)
				}
			}()
			for range b.N {
				m, err := sub.Recv(ctx)
				if err != nil {
					b.Fatal(err)
				}
				m.Release()
			}
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			if d := pub.Stats().Drops; d > 0 {
				b.Fatalf("%d drops", d)
			}
		})
	}
}

// peerSubscribed returns how many peers of a PUB hold at least one subscription.
func (s *Socket) peerSubscribed() int {
	n := 0
	s.pubMu.Lock()
	for _, c := range *s.peers.Load() {
		if len(c.psubs) > 0 {
			n++
		}
	}
	s.pubMu.Unlock()
	return n
}

// BenchmarkRoundTrip measures request/reply latency, one message in flight: REQ -> ROUTER
// (echo) -> REQ, and DEALER ping-pong. It reports p50 and p99 in microseconds.
func BenchmarkRoundTrip(b *testing.B) {
	for _, kind := range []string{"req-router", "dealer-router"} {
		for _, transport := range []string{"tcp", "ipc"} {
			b.Run(fmt.Sprintf("%s/%s/size=64", kind, transport), func(b *testing.B) {
				ct := Req
				if kind == "dealer-router" {
					ct = Dealer
				}
				r, c := benchPair(b, transport, Router, ct, Options{}, Options{})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go func() {
					for {
						m, err := r.Recv(ctx)
						if err != nil {
							return
						}
						_ = r.Send(ctx, m)
						m.Release()
					}
				}()
				payload := make([]byte, 64)
				lat := make([]time.Duration, 0, b.N)
				b.SetBytes(64)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					t0 := time.Now()
					if err := c.SendFrames(ctx, payload); err != nil {
						b.Fatal(err)
					}
					m, err := c.Recv(ctx)
					if err != nil {
						b.Fatal(err)
					}
					m.Release()
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
			})
		}
	}
}
