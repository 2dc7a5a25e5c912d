package zmtp

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Socket is a ZeroMQ socket of one type, bound and/or connected to any number of endpoints.
// Its methods are safe for concurrent use (REQ and REP keep one send/receive state, so they
// are meant for one user at a time, as in libzmq).
type Socket struct {
	typ    SocketType
	opts   Options
	log    *slog.Logger
	optErr error // a bad option, reported by Bind and Connect

	mu        sync.Mutex // guards the fields below (lock order: mu, then rmu, then conn.wmu)
	closed    bool
	listeners map[string]*listener
	dialers   map[string]*dialer
	conns     map[*conn]struct{} // every live connection, handshaking or ready
	ready     []*conn            // connections past their handshake
	nAccepted int                // live accepted connections (MaxConns)
	perAddr   map[string]int     // live accepted tcp connections per source IP (MaxConnsPerAddr)
	nextID    uint32             // ROUTER: next generated identity
	lastEP    string
	lastAddr  net.Addr

	peers      atomic.Pointer[[]*conn] // copy of ready, read without locks by Send
	rr         atomic.Uint32           // round-robin cursor
	closedFlag atomic.Bool
	queued     atomic.Int64 // bytes in every peer's send queue (Options.SendHWMTotalBytes)

	rmu    sync.RWMutex     // guards routes
	routes map[string]*conn // ROUTER: routing identity -> connection

	q         *recvQueue
	freeMu    sync.Mutex // guards free and freeBytes
	free      []*Msg     // released received messages, reused by the readers (see putFree)
	freeBytes int        // capacity of the buffers of the messages in free
	sendWait  waiters    // senders parked on full queues or on no peer
	closing   chan struct{}
	wg        sync.WaitGroup

	pubMu sync.Mutex // PUB: guards psubs and the peers' subscription fields; before conn.wmu
	psubs pubSubs    // PUB: every peer's subscriptions

	subMu sync.RWMutex // SUB: guards subs; held while a new peer gets them
	subs  subSet       // SUB: our subscriptions (also filters what arrives)

	stMu       sync.Mutex // REQ/REP state
	reqPeer    *conn
	reqWaiting bool
	repPeer    *conn
	repReady   bool
	repEnv     [][]byte
	repEnvBuf  []byte

	stats struct {
		msgsIn, msgsOut, bytesIn, bytesOut, drops, subsRefused atomic.Uint64
		accepted, refused, hsFail, proto, hbTimeout, reconnect atomic.Uint64
	}
}

// listener is one Bind endpoint.
type listener struct {
	ep       string // as given to Bind
	resolved string // with the real port
	l        net.Listener
}

// dialer is one Connect endpoint: it redials until cancelled.
type dialer struct {
	ep     string
	e      endpoint
	ctx    context.Context
	cancel context.CancelFunc
}

// NewSocket returns a socket of type t. It does nothing on the network until Bind or Connect.
// An invalid type or option makes Bind and Connect fail (with ErrNotSupported or
// ErrBadOption).
func NewSocket(t SocketType, o Options) *Socket {
	o = o.withDefaults()
	s := &Socket{
		typ:       t,
		opts:      o,
		log:       o.Logger,
		listeners: map[string]*listener{},
		dialers:   map[string]*dialer{},
		conns:     map[*conn]struct{}{},
		routes:    map[string]*conn{},
		q:         newRecvQueue(o.RecvHWM, o.RecvHWMBytes),
		closing:   make(chan struct{}),
		nextID:    rand.Uint32(),
	}
	s.peers.Store(&[]*conn{})
	switch {
	case !t.valid():
		s.optErr = fmt.Errorf("%w: %v", ErrNotSupported, t)
	case len(o.Identity) > maxIdentity:
		s.optErr = fmt.Errorf("%w: Identity over %d bytes", ErrBadOption, maxIdentity)
	case o.Handler != nil && t != Router && t != Dealer:
		s.optErr = fmt.Errorf("%w: Handler on a %v socket (ROUTER and DEALER only)", ErrBadOption, t)
	}
	return s
}

// NewRouter returns a ROUTER socket.
func NewRouter(o Options) *Socket { return NewSocket(Router, o) }

// NewDealer returns a DEALER socket.
func NewDealer(o Options) *Socket { return NewSocket(Dealer, o) }

