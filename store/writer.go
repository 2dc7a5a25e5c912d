package store

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// writer is the Redis store's batching writer: one goroutine that takes every Put, Hold and
// Ack handed to it, gathers what is waiting (up to Options.FlushMax results, tasks and ids, for
// up to Options.FlushDelay), and sends it as at most three scripts in one pipeline, in this
// order: one put script for all the results, one hold script for all the held tasks and one
// ack script for all the acked ids. Each caller is answered when Redis has acknowledged its part. While a batch is on the
// wire the next one gathers, so batches grow with the load and round trips never bound
// throughput (group commit); up to maxFlights batches are on the wire at once (rueidis
// pipelines them on its connection), so a call that arrives while a batch is out waits for a
// free flight, not for that batch's round trip. Calls of one caller are sequential, so no
// caller's writes are reordered; calls of different callers in flight at once have no order
// between them.
type writer struct {
	r      *Redis
	ops    chan *wop
	quit   chan struct{} // closed by stop: drain and return
	exited chan struct{} // closed when the goroutine has returned
	free   chan *flight  // idle flights: at most maxFlights batches on the wire

	batch []*wop // the batch being gathered (the run goroutine's)
}

// flight is the reusable state of one batch on the wire.
type flight struct {
	w        *writer
	batch    []*wop
	putArgs  []string
	holdArgs []string
	ackArgs  []string
	scripts  []*script
	args     [][]string
	cmds     rueidis.Commands
}

// maxFlights bounds the batches on the wire at once. Two measured best: one makes a call wait
// behind the batch in flight (a sequential durable call paid about one extra round trip), more
// only split batches.
const maxFlights = 2

// writerQueue bounds the ops waiting for the writer; past it callers block (with their ctx).
const writerQueue = 4096

const (
	opPut = iota
	opHold
	opAck
)

// wop is one Put, Hold or Ack call handed to the writer. The caller encodes into it and then
// owns it again only after done has delivered (an abandoned op, whose caller's ctx ended, is
// left to the garbage collector).
type wop struct {
	kind    int
	n       int      // results, tasks or acked ids
	buf     []byte   // encoded values (Hold: the tails of held records, appendHeld), back to back
	ends    []int    // end offset of each value in buf
	ids     []string // result or task ids
	owners  []string // result owners (Put), empty when none has one
	ttl     string   // result TTL in ms (Put)
	owner   string   // the owner (Hold, Ack)
	keys    []string // idempotency keys (Put, Hold), "" for none; empty when no item has one
	keyTTLs []string // their binding TTLs in ms (Hold)
	bound   []string // per task, the id its key is bound to when that stopped it (Hold's answer)
	taken   []int    // the tasks whose id was another task's (Hold's answer)
	held    []Task   // Hold's tasks: do sets their Bound and Taken from the answer
	done    chan error
}

// key returns item i's idempotency key and its TTL ("" when none).
func (op *wop) key(i int) (string, string) {
	if i >= len(op.keys) {
		return "", ""
	}
	ttl := ""
	if i < len(op.keyTTLs) {
		ttl = op.keyTTLs[i]
	}
	return op.keys[i], ttl
}

var opPool = sync.Pool{New: func() any { return &wop{done: make(chan error, 1)} }}

func acquireOp(kind int) *wop {
	op := opPool.Get().(*wop)
	op.kind = kind
	return op
}

// settle runs on the caller's goroutine once Redis answered op: a Hold's answer per task.
func (op *wop) settle(err error) {
	if err != nil {
		return
	}
	if op.held != nil {
		for i, b := range op.bound {
			if i < len(op.held) {
				op.held[i].Bound = b
			}
		}
		for _, i := range op.taken {
			op.held[i].Taken = true
		}
	}
}

func releaseOp(op *wop) {
	if cap(op.buf) > 1<<20 {
		op.buf = nil // a huge batch does not pin its buffer in the pool
	}
	op.n, op.buf, op.ends, op.ttl, op.owner, op.held = 0, op.buf[:0], op.ends[:0], "", "", nil
	op.taken = op.taken[:0]
	clear(op.ids)
	clear(op.owners)
	clear(op.keys)
	clear(op.keyTTLs)
	clear(op.bound)
	op.ids, op.owners = op.ids[:0], op.owners[:0]
	op.keys, op.keyTTLs, op.bound = op.keys[:0], op.keyTTLs[:0], op.bound[:0]
	opPool.Put(op)
}

