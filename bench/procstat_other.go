//go:build !linux

package bench

import (
	"errors"
	"os/exec"
	"time"
)

// setChildAttrs does nothing here: only Linux can tie a child's life to its parent's.
func setChildAttrs(*exec.Cmd) {}

// cpuTime is only known on Linux (from /proc).
func cpuTime(int) (time.Duration, error) {
	return 0, errors.New("bench: CPU time per process needs /proc")
}

// peakRSS is only known on Linux (from /proc).
func peakRSS(int) int64 { return 0 }