// NewPub returns a PUB socket.
func NewPub(o Options) *Socket { return NewSocket(Pub, o) }

// NewSub returns a SUB socket. It receives nothing until Subscribe.
func NewSub(o Options) *Socket { return NewSocket(Sub, o) }

// NewReq returns a REQ socket.
func NewReq(o Options) *Socket { return NewSocket(Req, o) }

// NewRep returns a REP socket.
func NewRep(o Options) *Socket { return NewSocket(Rep, o) }

// Type returns the socket's type.
func (s *Socket) Type() SocketType { return s.typ }

// Bind listens on endpoint ("tcp://127.0.0.1:0", "tcp://*:5555", "ipc:///tmp/x.sock"). A
// socket may bind several endpoints. Connections are accepted in the background; each runs
// its handshake on its own goroutine, bounded by HandshakeTimeout.
func (s *Socket) Bind(endpoint string) error {
	if s.optErr != nil {
		return s.optErr
	}
	e, err := parseEndpoint(endpoint)
	if err != nil {
		return err
	}
	l, err := e.listen()
	if err != nil {
		return fmt.Errorf("zmtp: bind %s: %w", endpoint, err)
	}
	ln := &listener{ep: endpoint, resolved: endpointString(l), l: l}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	if _, dup := s.listeners[endpoint]; dup {
		s.mu.Unlock()
		l.Close()
		return fmt.Errorf("%w: %s already bound", ErrEndpoint, endpoint)
	}
	s.listeners[endpoint] = ln
	s.lastEP, s.lastAddr = ln.resolved, l.Addr()
	s.wg.Add(1)
	s.mu.Unlock()
	s.event(Event{Type: EventListening, Endpoint: ln.resolved})
	go s.acceptLoop(ln)
	return nil
}

// Unbind stops listening on an endpoint given to Bind (or its resolved form) and closes the
// connections accepted there.
func (s *Socket) Unbind(endpoint string) error {
	s.mu.Lock()
	ln := s.listeners[endpoint]
	if ln == nil {
		for _, l := range s.listeners {
			if l.resolved == endpoint {
				ln = l
			}
		}
	}
	if ln == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s not bound", ErrEndpoint, endpoint)
	}
	delete(s.listeners, ln.ep)
	ln.l.Close()
	for c := range s.conns {
		if c.ln == ln {
			c.shutdown(ErrClosed)
		}
	}
	s.mu.Unlock()
	return nil
}

// Connect connects to endpoint in the background: it does not wait for the peer. Until Close
// or Disconnect it redials with backoff (ReconnectInterval doubling up to
// ReconnectIntervalMax) whenever the connection fails or is lost.
func (s *Socket) Connect(endpoint string) error {
	if s.optErr != nil {
		return s.optErr
	}
	e, err := parseEndpoint(endpoint)
	if err != nil {
		return err
	}
	if e.network == "tcp" {
		if h, _, _ := net.SplitHostPort(e.addr); h == "" {
			return fmt.Errorf("%w: %q: connect needs a host", ErrEndpoint, endpoint)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &dialer{ep: endpoint, e: e, ctx: ctx, cancel: cancel}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return ErrClosed
	}
	if _, dup := s.dialers[endpoint]; dup {
		s.mu.Unlock()
		cancel()
		return fmt.Errorf("%w: %s already connected", ErrEndpoint, endpoint)
	}
	s.dialers[endpoint] = d
	s.wg.Add(1)
	s.mu.Unlock()
	go s.dialLoop(d)
	return nil
}

// Disconnect stops redialing an endpoint given to Connect and closes its connection.
func (s *Socket) Disconnect(endpoint string) error {
	s.mu.Lock()
	d := s.dialers[endpoint]
	if d == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s not connected", ErrEndpoint, endpoint)
	}
	delete(s.dialers, endpoint)
	d.cancel()
	for c := range s.conns {
		if c.d == d {
			c.shutdown(ErrClosed)
		}
	}
	s.mu.Unlock()
	return nil
}

// Addr returns the address of the last successful Bind, or nil.
func (s *Socket) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAddr
}

// LastEndpoint returns the resolved endpoint of the last successful Bind (with the real port,
// e.g. "tcp://127.0.0.1:40123"), or "".
func (s *Socket) LastEndpoint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastEP
}

