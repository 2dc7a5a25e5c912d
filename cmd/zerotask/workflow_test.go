package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestSubmitWorkflow: `zerotask submit --workflow FILE` (a graph node, or a params object, or
// stdin) submits the graph and prints its id; result waits for it; misuse is a usage error.
func TestSubmitWorkflow(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	var upOut, upErr testutil.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"up", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0",
			"--concurrency", "2", "--log-level", "error"}, &stdio{out: &upOut, err: &upErr})
	}()
	defer func() {
		stop()
		<-exited
	}()
	var m []string
	testutil.Eventually(t, 10*time.Second, func() bool {
		m = listening.FindStringSubmatch(upOut.String())
		return m != nil
	}, "zerotask up never said where it listens: stdout %q, stderr %q", upOut.String(), upErr.String())
	router := m[1]

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chord := write("chord.json", `{"group":[{"method":"add","params":[1,2]},{"method":"add","params":[3,4]}],"callback":{"method":"sum"}}`)
	params := write("params.json", `{"workflow":{"group":[{"method":"add","params":[1,"x"]},{"method":"add","params":[3,4]}],
		"callback":{"method":"echo"}},"policy":"continue"}`)
	submit := func(args ...string) string {
		t.Helper()
		code, out, errOut := runArgs(t, append([]string{"submit", "--broker", router}, args...)...)
		if code != exitOK || !strings.HasSuffix(out, "\n") {
			t.Fatalf("submit %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	result := func(id string) (string, json.RawMessage) {
		t.Helper()
		code, out, errOut := runArgs(t, "result", "--broker", router, "--wait", "10s", id)
		var rec struct {
			State  string
			Result json.RawMessage
			Steps  []struct{ State string }
		}
		if json.Unmarshal([]byte(out), &rec) != nil {
			t.Fatalf("result: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		return rec.State, rec.Result
	}
	id := submit("--workflow", chord)
	if st, res := result(id); st != "SUCCESS" || string(res) != "10" {
		t.Fatalf("chord: %s %s", st, res)
	}
	if again := submit("--workflow", chord, "--key", "k"); again == id {
		t.Fatal("a new submit got the old id")
	} else if third := submit("--key", "k", "--workflow", chord); third != again {
		t.Fatalf("same key: %s, want %s", third, again)
	}
	id = submit("--workflow", params)
	if st, res := result(id); st != "SUCCESS" || !strings.HasPrefix(string(res), `[{"error":{"code":-32602`) || !strings.HasSuffix(string(res), `,7]`) {
		t.Fatalf("params file, continue policy: %s %s", st, res)
	}
	stdin = strings.NewReader(`{"chain":[{"method":"add","params":[1,2]},{"method":"add","params":[10]}]}`)
	defer func() { stdin = os.Stdin }()
	id = submit("--workflow", "-")
	if st, res := result(id); st != "SUCCESS" || string(res) != "13" {
		t.Fatalf("stdin chain: %s %s", st, res)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"a method too", []string{"--workflow", chord, "add"}, exitUsage, "takes no METHOD"},
		{"a task option", []string{"--workflow", chord, "--queue", "q"}, exitUsage, "--queue applies to a task"},
		{"no file", []string{"--workflow", filepath.Join(dir, "nope.json")}, exitUsage, "no such file"},
		{"not an object", []string{"--workflow", write("bad.json", `[1]`)}, exitUsage, "must hold a JSON object"},
		{"an invalid graph", []string{"--workflow", write("empty.json", `{"chain":[]}`)}, exitFailure, "must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runArgs(t, append([]string{"submit", "--broker", router}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.err) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tc.code, tc.err)
			}
		})
	}
}
