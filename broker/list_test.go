package broker

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
)

type listPage struct {
	Tasks []struct {
		ID       string          `json:"id"`
		Method   string          `json:"method"`
		Queue    string          `json:"queue"`
		State    string          `json:"state"`
		Attempts int             `json:"attempts"`
		Params   json.RawMessage `json:"params"`
		Archived bool            `json:"archived"`
		Errors   []struct {
			Attempt int             `json:"attempt"`
			Error   json.RawMessage `json:"error"`
			Node    string          `json:"node"`
		} `json:"errors"`
		MaxAttempts int `json:"max_attempts"`
	} `json:"tasks"`
	Cursor string `json:"cursor"`
}

func list(t testing.TB, c *tpeer, params string) listPage {
	t.Helper()
	r := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"l","method":"broker.list","params":%s}`, params)))
	if r.Error != nil {
		t.Fatalf("list %s: %+v", params, r.Error)
	}
	var pg listPage
	if err := json.Unmarshal(r.Result, &pg); err != nil {
		t.Fatalf("list %s: %s: %v", params, r.Result, err)
	}
	return pg
}

// listAll pages through a listing and returns the ids in order.
func listAll(t testing.TB, c *tpeer, filter string, limit int) []string {
	t.Helper()
	var ids []string
	cur := ""
	for range 10_000 {
		p := fmt.Sprintf(`{%s"limit":%d`, filter, limit)
		if cur != "" {
			p += fmt.Sprintf(`,"cursor":%q`, cur)
		}
		pg := list(t, c, p+"}")
		for _, tk := range pg.Tasks {
			ids = append(ids, tk.ID)
		}
		if pg.Cursor == "" {
			return ids
		}
		cur = pg.Cursor
	}
	t.Fatal("listing did not end")
	return nil
}

// TestListLiveTasks: queued tasks list by state, queue and method, oldest or newest first,
// page by page with a cursor; a finished task leaves the live listing.
func TestListLiveTasks(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	var a, q []string
	for i := range 25 {
		a = append(a, submit(t, c, "a", fmt.Sprintf("[%d]", i)))
		q = append(q, submitID(t, c, "b", "[1]", `"queue":"slow"`))
	}
	if got := listAll(t, c, `"state":"QUEUED","method":"a",`, 7); !slices.Equal(got, a) {
		t.Fatalf("method a oldest first:\n got %v\nwant %v", got, a)
	}
	if got := listAll(t, c, `"queue":"slow","order":"newest",`, 4); !slices.Equal(got, reversed(q)) {
		t.Fatalf("queue slow newest first:\n got %v\nwant %v", got, reversed(q))
	}
	if got := listAll(t, c, `"queue":"default",`, 100); !slices.Equal(got, a) {
		t.Fatalf("queue default: %v", got)
	}
	if got := listAll(t, c, `"state":"RUNNING",`, 100); len(got) != 0 {
		t.Fatalf("RUNNING: %v", got)
	}
	pg := list(t, c, `{"limit":3}`)
	if len(pg.Tasks) != 3 || pg.Tasks[0].ID != a[0] || pg.Tasks[1].ID != q[0] || pg.Tasks[0].State != "QUEUED" || pg.Cursor == "" {
		t.Fatalf("first page of everything: %+v", pg)
	}
	n := newNode(t, b, "n1", "a")
	n.credit(1)
	tk := n.collect(1)[0]
	n.result(tk.ID, "1")
	waitState(t, c, a[0], "SUCCESS")
	if got := listAll(t, c, `"method":"a","state":"QUEUED",`, 100); !slices.Equal(got, a[1:]) {
		t.Fatalf("after one ran: %v", got)
	}
	if got := listAll(t, c, `"state":"SUCCESS",`, 100); !slices.Equal(got, a[:1]) {
		t.Fatalf("SUCCESS: %v", got)
	}
	for _, p := range []string{
		`{"state":"NOPE"}`, `{"limit":0}`, `{"limit":1001}`, `{"order":"up"}`, `{"cursor":"x"}`, `{"cursor":"q12"}`,
		`{"state":"QUEUED","cursor":"a1"}`, `{"queue":""}`,
	} {
		if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":"e","method":"broker.list","params":`+p+`}`)); code != codec.CodeInvalidParams {
			t.Errorf("%s: code %d, want -32602", p, code)
		}
	}
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func waitState(t testing.TB, c *tpeer, id, state string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		st := status(t, c, id)
		if st.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %s, want %s", id, st.State, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestArchiveAndRequeue: a task that fails 3 times is archived with its params, options and 3
// errors (node and attempt each); requeued, it runs again under its id with its params, and
// succeeds; an expired and a revoked task are archived too and requeue by filter.
func TestArchiveAndRequeue(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	n := newNode(t, b, "n1", "flaky")
	id := submitID(t, c, "flaky", `{"x":1}`, `"max_attempts":3,"backoff_ms":1`)
	for attempt := 1; attempt <= 3; attempt++ {
		n.credit(1)
		tk := n.collect(1)[0]
		if string(tk.Params) != `{"x":1}` {
			t.Fatalf("attempt %d params %s", attempt, tk.Params)
		}
		n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32050,"message":"boom %d"},"retry":true}`, tk.ID, attempt))
	}
	waitState(t, c, id, "FAILURE")
	pg := list(t, c, `{"state":"FAILURE"}`)
	if len(pg.Tasks) != 1 || pg.Cursor != "" {
		t.Fatalf("archive: %+v", pg)
	}
	d := pg.Tasks[0]
	if d.ID != id || !d.Archived || string(d.Params) != `{"x":1}` || d.Attempts != 3 || d.MaxAttempts != 3 || len(d.Errors) != 3 {
		t.Fatalf("archived task: %+v", d)
	}
	for i, e := range d.Errors {
		if e.Attempt != i+1 || e.Node != "n1" || string(e.Error) != fmt.Sprintf(`{"code":-32050,"message":"boom %d"}`, i+1) {
			t.Fatalf("attempt %d: %+v %s", i+1, e, e.Error)
		}
	}
	r := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"rq","method":"broker.requeue","params":{"id":%q}}`, id)))
	if r.Error != nil || string(r.Result) != `{"requeued":1}` {
		t.Fatalf("requeue: %+v %s", r.Error, r.Result)
	}
	if got := listAll(t, c, `"state":"FAILURE",`, 10); len(got) != 0 {
		t.Fatalf("archive after requeue: %v", got)
	}
	n.credit(1)
	tk := n.collect(1)[0]
	if string(tk.Params) != `{"x":1}` {
		t.Fatalf("requeued params %s", tk.Params)
	}
	n.result(tk.ID, "42")
	waitState(t, c, id, "SUCCESS")

	// An expired and a revoked task; a filter requeues both.
	exp := submitID(t, c, "gone", "[1]", `"timeout_ms":1`)
	rev := submit(t, c, "gone", "[2]")
	if got := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"rv","method":"broker.revoke","params":{"id":%q}}`, rev))); got.Error != nil {
		t.Fatalf("revoke: %+v", got.Error)
	}
	waitState(t, c, exp, "EXPIRED")
	// In archive order, which depends on whether the expiry's tick came before the revoke.
	got := listAll(t, c, `"method":"gone",`, 1)
	slices.Sort(got)
	want := []string{exp, rev}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("archived gone: %v, want %v", got, want)
	}
	r = decodeResp(t, c.call(`{"jsonrpc":"2.0","id":"rq","method":"broker.requeue","params":{"method":"gone"}}`))
	if r.Error != nil || string(r.Result) != `{"requeued":2}` {
		t.Fatalf("requeue by filter: %+v %s", r.Error, r.Result)
	}

	// broker.purge with "archived" forgets the archived tasks of a method, and only those.
	doomed := submitID(t, c, "doomed", "[3]", "")
	if got := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"rv","method":"broker.revoke","params":{"id":%q}}`, doomed))); got.Error != nil {
		t.Fatalf("revoke: %+v", got.Error)
	}
	before := len(listAll(t, c, `"state":"REVOKED",`, 10))
	r = decodeResp(t, c.call(`{"jsonrpc":"2.0","id":"pg","method":"broker.purge","params":{"method":"doomed","archived":true}}`))
	if r.Error != nil || string(r.Result) != `{"purged":1}` {
		t.Fatalf("purge archived: %+v %s", r.Error, r.Result)
	}
	if after := len(listAll(t, c, `"state":"REVOKED",`, 10)); after != before-1 {
		t.Fatalf("archived REVOKED tasks: %d before the purge, %d after", before, after)
	}
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":"pg","method":"broker.purge","params":{"method":"doomed","archived":1}}`)); code != codec.CodeInvalidParams {
		t.Fatalf("archived not a boolean: code %d", code)
	}
	if st := status(t, c, rev); st.State != "QUEUED" {
		t.Fatalf("requeued revoked task: %+v", st)
	}
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":"e","method":"broker.requeue","params":{}}`)); code != codec.CodeInvalidParams {
		t.Fatalf("requeue without a selection: %d", code)
	}
}

