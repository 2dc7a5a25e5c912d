//go:build !race

package node

// raceEnabled: the race detector adds allocations of its own, so alloc assertions are skipped.
const raceEnabled = false
