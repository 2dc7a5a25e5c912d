package zmtp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one connection of a socket. It has at most two goroutines: the one that accepted or
// dialed it, which runs the handshake and then the read loop, and a writer.
//
// Write path: Send encodes the message straight into wq (chunks, see wqueue) under wmu; that
// IS the queue (nmsgs counts its messages against SendHWM, wq.n its bytes against
// SendHWMBytes). The writer, woken only when it was idle, takes the whole list of chunks and
// writes it with one syscall (writev), looping until nothing is pending: messages sent while a
// write is in flight leave together in the next one.
//
// Direct writes: a Send that finds the connection idle (no write in flight, nothing queued
// before its message) and something received since the last direct write (a conversation:
// requests and replies, tasks and results) writes the message itself, with one non-blocking
// write on the socket (direct.go), instead of waking the writer goroutine: a lone message then
// leaves without a goroutine hand-off, as libzmq's sender writes from its own thread when its
// pipe was empty. A one-way stream (nothing coming back) keeps the writer, whose wake-up
// delay lets a burst leave in few writes: one write per message costs a fire-and-forget
// sender about half as much CPU again.
// Whatever the socket does not take at once (a full send buffer, an error), and whatever was
// queued meanwhile, goes to the writer, which owns the connection's output from then on. One
// party at a time writes, the one that set writing (the sender that found it idle, or the
// writer after a hand-off), so bytes leave in queue order; the message is encoded into wq first
// either way, so a direct write carries exactly what the writer would (CURVE included).
//
// Lock order: Socket.mu, then conn.wmu; recvQueue.mu may be taken under Socket.mu, and
// nothing is taken under it.
type conn struct {
	s        *Socket
	nc       net.Conn
	ep       string // the Bind or Connect endpoint this connection belongs to
	fr       *frameReader
	id       []byte // ROUTER: routing identity in use; other types: the peer's identity
	peerType []byte
	minor    byte     // peer's ZMTP minor version: 0 (3.0) or 1 (3.1)
	curveKey CurveKey // CURVE server: the peer's authenticated long-term public key
	// plain and plainUser: on a PLAIN server, the peer authenticated, with that username.
	plain     bool
	plainUser string
	hwm       int
	hwmBytes  int       // 0: no bound in bytes
	ln        *listener // the bound endpoint that accepted it (counts against MaxConns), or nil
	d         *dialer   // the Connect that dialed it, or nil

	reads atomic.Uint64 // successful reads, for the heartbeat ticker
	lane  *recvLane     // its messages in the socket's receive queue

	wmu     sync.Mutex // guards the fields below
	wq      wqueue     // encoded messages and commands waiting for the writer
	nmsgs   int        // messages (not commands) in wq
	writing bool       // a write is in flight: a direct one, or the writer was woken and has not yet found wq empty
	wclosed bool       // the connection is closing: nothing more is queued
	direct  bool       // a sender is writing directly (it owns w until it takes wmu again)
	wgone   bool       // the writer goroutine has returned: the direct writer cleans up
	wreads  uint64     // reads when the last direct write began

	// w is the output being written. Whoever set writing owns it: a direct sender, or the
	// writer goroutine.
	w      writer
	dw     directWriter  // non-blocking writes on the socket (direct.go); dw.ok false: none
	writes atomic.Uint64 // successful writes, for the heartbeat ticker

	// PUB, guarded by Socket.pubMu: the peer's subscriptions (prefix -> count), their bytes,
	// the publish that last reached it (pubSubs.gen), and whether it left the tree for good.
	psubs     map[string]int
	psubBytes int
	pubGen    uint64
	pubGone   bool

	wake       chan struct{} // 1-slot: wakes an idle writer
	done       chan struct{} // closed when the connection shuts down
	writerDone chan struct{} // closed when the writer has returned
	notified   chan struct{} // closed once the connection will queue nothing more for Recv
	closeOnce  sync.Once
	closeErr   error
}

