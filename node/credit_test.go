package node

import (
	"testing"
	"time"
)

// TestWindowSizing: the window covers one round trip at the service rate (with the gain),
// stays within [Concurrency+1, Concurrency+Prefetch] once measured, and is 2 x Concurrency
// until both figures are known.
func TestWindowSizing(t *testing.T) {
	for _, tc := range []struct {
		name           string
		conc, prefetch int
		fixed          bool
		svc, rtt       time.Duration // 0: not measured
		want           int
	}{
		{"unmeasured", 2, 4096, false, 0, 0, 4},
		{"no round trip yet", 2, 4096, false, time.Microsecond, 0, 4},
		{"no service time yet", 2, 4096, false, 0, 100 * time.Microsecond, 4},
		{"unmeasured, small bound", 2, 1, false, 0, 0, 3},
		{"small tasks, loopback", 2, 4096, false, time.Microsecond, 100 * time.Microsecond, 2 + 800},
		{"small tasks, 2 ms away", 2, 4096, false, time.Microsecond, 2 * time.Millisecond, 2 + 4096},
		{"bounded by prefetch", 2, 100, false, time.Microsecond, 100 * time.Microsecond, 102},
		{"slow tasks: one beyond the slots", 2, 4096, false, 50 * time.Millisecond, 200 * time.Microsecond, 3},
		{"1 ms tasks, 1 ms away", 4, 4096, false, time.Millisecond, time.Millisecond, 4 + 16},
		{"prefetch 0", 2, 0, false, time.Microsecond, time.Millisecond, 2},
		{"fixed", 2, 10, true, 50 * time.Millisecond, time.Millisecond, 12},
		{"fixed, unmeasured", 2, 10, true, 0, 0, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w window
			w.init(tc.conc, tc.prefetch, tc.fixed)
			if tc.svc > 0 {
				for range 100 { // the moving average settles on a steady service time
					w.served(tc.svc)
				}
			}
			if tc.rtt > 0 {
				now := time.Now()
				seq, ok := w.probeDue(now)
				if !ok && !tc.fixed {
					t.Fatal("no probe due on a fresh window")
				}
				w.answered(seq, now.Add(tc.rtt))
			}
			if w.size != tc.want {
				t.Errorf("window %d, want %d (svc %d ns, rtt %d ns)", w.size, tc.want, w.svc, w.rttMin)
			}
		})
	}
}

// TestWindowRoundTrip: probes are spaced by rttProbeEvery, one at a time; the window uses the
// smallest of the last rttSamples answers, so one slow answer does not inflate it and an old
// fast one is forgotten.
func TestWindowRoundTrip(t *testing.T) {
	var w window
	w.init(1, 1<<20, false)
	w.served(time.Microsecond)
	now := time.Now()
	probe := func(rtt time.Duration) {
		t.Helper()
		now = now.Add(rttProbeEvery)
		seq, ok := w.probeDue(now)
		if !ok {
			t.Fatal("probe not due after rttProbeEvery")
		}
		if _, again := w.probeDue(now); again {
			t.Fatal("second probe while one is open")
		}
		w.answered(seq, now.Add(rtt))
		if _, soon := w.probeDue(now.Add(rtt)); soon {
			t.Fatal("probe due before rttProbeEvery passed")
		}
	}
	probe(100 * time.Microsecond)
	if w.rttMin != int64(100*time.Microsecond) {
		t.Fatalf("rtt %d", w.rttMin)
	}
	probe(10 * time.Millisecond) // a slow answer (the broker was busy)
	if w.rttMin != int64(100*time.Microsecond) {
		t.Fatalf("one slow answer moved the round trip to %d", w.rttMin)
	}
	for range rttSamples {
		probe(time.Millisecond)
	}
	if w.rttMin != int64(time.Millisecond) {
		t.Fatalf("after %d answers of 1 ms the round trip is %d", rttSamples, w.rttMin)
	}
	// An answer to an older probe, or after a new connection, is ignored.
	now = now.Add(rttProbeEvery)
	seq, _ := w.probeDue(now)
	w.reset()
	w.answered(seq, now.Add(time.Microsecond))
	if w.rttMin != int64(time.Millisecond) {
		t.Fatalf("an answer after reset counted: %d", w.rttMin)
	}
	// A probe never answered is given up after a while.
	now = now.Add(rttProbeEvery)
	if _, ok := w.probeDue(now); !ok {
		t.Fatal("no probe due")
	}
	if _, ok := w.probeDue(now.Add(10 * rttProbeEvery)); !ok {
		t.Fatal("a lost probe blocks the next one for ever")
	}
}

// TestWindowOutlier: one task that kept its worker for a millisecond (descheduled, a GC pause)
// amid 1 us tasks costs the window less than half of its size, while tasks that really turned
// slow shrink it to one beyond the slots within svcJump's bound of samples.
func TestWindowOutlier(t *testing.T) {
	var w window
	w.init(2, 1<<20, false)
	for range 100 {
		w.served(time.Microsecond)
	}
	now := time.Now()
	seq, _ := w.probeDue(now)
	w.answered(seq, now.Add(100*time.Microsecond))
	before := w.size
	w.served(time.Millisecond)
	if w.size < before/2 {
		t.Errorf("one 1 ms task amid 1 us ones: window %d -> %d, want at least half", before, w.size)
	}
	for range 30 {
		w.served(50 * time.Millisecond)
	}
	if w.size != 3 {
		t.Errorf("after 30 tasks of 50 ms: window %d, want 3", w.size)
	}
}
