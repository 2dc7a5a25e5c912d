package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dashboard"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

const waitLong = 20 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// chromium returns the browser to drive, or skips (fails under CI) when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testutil.Missing(t, "chromium (apt-get install -y chromium) for the dashboard's browser test")
	return ""
}

// artifactDir is where a test leaves files for a person to look at: $ZEROTASK_ARTIFACTS, or
// zerotask-artifacts in the system's temporary directory.
func artifactDir(t *testing.T) string {
	d := os.Getenv("ZEROTASK_ARTIFACTS")
	if d == "" {
		d = filepath.Join(os.TempDir(), "zerotask-artifacts")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// rig is a broker, two nodes and a client, with the dashboard in front of the broker.
type rig struct {
	b       *broker.Broker
	c       *client.Client
	url     string
	blocked chan string // ids of "block" tasks whose context ended
}

func startRig(t *testing.T, token string) *rig {
	t.Helper()
	b, err := broker.New(broker.Config{
		Listen:            "tcp://127.0.0.1:0",
		Pub:               "tcp://127.0.0.1:0",
		HeartbeatInterval: time.Second,
		Logger:            quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Go(t, "broker Serve", waitLong, b.Serve)
	r := &rig{b: b, blocked: make(chan string, 4)}
	d := dispatch.New()
	d.MustRegister("work", dispatch.HandlerFunc(func(_ context.Context, dst, params []byte) ([]byte, error) {
		return append(dst, params...), nil
	}))
	d.MustRegister("fail", dispatch.HandlerFunc(func(_ context.Context, dst, params []byte) ([]byte, error) {
		return nil, fmt.Errorf("boom: %s", params)
	}))
	d.MustRegister("block", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		dispatch.Progress(ctx, 3, 7, "halfway")
		<-ctx.Done()
		r.blocked <- string(params)
		return nil, ctx.Err()
	}))
	for _, name := range []string{"node-alpha", "node-beta"} {
		n, err := node.New(node.Config{
			Broker: b.Addr(), Sub: b.PubAddr(), Name: name, Dispatcher: d, Concurrency: 2,
			HeartbeatInterval: time.Second, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		testutil.Go(t, name+" Serve", waitLong, n.Serve)
	}
	testutil.Eventually(t, waitLong, func() bool { return b.Stats().Nodes == 2 }, "two nodes connected")
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	r.c, err = client.Dial(ctx, b.Addr(), client.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.c.Close() })
	dash, err := dashboard.New(dashboard.Config{
		Snapshot: b.AppendSnapshot,
		TaskID:   b.TaskID,
		Call: func(ctx context.Context, method string, params []byte) ([]byte, error) {
			return r.c.CallRaw(ctx, nil, method, params)
		},
		Sub:      b.PubAddr(),
		Interval: 200 * time.Millisecond,
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dashboard.Protect([]byte(token), dash.Handler()))
	// The server closes after the dashboard's loops end (cleanups run last-in first-out), so
	// the page's open event stream ends first.
	t.Cleanup(srv.Close)
	testutil.Go(t, "dashboard Run", waitLong, dash.Run)
	r.url = srv.URL
	return r
}

// TestDashboardInChromium drives the page in headless Chromium: it signs in, sees both nodes
// and a queue's depth, sees the counters move as tasks run (no reload), sees a failure with
// its error and runs it again from its requeue button, sees a running task's progress, revokes it from its button and sees it REVOKED,
// and saves a screenshot.
func TestDashboardInChromium(t *testing.T) {
	exe := chromium(t)
	const token = "s3cret-dashboard-token"
	r := startRig(t, token)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1700),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// waitText polls the text of the first element sel matches until ok accepts it.
	waitText := func(what, sel string, ok func(string) bool) string {
		t.Helper()
		js := `(() => { const e = document.querySelector(` + strconv.Quote(sel) + `); return e ? e.textContent : "\u0000none"; })()`
		var got string
		var err error
		deadline := time.Now().Add(waitLong)
		for {
			got, err = chromedp.Run(ctx, chromedp.Evaluate[string](js))
			if err == nil && got != "\u0000none" && ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s shows %q (err %v)", what, sel, got, err)
			}
			time.Sleep(50 * time.Millisecond) // polling the page, bounded by the deadline
		}
	}

	// Without the cookie the page is the login form (answered 401); signing in sets it.
	do("sign in",
		chromedp.Navigate(r.url+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("nodes")),
	)
	waitText("live", "#conn", func(s string) bool { return s == "live" })
	for _, name := range []string{"node-alpha", "node-beta"} {
		waitText("node "+name, `#nodes tr[data-node="`+name+`"] td`, func(s string) bool { return s == name })
	}

	tctx := testutil.Context(t, waitLong)
	// Tasks of a method no node serves wait in their queue: its depth shows.
	for i := range 3 {
		if _, err := r.c.Submit(tctx, "later", []any{i}); err != nil {
			t.Fatal(err)
		}
	}
	waitText("queue depth", `#queues tr[data-method="later"] td.depth`, func(s string) bool { return s == "3" })

	// The counters move as tasks finish, without a reload.
	before, _ := strconv.Atoi(waitText("succeeded", "#stat-succeeded", func(s string) bool { return s != "-" }))
	for i := range 5 {
		var out []int
		if err := r.c.Call(tctx, "work", &out, i); err != nil {
			t.Fatal(err)
		}
	}
	waitText("succeeded after 5 more", "#stat-succeeded", func(s string) bool { return s == strconv.Itoa(before+5) })

	// A failure shows with its params and error.
	h, err := r.c.Submit(tctx, "fail", []any{"marker-77"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Wait(tctx, nil); err == nil {
		t.Fatal("fail succeeded")
	}
	waitText("failure", `#failures tr[data-id="`+h.ID()+`"] td.err`, func(s string) bool { return strings.Contains(s, "marker-77") })
	waitText("failure's params", `#failures tr[data-id="`+h.ID()+`"] td.params`, func(s string) bool { return s == `["marker-77"]` })
	// Its requeue button runs it again from the archive (it fails again: the failed counter
	// moves by one).
	failed := r.b.Stats().Failed
	waitText("failed", "#stat-failed", func(s string) bool { return s == strconv.FormatUint(failed, 10) })
	do("requeue button", chromedp.Click(chromedp.CSS(`#failures tr[data-id="`+h.ID()+`"] button.requeue`)))
	waitText("requeued", "#msg", func(s string) bool { return s == "requeue "+h.ID()+": running again" })
	waitText("failed again", "#stat-failed", func(s string) bool { return s == strconv.FormatUint(failed+1, 10) })

	// A running task revoked from its button ends REVOKED, and its handler is stopped.
	hb, err := r.c.Submit(tctx, "block", []any{"blocker"})
	if err != nil {
		t.Fatal(err)
	}
	row := `#tasks tr[data-id="` + hb.ID() + `"]`
	waitText("running", row+" td.state", func(s string) bool { return s == "RUNNING" })
	waitText("progress", row+" td.progress", func(s string) bool { return s == "3/7 (42%) halfway" })
	do("revoke button", chromedp.Click(chromedp.CSS(row+" button.revoke")))
	waitText("revoked", row+" td.state", func(s string) bool { return s == "REVOKED" })
	select {
	case <-r.blocked:
	case <-time.After(waitLong):
		t.Error("the revoked task's handler did not see its context end")
	}
	if st, err := hb.Status(tctx); err != nil || st != client.StateRevoked {
		t.Errorf("status after the revoke: %v, %v", st, err)
	}

	// Lookup by id shows the record.
	do("lookup",
		chromedp.SetValue(chromedp.ID("lookup-id"), h.ID()),
		chromedp.Click(chromedp.ID("lookup-go")),
	)
	waitText("record", "#record", func(s string) bool { return strings.Contains(s, `"FAILURE"`) && strings.Contains(s, "marker-77") })

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), "dashboard.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
