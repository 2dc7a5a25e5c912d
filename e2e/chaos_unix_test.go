//go:build !windows

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/faultproxy"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// The chaos suite checks answers, not states. Real processes (a `zerotask broker`, three
// `zerotask node`s) serve `echo` tasks whose params are unique tokens, submitted without pause
// by a client in the test; one kind of fault at a time is laid on them, 20 times; every task's
// history is recorded (submit, acknowledgement or refusal, final state, result, timestamps) and
// the nodes log every task they start (ZEROTASK_DRILL_LOG). After the run the history is
// checked against docs/reliability.md's promises (FAULTS.md, "The invariants every drill
// checks"), and a table is printed, one row per fault:
//
//   - wrong answers: a task that ended SUCCESS with a result that is not its own token: 0;
//   - lost: an acknowledged task that did not end SUCCESS: 0, except for kill -9 of a broker in
//     memory mode, where tasks go with the broker and must be reported lost (UNKNOWN), and
//     never SUCCESS without having run;
//   - refused-then-ran: a submit answered with an error whose token a node started: 0;
//   - duplicates: starts past the first, charged to the first fault after the first start;
//     each fault's count is at most what the failed party held (its credit: concurrency +
//     prefetch per node; for a durable broker, its nodes' credit and the results it had not
//     written yet), and no task runs more than once per fault;
//   - the worst round trip of a good client (its own connection, straight to the broker).
//
// ZEROTASK_CHAOS_TASKS sets the acknowledged tasks per fault kind (default 6,000: 54,000 in
// all), ZEROTASK_CHAOS_FAULTS the faults per kind (default 20), ZEROTASK_CHAOS_SEED the seed.
// ZEROTASK_CHAOS_KEEP names a directory where a failing run keeps what it needs to be traced
// (keepRun; also for TestJepsen), ZEROTASK_CHAOS_LOG_LEVEL the broker's --log-level (error).

const (
	chaosHB          = 250 * time.Millisecond // heartbeat of every role: a silent peer is dead after 750 ms
	chaosNodes       = 3
	chaosConcurrency = 4
	chaosPrefetch    = 4
	chaosCapacity    = chaosConcurrency + chaosPrefetch // what one node holds at most
	chaosWorkers     = 48                               // submitters of the load client, one task each at a time
	chaosMaxInflight = chaosWorkers - 6                 // the broker's per-client bound: some submits are refused (-32002)
	chaosTaskBound   = 90 * time.Second                 // a task not finished by then is stuck
	chaosGoodBound   = 20 * time.Second                 // the good client's worst round trip
)

// chaosEnvInt reads a positive integer from the environment, or returns def.
func chaosEnvInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// chaosFault is one kind of fault: what it does to a chaos system, once.
type chaosFault struct {
	name    string
	durable bool // broker on Redis
	proxied bool // nodes and the load client reach the broker through fault proxies
	// bound is the most duplicate starts one fault may cause (what the failed parties held).
	bound int
	// parties is how many parties one fault may fail (each node behind a cut proxy).
	parties int
	// lossy: acknowledged tasks may be lost, reported UNKNOWN (memory mode broker kill).
	lossy bool
	// redis, if set, sets up the durable store of the kind (its Redis, proxies, other brokers)
	// and returns the broker's store flags; durable alone starts a plain Redis.
	redis func(t *testing.T, s *chaosSystem, seed uint64) []string
	do    func(t *testing.T, s *chaosSystem, rnd *rand.Rand)
}

