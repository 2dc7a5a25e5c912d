package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// TestBinaryLsRequeue drives `zerotask ls` and `zerotask requeue` through the built binary
// against a real broker and a node whose "flaky" task fails (retryably) until told not to: a
// task that fails 3 times is in the archive with 3 errors, `zerotask requeue ID` runs it again
// and it succeeds; ls filters by state, queue and method with flags after the arguments; the
// exit statuses follow the table (3 for an id not in the archive, 2 for usage).
func TestBinaryLsRequeue(t *testing.T) {
	_, router, pub := startBinaryBroker(t)
	var healed atomic.Bool
	d := builtins(t)
	if err := d.Register("flaky", dispatch.HandlerFunc(func(_ context.Context, dst, params []byte) ([]byte, error) {
		if healed.Load() {
			return append(dst, params...), nil
		}
		return dst, dispatch.Retry(errors.New("flaky is down"))
	})); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{Broker: router, Sub: pub, Dispatcher: d, Name: "n1", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Go(t, "node.Serve", 15*time.Second, n.Serve)
	waitConnected(t, n)

	run := func(args ...string) (int, string, string) {
		t.Helper()
		return zerotask(t, 60*time.Second, append([]string{args[0], "--broker", router}, args[1:]...)...)
	}
	code, out, errOut := run("submit", "flaky", "7", "--max-attempts", "3", "--backoff", "10ms")
	id := strings.TrimSpace(out)
	if code != 0 || id == "" {
		t.Fatalf("submit: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := run("result", id, "--wait", "30s"); code != 1 || !strings.Contains(out, `"FAILURE"`) {
		t.Fatalf("result of a task failing 3 times: exit %d, stdout %q", code, out)
	}
	type rec struct {
		ID       string          `json:"id"`
		State    string          `json:"state"`
		Method   string          `json:"method"`
		Attempts int             `json:"attempts"`
		Params   json.RawMessage `json:"params"`
		Archived bool            `json:"archived"`
		Errors   []struct {
			Attempt int    `json:"attempt"`
			Node    string `json:"node"`
			Error   struct {
				Message string `json:"message"`
			} `json:"error"`
		} `json:"errors"`
	}
	lines := func(out string) []rec {
		t.Helper()
		var rs []rec
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if l == "" {
				continue
			}
			var r rec
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("not a record: %q", l)
			}
			rs = append(rs, r)
		}
		return rs
	}
	code, out, errOut = run("ls", "--state", "FAILURE")
	rs := lines(out)
	if code != 0 || len(rs) != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("ls --state FAILURE: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	r := rs[0]
	if r.ID != id || !r.Archived || r.Attempts != 3 || string(r.Params) != "[7]" || len(r.Errors) != 3 {
		t.Fatalf("archived record: %+v", r)
	}
	for i, e := range r.Errors {
		if e.Attempt != i+1 || e.Node != "n1" || !strings.Contains(e.Error.Message, "flaky is down") {
			t.Fatalf("attempt %d: %+v", i+1, e)
		}
	}

	// Queued tasks in another queue (no node takes it): ls by queue and method, flags anywhere.
	for range 3 {
		if code, _, errOut := run("submit", "add", "1", "2", "--queue", "parked"); code != 0 {
			t.Fatalf("submit to parked: %d %s", code, errOut)
		}
	}
	code, out, _ = run("ls", "--method", "add", "--state", "QUEUED", "--queue", "parked", "--limit", "2")
	if rs := lines(out); code != 0 || len(rs) != 2 || rs[0].State != "QUEUED" {
		t.Fatalf("ls --queue parked --limit 2: exit %d, stdout %q", code, out)
	}
	code, out, _ = run("ls", "--queue", "parked", "--newest", "--json")
	if rs := lines(out); code != 0 || len(rs) != 3 {
		t.Fatalf("ls --queue parked: exit %d, stdout %q", code, out)
	}

	// requeue: an id not in the archive exits 3; the failed task runs again and succeeds.
	if code, _, errOut := run("requeue", "no-such-task"); code != 3 {
		t.Fatalf("requeue of an unknown id: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := run("requeue"); code != 2 {
		t.Fatalf("requeue without ids or filter: exit %d, want 2", code)
	}
	healed.Store(true)
	if code, out, errOut := run("requeue", id); code != 0 || out != `{"requeued":1}`+"\n" {
		t.Fatalf("requeue %s: exit %d, stdout %q, stderr %q", id, code, out, errOut)
	}
	if code, out, _ := run("result", id, "--wait", "30s"); code != 0 || !strings.Contains(out, `"result":[7]`) {
		t.Fatalf("result after requeue: exit %d, stdout %q", code, out)
	}
	if code, out, _ := run("ls", "--state", "FAILURE"); code != 0 || out != "" {
		t.Fatalf("archive after the requeued task succeeded: exit %d, stdout %q", code, out)
	}

	// requeue by filter: revoke the parked tasks, then requeue every REVOKED one of "add".
	if code, out, _ = run("ls", "--queue", "parked"); code != 0 {
		t.Fatalf("ls --queue parked: exit %d", code)
	}
	var ids []string
	for _, r := range lines(out) {
		ids = append(ids, r.ID)
	}
	if code, _, errOut := run(append([]string{"revoke"}, ids...)...); code != 0 {
		t.Fatalf("revoke: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := run("requeue", "--method", "add", "--state", "REVOKED"); code != 0 || out != `{"requeued":3}`+"\n" {
		t.Fatalf("requeue by filter: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := run("ls", "--queue", "parked", "--state", "QUEUED"); code != 0 || len(lines(out)) != 3 {
		t.Fatalf("requeued parked tasks: exit %d, stdout %q", code, out)
	}
}