// TestArchiveBounds: the archive keeps at most ArchiveMax tasks (the oldest go first), at
// most ArchiveMaxBytes, and none older than ArchiveTTL.
func TestArchiveBounds(t *testing.T) {
	a := newArchive(3, 1<<20, time.Hour)
	for seq := uint64(1); seq <= 5; seq++ {
		a.put(&dead{seq: seq, ended: int64(seq)})
	}
	if len(a.recs) != 3 || a.recs[3] == nil || a.recs[2] != nil {
		t.Fatalf("count bound: %d entries", len(a.recs))
	}
	a.put(&dead{seq: 9, ended: 9}) // at the bound: one in, one out
	if len(a.recs) != 3 || a.recs[3] != nil || a.recs[9] == nil {
		t.Fatalf("at the count bound: %v", a.recs)
	}

	a = newArchive(100, 3*(deadOverhead+100), time.Hour)
	for seq := uint64(1); seq <= 3; seq++ {
		a.put(&dead{seq: seq, params: make([]byte, 100)})
	}
	if len(a.recs) != 3 || a.bytes != 3*(deadOverhead+100) {
		t.Fatalf("bytes exactly at the bound: %d entries, %d bytes", len(a.recs), a.bytes)
	}
	a.put(&dead{seq: 4, params: make([]byte, 1)})
	if len(a.recs) != 3 || a.recs[1] != nil {
		t.Fatalf("bytes past the bound: %d entries, %d bytes", len(a.recs), a.bytes)
	}

	a = newArchive(100, 1<<20, time.Hour)
	a.put(&dead{seq: 1, ended: 0})
	a.put(&dead{seq: 2, ended: int64(time.Minute)})
	a.expire(int64(time.Hour)) // seq 1 is exactly one TTL old
	if a.recs[1] != nil || a.recs[2] == nil {
		t.Fatalf("ttl: %v", a.recs)
	}
	// Requeued (removed) and archived again: the old entry is stale, the task is listed once.
	a.remove(2)
	a.put(&dead{seq: 2, ended: int64(2 * time.Minute)})
	seen := 0
	for pos := a.popped; ; pos++ {
		d, ok := a.at(pos)
		if !ok {
			break
		}
		if d != nil {
			seen++
		}
	}
	if seen != 1 {
		t.Fatalf("task archived twice listed %d times", seen)
	}
}