// TestChaos runs every fault kind against its own system, two at a time, and prints the table.
// One kind draws each fault from all the others, on a durable broker behind proxies.
func TestChaos(t *testing.T) {
	testutil.SkipShort(t, "chaos suite")
	quota := chaosEnvInt(t, "ZEROTASK_CHAOS_TASKS", 6000)
	faults := chaosEnvInt(t, "ZEROTASK_CHAOS_FAULTS", 20)
	seed := uint64(chaosEnvInt(t, "ZEROTASK_CHAOS_SEED", int(time.Now().UnixNano()%1_000_000+1)))
	t.Logf("chaos: %d tasks and %d faults per kind, seed %d (ZEROTASK_CHAOS_SEED=%d replays the choices)", quota, faults, seed, seed)
	const allNodes = chaosNodes * chaosCapacity
	kinds := []chaosFault{
		// The longest first, so that the two at a time end together: a durable broker restarted
		// under its owner id probes the last run's lease for 2.5 s before it serves.
		{name: "broker kill -9 (durable)", durable: true, bound: allNodes + 2*1024, parties: 1, do: faultBrokerKill},
		{name: "any of them (durable)", durable: true, proxied: true, bound: allNodes + 2*1024, parties: chaosNodes, do: faultAny},
		{name: "broker kill -9 (memory)", lossy: true, bound: 0, parties: 1, do: faultBrokerKill},
		{name: "node kill -9", bound: chaosCapacity, parties: 1, do: faultNodeKill},
		{name: "node SIGSTOP/SIGCONT", bound: chaosCapacity, parties: 1, do: faultNodeStop},
		{name: "node SIGTERM", bound: chaosCapacity, parties: 1, do: faultNodeTerm},
		{name: "proxy cut", proxied: true, bound: allNodes, parties: chaosNodes, do: faultProxyCut},
		{name: "proxy stall", proxied: true, bound: allNodes, parties: chaosNodes, do: faultProxyStall},
		{name: "proxy half-open", proxied: true, bound: allNodes, parties: chaosNodes, do: faultProxyHalfOpen},
		{name: "proxy delay 1-50 ms", proxied: true, bound: allNodes, parties: chaosNodes, do: faultProxyDelay},
	}
	rows := make([]chaosRow, len(kinds))
	start := time.Now()
	t.Run("faults", func(t *testing.T) {
		for i, k := range kinds {
			t.Run(strings.NewReplacer(" ", "_", "/", "_").Replace(k.name), func(t *testing.T) {
				t.Parallel()
				rows[i] = runChaos(t, k, quota, faults, seed+uint64(i))
			})
		}
	})
	var b strings.Builder
	writeChaosTable(&b, rows)
	t.Logf("chaos suite: %v in all\n%s", time.Since(start).Round(time.Second), b.String())
	if os.Getenv("ZEROTASK_CHAOS_TABLE") != "" {
		if err := os.WriteFile(os.Getenv("ZEROTASK_CHAOS_TABLE"), []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// chaosSystem is a broker, its nodes and the clients of one chaos run.
type chaosSystem struct {
	t          *testing.T
	dir        string // the nodes' drill logs
	router     string // the broker's ROUTER, and PUB
	pub        string
	brokerArgs []string
	nodeRouter string // what nodes connect to: the router or the node proxy
	pn, pc     *faultproxy.Proxy
	// peerRouter and peerPub: another broker on the same Redis (set by a kind's redis hook);
	// the nodes connect to it too.
	peerRouter, peerPub string
	redis               *jepsenRedis // the Redis of a kind with a redis hook

	mu     sync.Mutex // guards broker, nodes, gen, hit
	hit    time.Time  // when the last fault took effect, if it says (faultBrokerKill)
	broker *daemon
	nodes  []*daemon
	gen    int

	ctl *client.Client // control: straight to the broker
}

func (s *chaosSystem) startNode(i int) *daemon {
	s.mu.Lock()
	s.gen++
	name := fmt.Sprintf("n%d.%d", i, s.gen)
	s.mu.Unlock()
	router, pub := s.nodeRouter, s.pub
	if s.peerRouter != "" {
		router, pub = router+","+s.peerRouter, pub+","+s.peerPub
	}
	return startDrillNode(s.t, s.dir, router, pub, name, "--heartbeat", chaosHB.String(),
		"--concurrency", strconv.Itoa(chaosConcurrency), "--prefetch", strconv.Itoa(chaosPrefetch), "--node-grace", "10s")
}

// nodeCount returns how many nodes the broker lists, or -1 if it did not answer.
func (s *chaosSystem) nodeCount() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var ns []nodeInfo
	if err := s.ctl.Call(ctx, "broker.nodes", &ns); err != nil {
		return -1
	}
	return len(ns)
}

// settled waits until the broker lists every node again (the system is back after a fault).
func (s *chaosSystem) settled() {
	testutil.Eventually(s.t, 30*time.Second, func() bool { return s.nodeCount() == chaosNodes }, "%d nodes listed again", chaosNodes)
}

// chaosWindow is a fault's time: from its start until the system settled, and hit, when the
// fault took effect (a killed broker reaped; from where a fault does not say).
type chaosWindow struct{ from, hit, to time.Time }

// chaosRec is one task's history.
type chaosRec struct {
	token    string
	submit   time.Time
	answered time.Time // the submit's answer (acknowledgement or refusal) or its failure
	end      time.Time // final state read
	id       string    // acknowledged
	refused  int       // the refusal's code, if the broker refused the submit
	unsure   bool      // the submit failed without a refusal (connection lost, lease lost): may or may not run
	state    client.State
	result   string
	errCode  int
}

// chaosRow is one line of the table.
type chaosRow struct {
	fault                                     string
	faults, submitted, acked, refused, unsure int
	succeeded, wrong, lost, reportedLost      int
	phantom, stuck, failed, refusedRan        int
	dups, maxDupPerFault, bound, worstPerTask int
	worstGood, slowest                        time.Duration // slowest: an acknowledged task, from submit to its end
	elapsed                                   time.Duration
}

func runChaos(t *testing.T, k chaosFault, quota, faults int, seed uint64) chaosRow {
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	s := &chaosSystem{t: t, dir: t.TempDir(), router: testutil.FreeEndpoint(t), pub: testutil.FreeEndpoint(t)}
	logLevel := "error"
	if v := os.Getenv("ZEROTASK_CHAOS_LOG_LEVEL"); v != "" {
		logLevel = v
	}
	s.brokerArgs = []string{"broker", "--listen", s.router, "--pub", s.pub, "--log-level", logLevel,
		"--heartbeat", chaosHB.String(), "--max-inflight", strconv.Itoa(chaosMaxInflight)}
	if k.redis != nil {
		s.brokerArgs = append(s.brokerArgs, k.redis(t, s, seed)...)
	} else if k.durable {
		url, _ := startRedisStore(t)
		s.brokerArgs = append(s.brokerArgs, "--store", url, "--owner", "chaos-broker")
	}
	s.broker, _ = startDaemon(t, brokerLine, s.brokerArgs...)
	s.nodeRouter = s.router
	loadEP := s.router
	if k.proxied {
		var err error
		if s.pn, err = faultproxy.Start(faultproxy.Config{Target: s.router, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.pn.Close() })
		if s.pc, err = faultproxy.Start(faultproxy.Config{Target: s.router, Seed: seed + 1}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.pc.Close() })
		s.nodeRouter, loadEP = s.pn.Endpoint(), s.pc.Endpoint()
	}
	for i := range chaosNodes {
		s.nodes = append(s.nodes, s.startNode(i))
	}
	s.ctl = dial(t, s.router, client.WithHeartbeat(chaosHB))
	s.settled()
	load := dial(t, loadEP, client.WithHeartbeat(chaosHB))
	good := dial(t, s.router, client.WithHeartbeat(chaosHB))

	var (
		mu    sync.Mutex
		recs  []*chaosRec
		acked atomic.Int64
		seq   atomic.Int64
	)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	for range chaosWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				r := chaosTask(load, fmt.Sprintf("t%d", seq.Add(1)), &acked)
				mu.Lock()
				recs = append(recs, r)
				mu.Unlock()
			}
		}()
	}
	// The good client: an echo call of its own every 20 ms, timed from its first try to its
	// answer (tried again while the broker is unreachable).
	var worstGood time.Duration
	var goodWrong []string
	goodDone := make(chan struct{})
	go func() {
		defer close(goodDone)
		for i := 0; loadCtx.Err() == nil; i++ {
			tok := fmt.Sprintf("good%d", i)
			start := time.Now()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var out string
				err := good.Call(ctx, "echo", &out, tok)
				cancel()
				if err == nil {
					if out != tok {
						goodWrong = append(goodWrong, fmt.Sprintf("%s answered %q", tok, out))
					}
					break
				}
				if time.Since(start) > chaosTaskBound || loadCtx.Err() != nil {
					break
				}
				time.Sleep(5 * time.Millisecond) // retry pace while the broker is unreachable
			}
			worstGood = max(worstGood, time.Since(start))
			time.Sleep(20 * time.Millisecond) // the good client's pace, not synchronisation
		}
	}()

	// The faults, spread over the load: fault i once (i+1)/(faults+1) of the quota is
	// acknowledged, each after the system settled from the one before. A fault's window runs
	// from its start until the system has settled.
	began := time.Now()
	var windows []chaosWindow
	for i := range faults {
		want := int64((i + 1) * quota / (faults + 1))
		waited := time.Now()
		testutil.Eventually(t, 2*time.Minute, func() bool { return acked.Load() >= want }, "%s: %d tasks acknowledged before fault %d", k.name, want, i+1)
		w := chaosWindow{from: time.Now()}
		k.do(t, s, rnd)
		w.to = time.Now()
		s.mu.Lock()
		w.hit = w.from
		if s.hit.After(w.from) {
			w.hit = s.hit
		}
		s.mu.Unlock()
		windows = append(windows, w)
		if os.Getenv("ZEROTASK_CHAOS_TRACE") != "" {
			t.Logf("fault %d at %v: %v of load before it, settled after %v", i+1, w.from.Format(tsFmt),
				w.from.Sub(waited).Round(time.Millisecond), w.to.Sub(w.from).Round(time.Millisecond))
		}
	}
	testutil.Eventually(t, 2*time.Minute, func() bool { return acked.Load() >= int64(quota) }, "%s: %d tasks acknowledged", k.name, quota)
	stopLoad()
	wg.Wait()
	<-goodDone
	elapsed := time.Since(began)

	// The history against the nodes' logs.
	ran := echoStarts(t, s.dir)
	row := chaosRow{fault: k.name, faults: len(windows), submitted: len(recs), bound: k.bound, worstGood: worstGood, elapsed: elapsed}
	dupPerFault := make([]int, len(windows)+1) // [0]: before the first fault
	refusals := map[int]int{}                  // by code
	report := func(format string, args ...any) {
		if row.wrong+row.lost+row.phantom+row.stuck+row.refusedRan+row.failed < 10 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range recs {
		starts := ran[r.token]
		switch {
		case r.refused != 0:
			row.refused++
			refusals[r.refused]++
			if len(starts) > 0 {
				report("%s: %s refused (%d) at %v, then started %d times", k.name, r.token, r.refused, r.answered.Format(tsFmt), len(starts))
				row.refusedRan++
			}
			continue
		case r.unsure:
			row.unsure++
			continue
		}
		row.acked++
		if r.state != "" {
			row.slowest = max(row.slowest, r.end.Sub(r.submit))
		}
		switch {
		case r.state == client.StateSuccess && r.result != strconv.Quote(r.token):
			report("%s: WRONG ANSWER: %s (%s) ended SUCCESS with %s, its own is %q", k.name, r.token, r.id, r.result, r.token)
			row.wrong++
		case r.state == client.StateSuccess && len(starts) == 0:
			report("%s: %s (%s) ended SUCCESS but no node started it", k.name, r.token, r.id)
			row.phantom++
		case r.state == client.StateSuccess:
			row.succeeded++
		case r.state == client.StateUnknown:
			row.reportedLost++
			// Only a broker that died after accepting the task may lose it: one killed (reaped)
			// after the submit, by a fault that began before the answer.
			if !k.lossy || !slices.ContainsFunc(windows, func(w chaosWindow) bool { return w.hit.After(r.submit) && w.from.Before(r.end) }) {
				report("%s: acknowledged %s (%s, at %v) LOST: the broker says UNKNOWN at %v", k.name, r.token, r.id, r.answered.Format(tsFmt), r.end.Format(tsFmt))
				row.lost++
			}
		case r.state == "":
			report("%s: %s (%s) not finished %v after its submit", k.name, r.token, r.id, chaosTaskBound)
			row.stuck++
		default:
			report("%s: %s (%s) ended %s (error %d)", k.name, r.token, r.id, r.state, r.errCode)
			row.failed++
		}
		if len(starts) > 1 {
			row.dups += len(starts) - 1
			// Each start past the first is charged to the fault whose epoch it falls in
			// (from the fault's start to the next fault's): the fault that took the task from
			// the party that held it, though the re-run may come after the system settled (a
			// restarted durable broker takes back what its last run held). A task runs at
			// most once more per party a fault can fail, per epoch its starts span.
			first, last := epochOf(windows, starts[0].at), epochOf(windows, starts[len(starts)-1].at)
			for _, st := range starts[1:] {
				dupPerFault[epochOf(windows, st.at)+1]++
			}
			row.worstPerTask = max(row.worstPerTask, len(starts)-1)
			if spanned := last - max(first, 0) + 1; last < 0 || len(starts)-1 > k.parties*spanned {
				var at []string
				for _, st := range starts {
					at = append(at, st.at.Format(tsFmt)+" "+st.file)
				}
				report("%s: %s started %d times (%v; ended %v) across %d fault epochs of at most %d parties each",
					k.name, r.token, len(starts), at, r.end.Format(tsFmt), last-first+1, k.parties)
			}
		}
	}
	if dupPerFault[0] > 0 {
		t.Errorf("%s: %d tasks ran again before any fault", k.name, dupPerFault[0])
	}
	row.maxDupPerFault = slices.Max(dupPerFault)
	if row.maxDupPerFault > k.bound {
		for i, w := range windows {
			t.Logf("fault %d: %v to %v: %d tasks ran again", i+1, w.from.Format(tsFmt), w.to.Format(tsFmt), dupPerFault[i+1])
		}
		t.Errorf("%s: one fault made %d tasks run again, more than what the failed party held (%d); per fault: %v", k.name, row.maxDupPerFault, k.bound, dupPerFault)
	}
	if row.wrong > 0 || row.lost > 0 || row.phantom > 0 || row.refusedRan > 0 || row.stuck > 0 || row.failed > 0 {
		t.Errorf("%s: %d wrong answers, %d lost, %d SUCCESS never started, %d refused then ran, %d stuck, %d failed", k.name, row.wrong, row.lost, row.phantom, row.refusedRan, row.stuck, row.failed)
	}
	// Nothing waits forever: the good client's worst round trip spans at most one fault's
	// outage (a broker restart, 3 heartbeat intervals of a frozen or stalled node) on a
	// loaded machine.
	if worstGood > chaosGoodBound {
		t.Errorf("%s: the good client waited %v for one answer, more than %v", k.name, worstGood, chaosGoodBound)
	}
	for _, w := range goodWrong {
		t.Errorf("%s: good client: WRONG ANSWER: %s", k.name, w)
	}
	t.Logf("%s: %d faults in %v: %d submitted, %d acknowledged, %d refused %v, %d unsure; %d SUCCESS, %d reported lost; %d extra starts (most per fault %d, bound %d); good client's worst round trip %v",
		k.name, row.faults, elapsed.Round(time.Millisecond), row.submitted, row.acked, row.refused, refusals, row.unsure, row.succeeded, row.reportedLost, row.dups, row.maxDupPerFault, k.bound, worstGood.Round(time.Millisecond))
	if dir := os.Getenv("ZEROTASK_CHAOS_KEEP"); dir != "" && t.Failed() {
		keepRun(t, s, dir, recs, ran, windows)
	}
	return row
}

