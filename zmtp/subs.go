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

// pubSubs holds the subscriptions of a PUB socket's peers in one radix tree of prefixes, each
// node listing the peers subscribed to exactly its prefix. Matching a topic walks the tree
// along the topic once: its cost is the topic's length plus the peers it matches, whatever
// the number, lengths or shapes of the subscriptions (a per-peer set costs a lookup per peer,
// or per distinct prefix length). The tree's memory is bounded by the prefixes' bytes (each
// stored once, in its edge labels) and a node per prefix at most twice. The socket's pubMu
// guards it and the peers' psubs, psubBytes and pubGen.
type pubSubs struct {
	root subNode
	gen  uint64 // stamps the peers a publish already reached
}

type subNode struct {
	label []byte     // the edge from the parent (the root's is empty)
	keys  []byte     // the first byte of each child's label, in order (searched without touching the children)
	kids  []*subNode // sorted by label[0]; labels are never empty
	conns []*conn    // peers subscribed to the prefix ending here
}

// kid returns the index of the child whose label starts with b, and whether it exists.
func (n *subNode) kid(b byte) (int, bool) {
	if len(n.keys) <= 8 {
		for i, k := range n.keys {
			if k >= b {
				return i, k == b
			}
		}
		return len(n.keys), false
	}
	i, ok := slices.BinarySearch(n.keys, b)
	return i, ok
}

// insert records c under prefix p. The caller ensures c is not there yet.
func (t *pubSubs) insert(p []byte, c *conn) {
	n := &t.root
	for len(p) > 0 {
		i, ok := n.kid(p[0])
		if !ok {
			k := &subNode{label: append([]byte(nil), p...), conns: []*conn{c}}
			n.kids = slices.Insert(n.kids, i, k)
			n.keys = slices.Insert(n.keys, i, p[0])
			return
		}
		k := n.kids[i]
		common := commonPrefix(k.label, p)
		if common < len(k.label) {
			// Split k's edge where p leaves it.
			mid := &subNode{label: k.label[:common:common], kids: []*subNode{k}}
			k.label = k.label[common:]
			mid.keys = []byte{k.label[0]}
			n.kids[i] = mid
			k = mid
		}
		n, p = k, p[common:]
	}
	n.conns = append(n.conns, c)
}

// delete removes c from prefix p and prunes the nodes left empty.
func (t *pubSubs) delete(p []byte, c *conn) {
	var path [2]*subNode // the last two nodes above n, for pruning
	n := &t.root
	for len(p) > 0 {
		i, ok := n.kid(p[0])
		if !ok || len(p) < len(n.kids[i].label) || string(p[:len(n.kids[i].label)]) != string(n.kids[i].label) {
			return
		}
		path[0], path[1] = path[1], n
		n, p = n.kids[i], p[len(n.kids[i].label):]
	}
	i := slices.Index(n.conns, c)
	if i < 0 {
		return
	}
	n.conns[i] = n.conns[len(n.conns)-1]
	n.conns[len(n.conns)-1] = nil
	n.conns = n.conns[:len(n.conns)-1]
	if len(n.conns) == 0 {
		n.conns = nil
	}
	parent := path[1]
	if parent == nil { // the root stays
		return
	}
	if len(n.conns) == 0 && len(n.kids) == 0 {
		j, _ := parent.kid(n.label[0])
		parent.kids = slices.Delete(parent.kids, j, j+1)
		parent.keys = slices.Delete(parent.keys, j, j+1)
		n = parent // it may now be a node with one child and no peers
		parent = path[0]
		if parent == nil {
			return
		}
	}
	if len(n.conns) == 0 && len(n.kids) == 1 {
		k := n.kids[0]
		j, _ := parent.kid(n.label[0])
		k.label = append(append([]byte(nil), n.label...), k.label...)
		parent.kids[j] = k // same first byte: parent.keys[j] holds
	}
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

// walk calls fn once for every peer with a subscription that is a prefix of topic: one step
// down the tree per edge the topic follows.
func (t *pubSubs) walk(topic []byte, fn func(*conn)) {
	t.gen++
	n := &t.root
	for {
		for _, c := range n.conns {
			if c.pubGen != t.gen {
				c.pubGen = t.gen
				fn(c)
			}
		}
		if len(topic) == 0 {
			return
		}
		i, ok := n.kid(topic[0])
		if !ok {
			return
		}
		k := n.kids[i]
		if len(topic) < len(k.label) || string(topic[:len(k.label)]) != string(k.label) {
			return
		}
		n, topic = k, topic[len(k.label):]
	}
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
