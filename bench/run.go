package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/procs"
	"github.com/zerotask/zerotask/protocol"
)

// Defaults of Load and Config.
const (
	DefaultMethod      = "add"
	DefaultDuration    = 3 * time.Second // per phase: three phases finish in about 10 s
	DefaultConcurrency = 1024            // async calls in flight
	DefaultTimeout     = 10 * time.Second
	DefaultNotifyAhead = 100_000 // notifications sent and not yet completed, at most
	DefaultMapChunk    = 4       // Map inputs per call, in multiples of the sender's in-flight share
	// DefaultProbeEvery is how often the async phase's latency probe calls, with PipelineMap.
	DefaultProbeEvery = time.Millisecond
)

// notifyPoll is how often the notify phase asks the broker for its completions
// (broker.stats): often enough that the window of DefaultNotifyAhead never runs dry at millions
// of tasks a second (100,000 tasks last 50 ms or more there), seldom enough that the polls of
// several client processes cost the broker little (each is a request it answers with every
// counter, and a wake-up of the client's poller).
const notifyPoll = 5 * time.Millisecond

// notifyClockEvery is how many notifications a sender sends between readings of the clock for
// the phase's end: a few hundred microseconds at most.
const notifyClockEvery = 64

// How the async phase keeps its calls in flight (Load.Pipeline).
const (
	// PipelineMap: Senders goroutines each call client.Map back to back, over inputs of
	// DefaultMapChunk times its share of Concurrency, with MapConcurrency its share. This is
	// how a Go program runs many tasks: requests leave in batches as results come back. Map
	// times no single task: the phase's latency is that of a probe, one CallRaw every
	// DefaultProbeEvery through the same client while the pipeline runs (what a call waits
	// behind that load); probes are not counted in the phase's tasks.
	PipelineMap = "map"
	// PipelineCalls: Concurrency goroutines each calling CallRaw back to back, each call timed:
	// the latency of each task under load, at the cost of one goroutine hand-off per task.
	PipelineCalls = "calls"
)

// DefaultParams returns the params the built-in tasks take in a benchmark: [5,6] for add and
// subtract, ["x"] for echo, [1] (one millisecond) for sleep, and nothing for anything else.
func DefaultParams(method string) []byte {
	switch method {
	case "add", "subtract":
		return []byte("[5,6]")
	case "echo":
		return []byte(`["x"]`)
	case "sleep":
		return []byte("[1]")
	}
	return nil
}

// Load is what one phase sends.
type Load struct {
	// Method and Params make each task (default DefaultMethod with DefaultParams(Method)).
	Method string
	Params []byte
	// Tasks bounds the phase by count and Duration by time; whichever comes first ends it.
	// Both zero means DefaultDuration.
	Tasks    int64
	Duration time.Duration
	// Concurrency is how many calls the async phase keeps in flight (default
	// DefaultConcurrency).
	Concurrency int
	// Pipeline is how the async phase keeps them in flight: PipelineMap (the default) or
	// PipelineCalls.
	Pipeline string
	// Senders is how many goroutines send notifications in the notify phase, and call Map in
	// the async phase with PipelineMap (default procs.Max(): the process's Ps under load; at most Concurrency for Map).
	Senders int
	// Timeout bounds the wait for replies past Duration (default DefaultTimeout): a call still
	// unanswered then counts as an error.
	Timeout time.Duration
	// NotifyAhead bounds the notifications sent and not yet completed (default
	// DefaultNotifyAhead), so that the broker's queue limit is never hit.
	NotifyAhead int64
	// NotifyShare is how many client processes run the notify phase against the broker at
	// once (default 1; Config.Clients sets it for the processes it starts). The completions a
	// client sees are the broker's, everyone's, so its own sends against them bound nothing
	// when others send too (four clients that did so drove a broker past its queue limit:
	// 1.47 million of 2.5 million notifications refused, the broker's CPU spent refusing
	// them). With more than one, a client stops while the tasks the broker holds unfinished
	// (queued and running, from broker.stats) plus its sends since that count, times
	// NotifyShare, reach NotifyAhead: together the clients keep the broker within it.
	NotifyShare int
	// Progress, when set, draws a bar while the phase runs.
	Progress *Progress
}

