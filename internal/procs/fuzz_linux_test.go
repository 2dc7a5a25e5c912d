//go:build linux

package procs

import (
	"bytes"
	"strconv"
	"testing"
)

// FuzzParseProc: the readers of /proc/stat's first line and of a thread's schedstat take any
// bytes without panicking, and what they accept reads back: a schedstat accepted is exactly
// three decimal fields, and /proc/stat's total is at least its idle.
func FuzzParseProc(f *testing.F) {
	for _, s := range []string{
		"5000 1200 7\n", "0 0 0", "1 2\n", "cpu  10 1 5 100 3 0 2 0 7 0\ncpu0 1\n", "cpu 1 2 3 4",
		"18446744073709551615 1 1\n", "cpu  99999999999999999999 1 1 1\n", "", "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if idle, total, ok := parseStat(b); ok && total < idle {
			t.Errorf("parseStat(%q): idle %d over total %d", b, idle, total)
		}
		wait, runs, ok := parseSchedstat(b)
		if !ok {
			return
		}
		f := bytes.Split(bytes.TrimRight(b, "\n"), []byte{' '})
		if len(f) != 3 || wait < 0 || runs < 0 {
			t.Fatalf("parseSchedstat(%q) accepted %d fields, wait %d, runs %d", b, len(f), wait, runs)
		}
		w, err1 := strconv.ParseUint(string(f[1]), 10, 64)
		r, err2 := strconv.ParseUint(string(f[2]), 10, 64)
		if err1 != nil || err2 != nil || w != uint64(wait) || r != uint64(runs) {
			t.Errorf("parseSchedstat(%q) = %d, %d", b, wait, runs)
		}
	})
}