// value returns the i-th encoded value as a string sharing buf's memory (no copy): buf is not
// written again until the op is released, after Redis has answered.
func (op *wop) value(i int) string {
	start := 0
	if i > 0 {
		start = op.ends[i-1]
	}
	return rueidis.BinaryString(op.buf[start:op.ends[i]])
}

func newWriter(r *Redis) *writer {
	w := &writer{r: r, ops: make(chan *wop, writerQueue), quit: make(chan struct{}), exited: make(chan struct{})}
	w.initFlights()
	go w.run()
	return w
}

func (w *writer) initFlights() {
	w.free = make(chan *flight, maxFlights)
	for range maxFlights {
		w.free <- &flight{w: w}
	}
}

// send hands the gathered batch to a free flight (waiting for one) and sends it on a
// goroutine of its own.
func (w *writer) send(ctx context.Context) {
	f := <-w.free
	f.batch = append(f.batch[:0], w.batch...)
	clear(w.batch)
	w.batch = w.batch[:0]
	go func() {
		f.flush(ctx)
		w.free <- f
	}()
}

// flush sends the gathered batch and waits for its answer (tests; the writer uses send).
func (w *writer) flush(ctx context.Context) {
	if w.free == nil {
		w.initFlights()
	}
	f := <-w.free
	f.batch = append(f.batch[:0], w.batch...)
	clear(w.batch)
	w.batch = w.batch[:0]
	f.flush(ctx)
	w.free <- f
}

// answered finishes op once Redis answered it: on success a Hold's answer is set on its
// tasks, and op goes back to the pool.
func answered(op *wop, err error) error {
	op.settle(err)
	releaseOp(op)
	return err
}

// do hands op to the writer and waits for Redis's answer. On ctx's end it returns ctx.Err()
// and abandons op (the write may still happen).
func (w *writer) do(ctx context.Context, op *wop) error {
	select {
	case w.ops <- op:
	case <-ctx.Done():
		releaseOp(op)
		return ctx.Err()
	case <-w.quit:
		releaseOp(op)
		return ErrClosed
	}
	select {
	case err := <-op.done:
		return answered(op, err)
	case <-ctx.Done():
		return ctx.Err()
	case <-w.exited:
		// The writer drained what it was handed before it exited; an op sent in the race
		// with stop may have been left.
		select {
		case err := <-op.done:
			return answered(op, err)
		default:
			return ErrClosed
		}
	}
}

func (w *writer) stop() {
	close(w.quit)
	<-w.exited
}

func (w *writer) run() {
	defer close(w.exited)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var timer *time.Timer
	for {
		var first *wop
		select {
		case first = <-w.ops:
		case <-w.quit:
			// Send what was handed over before stop, wait for the flights, then leave.
			for {
				select {
				case op := <-w.ops:
					w.batch = append(w.batch[:0], op)
					w.send(ctx)
					continue
				default:
				}
				break
			}
			for range maxFlights {
				<-w.free
			}
			return
		}
		// Gathering starts once a flight is free: what arrives meanwhile joins this batch.
		f := <-w.free
		w.free <- f
		w.batch = append(w.batch[:0], first)
		items := first.n
		timerOn := false
	gather:
		for items < w.r.o.FlushMax {
			select {
			case op := <-w.ops:
				w.batch = append(w.batch, op)
				items += op.n
				continue
			default:
			}
			if w.r.o.FlushDelay <= 0 {
				break
			}
			if !timerOn {
				if timer == nil {
					timer = time.NewTimer(w.r.o.FlushDelay)
				} else {
					timer.Reset(w.r.o.FlushDelay)
				}
				timerOn = true
			}
			select {
			case op := <-w.ops:
				w.batch = append(w.batch, op)
				items += op.n
			case <-timer.C:
				timerOn = false
				break gather
			}
		}
		if timerOn && !timer.Stop() {
			<-timer.C
		}
		w.send(ctx)
	}
}

