package store_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
)

// BenchmarkRedisServerCPU measures what a durable broker's task costs the Redis server, the
// bound of durable mode: the server's own CPU (user + system, from INFO cpu) per task held and
// acked, in the broker's pattern (one goroutine holding batches of accepted tasks, one acking
// them once finished, both through the writer at once), with the append-only file on as
// docs/durability.md advises. One op is one task. The figure to compare is redis-us/task;
// tasks/s depends on the machine's other load.
//
//	go test -run '^$' -bench RedisServerCPU -benchtime 200000x -count 3 ./store/
func BenchmarkRedisServerCPU(b *testing.B) {
	srv := testutil.StartRedisServer(b, testutil.RedisOptions{Args: []string{"--appendonly", "yes", "--appendfsync", "everysec"}})
	for _, batch := range []int{64, 256} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			r := openRedis(b, srv.Addr, store.Options{})
			defer r.Close()
			ctx := context.Background()
			owner, _, err := r.Register(ctx, "broker:bench:tcp://127.0.0.1:40000", false)
			if err != nil {
				b.Fatal(err)
			}
			// Tasks as the broker makes them: ids of a random prefix, a sequence and a
			// suffix; a small call with the broker's metadata.
			meta := []byte("\n\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00")
			tasks := make([]store.Task, batch)
			for i := range tasks {
				tasks[i] = store.Task{Queue: "add", Method: "add", Params: []byte("[5,6]"), Meta: meta}
			}
			acks := make(chan []string, 4)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ids := range acks {
					if err := r.Ack(ctx, owner, ids...); err != nil {
						b.Error(err)
					}
				}
			}()
			cpu0 := redisCPU(b, r.Client())
			b.ResetTimer()
			for n := 0; n < b.N; n += batch {
				k := min(batch, b.N-n)
				ids := make([]string, k)
				for i := range k {
					ids[i] = "fbfb2a71-" + strconv.Itoa(100000+n+i) + "-f638bccf7a0ae1cd"
					tasks[i].ID = ids[i]
				}
				if err := r.Hold(ctx, owner, tasks[:k]...); err != nil {
					b.Fatal(err)
				}
				acks <- ids
			}
			close(acks)
			<-done
			b.StopTimer()
			cpu := redisCPU(b, r.Client()) - cpu0
			b.ReportMetric(cpu*1e6/float64(b.N), "redis-us/task")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// redisCPU returns the server's CPU time so far in seconds (user + system, its main thread
// and the others).
func redisCPU(b *testing.B, c rueidis.Client) float64 {
	s, err := c.Do(context.Background(), c.B().Info().Section("cpu").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(s, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(fmt.Errorf("INFO cpu %s: %w", k, err))
			}
			sum += f
		}
	}
	return sum
}
