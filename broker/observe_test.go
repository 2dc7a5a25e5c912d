package broker

import (
	"encoding/json"
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