// keepRun copies what a failed run leaves into a directory of its own under dir, before the
// test's cleanups remove it: the broker's stderr (its first MiB), the nodes' start logs, the
// Redis server's directory (its append-only file lists every write Redis applied, in order:
// what happened to a task's keys), the fault windows and one line per submit.
func keepRun(t *testing.T, s *chaosSystem, dir string, recs []*chaosRec, ran map[string][]start, windows []chaosWindow) {
	d := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+time.Now().Format("150405.000"))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Logf("keep: %v", err)
		return
	}
	var b strings.Builder
	for i, w := range windows {
		fmt.Fprintf(&b, "fault %d: %s to %s\n", i+1, w.from.Format(tsFmt), w.to.Format(tsFmt))
	}
	for _, r := range recs {
		fmt.Fprintf(&b, "%s id=%s submit=%s answered=%s refused=%d unsure=%v state=%s end=%s starts=%d\n", r.token, r.id,
			r.submit.Format(tsFmt), r.answered.Format(tsFmt), r.refused, r.unsure, r.state, r.end.Format(tsFmt), len(ran[r.token]))
	}
	s.mu.Lock()
	stderr := s.broker.Stderr()
	s.mu.Unlock()
	errs := []error{
		os.WriteFile(filepath.Join(d, "history.txt"), []byte(b.String()), 0o644),
		os.WriteFile(filepath.Join(d, "broker.stderr"), []byte(stderr), 0o644),
		os.CopyFS(filepath.Join(d, "nodes"), os.DirFS(s.dir)),
	}
	if s.redis != nil {
		errs = append(errs, os.CopyFS(filepath.Join(d, "redis"), os.DirFS(s.redis.srv.Dir)))
	}
	if err := errors.Join(errs...); err != nil {
		t.Logf("keep: %v", err)
	}
	t.Logf("the failed run is kept in %s", d)
}