func (l Load) withDefaults() Load {
	if l.Method == "" {
		l.Method = DefaultMethod
	}
	if l.Params == nil {
		l.Params = DefaultParams(l.Method)
	}
	if l.Tasks <= 0 && l.Duration <= 0 {
		l.Duration = DefaultDuration
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.NotifyAhead <= 0 {
		l.NotifyAhead = DefaultNotifyAhead
	}
	if l.NotifyShare <= 0 {
		l.NotifyShare = 1
	}
	if l.Pipeline == "" {
		l.Pipeline = PipelineMap
	}
	if l.Senders <= 0 {
		l.Senders = procs.Max()
	}
	return l
}

// budget ends a phase: a task count (claimed atomically, so exactly Tasks are sent) and/or a
// deadline.
type budget struct {
	tasks    int64
	claimed  atomic.Int64
	deadline time.Time // zero: none
}

func newBudget(l Load, start time.Time) *budget {
	b := &budget{tasks: l.Tasks}
	if l.Duration > 0 {
		b.deadline = start.Add(l.Duration)
	}
	return b
}

// next reports whether one more task may be sent at time now.
func (b *budget) next(now time.Time) bool {
	return b.take(now, 1) == 1
}

// take claims up to n tasks at time now and returns how many may be sent (0: the phase is
// over).
func (b *budget) take(now time.Time, n int) int {
	if !b.deadline.IsZero() && !now.Before(b.deadline) {
		return 0
	}
	if b.tasks <= 0 {
		return n
	}
	end := b.claimed.Add(int64(n))
	if over := end - b.tasks; over > 0 {
		return max(0, n-int(over))
	}
	return n
}

// phaseCtx bounds a whole phase: a time-bounded phase ends at its duration plus the reply
// timeout; a count-bounded one only when ctx does.
func phaseCtx(ctx context.Context, l Load) (context.Context, context.CancelFunc) {
	if l.Duration > 0 {
		return context.WithTimeout(ctx, l.Duration+l.Timeout)
	}
	return context.WithCancel(ctx)
}

// Sync runs sequential round trips: one call in flight, each one's latency recorded.
func (e *Env) Sync(ctx context.Context, l Load) (PhaseResult, error) {
	l = l.withDefaults()
	l.Concurrency = 1
	return e.calls(ctx, PhaseSync, l)
}

// Async keeps l.Concurrency calls in flight, the way l.Pipeline says: client.Map from
// l.Senders goroutines (PipelineMap, the default), or one goroutine per call in flight
// (PipelineCalls).
func (e *Env) Async(ctx context.Context, l Load) (PhaseResult, error) {
	l = l.withDefaults()
	if l.Concurrency <= 0 {
		l.Concurrency = DefaultConcurrency
	}
	switch l.Pipeline {
	case PipelineMap:
		return e.mapped(ctx, l)
	case PipelineCalls:
		res, err := e.calls(ctx, PhaseAsync, l)
		res.Pipeline = PipelineCalls
		return res, err
	}
	return PhaseResult{}, fmt.Errorf("%w %q (want %s or %s)", ErrUnknownPipeline, l.Pipeline, PipelineMap, PipelineCalls)
}

// mapped runs the async phase with client.Map: l.Senders goroutines (at most l.Concurrency),
// each with its share of l.Concurrency in flight, calling Map back to back over
// DefaultMapChunk times that share of inputs until the budget is spent.
func (e *Env) mapped(ctx context.Context, l Load) (PhaseResult, error) {
	ctx, cancel := phaseCtx(ctx, l)
	defer cancel()
	senders := min(l.Senders, l.Concurrency)
	param := json.RawMessage(l.Params)
	var done atomic.Int64
	start := time.Now()
	bud := newBudget(l, start)
	l.Progress.Begin(PhaseAsync, l.Tasks, l.Duration, done.Load)
	defer l.Progress.End()

	ss := make([]*tally, senders)
	var wg sync.WaitGroup
	for i := range ss {
		s := new(tally)
		ss[i] = s
		share := l.Concurrency / senders
		if i < l.Concurrency%senders {
			share++
		}
		chunk := make([]any, DefaultMapChunk*share)
		for j := range chunk {
			chunk[j] = param // the same raw params: Map sends json.RawMessage as is
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := bud.take(time.Now(), len(chunk))
				if n == 0 {
					return
				}
				res, err := client.Map[json.RawMessage](ctx, e.Client, l.Method, chunk[:n], client.MapConcurrency(share))
				now := time.Now()
				if err != nil {
					// Map stops at the first failure: count the whole call as failed.
					s.fail(int64(n), err)
					if ctx.Err() != nil {
						return
					}
				} else {
					s.ok += int64(len(res))
				}
				s.last = now
				done.Add(int64(n))
			}
		}()
	}
	probeDone := make(chan struct{})
	hist := new(Histogram)
	var probeErrs int64
	go func() {
		defer close(probeDone)
		probeErrs = e.probe(ctx, l, hist, &wg)
	}()
	wg.Wait()
	<-probeDone

	res := PhaseResult{Name: PhaseAsync, Concurrency: l.Concurrency, Pipeline: PipelineMap, Senders: senders,
		Hist: hist, Latency: hist.Summary(), Errors: probeErrs}
	firstErr := res.sum(start, ss)
	if res.Tasks == 0 && firstErr != nil {
		return res, fmt.Errorf("bench: %s: every call failed: %w", PhaseAsync, firstErr)
	}
	return res, nil
}

