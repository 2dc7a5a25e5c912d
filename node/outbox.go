package node

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/batch"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// sender is the part of a zmtp DEALER the outbox uses; tests put a fake behind it.
type sender interface {
	batch.Socket
	Stats() zmtp.Stats
}

// outbox collects everything the node sends to the broker (results, running notices, credit)
// and sends it in as few messages as possible, one sender at a time. It also keeps the credit
// books and the connection state, because credit is only granted on a connection that said
// hello.
//
// Members are appended to out (internal/batch), a JSON array under construction that is closed
// into frames when it reaches the broker's max_batch members or would pass MaxMsgSize bytes;
// each frame records the credit it grants. One sender at a time (internal/batch's Sender, the
// loop the client uses too) takes frames, then the open batch, until nothing is left; others
// only append. A lone member goes out as a bare object.
//
// Lock order: worker.mu, then taskQueue.mu, then outbox.mu; outbox.mu is never held while
// calling the socket.
type outbox struct {
	n    *Node
	sock sender

	mu      sync.Mutex
	out     batch.Builder[grant] // what is on its way out: MaxBatch is the broker's max_batch
	started []*task              // running tasks whose running notice has not been sent

	// Credit books. held + outstanding never exceeds the node's capacity, and new credit is
	// granted only up to the window (credit.go), which never exceeds the capacity.
	win         window
	held        int // tasks received and not finished (queued and running)
	maxHeld     int // the most tasks ever held at once (a high-water mark of held)
	outstanding int // credit granted on this connection (sent or queued) and not yet used by a task

	connected  bool // the DEALER has a connection
	helloDue   bool // the connection has not had its hello yet
	ready      bool // hello sent on this connection: results and credit may go
	stopping   bool // the node stops: no more credit
	abandon    bool // the grace period ended: results are no longer reported
	final      bool // the node is done: send the bye once everything else is out
	byeSent    bool
	timerArmed bool
	runningDue bool // the running delay passed: the next pack reports running tasks
	helloSeq   int
	run        string // the broker run of the last hello reply ("broker"): hand-out ids begin with it
	purges     int    // times queued messages were dropped for a new broker run
	taken      int    // purges when the sender took the frame it is sending

	sess       context.Context // the current connection's lifetime; cancelled when it drops
	endSess    context.CancelFunc
	sessBase   uint64 // socket MsgsOut when this connection said hello
	sessSent   uint64 // messages handed to the socket on this connection
	byeWritten chan struct{}

	kick  chan struct{} // wakes loop (capacity 1)
	timer *time.Timer   // the running delay and the backstop for results left behind

	snd batch.Sender[grant] // the send loop, shared with the client

	prog progressBook // tasks with a progress report to send (taskprogress.go; mu held)
}

// grant is what a message records: the credit it grants (its broker.credit members), so that a
// new connection knows what its queued messages grant (see hello).
type grant int

// Add sums the credit of one more member.
func (g grant) Add(m grant) grant { return g + m }

