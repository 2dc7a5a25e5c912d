// Package procs runs a process with one P (runtime.GOMAXPROCS(1)) while its demand for CPU is
// well under one core, and gives it the runtime's default number of Ps back as soon as the
// demand nears one core.
//
// Why: a ZeroTask process serving one request at a time (a sequential call crosses the
// client, the broker and the node, each woken by one message and idle again after it) pays
// the Go scheduler's cross-thread wake-ups when it has more than one P. A goroutine made
// runnable while another P is idle wakes a second thread to look for work (runtime.wakep: a
// futex wake, a thread that spins and finds nothing, a futex sleep), and a spinning thread
// that finds work wakes the next one; on a small machine those threads take the CPU the other
// processes of the call are waiting for. With one P there is no idle P to wake: a message
// wakes the one thread waiting in the netpoller, and the goroutine hand-offs that follow stay
// on that thread.
//
// Demand is measured every Period as the cores the process used (getrusage) plus the mean
// number of goroutines that were runnable and waiting for a P (the runtime's
// /sched/latencies:seconds histogram, by Little's law): at one P a goroutine that waits is
// work a second P would have run. At one P, RaiseAfter Periods in a row whose demand reaches
// Raise restore the default (runtime.SetDefaultGOMAXPROCS, which also keeps the runtime's own
// updates of it from the process's cgroup CPU limit), provided the machine had Spare idle
// cores over the last tenth of a second (/proc/stat): where every CPU is busy, a goroutine
// waiting for a P is waiting for the machine, and a second thread would only take CPU from the
// other processes (on 2 vCPUs with a broker, four nodes and a client, every process raised
// itself and the nodes' CPU per task doubled). At the default, a window of Hold with no such
// Period goes back to one P when its mean demand is under Lower, or when the process used
// under one core while the machine had no idle CPU. Each change stops the world for some
// microseconds; the window makes changes rare.
//
// One CPU while lightly loaded: on Linux, a process on one P whose demand stays under PinUnder
// while the machine has idle CPU also keeps its threads to one CPU, the lowest it may use,
// the one every ZeroTask process on the machine picks (see stepOne for why and when it ends).
// The guard that ends it when the processes sharing that CPU want more than it gives is their
// threads' wait on the kernel's run queue (/proc/self/task/*/schedstat), long waits per run
// (see crowded); where that cannot be read nothing is pinned. A process this one starts must
// be started through StartProcess, or it would take the one CPU as all it may use.
//
// The controller does nothing when GOMAXPROCS is set in the environment (the operator chose),
// or when the runtime's default is one P already; Policy.NoPin keeps the Ps adaptive without
// the one CPU.
package procs

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// The policy's defaults.
const (
	// DefaultPeriod is how often the demand is sampled.
	DefaultPeriod = 10 * time.Millisecond
	// DefaultRaise is the demand, in cores, that RaiseAfter Periods in a row must reach for a
	// process on one P to get the default back: one P is then the bottleneck.
	DefaultRaise = 1.0
	// DefaultRaiseAfter is how many Periods in a row must reach Raise: more than one, so that
	// a burst shorter than a Period (a process's start, a collection) does not count.
	DefaultRaiseAfter = 2
	// DefaultLower is the mean demand over Hold under which a process goes back to one P:
	// what one P carries with room to spare.
	DefaultLower = 0.5
	// DefaultHold is the window over which the mean demand is taken before going back to one
	// P (and so the least time at the default after a raise).
	DefaultHold = time.Second
	// DefaultSpare is the machine's idle CPU, in cores over the last tenth of a second, that
	// a raise needs: a second P only helps where a second thread can run.
	DefaultSpare = 0.5
	// DefaultPinUnder is the mean demand over Hold under which a process on one P also keeps
	// to one CPU (while the machine has Spare idle cores): see the package doc.
	DefaultPinUnder = 0.75
	// DefaultPinLeave is the demand that RaiseAfter Periods in a row must reach for a process
	// kept to one CPU to get all its CPUs back (still on one P).
	DefaultPinLeave = 0.9
	// DefaultCrowdWait is the share of a Period that a pinned process's threads must wait on the
	// kernel's run queue, RaiseAfter Periods in a row, with waits of CrowdRun on average, for it
	// to get all its CPUs back: the processes sharing the CPU want more than it gives.
	DefaultCrowdWait = 0.2
	// DefaultCrowdRun is the mean wait per run that tells a crowded CPU from a sequential call:
	// the hops of a call wait for the tail of the previous one (12-17 us measured on a 2-vCPU
	// VM), processes sharing a CPU under load for each other's bursts (120-310 us).
	DefaultCrowdRun = 100 * time.Microsecond
	// DefaultCrowdAfter is how many crowded Periods in a row end the one CPU: more than a
	// process's start takes (several processes started at once crowd it for some Periods).
	DefaultCrowdAfter = 5
	// DefaultPinBackoff is how long a process that left the one CPU because it was crowded
	// stays off it at first; it doubles with each crowd that comes within PinBackoffMax of the
	// pin (a load that keeps coming back), up to PinBackoffMax.
	DefaultPinBackoff = time.Second
	// DefaultPinBackoffMax bounds that back-off.
	DefaultPinBackoffMax = 16 * time.Second
)