// calls runs l.Concurrency call loops until the budget is spent and merges their histograms.
func (e *Env) calls(ctx context.Context, name string, l Load) (PhaseResult, error) {
	ctx, cancel := phaseCtx(ctx, l)
	defer cancel()
	var done atomic.Int64 // for the progress bar (one uncontended-enough add per call: ~1% of a call)
	start := time.Now()
	bud := newBudget(l, start)
	l.Progress.Begin(name, l.Tasks, l.Duration, done.Load)
	defer l.Progress.End()

	type worker struct {
		tally
		h Histogram
	}
	ws := make([]*worker, l.Concurrency)
	var wg sync.WaitGroup
	for i := range ws {
		w := new(worker)
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []byte // reused: the raw path needs no allocation of ours per call
			t0 := time.Now()
			for bud.next(t0) {
				var err error
				dst, err = e.Client.CallRaw(ctx, dst[:0], l.Method, l.Params)
				t1 := time.Now()
				if err != nil {
					w.fail(1, err)
					if ctx.Err() != nil {
						break
					}
				} else {
					w.ok++
					w.h.Record(t1.Sub(t0))
				}
				w.last = t1
				done.Add(1)
				t0 = t1
			}
		}()
	}
	wg.Wait()

	res := PhaseResult{Name: name, Concurrency: l.Concurrency, Hist: new(Histogram)}
	ts := make([]*tally, len(ws))
	for i, w := range ws {
		res.Hist.Merge(&w.h)
		ts[i] = &w.tally
	}
	firstErr := res.sum(start, ts)
	res.Latency = res.Hist.Summary()
	if res.Tasks == 0 && firstErr != nil {
		return res, fmt.Errorf("bench: %s: every call failed: %w", name, firstErr)
	}
	return res, nil
}

// probe times one CallRaw every DefaultProbeEvery into h until the senders of wg are done
// (at least one, so that a short phase has a latency too). It returns how many probes failed
// for another reason than the phase's end.
func (e *Env) probe(ctx context.Context, l Load, h *Histogram, wg *sync.WaitGroup) int64 {
	over := make(chan struct{})
	go func() { wg.Wait(); close(over) }()
	t := time.NewTicker(DefaultProbeEvery)
	defer t.Stop()
	var dst []byte
	var errs int64
	for {
		t0 := time.Now()
		var err error
		dst, err = e.Client.CallRaw(ctx, dst[:0], l.Method, l.Params)
		switch {
		case err == nil:
			h.Record(time.Since(t0))
		case ctx.Err() == nil:
			errs++
		}
		select {
		case <-over:
			return errs
		case <-ctx.Done():
			<-over
			return errs
		case <-t.C:
		}
	}
}

