// Package promtext writes the Prometheus text exposition format (version 0.0.4) from counters
// kept in place by their owner: a Hist is a plain array of bucket counts, observed under the
// owner's own lock, and a Buf renders samples on a scrape. No registry, no atomics, no
// allocation per observation.
package promtext

import (
	"math"
	"strconv"

	"github.com/zerotask/zerotask/protocol"
)

// Hist is a histogram of durations over protocol.MetricBuckets (seconds): counts per bucket
// (the last one is +Inf) and the sum in nanoseconds. Its owner guards it.
type Hist struct {
	Counts [len(protocol.MetricBuckets) + 1]uint64
	SumNS  int64
}

// bucketNS are protocol.MetricBuckets in nanoseconds.
var bucketNS = func() (b [len(protocol.MetricBuckets)]int64) {
	for i, s := range protocol.MetricBuckets {
		b[i] = int64(math.Round(s * 1e9))
	}
	return b
}()

// Observe adds a duration of ns nanoseconds (a negative one counts as 0).
func (h *Hist) Observe(ns int64) {
	if ns < 0 {
		ns = 0
	}
	i := 0
	for i < len(bucketNS) && ns > bucketNS[i] {
		i++
	}
	h.Counts[i]++
	h.SumNS += ns
}

// ContentType is the Content-Type of the text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Buf builds an exposition.
type Buf struct{ B []byte }

// Head appends the HELP and TYPE lines of a metric family.
func (b *Buf) Head(name, help, typ string) {
	b.B = append(b.B, "# HELP "...)
	b.B = append(b.B, name...)
	b.B = append(b.B, ' ')
	b.B = append(b.B, help...)
	b.B = append(b.B, "\n# TYPE "...)
	b.B = append(b.B, name...)
	b.B = append(b.B, ' ')
	b.B = append(b.B, typ...)
	b.B = append(b.B, '\n')
}

// Sample appends one sample; labels are made by Labels (nil: none).
func (b *Buf) Sample(name string, labels []byte, v float64) {
	b.B = append(b.B, name...)
	if len(labels) > 0 {
		b.B = append(b.B, '{')
		b.B = append(b.B, labels...)
		b.B = append(b.B, '}')
	}
	b.B = append(b.B, ' ')
	b.B = AppendFloat(b.B, v)
	b.B = append(b.B, '\n')
}

// Hist appends the _bucket, _sum and _count samples of h.
func (b *Buf) Hist(name string, labels []byte, h *Hist) {
	var cum uint64
	for i := range h.Counts {
		cum += h.Counts[i]
		le := "+Inf"
		if i < len(protocol.MetricBuckets) {
			le = strconv.FormatFloat(protocol.MetricBuckets[i], 'g', -1, 64)
		}
		b.B = append(b.B, name...)
		b.B = append(b.B, "_bucket{"...)
		b.B = append(b.B, labels...)
		if len(labels) > 0 {
			b.B = append(b.B, ',')
		}
		b.B = append(b.B, `le="`...)
		b.B = append(b.B, le...)
		b.B = append(b.B, "\"} "...)
		b.B = strconv.AppendUint(b.B, cum, 10)
		b.B = append(b.B, '\n')
	}
	b.Sample(name+"_sum", labels, float64(h.SumNS)/1e9)
	b.Sample(name+"_count", labels, float64(cum))
}

// Labels appends name="value" pairs to dst (after a comma when dst holds some already), each
// value escaped as the text format wants (backslash, double quote, newline).
func Labels(dst []byte, kv ...string) []byte {
	for i := 0; i+1 < len(kv); i += 2 {
		if len(dst) > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, kv[i]...)
		dst = append(dst, '=', '"')
		v := kv[i+1]
		for j := 0; j < len(v); j++ {
			switch v[j] {
			case '\\':
				dst = append(dst, '\\', '\\')
			case '"':
				dst = append(dst, '\\', '"')
			case '\n':
				dst = append(dst, '\\', 'n')
			default:
				dst = append(dst, v[j])
			}
		}
		dst = append(dst, '"')
	}
	return dst
}

// AppendFloat appends v as the text format reads it (integers without an exponent).
func AppendFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.AppendInt(dst, int64(v), 10)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}
