package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o store.Options) store.Store { return store.NewMemory(o) })
}

func res(id string, n int) store.Result {
	return store.Result{ID: id, State: store.StateSuccess, Result: make([]byte, n)}
}

// TestMemoryBounds: MaxEntries and MaxBytes hold at their limit; the results closest to expiry
// go first; queued tasks are never evicted by them.
func TestMemoryBounds(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		o          store.Options
		puts       []store.Result
		ttls       []time.Duration
		wantKept   []string
		wantGone   []string
		maxResults int
	}{
		{
			name:     "entries at the bound",
			o:        store.Options{MaxEntries: 3},
			puts:     []store.Result{res("a", 1), res("b", 1), res("c", 1)},
			ttls:     []time.Duration{time.Hour, time.Hour, time.Hour},
			wantKept: []string{"a", "b", "c"},
		},
		{
			name:     "entries past the bound evict the earliest expiry",
			o:        store.Options{MaxEntries: 3},
			puts:     []store.Result{res("a", 1), res("b", 1), res("c", 1), res("d", 1)},
			ttls:     []time.Duration{time.Hour, time.Minute, time.Hour, time.Hour},
			wantKept: []string{"a", "c", "d"},
			wantGone: []string{"b"},
		},
		{
			// Each result counts 1+7+1000+128 = 1136 bytes: three fit in 3408, a fourth not.
			name:     "bytes at the bound",
			o:        store.Options{MaxBytes: 3 * 1136},
			puts:     []store.Result{res("a", 1000), res("b", 1000), res("c", 1000)},
			ttls:     []time.Duration{time.Hour, time.Hour, time.Hour},
			wantKept: []string{"a", "b", "c"},
		},
		{
			name:     "bytes past the bound",
			o:        store.Options{MaxBytes: 3 * 1136},
			puts:     []store.Result{res("a", 1000), res("b", 1000), res("c", 1000), res("d", 1000)},
			ttls:     []time.Duration{2 * time.Hour, time.Hour, 3 * time.Hour, time.Hour},
			wantKept: []string{"a", "c", "d"},
			wantGone: []string{"b"},
		},
		{
			name:     "one large result pushes out several",
			o:        store.Options{MaxBytes: 3 * 1136},
			puts:     []store.Result{res("a", 1000), res("b", 1000), res("c", 1000), res("big", 2000)},
			ttls:     []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour},
			wantKept: []string{"c", "big"},
			wantGone: []string{"a", "b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := store.NewMemory(tc.o)
			defer m.Close()
			if err := m.Append(ctx, store.Task{ID: "t", Queue: "q", Method: "m"}); err != nil {
				t.Fatal(err)
			}
			for i, r := range tc.puts {
				if err := m.Put(ctx, tc.ttls[i], r); err != nil {
					t.Fatal(err)
				}
			}
			var dst store.Result
			for _, id := range tc.wantKept {
				if ok, _ := m.Get(ctx, id, &dst); !ok {
					t.Errorf("%s evicted, want kept", id)
				}
			}
			for _, id := range tc.wantGone {
				if ok, _ := m.Get(ctx, id, &dst); ok {
					t.Errorf("%s kept, want evicted", id)
				}
			}
			n, bytes := m.Stats()
			if n != len(tc.wantKept) {
				t.Errorf("Stats: %d results, want %d", n, len(tc.wantKept))
			}
			if tc.o.MaxBytes > 0 && bytes > tc.o.MaxBytes {
				t.Errorf("Stats: %d bytes over MaxBytes %d", bytes, tc.o.MaxBytes)
			}
			if l, _ := m.Len(ctx, "q"); l != 1 {
				t.Errorf("queued task evicted: Len %d", l)
			}
		})
	}
}

func TestMemoryTooLarge(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(store.Options{MaxBytes: 1000})
	defer m.Close()
	err := m.Put(ctx, time.Hour, res("ok", 10), res("huge", 1000))
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Put of a result over MaxBytes = %v; want ErrTooLarge", err)
	}
	var dst store.Result
	if ok, _ := m.Get(ctx, "ok", &dst); ok {
		t.Fatal("a refused Put stored part of its results")
	}
}

// TestMemoryDefaults: the documented defaults hold (MaxQueued 1,000,000 at the bound).
func TestMemoryDefaultQueueBound(t *testing.T) {
	testutil.SkipShort(t, "filling a queue to its default bound")
	ctx := context.Background()
	m := store.NewMemory(store.Options{})
	defer m.Close()
	ts := make([]store.Task, 10_000)
	for i := 0; i < store.DefaultMaxQueued; i += len(ts) {
		for j := range ts {
			ts[j] = store.Task{ID: fmt.Sprint(i + j), Queue: "q", Method: "m"}
		}
		if err := m.Append(ctx, ts...); err != nil {
			t.Fatalf("Append at %d: %v", i, err)
		}
	}
	if err := m.Append(ctx, store.Task{ID: "one-more", Queue: "q"}); !errors.Is(err, store.ErrQueueFull) {
		t.Fatalf("Append past the default bound = %v; want ErrQueueFull", err)
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		url     string
		wantErr error
	}{
		{"", nil},
		{"memory:", nil},
		{"memory://", nil},
		{"memory://?max_queued=5&lease=10s&max_entries=7&max_bytes=100000&prefix=x:&flush_delay=1ms&flush_max=9", nil},
		{"memory://?max_queued=five", store.ErrURL},
		{"memory://?nope=1", store.ErrURL},
		{"postgres://localhost/db", store.ErrURL},
		{"redis://127.0.0.1:1/0?lease=forever", store.ErrURL},
		{"://bad", store.ErrURL},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			s, err := store.Open(tc.url)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Open(%q) = %v; want %v", tc.url, err, tc.wantErr)
			}
			if err == nil {
				if _, ok := s.(*store.Memory); !ok {
					t.Fatalf("Open(%q) = %T; want *store.Memory", tc.url, s)
				}
				s.Close()
			}
		})
	}
	// The query applies: a bound of 2.
	s, err := store.Open("memory://?max_queued=2")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Append(ctx, store.Task{ID: "1", Queue: "q"}, store.Task{ID: "2", Queue: "q"}, store.Task{ID: "3", Queue: "q"}); !errors.Is(err, store.ErrQueueFull) {
		t.Fatalf("max_queued=2 not applied: %v", err)
	}
}