// TestLiveIndex: next and prev over chunk boundaries, removal of emptied chunks.
func TestLiveIndex(t *testing.T) {
	var x liveIndex
	seqs := []uint64{1, 2, 63, 64, 1023, 1024, 5000, 70000}
	for _, s := range seqs {
		x.add(s)
	}
	x.add(3000) // out of order: a requeued task
	x.remove(3000)
	var got []uint64
	for s, ok := x.next(0); ok; s, ok = x.next(s + 1) {
		got = append(got, s)
	}
	if !slices.Equal(got, seqs) {
		t.Fatalf("next: %v", got)
	}
	got = got[:0]
	for s, ok := x.prev(1 << 40); ok && s > 0; s, ok = x.prev(s - 1) {
		got = append(got, s)
	}
	if !slices.Equal(got, reversed64(seqs)) {
		t.Fatalf("prev: %v", got)
	}
	for _, s := range seqs {
		x.remove(s)
	}
	if len(x.chunks) != 0 || x.n != 0 {
		t.Fatalf("after removing all: %d chunks", len(x.chunks))
	}
}

func reversed64(s []uint64) []uint64 {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// TestArchiveListMemory: 100,000 archived failures list page by page, and listing them all
// leaves the heap where it was (a page is built in the broker's reused buffers); the archive
// holds them within ArchiveMaxBytes.
func TestArchiveListMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 archived tasks")
	}
	r := newRig(t, Config{})
	const total = 100_000
	for seq := uint64(1); seq <= total; seq++ {
		r.c.arch.put(&dead{seq: seq, method: "work", state: stFailure, tries: 3, params: []byte(`[1,2,3,"some params of a failed task"]`),
			errs: []attemptErr{{attempt: 3, node: "n1", err: []byte(`{"code":-32050,"message":"boom"}`)}}})
	}
	if r.c.arch.bytes > r.c.cfg.ArchiveMaxBytes || len(r.c.arch.recs) != total {
		t.Fatalf("archive: %d tasks, %d bytes (bound %d)", len(r.c.arch.recs), r.c.arch.bytes, r.c.cfg.ArchiveMaxBytes)
	}
	page := func(cur string) (int, string) {
		p := `{"state":"FAILURE","limit":1000`
		if cur != "" {
			p += `,"cursor":"` + cur + `"`
		}
		r.send("C", `{"jsonrpc":"2.0","id":1,"method":"broker.list","params":`+p+`}}`)
		var res struct {
			Result listPage `json:"result"`
		}
		if err := json.Unmarshal(r.out.body("C"), &res); err != nil {
			t.Fatalf("page: %.200s: %v", r.out.body("C"), err)
		}
		return len(res.Result.Tasks), res.Result.Cursor
	}
	listAllPages := func() int {
		n, cur := page("")
		for cur != "" {
			k, next := page(cur)
			n += k
			cur = next
		}
		return n
	}
	listAllPages() // warm the buffers
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if n := listAllPages(); n != total {
		t.Fatalf("listed %d archived tasks, want %d", n, total)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Fatalf("listing 100,000 archived tasks grew the heap by %d bytes", grew)
	}
	t.Logf("archive of %d tasks: %d bytes counted; heap %d -> %d bytes across a full listing", total, r.c.arch.bytes, before.HeapAlloc, after.HeapAlloc)
}
