//go:build unix

package node_test

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// progressNotices counts the broker.state notices with progress of the task whose id it is
// given (by setID) on b's PUB. It returns once the subscription receives: ping submits a task
// until a notice comes.
func progressNotices(t *testing.T, b *broker.Broker, ping func()) (setID func(string), count func() int, last func() string) {
	t.Helper()
	s := zmtp.NewSub(zmtp.Options{Logger: quiet})
	if err := s.Subscribe([]byte(protocol.TopicState)); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(b.PubAddr()); err != nil {
		t.Fatal(err)
	}
	var n, seen atomic.Int64
	var lastV, name atomic.Value
	lastV.Store("")
	name.Store([2]string{"\x00", "\x00"})
	stop := testutil.Go(t, "progress subscriber", waitLong, func(ctx context.Context) error {
		defer s.Close()
		for {
			m, err := s.Recv(ctx)
			if err != nil {
				return nil
			}
			if len(m.Frames) == 2 {
				body := string(m.Frames[1])
				seen.Add(1)
				ids := name.Load().([2]string)
				for _, part := range strings.Split(body, `"method":"broker.state"`) {
					if (strings.Contains(part, `"id":"`+ids[0]+`"`) || strings.Contains(part, `"id":"`+ids[1]+`"`)) && strings.Contains(part, `"progress":`) {
						n.Add(1)
						lastV.Store(part)
					}
				}
			}
			m.Release()
		}
	})
	_ = stop
	testutil.Eventually(t, waitLong, func() bool { ping(); return seen.Load() > 0 }, "the state stream reaches the subscriber")
	// The stream shows a task by its id or by its name (the id without its tag).
	setID = func(id string) { name.Store([2]string{id, id[:max(0, strings.LastIndexByte(id, '-'))]}) }
	return setID, func() int { return int(n.Load()) }, func() string { return lastV.Load().(string) }
}

// TestProgressShowsLastReport: a task that reports progress 10 times shows the last report in
// its record (broker.status, what `zerotask status` prints, and the client's Handle) and on
// the state stream, while it runs; its result replaces it.
func TestProgressShowsLastReport(t *testing.T) {
	b := startBroker(t)
	release := make(chan struct{})
	d := dispatch.New()
	d.MustRegister("steps", dispatch.HandlerFunc(func(ctx context.Context, dst, _ []byte) ([]byte, error) {
		for i := int64(1); i <= 10; i++ {
			dispatch.Progress(ctx, i, 10, "step "+string(rune('0'+i%10)))
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return append(dst, "true"...), nil
	}))
	d.MustRegister("noop", dispatch.HandlerFunc(func(_ context.Context, dst, _ []byte) ([]byte, error) { return append(dst, "null"...), nil }))
	startNode(t, b, node.Config{Dispatcher: d, HeartbeatInterval: 100 * time.Millisecond})
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)
	setID, count, last := progressNotices(t, b, func() { _, _ = c.Submit(ctx, "noop", nil) })
	h, err := c.Submit(ctx, "steps", nil)
	if err != nil {
		t.Fatal(err)
	}
	setID(h.ID())
	want := `{"done":10,"total":10,"note":"step 0"}`
	var got []byte
	testutil.Eventually(t, waitLong, func() bool {
		got, err = h.Progress(ctx)
		return err == nil && string(got) == want
	}, "the record's progress: %s, %v; want %s", got, err, want)
	ti, err := c.Status(ctx, h.ID())
	if err != nil || ti.State != "RUNNING" || string(ti.Progress) != want {
		t.Errorf("status: %+v, %v", ti, err)
	}
	testutil.Eventually(t, waitLong, func() bool { return count() > 0 && strings.Contains(last(), want) },
		"a progress notice on the state stream (%d seen, last %q)", count(), last())
	close(release)
	if err := h.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ti, err := c.Status(ctx, h.ID()); err != nil || ti.Progress != nil {
		t.Errorf("finished record: progress %s, %v; want none", ti.Progress, err)
	}
}

// TestProgressIsCheap: 100,000 progress calls from one handler cost well under a second of
// CPU, and the node sends at most one report per heartbeat interval.
func TestProgressIsCheap(t *testing.T) {
	b := startBroker(t)
	const tick = 100 * time.Millisecond
	var spent atomic.Int64
	var elapsed atomic.Int64
	d := dispatch.New()
	d.MustRegister("busy", dispatch.HandlerFunc(func(ctx context.Context, dst, _ []byte) ([]byte, error) {
		start := time.Now()
		var work time.Duration
		for round := range 10 {
			c0 := cpuTime()
			for i := range 10_000 {
				dispatch.Progress(ctx, int64(round*10_000+i+1), 100_000, "busy")
			}
			work += cpuTime() - c0
			time.Sleep(tick / 2) // the task's own work between rounds: reports span several ticks
		}
		spent.Store(int64(work))
		elapsed.Store(int64(time.Since(start)))
		return append(dst, "true"...), nil
	}))
	d.MustRegister("noop", dispatch.HandlerFunc(func(_ context.Context, dst, _ []byte) ([]byte, error) { return append(dst, "null"...), nil }))
	startNode(t, b, node.Config{Dispatcher: d, HeartbeatInterval: tick})
	c := dial(t, b)
	// The run takes about 1 s alone; under -race beside other test binaries on a loaded
	// machine it once took over 10 s: the bound is for a hang, the figures are checked below.
	ctx := testutil.Context(t, 60*time.Second)
	setID, count, last := progressNotices(t, b, func() { _, _ = c.Submit(ctx, "noop", nil) })
	h, err := c.Submit(ctx, "busy", nil)
	if err != nil {
		t.Fatal(err)
	}
	setID(h.ID())
	if err := h.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cpu, took := time.Duration(spent.Load()), time.Duration(elapsed.Load())
	t.Logf("100,000 progress calls: %v of CPU (the whole process's, an upper bound) over %v; %d reports sent (last %q)", cpu, took, count(), last())
	if cpu >= time.Second {
		t.Errorf("100,000 progress calls took %v of CPU, want < 1s", cpu)
	}
	// Reports go out one tick after the first report of a tick: at most one per tick over the
	// run, plus one for the tick in which the run began.
	if max := int(took/tick) + 1; count() > max {
		t.Errorf("%d reports over %v with a %v tick: want at most %d", count(), took, tick, max)
	}
	if count() == 0 {
		t.Error("no progress report reached the state stream")
	}
}
