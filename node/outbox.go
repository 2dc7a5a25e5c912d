package node

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/zmtp"
)

// sender is the part of a zmtp DEALER the outbox uses; tests put a fake behind it.
type sender interface {
	Send(ctx context.Context, m *zmtp.Msg) error
	TrySend(m *zmtp.Msg) error
	Stats() zmtp.Stats
}

// outbox collects everything the node sends to the broker (results, running notices, credit)
// and sends it in as few messages as possible, one sender at a time. It also keeps the credit
// books and the connection state, because credit is only granted on a connection that said
// hello.
//
// Members are appended to cur, a JSON array under construction ('[' then members separated by
// ','). When cur reaches the broker's max_batch members, or would pass MaxMsgSize bytes, it is
// closed into frames and a new one starts. Whoever sends (sending set) takes frames, then cur,
// until nothing is left; others only append. A member count of one goes out as a bare object.
//
// Lock order: worker.mu, then taskQueue.mu, then outbox.mu; outbox.mu is never held while
// calling the socket.
type outbox struct {
	n    *Node
	sock sender

	mu       sync.Mutex
	cur      []byte   // the message being built
	curN     int      // members in cur
	frames   [][]byte // closed messages waiting to be sent
	grants   []int    // the credit each of frames grants (broker.credit members in it)
	curGrant int      // the credit cur grants
	free     [][]byte // spare buffers for cur
	started  []*task  // running tasks whose running notice has not been sent
	maxBatch int      // members per message (broker's max_batch)
	maxBytes int      // bytes per message (MaxMsgSize)

	// Credit books. held + outstanding never exceeds the node's capacity.
	held        int // tasks received and not finished (queued and running)
	maxHeld     int // the most tasks ever held at once (a high-water mark of held)
	outstanding int // credit granted on this connection (sent or queued) and not yet used by a task

	connected  bool // the DEALER has a connection
	helloDue   bool // the connection has not had its hello yet
	ready      bool // hello sent on this connection: results and credit may go
	sending    bool // a sender is at work
	stopping   bool // the node stops: no more credit
	abandon    bool // the grace period ended: results are no longer reported
	final      bool // the node is done: send the bye once everything else is out
	byeSent    bool
	timerArmed bool
	runningDue bool // the running delay passed: the next pack reports running tasks
	helloSeq   int

	sess       context.Context // the current connection's lifetime; cancelled when it drops
	endSess    context.CancelFunc
	sessBase   uint64 // socket MsgsOut when this connection said hello
	sessSent   uint64 // messages handed to the socket on this connection
	byeWritten chan struct{}

	kick  chan struct{} // wakes loop (capacity 1)
	timer *time.Timer   // the running delay and the backstop for results left behind

	msg zmtp.Msg // the message handed to the socket (sending held)
}

// maxFreeBufs bounds the spare message buffers kept; maxKeptBuf bounds the size of one.
const (
	maxFreeBufs = 8
	maxKeptBuf  = 256 << 10
)

func (o *outbox) init(n *Node) {
	o.n = n
	o.maxBatch = DefaultMaxBatch
	o.maxBytes = int(n.cfg.MaxMsgSize)
	o.kick = make(chan struct{}, 1)
	o.timer = time.NewTimer(time.Hour)
	o.timer.Stop()
	o.sess, o.endSess = context.WithCancel(context.Background())
	o.endSess()
	o.byeWritten = make(chan struct{})
	o.started = make([]*task, 0, n.cfg.Concurrency)
}

// wake makes loop run (never blocks).
func (o *outbox) wake() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// armLocked starts the running-delay timer unless it runs already (o.mu held).
func (o *outbox) armLocked() {
	if !o.timerArmed {
		o.timerArmed = true
		o.timer.Reset(runningDelay)
	}
}

// getBuf returns an empty buffer for a new message (o.mu held).
func (o *outbox) getBuf() []byte {
	if k := len(o.free); k > 0 {
		b := o.free[k-1]
		o.free[k-1] = nil
		o.free = o.free[:k-1]
		return b
	}
	return make([]byte, 0, 4096)
}

// putBuf keeps b for a later message (o.mu held).
func (o *outbox) putBuf(b []byte) {
	if cap(b) <= maxKeptBuf && len(o.free) < maxFreeBufs {
		o.free = append(o.free, b[:0])
	}
}

// beginMember starts a member of cur and returns its offset (o.mu held).
func (o *outbox) beginMember() int {
	if o.cur == nil {
		o.cur = o.getBuf()
	}
	if o.curN == 0 {
		o.cur = append(o.cur[:0], '[')
	} else {
		o.cur = append(o.cur, ',')
	}
	return len(o.cur)
}

