package zmtp

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

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

// pubSubs holds the subscriptions of a PUB socket's peers in a trie of their prefixes, cut
// into spines by heavy-path decomposition: a spine is a run of bytes (one comparison covers
// it) with, at its offsets, the peers whose prefix ends there and the forks to lighter
// spines. A fork's spine never holds more prefixes than the spine's own continuation past the
// fork, so a topic leaves a spine for a fork at most log2(prefixes) times. Matching a topic
// therefore costs a comparison of its bytes, a binary search per fork taken and the peers it
// reaches, whatever the number, lengths or shapes of the subscriptions: an adversary's
// prefixes that branch off the topic at every depth cost one comparison, not a step per
// branch. The trie's bytes are the distinct prefixes' bytes, each stored once. The socket's
// pubMu guards it and the peers' psubs, psubBytes and pubGen.
type pubSubs struct {
	root spine
	gen  uint64 // stamps the peers a publish already reached
}

// spine is a path of the trie. Offset 0 is the node it starts at (for a fork's spine, the
// node of the parent it forks from, so its ends and forks are at offsets >= 1); offset o is
// the node after s[:o].
type spine struct {
	s     []byte
	ends  []spineEnd  // sorted by off
	forks []spineFork // sorted by (off, b); at off < len(s), b != s[off]
	w     int         // prefixes ending in this spine and its forks
}

type spineEnd struct {
	off   int
	conns []*conn // peers subscribed to the prefix ending here
}

type spineFork struct {
	off int
	b   byte // the first byte of sp.s
	sp  *spine
}

// fork returns the index of the fork at (off, b), or where it would go, and whether it exists.
func (sp *spine) fork(off int, b byte) (int, bool) {
	return slices.BinarySearchFunc(sp.forks, spineFork{off: off, b: b}, cmpFork)
}

func cmpFork(a, b spineFork) int {
	if a.off != b.off {
		return a.off - b.off
	}
	return int(a.b) - int(b.b)
}

func (sp *spine) end(off int) (int, bool) {
	return slices.BinarySearchFunc(sp.ends, off, func(e spineEnd, off int) int { return e.off - off })
}

// insert records c under prefix p. The caller ensures c is not there yet.
func (t *pubSubs) insert(p []byte, c *conn) { t.root.insert(p, c) }

// insert records c under p (relative to sp's start) and reports whether p is a new prefix.
func (sp *spine) insert(p []byte, c *conn) bool {
	m := commonPrefix(sp.s, p)
	if m == len(p) {
		i, ok := sp.end(m)
		if ok {
			sp.ends[i].conns = append(sp.ends[i].conns, c)
			return false
		}
		sp.ends = slices.Insert(sp.ends, i, spineEnd{off: m, conns: []*conn{c}})
		sp.w++
		return true
	}
	i, ok := sp.fork(m, p[m])
	if ok {
		if !sp.forks[i].sp.insert(p[m:], c) {
			return false
		}
	} else {
		k := &spine{s: slices.Clone(p[m:]), ends: []spineEnd{{off: len(p) - m, conns: []*conn{c}}}, w: 1}
		sp.forks = slices.Insert(sp.forks, i, spineFork{off: m, b: p[m], sp: k})
	}
	sp.w++
	// Only the fork that grew can have passed the continuation past its offset (which did
	// not change): weigh what lies past it.
	j, _ := sp.end(m + 1)
	beyond := len(sp.ends) - j
	j, _ = sp.fork(m+1, 0)
	for _, g := range sp.forks[j:] {
		beyond += g.sp.w
	}
	if sp.forks[i].sp.w > beyond {
		sp.swap(i)
	}
	return true
}

// delete removes c from prefix p and drops what is left empty.
func (t *pubSubs) delete(p []byte, c *conn) {
	if t.root.delete(p, c) && t.root.w == 0 {
		t.root = spine{}
	}
}

// delete removes c from p (relative to sp's start) and reports whether the prefix is gone.
func (sp *spine) delete(p []byte, c *conn) bool {
	m := commonPrefix(sp.s, p)
	if m == len(p) {
		i, ok := sp.end(m)
		if !ok {
			return false
		}
		e := &sp.ends[i]
		j := slices.Index(e.conns, c)
		if j < 0 {
			return false
		}
		e.conns[j] = e.conns[len(e.conns)-1]
		e.conns[len(e.conns)-1] = nil
		if e.conns = e.conns[:len(e.conns)-1]; len(e.conns) > 0 {
			return false
		}
		sp.ends = slices.Delete(sp.ends, i, i+1)
	} else {
		i, ok := sp.fork(m, p[m])
		if !ok || !sp.forks[i].sp.delete(p[m:], c) {
			return false
		}
		if sp.forks[i].sp.w == 0 {
			sp.forks = slices.Delete(sp.forks, i, i+1)
		}
	}
	sp.w--
	sp.trim()
	sp.balance()
	return true
}

