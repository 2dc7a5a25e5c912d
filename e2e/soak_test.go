package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
)

// soakTime is how long the soak drill runs (ZEROTASK_SOAK overrides it, e.g. 10m locally).
func soakTime(t testing.TB) time.Duration {
	if v := os.Getenv("ZEROTASK_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ZEROTASK_SOAK=%q: %v", v, err)
		}
		return d
	}
	return 60 * time.Second
}

// rssOf returns the resident set size of process pid, from /proc (Linux).
func rssOf(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("rss: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestSoak is the soak drill: for 60 s, clients submit sleep tasks without pause while a node
// is killed with SIGKILL and a new one started every few seconds. At the end every task is
// accounted for (SUCCESS, each seen by its submitter), the tasks that ran twice are at most
// those handed out again, and the broker's RSS is within 20% of its level after the warm-up.
func TestSoak(t *testing.T) {
	testutil.SkipShort(t, "60 s drill")
	if runtime.GOOS != "linux" {
		t.Skip("the soak reads the broker's RSS from /proc")
	}
	t.Parallel()
	total := soakTime(t)
	// The broker's live heap is flat after a few seconds (the results expire after 5 s), but
	// its RSS takes longer to settle (the Go heap grows towards its GC target and keeps the
	// pages it touched): the first half is the warm-up.
	warmup := total / 2
	const workers = 24
	dir := t.TempDir()
	brk, router, pub := startBinaryBroker(t, "--heartbeat", "500ms", "--result-ttl", "5s")
	nodeArgs := []string{"--heartbeat", "500ms", "--concurrency", "8", "--prefetch", "8"}
	var nodes []*daemon
	for i := range 3 {
		nodes = append(nodes, startDrillNode(t, dir, router, pub, fmt.Sprint("node-", i), nodeArgs...))
	}
	c := dial(t, router)

	// Submitters: submit, wait for the result, again, until the time is up. Every task's
	// final state is recorded by its submitter.
	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	var (
		mu      sync.Mutex
		states  = map[client.State]int{}
		failed  []string
		tags    atomic.Int64
		retried atomic.Int64
	)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				tag := int(tags.Add(1))
				wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
				h, err := c.Submit(wctx, "sleep", []any{client.Named(map[string]int{"ms": 1 + tag%5, "tag": tag})})
				if err != nil {
					wcancel()
					mu.Lock()
					failed = append(failed, fmt.Sprintf("submit %d: %v", tag, err))
					mu.Unlock()
					return
				}
				var ti client.TaskInfo
				for {
					ti, err = c.Wait(wctx, h.ID(), 10*time.Second)
					if err != nil || ti.State.Done() {
						break
					}
				}
				wcancel()
				mu.Lock()
				if err != nil {
					failed = append(failed, fmt.Sprintf("result %d (%s): %v", tag, h.ID(), err))
				} else {
					states[ti.State]++
					if ti.State != client.StateSuccess {
						failed = append(failed, fmt.Sprintf("task %d (%s) ended %s: %v", tag, h.ID(), ti.State, ti.Err()))
					}
					if ti.Attempts > 1 {
						retried.Add(1)
					}
				}
				mu.Unlock()
			}
		}()
	}

	// The chaos: a node killed and replaced every 3 s; the broker's RSS sampled every second.
	start := time.Now()
	var warm, final int64
	kills := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sec := 1; ctx.Err() == nil; sec++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		rss := rssOf(t, brk.cmd.Process.Pid)
		el := time.Since(start)
		if os.Getenv("ZEROTASK_SOAK_TRACE") != "" && sec%5 == 0 {
			t.Logf("%3ds: broker RSS %.1f MiB", sec, float64(rss)/(1<<20))
		}
		switch {
		case el >= warmup && el < warmup+5*time.Second:
			warm = max(warm, rss)
		case el >= total-6*time.Second:
			final = max(final, rss)
		}
		if sec%3 == 0 {
			i := kills % len(nodes)
			kill9(t, nodes[i])
			nodes[i] = startDrillNode(t, dir, router, pub, fmt.Sprint("node-", i, "-", kills), nodeArgs...)
			kills++
		}
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	done := 0
	for _, n := range states {
		done += n
	}
	submitted := int(tags.Load()) // each worker's last tag may be unused when the time ran out
	ran := runs(t, dir)
	twice := 0
	for _, files := range ran {
		if len(files) > 1 {
			twice++
		}
	}
	s := statsOf(t, c)
	t.Logf("soak %v: %d tasks accounted for (%v), %d nodes killed, %d tasks handed out again, %d ran twice; broker RSS %.1f MiB after warm-up, %.1f MiB at the end; broker %+v",
		total, done, states, kills, retried.Load(), twice, float64(warm)/(1<<20), float64(final)/(1<<20), s)
	for i, f := range failed {
		if i == 10 {
			t.Errorf("... and %d more", len(failed)-10)
			break
		}
		t.Error(f)
	}
	if done < submitted-workers || done == 0 {
		t.Errorf("%d tasks accounted for out of %d submitted", done, submitted)
	}
	if twice > int(retried.Load()) {
		t.Errorf("%d tasks ran twice, only %d were handed out again", twice, retried.Load())
	}
	if kills < int(total/(4*time.Second)) {
		t.Errorf("only %d nodes killed", kills)
	}
	if warm == 0 || final == 0 {
		t.Fatalf("RSS not sampled (warm %d, final %d)", warm, final)
	}
	if float64(final) > 1.2*float64(warm) {
		t.Errorf("broker RSS grew from %.1f MiB after warm-up to %.1f MiB at the end (> 20%%)", float64(warm)/(1<<20), float64(final)/(1<<20))
	}
	if s.Queued != 0 || s.Running != 0 || s.Scheduled != 0 {
		t.Errorf("the broker still holds tasks: %+v", s)
	}
}
