package e2e

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// metricsLine matches what a command prints once --http serves.
var metricsLine = regexp.MustCompile(`^metrics on (http://\S+)$`)

// scrape reads a /metrics page and returns its samples by name and labels as written
// (`name{a="b"}`), with the raw text.
func scrape(t testing.TB, url string) (map[string]float64, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v\n%s", url, resp.Status, err, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	m := make(map[string]float64)
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: bad sample %q", url, l)
		}
		m[l[:i]] = v
	}
	return m, body
}

// promtool runs `promtool check metrics` on an exposition.
func promtool(t *testing.T, what string, body []byte) {
	t.Helper()
	p := testutil.Binary(t, "promtool", "apt-get install -y prometheus")
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", what, err, out)
	}
}

// TestMetrics runs a mixed load (successes, failures, a retry, a revoke) through a broker and
// nodes started with --http, reads both /metrics pages back, checks the values against what
// was run, and has promtool check both.
func TestMetrics(t *testing.T) {
	bd, router, pub := startBinaryBroker(t, "--http", "127.0.0.1:0")
	ctx := testutil.Context(t, 60*time.Second)
	m, err := bd.expect(ctx, metricsLine)
	if err != nil {
		t.Fatalf("broker --http: %v\n%s", err, bd.Stderr())
	}
	brokerURL := m[1]
	nd := startBinaryNode(t, router, pub, "--http", "127.0.0.1:0", "--concurrency", "4")
	if m, err = nd.expect(ctx, metricsLine); err != nil {
		t.Fatalf("node --http: %v\n%s", err, nd.Stderr())
	}
	nodeURL := m[1]
	// A node that only serves queue "victim": killed while it runs a task, which is retried
	// and then waits in that queue (no other node serves it).
	victim := startBinaryNode(t, router, pub, "--queues", "victim", "--concurrency", "1")
	c := dial(t, router)

	const ok, bad = 20, 5
	for i := 0; i < ok; i++ {
		var sum int
		if err := c.Call(ctx, "add", &sum, i, 1); err != nil || sum != i+1 {
			t.Fatalf("add %d 1: %d, %v", i, sum, err)
		}
	}
	for i := 0; i < bad; i++ {
		if err := c.Call(ctx, "add", nil, "x", i); err == nil {
			t.Fatal("add x: no error")
		}
	}
	h, err := c.Submit(ctx, "sleep", []any{60000})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, err := h.Status(ctx)
		return err == nil && st == client.StateRunning
	}, "sleep 60000 running")
	if ti, err := c.Revoke(ctx, h.ID()); err != nil || ti.State != client.StateRevoked {
		t.Fatalf("revoke: %+v, %v", ti, err)
	}
	v, err := c.Submit(ctx, "sleep", []any{60000}, client.Queue("victim"), client.MaxAttempts(3))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, err := v.Status(ctx)
		return err == nil && st == client.StateRunning
	}, "sleep 60000 running on the victim node")
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}

	key := func(name string, kv ...string) string {
		var b strings.Builder
		b.WriteString(name)
		if len(kv) > 0 {
			b.WriteByte('{')
			for i := 0; i < len(kv); i += 2 {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(kv[i] + `="` + kv[i+1] + `"`)
			}
			b.WriteByte('}')
		}
		return b.String()
	}
	tasks := func(method, queue, outcome string) string {
		return key(protocol.MetricTasks, protocol.LabelMethod, method, protocol.LabelQueue, queue, protocol.LabelOutcome, outcome)
	}
	want := map[string]float64{
		tasks("add", "default", protocol.OutcomeSucceeded):                                                                    ok,
		tasks("add", "default", protocol.OutcomeFailed):                                                                       bad,
		tasks("add", "default", protocol.OutcomeRetried):                                                                      0,
		tasks("sleep", "default", protocol.OutcomeRevoked):                                                                    1,
		tasks("sleep", "default", protocol.OutcomeSucceeded):                                                                  0,
		tasks("sleep", "victim", protocol.OutcomeRetried):                                                                     1,
		tasks("sleep", "victim", protocol.OutcomeFailed):                                                                      0,
		key(protocol.MetricQueued, protocol.LabelMethod, "sleep", protocol.LabelQueue, "victim"):                              1,
		key(protocol.MetricQueued, protocol.LabelMethod, "add", protocol.LabelQueue, "default"):                               0,
		key(protocol.MetricRunning):                                                                                           0,
		key(protocol.MetricNodes):                                                                                             1,
		key(protocol.MetricTasksAccepted):                                                                                     ok + bad + 2,
		key(protocol.MetricTotalSeconds+"_count", protocol.LabelMethod, "add", protocol.LabelQueue, "default"):                ok + bad,
		key(protocol.MetricRunningSeconds+"_count", protocol.LabelMethod, "add", protocol.LabelQueue, "default"):              ok + bad,
		key(protocol.MetricQueuedSeconds+"_count", protocol.LabelMethod, "add", protocol.LabelQueue, "default"):               ok + bad,
		key(protocol.MetricTotalSeconds+"_bucket", protocol.LabelMethod, "add", protocol.LabelQueue, "default", "le", "+Inf"): ok + bad,
	}
	var got map[string]float64
	var brokerBody []byte
	if !testutil.Poll(15*time.Second, func() bool {
		got, brokerBody = scrape(t, brokerURL)
		for k, w := range want {
			if got[k] != w {
				return false
			}
		}
		return true
	}) {
		for k, w := range want {
			if g, seen := got[k]; g != w || !seen {
				t.Errorf("broker %s = %v (present %v), want %v", k, g, seen, w)
			}
		}
		t.Fatalf("broker /metrics:\n%s", brokerBody)
	}
	age := got[key(protocol.MetricOldestAge, protocol.LabelMethod, "sleep", protocol.LabelQueue, "victim")]
	if age <= 0 || age > 60 {
		t.Errorf("oldest age of queue victim = %v s, want in (0, 60]", age)
	}
	if s := got[key(protocol.MetricTotalSeconds+"_sum", protocol.LabelMethod, "add", protocol.LabelQueue, "default")]; s <= 0 || s > 60 {
		t.Errorf("end-to-end time of add = %v s in all, want in (0, 60]", s)
	}

	nodeWant := map[string]float64{
		key(protocol.MetricNodeTasks, protocol.LabelMethod, "add", protocol.LabelOutcome, protocol.OutcomeSucceeded): ok,
		key(protocol.MetricNodeTasks, protocol.LabelMethod, "add", protocol.LabelOutcome, protocol.OutcomeFailed):    bad,
		key(protocol.MetricNodeTasks, protocol.LabelMethod, "sleep", protocol.LabelOutcome, protocol.OutcomeFailed):  1, // revoked
		key(protocol.MetricNodePanics, protocol.LabelMethod, "add"):                                                  0,
		key(protocol.MetricNodeRunning):                                              0,
		key(protocol.MetricNodeHandlerSeconds+"_count", protocol.LabelMethod, "add"): ok + bad,
	}
	var nodeBody []byte
	if !testutil.Poll(10*time.Second, func() bool {
		got, nodeBody = scrape(t, nodeURL)
		for k, w := range nodeWant {
			if got[k] != w {
				return false
			}
		}
		return true
	}) {
		for k, w := range nodeWant {
			if g, seen := got[k]; g != w || !seen {
				t.Errorf("node %s = %v (present %v), want %v", k, g, seen, w)
			}
		}
		t.Fatalf("node /metrics:\n%s", nodeBody)
	}
	promtool(t, "broker", brokerBody)
	promtool(t, "node", nodeBody)
}

// TestMetricsHTTPSafe: --http on a non-loopback address without --http-token refuses to start;
// with a token, a request without it (or with another) gets 401.
func TestMetricsHTTPSafe(t *testing.T) {
	code, _, stderr := zerotask(t, 20*time.Second, "broker", "--listen", "tcp://127.0.0.1:0", "--pub", "none", "--http", "0.0.0.0:0")
	if code == 0 || !strings.Contains(stderr, "--http-token") {
		t.Errorf("broker --http 0.0.0.0:0 without a token: exit %d, stderr %q; want a refusal naming --http-token", code, stderr)
	}
	tok := t.TempDir() + "/token"
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bd, _, _ := startBinaryBroker(t, "--http", "127.0.0.1:0", "--http-token", tok)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := bd.expect(ctx, metricsLine)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Basic czNjcmV0", http.StatusUnauthorized},
		{"Bearer s3cret", http.StatusOK},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m[1], nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: %s, want %d", tc.auth, resp.Status, tc.want)
		}
	}
}
