package store

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/zerotask/zerotask/internal/testutil"
)

// The client comparison: the broker's write pattern (per tick: a batch of results, a batch of
// task appends, a batch of claims) sent through rueidis (auto-pipelining, DoMulti) and through
// go-redis v9 (explicit pipelines), against the same real redis-server. One op is one batch.
//
//	go test -run '^$' -bench 'Client' -benchtime 2s ./store/

const clientBatch = 64

func benchClients(b *testing.B) (rueidis.Client, *goredis.Client) {
	addr := testutil.StartRedis(b)
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	gc := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 3})
	b.Cleanup(func() { gc.Close() })
	return rc, gc
}

var (
	benchIDs     [clientBatch]string
	benchResKeys [clientBatch]string
	benchChans   [clientBatch]string
	benchPayload = `{"jsonrpc":"2.0","id":17,"result":11}`
)

func init() {
	for i := range benchIDs {
		benchIDs[i] = "5f0c2a91-" + strconv.Itoa(1000000+i)
		benchResKeys[i] = "zb:r:" + benchIDs[i]
		benchChans[i] = "zb:done:" + benchIDs[i]
	}
}

const benchPutLua = `
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i+1], 'PX', ARGV[1])
  redis.call('PUBLISH', ARGV[1+#KEYS+i], '')
end
return #KEYS`

func BenchmarkClientPut(b *testing.B) {
	rc, gc := benchClients(b)
	ctx := context.Background()
	ttl := time.Minute
	b.Run("rueidis/SET+PUBLISH", func(b *testing.B) {
		b.ReportAllocs()
		cmds := make(rueidis.Commands, 0, 2*clientBatch)
		for i := 0; i < b.N; i++ {
			cmds = cmds[:0]
			for j := range benchIDs {
				cmds = append(cmds,
					rc.B().Set().Key(benchResKeys[j]).Value(benchPayload).PxMilliseconds(ttl.Milliseconds()).Build(),
					rc.B().Publish().Channel(benchChans[j]).Message("").Build())
			}
			for _, r := range rc.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("goredis/SET+PUBLISH", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p := gc.Pipeline()
			for j := range benchIDs {
				p.Set(ctx, benchResKeys[j], benchPayload, ttl)
				p.Publish(ctx, benchChans[j], "")
			}
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	rl := rueidis.NewLuaScript(benchPutLua)
	gl := goredis.NewScript(benchPutLua)
	args := make([]string, 0, 1+2*clientBatch)
	args = append(args, strconv.FormatInt(ttl.Milliseconds(), 10))
	for range benchIDs {
		args = append(args, benchPayload)
	}
	args = append(args, benchChans[:]...)
	b.Run("rueidis/lua", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := rl.Exec(ctx, rc, benchResKeys[:], args).Error(); err != nil {
				b.Fatal(err)
			}
		}
	})
	gargs := make([]any, len(args))
	for i, a := range args {
		gargs[i] = a
	}
	b.Run("goredis/lua", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := gl.Run(ctx, gc, benchResKeys[:], gargs...).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Many callers, one SET each: what auto-pipelining does without our own batching.
	b.Run("rueidis/parallel-single", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			j := 0
			for pb.Next() {
				j = (j + 1) % clientBatch
				if err := rc.Do(ctx, rc.B().Set().Key(benchResKeys[j]).Value(benchPayload).PxMilliseconds(60000).Build()).Error(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("goredis/parallel-single", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			j := 0
			for pb.Next() {
				j = (j + 1) % clientBatch
				if err := gc.Set(ctx, benchResKeys[j], benchPayload, ttl).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkClientAppendClaim: 64 task appends (HSET of the task record + RPUSH of its id)
// then 64 claims (LMOVE to an in-flight list), pipelined.
func BenchmarkClientAppendClaim(b *testing.B) {
	rc, gc := benchClients(b)
	ctx := context.Background()
	tkeys := make([]string, clientBatch)
	for j := range tkeys {
		tkeys[j] = "zb:t:" + benchIDs[j]
	}
	blob := `{"method":"add","params":[5,6],"queue":"add"}`
	b.Run("rueidis", func(b *testing.B) {
		b.ReportAllocs()
		cmds := make(rueidis.Commands, 0, 2*clientBatch)
		for i := 0; i < b.N; i++ {
			cmds = cmds[:0]
			for j := range benchIDs {
				cmds = append(cmds,
					rc.B().Hset().Key(tkeys[j]).FieldValue().FieldValue("d", blob).FieldValue("a", "0").Build(),
					rc.B().Rpush().Key("zb:q:add").Element(benchIDs[j]).Build())
			}
			for _, r := range rc.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil {
					b.Fatal(err)
				}
			}
			cmds = cmds[:0]
			for range benchIDs {
				cmds = append(cmds, rc.B().Lmove().Source("zb:q:add").Destination("zb:inflight").Left().Right().Build())
			}
			for _, r := range rc.DoMulti(ctx, cmds...) {
				if _, err := r.ToString(); err != nil {
					b.Fatal(err)
				}
			}
			if err := rc.Do(ctx, rc.B().Del().Key("zb:inflight").Build()).Error(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goredis", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p := gc.Pipeline()
			for j := range benchIDs {
				p.HSet(ctx, tkeys[j], "d", blob, "a", "0")
				p.RPush(ctx, "zb:q:add", benchIDs[j])
			}
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			p = gc.Pipeline()
			for range benchIDs {
				p.LMove(ctx, "zb:q:add", "zb:inflight", "LEFT", "RIGHT")
			}
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			if err := gc.Del(ctx, "zb:inflight").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRedisAckPath compares the two ways an Ack can reach Redis with many callers at once
// (8 and 64 per GOMAXPROCS; each holds one task through the writer, then acks it): through
// the writer (batched with every other Ack and Hold of the moment, as Ack does) and as one
// script call per Ack, pipelined by rueidis (as Ack did before).
//
//	go test -run '^$' -bench RedisAckPath -benchtime 2s ./store/
func BenchmarkRedisAckPath(b *testing.B) {
	addr := testutil.StartRedis(b)
	for _, perProc := range []int{8, 64} {
		for _, path := range []string{"writer", "direct"} {
			name := fmt.Sprintf("%s/callers=%d", path, perProc*runtime.GOMAXPROCS(0))
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				r, err := DialRedis(ctx, "redis://"+addr+"/0", Options{Prefix: "ackpath-" + strconv.Itoa(perProc) + path + ":"})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				b.ReportAllocs()
				b.SetParallelism(perProc)
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					tk := []Task{{ID: "t" + strconv.FormatInt(next.Add(1), 10), Queue: "add", Method: "add", Params: []byte(`[5,6]`)}}
					id := []string{tk[0].ID}
					for pb.Next() {
						if err := r.Hold(ctx, "broker-1", tk...); err != nil {
							b.Error(err)
							return
						}
						var err error
						if path == "writer" {
							err = r.Ack(ctx, "broker-1", id...)
						} else {
							err = eval(ctx, r.c, scriptAck, r.o.Prefix, "1", "broker-1", "1", id[0]).Error()
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
			})
		}
	}
}