func newConn(s *Socket, nc net.Conn, ep string) *conn {
	c := &conn{
		s:          s,
		nc:         nc,
		ep:         ep,
		hwm:        s.opts.SendHWM,
		hwmBytes:   s.opts.SendHWMBytes,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		notified:   make(chan struct{}),
	}
	c.lane = &recvLane{owner: c}
	c.dw.init(nc)
	c.fr = newFrameReader(nc, s.opts.MaxMsgSize)
	c.fr.maxFrames = s.opts.MaxFrames
	c.fr.reads = &c.reads
	return c
}

// shutdown closes the connection once; err says why. Safe from any goroutine.
func (c *conn) shutdown(err error) {
	c.closeOnce.Do(func() {
		c.closeErr = err
		c.wmu.Lock()
		c.wclosed = true
		c.wmu.Unlock()
		close(c.done)
		_ = c.nc.Close()
		c.s.sendWait.wakeAll() // senders parked on this peer's full queue
	})
}

// enqueue encodes one message into the pending queue. It returns false with closed=false when
// the queue is at its HWM (in messages or bytes), and closed=true when the connection is going
// away.
func (c *conn) enqueue(pre, frames [][]byte) (ok, closed bool) {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return false, true
	}
	if c.fullLocked(pre, frames) {
		c.wmu.Unlock()
		return false, false
	}
	n := c.wq.n
	c.wq.writeFrames(pre, frames)
	c.queuedLocked(n)
	c.nmsgs++
	c.sendLocked()
	return true, false
}

// fullLocked reports whether the queue cannot take one more message: SendHWM messages are
// queued, or the message would take the queued bytes past SendHWMBytes, or the bytes queued
// for all the socket's peers past SendHWMTotalBytes. A message always fits an empty queue,
// whatever its size, so that no message is refused forever (wmu held).
func (c *conn) fullLocked(pre, frames [][]byte) bool {
	if c.nmsgs >= c.hwm {
		return true
	}
	if c.nmsgs == 0 {
		return false
	}
	size := framesSize(pre, frames)
	if c.hwmBytes > 0 && c.wq.n+size > c.hwmBytes {
		return true
	}
	total := c.s.opts.SendHWMTotalBytes
	return total > 0 && c.s.queued.Load()+int64(size) > int64(total)
}

// queuedLocked adds what the queue gained since it held before bytes to the socket's total
// (wmu held). Every change of c.wq.n goes through it or through takeLocked and dropLocked.
func (c *conn) queuedLocked(before int) {
	c.s.queued.Add(int64(c.wq.n - before))
}

// takeLocked moves everything queued into w.out for one write and unlocks wmu, waking the
// senders that wait for room in this peer's queue; it returns the bytes and messages taken.
func (c *conn) takeLocked(w *writer) (size, n int) {
	size, n = c.wq.n, c.nmsgs
	w.out = c.wq.swap(w.out)
	c.s.queued.Add(-int64(size))
	c.nmsgs = 0
	c.wmu.Unlock()
	if n > 0 {
		c.s.sendWait.wakeAll()
	}
	return size, n
}

// wrote counts one write to the socket of n messages, size bytes in all.
func (c *conn) wrote(n, size int) {
	c.writes.Add(1)
	c.s.stats.msgsOut.Add(uint64(n))
	c.s.stats.bytesOut.Add(uint64(size))
}

// kickLocked marks the writer busy and wakes it if it was idle, then unlocks wmu. Waking only
// an idle writer keeps channel operations off the path of messages sent during a write.
func (c *conn) kickLocked() {
	wake := !c.writing
	c.writing = true
	c.wmu.Unlock()
	if wake {
		c.wakeWriter()
	}
}

