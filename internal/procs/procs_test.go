package procs

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestStep: the policy on sequences of Periods, from one P. Two Periods in a row at Raise,
// with the machine's idle CPU at Spare (or not known), restore the default: one alone (a burst)
// does not, nor demand on a machine with no idle CPU. At the default a window of Hold whose mean
// demand is under Lower goes back to one P, and so does one in which the process used under a
// core while the machine had no idle CPU (the extra Ps got none); a Period at Raise restarts
// the window, and a window at or above Lower on a machine with idle CPU keeps the default.
func TestStep(t *testing.T) {
	p := Policy{Period: 10 * time.Millisecond, Raise: 1, RaiseAfter: 2, Lower: 0.5, Hold: 100 * time.Millisecond, Spare: 0.5}
	type period struct{ demand, use, idle float64 }
	at := func(demand float64, n int) []period { // idle unknown, use = demand
		out := make([]period, n)
		for i := range out {
			out[i] = period{demand, demand, -1}
		}
		return out
	}
	alt := func(a, b float64, n int) []period {
		out := make([]period, 0, 2*n)
		for range n {
			out = append(out, period{a, a, -1}, period{b, b, -1})
		}
		return out
	}
	busy := func(demand, use float64, n int) []period { // the machine has no idle CPU
		out := make([]period, n)
		for i := range out {
			out[i] = period{demand, use, 0.1}
		}
		return out
	}
	up := at(1.5, 2)
	then := slices.Concat[[]period]
	cases := []struct {
		name    string
		periods []period
		want    []int // the calls of set, in order (1: one P, 0: the default)
		one     bool  // on one P at the end
	}{
		{"idle", at(0.01, 50), nil, true},
		{"sequential calls", at(0.6, 50), nil, true},
		{"a burst", then(at(0.2, 3), at(3, 1), at(0.2, 3), at(3, 1), at(0.9, 3)), nil, true},
		{"load", then(at(0.2, 1), up), []int{0}, false},
		{"load with idle CPU", then([]period{{1.5, 0.9, 1.2}, {1.2, 0.9, 1.0}}), []int{0}, false},
		{"load on a machine without idle CPU", busy(1.8, 0.5, 30), nil, true},
		{"load that stays", then(up, at(0.9, 50)), []int{0}, false},
		{"load that ends", then(up, at(0.1, 12)), []int{0, 1}, true},
		{"mean over the window", then(up, alt(0.2, 0.7, 12)), []int{0, 1}, true},
		{"mean at Lower", then(up, alt(0.3, 0.7, 12)), []int{0}, false},
		{"the machine filled up", then(up, busy(0.9, 0.6, 12)), []int{0, 1}, true},
		{"the machine filled up, this process using it", then(up, busy(1.6, 1.5, 12)), []int{0}, false},
		{"a Period at Raise restarts the window", then(up, at(0.1, 8), at(1.2, 1), at(0.1, 8)), []int{0}, false},
		{"again", then(up, at(0.1, 12), up), []int{0, 1, 0}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			c := &controller{p: p, set: func(n int) { got = append(got, n) }}
			c.lower()
			got = got[:0]
			now := time.Unix(0, 0)
			for _, x := range tc.periods {
				now = now.Add(p.Period)
				c.step(x.demand, x.use, x.idle, false, now)
			}
			if !equal(got, tc.want) || c.one != tc.one {
				t.Errorf("set calls %v, one P %v; want %v, %v", got, c.one, tc.want, tc.one)
			}
		})
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRun: the loop on a CPU clock that runs at a given number of cores: it starts on one P,
// restores the default once the process uses two cores, and leaves the default when stopped.
func TestRun(t *testing.T) {
	var cores atomic.Int64 // thousandths of a core
	var mu sync.Mutex
	var cpu time.Duration
	last := time.Now()
	read := func() sample {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		cpu += now.Sub(last) * time.Duration(cores.Load()) / 1000
		last = now
		return sample{cpu: cpu}
	}
	var sets []int
	var setMu sync.Mutex
	set := func(n int) {
		setMu.Lock()
		sets = append(sets, n)
		setMu.Unlock()
	}
	calls := func() []int {
		setMu.Lock()
		defer setMu.Unlock()
		return append([]int(nil), sets...)
	}
	c := &controller{p: Policy{Period: time.Millisecond, Raise: 1, RaiseAfter: 2, Lower: 0.5, Hold: time.Hour}, set: set, read: read}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run(ctx)
	}()
	testutil.Eventually(t, 10*time.Second, func() bool { return len(calls()) == 1 }, "no start on one P: %v", calls())
	cores.Store(2000)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(calls()) == 2 }, "not raised: %v", calls())
	cancel()
	<-done
	if got := calls(); !equal(got, []int{1, 0}) {
		t.Errorf("set calls %v, want [1 0]", got)
	}
}

