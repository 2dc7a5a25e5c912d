package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted samples.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return sorted[rank-1]
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() int64
		n    int
	}{
		{"tiny exact", func() int64 { return rng.Int64N(64) }, 1000},
		{"uniform 10us-1ms", func() int64 { return 10_000 + rng.Int64N(990_000) }, 100_000},
		{"lognormal around 60us", func() int64 { return int64(60_000 * math.Exp(rng.NormFloat64()*0.7)) }, 200_000},
		{"bimodal", func() int64 {
			if rng.IntN(10) == 0 {
				return 5_000_000 + rng.Int64N(1_000_000)
			}
			return 50_000 + rng.Int64N(10_000)
		}, 50_000},
		{"one sample", func() int64 { return 123_456 }, 1},
		{"seconds", func() int64 { return int64(time.Second) + rng.Int64N(int64(time.Minute)) }, 10_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			samples := make([]int64, tc.n)
			for i := range samples {
				samples[i] = tc.gen()
				h.Record(time.Duration(samples[i]))
			}
			slices.Sort(samples)
			if got := h.Count(); got != uint64(tc.n) {
				t.Fatalf("Count = %d, want %d", got, tc.n)
			}
			if h.Min() != time.Duration(samples[0]) || h.Max() != time.Duration(samples[len(samples)-1]) {
				t.Fatalf("Min/Max = %v/%v, want %v/%v", h.Min(), h.Max(), samples[0], samples[len(samples)-1])
			}
			for _, q := range []float64{0.01, 0.25, 0.5, 0.9, 0.99, 0.999} {
				want := exactQuantile(samples, q)
				got := int64(h.Quantile(q))
				if relErr := math.Abs(float64(got-want)) / math.Max(float64(want), 1); relErr > 1.0/(2*subCount)+1e-9 && got != want {
					t.Errorf("Quantile(%v) = %d, want %d (relative error %.4f > %.4f)", q, got, want, relErr, 1.0/(2*subCount))
				}
			}
			var sum float64
			for _, s := range samples {
				sum += float64(s)
			}
			if want := time.Duration(math.Round(sum / float64(len(samples)))); h.Mean() != want {
				t.Errorf("Mean = %v, want %v", h.Mean(), want)
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	h.Record(-5 * time.Second) // clock went backwards: counted as 0
	h.Record(time.Hour)        // past 2^40 ns: clamped into the last bucket, Max stays exact
	if h.Min() != 0 || h.Max() != time.Hour {
		t.Fatalf("Min/Max = %v/%v, want 0/1h", h.Min(), h.Max())
	}
	if got := h.Quantile(1); got != time.Hour {
		t.Fatalf("Quantile(1) = %v, want 1h", got)
	}
	if got := h.Quantile(0); got != 0 {
		t.Fatalf("Quantile(0) = %v, want 0", got)
	}
	if got := h.Quantile(0.99); got > time.Hour || got < time.Duration(maxValue)*98/100 {
		t.Fatalf("Quantile(0.99) = %v, want about 2^40ns (the clamp) and at most 1h", got)
	}
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 {
		t.Fatal("Reset must empty the histogram")
	}
}

// TestBucketLayout checks that buckets tile the value range: every bucket starts where the
// previous one ended, and bucketOf maps each bound back to its bucket.
func TestBucketLayout(t *testing.T) {
	next := int64(0)
	for i := range numBuckets {
		lo, w := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if got := bucketOf(lo); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketOf(lo + w - 1); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo+w-1, got, i)
		}
		if lo >= 2*subCount && float64(w)/float64(lo) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket %d [%d,+%d) is wider than 1/%d of its value", i, lo, w, subCount)
		}
		next = lo + w
	}
	if next != maxValue+1 {
		t.Fatalf("buckets end at %d, want %d", next, int64(maxValue+1))
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 10_000 {
		d := time.Duration(1000 + i*37)
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var empty Histogram
	a.Merge(&empty)
	a.Merge(&b)
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Fatalf("merged count/min/max/mean = %d/%v/%v/%v, want %d/%v/%v/%v",
			a.Count(), a.Min(), a.Max(), a.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	if a.Summary() != all.Summary() {
		t.Fatalf("merged summary %+v, want %+v", a.Summary(), all.Summary())
	}
	empty.Merge(&all)
	if empty.Summary() != all.Summary() {
		t.Fatalf("merge into empty: %+v, want %+v", empty.Summary(), all.Summary())
	}
}

func TestHistogramRecordAllocs(t *testing.T) {
	h := new(Histogram)
	allocs := testing.AllocsPerRun(1000, func() { h.Record(42 * time.Microsecond) })
	if allocs != 0 {
		t.Fatalf("Record allocates %.1f times, want 0", allocs)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(50_000 + i&0xffff))
	}
}

func BenchmarkHistogramQuantile(b *testing.B) {
	var h Histogram
	for i := range 100_000 {
		h.Record(time.Duration(50_000 + i))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Quantile(0.99)
	}
}
