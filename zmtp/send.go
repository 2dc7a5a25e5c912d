package zmtp

import (
	"context"
	"fmt"
)

// emptyDelim is the REQ envelope: one empty delimiter frame.
var emptyDelim = [][]byte{{}}

// Send sends a message. It copies the frames before it returns (the caller keeps m and may
// reuse or Release it at once) and allocates nothing in steady state.
//
//   - DEALER, REQ: round-robin over connected peers; waits (until ctx ends) while no peer is
//     connected or every peer's queue is full, then sends when a peer can take it.
//   - ROUTER: Frames[0] is the destination identity. An unknown or gone peer fails at once
//     with ErrUnknownPeer (never a silent drop); a full peer queue blocks only this call until
//     ctx ends (ErrQueueFull, wrapping the context's error), never other peers.
//   - REP: sends the reply to the peer whose request the last Recv returned.
//   - PUB: never blocks; a matching subscriber at its HWM has the message dropped (Stats.Drops).
//   - SUB: ErrNotSupported.
func (s *Socket) Send(ctx context.Context, m *Msg) error {
	return s.send(ctx, m.Frames, true)
}

// SendFrames is Send for raw frames; it allocates nothing either.
func (s *Socket) SendFrames(ctx context.Context, frames ...[]byte) error {
	return s.send(ctx, frames, true)
}

// TrySend is Send that never waits: ErrNoPeer, ErrQueueFull or ErrUnknownPeer at once.
func (s *Socket) TrySend(m *Msg) error {
	return s.send(context.Background(), m.Frames, false)
}

// send is the common path. ctx is not consulted when the call may not wait (block false).
func (s *Socket) send(ctx context.Context, frames [][]byte, block bool) error {
	if s.closedFlag.Load() {
		return ErrClosed
	}
	if len(frames) == 0 {
		return ErrEmptyMsg
	}
	switch s.typ {
	case Dealer:
		_, err := s.sendRR(ctx, nil, frames, block)
		return err
	case Router:
		if len(frames) < 2 {
			return ErrEmptyMsg
		}
		s.rmu.RLock()
		c := s.routes[string(frames[0])] // no allocation: map index by converted bytes
		s.rmu.RUnlock()
		if c == nil {
			return fmt.Errorf("%w: %q", ErrUnknownPeer, frames[0])
		}
		return s.sendTo(ctx, c, nil, frames[1:], block)
	case Pub:
		s.pubMu.Lock()
		drops := s.psubs.publish(frames)
		s.pubMu.Unlock()
		if drops > 0 {
			s.stats.drops.Add(drops)
		}
		return nil
	case Req:
		return s.sendReq(ctx, frames, block)
	case Rep:
		return s.sendRep(ctx, frames, block)
	}
	return ErrNotSupported
}

// sendTo queues a message for one peer, waiting for room when allowed.
func (s *Socket) sendTo(ctx context.Context, c *conn, pre, frames [][]byte, block bool) error {
	for {
		ok, closed := c.enqueue(pre, frames)
		if ok {
			return nil
		}
		if closed {
			return fmt.Errorf("%w: peer disconnected", ErrUnknownPeer)
		}
		if !block {
			return ErrQueueFull
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrQueueFull, err)
		}
		ch := s.sendWait.register()
		// Re-check after registering: a writer that made room before we registered did not
		// see us (see waiters).
		ok, closed = c.enqueue(pre, frames)
		if ok || closed {
			s.sendWait.done(ch)
			if ok {
				return nil // queued by this re-check: going round again would queue it twice
			}
			return fmt.Errorf("%w: peer disconnected", ErrUnknownPeer)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			s.sendWait.done(ch)
			return fmt.Errorf("%w: %w", ErrQueueFull, ctx.Err())
		case <-s.closing:
			s.sendWait.done(ch)
			return ErrClosed
		}
		s.sendWait.done(ch)
	}
}

// tryRR offers the message to each ready peer once, starting after the last one used. It
// returns the peer that took it, and how many peers there were.
func (s *Socket) tryRR(pre, frames [][]byte) (*conn, int) {
	peers := *s.peers.Load()
	n := len(peers)
	if n == 0 {
		return nil, 0
	}
	start := int(s.rr.Add(1) % uint32(n))
	for i := range n {
		j := start + i
		if j >= n {
			j -= n
		}
		if ok, _ := peers[j].enqueue(pre, frames); ok {
			return peers[j], n
		}
	}
	return nil, n
}

