package batch

import (
	"context"
	"sync"
	"testing"

	"github.com/zerotask/zerotask/zmtp"
)

// fakeSock takes messages, or fails them with the errors queued in errs.
type fakeSock struct {
	errs []error
	sent []string
}

func (s *fakeSock) Send(_ context.Context, m *zmtp.Msg) error { return s.TrySend(m) }

func (s *fakeSock) TrySend(m *zmtp.Msg) error {
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		if err != nil {
			return err
		}
	}
	s.sent = append(s.sent, string(m.Frames[0]))
	return nil
}

// owner records what the Sender told it.
type owner struct {
	ok                           bool
	sess                         context.Context // nil: context.Background()
	taken, sent, unsent, dropped int
}

func (o *owner) Session() (context.Context, bool) {
	if o.sess != nil {
		return o.sess, o.ok
	}
	return context.Background(), o.ok
}
func (o *owner) Yield(bool) bool                    { return false }
func (o *owner) More(context.Context) bool          { return true }
func (o *owner) Taking(Frame[count])                { o.taken++ }
func (o *owner) Sent(context.Context, Frame[count]) { o.sent++ }
func (o *owner) Unsent(Frame[count]) bool           { o.unsent++; return true }
func (o *owner) Dropped(Frame[count], error)        { o.dropped++ }

func TestSender(t *testing.T) {
	var mu sync.Mutex
	b := Builder[count]{Packer: Packer{MaxBatch: 1, MaxBytes: 1024}}
	woken := 0
	s := Sender[count]{Mu: &mu, Out: &b, Wake: func() { woken++ }}
	for k := range 3 {
		start := b.Begin()
		b.Cur = append(b.Cur, member(k, 20)...)
		b.End(start, count{1, k})
	}
	sock := &fakeSock{errs: []error{zmtp.ErrMsgTooLarge, zmtp.ErrQueueFull}}
	o := &owner{ok: true}

	// The first frame is refused for good (dropped, not retried), the second finds the
	// socket full: it stays first in line and the owner's loop is woken.
	s.Flush(o, sock, false)
	if o.dropped != 1 || o.unsent != 1 || woken != 1 || len(sock.sent) != 0 || s.Sending() {
		t.Fatalf("after a refusal and a full socket: %+v, woken %d, sent %q, sending %v", o, woken, sock.sent, s.Sending())
	}
	s.Flush(o, sock, true)
	if len(sock.sent) != 2 || sock.sent[0] != member(1, 20) || o.sent != 2 {
		t.Fatalf("sent %q (%+v), want members 1 and 2 in order", sock.sent, o)
	}

	// Nothing leaves while another sender holds the loop, or the owner says no.
	start := b.Begin()
	b.Cur = append(b.Cur, member(3, 20)...)
	b.End(start, count{1, 3})
	s.Hold(true)
	s.Flush(o, sock, false)
	s.Hold(false)
	o.ok = false
	s.Flush(o, sock, false)
	if len(sock.sent) != 2 {
		t.Fatalf("sent %q while held or refused", sock.sent)
	}
}

// TestSenderHandedOver: once a non-blocking Flush found the socket full and woke the loop,
// later non-blocking Flushes in that session only append (they do not try the full socket
// again) until the loop's blocking Flush sends everything; a new session tries at once.
func TestSenderHandedOver(t *testing.T) {
	var mu sync.Mutex
	b := Builder[count]{Packer: Packer{MaxBatch: 1, MaxBytes: 1024}}
	woken := 0
	s := Sender[count]{Mu: &mu, Out: &b, Wake: func() { woken++ }}
	add := func(k int) {
		start := b.Begin()
		b.Cur = append(b.Cur, member(k, 20)...)
		b.End(start, count{1, k})
	}
	sock := &fakeSock{errs: []error{zmtp.ErrQueueFull}}
	o := &owner{ok: true}
	add(0)
	s.Flush(o, sock, false) // full: handed over
	for k := 1; k < 4; k++ {
		add(k)
		s.Flush(o, sock, false)
	}
	if len(sock.sent) != 0 || woken != 1 || o.taken != 1 {
		t.Fatalf("after the hand-over: sent %q, woken %d, taken %d", sock.sent, woken, o.taken)
	}
	s.Flush(o, sock, true)
	if len(sock.sent) != 4 || sock.sent[0] != member(0, 20) || sock.sent[3] != member(3, 20) {
		t.Fatalf("the loop sent %q, want members 0 to 3 in order", sock.sent)
	}
	add(4)
	s.Flush(o, sock, false) // the loop has run: callers send again
	if len(sock.sent) != 5 {
		t.Fatalf("sent %d after the loop ran, want 5", len(sock.sent))
	}

	sock.errs = []error{zmtp.ErrQueueFull}
	add(5)
	s.Flush(o, sock, false) // handed over in this session
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.sess = ctx // a new connection
	s.Flush(o, sock, false)
	if len(sock.sent) != 6 || sock.sent[5] != member(5, 20) {
		t.Fatalf("a new session did not send at once: %q", sock.sent)
	}
}
