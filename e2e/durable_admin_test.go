package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestBinaryDurablePauseAndLs drives `zerotask pause`, `ls`, `result` and `resume` through the
// built binary against a durable broker on a real redis-server: a failed task is listed from
// the archive; a queue paused before a restart (SIGTERM, then a new broker process on the same
// store and owner id) is still paused after it: its task stays QUEUED with a node serving it,
// and runs once the queue is resumed. The failed task is still in the archive after the
// restart (it lives in redis), and `zerotask requeue` runs it again.
func TestBinaryDurablePauseAndLs(t *testing.T) {
	url, _ := startRedisStore(t)
	router := testutil.FreeEndpoint(t)
	args := []string{"broker", "--listen", router, "--pub", "none", "--log-level", "warn", "--store", url, "--owner", "e2e-admin"}
	b1, _ := startDaemon(t, brokerLine, args...)
	startBinaryNode(t, router, "none")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return zerotask(t, 60*time.Second, append([]string{args[0], "--broker", router}, args[1:]...)...)
	}
	id := func(out string) string { return strings.TrimSpace(out) }

	code, out, errOut := run("submit", "add", "1", "x")
	failed := id(out)
	if code != 0 {
		t.Fatalf("submit: exit %d, %q", code, errOut)
	}
	if code, out, _ := run("result", failed, "--wait", "30s"); code != 1 || !strings.Contains(out, `"FAILURE"`) {
		t.Fatalf("result of a failing task: exit %d, stdout %q", code, out)
	}
	if code, out, _ := run("ls", "--state", "FAILURE"); code != 0 || !strings.Contains(out, failed) || !strings.Contains(out, `"params":[1,"x"]`) {
		t.Fatalf("ls --state FAILURE on a durable broker: exit %d, stdout %q", code, out)
	}

	if code, out, errOut := run("pause", "default"); code != 0 || out != `{"queue":"default","paused":true}`+"\n" {
		t.Fatalf("pause: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = run("submit", "add", "1", "2")
	task := id(out)
	if code != 0 || task == "" {
		t.Fatalf("submit to the paused queue: exit %d", code)
	}
	if code, out, _ := run("ls", "--state", "QUEUED"); code != 0 || !strings.Contains(out, task) {
		t.Fatalf("ls --state QUEUED: exit %d, stdout %q", code, out)
	}
	stopDaemon(t, b1)
	startDaemon(t, brokerLine, args...)
	// The node reconnects by itself; the task is still held back by the pause.
	testutil.Eventually(t, 30*time.Second, func() bool {
		code, out, _ := run("nodes")
		return code == 0 && strings.Contains(out, `"add"`)
	}, "the node back on the restarted broker")
	if code, out, _ := run("result", task, "--wait", "1s"); code != 4 || !strings.Contains(out, `"QUEUED"`) {
		t.Fatalf("result in a queue paused before the restart: exit %d, stdout %q; want 4 and QUEUED", code, out)
	}
	if code, out, errOut := run("resume", "default"); code != 0 || out != `{"queue":"default","paused":false}`+"\n" {
		t.Fatalf("resume: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := run("result", task, "--wait", "30s"); code != 0 || !strings.Contains(out, `"result":3`) {
		t.Fatalf("result after resume: exit %d, stdout %q", code, out)
	}

	// The archive lives in the store: the failed task is still listed after the restart, and
	// `zerotask requeue` runs it again under its id (it fails again: its params are still bad).
	if code, out, _ := run("ls", "--state", "FAILURE", "--json"); code != 0 || !strings.Contains(out, failed) || !strings.Contains(out, `"archived":true`) {
		t.Fatalf("ls --state FAILURE after the restart: exit %d, stdout %q", code, out)
	}
	if code, _, errOut := run("requeue", "no-such-task"); code != 3 {
		t.Fatalf("requeue of an id not in the archive: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := run("requeue", failed); code != 0 || out != `{"requeued":1}`+"\n" {
		t.Fatalf("requeue %s: exit %d, stdout %q, stderr %q", failed, code, out, errOut)
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		code, out, _ := run("ls", "--state", "FAILURE", "--json")
		return code == 0 && strings.Contains(out, failed)
	}, "the requeued task failed again and archived again")
	if code, out, _ := run("result", failed, "--wait", "30s"); code != 1 || !strings.Contains(out, `"FAILURE"`) {
		t.Fatalf("result of the requeued task: exit %d, stdout %q", code, out)
	}
	// purge --archived forgets it.
	if code, out, errOut := run("purge", "--method", "add", "--archived"); code != 0 || out != `{"purged":1}`+"\n" {
		t.Fatalf("purge --archived: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ := run("ls", "--state", "FAILURE", "--json"); code != 0 || out != "" {
		t.Fatalf("ls --state FAILURE after purge --archived: exit %d, stdout %q", code, out)
	}
}
