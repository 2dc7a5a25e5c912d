package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zerotask/zerotask/bench"
)

// TestBenchFlags: the pipelining, prefetch and in-flight-level flags reach the report, and the
// profile flags write profiles.
func TestBenchFlags(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	base := []string{"bench", "--json", "--tasks", "200", "--duration", "0", "--warmup", "10", "--log-level", "error"}
	tests := []struct {
		name      string
		args      []string
		inFlight  []int
		pipeline  string
		senders   int // -1: not checked
		prefetch  int
		wantFiles []string
	}{
		{"levels with map", []string{"--phases", "async", "--concurrency", "4,64", "--senders", "2"}, []int{4, 64}, "map", 2, bench.DefaultNodePrefetch, nil},
		{"calls", []string{"--phases", "async", "--concurrency", "8", "--pipeline", "calls", "--prefetch", "16"}, []int{8}, "calls", 0, 16, nil},
		{"node default prefetch", []string{"--phases", "async", "--concurrency", "3", "--senders", "1", "--prefetch", "0"}, []int{3}, "map", 1, 0, nil},
		{"profiles", []string{"--phases", "sync,async", "--cpuprofile", cpu, "--memprofile", mem}, []int{bench.DefaultConcurrency}, "map", -1, bench.DefaultNodePrefetch, []string{cpu, mem}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runArgs(t, append(base, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var rep struct {
				NodePrefetch int `json:"node_prefetch"`
				Phases       []struct {
					Name        string `json:"name"`
					Tasks       int64  `json:"tasks"`
					Concurrency int    `json:"concurrency"`
					Pipeline    string `json:"pipeline"`
					Senders     int    `json:"senders"`
				} `json:"phases"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			// 0 on the command line is the node's own default: its concurrency (the CPU count).
			if tc.prefetch != 0 && rep.NodePrefetch != tc.prefetch || tc.prefetch == 0 && rep.NodePrefetch != 0 {
				t.Errorf("node_prefetch %d, want %d", rep.NodePrefetch, tc.prefetch)
			}
			var levels []int
			for _, p := range rep.Phases {
				if p.Name != "async" {
					continue
				}
				levels = append(levels, p.Concurrency)
				if p.Tasks != 200 || p.Pipeline != tc.pipeline || tc.senders >= 0 && p.Senders != min(tc.senders, p.Concurrency) {
					t.Errorf("async row %+v: want 200 tasks, pipeline %s, %d senders", p, tc.pipeline, tc.senders)
				}
			}
			if !slices.Equal(levels, tc.inFlight) {
				t.Errorf("async levels %v, want %v", levels, tc.inFlight)
			}
			for _, f := range tc.wantFiles {
				if st, err := os.Stat(f); err != nil || st.Size() == 0 {
					t.Errorf("profile %s: %v (size %d)", f, err, sizeOf(st))
				}
			}
		})
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

// TestBenchFlagErrors: bad values of the new flags are usage errors.
func TestBenchFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--concurrency", "128,0"}, "--concurrency must be positive"},
		{[]string{"--concurrency", "12,x"}, "not a list of integers"},
		{[]string{"--pipeline", "warp"}, `unknown --pipeline "warp"`},
		{[]string{"--prefetch", "-1"}, "must not be negative"},
		{[]string{"--senders", "-2"}, "must not be negative"},
		{[]string{"--tasks", "1", "--cpuprofile", "/nonexistent-dir/cpu.prof"}, "--cpuprofile"},
	}
	for _, tc := range tests {
		code, _, errOut := runArgs(t, append([]string{"bench"}, tc.args...)...)
		if code == exitOK || !strings.Contains(errOut, tc.want) {
			t.Errorf("bench %v: exit %d, stderr %q; want a failure saying %q", tc.args, code, errOut, tc.want)
		}
	}
}
