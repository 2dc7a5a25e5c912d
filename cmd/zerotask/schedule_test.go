package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestScheduleAndLimitCommands: `zerotask up --schedules FILE --limits FILE` starts with them;
// `zerotask schedule` and `zerotask limit` list, set and remove at run time; an interval
// schedule runs its task (its result is kept: `zerotask ls` finds it).
func TestScheduleAndLimitCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	scheds := write("schedules.json", `[{"name":"nightly","cron":"0 3 * * *","tz":"Europe/Berlin","method":"add","params":[1,2]}]`)
	limits := write("limits.json", `[{"scope":"method","name":"add","rate":50,"burst":5}]`)
	if code, _, errOut := runArgs(t, "broker", "--listen", "tcp://127.0.0.1:0", "--schedules", write("bad.json", `[{"name":"x"}]`)); code != exitUsage && code != exitFailure {
		t.Fatalf("a bad schedules file: exit %d, stderr %q", code, errOut)
	}

	ctx, stop := context.WithCancel(context.Background())
	var upOut, upErr testutil.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"up", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0",
			"--concurrency", "2", "--log-level", "error", "--schedules", scheds, "--limits", limits}, &stdio{out: &upOut, err: &upErr})
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
	cli := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runArgs(t, append(args, "--broker", router)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d; stdout %q, stderr %q", args, code, want, out, errOut)
		}
		return out
	}
	if out := cli(exitOK, "schedule", "list"); !strings.Contains(out, `"name":"nightly"`) || !strings.Contains(out, `"tz":"Europe/Berlin"`) {
		t.Fatalf("schedule list: %s", out)
	}
	if out := cli(exitOK, "limit", "list"); !strings.Contains(out, `{"scope":"method","name":"add","rate":50,"burst":5}`) {
		t.Fatalf("limit list: %s", out)
	}
	cli(exitOK, "schedule", "set", "often", "add", "20", "22", "--every", "1s", "--options", `{"priority":2}`)
	code, out, _ := runTTY(t, "schedule", "list", "--broker", router)
	if code != exitOK || !strings.Contains(out, "often") || !strings.Contains(out, "every 1s") {
		t.Fatalf("schedule list (table): %d %q", code, out)
	}
	cli(exitOK, "limit", "set", "--queue", "default", "--max-running", "2")
	code, out, _ = runTTY(t, "limit", "list", "--broker", router)
	if code != exitOK || !strings.Contains(out, "queue") || !strings.Contains(out, "default") {
		t.Fatalf("limit list (table): %d %q", code, out)
	}
	// The interval schedule runs add(20, 22) within a couple of seconds.
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, out, _ := runArgs(t, "ls", "--broker", router, "--method", "add")
		return strings.Contains(out, "42")
	}, "the schedule's task ran")
	cli(exitOK, "schedule", "remove", "often")
	cli(exitUnknown, "schedule", "remove", "often")
	cli(exitOK, "limit", "set", "--method", "add") // neither rate nor cap: removed
	if out := cli(exitOK, "limit", "list"); strings.Contains(out, `"add"`) {
		t.Fatalf("limit list after the removal: %s", out)
	}
	cli(exitUsage, "limit", "set", "--method", "a", "--queue", "b", "--rate", "1")
	cli(exitUsage, "schedule", "frob")
	cli(exitFailure, "schedule", "set", "x", "add", "--cron", "not cron")
}