// endMember counts the member that started at start and closes cur when it is full (o.mu
// held). A member that pushed cur past maxBytes moves to a message of its own; members are
// never larger than maxBytes-2 (see result), so that one always fits.
func (o *outbox) endMember(start int) { o.endMemberGrant(start, 0) }

// endMemberGrant is endMember for a member that grants credit: the grant is booked with the
// message the member ends up in, so that a new connection knows what its queued messages
// grant (see hello).
func (o *outbox) endMemberGrant(start, grant int) {
	o.curN++
	if o.curN > 1 && len(o.cur)+1 > o.maxBytes {
		member := o.cur[start:]
		prev := o.cur[:start-1] // without the ',' before the member
		next := append(o.getBuf(), '[')
		next = append(next, member...)
		o.cur, o.curN = prev, o.curN-1
		o.closeCur()
		o.cur, o.curN = next, 1
	}
	o.curGrant += grant
	if o.curN >= o.maxBatch {
		o.closeCur()
	}
}

// closeCur moves cur to frames (o.mu held): a lone member as a bare object, several as an array.
func (o *outbox) closeCur() {
	if o.curN == 0 {
		return
	}
	if o.curN == 1 {
		n := copy(o.cur, o.cur[1:])
		o.cur = o.cur[:n]
	} else {
		o.cur = append(o.cur, ']')
	}
	o.frames = append(o.frames, o.cur)
	o.grants = append(o.grants, o.curGrant)
	o.cur, o.curN, o.curGrant = nil, 0, 0
}

// queuedGrantLocked returns the credit granted by messages not yet handed to the socket
// (o.mu held).
func (o *outbox) queuedGrantLocked() int {
	g := o.curGrant
	for _, x := range o.grants {
		g += x
	}
	return g
}

// accept books k tasks that just arrived and returns how many fit in the node's capacity; the
// rest arrived without credit and are refused.
func (o *outbox) accept(k int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	ok := 0
	for range k {
		switch {
		case o.outstanding > 0:
			o.outstanding--
		case o.held+o.outstanding >= o.n.capacity:
			continue // no room: refused
		}
		// A task without credit but with room is taken: the broker may have sent it just
		// before this connection's hello reset the books.
		o.held++
		ok++
	}
	if o.held > o.maxHeld {
		o.maxHeld = o.held
	}
	return ok
}

// release forgets k held tasks that will never run (dropped at stop: the bye hands them back).
func (o *outbox) release(k int) {
	o.mu.Lock()
	o.held -= k
	o.mu.Unlock()
}

// refuse answers a task that arrived without credit.
func (o *outbox) refuse(id []byte) {
	o.mu.Lock()
	start := o.beginMember()
	o.cur = codec.AppendError(o.cur, id, errNoCredit)
	o.endMember(start)
	o.armLocked()
	o.mu.Unlock()
}

// Its data marks it as the node's refusal (a handler may use the code -32010 for errors of its
// own): the broker then puts the task back, since it did not run.
var errNoCredit = codec.NewError(CodeNoCredit, "node: task sent without credit while the node is full", []byte(`{"no_credit":true}`))

// errTooLarge replaces a result that cannot fit in one message.
var errTooLarge = codec.NewError(codec.CodeInternalError, "node: result larger than the message size limit", nil)

// start records a task that begins running, for the running notice sent if it is still running
// after runningDelay.
func (o *outbox) start(t *task) {
	o.mu.Lock()
	t.startIdx = len(o.started)
	o.started = append(o.started, t)
	o.armLocked()
	o.mu.Unlock()
}

// result appends the response of a finished task and sends it now when the workers have
// nothing more ready, when a message is full, or when enough credit is owed; otherwise a later
// result (or the timer) carries it. A retryable failure carries the ZeroTask extension members
// "retry":true and, when the handler chose the delay, "retry_after_ms".
func (o *outbox) result(t *task, res []byte, err error, retry bool, after time.Duration) {
	o.mu.Lock()
	if i := t.startIdx; i >= 0 {
		// Still unreported: it finishes before its running notice, which is no longer needed.
		last := len(o.started) - 1
		o.started[i] = o.started[last]
		o.started[i].startIdx = i
		o.started[last] = nil
		o.started = o.started[:last]
		t.startIdx = -1
	}
	o.held--
	if o.abandon {
		o.mu.Unlock()
		return
	}
	start := o.beginMember()
	if err != nil {
		o.cur = codec.AppendError(o.cur, t.id, codec.AsError(err))
		if retry {
			o.cur = append(o.cur[:len(o.cur)-1], `,"retry":true`...)
			if ms := after.Milliseconds(); ms > 0 {
				o.cur = append(o.cur, `,"retry_after_ms":`...)
				o.cur = strconv.AppendInt(o.cur, ms, 10)
			}
			o.cur = append(o.cur, '}')
		}
	} else {
		o.cur = codec.AppendResult(o.cur, t.id, res)
	}
	if len(o.cur)-start > o.maxBytes-2 {
		o.cur = codec.AppendError(o.cur[:start], t.id, errTooLarge)
	}
	o.endMember(start)
	now := len(o.frames) > 0 || o.grantLocked() >= o.creditThreshold()
	o.mu.Unlock()
	if now || o.n.q.empty() {
		o.flush(false)
		return
	}
	o.mu.Lock()
	o.armLocked()
	o.mu.Unlock()
}