// Policy says when the controller changes the number of Ps; zero fields take the defaults.
type Policy struct {
	Period        time.Duration // sampling period
	Raise         float64       // demand of a Period, in cores, that counts toward restoring the default at one P
	RaiseAfter    int           // Periods in a row at Raise that restore it
	Lower         float64       // mean demand over Hold under which the default goes back to one P
	Hold          time.Duration // the window of the mean
	Spare         float64       // the machine's idle cores a raise needs
	PinUnder      float64       // mean demand over Hold under which one P also keeps to one CPU
	PinLeave      float64       // demand of RaiseAfter Periods that gives a pinned process its CPUs back
	CrowdWait     float64       // share of a Period spent on the run queue that counts toward leaving the one CPU
	CrowdRun      time.Duration // the mean wait per run it needs
	CrowdAfter    int           // crowded Periods in a row that end the one CPU
	PinBackoff    time.Duration // how long a process that left a crowded CPU stays off it, at first
	PinBackoffMax time.Duration // bounds the back-off, which doubles while crowds come soon after each pin
	NoPin         bool          // never keep to one CPU (the Ps still adapt)
}

func (p Policy) withDefaults() Policy {
	if p.Period <= 0 {
		p.Period = DefaultPeriod
	}
	if p.Raise <= 0 {
		p.Raise = DefaultRaise
	}
	if p.RaiseAfter <= 0 {
		p.RaiseAfter = DefaultRaiseAfter
	}
	if p.Lower <= 0 {
		p.Lower = DefaultLower
	}
	if p.Hold <= 0 {
		p.Hold = DefaultHold
	}
	if p.Spare <= 0 {
		p.Spare = DefaultSpare
	}
	if p.PinUnder <= 0 {
		p.PinUnder = DefaultPinUnder
	}
	if p.PinLeave <= 0 {
		p.PinLeave = DefaultPinLeave
	}
	if p.CrowdWait <= 0 {
		p.CrowdWait = DefaultCrowdWait
	}
	if p.CrowdRun <= 0 {
		p.CrowdRun = DefaultCrowdRun
	}
	if p.CrowdAfter <= 0 {
		p.CrowdAfter = DefaultCrowdAfter
	}
	if p.PinBackoff <= 0 {
		p.PinBackoff = DefaultPinBackoff
	}
	if p.PinBackoffMax < p.PinBackoff {
		p.PinBackoffMax = max(DefaultPinBackoffMax, p.PinBackoff)
	}
	return p
}

// Enabled reports whether Start runs the controller: GOMAXPROCS is not set in the
// environment, the runtime's default is more than one P, and the process's CPU time can be
// read here.
func Enabled() bool {
	return os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > 1 && cpuTimeOK
}