// sendLocked sends what was just queued, then unlocks wmu: at once on this goroutine when
// nothing was in flight and the queue holds one chunk (a direct write), else by the writer.
func (c *conn) sendLocked() {
	if c.writing || !c.dw.ok || len(c.wq.chunks) != 1 {
		c.kickLocked()
		return
	}
	r := c.reads.Load()
	if r == c.wreads {
		// Nothing received since the last direct write: a one-way stream, where the writer's
		// wake-up lets the messages sent meanwhile leave together in one write.
		c.kickLocked()
		return
	}
	c.wreads = r
	c.writing, c.direct = true, true
	w := &c.w
	size, n := c.takeLocked(w)
	k := c.dw.write(w.out[0])
	if k < size {
		// The socket took part of it (or failed): the writer writes the rest, and reports a
		// failure as it does for its own writes.
		c.wmu.Lock()
		c.direct = false
		if c.wgone {
			c.dropLocked()
			c.wmu.Unlock()
			return
		}
		w.skip, w.nmsgs, w.size = k, n, size
		c.wmu.Unlock()
		directHandoffs.Add(1)
		if k > 0 {
			directCuts.Add(1)
		}
		c.wakeWriter()
		return
	}
	c.wrote(n, size)
	c.wmu.Lock()
	c.direct = false
	w.out = c.wq.recycle(w.out)
	switch {
	case c.wgone:
		c.dropLocked()
		c.wmu.Unlock()
	case c.wq.n == 0 || c.wclosed:
		c.writing = false
		c.wmu.Unlock()
	default:
		// Queued during the write: the writer takes it (a sender does not write for others).
		c.wmu.Unlock()
		c.wakeWriter()
	}
}

// directHandoffs counts direct writes the socket took only part of (tests check the hand-over
// is exercised; a rare path, so a shared counter costs nothing).
var directHandoffs atomic.Uint64

// directCuts counts those cut mid-message (0 < bytes written < the write), likewise.
var directCuts atomic.Uint64

// wakeWriter hands the output to the writer goroutine (writing is set).
func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// dropLocked gives back every chunk once the connection's writing is over (wmu held).
func (c *conn) dropLocked() {
	c.w.out = c.wq.recycle(c.w.out)
	c.s.queued.Add(-int64(c.wq.n))
	c.wq.drop()
	c.writing = false
}

// sendCommand queues a command frame (commands do not count against the HWM).
func (c *conn) sendCommand(name string, data ...[]byte) {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return
	}
	n := c.wq.n
	c.wq.writeCommand(name, data...)
	c.queuedLocked(n)
	c.sendLocked()
}

// sendSubscription tells a PUB peer about a (un)subscription in the form its ZMTP version
// understands: SUBSCRIBE/CANCEL commands for 3.1, a message starting with 1/0 for 3.0.
func (c *conn) sendSubscription(topic []byte, subscribe bool) {
	if c.minor >= 1 {
		name := "CANCEL"
		if subscribe {
			name = "SUBSCRIBE"
		}
		c.sendCommand(name, topic)
		return
	}
	flag := []byte{0}
	if subscribe {
		flag[0] = 1
	}
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return
	}
	n := c.wq.n
	if c.wq.cz != nil {
		c.wq.cz.writeFrame(&c.wq, 0, flag, topic, nil)
	} else {
		c.wq.writeFrameHeader(0, 1+len(topic))
		c.wq.write(flag)
		c.wq.write(topic)
	}
	c.queuedLocked(n)
	c.kickLocked()
}

// publish queues a PUB message for a matching subscriber. It never blocks: false reports the
// peer at its HWM (a closing peer takes nothing and counts as no drop).
func (c *conn) publish(frames [][]byte) bool {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return true
	}
	if c.fullLocked(nil, frames) {
		c.wmu.Unlock()
		return false
	}
	n := c.wq.n
	c.wq.writeFrames(nil, frames)
	c.queuedLocked(n)
	c.nmsgs++
	c.kickLocked()
	return true
}

