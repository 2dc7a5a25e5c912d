package client

import (
	"context"
	"strconv"
	"sync"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/batch"
	"github.com/zerotask/zerotask/protocol"
)

// outbox holds the pending calls and the requests on their way out.
//
// Requests are appended to out (internal/batch), a JSON array under construction that is
// closed into frames when it reaches MaxBatch members or would pass MaxBytes; each frame spans
// the call ids in it. One sender at a time (internal/batch's Sender, the loop the node uses
// too) takes frames, then the open batch, until nothing is left: the caller that finds nobody sending sends its own request at once with
// TrySend, and requests appended meanwhile leave together in the sender's next message. When
// the socket cannot take a message at once the background loop takes over with a blocking
// Send.
//
// Connections: the DEALER may hold several connections (one per endpoint given to Dial) and
// sends each message round robin over those that are up. live counts them (EventConnected minus
// EventDisconnected, from the monitor); the outbox sends while at least one is up. Every new
// connection gets a broker.hello, sent ahead of anything queued; round robin may carry it to
// another broker than the new one (see sayHello).
//
// Connection loss: sentUpTo is the highest call id handed to the socket (ids grow in the order
// requests are appended, and frames leave in that order, so every call up to it is out). When
// a connection drops, every pending call up to sentUpTo fails with ErrConnectionLost: the
// DEALER does not say which connection a message took, so with several connections the calls
// out on the ones still up fail too (their late replies are dropped). Later calls, and calls
// still queued, wait for (or go out on) the connections that are up. Hellos carry no call
// range (see sayHello); helloSentUpTo plays the same part for them.
//
// Lock order: outbox.mu is a leaf: never held while calling the socket or completing a call.
type outbox struct {
	c    *Client
	sock batch.Socket

	mu      sync.Mutex
	pending pendingCalls
	nextID  uint64
	out     batch.Builder[span] // requests on their way out (cur and closed frames)

	connected     bool            // live > 0
	live          int             // connections up
	sess          context.Context // ends at a disconnect, for loop's blocking sends
	endSess       context.CancelFunc
	helloDue      int // hellos to say (one per new connection, at most one per live one)
	sentUpTo      uint64
	helloSentUpTo uint64 // the highest hello id handed to the socket
	prevSent      uint64 // sentUpTo before the frame being sent (Taking, Unsent)
	prevHello     uint64 // helloSentUpTo before it
	lostUpTo      uint64 // sentUpTo at the last disconnect
	lostHelloUp   uint64 // helloSentUpTo at the last disconnect
	failDue       bool   // a disconnect whose calls loop has not failed yet
	closed        bool

	kick chan struct{}      // wakes loop (capacity 1)
	snd  batch.Sender[span] // the send loop, shared with the node
}

// span is what a message records: the range of call ids in it (0: none), or the id of the
// hello it is.
type span struct {
	first, last uint64
	hello       uint64
}

// Add records one more request (its call id in first and last, 0 for a notification).
func (s span) Add(m span) span {
	if s.first == 0 {
		s.first = m.first
	}
	if m.last != 0 {
		s.last = m.last
	}
	return s
}

// outFrame is a closed message and its span.
type outFrame = batch.Frame[span]

func (o *outbox) init(c *Client) {
	o.c = c
	o.out.MaxBatch = c.opts.maxBatch
	o.out.MaxBytes = int(c.opts.maxMsgSize)
	o.kick = make(chan struct{}, 1)
	o.snd = batch.Sender[span]{Mu: &o.mu, Out: &o.out, Wake: o.wake}
	o.sess, o.endSess = context.WithCancel(c.life)
	o.endSess()
}

func (o *outbox) wake() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// setMaxBatch lowers maxBatch to a broker's max_batch: with several brokers (or a broker
// restarted with another setting) the smallest announced wins.
func (o *outbox) setMaxBatch(n int) {
	o.mu.Lock()
	o.out.MaxBatch = max(1, min(o.out.MaxBatch, n))
	o.mu.Unlock()
}

// setMaxBytes lowers the message size bound to a broker's max_msg_size: a request past it
// fails locally with ErrTooLarge instead of closing the connection. The smallest announced
// wins.
func (o *outbox) setMaxBytes(n int64) {
	o.mu.Lock()
	o.out.MaxBytes = int(min(int64(o.out.MaxBytes), n))
	o.mu.Unlock()
}

