//go:build linux

package procs

import (
	"runtime"
	"testing"
	"time"
)

// TestParseStat: the first line of /proc/stat, idle and iowait as idle, guest time not added
// again; anything else is not read.
func TestParseStat(t *testing.T) {
	tests := []struct {
		in          string
		idle, total uint64
		ok          bool
	}{
		{"cpu  10 1 5 100 3 0 2 0 7 0\ncpu0 5 0 2 50 1 0 1 0 3 0\n", 103, 121, true},
		{"cpu  10 1 5 100\n", 100, 116, true},
		{"cpu0 10 1 5 100 3\n", 0, 0, false},
		{"cpu  10 x 5 100 3\n", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		idle, total, ok := parseStat([]byte(tc.in))
		if idle != tc.idle || total != tc.total || ok != tc.ok {
			t.Errorf("parseStat(%q) = %d, %d, %v; want %d, %d, %v", tc.in, idle, total, ok, tc.idle, tc.total, tc.ok)
		}
	}
}

// TestParseSchedstat: a thread's "<ns on CPU> <ns waiting> <runs>"; anything else is not read.
func TestParseSchedstat(t *testing.T) {
	tests := []struct {
		in   string
		wait time.Duration
		runs int64
		ok   bool
	}{
		{"5000 1200 7\n", 1200, 7, true},
		{"5000 1200 7", 1200, 7, true},
		{"0 0 0\n", 0, 0, true},
		{"5000 1200\n", 0, 0, false},
		{"5000 1200 7 9\n", 0, 0, false},
		{"5000 1200 7 ", 0, 0, false},
		{"5000 x 7\n", 0, 0, false},
		{"5000  1200 7\n", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		wait, runs, ok := parseSchedstat([]byte(tc.in))
		if wait != tc.wait || runs != tc.runs || ok != tc.ok {
			t.Errorf("parseSchedstat(%q) = %v, %d, %v; want %v, %d, %v", tc.in, wait, runs, ok, tc.wait, tc.runs, tc.ok)
		}
	}
}

// TestRunqMeter: the meter reads this process's threads, and their run-queue wait and runs only
// grow while they live.
func TestRunqMeter(t *testing.T) {
	m := newRunqMeter()
	defer m.close()
	a := m.read()
	if !a.ok || a.runs <= 0 {
		t.Fatalf("first reading %+v: /proc/self/task/*/schedstat not read", a)
	}
	for i := 0; i < 1000; i++ {
		runtime.Gosched()
	}
	b := m.read()
	if !b.ok || b.runs < a.runs {
		t.Fatalf("readings %+v then %+v", a, b)
	}
}
