// Command asynqpeer measures asynq (github.com/hibiken/asynq v0.26.0) doing the same trivial task
// the same three ways as `zerotask bench`, so that the two can be compared in one run:
//
//   - sync: one task at a time, enqueue -> completed -> result read back (round-trip latency);
//   - with_results: -inflight tasks in flight, each result read back (tasks/s and latency);
//   - fire_and_forget: enqueue without keeping results, counted as the worker completes them.
//
// The task is `add` over a JSON payload [a, b]. An asynq server (the worker, -concurrency
// goroutines) and the client run in this one process against the Redis at -redis, like
// `zerotask bench` runs its broker and nodes in-process.
//
// Results come back the way an asynq user reads them: the handler writes the sum with the task's
// ResultWriter, the client enqueues with a Retention so the completed task (and its result) is
// kept, and polls Inspector.GetTaskInfo every -poll until the task is completed. asynq has no
// push notification of completion, and its worker, when it finds its queues empty, sleeps for
// TaskCheckInterval/2 + rand(TaskCheckInterval) (default 1 s) before it looks again: that sleep,
// not Redis, is what a single round trip costs. -task-check-interval changes it.
//
// Each phase prints one JSON line on stdout; logs go to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

// asynqVersion is the pinned version in go.mod, printed with every line.
const asynqVersion = "v0.26.0"

// Task type names: both compute a + b; only "add" writes its result.
const (
	typeAdd       = "add"
	typeAddNotify = "add.notify"
)

// config holds the command-line flags.
type config struct {
	redis        string
	db           int
	queue        string
	concurrency  int
	modes        string
	syncN        int
	resultsN     int
	notifyN      int
	duration     time.Duration
	syncDuration time.Duration
	inflight     int
	enqueuers    int
	poll         time.Duration
	checkEvery   time.Duration
	retention    time.Duration
	drainTimeout time.Duration
}

// line is one phase's figures, printed as one JSON line.
type line struct {
	System            string  `json:"system"`
	Version           string  `json:"version"`
	Mode              string  `json:"mode"`
	Tasks             int64   `json:"tasks"`
	Errors            int64   `json:"errors"`
	ElapsedS          float64 `json:"elapsed_s"`
	TasksPerS         float64 `json:"tasks_per_s"`
	InFlight          int     `json:"in_flight"`
	WorkerConcurrency int     `json:"worker_concurrency"`
	P50us             float64 `json:"p50_us"`
	P90us             float64 `json:"p90_us"`
	P99us             float64 `json:"p99_us"`
	MaxUs             float64 `json:"max_us"`
	MeanUs            float64 `json:"mean_us"`
	ResultsVia        string  `json:"results_via,omitempty"`
	TaskCheckMs       float64 `json:"task_check_interval_ms"`
	Note              string  `json:"note,omitempty"`
}

func main() {
	var c config
	flag.StringVar(&c.redis, "redis", "127.0.0.1:6379", "Redis address (host:port)")
	flag.IntVar(&c.db, "db", 0, "Redis database number")
	flag.StringVar(&c.queue, "queue", fmt.Sprintf("zerotask-bench-%d", os.Getpid()), "asynq queue name (deleted at the end)")
	flag.IntVar(&c.concurrency, "concurrency", 8, "asynq server Concurrency (worker goroutines)")
	flag.StringVar(&c.modes, "modes", "sync,with_results,fire_and_forget", "comma-separated phases to run")
	flag.IntVar(&c.syncN, "sync-n", 10, "sync: max tasks (about 1 s each with asynq's default task check interval)")
	flag.IntVar(&c.resultsN, "results-n", 20000, "with_results: max tasks")
	flag.IntVar(&c.notifyN, "notify-n", 50000, "fire_and_forget: max tasks")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "each phase stops sending after this long (or its -n, whichever comes first)")
	flag.DurationVar(&c.syncDuration, "sync-duration", 10*time.Second, "sync: stop sending after this long (each round trip waits for asynq's task check tick)")
	flag.IntVar(&c.inflight, "inflight", 128, "with_results: tasks in flight (client goroutines, each enqueue + poll)")
	flag.IntVar(&c.enqueuers, "enqueuers", 4, "fire_and_forget: client goroutines enqueueing")
	flag.DurationVar(&c.poll, "poll", 10*time.Millisecond, "interval between GetTaskInfo polls while waiting for a result")
	flag.DurationVar(&c.checkEvery, "task-check-interval", 0, "asynq Config.TaskCheckInterval (0: asynq's default, 1s)")
	flag.DurationVar(&c.retention, "retention", 10*time.Minute, "Retention of completed tasks whose result is read back")
	flag.DurationVar(&c.drainTimeout, "drain-timeout", 60*time.Second, "how long a phase waits for outstanding tasks after it stops sending")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), c, log, os.Stdout); err != nil {
		log.Error("asynqpeer failed", "err", err)
		os.Exit(1)
	}
}