// Stats returns the socket's counters.
func (s *Socket) Stats() Stats {
	st := Stats{
		MsgsIn:            s.stats.msgsIn.Load(),
		MsgsOut:           s.stats.msgsOut.Load(),
		BytesIn:           s.stats.bytesIn.Load(),
		BytesOut:          s.stats.bytesOut.Load(),
		Drops:             s.stats.drops.Load(),
		SubsRefused:       s.stats.subsRefused.Load(),
		Peers:             len(*s.peers.Load()),
		Accepted:          s.stats.accepted.Load(),
		Refused:           s.stats.refused.Load(),
		HandshakeFailures: s.stats.hsFail.Load(),
		ProtocolErrors:    s.stats.proto.Load(),
		HeartbeatTimeouts: s.stats.hbTimeout.Load(),
		Reconnects:        s.stats.reconnect.Load(),
	}
	return st
}

// Close closes the listeners, dialers and connections, waits for every goroutine of the socket
// to end, and makes pending and later Send and Recv calls return ErrClosed. Messages still
// queued are dropped. Close is idempotent.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.closedFlag.Store(true)
	close(s.closing)
	for _, ln := range s.listeners {
		ln.l.Close()
	}
	for _, d := range s.dialers {
		d.cancel()
	}
	for c := range s.conns {
		c.shutdown(ErrClosed)
	}
	s.mu.Unlock()
	s.q.close()
	s.sendWait.wakeAll()
	s.wg.Wait()
	s.q.close() // anything delivered while closing
	return nil
}

// event logs a connection event and hands it to the monitor.
func (s *Socket) event(ev Event) {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("zmtp "+ev.Type.String(), "socket", s.typ.String(), "endpoint", ev.Endpoint,
			"remote", ev.Remote, "identity", ev.Identity, "err", ev.Err)
	}
	if s.opts.Monitor != nil {
		s.opts.Monitor(ev)
	}
}

