//go:build !race

package dispatch

// raceEnabled: the race detector adds allocations of its own, so alloc assertions are skipped.
const raceEnabled = false
