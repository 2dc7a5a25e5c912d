//go:build !race

package e2e

// raceEnabled: the race detector slows every goroutine several times, so timing-based bounds
// are loosened (never the correctness checks).
const raceEnabled = false
