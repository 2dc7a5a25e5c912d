package client

import (
	"math/rand/v2"
	"testing"
)

// TestPendingCalls checks the table against a map under a long random run of puts and takes
// in id order with out-of-order completions, including calls that stay pending far longer
// than those around them (they go to the overflow map) and more calls in flight than the
// ring's bound.
func TestPendingCalls(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inFlight int
		steps    int
	}{
		{"few", 3, 2000},
		{"ring", 500, 20000},
		{"past the ring's bound", 3 * pendingMaxRing, 200000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.inFlight)))
			var p pendingCalls
			want := map[uint64]*call{}
			var ids []uint64
			next := uint64(0)
			for range tc.steps {
				if len(ids) < tc.inFlight && (len(ids) == 0 || rng.IntN(3) > 0) {
					next++
					cl := &call{id: next}
					p.put(cl)
					want[next] = cl
					ids = append(ids, next)
				} else {
					// Mostly the oldest few complete; now and then one at random.
					k := rng.IntN(min(len(ids), 4))
					if rng.IntN(10) == 0 {
						k = rng.IntN(len(ids))
					}
					id := ids[k]
					ids = append(ids[:k], ids[k+1:]...)
					if got := p.take(id); got != want[id] {
						t.Fatalf("take(%d) = %v, want %v", id, got, want[id])
					}
					delete(want, id)
					if p.take(id) != nil || p.get(id) != nil {
						t.Fatalf("%d still pending after take", id)
					}
				}
				if p.len() != len(want) {
					t.Fatalf("len %d, want %d", p.len(), len(want))
				}
			}
			for id, cl := range want {
				if p.get(id) != cl {
					t.Fatalf("get(%d) lost its call", id)
				}
			}
			if p.take(next+1) != nil || p.get(0) != nil {
				t.Fatal("an id never put is pending")
			}
			odd := p.removeIf(nil, func(cl *call) bool { return cl.id%2 == 1 })
			for _, cl := range odd {
				if cl.id%2 != 1 || want[cl.id] != cl {
					t.Fatalf("removeIf gave %d", cl.id)
				}
				delete(want, cl.id)
			}
			rest := p.removeIf(nil, func(*call) bool { return true })
			if len(rest) != len(want) || p.len() != 0 {
				t.Fatalf("removeIf left %d, gave %d of %d", p.len(), len(rest), len(want))
			}
			if len(p.ring) > pendingMaxRing {
				t.Fatalf("ring of %d slots, bound %d", len(p.ring), pendingMaxRing)
			}
		})
	}
}