// enqueue registers cl (nil for a notification) under a new id and appends its request, with
// ext (extension members, each preceded by a comma, or nil) added to the object. With send set,
// it then sends unless someone else is sending (who will take it along).
func (o *outbox) enqueue(cl *call, method string, params, ext []byte, send bool) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	var id uint64
	var idb [20]byte
	var idRaw []byte
	if cl != nil {
		o.nextID++
		id = o.nextID
		cl.id = id
		idRaw = strconv.AppendUint(idb[:0], id, 10)
	}
	b := &o.out
	start := b.Begin()
	b.Cur = codec.AppendRequest(b.Cur, idRaw, method, params)
	if len(ext) > 0 {
		b.Cur = append(append(b.Cur[:len(b.Cur)-1], ext...), '}')
	}
	if len(b.Cur)-start > b.MaxBytes-2 {
		b.Cancel(start)
		o.mu.Unlock()
		return ErrTooLarge
	}
	if cl != nil {
		o.pending.put(cl)
	}
	b.End(start, span{first: id, last: id})
	o.mu.Unlock()
	if send {
		o.flush(false)
	}
	return nil
}

// flush sends everything queued unless another sender is at work or there is no connection.
// With blocking false it only uses TrySend and hands over to loop when the socket cannot take a
// message at once. The loop is internal/batch's Sender, shared with the node; the methods below
// are the client's part of it (o.mu held).
func (o *outbox) flush(blocking bool) { o.snd.Flush(o, o.sock, blocking) }

// Session: sending needs a connection and an open client.
func (o *outbox) Session() (context.Context, bool) { return o.sess, o.connected && !o.closed }

// Yield: when other calls are in flight, other callers are likely runnable right now (woken by
// the replies that just came in): let them run first and append their requests, which then
// leave with this one. A lone call (nothing else pending) is sent at once.
func (o *outbox) Yield(blocking bool) bool {
	return !blocking && o.pending.len() > 1 && o.out.Members() < o.out.MaxBatch/2
}

// More: sending goes on while a connection is up.
func (o *outbox) More(context.Context) bool { return o.connected && !o.closed }

// Taking counts the frame's calls and hello as sent, remembering the books before it.
func (o *outbox) Taking(f outFrame) {
	o.prevSent, o.prevHello = o.sentUpTo, o.helloSentUpTo
	o.sentUpTo = max(o.sentUpTo, f.Meta.last)
	o.helloSentUpTo = max(o.helloSentUpTo, f.Meta.hello)
}

// Sent: the books were kept in Taking.
func (o *outbox) Sent(context.Context, outFrame) {}

// Unsent takes the frame out of the books again, and keeps it first in line unless its calls
// already failed with the connection (sending it would only run them unseen).
func (o *outbox) Unsent(f outFrame) bool {
	prev, prevHello := o.prevSent, o.prevHello
	o.sentUpTo, o.helloSentUpTo = prev, prevHello
	if o.failDue {
		// A connection dropped during this send and loop has not failed its calls yet: this
		// frame was not sent, so its calls are not among them.
		o.lostUpTo = min(o.lostUpTo, prev)
		o.lostHelloUp = min(o.lostHelloUp, prevHello)
	}
	return (f.Meta.last == 0 || o.lostUpTo < f.Meta.last) && (f.Meta.hello == 0 || o.lostHelloUp < f.Meta.hello)
}

// Dropped logs a message the socket refused for good.
func (o *outbox) Dropped(f outFrame, err error) {
	o.c.log.Error("client: dropping a message the socket refused", "err", err, "bytes", len(f.B))
}

// take removes and returns the pending call with this id, or nil.
func (o *outbox) take(id uint64) *call {
	o.mu.Lock()
	cl := o.pending.take(id)
	o.mu.Unlock()
	return cl
}

// abandon removes cl from the pending calls; false means its reply is being delivered.
func (o *outbox) abandon(cl *call) bool {
	o.mu.Lock()
	ok := o.pending.take(cl.id) != nil
	o.mu.Unlock()
	return ok
}