// trim drops the bytes past the spine's last end and last fork: nothing is there any more.
func (sp *spine) trim() {
	hi := 0
	if len(sp.ends) > 0 {
		hi = sp.ends[len(sp.ends)-1].off
	}
	if len(sp.forks) > 0 {
		hi = max(hi, sp.forks[len(sp.forks)-1].off)
	}
	if hi < len(sp.s) {
		if hi <= cap(sp.s)/2 {
			sp.s = slices.Clone(sp.s[:hi])
		} else {
			sp.s = sp.s[:hi]
		}
	}
}

// balance restores the spine's invariant after a change of weights: from the last offset to
// the first, a fork heavier than the spine's continuation past its offset swaps with it. What
// lies past an offset keeps its total weight through a swap there, so one pass suffices.
func (sp *spine) balance() {
	beyond := 0 // weight at offsets past the current one
	ei, fi := len(sp.ends)-1, len(sp.forks)-1
	for ei >= 0 || fi >= 0 {
		off := -1
		if ei >= 0 {
			off = sp.ends[ei].off
		}
		if fi >= 0 {
			off = max(off, sp.forks[fi].off)
		}
		here, heavy := 0, -1
		for ; ei >= 0 && sp.ends[ei].off == off; ei-- {
			here++
		}
		lo := fi
		for ; lo >= 0 && sp.forks[lo].off == off; lo-- {
			w := sp.forks[lo].sp.w
			here += w
			if w > beyond && (heavy < 0 || w > sp.forks[heavy].sp.w) {
				heavy = lo
			}
		}
		if heavy >= 0 {
			sp.swap(heavy)
		}
		fi = lo
		beyond += here
	}
}

// swap makes fork i the spine's continuation past its offset, and that continuation a fork.
func (sp *spine) swap(i int) {
	f := sp.forks[i]
	m, k := f.off, f.sp
	var tail *spine
	ei, _ := sp.end(m + 1) // first end past m
	fj, _ := sp.fork(m+1, 0)
	if m < len(sp.s) && (ei < len(sp.ends) || fj < len(sp.forks)) {
		tail = &spine{s: slices.Clone(sp.s[m:])}
		for _, e := range sp.ends[ei:] {
			tail.ends = append(tail.ends, spineEnd{off: e.off - m, conns: e.conns})
			tail.w++
		}
		for _, g := range sp.forks[fj:] {
			tail.forks = append(tail.forks, spineFork{off: g.off - m, b: g.b, sp: g.sp})
			tail.w += g.sp.w
		}
	}
	s := make([]byte, 0, m+len(k.s))
	sp.s = append(append(s, sp.s[:m]...), k.s...)
	ends := sp.ends[:ei:ei]
	for _, e := range k.ends {
		ends = append(ends, spineEnd{off: e.off + m, conns: e.conns})
	}
	sp.ends = ends
	forks := make([]spineFork, 0, fj-1+len(k.forks)+1)
	forks = append(forks, sp.forks[:i]...)
	forks = append(forks, sp.forks[i+1:fj]...)
	if tail != nil {
		j, _ := slices.BinarySearchFunc(forks, spineFork{off: m, b: tail.s[0]}, cmpFork)
		forks = slices.Insert(forks, j, spineFork{off: m, b: tail.s[0], sp: tail})
	}
	for _, g := range k.forks {
		forks = append(forks, spineFork{off: g.off + m, b: g.b, sp: g.sp})
	}
	sp.forks = forks
}

// publish queues frames for every peer with a subscription that is a prefix of frames[0],
// once each, and counts those at their HWM.
func (t *pubSubs) publish(frames [][]byte) (drops uint64) {
	t.walk(frames[0], func(c *conn) {
		if !c.publish(frames) {
			drops++
		}
	})
	return drops
}

// walk calls fn once for every peer with a subscription that is a prefix of topic: one
// comparison per spine, and a binary search per fork the topic takes.
func (t *pubSubs) walk(topic []byte, fn func(*conn)) {
	t.gen++
	sp := &t.root
	for {
		m := commonPrefix(sp.s, topic)
		for i := range sp.ends {
			e := &sp.ends[i]
			if e.off > m {
				break
			}
			for _, c := range e.conns {
				if c.pubGen != t.gen {
					c.pubGen = t.gen
					fn(c)
				}
			}
		}
		if m == len(topic) {
			return
		}
		i, ok := sp.fork(m, topic[m])
		if !ok {
			return
		}
		sp, topic = sp.forks[i].sp, topic[m:]
	}
}

// commonPrefix returns the length of the longest common prefix of a and b: long runs are
// compared by the runtime's vectorised equality, the run that differs eight bytes a step.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	a, b = a[:n], b[:n]
	i := 0
	for ; i+256 <= n && string(a[i:i+256]) == string(b[i:i+256]); i += 256 {
	}
	for ; i+32 <= n && string(a[i:i+32]) == string(b[i:i+32]); i += 32 {
	}
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
