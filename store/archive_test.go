package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
)

// TestRedisArchive: archived tasks list page by page in both orders, are bounded by count,
// bytes and age at their bounds, are revived once (a queued task with no attempts, its result
// forgotten, claimed by any owner) and deleted.
func TestRedisArchive(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dead := func(i int) store.Dead {
		return store.Dead{ID: fmt.Sprintf("id%d", i), Queue: "q", Method: "m", Params: []byte(fmt.Sprintf("[%d]", i)), Meta: []byte{4, 0, 0, 0}, Timeout: time.Minute, Record: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	ids := func(ds []store.Dead) string {
		s := ""
		for _, d := range ds {
			s += d.ID + " "
		}
		return s
	}
	lim := store.ArchiveLimits{Max: 1000, MaxBytes: 1 << 20, TTL: time.Hour}

	t.Run("paging", func(t *testing.T) {
		r := openRedis(t, addr, store.Options{})
		defer r.Close()
		for i := range 5 {
			if err := r.Archive(ctx, lim, dead(i)); err != nil {
				t.Fatal(err)
			}
		}
		var all []store.Dead
		var from uint64
		for {
			pg, err := r.ListDead(ctx, lim, from, false, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(pg) == 0 {
				break
			}
			all = append(all, pg...)
			from = pg[len(pg)-1].Pos
		}
		if got := ids(all); got != "id0 id1 id2 id3 id4 " {
			t.Fatalf("oldest first: %s", got)
		}
		d := all[3]
		if string(d.Params) != "[3]" || d.Method != "m" || d.Queue != "q" || d.Timeout != time.Minute || string(d.Record) != `{"n":3}` || time.Since(d.At) > time.Minute {
			t.Fatalf("entry: %+v", d)
		}
		pg, err := r.ListDead(ctx, lim, all[3].Pos, true, 10, nil)
		if err != nil || ids(pg) != "id2 id1 id0 " {
			t.Fatalf("newest first before id3: %s, %v", ids(pg), err)
		}
		// Archived again: it moves to the back.
		if err := r.Archive(ctx, lim, dead(1)); err != nil {
			t.Fatal(err)
		}
		if pg, err = r.ListDead(ctx, lim, 0, true, 2, nil); err != nil || ids(pg) != "id1 id4 " {
			t.Fatalf("newest after archiving id1 again: %s, %v", ids(pg), err)
		}
		var one store.Dead
		if found, err := r.GetDead(ctx, "id3", &one); err != nil || !found || string(one.Record) != `{"n":3}` || string(one.Params) != "[3]" {
			t.Fatalf("GetDead(id3) = %v, %v: %+v", found, err, one)
		}
		if found, err := r.GetDead(ctx, "nosuch", &one); err != nil || found {
			t.Fatalf("GetDead(nosuch) = %v, %v", found, err)
		}
		if n, err := r.DeleteDead(ctx, "id4", "nosuch"); err != nil || n != 1 {
			t.Fatalf("DeleteDead = %d, %v", n, err)
		}
		if pg, err = r.ListDead(ctx, lim, 0, false, 10, nil); err != nil || ids(pg) != "id0 id2 id3 id1 " {
			t.Fatalf("after delete: %s, %v", ids(pg), err)
		}
	})

	t.Run("bounds", func(t *testing.T) {
		// The size of one entry (its id and value; every dead(i) for i < 10 has the same).
		size := func() int64 {
			pre := fmt.Sprintf("size%d:", time.Now().UnixNano())
			r := openRedis(t, addr, store.Options{Prefix: pre})
			defer r.Close()
			if err := r.Archive(ctx, lim, dead(0)); err != nil {
				t.Fatal(err)
			}
			return deadBytes(t, ctx, r, pre)
		}()
		for _, tc := range []struct {
			name string
			lim  store.ArchiveLimits
			want string
		}{
			{"count at the bound", store.ArchiveLimits{Max: 3, MaxBytes: 1 << 20, TTL: time.Hour}, "id2 id3 id4 "},
			{"count of one", store.ArchiveLimits{Max: 1, MaxBytes: 1 << 20, TTL: time.Hour}, "id4 "},
			{"bytes at the bound", store.ArchiveLimits{Max: 100, MaxBytes: 2 * size, TTL: time.Hour}, "id3 id4 "},
			{"bytes one under", store.ArchiveLimits{Max: 100, MaxBytes: 2*size - 1, TTL: time.Hour}, "id4 "},
			{"bytes: the newest stays", store.ArchiveLimits{Max: 100, MaxBytes: 1, TTL: time.Hour}, "id4 "},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pre := fmt.Sprintf("bound%d:", time.Now().UnixNano())
				r := openRedis(t, addr, store.Options{Prefix: pre})
				defer r.Close()
				for i := range 5 {
					if err := r.Archive(ctx, tc.lim, dead(i)); err != nil {
						t.Fatal(err)
					}
				}
				pg, err := r.ListDead(ctx, tc.lim, 0, false, 10, nil)
				if err != nil || ids(pg) != tc.want {
					t.Fatalf("kept %s (%v), want %s", ids(pg), err, tc.want)
				}
				if n := deadBytes(t, ctx, r, pre); n != size*int64(len(pg)) {
					t.Fatalf("deadbytes %d for %d entries of %d", n, len(pg), size)
				}
			})
		}
		t.Run("age", func(t *testing.T) {
			r := openRedis(t, addr, store.Options{})
			defer r.Close()
			short := store.ArchiveLimits{Max: 100, MaxBytes: 1 << 20, TTL: 50 * time.Millisecond}
			if err := r.Archive(ctx, short, dead(0), dead(1)); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 5*time.Second, func() bool {
				pg, err := r.ListDead(ctx, short, 0, false, 10, nil)
				return err == nil && len(pg) == 0
			}, "entries past the TTL dropped")
			if pg, err := r.ListDead(ctx, lim, 0, false, 10, nil); err != nil || len(pg) != 0 {
				t.Fatalf("after the TTL: %s, %v", ids(pg), err)
			}
		})
	})

	t.Run("revive", func(t *testing.T) {
		r := openRedis(t, addr, store.Options{})
		defer r.Close()
		// A task that ran, failed with its result put and was acked, then archived.
		if err := r.Hold(ctx, "o1", store.Task{ID: "id7", Queue: "q", Method: "m", Params: []byte("[7]")}); err != nil {
			t.Fatal(err)
		}
		if err := r.Put(ctx, time.Hour, store.Result{ID: "id7", State: store.StateFailure, Error: []byte(`{"code":1,"message":"x"}`)}); err != nil {
			t.Fatal(err)
		}
		if err := r.Ack(ctx, "o1", "id7"); err != nil {
			t.Fatal(err)
		}
		if err := r.Archive(ctx, lim, dead(7)); err != nil {
			t.Fatal(err)
		}
		got, err := r.Revive(ctx, "id7", "nosuch")
		if err != nil || len(got) != 1 || got[0].ID != "id7" {
			t.Fatalf("Revive = %+v, %v", got, err)
		}
		if got, err := r.Revive(ctx, "id7"); err != nil || len(got) != 0 {
			t.Fatalf("second Revive = %+v, %v", got, err)
		}
		var res store.Result
		if found, err := r.Get(ctx, "id7", &res); err != nil || found {
			t.Fatalf("result after revival: %v, %v", found, err)
		}
		if pg, err := r.ListDead(ctx, lim, 0, false, 10, nil); err != nil || len(pg) != 0 {
			t.Fatalf("archive after revival: %s, %v", ids(pg), err)
		}
		if w, _, err := r.Locate(ctx, "id7"); err != nil || w != store.WhereQueued {
			t.Fatalf("revived task is %v, %v", w, err)
		}
		ts, err := r.Claim(ctx, "q", "o2", "", 10, nil)
		if err != nil || len(ts) != 1 {
			t.Fatalf("Claim = %+v, %v", ts, err)
		}
		tk := ts[0]
		if tk.ID != "id7" || tk.Method != "m" || string(tk.Params) != "[7]" || tk.Attempts != 0 || string(tk.Meta) != string([]byte{4, 0, 0, 0}) {
			t.Fatalf("claimed %+v", tk)
		}
		if left := time.Until(tk.Deadline); left < 50*time.Second || left > time.Minute {
			t.Fatalf("deadline in %v, want about a minute", left)
		}
		// A revived task runs again under its id: its result is put again.
		if err := r.Put(ctx, time.Hour, store.Result{ID: "id7", State: store.StateSuccess, Result: []byte("1"), Owner: "o2"}); err != nil {
			t.Fatal(err)
		}
		if found, err := r.Get(ctx, "id7", &res); err != nil || !found || res.State != store.StateSuccess {
			t.Fatalf("result of the second run: %+v, %v, %v", res, found, err)
		}
	})
}

// deadBytes reads the archive's byte count under prefix.
func deadBytes(t *testing.T, ctx context.Context, r *store.Redis, prefix string) int64 {
	t.Helper()
	n, err := r.Client().Do(ctx, r.Client().B().Get().Key(prefix+"deadbytes").Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