// onConnect notes a new connection, which gets a hello (from the monitor, possibly on several
// goroutines at once for several connections: no socket calls here).
func (o *outbox) onConnect() {
	o.mu.Lock()
	o.live++
	if !o.connected {
		o.sess, o.endSess = context.WithCancel(o.c.life)
		o.connected = true
	}
	o.helloDue++
	o.mu.Unlock()
	o.wake()
}

// onDisconnect notes a lost connection: the calls out so far fail (in loop), whether they took
// this connection or another (the DEALER does not say which).
func (o *outbox) onDisconnect() {
	o.mu.Lock()
	o.live = max(0, o.live-1)
	o.endSess() // a blocked loop send gives up, so that loop can fail the lost calls
	o.connected = o.live > 0
	if o.connected && !o.closed {
		o.sess, o.endSess = context.WithCancel(o.c.life)
	}
	o.helloDue = min(o.helloDue, o.live) // with none up, the next connection brings its own
	o.lostUpTo, o.lostHelloUp = o.sentUpTo, o.helloSentUpTo
	o.failDue = true
	o.mu.Unlock()
	o.wake()
}

// close marks the outbox closed and fails every pending call with ErrClosed. It reports false
// when it was closed already.
func (o *outbox) close() bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.closed = true
	calls := o.pending.removeIf(make([]*call, 0, o.pending.len()), func(*call) bool { return true })
	o.mu.Unlock()
	for _, cl := range calls {
		cl.err = ErrClosed
		cl.complete()
	}
	return true
}

// loop is the background sender: it fails the calls of a lost connection, says hello on a new
// one, and sends what callers could not send at once.
func (o *outbox) loop(life context.Context) {
	onKick(life, o.kick, func() {
		o.failLost()
		o.sayHello()
		o.flush(true)
	})
}

// onKick runs f after each kick until life ends.
func onKick(life context.Context, kick <-chan struct{}, f func()) {
	for {
		select {
		case <-life.Done():
			return
		case <-kick:
		}
		f()
	}
}

// failLost fails the calls that were out when a connection dropped. A hello lost with them is
// said again while a connection is up: it may have been the only one for a broker still there.
func (o *outbox) failLost() {
	o.mu.Lock()
	if !o.failDue {
		o.mu.Unlock()
		return
	}
	o.failDue = false
	hellos := 0
	lost := o.pending.removeIf(nil, func(cl *call) bool {
		if (cl.hello && cl.id <= o.lostHelloUp) || (!cl.hello && cl.id <= o.lostUpTo) {
			if cl.hello {
				hellos++
			}
			return true
		}
		return false
	})
	if hellos > 0 && o.connected && !o.closed {
		o.helloDue = min(o.helloDue+hellos, o.live)
	}
	o.mu.Unlock()
	for _, cl := range lost {
		cl.err = ErrConnectionLost
		cl.complete()
	}
	if len(lost) > 0 {
		o.c.log.Warn("client: calls failed with the connection", "calls", len(lost))
	}
}

// sayHello queues the hellos due, one per new connection, first in line ahead of anything
// queued, each a message of its own.
//
// The DEALER sends round robin: a hello is meant for the new connection but may leave on
// another one, so one broker may get two hellos and another none. That is harmless: a hello
// sets unordered replies and tells max_batch, a broker answers a client that said none one
// reply per message (a batch in one reply once all its members are done, which the reader
// takes as well), the smallest max_batch announced wins, and any hello reply completes Dial.
func (o *outbox) sayHello() {
	o.mu.Lock()
	for o.helloDue > 0 && o.connected && !o.closed {
		o.helloDue--
		cl := newCall(nil)
		cl.cb = o.c.helloDone
		cl.hello = true
		o.nextID++
		cl.id = o.nextID
		o.pending.put(cl)
		var idb [20]byte
		frame := protocol.AppendClientHello(nil, strconv.AppendUint(idb[:0], cl.id, 10), o.c.opts.maxMsgSize)
		// First in line; its id is left out of the frame's call range so that the calls queued
		// before it are not taken as sent (helloSentUpTo tracks hellos instead).
		o.out.PushFront(outFrame{B: frame, Meta: span{hello: cl.id}})
	}
	o.mu.Unlock()
}