// subscribe records a peer's (un)subscription (PUB side). A new prefix past MaxSubscriptions
// is a protocol violation; one that would take the peer's prefixes past
// Options.MaxSubscriptionBytes is not recorded (counted in Stats.SubsRefused): the peer
// loses that subscription and keeps the others.
func (c *conn) subscribe(topic []byte, on bool) error {
	s := c.s
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if c.pubGone {
		return nil
	}
	n, found := c.psubs[string(topic)]
	if !on {
		switch {
		case !found: // unknown prefix: nothing, as in libzmq
		case n > 1:
			c.psubs[string(topic)] = n - 1
		default:
			delete(c.psubs, string(topic))
			c.psubBytes -= len(topic)
			s.psubs.delete(topic, c)
		}
		return nil
	}
	if found {
		c.psubs[string(topic)] = n + 1
		return nil
	}
	if len(c.psubs) >= MaxSubscriptions {
		return errTooManySubs
	}
	if max := s.opts.MaxSubscriptionBytes; max > 0 && c.psubBytes+len(topic) > max {
		s.stats.subsRefused.Add(1)
		return nil
	}
	if c.psubs == nil {
		c.psubs = map[string]int{}
	}
	c.psubs[string(topic)] = 1
	c.psubBytes += len(topic)
	s.psubs.insert(topic, c)
	return nil
}

// unsubscribeAll takes a leaving peer out of the PUB's tree.
func (c *conn) unsubscribeAll() {
	s := c.s
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	c.pubGone = true
	for p := range c.psubs {
		s.psubs.delete([]byte(p), c)
	}
	c.psubs, c.psubBytes = nil, 0
}

var errTooManySubs = fmt.Errorf("%w: too many subscriptions", ErrProtocol)

// writeLoop is the connection's writer goroutine.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	defer func() {
		c.wmu.Lock()
		if c.direct {
			c.wgone = true // the direct sender owns the chunks in flight: it gives them back
		} else {
			c.dropLocked()
		}
		c.wmu.Unlock()
	}()
	var tick <-chan time.Time
	hb := c.s.opts.HeartbeatInterval
	if hb > 0 && c.minor >= 1 {
		t := time.NewTicker(hb)
		defer t.Stop()
		tick = t.C
	}
	var lastReads, lastWrites uint64
	for {
		select {
		case <-c.wake:
			if err := c.flush(); err != nil {
				c.shutdown(err)
				return
			}
		case <-tick:
			// PING when the interval passed with nothing received (to make the peer speak) or
			// nothing sent (so the peer knows we are alive).
			r, writes := c.reads.Load(), c.writes.Load()
			if r == lastReads || writes == lastWrites {
				c.sendPing()
			}
			lastReads, lastWrites = r, writes
		case <-c.done:
			return
		}
	}
}

// writer is the state of the connection's output in flight: the chunks being written and the
// vectored writer.
type writer struct {
	out [][]byte // chunks taken from the queue, being written
	vw  vecWriter
	// The rest of a direct write the socket did not take at once: out[0][skip:] is left, and
	// the write carried nmsgs messages of size bytes in all (for the stats).
	skip, nmsgs, size int
}

// flush writes everything pending, one syscall per batch, until the queue is empty (writer
// goroutine).
func (c *conn) flush() error {
	w := &c.w
	if len(w.out) > 0 { // handed over by a direct write
		if _, err := c.nc.Write(w.out[0][w.skip:]); err != nil {
			return err
		}
		c.wrote(w.nmsgs, w.size)
		w.skip, w.nmsgs, w.size = 0, 0, 0
	}
	for {
		c.wmu.Lock()
		w.out = c.wq.recycle(w.out) // the chunks of the last write, for the next messages
		if c.wq.n == 0 || c.wclosed {
			c.writing = false
			c.wmu.Unlock()
			return nil
		}
		size, n := c.takeLocked(w)
		if _, err := w.vw.write(c.nc, w.out); err != nil {
			return err
		}
		c.wrote(n, size)
	}
}

// sendPing queues a PING with our TTL and no context.
func (c *conn) sendPing() {
	var ttl [2]byte
	ds := c.s.opts.HeartbeatTTL / (100 * time.Millisecond)
	binary.BigEndian.PutUint16(ttl[:], uint16(min(ds, 0xFFFF)))
	c.sendCommand("PING", ttl[:])
}