// peer is the server, client and inspector of one run, plus the fire-and-forget counters the
// handler updates.
type peer struct {
	cfg    config
	log    *slog.Logger
	client *asynq.Client
	insp   *asynq.Inspector

	notifyDone atomic.Int64 // fire-and-forget tasks whose handler returned
	notifyLast atomic.Int64 // UnixNano of the latest such return
}

// run starts the server and client, runs the phases -modes names and writes one JSON line per
// phase to out.
func run(ctx context.Context, c config, log *slog.Logger, out io.Writer) error {
	if c.concurrency < 1 || c.inflight < 1 || c.enqueuers < 1 {
		return errors.New("-concurrency, -inflight and -enqueuers must be at least 1")
	}
	redisOpt := asynq.RedisClientOpt{Addr: c.redis, DB: c.db, PoolSize: c.inflight + c.enqueuers + 4}
	p := &peer{cfg: c, log: log, client: asynq.NewClient(redisOpt), insp: asynq.NewInspector(redisOpt)}
	defer p.client.Close()
	defer p.insp.Close()

	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: c.redis, DB: c.db}, asynq.Config{
		Concurrency:       c.concurrency,
		Queues:            map[string]int{c.queue: 1},
		TaskCheckInterval: c.checkEvery,
		LogLevel:          asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(typeAdd, func(ctx context.Context, t *asynq.Task) error {
		sum, err := add(t.Payload())
		if err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		_, err = t.ResultWriter().Write(strconv.AppendInt(nil, sum, 10))
		return err
	})
	mux.HandleFunc(typeAddNotify, func(ctx context.Context, t *asynq.Task) error {
		if _, err := add(t.Payload()); err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		// The latest return wins even when two handlers race to store their times.
		for now, last := time.Now().UnixNano(), p.notifyLast.Load(); now > last; last = p.notifyLast.Load() {
			if p.notifyLast.CompareAndSwap(last, now) {
				break
			}
		}
		p.notifyDone.Add(1)
		return nil
	})
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start asynq server: %w", err)
	}
	defer func() {
		srv.Shutdown()
		if err := p.insp.DeleteQueue(c.queue, true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			log.Warn("delete queue", "queue", c.queue, "err", err)
		}
	}()

	// One warm-up round trip (not measured): the server's processor is running and Redis has
	// the queue's keys before the first timed task.
	if _, err := p.roundTrip(ctx, 1, 2); err != nil {
		return fmt.Errorf("warm-up task: %w", err)
	}

	for _, mode := range strings.Split(c.modes, ",") {
		var l line
		switch strings.TrimSpace(mode) {
		case "sync":
			l = p.phaseResults(ctx, "sync", c.syncN, 1, c.syncDuration)
		case "with_results":
			l = p.phaseResults(ctx, "with_results", c.resultsN, c.inflight, c.duration)
		case "fire_and_forget":
			l = p.phaseNotify(ctx)
		case "":
			continue
		default:
			return fmt.Errorf("unknown mode %q", mode)
		}
		l.System, l.Version, l.WorkerConcurrency = "asynq", asynqVersion, c.concurrency
		check := c.checkEvery
		if check <= 0 {
			check = time.Second
		}
		l.TaskCheckMs = float64(check) / 1e6
		if err := json.NewEncoder(out).Encode(l); err != nil {
			return err
		}
	}
	return nil
}

// add decodes the payload [a, b] and returns a + b.
func add(payload []byte) (int64, error) {
	var ab [2]int64
	if err := json.Unmarshal(payload, &ab); err != nil {
		return 0, fmt.Errorf("add: bad payload %q: %w", payload, err)
	}
	return ab[0] + ab[1], nil
}

func payload(a, b int64) []byte {
	return fmt.Appendf(nil, "[%d,%d]", a, b)
}

