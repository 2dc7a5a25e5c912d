//go:build linux

package procs

import "testing"

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
