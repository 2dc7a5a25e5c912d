package promtext

import (
	"math"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m, 5*time.Second, nil) }

func TestLabels(t *testing.T) {
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"method", "add"}, `method="add"`},
		{[]string{"method", `a"b\c` + "\nd", "queue", "q"}, `method="a\"b\\c\nd",queue="q"`},
		{[]string{"method", ""}, `method=""`},
	} {
		if got := string(Labels(nil, tc.kv...)); got != tc.want {
			t.Errorf("Labels(%q) = %s, want %s", tc.kv, got, tc.want)
		}
	}
	if got := string(Labels([]byte(`a="b"`), "c", "d")); got != `a="b",c="d"` {
		t.Errorf("appended labels: %s", got)
	}
}

func TestAppendFloat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {3, "3"}, {0.25, "0.25"}, {1e20, "1e+20"}, {math.Inf(1), "+Inf"}, {math.NaN(), "NaN"},
	} {
		if got := string(AppendFloat(nil, tc.v)); got != tc.want {
			t.Errorf("AppendFloat(%v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestHist(t *testing.T) {
	var h Hist
	h.Observe(-1)   // 0: first bucket
	h.Observe(5e5)  // 0.5 ms: first bucket (le is inclusive)
	h.Observe(2e6)  // 2 ms: le 0.0025
	h.Observe(1e12) // past the last bound: +Inf
	var b Buf
	b.Hist("x_seconds", Labels(nil, "m", "a"), &h)
	want := `x_seconds_bucket{m="a",le="0.0005"} 2
x_seconds_bucket{m="a",le="0.001"} 2
x_seconds_bucket{m="a",le="0.0025"} 3
`
	if got := string(b.B); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("got:\n%s", got)
	}
	if h.Counts[len(h.Counts)-1] != 1 {
		t.Errorf("+Inf bucket %d, want 1", h.Counts[len(h.Counts)-1])
	}
}

func TestObserveAllocs(t *testing.T) {
	var h Hist
	if n := testing.AllocsPerRun(1000, func() { h.Observe(12345) }); n != 0 {
		t.Errorf("Observe: %v allocs, want 0", n)
	}
}