// TestEnabled: GOMAXPROCS in the environment turns the controller off, and Start then
// changes nothing.
func TestEnabled(t *testing.T) {
	t.Setenv("GOMAXPROCS", "3")
	if Enabled() {
		t.Fatal("enabled with GOMAXPROCS set")
	}
	before := runtime.GOMAXPROCS(0)
	stop := Start(context.Background(), Policy{}, nil)
	stop()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS %d after Start with GOMAXPROCS set, want %d", got, before)
	}
}

// TestWaitMeter: the estimate of the time spent runnable only grows, and grows while more
// goroutines are runnable than there are Ps.
func TestWaitMeter(t *testing.T) {
	w := newWaitMeter()
	first := w.total()
	if first < 0 {
		t.Fatalf("total %v < 0", first)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
	}
	ok := testutil.Poll(10*time.Second, func() bool { return w.total() > first })
	close(stop)
	wg.Wait()
	if !ok {
		t.Fatal("no runnable time measured with goroutines queued for the Ps")
	}
}

// TestStart: the controller puts the process on one P while it is idle, a second Start while
// it runs changes nothing, Max reports the default meanwhile, and stop leaves the default.
// The process's own environment does not decide what is tested: GOMAXPROCS is cleared and the
// runtime's default taken. Where the controller is off by design even so (one CPU, or no CPU
// clock on this OS), the assertion is that Start does nothing, as TestEnabled checks for
// GOMAXPROCS set.
func TestStart(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0)) // the value this test started with
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	if !Enabled() {
		Start(context.Background(), Policy{Period: time.Millisecond}, nil)()
		if Running() || runtime.GOMAXPROCS(0) != def {
			t.Fatalf("controller off: Running %v, GOMAXPROCS %d; want false, %d", Running(), runtime.GOMAXPROCS(0), def)
		}
		return
	}
	stop := Start(context.Background(), Policy{Period: time.Millisecond}, nil)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	testutil.Eventually(t, 10*time.Second, func() bool { return runtime.GOMAXPROCS(0) == 1 }, "not on one P: GOMAXPROCS %d", runtime.GOMAXPROCS(0))
	if !Running() || Max() != def {
		t.Errorf("Running %v, Max %d; want true, %d", Running(), Max(), def)
	}
	Start(context.Background(), Policy{}, nil)() // a second one: nothing
	if !Running() {
		t.Error("the second Start's stop stopped the first controller")
	}
	stop()
	stopped = true
	if got := runtime.GOMAXPROCS(0); got != def || Running() || Max() != def {
		t.Errorf("after stop: GOMAXPROCS %d, Running %v, Max %d; want %d, false, %d", got, Running(), Max(), def, def)
	}
}

