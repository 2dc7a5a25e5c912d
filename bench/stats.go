package bench

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear (the HDR histogram layout): values below 2*subCount nanoseconds
// have a bucket each, and every power of two above is split into subCount buckets of equal width.
// A bucket is then at most 1/subCount of its value wide, and a quantile reported as the bucket's
// midpoint is within 1/(2*subCount) ≈ 1.6% of the exact sample. The array is fixed (no
// allocation per sample, none per histogram beyond the struct itself) and small enough (9 KiB) to
// give each load goroutine its own, merged at the end: no shared counter on the hot path.
const (
	subBits  = 5
	subCount = 1 << subBits
	// maxBits bounds the values kept exactly: 2^40 ns is about 18 minutes. Larger samples are
	// counted in the last bucket (and in Max exactly).
	maxBits    = 40
	maxValue   = 1<<maxBits - 1
	numBuckets = (maxBits-subBits)*subCount + subCount
)

// Histogram records durations with about 1.6% relative precision, in constant memory and
// without allocating. The zero value is an empty histogram ready to use. A Histogram is not safe
// for concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds; float64 so a long run cannot overflow
	min    int64
	max    int64
}

// bucketOf returns the bucket index of a value in nanoseconds (clamped to [0, maxValue]).
func bucketOf(v int64) int {
	if v < 2*subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	if v > maxValue {
		v = maxValue
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1)
	return shift*subCount + int(v>>shift)
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < 2*subCount {
		return int64(i), 1
	}
	shift := i/subCount - 1
	return int64(i-shift*subCount) << shift, int64(1) << shift
}

// Record adds one sample. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties the histogram.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest sample (exact), 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest sample (exact), 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the average of the samples (exact up to float rounding), 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Quantile returns the q-quantile (0 < q <= 1) by the nearest-rank method: the smallest sample
// such that at least q of all samples are at or below it, reported as the midpoint of its bucket
// (so within about 1.6% of the exact sample) and never outside [Min, Max]. q <= 0 returns Min, an
// empty histogram 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		lo, w := bucketRange(i)
		v := lo + (w-1)/2
		v = max(v, h.min)
		v = min(v, h.max)
		return time.Duration(v)
	}
	return time.Duration(h.max)
}

// Latency summarises a histogram: the figures a benchmark report shows.
type Latency struct {
	P50  time.Duration
	P90  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
	Mean time.Duration
}

// Summary returns the histogram's percentiles, maximum and mean.
func (h *Histogram) Summary() Latency {
	return Latency{
		P50:  h.Quantile(0.50),
		P90:  h.Quantile(0.90),
		P99:  h.Quantile(0.99),
		P999: h.Quantile(0.999),
		Max:  h.Max(),
		Mean: h.Mean(),
	}
}