const tsFmt = "15:04:05.000"

// chaosTask submits echo(token) and follows it to its end, returning its history.
func chaosTask(c *client.Client, token string, acked *atomic.Int64) *chaosRec {
	r := &chaosRec{token: token, submit: time.Now()}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h, err := c.Submit(sctx, "echo", []any{token})
	cancel()
	r.answered = time.Now()
	if err != nil {
		var rpc *client.Error
		if errors.As(err, &rpc) && (rpc.Code == protocol.CodeQueueFull || rpc.Code == protocol.CodeTooManyInFlight) {
			r.refused = rpc.Code
		} else { // no answer, or an answer that is no refusal (a lost store lease: the task may run)
			r.unsure = true
		}
		time.Sleep(5 * time.Millisecond) // pace after a refusal or an outage, not synchronisation
		return r
	}
	r.id = h.ID()
	acked.Add(1)
	wctx, wcancel := context.WithDeadline(context.Background(), r.submit.Add(chaosTaskBound))
	defer wcancel()
	for wctx.Err() == nil {
		ti, err := c.Wait(wctx, r.id, 2*time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond) // pace while the broker is unreachable or refuses (-32002)
			continue
		}
		if ti.State.Done() {
			r.state, r.result, r.end = ti.State, string(ti.Result), time.Now()
			if ti.Error != nil {
				r.errCode = ti.Error.Code
			}
			return r
		}
	}
	r.end = time.Now()
	return r
}

