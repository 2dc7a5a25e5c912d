//go:build linux || darwin

package dispatch

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used so far. Benchmarks
// report it per op beside the wall time, because on a loaded machine the wall time also counts
// the time other processes held the CPU.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
