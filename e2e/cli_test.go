package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestBinaryCLI drives the client commands through the built binary against a real broker and
// node: flags after the arguments, the task options of submit and call, revoke, stats and
// nodes, and the exit status table (0 success, 1 task failed, 2 usage, 3 unknown task, 4
// broker unreachable or timed out).
func TestBinaryCLI(t *testing.T) {
	_, router, pub := startBinaryBroker(t)
	startBinaryNode(t, router, pub, "--concurrency", "2")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return zerotask(t, 60*time.Second, append([]string{args[0], "--broker", router}, args[1:]...)...)
	}
	// "node serving" is printed when the node's side is up; the broker lists it once its hello
	// arrived, and the table below starts with calls that need it there.
	testutil.Eventually(t, 30*time.Second, func() bool {
		code, out, _ := run("nodes")
		return code == 0 && strings.Contains(out, `"add"`)
	}, "the broker lists the node")
	submit := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(append([]string{"submit"}, args...)...)
		id := strings.TrimSpace(out)
		if code != 0 || id == "" || !strings.HasSuffix(out, "\n") {
			t.Fatalf("zerotask submit %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
		return id
	}
	type record struct {
		ID, State, Method string
		Attempts          int
		Result            json.RawMessage
		Error             *struct{ Code int }
	}
	decode := func(out string) record {
		t.Helper()
		var r record
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("not a task record: %q (%v)", out, err)
		}
		return r
	}

	tests := []struct {
		name string
		args []string
		code int
		out  string // exact stdout, unless empty
		err  string // part of stderr, unless empty
	}{
		{"flags after the args", []string{"call", "add", "5", "6", "--timeout", "20s"}, 0, "11\n", ""},
		{"flags on both sides", []string{"call", "--timeout", "20s", "add", "5", "--priority", "9", "6"}, 0, "11\n", ""},
		{"negative numbers are args", []string{"call", "subtract", "-5", "-6"}, 0, "1\n", ""},
		{"-- ends the flags", []string{"call", "echo", "--timeout", "20s", "--", "--timeout"}, 0, "\"--timeout\"\n", ""},
		{"task options", []string{"call", "add", "1", "2", "--queue", "default", "--max-attempts", "3", "--backoff", "10ms", "--delay", "10ms"}, 0, "3\n", ""},
		{"eta in the past", []string{"call", "add", "1", "2", "--eta", "2020-01-01T00:00:00Z"}, 0, "3\n", ""},
		{"call with a key", []string{"call", "add", "2", "2", "--key", "cli-call-key"}, 0, "4\n", ""},
		{"task error", []string{"call", "add", "1", "x"}, 1, "", `"code":-32602`},
		{"bad priority", []string{"call", "add", "1", "2", "--priority", "10"}, 2, "", "Priority 10 outside"},
		{"bad eta", []string{"submit", "add", "--eta", "soon"}, 2, "", "--eta must be an RFC 3339 time"},
		{"unknown flag after the args", []string{"call", "add", "1", "2", "--frobnicate"}, 2, "", "flag provided but not defined"},
		{"unknown task", []string{"status", "no-such-task"}, 3, "", ""},
		{"unknown task result", []string{"result", "no-such-task"}, 3, "", ""},
		{"no node serves it", []string{"call", "nosuch", "1", "--timeout", "20s"}, 4, "", `no node serves "nosuch"`},
		{"queue no node takes", []string{"call", "add", "1", "2", "--queue", "elsewhere"}, 4, "", `from queue "elsewhere"`},
		{"stats", []string{"stats"}, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != tc.code || (tc.out != "" && out != tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("zerotask %s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
					strings.Join(tc.args, " "), code, out, errOut, tc.code, tc.out, tc.err)
			}
			if out != "" && !strings.HasSuffix(out, "\n") {
				t.Fatalf("stdout %q does not end in a newline", out)
			}
		})
	}

	// submit with options, then result: SUCCESS exits 0; the same key gets the same task.
	id := submit("sleep", "30", "--key", "cli-submit-key", "--priority", "5", "--timeout", "30s", "--max-attempts", "2")
	if again := submit("--key", "cli-submit-key", "sleep", "30"); again != id {
		t.Fatalf("the same key gave task %s, then %s", id, again)
	}
	code, out, errOut := run("result", id, "--wait", "20s")
	if r := decode(out); code != 0 || r.State != "SUCCESS" || string(r.Result) != "30" {
		t.Fatalf("result %s: exit %d, stdout %q, stderr %q", id, code, out, errOut)
	}

	// A delayed task: result at once is not finished (4); revoke it (0), then its result and
	// status say REVOKED (1); revoking an unknown id exits 3.
	id = submit("sleep", "10", "--delay", "1h")
	if code, out, _ := run("result", id); code != 4 || decode(out).State != "QUEUED" {
		t.Fatalf("result of a delayed task: exit %d, stdout %q; want 4 and QUEUED", code, out)
	}
	code, out, errOut = run("revoke", id)
	if r := decode(out); code != 0 || r.State != "REVOKED" {
		t.Fatalf("revoke %s: exit %d, stdout %q, stderr %q", id, code, out, errOut)
	}
	for _, cmd := range []string{"status", "result"} {
		if code, out, _ := run(cmd, id); code != 1 || decode(out).State != "REVOKED" {
			t.Fatalf("%s of a revoked task: exit %d, stdout %q; want 1 and REVOKED", cmd, code, out)
		}
	}
	id2 := submit("sleep", "10", "--delay", "1h")
	code, out, _ = run("revoke", id2, "no-such-task")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 3 || len(lines) != 2 || decode(lines[0]).State != "REVOKED" || decode(lines[1]).State != "UNKNOWN" {
		t.Fatalf("revoke %s no-such-task: exit %d, stdout %q; want 3 and two records", id2, code, out)
	}

	// A task that expires before it runs: EXPIRED, exit 1.
	id = submit("sleep", "10", "--delay", "300ms", "--timeout", "100ms")
	code, out, _ = run("result", id, "--wait", "20s")
	if r := decode(out); code != 1 || r.State != "EXPIRED" {
		t.Fatalf("result of an expired task: exit %d, stdout %q; want 1 and EXPIRED", code, out)
	}

	// nodes: JSON off a terminal, naming what the node serves.
	code, out, _ = run("nodes")
	var nodes []struct {
		Methods []string `json:"methods"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &nodes) != nil || len(nodes) != 1 || len(nodes[0].Methods) != 5 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("nodes: exit %d, stdout %q", code, out)
	}
	// pause: a paused queue keeps accepting and hands nothing out; purge drops its tasks;
	// resume runs what came after.
	if code, out, errOut := run("pause", "default"); code != 0 || out != `{"queue":"default","paused":true}`+"\n" {
		t.Fatalf("pause: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id = submit("add", "1", "2")
	if code, out, _ := run("result", id, "--wait", "300ms"); code != 4 || decode(out).State != "QUEUED" {
		t.Fatalf("result in a paused queue: exit %d, stdout %q; want 4 and QUEUED", code, out)
	}
	if code, out, errOut := run("purge", "--queue", "default", "--method", "add"); code != 0 || out != `{"purged":1}`+"\n" {
		t.Fatalf("purge: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := run("status", id); code != 1 || decode(out).State != "REVOKED" {
		t.Fatalf("status of a purged task: exit %d, stdout %q; want 1 and REVOKED", code, out)
	}
	id = submit("add", "2", "3")
	if code, out, errOut := run("resume", "default"); code != 0 || out != `{"queue":"default","paused":false}`+"\n" {
		t.Fatalf("resume: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := run("result", id, "--wait", "20s"); code != 0 || string(decode(out).Result) != "5" {
		t.Fatalf("result after resume: exit %d, stdout %q", code, out)
	}
	if code, _, errOut := run("purge"); code != 2 || !strings.Contains(errOut, "purge needs --queue") {
		t.Fatalf("purge without a filter: exit %d, stderr %q", code, errOut)
	}

	// The broker unreachable: 4.
	code, _, errOut = zerotask(t, 30*time.Second, "stats", "--timeout", "300ms", "--broker", "tcp://127.0.0.1:1")
	if code != 4 || !strings.Contains(errOut, "zerotask stats: connect to") {
		t.Fatalf("stats of a dead endpoint: exit %d, stderr %q", code, errOut)
	}
}