// Notify sends notifications from l.Senders goroutines (default procs.Max()), never more than
// l.NotifyAhead ahead of the nodes, and measures how fast the nodes complete them. Elapsed runs
// from the first send to the moment the last one is seen completed; the result's Concurrency is
// the NotifyAhead bound (what may be in flight).
func (e *Env) Notify(ctx context.Context, l Load) (PhaseResult, error) {
	l = l.withDefaults()
	ctx, cancel := phaseCtx(ctx, l)
	defer cancel()
	args, err := notifyArgs(l.Params)
	if err != nil {
		return PhaseResult{}, err
	}
	base, baseFailed, held, err := e.progress(ctx)
	if err != nil {
		return PhaseResult{}, err
	}
	var (
		sent      atomic.Int64
		completed atomic.Int64 // completed tasks (done + failed) since base, as last polled
		// The broker's unfinished tasks at the last poll and the sends counted then (shared
		// window, NotifyShare > 1).
		outstanding, sentAtPoll atomic.Int64
		sendErrs                atomic.Int64
		firstErr                error
		errOnce                 sync.Once
	)
	start := time.Now()
	bud := newBudget(l, start)
	l.Progress.Begin(PhaseNotify, l.Tasks, l.Duration, completed.Load)
	defer l.Progress.End()

	// The poller refreshes completed so that senders stay at most NotifyAhead ahead.
	pollDone := make(chan struct{})
	var pollErr error
	var finalDone, finalFailed int64
	var finished time.Time
	sendersDone := make(chan struct{})
	go func(sendersDone <-chan struct{}) {
		defer close(pollDone)
		t := time.NewTicker(notifyPoll)
		defer t.Stop()
		sendersOver := false
		for {
			n := sent.Load()
			d, f, out, err := e.progress(ctx)
			if err != nil {
				pollErr = err
				return
			}
			completed.Store(d + f - base - baseFailed)
			outstanding.Store(out)
			sentAtPoll.Store(n)
			if sendersOver && completed.Load() >= sent.Load() {
				finalDone, finalFailed, finished = d-base, f-baseFailed, time.Now()
				return
			}
			select {
			case <-ctx.Done():
				finalDone, finalFailed, finished = d-base, f-baseFailed, time.Now()
				return
			case <-sendersDone:
				sendersOver = true
				sendersDone = nil
			case <-t.C:
			}
		}
	}(sendersDone)

	outstanding.Store(held)
	shared := l.NotifyShare > 1 && held >= 0
	full := func() bool {
		if shared {
			return outstanding.Load()+(sent.Load()-sentAtPoll.Load())*int64(l.NotifyShare) >= l.NotifyAhead
		}
		return sent.Load()-completed.Load() >= l.NotifyAhead
	}
	var wg sync.WaitGroup
	for range l.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The clock is read once per notifyClockEvery tasks: per task it cost the
			// load generator more than the Notify it times.
			var now time.Time
			for k := 0; ; k++ {
				if k%notifyClockEvery == 0 {
					now = time.Now()
				}
				if !bud.next(now) {
					break
				}
				for full() {
					if !bud.deadline.IsZero() && !time.Now().Before(bud.deadline) {
						return // the phase is over while the window is full
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(200 * time.Microsecond): // window full: wait for the nodes
					}
				}
				if err := e.Client.Notify(ctx, l.Method, args...); err != nil {
					sendErrs.Add(1)
					errOnce.Do(func() { firstErr = err })
					if ctx.Err() != nil {
						return
					}
					continue
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	close(sendersDone)
	<-pollDone
	if pollErr != nil {
		return PhaseResult{}, pollErr
	}
	res := PhaseResult{
		Name:        PhaseNotify,
		Tasks:       finalDone,
		Errors:      finalFailed + sendErrs.Load() + max(0, sent.Load()-finalDone-finalFailed),
		Elapsed:     finished.Sub(start),
		Concurrency: int(l.NotifyAhead),
	}
	if res.Tasks == 0 && firstErr != nil {
		return res, fmt.Errorf("bench: notify: every send failed: %w", firstErr)
	}
	return res, nil
}

// notifyArgs turns raw params into Notify's variadic args: the members of a JSON array, each
// passed through untouched as a json.RawMessage. Object params cannot be expressed as args.
func notifyArgs(params []byte) ([]any, error) {
	if len(params) == 0 {
		return nil, nil
	}
	var members []json.RawMessage
	if err := json.Unmarshal(params, &members); err != nil {
		return nil, fmt.Errorf("bench: notify params must be a JSON array: %w", err)
	}
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	return args, nil
}

// Config configures Run: where to run (EnvConfig), what to send (Load) and which phases.
type Config struct {
	EnvConfig
	Load
	// Phases lists the phases to run, in order (default PhaseSync, PhaseAsync, PhaseNotify).
	Phases []string
	// InFlight lists the in-flight levels of the async phase: it runs once per level, in
	// order, each a row of the report (default: Load.Concurrency alone).
	InFlight []int
	// Clients is how many client processes run the phases at once (default 1: this process).
	// With more, this process starts them from Binary (`zerotask bench --broker EP --json`) and
	// merges their reports (see Report.Clients).
	Clients int
	// Warmup is how many sync calls run before measuring (default 1,000; negative: none), so
	// that connections, pools and the scheduler are warm.
	Warmup int
	// CPUProfile, when set, receives a pprof CPU profile of the measured phases (the warm-up
	// excluded): the whole process, so client, broker and nodes when they run in-process. Run
	// with one phase (Phases) to see one kind of load alone.
	CPUProfile io.Writer
	// MemProfile, when set, receives the pprof allocation profile ("allocs": every sampled
	// allocation since the process started, with space and counts) after the phases.
	MemProfile io.Writer
}

// Run starts an Env as cfg says, runs the phases and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	phases := cfg.Phases
	if len(phases) == 0 {
		phases = []string{PhaseSync, PhaseAsync, PhaseNotify}
	}
	for _, p := range phases {
		switch p {
		case PhaseSync, PhaseAsync, PhaseNotify:
		default:
			return nil, fmt.Errorf("%w %q (want %s, %s or %s)", ErrUnknownPhase, p, PhaseSync, PhaseAsync, PhaseNotify)
		}
	}
	l := cfg.Load.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	env, err := NewEnv(ctx, cfg.EnvConfig)
	if err != nil {
		return nil, err
	}
	rep := NewReport()
	rep.Method, rep.Params = l.Method, string(l.Params)
	rep.Broker, rep.Topology = env.Endpoint, env.Topology
	switch env.Topology {
	case TopologyInProcess:
		rep.Broker = "in-process"
		rep.Nodes, rep.NodeConcurrency, rep.NodePrefetch = len(env.Nodes), env.NodeConcurrency, env.NodePrefetch
	case TopologyProcesses:
		rep.Nodes, rep.NodeConcurrency, rep.NodePrefetch = env.wantNodes, env.NodeConcurrency, env.NodePrefetch
	}
	// Each phase's CPU time, by role (the children's and this process's).
	measured := func(f func() (PhaseResult, error)) (PhaseResult, error) {
		before := env.sampleCPU()
		res, err := f()
		res.CPU = env.sampleCPU().since(before)
		return res, err
	}
	runErr := func() error {
		if cfg.Clients > 1 {
			if err := env.waitServed(ctx, l.Method, l.Timeout); err != nil {
				return err
			}
			return runClients(ctx, cfg, env, rep, phases, l)
		}
		if env.Topology == TopologyExternal {
			if err := env.checkServed(ctx, l.Method, l.Timeout); err != nil {
				return err
			}
		}
		if warm := cfg.Warmup; warm >= 0 {
			if warm == 0 {
				warm = 1_000
			}
			w := l
			w.Tasks, w.Duration, w.Progress = int64(warm), 0, nil
			wctx, cancel := context.WithTimeout(ctx, l.Timeout)
			_, err := env.Sync(wctx, w)
			cancel()
			if err != nil {
				return fmt.Errorf("bench: warm-up: %w", err)
			}
		}
		if cfg.CPUProfile != nil {
			if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
				return fmt.Errorf("bench: CPU profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		if cfg.MemProfile != nil {
			defer func() {
				if err := pprof.Lookup("allocs").WriteTo(cfg.MemProfile, 0); err != nil {
					log.Error("bench: allocation profile", "err", err)
				}
			}()
		}
		for _, p := range phases {
			log.Info("bench phase", "phase", p)
			var res PhaseResult
			var err error
			switch p {
			case PhaseSync:
				res, err = measured(func() (PhaseResult, error) { return env.Sync(ctx, l) })
			case PhaseAsync:
				levels := cfg.InFlight
				if len(levels) == 0 {
					levels = []int{l.Concurrency}
				}
				for i, c := range levels {
					la := l
					la.Concurrency = c
					if res, err = measured(func() (PhaseResult, error) { return env.Async(ctx, la) }); err != nil || i == len(levels)-1 {
						break
					}
					rep.Phases = append(rep.Phases, res)
				}
			case PhaseNotify:
				res, err = measured(func() (PhaseResult, error) { return env.Notify(ctx, l) })
			}
			if err != nil {
				return err
			}
			rep.Phases = append(rep.Phases, res)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	}()
	rep.Procs = env.Procs() // peak memory, read before the children stop
	if cfg.Clients > 1 {
		rep.Procs = rep.Procs[:len(rep.Procs)-1] // this process did not run the load: the clients did
	}
	closeErr := env.Close()
	if runErr != nil {
		return rep, runErr
	}
	if closeErr != nil {
		return rep, fmt.Errorf("bench: stopping: %w", closeErr)
	}
	return rep, nil
}

// Errors of Run.
var (
	// ErrUnknownPhase reports a phase name Run does not know.
	ErrUnknownPhase = errors.New("bench: unknown phase")
	// ErrUnknownPipeline reports a Load.Pipeline the async phase does not know.
	ErrUnknownPipeline = errors.New("bench: unknown pipeline")
	// ErrNotServed reports that no node connected to the external broker serves the method:
	// every call would wait in its queue until the timeout.
	ErrNotServed = errors.New("bench: no connected node serves the method")
)

// waitServed waits (up to timeout) until a node connected to the broker serves method.
func (e *Env) waitServed(ctx context.Context, method string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := e.checkServed(ctx, method, timeout)
		if err == nil || !errors.Is(err, ErrNotServed) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// checkServed asks an external broker (broker.nodes) whether a connected node serves method.
func (e *Env) checkServed(ctx context.Context, method string, timeout time.Duration) error {
	if protocol.IsBrokerMethod(method) { // the broker's own tasks need no node
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := e.Client.CallRaw(ctx, nil, protocol.MethodNodes, nil)
	if err != nil {
		return fmt.Errorf("bench: broker.nodes: %w", err)
	}
	var nodes []struct {
		Methods []string `json:"methods"`
	}
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return fmt.Errorf("bench: broker.nodes answer %.200s: %w", raw, err)
	}
	for _, n := range nodes {
		if slices.Contains(n.Methods, method) {
			return nil
		}
	}
	return fmt.Errorf("%w %q at %s (%d node(s) connected)", ErrNotServed, method, e.Endpoint, len(nodes))
}

// tally counts what one load goroutine of a phase saw.
type tally struct {
	ok, errs int64
	last     time.Time // when its last call ended
	first    error     // its first error
}

// fail counts n failed tasks.
func (t *tally) fail(n int64, err error) {
	t.errs += n
	if t.first == nil {
		t.first = err
	}
}

// sum adds the tallies' counts to res, sets its Elapsed from start to the last call's end,
// and returns the first error of the first tally that had one.
func (res *PhaseResult) sum(start time.Time, ts []*tally) error {
	var firstErr error
	end := start
	for _, t := range ts {
		res.Tasks += t.ok
		res.Errors += t.errs
		if t.last.After(end) {
			end = t.last
		}
		if firstErr == nil && t.first != nil {
			firstErr = t.first
		}
	}
	res.Elapsed = end.Sub(start)
	return firstErr
}