// sendRR sends round-robin (DEALER, REQ), waiting while no peer can take the message.
func (s *Socket) sendRR(ctx context.Context, pre, frames [][]byte, block bool) (*conn, error) {
	for {
		c, n := s.tryRR(pre, frames)
		if c != nil {
			return c, nil
		}
		if !block {
			if n == 0 {
				return nil, ErrNoPeer
			}
			return nil, ErrQueueFull
		}
		if err := ctx.Err(); err != nil {
			if n == 0 {
				return nil, fmt.Errorf("%w: %w", ErrNoPeer, err)
			}
			return nil, fmt.Errorf("%w: %w", ErrQueueFull, err)
		}
		ch := s.sendWait.register()
		if c, _ = s.tryRR(pre, frames); c != nil {
			s.sendWait.done(ch)
			return c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			s.sendWait.done(ch)
			continue // reports the context error above, after one last try
		case <-s.closing:
			s.sendWait.done(ch)
			return nil, ErrClosed
		}
		s.sendWait.done(ch)
	}
}

// sendReq sends a request: empty delimiter, then the frames, to the next peer round-robin.
// The socket then waits for that peer's reply (Recv) before it may send again.
func (s *Socket) sendReq(ctx context.Context, frames [][]byte, block bool) error {
	s.stMu.Lock()
	waiting := s.reqWaiting
	s.stMu.Unlock()
	if waiting {
		return fmt.Errorf("%w: REQ must receive the reply before sending again", ErrState)
	}
	c, err := s.sendRR(ctx, emptyDelim, frames, block)
	if err != nil {
		return err
	}
	s.stMu.Lock()
	s.reqPeer, s.reqWaiting = c, true
	s.stMu.Unlock()
	return nil
}

// sendRep sends a reply with the envelope of the request that the last Recv returned.
func (s *Socket) sendRep(ctx context.Context, frames [][]byte, block bool) error {
	s.stMu.Lock()
	if !s.repReady {
		s.stMu.Unlock()
		return fmt.Errorf("%w: REP must receive a request before replying", ErrState)
	}
	c, env := s.repPeer, s.repEnv
	s.repReady = false
	s.stMu.Unlock()
	// The envelope stays valid: repEnv is only rewritten by Recv, which REP's state forbids
	// until this reply is sent.
	return s.sendTo(ctx, c, env, frames, block)
}

// Recv returns the next message. The caller owns it and must Release it.
//
//   - ROUTER: Frames[0] is the sender's routing identity.
//   - REQ: only the reply to the last request is returned (its delimiter stripped); other
//     messages are dropped. Recv before Send fails with ErrState.
//   - REP: the request's envelope (up to the empty delimiter) is kept for the reply and
//     stripped; messages without an envelope are dropped.
//   - SUB: only messages matching a subscription.
//   - PUB: ErrNotSupported.
//
// When ctx ends first it returns the context's error.
func (s *Socket) Recv(ctx context.Context) (*Msg, error) {
	if s.opts.Handler != nil {
		return nil, ErrNotSupported
	}
	switch s.typ {
	case Pub:
		return nil, ErrNotSupported
	case Req:
		s.stMu.Lock()
		waiting := s.reqWaiting
		s.stMu.Unlock()
		if !waiting {
			return nil, fmt.Errorf("%w: REQ must send a request before receiving", ErrState)
		}
	case Rep:
		s.stMu.Lock()
		ready := s.repReady
		s.stMu.Unlock()
		if ready {
			return nil, fmt.Errorf("%w: REP must send the reply before receiving again", ErrState)
		}
	}
	for {
		m, err := s.recvOne(ctx)
		if err != nil {
			return nil, err
		}
		switch s.typ {
		case Req:
			s.stMu.Lock()
			ok := m.from == s.reqPeer && len(m.Frames) >= 2 && len(m.Frames[0]) == 0
			if ok {
				s.reqWaiting = false
				s.reqPeer = nil
			}
			s.stMu.Unlock()
			if !ok {
				m.Release()
				continue
			}
			m.dropFront(1)
		case Rep:
			k := -1
			for i, f := range m.Frames {
				if len(f) == 0 {
					k = i
					break
				}
			}
			if k < 0 || k == len(m.Frames)-1 { // no envelope, or no body
				m.Release()
				continue
			}
			s.stMu.Lock()
			s.repEnvBuf = s.repEnvBuf[:0]
			for _, f := range m.Frames[:k+1] {
				s.repEnvBuf = append(s.repEnvBuf, f...)
			}
			s.repEnv = s.repEnv[:0]
			off := 0
			for _, f := range m.Frames[:k+1] {
				s.repEnv = append(s.repEnv, s.repEnvBuf[off:off+len(f):off+len(f)])
				off += len(f)
			}
			s.repPeer, s.repReady = m.from, true
			s.stMu.Unlock()
			m.dropFront(k + 1)
		}
		return m, nil
	}
}

