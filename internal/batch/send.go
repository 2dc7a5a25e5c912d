package batch

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/zerotask/zerotask/zmtp"
)

// Socket is the part of a zmtp DEALER a Sender sends through.
type Socket interface {
	Send(ctx context.Context, m *zmtp.Msg) error
	TrySend(m *zmtp.Msg) error
}

// Owner is what a Sender's owner (the client's or the node's outbox) adds to the one send
// loop. Every method is called with the owner's mutex held.
type Owner[M Meta[M]] interface {
	// Session returns the context a blocking send waits in (it ends when the connection
	// drops), and whether sending may start at all.
	Session() (context.Context, bool)
	// Yield reports whether the sender should let other goroutines run before it takes the
	// first frame, so that what they append leaves with it (the mutex is released meanwhile).
	Yield(blocking bool) bool
	// More reports whether sending may go on in session sess, and appends anything due before
	// the next frame is taken (the node's credit and running notices).
	More(sess context.Context) bool
	// Taking notes a frame about to be handed to the socket.
	Taking(f Frame[M])
	// Sent notes a frame the socket took, in session sess.
	Sent(sess context.Context, f Frame[M])
	// Unsent notes a frame the socket did not take (the connection is full or gone) and
	// reports whether it stays first in line for the next try.
	Unsent(f Frame[M]) bool
	// Dropped reports a frame the socket refused for good (too large or empty): never retried.
	Dropped(f Frame[M], err error)
}

// Sender is the one send loop of the client and the node: one goroutine at a time (the one
// that finds nobody sending) hands the Builder's frames to the socket, then the open message,
// until nothing is left; others only append, and what they append leaves with it. With
// blocking false it only uses TrySend and hands over to the owner's background loop (Wake)
// when the socket cannot take a message at once; with blocking true it waits for the socket,
// until the session ends.
//
// Lock order: Mu (the owner's) is never held while calling the socket.
type Sender[M Meta[M]] struct {
	Mu   *sync.Mutex
	Out  *Builder[M]
	Wake func() // wakes the owner's background loop (never blocks)

	sending bool
	// handed is the session in which a non-blocking Flush found the socket full and woke the
	// background loop: until the loop's blocking Flush starts, which sends everything queued,
	// further non-blocking Flushes in that session only append. Without it every call of a
	// fast producer (Notify in a loop) would try the full socket again, and put its frame
	// back, once per member.
	handed context.Context
	msg    zmtp.Msg // the message handed to the socket (sending held)
}

// Sending reports whether a sender is at work (Mu held).
func (s *Sender[M]) Sending() bool { return s.sending }

// Hold marks a sender at work (held true) until Hold(false), so that nothing is sent meanwhile
// (Mu held): tests use it to queue a burst that must leave together.
func (s *Sender[M]) Hold(held bool) { s.sending = held }

// Flush sends everything queued through sock unless another sender is at work or o says no.
func (s *Sender[M]) Flush(o Owner[M], sock Socket, blocking bool) {
	s.Mu.Lock()
	sess, ok := o.Session()
	if blocking || s.handed != sess {
		s.handed = nil // the loop is here, or the connection changed
	}
	if s.sending || !ok || s.handed != nil {
		s.Mu.Unlock()
		return
	}
	s.sending = true
	if o.Yield(blocking) {
		s.Mu.Unlock()
		runtime.Gosched()
		s.Mu.Lock()
	}
	for o.More(sess) {
		f, ok := s.Out.Next()
		if !ok {
			break
		}
		o.Taking(f)
		s.Mu.Unlock()

		s.msg.Frames = append(s.msg.Frames[:0], f.B)
		var err error
		if blocking {
			err = sock.Send(sess, &s.msg) // ends when the connection drops
		} else {
			err = sock.TrySend(&s.msg)
		}
		s.msg.Frames[0] = nil

		s.Mu.Lock()
		if err != nil {
			if errors.Is(err, zmtp.ErrMsgTooLarge) || errors.Is(err, zmtp.ErrEmptyMsg) {
				o.Dropped(f, err)
				continue
			}
			if o.Unsent(f) {
				s.Out.PushFront(f)
			}
			s.sending = false
			if !blocking {
				s.handed = sess
			}
			s.Mu.Unlock()
			if !blocking {
				s.Wake()
			}
			return
		}
		o.Sent(sess, f)
		s.Out.Recycle(f.B)
	}
	s.sending = false
	s.Mu.Unlock()
}