// echoStarts reads the drill logs in dir: every start of each echo token (its time and the
// node process's log), in order of time.
func echoStarts(t testing.TB, dir string) map[string][]start {
	out := logStarts(t, dir, "echo", func(params []byte) (string, bool) {
		var p []string
		if json.Unmarshal(params, &p) != nil || len(p) != 1 {
			return "", false // a line cut by SIGKILL
		}
		return p[0], true
	})
	for _, ts := range out {
		slices.SortFunc(ts, func(a, b start) int { return a.at.Compare(b.at) })
	}
	return out
}

func writeChaosTable(b *strings.Builder, rows []chaosRow) {
	fmt.Fprintf(b, "| fault | faults | acknowledged | wrong answers | lost acknowledged | reported lost | refused | refused then ran | unsure submits | duplicates (most per fault / bound) | slowest task | good client's worst round trip | time |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var tot chaosRow
	for _, r := range rows {
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d (%d / %d) | %v | %v | %v |\n",
			r.fault, r.faults, r.acked, r.wrong, r.lost+r.phantom+r.stuck+r.failed, r.reportedLost, r.refused, r.refusedRan, r.unsure,
			r.dups, r.maxDupPerFault, r.bound, r.slowest.Round(time.Millisecond), r.worstGood.Round(time.Millisecond), r.elapsed.Round(100*time.Millisecond))
		tot.faults += r.faults
		tot.acked += r.acked
		tot.wrong += r.wrong
		tot.lost += r.lost + r.phantom + r.stuck + r.failed
		tot.reportedLost += r.reportedLost
		tot.refused += r.refused
		tot.refusedRan += r.refusedRan
		tot.unsure += r.unsure
		tot.dups += r.dups
	}
	fmt.Fprintf(b, "| **all** | %d | %d | %d | %d | %d | %d | %d | %d | %d | | | |\n",
		tot.faults, tot.acked, tot.wrong, tot.lost, tot.reportedLost, tot.refused, tot.refusedRan, tot.unsure, tot.dups)
}

