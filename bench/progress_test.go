package bench

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

func TestRenderBar(t *testing.T) {
	tests := []struct {
		frac    float64
		done    int64
		rate    float64
		want    string
		wantPct string
	}{
		{0, 0, 0, "[>         ]", "0%"},
		{0.5, 1234, 5678.9, "[=====>    ]", "50%"},
		{1, 10, 1, "[==========]", "100%"},
		{1.7, 10, 1, "[==========]", "100%"}, // clamped
		{-1, 0, 0, "[>         ]", "0%"},
	}
	for _, tc := range tests {
		got := renderBar("sync", tc.frac, tc.done, tc.rate, 10)
		if !strings.HasPrefix(got, "sync   "+tc.want) || !strings.Contains(got, tc.wantPct) ||
			!strings.Contains(got, fmtInt(tc.done)+" tasks") || !strings.Contains(got, fmtInt(int64(tc.rate))+"/s") {
			t.Errorf("renderBar(%v, %d, %v) = %q, want bar %q and %s", tc.frac, tc.done, tc.rate, got, tc.want, tc.wantPct)
		}
	}
}

func TestProgressDrawsAndClears(t *testing.T) {
	var out testutil.Buffer
	p := NewProgress(&out)
	var n atomic.Int64
	p.Begin("async", 1000, time.Minute, n.Load)
	n.Store(500)
	testutil.Eventually(t, 5*time.Second, func() bool { return strings.Contains(out.String(), "500 tasks") },
		"the bar never showed the count: %q", out.String())
	p.End()
	p.End() // a second End is harmless
	s := out.String()
	if !strings.HasPrefix(s, "\r\x1b[K") || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Fatalf("the bar must redraw its line and clear it at the end: %q", s)
	}
	if !strings.Contains(s, " 50%") {
		t.Fatalf("500 of 1000 tasks should show 50%%: %q", s)
	}
	var nilBar *Progress
	nilBar.Begin("x", 1, 0, n.Load) // a nil bar draws nothing and does not panic
	nilBar.End()
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("a regular file is not a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Fatal("a pipe is not a terminal")
	}
}