// flush sends the batch as one pipeline and answers every op in it.
func (f *flight) flush(ctx context.Context) {
	w := f.w
	p := w.r.o.Prefix
	f.putArgs = append(f.putArgs[:0], p)
	f.holdArgs = append(f.holdArgs[:0], p, w.r.leaseMS, "", "")
	f.ackArgs = append(f.ackArgs[:0], p, "")
	holdGroups, held, ackGroups := 0, 0, 0
	for _, op := range f.batch {
		switch op.kind {
		case opPut:
			for i := 0; i < op.n; i++ {
				key, _ := op.key(i)
				owner := ""
				if i < len(op.owners) {
					owner = op.owners[i]
				}
				f.putArgs = append(f.putArgs, op.ids[i], op.value(i), op.ttl, key, owner)
			}
		case opHold:
			holdGroups++
			held += op.n
			// Per task its id and the tail of its held record (appendHeld), and with a keyed
			// task in the group its key and the key's TTL (fewer arguments for Redis to read
			// when none is keyed).
			if len(op.keys) == 0 {
				f.holdArgs = append(f.holdArgs, op.owner, strconv.Itoa(op.n), "2")
				for i := 0; i < op.n; i++ {
					f.holdArgs = append(f.holdArgs, op.ids[i], op.value(i))
				}
				continue
			}
			f.holdArgs = append(f.holdArgs, op.owner, strconv.Itoa(op.n), "4")
			for i := 0; i < op.n; i++ {
				key, ttl := op.key(i)
				f.holdArgs = append(f.holdArgs, op.ids[i], op.value(i), key, ttl)
			}
		case opAck:
			ackGroups++
			f.ackArgs = append(f.ackArgs, op.owner, strconv.Itoa(op.n))
			f.ackArgs = append(f.ackArgs, op.ids...)
		}
	}
	f.scripts, f.args = f.scripts[:0], f.args[:0]
	putIdx, holdIdx, ackIdx := -1, -1, -1
	if len(f.putArgs) > 1 {
		putIdx = len(f.scripts)
		f.scripts = append(f.scripts, scriptPut)
		f.args = append(f.args, f.putArgs)
	}
	if holdGroups > 0 {
		f.holdArgs[2], f.holdArgs[3] = strconv.Itoa(held), strconv.Itoa(holdGroups)
		holdIdx = len(f.scripts)
		f.scripts = append(f.scripts, scriptHold)
		f.args = append(f.args, f.holdArgs)
	}
	if ackGroups > 0 {
		f.ackArgs[1] = strconv.Itoa(ackGroups)
		ackIdx = len(f.scripts)
		f.scripts = append(f.scripts, scriptAck)
		f.args = append(f.args, f.ackArgs)
	}
	var putErr, holdErr, ackErr error
	var bound, acked []rueidis.RedisMessage
	allHeld := false
	if len(f.scripts) > 0 {
		res := evalMulti(ctx, w.r.c, f.scripts, f.args, &f.cmds)
		if putIdx >= 0 {
			if err := res[putIdx].Error(); err != nil {
				putErr = fmt.Errorf("store: put results: %w", err)
			}
		}
		if holdIdx >= 0 {
			if a, err := res[holdIdx].ToArray(); err == nil && len(a) == 0 {
				allHeld = true // every task stored: the script replies nothing per task
			} else {
				bound, holdErr = replyArray(res[holdIdx], held, "hold", "tasks")
			}
		}
		if ackIdx >= 0 {
			acked, ackErr = replyArray(res[ackIdx], ackGroups, "ack", "calls")
		}
	}
	for i, op := range f.batch {
		var err error
		switch op.kind {
		case opPut:
			err = putErr
			if err == nil {
				for _, id := range op.ids {
					w.r.s.fire(id) // local Waits need not wait for the PUBLISH
				}
			}
		case opHold:
			err = holdErr
			if err == nil && !allHeld {
				for j, m := range bound[:op.n] {
					if v, isInt := m.AsInt64(); isInt == nil {
						if v == 1 { // another task's id
							op.taken = append(op.taken, j)
							op.bound = append(op.bound, "")
							continue
						}
						err = fmt.Errorf("store: hold tasks of %q: %w", op.owner, ErrFenced)
						break
					}
					s, _ := m.ToString()
					op.bound = append(op.bound, s)
				}
				bound = bound[op.n:]
			}
		case opAck:
			err = ackErr
			if err == nil {
				if ok, _ := acked[0].AsInt64(); ok != 1 {
					err = fmt.Errorf("store: ack tasks of %q: %w", op.owner, ErrFenced)
				}
				acked = acked[1:]
			}
		}
		op.done <- err // capacity 1: never blocks, even for an abandoned op
		f.batch[i] = nil
	}
	clear(f.putArgs)
	clear(f.holdArgs)
	clear(f.ackArgs)
}

// replyArray reads the reply of script what that holds one item for each of want things (of
// names them), or the error that says why it cannot.
func replyArray(r rueidis.RedisResult, want int, what, of string) ([]rueidis.RedisMessage, error) {
	a, err := r.ToArray()
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", what, of, err)
	}
	if len(a) != want {
		return a, fmt.Errorf("%w: %s reply of %d items for %d %s", ErrCorrupt, what, len(a), want, of)
	}
	return a, nil
}