// readLoop reads messages until the connection fails or closes, delivering them to the
// socket's receive queue in batches (one lock per batch, not per message). It returns why it
// stopped.
func (c *conn) readLoop() error {
	s := c.s
	const maxBatch = 64
	var batchArr, freeArr [maxBatch]*Msg
	batch := batchArr[:0]
	free := freeArr[:0] // messages taken from the socket's free list, used before the pool
	defer func() {
		if len(batch) > 0 {
			// Complete messages read before a protocol error: delivered, as libzmq does.
			_ = s.deliver(c, batch)
		}
		for _, m := range free {
			m.home = nil
			m.Release()
		}
	}()
	for {
		if len(batch) > 0 && (len(batch) == maxBatch || !c.fr.completeBuffered()) {
			err := s.deliver(c, batch) // consumes the batch, even on error
			batch = batch[:0]
			if err != nil {
				return err
			}
		}
		if len(free) == 0 {
			free = s.takeFree(free)
		}
		var m *Msg
		if n := len(free); n > 0 {
			m = free[n-1]
			free[n-1] = nil
			free = free[:n-1]
		} else {
			m = AcquireMsg()
			m.home = s
		}
		m.from = c
		if s.typ == Router {
			m.buf = append(m.buf, c.id...)
			m.endFrame()
		}
		kind, err := c.fr.readMsg(m)
		if err != nil {
			m.Release()
			return err
		}
		if kind == kindCommand {
			err := c.handleCommand(m.Frames[len(m.Frames)-1])
			m.Release()
			if err != nil {
				return err
			}
			continue
		}
		switch s.typ {
		case Pub:
			// A SUB or XSUB peer's data messages are ZMTP 3.0 (un)subscriptions: 1 or 0 then
			// the topic. Anything else is ignored, as libzmq's PUB does.
			f := m.Frames[0]
			if len(m.Frames) == 1 && len(f) > 0 && (f[0] == 0 || f[0] == 1) {
				if err := c.subscribe(f[1:], f[0] == 1); err != nil {
					m.Release()
					return err
				}
			}
			m.Release()
			continue
		case Sub:
			if !s.subMatch(m.Frames[0]) {
				m.Release()
				continue
			}
		}
		batch = append(batch, m)
	}
}

// handleCommand handles a command after the handshake: PING, PONG, SUBSCRIBE, CANCEL, ERROR.
func (c *conn) handleCommand(body []byte) error {
	name, data, err := splitCommand(body)
	if err != nil {
		return err
	}
	switch {
	case isCommand(name, "PING"):
		if len(data) < 2 || len(data)-2 > maxPingCtx {
			return errBadPing
		}
		if ttl := time.Duration(binary.BigEndian.Uint16(data)) * 100 * time.Millisecond; ttl > 0 {
			// Honour the peer's TTL: close if it stays silent for that long.
			if c.fr.timeout == 0 || ttl < c.fr.timeout {
				c.fr.timeout = ttl
				c.fr.dlSetAt = time.Time{}
			}
		}
		c.sendCommand("PONG", data[2:])
	case isCommand(name, "PONG"):
		// liveness only: any read already counts
	case isCommand(name, "SUBSCRIBE"), isCommand(name, "CANCEL"):
		if c.s.typ != Pub {
			return errUnexpectedCommand
		}
		return c.subscribe(data, isCommand(name, "SUBSCRIBE"))
	case isCommand(name, "ERROR"):
		return errPeerError
	default:
		return errUnexpectedCommand
	}
	return nil
}

var (
	errBadPing           = fmt.Errorf("%w: malformed PING", ErrProtocol)
	errUnexpectedCommand = fmt.Errorf("%w: unexpected command", ErrProtocol)
)

// isProtocolErr reports whether err ends a connection for a protocol violation.
func isProtocolErr(err error) bool {
	return errors.Is(err, ErrProtocol)
}

// isTimeoutErr reports a read deadline (heartbeat) expiry.
func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
