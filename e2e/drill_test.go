package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
)

// The reliability drills: real `zerotask` processes killed with SIGKILL, frozen with SIGSTOP,
// restarted under load, and an in-process client that checks that every task is accounted for.
// The nodes record every task they start in a log per process (ZEROTASK_DRILL_LOG, see
// cmd/zerotask/drill.go), so that a drill can count the tasks that ran more than once.

// drillEnv is the variable that makes `zerotask node` log the tasks it starts.
const drillEnv = "ZEROTASK_DRILL_LOG"

var nodeReady = regexp.MustCompile(`^node serving `)

// startDrillNode starts `zerotask node --name name` for the broker at router/pub, logging the
// tasks it starts in dir.
func startDrillNode(t testing.TB, dir, router, pub, name string, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"node", "--broker", router, "--sub", pub, "--name", name, "--log-level", "warn"}, extra...)
	d, _ := startDaemonEnv(t, []string{drillEnv + "=" + dir}, nodeReady, args...)
	return d
}

// kill9 kills d with SIGKILL and waits until it is reaped.
func kill9(t testing.TB, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill -9 %d: %v", d.cmd.Process.Pid, err)
	}
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d not reaped 10s after SIGKILL", d.cmd.Process.Pid)
	}
}

// runs reads the drill logs in dir and returns, per sleep tag, how many times it started and
// in which processes (log file names).
func runs(t testing.TB, dir string) map[int][]string {
	out := map[int][]string{}
	for tag, starts := range starts(t, dir) {
		for _, s := range starts {
			out[tag] = append(out[tag], s.file)
		}
	}
	return out
}

// start is one task start in a drill log.
type start struct {
	file string
	at   time.Time
}

// starts reads the drill logs in dir and returns, per sleep tag, every start.
func starts(t testing.TB, dir string) map[int][]start {
	return logStarts(t, dir, "sleep", func(params []byte) (int, bool) {
		var p struct {
			Tag *int `json:"tag"`
		}
		if json.Unmarshal(params, &p) != nil || p.Tag == nil {
			return 0, false // a line cut by SIGKILL, or a sleep without a tag
		}
		return *p.Tag, true
	})
}

// logStarts reads the drill logs in dir and returns every start of method, grouped by what
// key reads from its params (a line key refuses is skipped), each group in the order of time:
// one file per node process, so the order of the files says nothing about which ran first.
func logStarts[K comparable](t testing.TB, dir, method string, key func(params []byte) (K, bool)) map[K][]start {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[K][]start{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			ms, rest, _ := strings.Cut(sc.Text(), " ")
			m, params, ok := strings.Cut(rest, " ")
			if !ok || m != method {
				continue
			}
			at, err := strconv.ParseInt(ms, 10, 64)
			if err != nil {
				continue
			}
			k, ok := key([]byte(params))
			if !ok {
				continue
			}
			out[k] = append(out[k], start{file: filepath.Base(name), at: time.UnixMilli(at)})
		}
		f.Close()
	}
	for _, ss := range out {
		slices.SortStableFunc(ss, func(a, b start) int { return a.at.Compare(b.at) })
	}
	return out
}

// brokerStats is the part of broker.stats the drills read.
type brokerStats struct {
	Broker    string `json:"broker"` // the broker's id: the prefix of its task ids
	Queued    int    `json:"queued"`
	Running   int    `json:"running"`
	Accepted  uint64 `json:"accepted"`
	Submitted uint64 `json:"submitted"`
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Retried   uint64 `json:"retried"`
	Stale     uint64 `json:"stale"`
	Rejected  uint64 `json:"rejected"`
	BadFrames uint64 `json:"bad_frames"`
	Nodes     int    `json:"nodes"`
	Clients   int    `json:"clients"`
	Results   int    `json:"results"`
	Scheduled int    `json:"scheduled"`
	Claimed   uint64 `json:"claimed"` // durable mode: tasks taken from the store
	Storing   int    `json:"storing"` // durable mode: writes to the store in flight
	Duplicate uint64 `json:"duplicate"`
}

func statsOf(t testing.TB, c *client.Client) brokerStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s brokerStats
	if err := c.Call(ctx, "broker.stats", &s); err != nil {
		t.Fatalf("broker.stats: %v", err)
	}
	return s
}

// nodeInfo is one entry of broker.nodes.
type nodeInfo struct {
	Name    string `json:"name"`
	Credit  int    `json:"credit"`
	Running int    `json:"running"`
}

// nodesOf returns broker.nodes by node name.
func nodesOf(t testing.TB, c *client.Client) map[string]nodeInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ns []nodeInfo
	if err := c.Call(ctx, "broker.nodes", &ns); err != nil {
		t.Fatalf("broker.nodes: %v", err)
	}
	out := make(map[string]nodeInfo, len(ns))
	for _, n := range ns {
		out[n.Name] = n
	}
	return out
}

// submitTagged submits n sleep tasks {"ms": 1 + i%5, "tag": first+i} from a few goroutines and
// returns their ids by tag. after, if not nil, runs once (on its own goroutine) when half of them
// are submitted.
func submitTagged(t testing.TB, c *client.Client, first, n int, opts ...client.SubmitOption) []string {
	t.Helper()
	ids := make([]string, n)
	const senders = 8
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := s; i < n; i += senders {
				h, err := c.Submit(ctx, "sleep", []any{client.Named(map[string]int{"ms": 1 + i%5, "tag": first + i})}, opts...)
				if err != nil {
					errs <- fmt.Errorf("submit %d: %w", first+i, err)
					return
				}
				ids[i] = h.ID()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

// waitAll waits for every task in ids to finish (broker.result, a few hundred at a time) and
// returns their final records.
func waitAll(t testing.TB, c *client.Client, ids []string, timeout time.Duration) []client.TaskInfo {
	t.Helper()
	infos := make([]client.TaskInfo, len(ids))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for ctx.Err() == nil {
				ti, err := c.Wait(ctx, id, 5*time.Second)
				if err == nil && ti.State.Done() {
					infos[i] = ti
					return
				}
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("result %s: %w", id, err)
					}
					mu.Unlock()
					time.Sleep(10 * time.Millisecond) // retry pace after a failed poll (connection lost), not synchronization
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("tasks not all finished within %v (last poll error: %v)", timeout, firstErr)
	}
	return infos
}
