package broker

import (
	"runtime"
	"testing"
)

// TestQueuedMemory: a million queued small tasks fit in well under 250 MB (measured as live
// heap growth per queued task; the process's RSS adds the runtime's own slack on top).
func TestQueuedMemory(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000 // the race detector makes this slow; the per-task figure is the same
	}
	r := newRig(t, Config{MaxQueued: n, MaxInFlightPerClient: n, MaxInFlightBytes: 1 << 40})
	req := []byte(`{"jsonrpc":"2.0","id":1234567,"method":"work","params":[5,6]}`)
	before := heapInUse()
	for i := 0; i < n; i++ {
		r.c.handleBody(r.c.peerFor(identC), false, req)
	}
	after := heapInUse()
	if s := r.c.stats(); s.Queued != n {
		t.Fatalf("queued %d, want %d", s.Queued, n)
	}
	per := float64(after-before) / float64(n)
	t.Logf("%d queued tasks: %.1f MB of heap, %.0f bytes per task", n, float64(after-before)/1e6, per)
	if per > 200 {
		t.Fatalf("%.0f bytes per queued task: a million would not fit in 250 MB", per)
	}
	runtime.KeepAlive(r)
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkEnqueue measures queuing a call for a method no node serves (the queue grows, up
// to 65,536 tasks per fresh routing state).
func BenchmarkEnqueue(b *testing.B) {
	const per = 1 << 16
	req := []byte(`{"jsonrpc":"2.0","id":1234567,"method":"work","params":[5,6]}`)
	var r *rig
	var p *peer
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for i := 0; i < b.N; i++ {
		if i%per == 0 {
			b.StopTimer()
			r = newRig(b, Config{MaxInFlightPerClient: per, MaxInFlightBytes: 1 << 30})
			p = r.c.peerFor(identC)
			for k := 0; k < per; k++ { // warm the free lists
				r.c.handleBody(p, false, req)
			}
			r.c.peerGone(identC)
			p = r.c.peerFor(identC)
			b.StartTimer()
		}
		r.c.handleBody(p, false, req)
	}
	if r.c.cnt.rejected != 0 {
		b.Fatalf("%d rejected", r.c.cnt.rejected)
	}
}