func (o *outbox) init(n *Node) {
	o.n = n
	o.out.MaxBatch = DefaultMaxBatch
	o.out.MaxBytes = int(n.cfg.MaxMsgSize)
	o.kick = make(chan struct{}, 1)
	o.snd = batch.Sender[grant]{Mu: &o.mu, Out: &o.out, Wake: o.wake}
	o.timer = time.NewTimer(time.Hour)
	o.timer.Stop()
	o.sess, o.endSess = context.WithCancel(context.Background())
	o.endSess()
	o.byeWritten = make(chan struct{})
	o.started = make([]*task, 0, n.cfg.Concurrency)
	o.win.init(n.cfg.Concurrency, n.cfg.Prefetch, n.cfg.FixedCredit)
	o.prog.init(n.cfg.HeartbeatInterval)
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

// queuedGrantLocked returns the credit granted by messages not yet handed to the socket
// (o.mu held).
func (o *outbox) queuedGrantLocked() int {
	g := o.out.Meta()
	for _, f := range o.out.Queued() {
		g += f.Meta
	}
	return int(g)
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
	b := &o.out
	start := b.Begin()
	b.Cur = codec.AppendError(b.Cur, id, errNoCredit)
	b.End(start, 0)
	o.armLocked()
	o.mu.Unlock()
}

// errNoCredit's data marks it as the node's refusal (a handler may use CodeNoCredit for errors
// of its own): the broker then puts the task back, since it did not run.
var errNoCredit = protocol.ErrNoCredit

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
// "retry":true and, when the handler chose the delay, "retry_after_ms". served is how long the
// task kept its worker, for the credit window (0: not timed).
func (o *outbox) result(t *task, res []byte, err error, retry bool, after, served time.Duration) {
	o.mu.Lock()
	if served > 0 {
		o.win.served(served)
	}
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
	if o.abandon || o.otherRunLocked(t.id) {
		// Abandoned, or a task of a broker run that is gone (the broker restarted and forgot
		// it): an answer goes only to the run that handed the task out.
		o.mu.Unlock()
		return
	}
	b := &o.out
	start := b.Begin()
	if err != nil {
		b.Cur = codec.AppendError(b.Cur, t.id, codec.AsError(err))
		if retry {
			b.Cur = protocol.AppendRetry(b.Cur, after.Milliseconds())
		}
	} else {
		b.Cur = codec.AppendResult(b.Cur, t.id, res)
	}
	if len(b.Cur)-start > b.MaxBytes-2 {
		b.Cur = codec.AppendError(b.Cur[:start], t.id, errTooLarge)
	}
	b.End(start, 0)
	now := len(b.Queued()) > 0 || o.grantLocked() >= o.creditThreshold()
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
// more results: half the window, so the broker always has work on its way (o.mu held).
func (o *outbox) creditThreshold() int { return max(1, o.win.size/2) }

// grantLocked returns the credit that may be granted now (o.mu held).
func (o *outbox) grantLocked() int {
	if !o.ready || o.stopping {
		return 0
	}
	return o.win.size - o.held - o.outstanding
}

// packLocked appends the running notices that are due and the credit that can be granted
// (o.mu held).
func (o *outbox) packLocked() {
	if o.runningDue {
		o.runningDue = false
		o.packRunning()
	}
	if g := o.grantLocked(); g > 0 {
		b := &o.out
		start := b.Begin()
		var idb [32]byte
		id := []byte(nil)
		if seq, ok := o.win.probeDue(time.Now()); ok {
			// Sent as a request, the grant measures the round trip (window.answered).
			id = append(idb[:0], `"`+probePrefix...)
			id = strconv.AppendUint(id, seq, 10)
			id = append(id, '"')
		}
		b.Cur = protocol.AppendCredit(b.Cur, id, g)
		b.End(start, grant(g))
		o.outstanding += g
	}
}

// packRunning appends broker.running notices for the tasks in started, several ids per
// notice, each notice well under the message size limit (o.mu held).
func (o *outbox) packRunning() {
	b := &o.out
	limit := max(b.MaxBytes/2, 128)
	start, ids := -1, 0
	for i, t := range o.started {
		if start >= 0 && len(b.Cur)-start+len(t.id) > limit {
			b.Cur = protocol.AppendRunningClose(b.Cur)
			b.End(start, 0)
			start = -1
		}
		if start < 0 {
			start = b.Begin()
			b.Cur = protocol.AppendRunningOpen(b.Cur)
			ids = 0
		}
		if ids > 0 {
			b.Cur = append(b.Cur, ',')
		}
		b.Cur = append(b.Cur, t.id...)
		ids++
		t.startIdx = -1
		o.started[i] = nil
	}
	if start >= 0 {
		b.Cur = protocol.AppendRunningClose(b.Cur)
		b.End(start, 0)
	}
	o.started = o.started[:0]
}

// flush sends everything collected, one message after the other, unless another sender is at
// work (it will send what was appended meanwhile) or the connection has not said hello. With
// blocking false (a worker) it only uses TrySend and hands over to loop when the socket cannot
// take a message at once; with blocking true (loop) it waits for the socket, until the
// connection drops. The loop is internal/batch's Sender, shared with the client; the methods
// below are the node's part of it (o.mu held).
func (o *outbox) flush(blocking bool) { o.snd.Flush(o, o.sock, blocking) }

// Session: sending needs a connection that said hello.
func (o *outbox) Session() (context.Context, bool) { return o.sess, o.ready }

// Yield: a node's workers append results as they finish; nothing to wait for.
func (o *outbox) Yield(bool) bool { return false }

// More stops when the connection changed under the sender (hello goes first), and packs the
// running notices and credit due once the closed frames are out.
func (o *outbox) More(sess context.Context) bool {
	if !o.ready || o.sess != sess {
		return false
	}
	if len(o.out.Queued()) == 0 {
		o.packLocked()
	}
	return true
}

// Taking: the node keeps no per-frame books before a send.
func (o *outbox) Taking(batch.Frame[grant]) { o.taken = o.purges }

// Sent counts the messages of this connection, for bye's wait.
func (o *outbox) Sent(sess context.Context, _ batch.Frame[grant]) {
	if o.sess == sess {
		o.sessSent++
	}
}

// Unsent keeps the frame first in line: loop retries, on this connection or after the next
// hello.
// Unsent keeps a frame the socket did not take first in line, unless it was meant for a
// broker run that is gone (dropped with the rest of that run's messages).
func (o *outbox) Unsent(f batch.Frame[grant]) bool {
	if o.taken != o.purges {
		o.out.Recycle(f.B)
		return false
	}
	return true
}

// Dropped cannot happen with the size checks of result and the packer; never retry it forever.
func (o *outbox) Dropped(f batch.Frame[grant], err error) {
	o.n.log.Error("node: dropping a message the socket refused", "err", err, "bytes", len(f.B))
}

// onConnect notes a new connection: it needs a hello before anything else.
func (o *outbox) onConnect() {
	o.mu.Lock()
	o.endSess()
	o.sess, o.endSess = context.WithCancel(context.Background())
	o.connected, o.helloDue, o.ready = true, true, false
	o.win.reset()
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
			o.prog.timer.Stop()
			return
		case <-o.kick:
		case <-o.timer.C:
			o.mu.Lock()
			o.timerArmed = false
			o.runningDue = len(o.started) > 0
			o.mu.Unlock()
		case <-o.prog.timer.C:
			o.packProgress()
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
		o.sessBase, o.sessSent = base, 1
	}
	o.mu.Unlock()
}

// helloReply opens the connection for results and credit once the broker answered hello
// number seq, from broker run run. Messages still queued from before (results, running
// notices, credit) were meant for the run of the previous hello: when the broker is another
// run (it restarted, or the node reached another broker), they are dropped, since that run
// does not know those tasks and must not take their answers.
func (o *outbox) helloReply(seq int, run string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq != o.helloSeq || !o.connected || o.helloDue {
		return // the reply to an earlier hello
	}
	if o.run != "" && run != o.run {
		dropped := 0
		for {
			f, ok := o.out.Next()
			if !ok {
				break
			}
			dropped++
			o.out.Recycle(f.B)
		}
		for i, t := range o.started {
			t.startIdx = -1
			o.started[i] = nil
		}
		o.started = o.started[:0]
		o.purges++
		if dropped > 0 {
			o.n.log.Info("node: the broker is a new run: answers for the tasks of the last one are dropped", "broker", run, "was", o.run, "messages", dropped)
		}
	}
	o.run = run
	if !o.ready {
		o.ready = true
		// A hello resets the broker's books for this connection: the broker starts with no
		// credit, and will get what the messages still queued here grant (packed on the
		// connection before), then what packLocked grants now on top of it.
		o.outstanding = o.queuedGrantLocked()
	}
	o.wake()
}

// rehello says hello again on the current connection: the broker said it does not know this
// connection as a node (broker.hello_required), e.g. it declared the node lost while the
// connection lived on.
func (o *outbox) rehello() {
	o.mu.Lock()
	if o.connected && !o.helloDue {
		o.helloDue, o.ready = true, false
	}
	o.mu.Unlock()
	o.wake()
}

// otherRunLocked reports whether hand-out id names a broker run other than the current one
// (ids are "<run>.<n>"; an id of another form names no run).
func (o *outbox) otherRunLocked(id []byte) bool {
	r := o.run
	if r == "" || len(id) < len(r)+3 || id[0] != '"' || id[len(r)+1] != '.' {
		return false
	}
	return string(id[1:len(r)+1]) != r
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
	if !o.final || o.byeSent || !o.ready || o.snd.Sending() || len(o.out.Queued()) > 0 || o.out.Members() > 0 {
		o.mu.Unlock()
		return
	}
	sess := o.sess
	o.mu.Unlock()
	var m zmtp.Msg
	m.Frames = [][]byte{protocol.AppendBye(nil)}
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
