package zmtp

import "slices"

// subSet is a set of counted subscription prefixes with a matcher whose cost does not grow
// with the number of subscriptions: it keeps the distinct prefix lengths, and a topic matches
// when, for one of those lengths L, topic[:L] is a subscribed prefix (one map lookup per
// distinct length, no allocation). The caller locks it.
type subSet struct {
	counts   map[string]int // prefix -> subscribe count
	lens     []int          // distinct prefix lengths, ascending
	lenCount map[int]int    // prefixes per length
}

// add counts one subscription to p and reports whether p is new. A new prefix past max
// (max > 0) is refused with ok=false.
func (s *subSet) add(p []byte, max int) (first, ok bool) {
	if s.counts == nil {
		s.counts, s.lenCount = map[string]int{}, map[int]int{}
	}
	if n, found := s.counts[string(p)]; found {
		s.counts[string(p)] = n + 1
		return false, true
	}
	if max > 0 && len(s.counts) >= max {
		return false, false
	}
	s.counts[string(p)] = 1
	if s.lenCount[len(p)]++; s.lenCount[len(p)] == 1 {
		i, _ := slices.BinarySearch(s.lens, len(p))
		s.lens = slices.Insert(s.lens, i, len(p))
	}
	return true, true
}

// remove uncounts one subscription to p and reports whether p is gone. Removing an unknown
// prefix does nothing, as in libzmq.
func (s *subSet) remove(p []byte) (last bool) {
	n, found := s.counts[string(p)]
	if !found {
		return false
	}
	if n > 1 {
		s.counts[string(p)] = n - 1
		return false
	}
	delete(s.counts, string(p))
	if s.lenCount[len(p)]--; s.lenCount[len(p)] == 0 {
		delete(s.lenCount, len(p))
		if i, ok := slices.BinarySearch(s.lens, len(p)); ok {
			s.lens = slices.Delete(s.lens, i, i+1)
		}
	}
	return true
}

// match reports whether some subscribed prefix is a prefix of topic.
func (s *subSet) match(topic []byte) bool {
	for _, l := range s.lens {
		if l > len(topic) {
			return false
		}
		if _, ok := s.counts[string(topic[:l])]; ok {
			return true
		}
	}
	return false
}

// prefixes returns the distinct prefixes.
func (s *subSet) prefixes() [][]byte {
	out := make([][]byte, 0, len(s.counts))
	for p := range s.counts {
		out = append(out, []byte(p))
	}
	return out
}
