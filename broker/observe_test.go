package broker

import (
	"encoding/json"
	"io"
	"strconv"
	"testing"
)

// TestAppendQueuesBound: broker.queues stops at its reply room and says so, and a whole
// answer is valid JSON.
func TestAppendQueuesBound(t *testing.T) {
	b, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled})
	if err != nil {
		t.Fatal(err)
	}
	defer b.closeSockets()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range []string{"alpha", "beta", "gamma"} {
		b.c.statsFor(&queue{method: m, name: m})
	}
	full, ok := b.c.appendQueues(nil, b.c.now(), -1)
	var rows []map[string]any
	if !ok || json.Unmarshal(full, &rows) != nil || len(rows) != 3 || rows[0]["method"] != "alpha" {
		t.Fatalf("appendQueues = %s, %v", full, ok)
	}
	for limit := 0; limit < len(full); limit++ {
		got, ok := b.c.appendQueues(nil, b.c.now(), limit)
		if ok {
			t.Fatalf("limit %d < %d: answered whole", limit, len(full))
		}
		if json.Unmarshal(got, &rows) != nil {
			t.Fatalf("limit %d: %s is not JSON", limit, got)
		}
	}
	if got, ok := b.c.appendQueues(nil, b.c.now(), len(full)); !ok || string(got) != string(full) {
		t.Errorf("limit = its length: %s, %v", got, ok)
	}
}

// BenchmarkWriteMetrics is the broker's cost of one /metrics scrape with 16 queues (its CPU
// time per scrape, times 10 scrapes a second, is the scrape's share of a core), and of one
// dashboard snapshot.
func BenchmarkWriteMetrics(b *testing.B) {
	br, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled})
	if err != nil {
		b.Fatal(err)
	}
	defer br.closeSockets()
	br.mu.Lock()
	for i := range 16 {
		st := br.c.statsFor(&queue{method: "method" + strconv.Itoa(i), name: "method" + strconv.Itoa(i)})
		for k := range 1000 {
			st.total.Observe(int64(k) * 1000)
			st.queued.Observe(int64(k) * 100)
			st.running.Observe(int64(k) * 900)
		}
	}
	br.mu.Unlock()
	b.Run("metrics", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := br.WriteMetrics(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = br.AppendSnapshot(buf[:0])
		}
	})
}