// TestPin: on one P, a window of Hold with mean demand under PinUnder while the machine had
// Spare idle cores keeps the threads to one CPU; two Periods at PinLeave give the CPUs back
// (still on one P), and so do CrowdAfter crowded Periods in a row (the run-queue waits of
// processes sharing the CPU), after which the process stays off it for PinBackoff, doubled
// when the crowd comes back soon after the next pin; a raise gives them back first.
// Without idle CPU on the machine (the processes that would share the CPU are busy) nothing is
// pinned.
func TestPin(t *testing.T) {
	p := Policy{Period: 10 * time.Millisecond, Raise: 1, RaiseAfter: 2, Lower: 0.5, Hold: 100 * time.Millisecond,
		Spare: 0.5, PinUnder: 0.75, PinLeave: 0.9, CrowdAfter: 3, PinBackoff: 500 * time.Millisecond, PinBackoffMax: 4 * time.Second}
	type period struct {
		demand, idle float64
		crowded      bool
	}
	rep := func(demand, idle float64, n int) []period {
		out := make([]period, n)
		for i := range out {
			out[i] = period{demand, idle, false}
		}
		return out
	}
	crowd := func(n int) []period {
		out := make([]period, n)
		for i := range out {
			out[i] = period{0.3, 0.8, true}
		}
		return out
	}
	then := slices.Concat[[]period]
	cases := []struct {
		name    string
		periods []period
		want    string // the calls made, in order
		pinned  bool
	}{
		{"sequential calls on a machine with idle CPU", rep(0.6, 1.2, 12), "pin ", true},
		{"load on a busy machine", rep(0.6, 0.1, 30), "", false},
		{"no idle CPU known", rep(0.3, -1, 30), "", false},
		{"the shared CPU fills up", then(rep(0.6, 1.2, 12), rep(0.95, 0.2, 2)), "pin unpin ", false},
		{"a burst", then(rep(0.6, 1.2, 12), rep(0.95, 1.0, 1), rep(0.5, 1.0, 3)), "pin ", true},
		{"load", then(rep(0.6, 1.2, 12), rep(1.5, 1.0, 2)), "pin unpin default ", false},
		{"again after load", then(rep(0.6, 1.2, 12), rep(1.5, 1.0, 2), rep(0.1, 1.5, 12), rep(0.3, 1.5, 12)), "pin unpin default one pin ", true},
		{"crowded", then(rep(0.6, 1.2, 12), crowd(3)), "pin unpin ", false},
		{"crowded Periods not in a row", then(rep(0.6, 1.2, 12), crowd(2), rep(0.6, 1.2, 1), crowd(2)), "pin ", true},
		{"off for the back-off after a crowd", then(rep(0.6, 1.2, 12), crowd(3), rep(0.3, 1.5, 45)), "pin unpin ", false},
		{"back on after the back-off", then(rep(0.6, 1.2, 12), crowd(3), rep(0.3, 1.5, 62)), "pin unpin pin ", true},
		// Crowded again at once: off for 1 s (twice 500 ms), so not back within 900 ms.
		{"the back-off doubles", then(rep(0.6, 1.2, 12), crowd(3), rep(0.3, 1.5, 62), crowd(3), rep(0.3, 1.5, 90)), "pin unpin pin unpin ", false},
		{"and ends", then(rep(0.6, 1.2, 12), crowd(3), rep(0.3, 1.5, 62), crowd(3), rep(0.3, 1.5, 112)), "pin unpin pin unpin pin ", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got strings.Builder
			c := &controller{p: p.withDefaults(), canPin: true,
				set: func(n int) { got.WriteString(map[int]string{0: "default ", 1: "one "}[n]) },
				pin: func(on bool) { got.WriteString(map[bool]string{true: "pin ", false: "unpin "}[on]) }}
			c.lower()
			got.Reset()
			now := time.Unix(0, 0)
			for _, x := range tc.periods {
				now = now.Add(p.Period)
				c.step(x.demand, x.demand, x.idle, x.crowded, now)
			}
			if got.String() != tc.want || c.pinned != tc.pinned {
				t.Errorf("calls %q, pinned %v; want %q, %v", got.String(), c.pinned, tc.want, tc.pinned)
			}
		})
	}
}

// TestCrowded: a pinned Period is crowded when the threads waited CrowdWait of it on the run
// queue, CrowdRun per run on average: the short waits of a sequential call's hops are not, nor
// a first reading, nor sums that went down (a thread ended).
func TestCrowded(t *testing.T) {
	p := Policy{}.withDefaults()
	const el = float64(10 * time.Millisecond)
	r := func(waitUS, runs int64) runqSample {
		return runqSample{wait: time.Duration(waitUS) * time.Microsecond, runs: runs, ok: true}
	}
	cases := []struct {
		name      string
		pinned    bool
		last, cur runqSample
		want      bool
	}{
		{"processes sharing the CPU under load", true, r(1000, 100), r(4000, 112), true},
		{"a sequential call's hops", true, r(1000, 100), r(3000, 250), false},
		{"long waits but few", true, r(1000, 100), r(1500, 101), false},
		{"first reading", true, runqSample{}, r(4000, 112), false},
		{"a thread ended", true, r(9000, 300), r(4000, 112), false},
		{"not read", true, r(1000, 100), runqSample{}, false},
		{"not pinned", false, r(1000, 100), r(4000, 112), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &controller{p: p, pinned: tc.pinned, rq: tc.last, runq: func() runqSample { return tc.cur }}
			if got := c.crowded(el); got != tc.want {
				t.Errorf("crowded = %v, want %v", got, tc.want)
			}
			if !tc.pinned && c.rq.ok {
				t.Error("a reading kept while not pinned")
			}
		})
	}
}
