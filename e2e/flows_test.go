package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/protocol"
)

// The timed acceptance runs of periodic tasks and rate limits (docs/workflows.md), on the wall
// clock against `zerotask broker` processes. Their window is short by default, to keep CI
// short; ZEROTASK_FLOWS_WINDOW=10s runs them over the acceptance's full 10 s (BENCHMARKS.md,
// "Workflows, schedules and limits", has the figures of such a run).
const flowsWindowEnv = "ZEROTASK_FLOWS_WINDOW"

// flowsWindow returns the measuring window: ZEROTASK_FLOWS_WINDOW, whole seconds from 1 s to
// 60 s, default 3 s.
func flowsWindow(t testing.TB) time.Duration {
	t.Helper()
	v := os.Getenv(flowsWindowEnv)
	if v == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > time.Minute || d%time.Second != 0 {
		t.Fatalf("%s=%q: want whole seconds from 1s to 60s", flowsWindowEnv, v)
	}
	return d
}

// startLog records when each task of a method started on the nodes, and its id.
type startLog struct {
	mu  sync.Mutex
	at  []time.Time
	ids map[string]int // task id -> runs (empty ids are not recorded)
}

func (l *startLog) handler() dispatch.Handler {
	return dispatch.HandlerFunc(func(ctx context.Context, dst, _ []byte) ([]byte, error) {
		now := time.Now()
		info, _ := dispatch.TaskInfoFrom(ctx)
		l.mu.Lock()
		l.at = append(l.at, now)
		if info.ID != "" {
			if l.ids == nil {
				l.ids = make(map[string]int)
			}
			l.ids[info.ID]++
		}
		l.mu.Unlock()
		return append(dst, "true"...), nil
	})
}

// snapshot returns the start times, sorted, and the ids run more than once.
func (l *startLog) snapshot() (at []time.Time, twice []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at = slices.Clone(l.at)
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	for id, n := range l.ids {
		if n > 1 {
			twice = append(twice, id)
		}
	}
	return at, twice
}

// within counts the times in [from, to).
func within(at []time.Time, from, to time.Time) int {
	n := 0
	for _, a := range at {
		if !a.Before(from) && a.Before(to) {
			n++
		}
	}
	return n
}