// Start runs the controller with policy p until ctx ends or the returned stop is called;
// stop waits for it to end and leaves the runtime's default in place. When Enabled is false
// it does nothing. log (nil: none) gets each change at debug level.
func Start(ctx context.Context, p Policy, log *slog.Logger) (stop func()) {
	if !Enabled() {
		return func() {}
	}
	mu.Lock()
	if active {
		mu.Unlock()
		return func() {} // one controller per process: the first one's policy holds
	}
	active, maxProcs = true, runtime.GOMAXPROCS(0)
	mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w := newWaitMeter()
	m := newMachineMeter()
	a := newAffinity()
	mu.Lock()
	aff = a
	mu.Unlock()
	rq := newRunqMeter()
	c := &controller{
		p:   p.withDefaults(),
		set: setProcs,
		pin: a.apply,
		// Keeping to one CPU needs the run-queue wait, the only sign that the processes
		// sharing it want more than it gives (their own demand counts only the CPU they got).
		canPin: a.ok && !p.NoPin && rq.read().ok,
		runq:   rq.read,
		read: func() sample {
			s := sample{cpu: cpuTime(), wait: w.total()}
			s.idle, s.total, s.machine = m.read()
			return s
		},
		log: log,
	}
	go func() {
		defer close(done)
		defer rq.close()
		defer func() {
			mu.Lock()
			active, aff = false, nil
			mu.Unlock()
		}()
		c.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Whether a controller runs in this process, and the Ps the runtime gave the process when it
// started.
var (
	mu       sync.Mutex
	active   bool
	maxProcs int
	aff      *affinity // the running controller's (nil: none)
)

// StartProcess runs start, which starts another process (exec.Cmd.Start), from a thread that
// has every CPU this process had before the controller kept it to one: the new process
// inherits its starter's CPUs, and a ZeroTask process started from a thread kept to one CPU
// would take that one CPU as all it may use, and never leave it under load.
func StartProcess(start func() error) error {
	mu.Lock()
	a := aff
	mu.Unlock()
	if a == nil {
		return start()
	}
	return a.withAll(start)
}

// Running reports whether a controller started by Start runs in this process.
func Running() bool {
	mu.Lock()
	defer mu.Unlock()
	return active
}

// Max returns the number of Ps the process runs with under load: the runtime's default as it
// was when the controller started, or GOMAXPROCS when none runs. What a process sizes its own
// parallelism by (not runtime.GOMAXPROCS(0), 1 while the controller keeps one P).
func Max() int {
	mu.Lock()
	defer mu.Unlock()
	if active {
		return maxProcs
	}
	return runtime.GOMAXPROCS(0)
}

// setProcs sets one P (n == 1), or the runtime's default (n == 0).
func setProcs(n int) {
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(n)
}

// sample is what the controller reads each Period: the process's CPU time and time spent
// runnable so far, and the machine's idle and total CPU time so far (/proc/stat, in ticks;
// machine false where it cannot be read).
type sample struct {
	cpu, wait   time.Duration
	idle, total uint64
	machine     bool
}

// idleWindow is how many Periods the machine's idle CPU is taken over: /proc/stat counts in
// ticks of 10 ms per CPU, so one Period is too coarse and ten give tenths of a core.
const idleWindow = 10

// controller is the sampling loop's state. set and read are the runtime's and the kernel's
// outside tests.
type controller struct {
	p      Policy
	set    func(n int)       // 1: one P; 0: the runtime's default
	read   func() sample     // the counters so far
	pin    func(on bool)     // keep every thread to one CPU, or give them all back
	canPin bool              // pin works here
	runq   func() runqSample // the threads' run-queue wait so far (read while pinned)
	rq     runqSample        // its last reading while pinned (ok false: none)
	crowd  int               // Periods in a row crowded, pinned
	// noPinUntil: after leaving a crowded CPU, not pinned again before then; backoff: the
	// current back-off (0: PinBackoff); pinnedAt: when the last pin began.
	noPinUntil, pinnedAt time.Time
	backoff              time.Duration
	log                  *slog.Logger // nil: none
	one                  bool         // running on one P
	pinned               bool         // kept to one CPU (on one P only)
	high                 int          // Periods in a row at Raise, on one P
	hot                  int          // Periods in a row at PinLeave, pinned
	// The window at the default: its start (zero: none yet), and its demand's, CPU use's and
	// idle machine's sums over n Periods.
	from               time.Time
	sum, used, idleSum float64
	n                  int
	ring               [idleWindow]sample // the last samples, for the machine's idle CPU
	rn                 int                // samples taken
	cpus               float64            // CPUs the machine's ticks are counted over
}

func (c *controller) run(ctx context.Context) {
	defer func() {
		c.unpin()
		if c.one {
			c.set(0)
		}
	}()
	t := time.NewTicker(c.p.Period)
	defer t.Stop()
	last := c.read()
	c.push(last)
	lastAt := time.Now()
	c.lower()
	if c.canPin {
		// A process starts idle: on one CPU at once (a quiet window would keep the first
		// second of a short run unpinned); its first busy Periods give the CPUs back.
		c.pinned, c.pinnedAt = true, lastAt
		c.pin(true)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := c.read()
		now := time.Now()
		el := float64(now.Sub(lastAt))
		crowded := c.crowded(el)
		if el > 0 {
			use := float64(cur.cpu-last.cpu) / el
			c.step(use+float64(cur.wait-last.wait)/el, use, c.push(cur), crowded, now)
		}
		last, lastAt = cur, now
	}
}

// runqSample is the run-queue wait of the process's threads and the times they were run, so
// far (runqMeter).
type runqSample struct {
	wait time.Duration
	runs int64
	ok   bool
}

// crowded reads the run-queue wait while pinned and reports whether the Period of el ns since
// the last reading was crowded: the threads waited CrowdWait of it, CrowdRun per run on average.
func (c *controller) crowded(el float64) bool {
	if !c.pinned {
		c.rq = runqSample{}
		return false
	}
	r := c.runq()
	last := c.rq
	c.rq = r
	if !r.ok || !last.ok || el <= 0 {
		return false
	}
	wait, runs := r.wait-last.wait, r.runs-last.runs
	if wait <= 0 || runs <= 0 { // a thread ended, or nothing ran
		return false
	}
	return float64(wait)/el >= c.p.CrowdWait && wait/time.Duration(runs) >= c.p.CrowdRun
}

// push records a sample and returns the machine's idle CPUs over the last idleWindow Periods
// (-1: not known).
func (c *controller) push(s sample) float64 {
	old := c.ring[c.rn%idleWindow]
	c.ring[c.rn%idleWindow] = s
	c.rn++
	if !s.machine || !old.machine || c.rn <= idleWindow || s.total <= old.total {
		return -1
	}
	if c.cpus == 0 {
		c.cpus = float64(runtime.NumCPU())
	}
	return c.cpus * float64(s.idle-old.idle) / float64(s.total-old.total)
}

// step takes one Period: demand is the cores used plus the goroutines that waited for a P,
// on average, use the cores used alone, idle the machine's idle CPUs lately (-1: not known).
//
// A second P is worth having only if it can run: with idle below half a core every thread the
// machine has is busy already (other processes', or this one's), and a goroutine that waited
// for a P waited for the machine, which another P would not change. So a raise needs idle
// CPU, and at the default a window in which the process used under one core while the
// machine had no idle CPU to give goes back to one P as a window of low demand does.
func (c *controller) step(demand, use, idle float64, crowded bool, now time.Time) {
	spare := idle < 0 || idle >= c.p.Spare
	if c.one {
		c.stepOne(demand, idle, spare, crowded, now)
		return
	}
	if demand >= c.p.Raise && spare {
		c.from, c.sum, c.used, c.idleSum, c.n = now, 0, 0, 0, 0 // one P would be raised again at once
		return
	}
	c.sum += demand
	c.used += use
	if idle < 0 {
		idle = c.p.Spare // not known: never the reason to go back
	}
	c.idleSum += idle
	c.n++
	if now.Sub(c.from) < c.p.Hold {
		return
	}
	n := float64(c.n)
	mean, used, idleMean := c.sum/n, c.used/n, c.idleSum/n
	c.from, c.sum, c.used, c.idleSum, c.n = now, 0, 0, 0, 0
	if mean < c.p.Lower || used < 1 && idleMean < c.p.Spare/2 {
		c.lower()
		if c.log != nil {
			c.log.Debug("procs: one P", "mean_demand", mean, "mean_cpu", used, "idle_cpus", idleMean)
		}
	}
}

// stepOne is step on one P: the raise, and keeping to one CPU.
//
// One CPU: a process on one P whose demand stayed under PinUnder for Hold, while the machine
// had idle CPU, keeps all its threads to the lowest CPU it may use, the same one every
// ZeroTask process on the machine picks. A sequential call then crosses the client, the broker
// and the node on one CPU: each hop wakes a thread on the CPU that is about to go idle, not a
// thread on another CPU, which on a VM means waking a halted vCPU (an IPI and a VM entry), the
// largest part of a hop once the goroutine hand-offs were gone (docs/perf.md). It ends, before
// any raise, when RaiseAfter Periods in a row reach PinLeave (the process alone wants the
// CPU), or are crowded (see crowded): the processes sharing the CPU want more than it gives,
// which their own demand does not show, since it counts only the CPU they got. A process
// that left a crowded CPU stays off it for PinBackoff, twice that if the crowd came within
// PinBackoffMax of the pin, and so on up to PinBackoffMax.
func (c *controller) stepOne(demand, idle float64, spare, crowded bool, now time.Time) {
	if demand >= c.p.Raise && spare {
		c.high++
	} else {
		c.high = 0
	}
	if c.high >= c.p.RaiseAfter {
		c.unpin()
		c.one, c.high = false, 0
		c.window(now)
		c.set(0)
		if c.log != nil {
			c.log.Debug("procs: the runtime's default", "demand", demand, "idle_cpus", idle, "gomaxprocs", runtime.GOMAXPROCS(0))
		}
		return
	}
	if c.pinned {
		if demand >= c.p.PinLeave {
			c.hot++
		} else {
			c.hot = 0
		}
		if crowded {
			c.crowd++
		} else {
			c.crowd = 0
		}
		crowded := c.crowd >= c.p.CrowdAfter
		if c.hot >= c.p.RaiseAfter || crowded {
			if crowded {
				switch {
				case c.backoff == 0 || now.Sub(c.pinnedAt) >= c.p.PinBackoffMax:
					c.backoff = c.p.PinBackoff
				default:
					c.backoff = min(2*c.backoff, c.p.PinBackoffMax)
				}
				c.noPinUntil = now.Add(c.backoff)
			}
			if c.log != nil {
				c.log.Debug("procs: all CPUs", "demand", demand, "crowded", crowded, "off_for", c.backoff)
			}
			c.unpin()
			c.window(now)
		}
		return
	}
	if !c.canPin || now.Before(c.noPinUntil) {
		return
	}
	if c.from.IsZero() {
		c.window(now)
	}
	if idle < 0 {
		idle = 0 // not known: never pin
	}
	c.sum += demand
	c.idleSum += idle
	c.n++
	if now.Sub(c.from) < c.p.Hold {
		return
	}
	n := float64(c.n)
	mean, idleMean := c.sum/n, c.idleSum/n
	c.window(now)
	if mean < c.p.PinUnder && idleMean >= c.p.Spare {
		c.pinned, c.hot, c.crowd, c.pinnedAt = true, 0, 0, now
		c.pin(true)
		if c.log != nil {
			c.log.Debug("procs: one CPU", "mean_demand", mean, "idle_cpus", idleMean)
		}
	}
}

// window starts a new window at now.
func (c *controller) window(now time.Time) {
	c.from, c.sum, c.used, c.idleSum, c.n = now, 0, 0, 0, 0
}

// unpin gives the threads all their CPUs back if they were kept to one.
func (c *controller) unpin() {
	if c.pinned {
		c.pinned, c.hot, c.crowd = false, 0, 0
		c.pin(false)
	}
}

// lower goes to one P (on all CPUs: one CPU comes after a quiet window there).
func (c *controller) lower() {
	c.one, c.high = true, 0
	c.from = time.Time{}
	c.set(1)
}

// waitMetric is the runtime's histogram of the time goroutines spent runnable before running.
const waitMetric = "/sched/latencies:seconds"

// trackingPeriod is that histogram's sampling: the runtime records one transition of a
// goroutine in 8 (runtime.gTrackingPeriod), so the recorded waits add up to an eighth.
const trackingPeriod = 8

// waitMeter estimates the total time goroutines spent runnable and not running (waiting for
// a P) from the runtime's histogram: each bucket's new count times the bucket's middle, times
// the sampling. Divided by a Period, its growth is the mean number of goroutines that waited.
type waitMeter struct {
	s    []metrics.Sample
	prev []uint64
	sum  float64 // seconds so far
}

func newWaitMeter() *waitMeter {
	return &waitMeter{s: []metrics.Sample{{Name: waitMetric}}}
}

// total returns the estimated time spent runnable so far.
func (w *waitMeter) total() time.Duration {
	metrics.Read(w.s)
	if w.s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := w.s[0].Value.Float64Histogram()
	if len(w.prev) != len(h.Counts) {
		w.prev = make([]uint64, len(h.Counts))
	}
	for i, n := range h.Counts {
		d := n - w.prev[i]
		if d == 0 {
			continue
		}
		w.prev[i] = n
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		if math.IsInf(hi, 1) {
			hi = lo
		}
		w.sum += float64(d) * (lo + hi) / 2 * trackingPeriod
	}
	return time.Duration(w.sum * float64(time.Second))
}