// RecvBatch receives up to len(msgs) messages into msgs and returns how many: it waits (until
// ctx ends) for at least one, then takes every message already queued that fits, under one
// lock of the receive queue, where Recv takes one lock per message. The caller owns each
// message returned and must Release it. It is meant for a receive loop that handles messages
// in bursts (a broker): Recv is as fast for one message at a time.
//
// ROUTER, DEALER and SUB only (what Recv returns for those, with the same frames); REQ and REP
// alternate one message at a time, and PUB receives nothing: ErrNotSupported. An empty msgs
// returns 0 at once. When ctx ends first it returns the context's error.
func (s *Socket) RecvBatch(ctx context.Context, msgs []*Msg) (int, error) {
	switch {
	case s.opts.Handler != nil:
		return 0, ErrNotSupported
	case s.typ == Router, s.typ == Dealer, s.typ == Sub:
	default:
		return 0, ErrNotSupported
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	for {
		n, ch, ok := s.q.popN(msgs)
		if !ok {
			return 0, ErrClosed
		}
		if n > 0 {
			return n, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			s.q.recvWait.done(ch)
			return 0, ctx.Err()
		case <-s.closing:
			s.q.recvWait.done(ch)
			return 0, ErrClosed
		}
		s.q.recvWait.done(ch)
	}
}

// recvOne pops the next queued message, waiting for one.
func (s *Socket) recvOne(ctx context.Context) (*Msg, error) {
	for {
		m, ch, ok := s.q.pop()
		if !ok {
			return nil, ErrClosed
		}
		if m != nil {
			return m, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			s.q.recvWait.done(ch)
			return nil, ctx.Err()
		case <-s.closing:
			s.q.recvWait.done(ch)
			return nil, ErrClosed
		}
		s.q.recvWait.done(ch)
	}
}

// dropFront removes the first k frames, keeping the Frames storage (so a pooled message does
// not lose capacity).
func (m *Msg) dropFront(k int) {
	n := copy(m.Frames, m.Frames[k:])
	clear(m.Frames[n:])
	m.Frames = m.Frames[:n]
}

// Subscribe adds a subscription (SUB only): messages whose first frame starts with prefix are
// received; an empty prefix matches everything. Subscriptions are counted (subscribing twice
// needs two Unsubscribes) and sent again to a publisher after a reconnect.
func (s *Socket) Subscribe(prefix []byte) error {
	return s.setSub(prefix, true)
}

// Unsubscribe removes one count of a subscription (SUB only).
func (s *Socket) Unsubscribe(prefix []byte) error {
	return s.setSub(prefix, false)
}

func (s *Socket) setSub(prefix []byte, on bool) error {
	if s.typ != Sub {
		return ErrNotSupported
	}
	if s.closedFlag.Load() {
		return ErrClosed
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	var changed bool
	if on {
		changed, _ = s.subs.add(prefix, 0)
	} else {
		changed = s.subs.remove(prefix)
	}
	if changed {
		for _, c := range *s.peers.Load() {
			c.sendSubscription(prefix, on)
		}
	}
	return nil
}

// subMatch reports whether a received topic matches one of our subscriptions.
func (s *Socket) subMatch(topic []byte) bool {
	s.subMu.RLock()
	ok := s.subs.match(topic)
	s.subMu.RUnlock()
	return ok
}
