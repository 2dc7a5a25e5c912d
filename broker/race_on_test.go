//go:build race

package broker

// raceEnabled: the race detector adds allocations, so alloc assertions are skipped under it.
const raceEnabled = true