// roundTrip enqueues add(a, b) with a Retention, polls until it is completed, and checks the
// result. It returns the enqueue-to-result latency.
func (p *peer) roundTrip(ctx context.Context, a, b int64) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.drainTimeout)
	defer cancel()
	start := time.Now()
	info, err := p.client.EnqueueContext(ctx, asynq.NewTask(typeAdd, payload(a, b)),
		asynq.Queue(p.cfg.queue), asynq.Retention(p.cfg.retention), asynq.MaxRetry(0))
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	// Wait one -poll before each look: nothing can be done sooner than that, and each look is a
	// Redis script that competes with the worker for the same Redis and CPUs.
	t := time.NewTimer(p.cfg.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("task %s: no result: %w", info.ID, ctx.Err())
		case <-t.C:
		}
		got, err := p.insp.GetTaskInfo(p.cfg.queue, info.ID)
		switch {
		case err == nil && got.State == asynq.TaskStateCompleted:
			d := time.Since(start)
			if want := strconv.FormatInt(a+b, 10); string(got.Result) != want {
				return d, fmt.Errorf("task %s: result %q, want %q", info.ID, got.Result, want)
			}
			return d, nil
		case err == nil && got.State == asynq.TaskStateArchived:
			return 0, fmt.Errorf("task %s failed: %s", info.ID, got.LastErr)
		case err != nil && !errors.Is(err, asynq.ErrTaskNotFound):
			return 0, fmt.Errorf("get task info: %w", err)
		}
		t.Reset(p.cfg.poll)
	}
}

// phaseResults runs n round trips (or as many as start within d) with inflight of them at once,
// and measures each one's latency.
func (p *peer) phaseResults(ctx context.Context, mode string, n, inflight int, d time.Duration) line {
	var (
		next   atomic.Int64 // tasks claimed by senders
		errs   atomic.Int64
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, min(n, 1<<20))
		wg     sync.WaitGroup
		start  = time.Now()
		stopAt = start.Add(d)
	)
	for range inflight {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) || time.Now().After(stopAt) || ctx.Err() != nil {
					return
				}
				d, err := p.roundTrip(ctx, i, 10)
				if err != nil {
					errs.Add(1)
					p.log.Warn("round trip", "mode", mode, "err", err)
					continue
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	l := summarize(mode, lat, elapsed)
	l.Errors, l.InFlight = errs.Load(), inflight
	l.ResultsVia = fmt.Sprintf("ResultWriter + Retention(%s) + Inspector.GetTaskInfo every %s", p.cfg.retention, p.cfg.poll)
	return l
}

// phaseNotify enqueues up to -notify-n tasks without Retention (asynq deletes a completed task at
// once) from -enqueuers goroutines, stops sending after -duration, and measures from the first
// enqueue to the last handler return.
func (p *peer) phaseNotify(ctx context.Context) line {
	var (
		next, sent, errs atomic.Int64
		wg               sync.WaitGroup
		n                = int64(p.cfg.notifyN)
		base             = p.notifyDone.Load()
		start            = time.Now()
		stopAt           = start.Add(p.cfg.duration)
	)
	for range p.cfg.enqueuers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > n || time.Now().After(stopAt) || ctx.Err() != nil {
					return
				}
				_, err := p.client.EnqueueContext(ctx, asynq.NewTask(typeAddNotify, payload(i, 10)),
					asynq.Queue(p.cfg.queue), asynq.MaxRetry(0))
				if err != nil {
					errs.Add(1)
					p.log.Warn("enqueue", "err", err)
					continue
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	// Wait (bounded) for the worker to complete every enqueued task.
	deadline := time.Now().Add(p.cfg.drainTimeout)
	for p.notifyDone.Load()-base < sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	done := p.notifyDone.Load() - base
	elapsed := time.Duration(p.notifyLast.Load() - start.UnixNano())
	if done == 0 {
		elapsed = time.Since(start)
	}
	l := summarize("fire_and_forget", nil, elapsed)
	l.Tasks, l.Errors, l.InFlight = done, errs.Load()+sent.Load()-done, p.cfg.enqueuers
	if elapsed > 0 {
		l.TasksPerS = round1(float64(done) / elapsed.Seconds())
	}
	l.Note = fmt.Sprintf("%d enqueuer goroutines, one Enqueue (one Redis script) per task; counted as handlers return", p.cfg.enqueuers)
	return l
}

// summarize computes tasks/s and latency percentiles (nearest rank) from per-task latencies.
func summarize(mode string, lat []time.Duration, elapsed time.Duration) line {
	l := line{Mode: mode, Tasks: int64(len(lat)), ElapsedS: math.Round(elapsed.Seconds()*1e6) / 1e6}
	if elapsed > 0 {
		l.TasksPerS = round1(float64(len(lat)) / elapsed.Seconds())
	}
	if len(lat) == 0 {
		return l
	}
	slices.Sort(lat)
	pct := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(lat)))) - 1
		return us(lat[max(0, min(i, len(lat)-1))])
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	l.P50us, l.P90us, l.P99us = pct(0.50), pct(0.90), pct(0.99)
	l.MaxUs, l.MeanUs = us(lat[len(lat)-1]), us(sum/time.Duration(len(lat)))
	return l
}

func us(d time.Duration) float64 { return math.Round(float64(d)/10) / 100 }
func round1(x float64) float64   { return math.Round(x*10) / 10 }