// creditThreshold is how much credit owed makes a sender send at once rather than wait for
// more results: half the capacity, so the broker always has work on its way.
func (o *outbox) creditThreshold() int { return max(1, o.n.capacity/2) }

// grantLocked returns the credit that may be granted now (o.mu held).
func (o *outbox) grantLocked() int {
	if !o.ready || o.stopping {
		return 0
	}
	return o.n.capacity - o.held - o.outstanding
}

// packLocked appends the running notices that are due and the credit that can be granted
// (o.mu held).
func (o *outbox) packLocked() {
	if o.runningDue {
		o.runningDue = false
		o.packRunning()
	}
	if g := o.grantLocked(); g > 0 {
		start := o.beginMember()
		o.cur = append(o.cur, `{"jsonrpc":"2.0","method":"broker.credit","params":[`...)
		o.cur = strconv.AppendInt(o.cur, int64(g), 10)
		o.cur = append(o.cur, "]}"...)
		o.endMemberGrant(start, g)
		o.outstanding += g
	}
}

// packRunning appends broker.running notices for the tasks in started, several ids per
// notice, each notice well under the message size limit (o.mu held).
func (o *outbox) packRunning() {
	const head = `{"jsonrpc":"2.0","method":"broker.running","params":[`
	limit := max(o.maxBytes/2, 128)
	start, ids := -1, 0
	for i, t := range o.started {
		if start >= 0 && len(o.cur)-start+len(t.id) > limit {
			o.cur = append(o.cur, "]}"...)
			o.endMember(start)
			start = -1
		}
		if start < 0 {
			start = o.beginMember()
			o.cur = append(o.cur, head...)
			ids = 0
		}
		if ids > 0 {
			o.cur = append(o.cur, ',')
		}
		o.cur = append(o.cur, t.id...)
		ids++
		t.startIdx = -1
		o.started[i] = nil
	}
	if start >= 0 {
		o.cur = append(o.cur, "]}"...)
		o.endMember(start)
	}
	o.started = o.started[:0]
}

// flush sends everything collected, one message after the other, unless another sender is at
// work (it will send what was appended meanwhile) or the connection has not said hello. With
// blocking false (a worker) it only uses TrySend and hands over to loop when the socket cannot
// take a message at once; with blocking true (loop) it waits for the socket, until the
// connection drops.
func (o *outbox) flush(blocking bool) {
	o.mu.Lock()
	if o.sending || !o.ready {
		o.mu.Unlock()
		return
	}
	o.sending = true
	sess := o.sess
	for o.ready && o.sess == sess { // stop if the connection changed under us: hello goes first
		var frame []byte
		var grant int
		if k := len(o.frames); k > 0 {
			frame, grant = o.frames[0], o.grants[0]
			copy(o.frames, o.frames[1:])
			copy(o.grants, o.grants[1:])
			o.frames[k-1] = nil
			o.frames, o.grants = o.frames[:k-1], o.grants[:k-1]
		} else {
			o.packLocked()
			if o.curN == 0 {
				break
			}
			o.closeCur()
			continue
		}
		o.mu.Unlock()
		o.msg.Frames = append(o.msg.Frames[:0], frame)
		var err error
		if blocking {
			err = o.sock.Send(sess, &o.msg)
		} else {
			err = o.sock.TrySend(&o.msg)
		}
		o.msg.Frames[0] = nil
		o.mu.Lock()
		if err != nil {
			if errors.Is(err, zmtp.ErrMsgTooLarge) || errors.Is(err, zmtp.ErrEmptyMsg) {
				// Cannot happen with the size checks above; never retry it forever.
				o.n.log.Error("node: dropping a message the socket refused", "err", err, "bytes", len(frame))
				continue
			}
			// Keep it for later: loop retries, on this connection or after the next hello.
			o.frames = append(o.frames, frame)
			o.grants = append(o.grants, grant)
			o.sending = false
			o.mu.Unlock()
			if !blocking {
				o.wake()
			}
			return
		}
		if o.sess == sess {
			o.sessSent++
		}
		o.putBuf(frame)
	}
	o.sending = false
	o.mu.Unlock()
}

