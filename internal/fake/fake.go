// Package fake holds what the client's and the node's fake brokers share in their tests: a
// zmtp ROUTER bound on a loopback port, a receive loop that hands each message to the fake, one
// lock over the fake's state with a change signal to wait on (no sleeps), and the protocol
// violations the fake saw. Each fake speaks its own side of docs/protocol.md with
// encoding/json, independent of codec, and embeds a Server.
package fake

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/zmtp"
)

// Server is the shared part of a fake broker.
type Server struct {
	Router *zmtp.Socket
	Addr   string          // the router's endpoint, e.g. tcp://127.0.0.1:41234
	Ctx    context.Context // ends at Close

	// Mu guards the embedding fake's state as well as the Server's; whoever changes that state
	// calls SignalLocked so that WaitFor looks again.
	Mu sync.Mutex

	t          testing.TB
	changed    chan struct{}
	violations []string
	cancel     context.CancelFunc
	done       chan struct{}
	wg         sync.WaitGroup // Go's and Later's goroutines
}

// Start binds the router on endpoint ("tcp://127.0.0.1:0" for a free port) and serves until
// Close, which runs when the test ends: handle gets each message's identity and body (its
// last frame), copied, one message at a time.
func (s *Server) Start(t testing.TB, opts zmtp.Options, endpoint string, handle func(identity, body []byte)) {
	t.Helper()
	s.t = t
	s.changed = make(chan struct{})
	s.done = make(chan struct{})
	s.Router = zmtp.NewRouter(opts)
	if err := Bind(s.Router, endpoint); err != nil {
		s.Router.Close()
		t.Fatalf("fake broker bind %s: %v", endpoint, err)
	}
	s.Addr = s.Router.LastEndpoint()
	s.Ctx, s.cancel = context.WithCancel(context.Background())
	go s.serve(handle)
	t.Cleanup(s.Close)
}

// Bind binds sock on ep, retrying for up to a second: the port of a fake just closed (to be
// restarted in place) may take a moment to be free again.
func Bind(sock *zmtp.Socket, ep string) error {
	var err error
	for range 50 {
		if err = sock.Bind(ep); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // retry interval for a busy port, not synchronization
	}
	return err
}

func (s *Server) serve(handle func(identity, body []byte)) {
	defer close(s.done)
	for {
		m, err := s.Router.Recv(s.Ctx)
		if err != nil {
			return
		}
		id := append([]byte(nil), m.Frames[0]...)
		body := append([]byte(nil), m.Frames[len(m.Frames)-1]...)
		m.Release()
		handle(id, body)
	}
}

// Close stops the fake: its connections drop, as in a crash. It waits for the receive loop
// and for the functions of Go and Later, and may be called more than once.
func (s *Server) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cancel()
	s.Router.Close()
	<-s.done
	s.wg.Wait()
}

// Go runs fn on a goroutine of its own that Close waits for; fn should return once Ctx ends.
func (s *Server) Go(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Later runs fn after d unless the fake closes first.
func (s *Server) Later(d time.Duration, fn func()) {
	s.Go(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fn()
		case <-s.Ctx.Done():
		}
	})
}

// Send sends body to the peer identity, giving up after 5 s or at Close.
func (s *Server) Send(identity, body []byte) {
	ctx, cancel := context.WithTimeout(s.Ctx, 5*time.Second)
	defer cancel()
	if err := s.Router.SendFrames(ctx, identity, body); err != nil && s.Ctx.Err() == nil {
		s.t.Logf("fake broker send: %v", err)
	}
}

// SignalLocked wakes WaitFor (Mu held).
func (s *Server) SignalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Violation records a breach of the protocol by the peer under test; CheckClean reports them.
func (s *Server) Violation(format string, args ...any) {
	s.Mu.Lock()
	s.ViolationLocked(format, args...)
	s.Mu.Unlock()
}

// ViolationLocked is Violation with Mu held.
func (s *Server) ViolationLocked(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// WaitFor blocks until cond (called with Mu held) holds, or fails the test after timeout,
// saying what it waited for and, when detail is not nil, detail() (called with Mu held).
func (s *Server) WaitFor(timeout time.Duration, what string, cond func() bool, detail func() string) {
	s.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.Mu.Lock()
		ok := cond()
		ch := s.changed
		s.Mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			more := ""
			if detail != nil {
				s.Mu.Lock()
				more = "; " + detail()
				s.Mu.Unlock()
			}
			s.t.Fatalf("fake broker: timed out after %v waiting for %s%s", timeout, what, more)
		}
	}
}

// CheckClean fails the test on every protocol violation seen.
func (s *Server) CheckClean() {
	s.t.Helper()
	s.Mu.Lock()
	defer s.Mu.Unlock()
	for _, v := range s.violations {
		s.t.Errorf("protocol violation: %s", v)
	}
}