// TestScheduleTwoBrokerProcesses: two `zerotask broker --store redis://...` processes on one
// Redis, a node on each. `zerotask schedule set --every 1s` on the first broker; the second
// learns it through the store, and both submit every tick. Removed through the second broker
// after the window: it ran once per second of the window (+-1: the ticks at the window's
// edges), no task twice, and both brokers submitted ticks that the other had already
// enqueued (the store's key binding let one in).
func TestScheduleTwoBrokerProcesses(t *testing.T) {
	window := flowsWindow(t)
	url, _ := startRedisStore(t)
	var routers []string
	for _, owner := range []string{"sa", "sb"} {
		_, m := startDaemon(t, brokerLine, "broker", "--listen", "tcp://127.0.0.1:0", "--pub", "none",
			"--log-level", "warn", "--store", url, "--owner", owner)
		routers = append(routers, m[1])
	}
	var log startLog
	d := dispatch.New()
	d.MustRegister("beat", log.handler())
	for i, r := range routers {
		n, _ := startNode(t, nil, node.Config{Broker: r, Sub: protocol.NoEndpoint, Dispatcher: d, Name: "n" + strconv.Itoa(i)})
		waitConnected(t, n)
	}
	ca, cb := dial(t, routers[0]), dial(t, routers[1])
	list := func(c *client.Client) []protocol.Schedule {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var l []protocol.Schedule
		if err := c.Call(ctx, protocol.MethodScheduleList, &l); err != nil {
			t.Fatalf("broker.schedule.list: %v", err)
		}
		return l
	}

	cli := func(router string, args ...string) {
		t.Helper()
		args = append([]string{"schedule", args[0], "--broker", router}, args[1:]...)
		if code, out, errOut := zerotask(t, 30*time.Second, args...); code != 0 {
			t.Fatalf("zerotask %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	cli(routers[0], "set", "--every", "1s", "beat", "beat")
	testutil.Eventually(t, 10*time.Second, func() bool { return len(list(cb)) == 1 }, "the schedule reaches the second broker")
	// The window: W whole seconds from the second after next. Ticks fall on whole seconds and
	// a tick's task starts a little after it (well within its second): the second a run
	// started in is its tick. The window is over once a node has started the tick of the
	// second after it.
	from := time.Now().Truncate(time.Second).Add(2 * time.Second)
	to := from.Add(window)
	testutil.Eventually(t, window+30*time.Second, func() bool {
		at, _ := log.snapshot()
		return len(at) > 0 && !at[len(at)-1].Before(to.Add(time.Second))
	}, "a run of the tick after the window")
	cli(routers[1], "remove", "beat")
	testutil.Eventually(t, 10*time.Second, func() bool { return len(list(ca)) == 0 }, "the removal reaches the first broker")
	// Every tick submitted before the removal has run once both brokers are idle.
	idle := func() bool {
		for _, c := range []*client.Client{ca, cb} {
			if s := statsOf(t, c); s.Queued+s.Running+s.Storing != 0 {
				return false
			}
		}
		return true
	}
	testutil.Eventually(t, 30*time.Second, idle, "both brokers idle")

	at, twice := log.snapshot()
	in := within(at, from, to)
	perSecond := map[int64]int{}
	for _, a := range at {
		perSecond[a.Unix()]++
	}
	sa, sb := statsOf(t, ca), statsOf(t, cb)
	secs := int(window / time.Second)
	t.Logf("every 1s, two broker processes on one Redis: %d runs in the %v from %s (%d in all); "+
		"broker a enqueued %d ticks and found %d taken, broker b enqueued %d and found %d taken",
		in, window, from.Format("15:04:05"), len(at), sa.Submitted, sa.Duplicate, sb.Submitted, sb.Duplicate)
	if len(twice) > 0 {
		t.Fatalf("tasks run twice: %v", twice)
	}
	if in < secs-1 || in > secs+1 {
		t.Fatalf("%d runs in %v, want %d +- 1; runs per second (unix time): %v", in, window, secs, perSecond)
	}
	if int(sa.Submitted+sb.Submitted) != len(at) {
		t.Fatalf("the brokers enqueued %d tasks, the nodes ran %d", sa.Submitted+sb.Submitted, len(at))
	}
	// Both brokers submitted every tick of the window: one of them enqueued it, the other
	// found its key taken.
	for i, s := range []brokerStats{sa, sb} {
		if n := int(s.Submitted + s.Duplicate); n < secs {
			t.Fatalf("broker %d submitted %d ticks, want every tick of the window (%d) at least", i, n, secs)
		}
	}
}

// TestLimitRateRealNodes: `zerotask broker --limits FILE` with 100 per second (burst 10) on a
// method, 5,000 tasks queued, then 4 nodes of concurrency 4. The tasks handed out are counted
// where the limit is enforced: the broker's queue, read with broker.stats every 50 ms. Over a
// window of the steady state (after the burst) 100 per second go out; every one of them
// runs on a node, none fails, and the rest wait in the queue. The nodes' own log of starts
// gives the same count but not as exactly on a loaded machine: the race detector's pauses of
// this process shift when a handler starts, not when the broker handed its task out.
//
// Bounds: the acceptance's 2% both ways over a window of 10 s or more
// (ZEROTASK_FLOWS_WINDOW=10s). Over the default 3 s, never more than the bucket allows (the
// rate and the burst), and at least 80%: a loaded machine holds the broker or the nodes up for
// a tenth of a second or more (seen: half a second at load average 25), and past the burst (10
// tokens, 100 ms) the tokens of such a pause are not handed out, by design.
func TestLimitRateRealNodes(t *testing.T) {
	window := flowsWindow(t)
	const (
		rate   = 100
		burst  = 10
		queued = 5000
	)
	limits := filepath.Join(t.TempDir(), "limits.json")
	if err := os.WriteFile(limits, []byte(`[{"scope":"method","name":"work","rate":`+strconv.Itoa(rate)+`,"burst":`+strconv.Itoa(burst)+`}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, router, pub := startBinaryBroker(t, "--limits", limits)
	c := dial(t, router)
	ctx := testutil.Context(t, time.Minute)
	for range queued {
		if err := c.Notify(ctx, "work"); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return statsOf(t, c).Queued == queued }, "%d tasks queued", queued)

	var log startLog
	d := dispatch.New()
	d.MustRegister("work", log.handler())
	for i := range 4 {
		n, _ := startNode(t, nil, node.Config{Broker: router, Sub: pub, Dispatcher: d, Concurrency: 4, Name: "n" + strconv.Itoa(i)})
		waitConnected(t, n)
	}
	// A sample is the tasks handed out so far, read in a round trip short enough to date it.
	type sample struct {
		at     time.Time // the middle of the round trip
		handed int
	}
	const maxRTT = 20 * time.Millisecond
	read := func() (sample, bool) {
		sent := time.Now()
		st := statsOf(t, c)
		rtt := time.Since(sent)
		return sample{at: sent.Add(rtt / 2), handed: queued - st.Queued}, rtt <= maxRTT
	}
	var first sample
	testutil.Eventually(t, 30*time.Second, func() bool {
		s, _ := read()
		first = s
		return s.handed > burst
	}, "the burst handed out")
	// The steady window starts half a second later; it runs from one sample to the first one
	// at least the window later (sampling every 50 ms is waiting on the system measured, not
	// synchronisation).
	const settle = 500 * time.Millisecond
	var from, to sample
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(window + time.Minute); to.at.IsZero(); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("no sample round trip under %v in a minute", maxRTT)
		}
		s, ok := read()
		switch {
		case !ok || s.at.Before(first.at.Add(settle)):
		case from.at.IsZero():
			from = s
		case s.at.Sub(from.at) >= window:
			to = s
		}
	}
	span := to.at.Sub(from.at)
	handed := to.handed - from.handed
	want := float64(rate) * span.Seconds()
	// Every task handed out runs: the nodes' log catches up with the broker's count.
	testutil.Eventually(t, 30*time.Second, func() bool { at, _ := log.snapshot(); return len(at) >= to.handed }, "the handed-out tasks ran")
	at, _ := log.snapshot()
	st := statsOf(t, c)
	lo, hi := 0.98*want, 1.02*want
	if window < 10*time.Second {
		lo, hi = 0.8*want, want+burst+1 // +1: the samples' dating, within 10 ms
	}
	t.Logf("%d/s (burst %d), 4 nodes, %d queued: %d handed out in %v of the steady state (want %.1f, from %.1f to %.1f); the nodes logged %d starts in that span; %d still queued, %d failed",
		rate, burst, queued, handed, span.Round(time.Millisecond), want, lo, hi, within(at, from.at, to.at), st.Queued, st.Failed)
	if float64(handed) < lo || float64(handed) > hi {
		t.Errorf("%d handed out in %v, want %.1f to %.1f", handed, span, lo, hi)
	}
	if st.Failed != 0 || st.Queued == 0 || st.Queued > queued-len(at) {
		t.Errorf("stats %+v after %d ran: the limited tasks must wait in the queue, none fail", st, len(at))
	}
}

// BenchmarkMapReduceProcesses compares a 10,000-member chord (client.MapReduce: add, then
// sum) with client.Map over the same inputs, in the same run, against `zerotask broker` and
// `zerotask node` processes with every flag at its default (the client is this process). The
// acceptance bound on chord/map is 0.5. Where /proc is readable it also reports the CPU time
// the broker, the node and the client spent per task of each (their utime and stime, in clock ticks).
func BenchmarkMapReduceProcesses(b *testing.B) {
	bd, router, pub := startBinaryBroker(b)
	nd := startBinaryNode(b, router, pub)
	bpid, npid := bd.cmd.Process.Pid, nd.cmd.Process.Pid
	c := dial(b, router)
	testutil.Eventually(b, 10*time.Second, func() bool { return len(nodesOf(b, c)) == 1 }, "the node connected")
	ctx := context.Background()
	const n = 10_000
	inputs := make([][2]int, n)
	want := 0
	for i := range inputs {
		inputs[i] = [2]int{i, 1}
		want += i + 1
	}
	self := os.Getpid()
	var tMap, tChord, bMap, bChord, nMap, nChord, cMap, cChord time.Duration
	b.ResetTimer()
	for range b.N {
		start, b0, n0, c0 := time.Now(), procCPU(bpid), procCPU(npid), procCPU(self)
		out, err := client.Map[int](ctx, c, "add", inputs)
		tMap += time.Since(start)
		bMap, nMap, cMap = bMap+procCPU(bpid)-b0, nMap+procCPU(npid)-n0, cMap+procCPU(self)-c0
		if err != nil || len(out) != n {
			b.Fatal(err)
		}
		start, b0, n0, c0 = time.Now(), procCPU(bpid), procCPU(npid), procCPU(self)
		sum, err := client.MapReduce[int](ctx, c, "add", inputs, "sum")
		tChord += time.Since(start)
		bChord, nChord, cChord = bChord+procCPU(bpid)-b0, nChord+procCPU(npid)-n0, cChord+procCPU(self)-c0
		if err != nil || sum != want {
			b.Fatalf("sum %d, %v; want %d", sum, err, want)
		}
	}
	tasks := float64(n * b.N)
	b.ReportMetric(tasks/tMap.Seconds(), "map-tasks/s")
	b.ReportMetric(tasks/tChord.Seconds(), "chord-tasks/s")
	b.ReportMetric(tMap.Seconds()/tChord.Seconds(), "chord/map")
	if bMap+bChord > 0 {
		us := func(d time.Duration) float64 { return float64(d.Microseconds()) / tasks }
		b.ReportMetric(us(bMap), "broker-us/map-task")
		b.ReportMetric(us(bChord), "broker-us/chord-task")
		b.ReportMetric(us(nMap), "node-us/map-task")
		b.ReportMetric(us(nChord), "node-us/chord-task")
		b.ReportMetric(us(cMap), "client-us/map-task")
		b.ReportMetric(us(cChord), "client-us/chord-task")
	}
}

// procCPU returns the CPU time (user and system) process pid has used, from /proc/PID/stat;
// 0 where there is no /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces) are space-separated; utime
	// and stime are the 14th and 15th fields of the line, in clock ticks of 1/100 s.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}
