//go:build !race

package client

// raceEnabled: the race detector adds allocations of its own, so alloc assertions are skipped.
const raceEnabled = false
