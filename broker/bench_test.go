package broker

import (
	"bytes"
	"context"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/zerotask/zerotask/zmtp"
)

// benchNode is a fake node over a real socket: it answers every task with result 11 and gives
// the credit back in the same message, as a real node packs them.
func benchNode(ctx context.Context, b testing.TB, addr string) (*zmtp.Socket, chan struct{}) {
	s := zmtp.NewDealer(zmtp.Options{Logger: discardLogger()})
	if err := s.Connect(addr); err != nil {
		b.Fatal(err)
	}
	_ = s.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","method":"broker.hello","params":{"role":"node","name":"bench","methods":["add"],"concurrency":1024}}`))
	_ = s.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","method":"broker.credit","params":[4096]}`))
	done := make(chan struct{})
	go func() {
		defer close(done)
		var out []byte
		for {
			m, err := s.Recv(ctx)
			if err != nil {
				return
			}
			body := m.Frames[len(m.Frames)-1]
			if !bytes.Contains(body, []byte(`"method"`)) {
				m.Release() // not a task (an error reply): never answer it
				continue
			}
			out = append(out[:0], '[')
			n := 0
			for i := 0; ; {
				j := bytes.Index(body[i:], idPrefix)
				if j < 0 {
					break
				}
				i += j + len(idPrefix)
				k := i
				for k < len(body) && body[k] >= '0' && body[k] <= '9' {
					k++
				}
				out = append(out, `{"jsonrpc":"2.0","id":`...)
				out = append(out, body[i:k]...)
				out = append(out, `,"result":11},`...)
				n++
				i = k
			}
			m.Release()
			out = append(out, `{"jsonrpc":"2.0","method":"broker.credit","params":[`...)
			out = strconv.AppendInt(out, int64(n), 10)
			out = append(out, "]}]"...)
			if err := s.SendFrames(ctx, out); err != nil {
				return
			}
		}
	}()
	return s, done
}

// BenchmarkEndToEnd measures tasks through a real broker over tcp loopback with a fake client
// and a fake node speaking raw JSON (so the figure is the broker's plus zmtp's, not the client
// or node packages'): sequential round trips (with p50/p99 latency), and batches of 64 calls
// with 16 batches in flight.
func BenchmarkEndToEnd(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		br := startBroker(b, Config{Pub: PubDisabled, Logger: discardLogger()})
		ctx, cancel := context.WithCancel(context.Background())
		node, done := benchNode(ctx, b, br.Addr())
		defer func() { cancel(); node.Close(); <-done }()
		c := dealer(b, br)
		req := []byte(`{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6]}`)
		lat := make([]time.Duration, 0, b.N)
		roundTrip := func() {
			if err := c.s.SendFrames(ctx, req); err != nil {
				b.Fatal(err)
			}
			m, err := c.s.Recv(ctx)
			if err != nil {
				b.Fatal(err)
			}
			m.Release()
		}
		for i := 0; i < 100; i++ {
			roundTrip()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			roundTrip()
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
	})
	for _, unordered := range []bool{false, true} {
		name := "batch=64/strict"
		if unordered {
			name = "batch=64/unordered"
		}
		b.Run(name, func(b *testing.B) {
			br := startBroker(b, Config{Pub: PubDisabled, Logger: discardLogger()})
			ctx, cancel := context.WithCancel(context.Background())
			node, done := benchNode(ctx, b, br.Addr())
			defer func() { cancel(); node.Close(); <-done }()
			c := dealer(b, br)
			if unordered {
				c.call(`{"jsonrpc":"2.0","id":0,"method":"broker.hello","params":{"unordered":true}}`)
			}
			const size, window = 64, 16
			req := batchOf(size)
			result := []byte(`"result"`)
			run := func(tasks int) {
				sent, got := 0, 0
				for ; sent < tasks && sent < window*size; sent += size {
					_ = c.s.SendFrames(ctx, req)
				}
				for got < sent {
					m, err := c.s.Recv(ctx)
					if err != nil {
						b.Fatal(err)
					}
					got += bytes.Count(m.Frames[len(m.Frames)-1], result)
					m.Release()
					for sent < tasks && sent-got <= (window-1)*size {
						_ = c.s.SendFrames(ctx, req)
						sent += size
					}
				}
			}
			run(64 * size)
			b.ReportAllocs()
			b.ResetTimer()
			run(b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
