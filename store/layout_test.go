package store

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestRedisPreviousLayout: tasks held the way the version before held hashes held them (a
// task key with its owner in field o, listed in the owner's sorted set by claim sequence)
// beside tasks held in the owner's held hash, by the same run (a rolling upgrade: a broker
// reads what the brokers before it wrote): Locate, SetRunning, a mixed Ack and a give-back
// treat both kinds alike, and the give-back puts them back in claim order across both. A
// held hash that a version before held hashes left behind when it gave back its owner's task
// keys goes back at the next Register.
func TestRedisPreviousLayout(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx := testutil.Context(t, 30*time.Second)
	r, err := DialRedis(ctx, "redis://"+addr+"/0", Options{Prefix: "lay:"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := r.Client()
	do := func(cmd rueidis.Completed) int64 {
		t.Helper()
		n, err := c.Do(ctx, cmd).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	run, _, err := r.Register(ctx, "A", false)
	if err != nil {
		t.Fatal(err)
	}
	task := func(id string) Task {
		return Task{ID: id, Queue: "q", Method: "m", Params: []byte(`["` + id + `"]`)}
	}
	// old holds id as the previous version's hold script did.
	old := func(id string) {
		t.Helper()
		seq := do(c.B().Incr().Key("lay:seq").Build())
		tk := task(id)
		v := appendTask(nil, &tk, time.Now())
		now := strconv.FormatInt(time.Now().UnixMilli(), 10)
		do(c.B().Hset().Key("lay:t:"+id).FieldValue().FieldValue("d", string(v)).FieldValue("q", "q").
			FieldValue("a", "0").FieldValue("o", run).FieldValue("h", now).Build())
		do(c.B().Zadd().Key("lay:own:"+run).ScoreMember().ScoreMember(float64(seq), id).Build())
	}
	hold := func(owner string, ts ...Task) {
		t.Helper()
		if err := r.Hold(ctx, owner, ts...); err != nil {
			t.Fatal(err)
		}
	}
	old("o1")
	hold(run, task("n1"))
	old("o2")
	hold(run, task("n2"), task("n3"))
	old("o3")

	for _, id := range []string{"o1", "n1"} {
		if w, o, err := r.Locate(ctx, id); err != nil || w != WhereHeld || o != run {
			t.Errorf("Locate(%s) = %v, %q, %v; want held by %s", id, w, o, err, run)
		}
	}
	if err := r.SetRunning(ctx, run, true, "o1", "n1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"o1", "n1"} {
		if w, o, err := r.Locate(ctx, id); err != nil || w != WhereRunning || o != run {
			t.Errorf("Locate(%s) after SetRunning = %v, %q, %v; want running by %s", id, w, o, err, run)
		}
	}
	if err := r.Ack(ctx, run, "n3", "o3"); err != nil { // one group, both kinds
		t.Fatal(err)
	}
	for _, id := range []string{"n3", "o3"} {
		if w, _, err := r.Locate(ctx, id); err != nil || w != WhereNone {
			t.Errorf("Locate(%s) after Ack = %v, %v; want none", id, w, err)
		}
	}

	// Owner B's held hash, left behind by an older broker's give-back (B's lease gone, its
	// held hash not read).
	other, _, err := r.Register(ctx, "B", false)
	if err != nil {
		t.Fatal(err)
	}
	b1 := task("b1")
	b1.Queue = "qb"
	hold(other, b1)
	do(c.B().Zrem().Key("lay:owners").Member(other).Build())

	// A new run of A (forced: A's lease is live) gives back both kinds of A's tasks in claim
	// order, and B's orphaned held hash.
	if _, n, err := r.Register(ctx, "A", true); err != nil || n != 5 {
		t.Fatalf("Register(A, force) = %d given back, %v; want 5 (o1 n1 o2 n2 of A, b1 of B)", n, err)
	}
	got, err := r.Claim(ctx, "q", "Z", "", 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"o1", "n1", "o2", "n2"}
	if fmt.Sprint(taskIDs(got)) != fmt.Sprint(want) {
		t.Fatalf("claimed %v; want %v (claim order across both kinds)", taskIDs(got), want)
	}
	for _, tk := range got {
		if tk.Attempts != 1 || string(tk.Params) != `["`+tk.ID+`"]` || tk.Method != "m" {
			t.Errorf("claimed %s: attempts %d, method %q, params %s", tk.ID, tk.Attempts, tk.Method, tk.Params)
		}
	}
	if got, err := r.Claim(ctx, "qb", "Z", "", 10, nil); err != nil || fmt.Sprint(taskIDs(got)) != "[b1]" {
		t.Fatalf("claim of qb = %v, %v; want [b1]", taskIDs(got), err)
	}
	for _, k := range []string{"lay:held:" + run, "lay:held:" + other, "lay:run:" + run, "lay:own:" + run} {
		if n := do(c.B().Exists().Key(k).Build()); n != 0 {
			t.Errorf("%s still there after the give-back", k)
		}
	}
}

// TestRedisHeldHashEncoding: an owner's held hash stays in Redis's hashtable encoding from its
// first task on, and is not deleted when its last task is acked (the anchor field): a hash in
// the listpack encoding costs a scan of the hash per field set, read or deleted.
func TestRedisHeldHashEncoding(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx := testutil.Context(t, 30*time.Second)
	r, err := DialRedis(ctx, "redis://"+addr+"/0", Options{Prefix: "enc:"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := r.Client()
	if err := r.Hold(ctx, "A", Task{ID: "t1", Queue: "q", Method: "m"}); err != nil {
		t.Fatal(err)
	}
	enc := func() string {
		t.Helper()
		s, err := c.Do(ctx, c.B().ObjectEncoding().Key("enc:held:A").Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if e := enc(); e != "hashtable" {
		t.Errorf("held hash of one task encoded as %s, want hashtable", e)
	}
	if err := r.Ack(ctx, "A", "t1"); err != nil {
		t.Fatal(err)
	}
	if e := enc(); e != "hashtable" {
		t.Errorf("held hash after its last ack encoded as %s, want hashtable", e)
	}
}

func taskIDs(ts []Task) []string {
	out := make([]string, len(ts))
	for i := range ts {
		out[i] = ts[i].ID
	}
	return out
}
