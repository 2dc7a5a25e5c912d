//go:build race

package codec

// raceEnabled: the race detector is on. sync.Pool (under bytebufferpool) then drops pooled
// items at random on purpose, so Acquire may allocate.
const raceEnabled = true