// acceptLoop accepts connections of one listener until it is closed. It never runs a
// handshake itself: each connection gets its own goroutine at once.
func (s *Socket) acceptLoop(ln *listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.l.Accept()
		if err != nil {
			if isClosedErr(err) || s.closedFlag.Load() {
				s.event(Event{Type: EventClosed, Endpoint: ln.resolved})
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		addr := sourceAddr(nc, s.opts.MaxConnsPerAddr)
		var refuse error
		switch {
		case s.nAccepted >= s.opts.MaxConns:
			refuse = fmt.Errorf("zmtp: MaxConns (%d) reached", s.opts.MaxConns)
		case addr != "" && s.perAddr[addr] >= s.opts.MaxConnsPerAddr:
			refuse = fmt.Errorf("zmtp: MaxConnsPerAddr (%d) reached for %s", s.opts.MaxConnsPerAddr, addr)
		}
		if refuse != nil {
			s.mu.Unlock()
			remote := nc.RemoteAddr().String()
			nc.Close()
			s.stats.refused.Add(1)
			s.event(Event{Type: EventRefused, Endpoint: ln.resolved, Remote: remote, Err: refuse})
			continue
		}
		s.nAccepted++
		if addr != "" {
			if s.perAddr == nil {
				s.perAddr = map[string]int{}
			}
			s.perAddr[addr]++
		}
		c := newConn(s, nc, ln.resolved)
		c.ln = ln
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.stats.accepted.Add(1)
		s.event(Event{Type: EventAccepted, Endpoint: ln.resolved, Remote: nc.RemoteAddr().String()})
		go func() {
			defer s.wg.Done()
			s.runConn(c)
			s.mu.Lock()
			s.nAccepted--
			if addr != "" {
				if s.perAddr[addr]--; s.perAddr[addr] == 0 {
					delete(s.perAddr, addr)
				}
			}
			s.mu.Unlock()
		}()
	}
}

// sourceAddr returns the source IP of an accepted tcp connection when connections are limited
// per address (limit > 0), else "".
func sourceAddr(nc net.Conn, limit int) string {
	if limit <= 0 {
		return ""
	}
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// dialLoop dials one Connect endpoint until cancelled, with backoff.
func (s *Socket) dialLoop(d *dialer) {
	defer s.wg.Done()
	backoff := s.opts.ReconnectInterval
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.stats.reconnect.Add(1)
		}
		nc, err := d.e.dial(d.ctx)
		if err != nil {
			if d.ctx.Err() != nil {
				return
			}
			s.event(Event{Type: EventConnectFailed, Endpoint: d.ep, Err: err})
		} else {
			c := newConn(s, nc, d.ep)
			c.d = d
			s.mu.Lock()
			if s.closed || d.ctx.Err() != nil {
				s.mu.Unlock()
				nc.Close()
				c.fr.release()
				return
			}
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			start := time.Now()
			if s.runConn(c) && time.Since(start) >= backoff {
				// Only a connection that lasted at least the current wait resets the backoff: a
				// peer that completes the handshake and closes at once (a ROUTER refusing the
				// identity, a server at its connection limit) is redialled ever more slowly,
				// not every ReconnectInterval.
				backoff = s.opts.ReconnectInterval
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
			s.event(Event{Type: EventClosed, Endpoint: d.ep})
			return
		}
		backoff = min(2*backoff, s.opts.ReconnectIntervalMax)
	}
}

// errIdentityInUse refuses a ROUTER peer whose identity is taken (without RouterHandover).
var errIdentityInUse = errors.New("zmtp: routing identity already in use")

// runConn runs one connection from handshake to close on the calling goroutine (which then
// is the connection's reader), and reports whether the handshake succeeded.
func (s *Socket) runConn(c *conn) bool {
	nc := c.nc
	remote := nc.RemoteAddr().String()
	_ = nc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	info, err := runHandshake(nc, c.fr, s.typ, s.opts.Identity, s.opts.Security, nc.RemoteAddr())
	if err != nil {
		s.stats.hsFail.Add(1)
		if isTimeoutErr(err) {
			err = fmt.Errorf("%w: deadline %v passed", err, s.opts.HandshakeTimeout)
		}
		s.event(Event{Type: EventHandshakeFailed, Endpoint: c.ep, Remote: remote, Err: err})
		s.dropConn(c, err)
		return false
	}
	_ = nc.SetDeadline(time.Time{})
	c.peerType, c.minor = info.typeName, info.minor
	c.fr.cz, c.wq.cz, c.curveKey = info.cipher, info.cipher, info.curveKey // before the writer starts
	c.plain, c.plainUser = info.plain, info.plainUser
	c.fr.dl = nc
	if rr := newRawReader(nc); rr != nil {
		c.fr.rd = rr // after the handshake, which reads through nc (direct.go says why)
	}
	if s.opts.HeartbeatInterval > 0 {
		// Every peer, 3.0 included (see Options.HeartbeatTimeout).
		c.fr.timeout = s.opts.HeartbeatTimeout
	}
	if err := s.attach(c, info.identity); err != nil {
		s.stats.refused.Add(1)
		s.event(Event{Type: EventRefused, Endpoint: c.ep, Remote: remote, Identity: info.identity, Err: err})
		s.dropConn(c, err)
		return false
	}
	s.event(Event{Type: EventConnected, Endpoint: c.ep, Remote: remote, Identity: c.id})
	if s.typ == Router && s.opts.RouterNotify&NotifyConnect != 0 {
		s.notify(c, NotifyConnect)
	}
	err = c.readLoop()
	proto, hbTimeout := isProtocolErr(err), !isProtocolErr(err) && isTimeoutErr(err) && !s.closedFlag.Load()
	if hbTimeout && c.minor == 0 {
		err = fmt.Errorf("zmtp: heartbeat timeout (ZMTP 3.0 peer, which has no PING, sent nothing): %w", err)
	} else if hbTimeout {
		err = fmt.Errorf("zmtp: heartbeat timeout: %w", err)
	}
	c.shutdown(err)
	<-c.writerDone
	if s.typ == Router && s.opts.RouterNotify&NotifyDisconnect != 0 {
		// Queued while the identity is still this connection's: a peer reconnecting with
		// it is refused until then, so its messages come after this notification.
		s.notify(c, NotifyDisconnect)
	}
	close(c.notified)
	s.detach(c)
	if s.typ == Pub {
		c.unsubscribeAll()
	}
	c.fr.release()
	// Counted once the peer has left Stats.Peers, so that a reader who sees the count
	// also sees the peer gone.
	switch {
	case proto:
		s.stats.proto.Add(1)
	case hbTimeout:
		s.stats.hbTimeout.Add(1)
	}
	if c.closeErr != nil && c.closeErr != err {
		err = c.closeErr
	}
	s.event(Event{Type: EventDisconnected, Endpoint: c.ep, Remote: remote, Identity: c.id, Err: err})
	return true
}

// dropConn ends a connection that never became ready.
func (s *Socket) dropConn(c *conn, err error) {
	c.shutdown(err)
	close(c.writerDone)
	close(c.notified)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.fr.release()
}

// attach makes a connection ready: ROUTER identity (generated or the peer's; refused or taken
// over when in use), peer list for Send, writer started, SUB subscriptions sent.
func (s *Socket) attach(c *conn, peerID []byte) error {
	if s.typ == Sub {
		s.subMu.Lock() // so a concurrent Subscribe is sent exactly once to this peer
		defer s.subMu.Unlock()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.typ == Router {
		if err := s.route(c, peerID); err != nil {
			s.mu.Unlock()
			return err
		}
	} else {
		c.id = peerID
	}
	s.ready = append(s.ready, c)
	snap := append([]*conn(nil), s.ready...)
	s.peers.Store(&snap)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.writeLoop()
	}()
	if s.typ == Sub {
		for _, p := range s.subs.prefixes() {
			c.sendSubscription(p, true)
		}
	}
	s.sendWait.wakeAll() // senders waiting for a peer
	return nil
}

// errTakenOver ends a ROUTER connection whose identity a new connection took over.
var errTakenOver = errors.New("zmtp: identity taken over by a new connection")

// route gives a ROUTER connection its identity: the peer's, or a generated one when it sent
// none. An identity in use is refused, or taken over with RouterHandover. With disconnect
// notifications, a takeover first waits (without the locks) until the old connection's
// notification is queued, so that the new connection's messages come after it. Called with
// mu held; it may release and retake it.
func (s *Socket) route(c *conn, peerID []byte) error {
	for {
		id := peerID
		s.rmu.Lock()
		if s.opts.RouterAssignIdentities {
			id = assignedIdentity()
		} else if len(id) == 0 {
			for {
				var b [5]byte
				binary.BigEndian.PutUint32(b[1:], s.nextID)
				s.nextID++
				if s.routes[string(b[:])] == nil {
					id = b[:]
					break
				}
			}
		}
		if old := s.routes[string(id)]; old != nil {
			if !s.opts.RouterHandover {
				s.rmu.Unlock()
				return fmt.Errorf("%w: %q", errIdentityInUse, id)
			}
			old.shutdown(errTakenOver)
			if s.opts.RouterNotify&NotifyDisconnect != 0 && !isClosedChan(old.notified) {
				s.rmu.Unlock()
				s.mu.Unlock()
				select {
				case <-old.notified:
				case <-s.closing:
				}
				s.mu.Lock()
				if s.closed {
					return ErrClosed
				}
				continue
			}
			delete(s.routes, string(id))
			s.q.handOver(old, c) // what old queued comes first
		} else {
			s.q.adopt(c, id) // what a gone connection with this identity queued comes first
		}
		s.routes[string(id)] = c
		s.rmu.Unlock()
		c.id = id
		return nil
	}
}

// assignedIdentityLen is the length of an identity a ROUTER makes with RouterAssignIdentities:
// a zero byte (as libzmq's generated identities, which no peer's own can be), then 16 random
// bytes.
const assignedIdentityLen = 17

// assignedIdentity returns a fresh identity that nobody can predict (crypto/rand.Read does not
// fail: it crashes the program when the system has no randomness to give). Two are equal with
// probability 2^-128, and route checks anyway.
func assignedIdentity() []byte {
	id := make([]byte, assignedIdentityLen)
	_, _ = crand.Read(id[1:])
	return id
}

func isClosedChan(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// notify queues a ROUTER notification for c ([identity, ""], see Options.RouterNotify),
// waiting for room in the receive queue whatever the connection's state: it is dropped only
// when the socket closes.
func (s *Socket) notify(c *conn, kind Notify) {
	m := AcquireMsg()
	m.buf = append(m.buf, c.id...)
	m.endFrame()
	m.endFrame()
	m.setFrames()
	m.note = kind
	one := [1]*Msg{m}
	if s.opts.Handler != nil {
		s.handle(one[:])
		return
	}
	_ = s.push(c.lane, one[:])
}

// handle passes a batch to Options.Handler, or drops it once Close has begun.
func (s *Socket) handle(batch []*Msg) {
	if s.closedFlag.Load() {
		releaseAll(batch)
		return
	}
	s.opts.Handler(batch)
	clear(batch)
}

// detach removes a closed connection from the socket.
func (s *Socket) detach(c *conn) {
	s.mu.Lock()
	for i, p := range s.ready {
		if p == c {
			s.ready = append(s.ready[:i], s.ready[i+1:]...)
			break
		}
	}
	snap := append([]*conn(nil), s.ready...)
	s.peers.Store(&snap)
	if s.typ == Router {
		s.rmu.Lock()
		if s.routes[string(c.id)] == c {
			delete(s.routes, string(c.id))
		}
		s.rmu.Unlock()
		s.q.orphan(c) // under mu: a connection taking the identity finds the lane
	}
	delete(s.conns, c)
	s.mu.Unlock()
	s.sendWait.wakeAll() // senders waiting on this peer learn it is gone
}

// deliver queues a batch of c's received messages for Recv, waiting while the queue is full
// (the connection then reads nothing more: backpressure). It consumes the batch.
func (s *Socket) deliver(c *conn, batch []*Msg) error {
	idLen := 0
	if s.typ == Router {
		idLen = len(c.id)
	}
	// Sizes are read before pushing: once queued, a message belongs to Recv's caller.
	size := 0
	for _, m := range batch {
		size += len(m.buf) - idLen
	}
	s.stats.msgsIn.Add(uint64(len(batch)))
	s.stats.bytesIn.Add(uint64(size))
	if s.opts.Handler != nil {
		s.handle(batch)
		return nil
	}
	return s.push(c.lane, batch)
}

// push queues messages in lane l for Recv, waiting while there is no room for them. A connection's complete
// messages are queued even when the connection closes meanwhile (as libzmq keeps a dead
// peer's pipe readable): only Close drops them. It consumes the batch: messages it could not
// queue are released.
func (s *Socket) push(l *recvLane, batch []*Msg) error {
	for len(batch) > 0 {
		k, ch, ok := s.q.push(l, batch)
		if !ok {
			releaseAll(batch)
			return ErrClosed
		}
		if k > 0 {
			batch = batch[k:]
			continue
		}
		<-ch // woken by room, or by the queue's close (Close)
		s.q.spaceWait.done(ch)
	}
	return nil
}

// maxFreeBytes bounds the buffer memory a socket's free list keeps. Without it, a burst of
// large messages (a broker receiving batches of a thousand tasks: ~50 KB each) would leave up
// to 2×RecvHWM such buffers pinned once the burst is over (measured: 27-57 MB with a million
// tasks queued through a broker).
const maxFreeBytes = 8 << 20

// putFree takes back a released message that this socket's reader made. A per-socket free
// list costs one uncontended lock per message where sync.Pool, with Put and Get on different
// goroutines (Recv's caller and the connection's reader), costs a steal from another P. The
// list is bounded (2×RecvHWM messages, maxFreeBytes of buffers); past it, messages go to the
// shared pool, which the GC empties.
func (s *Socket) putFree(m *Msg) bool {
	s.freeMu.Lock()
	if len(s.free) >= 2*s.opts.RecvHWM || s.freeBytes+cap(m.buf) > maxFreeBytes {
		s.freeMu.Unlock()
		return false
	}
	s.free = append(s.free, m)
	s.freeBytes += cap(m.buf)
	s.freeMu.Unlock()
	return true
}

// takeFree moves up to cap(dst)-len(dst) free messages into dst.
func (s *Socket) takeFree(dst []*Msg) []*Msg {
	s.freeMu.Lock()
	n := min(cap(dst)-len(dst), len(s.free))
	k := len(s.free) - n
	for _, m := range s.free[k:] {
		s.freeBytes -= cap(m.buf)
	}
	dst = append(dst, s.free[k:]...)
	clear(s.free[k:])
	s.free = s.free[:k]
	s.freeMu.Unlock()
	return dst
}

func releaseAll(ms []*Msg) {
	for i, m := range ms {
		m.Release()
		ms[i] = nil
	}
}
