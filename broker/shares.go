package broker

// Fair shares. Every table the clients fill together (the methods with a queue, the
// broker.result waits) has a global bound and a per-client share of it (Config.ClientShare
// percent), so that one client cannot fill a table the others need. A client is its
// authenticated CURVE key when the connection has one (all the connections of one key share
// one share), else its routing identity: without authentication one host's connections are
// bounded only by MaxConnsPerAddr, so the share bounds each connection.
//
// A queue is charged to the client whose call or hello made it, until it is forgotten; a wait
// to the client that waits. A share lives while a peer uses it or it holds anything.

// share counts what one client holds in the shared tables.
type share struct {
	key     string
	peers   int // live peers using it
	methods int // queues it made that still exist
	waits   int // its broker.result waits
}

// shareFor returns the share of a client known by key (its CURVE key, or its identity).
func (c *core) shareFor(key []byte) *share {
	if sh, ok := c.shares[string(key)]; ok {
		return sh
	}
	sh := &share{key: string(key)}
	c.shares[sh.key] = sh
	return sh
}

// releaseShare forgets a share that nothing uses any more.
func (c *core) releaseShare(sh *share) {
	if sh != nil && sh.peers == 0 && sh.methods == 0 && sh.waits == 0 {
		delete(c.shares, sh.key)
	}
}

// shareOf returns the per-client bound of a table bounded globally by total: at least 1.
func (c *core) shareOf(total int) int {
	return max(total*c.cfg.ClientShare/100, 1)
}

// Fair hand-out. A queue's tasks of priority 0 wait in one lane per client (the peer that
// called: its calls' replies are owed to it; submitted tasks, which are no client's, share one
// lane), and the hand-out takes one task from each lane in turn. So a client that queues
// thousands of calls delays another client's call of the same method by one task per client
// with tasks waiting, not by its whole backlog: with k clients waiting, each gets at least one
// hand-out in k. Higher priorities stay first in first out: a priority is a promise across
// clients. With one client (the common case) a lane is a ring and nothing more.

// lane is the FIFO of one client's task keys in a queue, linked in the queue's circle of
// lanes that hold entries.
type lane struct {
	client     uint32
	ring       ring
	prev, next *lane
}

// lanes holds a queue's priority-0 task keys, a lane per client, taken round robin.
type lanes struct {
	cur    *lane            // the lane the next pop takes from; nil when every lane is empty
	n      int              // entries in all lanes (live or stale)
	count  int              // lanes in the circle
	byID   map[uint32]*lane // client -> lane, made when a queue first has two lanes
	spare  *lane            // lanes that emptied, for reuse (their rings keep a small buffer)
	spares int
}

// maxSpareLanes bounds the emptied lanes a queue keeps for reuse.
const maxSpareLanes = 64

func (ls *lanes) len() int { return ls.n }

// laneFor returns the lane of client, linking a new one into the circle before cur (it
// takes its first turn after every lane that was waiting). The map, once made, holds every
// lane in the circle.
func (ls *lanes) laneFor(client uint32) *lane {
	if ls.cur != nil {
		if ls.cur.client == client {
			return ls.cur
		}
		if ls.byID == nil {
			ls.byID = make(map[uint32]*lane, 4)
			ls.byID[ls.cur.client] = ls.cur
		} else if l := ls.byID[client]; l != nil {
			return l
		}
	}
	l := ls.spare
	if l != nil {
		ls.spare = l.next
		ls.spares--
	} else {
		l = new(lane)
	}
	l.client = client
	if ls.cur == nil {
		l.prev, l.next = l, l
		ls.cur = l
	} else {
		l.prev, l.next = ls.cur.prev, ls.cur
		ls.cur.prev.next = l
		ls.cur.prev = l
	}
	if ls.byID != nil {
		ls.byID[client] = l
	}
	ls.count++
	return l
}

// push adds task key k of client, at the front of its lane (a task given back by a lost node:
// its lane is served next) or at the back.
func (ls *lanes) push(client uint32, k uint64, front bool) {
	l := ls.laneFor(client)
	if front {
		l.ring.pushFront(k)
		ls.cur = l
	} else {
		l.ring.pushBack(k)
	}
	ls.n++
}

// peek returns the entry pop would take, without taking it.
func (ls *lanes) peek() (uint64, bool) {
	if ls.cur == nil {
		return 0, false
	}
	return ls.cur.ring.front()
}

// pop takes the first entry of the current lane and moves on to the next lane.
func (ls *lanes) pop() (uint64, bool) {
	l := ls.cur
	if l == nil {
		return 0, false
	}
	k, ok := l.ring.popFront()
	if ok {
		ls.n--
	}
	if l.ring.len() == 0 {
		ls.drop(l)
	} else {
		ls.cur = l.next
	}
	return k, ok
}

// drop unlinks the empty lane l (cur moves to the next lane).
func (ls *lanes) drop(l *lane) {
	ls.count--
	if ls.count == 0 {
		ls.cur = nil
	} else {
		l.prev.next, l.next.prev = l.next, l.prev
		if ls.cur == l {
			ls.cur = l.next
		}
	}
	if ls.byID != nil {
		delete(ls.byID, l.client)
	}
	l.prev = nil
	if ls.spares < maxSpareLanes {
		l.next = ls.spare
		ls.spare = l
		ls.spares++
	} else {
		l.next = nil
	}
}

// filter keeps the entries for which keep returns true, in order, dropping lanes it empties.
func (ls *lanes) filter(keep func(uint64) bool) {
	for i, l := ls.count, ls.cur; i > 0; i-- {
		next := l.next
		ls.n -= l.ring.len()
		l.ring.filter(keep)
		ls.n += l.ring.len()
		if l.ring.len() == 0 {
			ls.drop(l)
		}
		l = next
	}
}

// each calls f with every lane's ring.
func (ls *lanes) each(f func(*ring)) {
	for i, l := ls.count, ls.cur; i > 0; i, l = i-1, l.next {
		f(&l.ring)
	}
}
