//go:build linux

package procs

import (
	"math/bits"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAffinity: apply(true) keeps every thread of the process to the lowest CPU it may use,
// apply(false) gives every thread back the CPUs it had; with one CPU allowed there is nothing to
// keep to, and apply changes nothing.
func TestAffinity(t *testing.T) {
	a := newAffinity()
	defer a.apply(false)
	check := func(want *unix.CPUSet) {
		t.Helper()
		names, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			tid, _ := strconv.Atoi(n.Name())
			var got unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &got); err != nil {
				continue // the thread ended
			}
			if got != *want {
				t.Errorf("thread %d: CPUs %v, want %v", tid, got, *want)
			}
		}
	}
	if !a.ok {
		if a.full.Count() >= 2 {
			t.Fatalf("%d CPUs allowed, and affinity is off", a.full.Count())
		}
		var all unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			t.Fatal(err)
		}
		a.apply(true)
		check(&all)
		return
	}
	a.apply(true)
	if a.one.Count() != 1 {
		t.Fatalf("one CPU set %v", a.one)
	}
	check(&a.one)
	a.apply(false)
	check(&a.full)
}

// TestWithAll: a process started through withAll while this one is kept to one CPU has every
// CPU this one had; started without it, it has the one CPU.
func TestWithAll(t *testing.T) {
	a := newAffinity()
	if !a.ok {
		if err := a.withAll(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		return // one CPU allowed: nothing is kept, nothing to give back (TestAffinity)
	}
	defer a.apply(false)
	a.apply(true)
	cpus := func(start func(func() error) error) int {
		t.Helper()
		var out strings.Builder
		cmd := exec.Command("cat", "/proc/self/status")
		cmd.Stdout = &out
		if err := start(cmd.Run); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if mask, ok := strings.CutPrefix(line, "Cpus_allowed:"); ok {
				n := 0
				for _, word := range strings.Split(strings.TrimSpace(mask), ",") {
					v, err := strconv.ParseUint(word, 16, 32)
					if err != nil {
						t.Fatalf("mask %q: %v", mask, err)
					}
					n += bits.OnesCount64(v)
				}
				return n
			}
		}
		t.Fatalf("no Cpus_allowed in %q", out.String())
		return 0
	}
	if got := cpus(a.withAll); got != a.full.Count() {
		t.Errorf("started through withAll: %d CPUs, want %d", got, a.full.Count())
	}
	if got := cpus(func(f func() error) error { return f() }); got != 1 {
		t.Errorf("started from a thread kept to one CPU: %d CPUs, want 1", got)
	}
}
