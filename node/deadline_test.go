package node

import (
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
)

// TestDeadlinesOfOneMessage: every task of a message gets the deadline of its own timeout_ms,
// whether it repeats the one before it (the reader reuses what it computed) or not, and a
// later message's tasks get deadlines from their own arrival.
func TestDeadlinesOfOneMessage(t *testing.T) {
	d := dispatch.New()
	if err := d.Register("add", rawAdd); err != nil {
		t.Fatal(err)
	}
	n, _, r := offlineNode(t, Config{Concurrency: 1, Prefetch: 16, Dispatcher: d})
	w := n.workers[0]
	task := func(id, ext string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"add","params":[5,6]` + ext + `}`
	}
	frame := "[" + task("1", `,"timeout_ms":100000`) + "," + task("2", `,"timeout_ms":50`) + "," +
		task("3", `,"timeout_ms":100000`) + "," + task("4", "") + "," + task("5", `,"timeout_ms":1.5`) + "," +
		task("6", `,"timeout_ms":100000,"attempt":2`) + "]"
	before := time.Now()
	r.ingest([]byte(frame))
	after := time.Now()
	got := map[string]time.Time{}
	for range 6 {
		tk := w.next()
		got[string(tk.id)] = tk.deadline
	}
	for _, tc := range []struct {
		id   string
		left time.Duration // 0: no deadline
	}{
		{"1", 100 * time.Second}, {"2", 50 * time.Millisecond}, {"3", 100 * time.Second},
		{"4", 0}, {"5", 0}, {"6", 100 * time.Second},
	} {
		dl := got[tc.id]
		switch {
		case tc.left == 0 && !dl.IsZero():
			t.Errorf("task %s: deadline %v, want none", tc.id, dl)
		case tc.left != 0 && (dl.Before(before.Add(tc.left)) || dl.After(after.Add(tc.left))):
			t.Errorf("task %s: deadline %v, want %v after its arrival (%v..%v)", tc.id, dl, tc.left, before, after)
		}
	}

	// A later message: its own arrival, not the deadline remembered from the first.
	for !time.Now().After(after) {
	}
	r.ingest([]byte(task("7", `,"timeout_ms":100000`)))
	if tk := w.next(); !tk.deadline.After(got["1"]) {
		t.Errorf("a later message's task has deadline %v, not after the first message's %v", tk.deadline, got["1"])
	}
}
