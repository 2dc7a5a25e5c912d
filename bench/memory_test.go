package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

// The broker's memory per queued task, measured from the outside: an in-process broker with no
// node, raw DEALER sockets pipelining small tasks to it in batches (as any client could), then
// the heap and the process's resident set before and after. Three kinds of queued task:
//
//   - notify: task-call notifications (fire and forget: nothing to answer, no caller to remember);
//   - call: task calls whose callers wait (10,000 per DEALER, the broker's per-client limit, so
//     100 DEALERs for a million; batches of 1,000, each remembered until it can be answered);
//   - submit: broker.submit (answered at once with a task id; the task keeps its public id).
//
// go test -run '^$' -bench QueuedMemory -benchtime 1x ./bench

// queuedTasks is how many tasks the memory figures are measured with: the million, the
// broker's default MaxQueued.
const queuedTasks = 1_000_000

// memBatch is how many tasks travel in one message (the broker's MaxBatch is 1,024).
const memBatch = 1000

// memKinds are the kinds of queued task measured.
var memKinds = []string{"notify", "call", "submit"}

// memSample is the process's memory at one point, after a GC and a return of free memory to
// the OS, so that only live memory counts.
type memSample struct {
	heap uint64 // runtime.MemStats.HeapInuse
	rss  uint64 // VmRSS from /proc/self/status, bytes (0 where there is none)
}

func sampleMem() memSample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapInuse, rss: vmRSS()}
}

// vmRSS returns the resident set size of this process (VmRSS), or 0 where /proc is missing.
func vmRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// memResult is what one fill measured.
type memResult struct {
	n             int
	before, after memSample
	fill          time.Duration // from the first send to the broker counting n queued
}

func (r memResult) heapPerTask() float64 {
	return (float64(r.after.heap) - float64(r.before.heap)) / float64(r.n)
}

func (r memResult) rssPerTask() float64 {
	return (float64(r.after.rss) - float64(r.before.rss)) / float64(r.n)
}

// fillQueued starts a broker with no node, queues n small add tasks of the given kind through
// raw DEALERs, and measures memory before and after. Everything is closed before it returns.
func fillQueued(tb testing.TB, kind string, n int) memResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: broker.PubDisabled, MaxQueued: n})
	if err != nil {
		tb.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(serveCtx) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = b.Shutdown(sctx)
		scancel()
		stopServe()
		<-served
	}()

	perSock := n
	if kind == "call" {
		perSock = broker.DefaultMaxInFlightPerClient
	}
	socks := make([]*zmtp.Socket, (n+perSock-1)/perSock)
	for i := range socks {
		s := zmtp.NewDealer(zmtp.Options{})
		defer s.Close()
		if err := s.Connect(b.Addr()); err != nil {
			tb.Fatal(err)
		}
		socks[i] = s
	}
	// The messages, built before measuring: one batch per message.
	params := DefaultParams("add")
	var submitParams []byte
	submitParams = append(submitParams, `{"method":"add","params":`...)
	submitParams = append(append(submitParams, params...), '}')
	build := func(first, count int) []byte {
		msg := codec.AppendBatchStart(nil)
		for i := range count {
			if i > 0 {
				msg = append(msg, ',')
			}
			id := strconv.AppendInt(nil, int64(first+i+1), 10)
			switch kind {
			case "notify":
				msg = codec.AppendNotification(msg, "add", params)
			case "call":
				msg = codec.AppendRequest(msg, id, "add", params)
			case "submit":
				msg = codec.AppendRequest(msg, id, "broker.submit", submitParams)
			}
		}
		return append(msg, ']')
	}
	before := sampleMem()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(socks))
	for si, s := range socks {
		lo, hi := si*perSock, min(n, (si+1)*perSock)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- sendBatches(ctx, s, kind, lo, hi, build)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	if !testutil.Poll(time.Minute, func() bool { return b.Stats().Queued >= n }) {
		tb.Fatalf("%s: %d tasks queued, want %d (stats %+v)", kind, b.Stats().Queued, n, b.Stats())
	}
	fill := time.Since(start)
	after := sampleMem()
	if st := b.Stats(); st.Queued != n || st.Rejected != 0 {
		tb.Fatalf("%s: queued %d, rejected %d; want %d, 0", kind, st.Queued, st.Rejected, n)
	}
	runtime.KeepAlive(socks)
	return memResult{n: n, before: before, after: after, fill: fill}
}

// sendBatches sends tasks [lo, hi) on s in batches. For submit it keeps at most 16 batches
// unanswered (the replies come at once: reading them keeps the broker's queue to us short).
func sendBatches(ctx context.Context, s *zmtp.Socket, kind string, lo, hi int, build func(first, count int) []byte) error {
	const window = 16
	sent, answered := 0, 0
	for i := lo; i < hi; i += memBatch {
		if kind == "submit" {
			for ; sent-answered >= window; answered++ {
				m, err := s.Recv(ctx)
				if err != nil {
					return fmt.Errorf("submit replies: %w", err)
				}
				m.Release()
			}
		}
		if err := s.SendFrames(ctx, build(i, min(memBatch, hi-i))); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		sent++
	}
	for ; kind == "submit" && answered < sent; answered++ {
		m, err := s.Recv(ctx)
		if err != nil {
			return fmt.Errorf("submit replies: %w", err)
		}
		m.Release()
	}
	return nil
}

// BenchmarkQueuedMemory queues a million small tasks of each kind on an in-process broker with
// no node and reports the memory they take: heap-B/task (live heap growth per task),
// rss-B/task (resident set growth per task), rss-MB (the whole process's resident set with the
// million queued: broker, sockets and test together) and fill-tasks/s. Run it with
// -benchtime 1x: each iteration is a full million.
func BenchmarkQueuedMemory(b *testing.B) {
	for _, kind := range memKinds {
		b.Run("kind="+kind, func(b *testing.B) {
			var r memResult
			for b.Loop() {
				r = fillQueued(b, kind, queuedTasks)
			}
			b.ReportMetric(r.heapPerTask(), "heap-B/task")
			if r.after.rss > 0 {
				b.ReportMetric(r.rssPerTask(), "rss-B/task")
				b.ReportMetric(float64(r.after.rss)/1e6, "rss-MB")
			}
			b.ReportMetric(float64(r.n)/r.fill.Seconds(), "fill-tasks/s")
		})
	}
}

// maxQueuedBytesPerTask is the memory budget of a queued small task: the 250 MB for a
// million queued tasks, broker process and all.
const maxQueuedBytesPerTask = 250

// TestQueuedMemoryEndToEnd holds the broker to the budget of a million queued tasks (100,000
// with -short or the race detector, whose shadow memory would be measured too: then the figure
// is logged, not asserted). The heap per task is asserted; the resident set is logged.
func TestQueuedMemoryEndToEnd(t *testing.T) {
	n := queuedTasks
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	for _, kind := range memKinds {
		t.Run(kind, func(t *testing.T) {
			r := fillQueued(t, kind, n)
			t.Logf("%s: %d queued: heap +%.1f MB (%.0f B/task), RSS %.1f -> %.1f MB (%.0f B/task), filled in %v",
				kind, n, float64(r.after.heap-r.before.heap)/1e6, r.heapPerTask(),
				float64(r.before.rss)/1e6, float64(r.after.rss)/1e6, r.rssPerTask(), r.fill.Round(time.Millisecond))
			if raceEnabled {
				return
			}
			if per := r.heapPerTask(); per > maxQueuedBytesPerTask {
				t.Fatalf("%s: %.0f heap bytes per queued task, budget %d", kind, per, maxQueuedBytesPerTask)
			}
		})
	}
}