// onConnect notes a new connection: it needs a hello before anything else.
func (o *outbox) onConnect() {
	o.mu.Lock()
	o.endSess()
	o.sess, o.endSess = context.WithCancel(context.Background())
	o.connected, o.helloDue, o.ready = true, true, false
	o.mu.Unlock()
	o.wake()
}

// onDisconnect notes a lost connection: nothing goes out until the next hello, and a sender
// waiting on the socket gives up.
func (o *outbox) onDisconnect() {
	o.mu.Lock()
	o.connected, o.helloDue, o.ready = false, false, false
	o.endSess()
	o.mu.Unlock()
}

// stop grants no more credit.
func (o *outbox) stop() {
	o.mu.Lock()
	o.stopping = true
	o.mu.Unlock()
}

// abandonResults drops the results of handlers still running when the grace period ends: the
// bye hands their tasks back to the broker.
func (o *outbox) abandonResults() {
	o.mu.Lock()
	o.abandon = true
	o.mu.Unlock()
}

// loop is the background sender: it says hello on each new connection, sends what workers
// could not send at once, and reports running tasks after runningDelay.
func (o *outbox) loop(life context.Context) {
	for {
		select {
		case <-life.Done():
			o.timer.Stop()
			return
		case <-o.kick:
		case <-o.timer.C:
			o.mu.Lock()
			o.timerArmed = false
			o.runningDue = len(o.started) > 0
			o.mu.Unlock()
		}
		o.hello()
		o.flush(true)
		o.bye(life)
	}
}

// hello says hello on a new connection and opens it for results and credit.
func (o *outbox) hello() {
	o.mu.Lock()
	if !o.helloDue || !o.connected {
		o.mu.Unlock()
		return
	}
	o.helloDue = false
	o.helloSeq++
	seq := o.helloSeq
	sess := o.sess
	o.mu.Unlock()

	frame := o.n.helloFrame(seq)
	base := o.sock.Stats().MsgsOut
	var m zmtp.Msg
	m.Frames = [][]byte{frame}
	if err := o.sock.Send(sess, &m); err != nil {
		if sess.Err() == nil {
			o.n.log.Warn("node: hello not sent", "err", err)
		}
		return
	}
	o.n.hellos.Add(1)
	o.mu.Lock()
	if o.sess == sess && o.connected {
		o.ready = true
		// A hello resets the broker's books for this connection: the broker starts with no
		// credit, and will get what the messages still queued here grant (packed on the
		// connection before), then what packLocked grants now on top of it.
		o.outstanding = o.queuedGrantLocked()
		o.sessBase, o.sessSent = base, 1
	}
	o.mu.Unlock()
}

// finish asks loop to send what is left and the bye, and waits until the bye is written to
// the connection, the connection drops, or ctx ends. It reports whether the bye left. Without
// a connection there is nothing to wait for: a broker that lost this node's connection has
// already put back the tasks the node held, so their results would be ignored anyway.
func (o *outbox) finish(ctx context.Context) bool {
	o.mu.Lock()
	o.final = true
	connected, sess := o.connected, o.sess
	o.mu.Unlock()
	if !connected {
		return false
	}
	o.wake()
	select {
	case <-o.byeWritten:
		return true
	case <-sess.Done():
		return false
	case <-ctx.Done():
		return false
	}
}

// bye sends broker.bye once the node is done and everything else is out, then waits until the
// socket has written every message of this connection (zmtp does not linger on Close), and
// signals finish.
func (o *outbox) bye(life context.Context) {
	o.mu.Lock()
	if !o.final || o.byeSent || !o.ready || o.sending || len(o.frames) > 0 || o.curN > 0 {
		o.mu.Unlock()
		return
	}
	sess := o.sess
	o.mu.Unlock()
	var m zmtp.Msg
	m.Frames = [][]byte{[]byte(`{"jsonrpc":"2.0","method":"broker.bye"}`)}
	if err := o.sock.Send(sess, &m); err != nil {
		return // the connection dropped: the next hello brings us back here
	}
	o.mu.Lock()
	o.byeSent = true
	o.sessSent++
	want := o.sessBase + o.sessSent
	o.mu.Unlock()
	// The socket's writer runs on its own goroutine: wait (briefly, bounded by the session
	// and by finish's deadline through life) until it has written our messages.
	wait := 100 * time.Microsecond
	for o.sock.Stats().MsgsOut < want {
		t := time.NewTimer(wait)
		select {
		case <-life.Done():
			t.Stop()
			return
		case <-sess.Done():
			// Lost with the connection: say it again after the next hello.
			t.Stop()
			o.mu.Lock()
			o.byeSent = false
			o.mu.Unlock()
			return
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
	close(o.byeWritten)
}