// The faults. Each does its fault once and returns when the system has settled.

// faultBrokerKill: kill -9 of the broker and a restart on the same endpoints (under the same
// owner in durable mode).
func faultBrokerKill(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	s.mu.Lock()
	b := s.broker
	s.mu.Unlock()
	kill9(t, b)
	start := time.Now()
	s.mu.Lock()
	s.hit = start
	s.mu.Unlock()
	nb, _ := startDaemon(t, brokerLine, s.brokerArgs...)
	up := time.Since(start)
	s.mu.Lock()
	s.broker = nb
	s.mu.Unlock()
	s.settled()
	if os.Getenv("ZEROTASK_CHAOS_TRACE") != "" {
		t.Logf("broker restarted: listening after %v, nodes back after %v", up.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
}

// victim picks a node.
func (s *chaosSystem) victim(rnd *rand.Rand) (int, *daemon) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := rnd.IntN(len(s.nodes))
	return i, s.nodes[i]
}

func (s *chaosSystem) replace(i int, d *daemon) {
	s.mu.Lock()
	s.nodes[i] = d
	s.mu.Unlock()
}

// faultNodeKill: kill -9 of a node (holding tasks: the load never pauses) and a new node.
func faultNodeKill(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	i, d := s.victim(rnd)
	kill9(t, d)
	s.replace(i, s.startNode(i))
	s.settled()
}

// faultNodeStop: SIGSTOP of a node for 1 to 5 heartbeat intervals (below and past the 3 after
// which the broker declares it dead), then SIGCONT.
func faultNodeStop(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	_, d := s.victim(rnd)
	if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(chaosHB + durN(rnd, 4*chaosHB)) // the fault's length itself
	if err := d.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	s.settled()
}

// faultNodeTerm: a graceful stop (SIGTERM: unstarted tasks handed back, running ones
// finished and reported) and a new node.
func faultNodeTerm(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	i, d := s.victim(rnd)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("node pid %d still running 30 s after SIGTERM", d.cmd.Process.Pid)
	}
	s.replace(i, s.startNode(i))
	s.settled()
}

