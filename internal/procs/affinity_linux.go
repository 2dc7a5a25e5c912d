//go:build linux

package procs

import (
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// affinity keeps a process's threads to one CPU or gives them back the CPUs they had. Linux
// sets affinity per thread, so it sets every thread listed in /proc/self/task; a thread the
// runtime starts later inherits its creator's, so a pinned process stays pinned, and the pass
// is made twice to catch a thread started while the first ran.
type affinity struct {
	ok        bool
	full, one unix.CPUSet
	mu        sync.Mutex // held by apply and withAll
	on        bool       // kept to one
}

// newAffinity reads the CPUs the process may use; ok only with two or more.
func newAffinity() *affinity {
	a := &affinity{}
	if err := unix.SchedGetaffinity(0, &a.full); err != nil || a.full.Count() < 2 {
		return a
	}
	for cpu := 0; cpu < len(a.full)*64; cpu++ {
		if a.full.IsSet(cpu) {
			a.one.Set(cpu) // the lowest: the one every ZeroTask process picks
			break
		}
	}
	a.ok = true
	return a
}

// apply keeps every thread to the one CPU (on) or gives back all (off).
func (a *affinity) apply(on bool) {
	if !a.ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.on = on
	set := &a.full
	if on {
		set = &a.one
	}
	for range 2 {
		for _, tid := range threads() {
			_ = unix.SchedSetaffinity(tid, set)
		}
	}
}

// withAll runs f on a thread of the process that has every CPU the process had before it
// kept to one: a process f starts inherits that thread's CPUs, and one started from a thread
// kept to one CPU could never leave it.
func (a *affinity) withAll(f func() error) error {
	if !a.ok {
		return f()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.on {
		return f()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.SchedSetaffinity(0, &a.full)
	defer func() { _ = unix.SchedSetaffinity(0, &a.one) }()
	return f()
}
