//go:build !race

package bench

// raceEnabled: the race detector adds allocations of its own; allocation bounds are then not
// asserted (the tests still run).
const raceEnabled = false