// proxies picks the node proxy, the load client's, or both.
func (s *chaosSystem) proxies(rnd *rand.Rand) []*faultproxy.Proxy {
	switch rnd.IntN(3) {
	case 0:
		return []*faultproxy.Proxy{s.pn}
	case 1:
		return []*faultproxy.Proxy{s.pc}
	}
	return []*faultproxy.Proxy{s.pn, s.pc}
}

func randDir(rnd *rand.Rand) faultproxy.Dir {
	return []faultproxy.Dir{faultproxy.Up, faultproxy.Down, faultproxy.Both}[rnd.IntN(3)]
}

// faultProxyCut cuts the connections of a proxy at a random point: within their next 8 KiB
// (mid-frame, between a task and its answer), at once with the reconnection cut within its
// first 120 bytes (mid-handshake), or at once with new connections refused for up to 4
// heartbeat intervals (a reconnect storm against a closed port).
func faultProxyCut(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	for _, p := range s.proxies(rnd) {
		switch rnd.IntN(3) {
		case 0:
			p.CutOpen(faultproxy.Cut{Dir: randDir(rnd), Within: 1 + rnd.IntN(8192), By: 2 * chaosHB})
		case 1:
			p.CutNext(1+rnd.IntN(2), faultproxy.Cut{Dir: randDir(rnd), Within: 1 + rnd.IntN(120), By: 4 * chaosHB})
			p.CutOpen(faultproxy.Cut{})
		case 2:
			p.Refuse(true)
			p.CutOpen(faultproxy.Cut{})
			time.Sleep(durN(rnd, 4*chaosHB)) // the refusal's length itself
			p.Refuse(false)
		}
	}
	s.settled()
}

