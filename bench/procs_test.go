package bench

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestProcFigures: this process's CPU time grows while it works, and its peak RSS is known
// (Linux: from /proc; elsewhere the figures are absent).
func TestProcFigures(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := cpuTime(os.Getpid()); err == nil {
			t.Fatal("cpuTime without /proc should fail")
		}
		return
	}
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		after, err := cpuTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU time counted after 10 s of work (%d)", x)
		}
	}
	if rss := peakRSS(os.Getpid()); rss < 1<<20 {
		t.Fatalf("peak RSS %d bytes", rss)
	}
	if _, err := cpuTime(-1); err == nil {
		t.Fatal("cpuTime of no process succeeded")
	}
}