// faultProxyStall stalls one or both directions of a proxy's connections for up to 6 heartbeat
// intervals (the peers hear nothing; past 3 intervals they give the connection up).
func faultProxyStall(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	d := chaosHB/5 + durN(rnd, 6*chaosHB)
	for _, p := range s.proxies(rnd) {
		if _, err := p.Stall(randDir(rnd), d); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(d) // the stall's length itself
	s.settled()
}

// faultProxyHalfOpen closes one direction of a proxy's connections (the other keeps flowing),
// cut entirely after 4 heartbeat intervals if the peers have not given them up by then.
func faultProxyHalfOpen(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	for _, p := range s.proxies(rnd) {
		if _, err := p.HalfClose(randDir(rnd), 4*chaosHB); err != nil {
			t.Fatal(err)
		}
	}
	s.settled()
}

// faultProxyDelay delays a proxy's traffic by 1-50 ms each way (random bounds within that
// range, random per chunk) for 1 to 3 heartbeat intervals.
func faultProxyDelay(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	lo := time.Millisecond + durN(rnd, 10*time.Millisecond)
	hi := lo + durN(rnd, 50*time.Millisecond-lo)
	ps := s.proxies(rnd)
	for _, p := range ps {
		if err := p.SetDelay(lo, hi); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(chaosHB + durN(rnd, 2*chaosHB)) // the fault's length itself
	for _, p := range ps {
		_ = p.SetDelay(0, 0)
	}
	s.settled()
}

// durN returns a random duration in [0, d) from rnd.
func durN(rnd *rand.Rand, d time.Duration) time.Duration { return time.Duration(rnd.Int64N(int64(d))) }

// epochOf returns the index of the last fault that started at or before at (-1: none); at is
// a drill log's time, in whole milliseconds, so the millisecond it names counts whole.
func epochOf(windows []chaosWindow, at time.Time) int {
	at = at.Add(time.Millisecond - 1)
	i, _ := slices.BinarySearchFunc(windows, at, func(w chaosWindow, at time.Time) int {
		if w.from.After(at) {
			return 1
		}
		return -1
	})
	return i - 1
}

// faultAny does one of the other faults, drawn at random.
func faultAny(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	all := []func(*testing.T, *chaosSystem, *rand.Rand){faultBrokerKill, faultNodeKill, faultNodeStop,
		faultNodeTerm, faultProxyCut, faultProxyStall, faultProxyHalfOpen, faultProxyDelay}
	all[rnd.IntN(len(all))](t, s, rnd)
}
