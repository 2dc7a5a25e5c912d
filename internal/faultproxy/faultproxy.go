// Package faultproxy is a TCP proxy for fault drills: it listens on a loopback port, dials a
// target for every connection it accepts, and copies bytes both ways with the network faults of
// /work/shared/FAULTS.md laid on them: an added delay each way, a cut at a random point (mid-frame,
// mid-handshake, between a request and its answer), a stall (a direction neither read nor
// written for a while), a half-open connection (one direction closed, the other flowing), and a
// switch that refuses new connections.
//
// Every fault ends by itself: delays are at most MaxDelay, stalls and half-open connections at
// most MaxStall, and an armed cut fires at the latest after its By bound. The random choices
// (delays, cut points, directions) come from a generator seeded with Config.Seed, one stream
// per connection and direction, so that a seed replays the same faults for the same traffic.
//
// It is a test tool: it binds loopback addresses and it never retries a failed dial (the
// accepted connection is closed instead, as a refused one would be).
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Dir names the directions of a proxied connection.
type Dir uint8

const (
	// Up is the direction from the accepted side (the peer that connected to the proxy) to the
	// target.
	Up Dir = 1 << iota
	// Down is the direction from the target to the accepted side.
	Down
	// Both is Up and Down.
	Both = Up | Down
)

func (d Dir) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Dir(%d)", uint8(d))
}

// Bounds of the faults: what a drill may ask for. They keep every fault bounded in time.
const (
	// MaxDelay is the longest delay SetDelay accepts, per direction.
	MaxDelay = time.Second
	// MaxStall is the longest Stall or HalfClose.
	MaxStall = time.Minute
	// DefaultCutBy is the time bound of a Cut whose By is zero.
	DefaultCutBy = 5 * time.Second
	// chunkSize is the most a pipe reads at once; maxChunks the chunks it holds (delayed or
	// stalled) before it stops reading its source.
	chunkSize = 64 << 10
	maxChunks = 4096
)

// Errors returned for faults out of their bounds.
var (
	ErrBadDelay = errors.New("faultproxy: delay out of bounds")
	ErrBadStall = errors.New("faultproxy: stall out of bounds")
	ErrBadDir   = errors.New("faultproxy: no direction")
	ErrClosed   = errors.New("faultproxy: closed")
)

// Config configures a Proxy. Target is required; the zero value of the rest works.
type Config struct {
	// Target is the address every accepted connection is forwarded to: "host:port", or a
	// ZeroTask endpoint "tcp://host:port".
	Target string
	// Listen is the address to listen on; default "127.0.0.1:0" (a free loopback port).
	Listen string
	// Seed seeds the random choices (delays, cut points and directions); the same seed gives
	// the same choices for the same sequence of connections and bytes.
	Seed uint64
	// DialTimeout bounds the dial to Target; default 5 s.
	DialTimeout time.Duration
}

// Cut describes where a cut falls. A cut closes both halves of the connection with a reset, as
// a dropped link or a dead host behind a firewall would look to the peers.
type Cut struct {
	// Dir is the direction(s) in which the cut point is counted: one of them, picked at
	// random; zero means Both.
	Dir Dir
	// Within: the cut falls after a random number of bytes in [0, Within) forwarded in that
	// direction from the moment it is armed (from the first byte for a new connection, so a
	// small Within falls in the ZMTP greeting or handshake). Zero cuts at once.
	Within int
	// By bounds the cut in time: if the bytes have not passed by then, the connection is cut
	// anyway. Zero means DefaultCutBy.
	By time.Duration
}

// Stats counts what the proxy did.
type Stats struct {
	Accepted uint64 // connections accepted and forwarded
	Refused  uint64 // connections closed at once (Refuse, or the target's dial failed)
	Cut      uint64 // connections cut by a Cut
	Open     int    // connections open now
	Up, Down uint64 // bytes forwarded each way
}

// Proxy is a running fault proxy. Its methods are safe for concurrent use.
type Proxy struct {
	cfg    Config
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	delayMin, delayMax atomic.Int64 // nanoseconds
	refuse             atomic.Bool
	accepted, refused  atomic.Uint64
	cut                atomic.Uint64
	bytes              [2]atomic.Uint64 // forwarded: [0] Up, [1] Down

	ctx    context.Context // ends at Close: bounds the dials
	cancel context.CancelFunc

	mu     sync.Mutex // guards what follows
	conns  map[*conn]struct{}
	next   uint64 // connections accepted so far: the next connection's stream number
	armNew []Cut  // cuts for the next connections, first first
	closed bool
}

// Start listens and starts forwarding. Close stops it.
func Start(cfg Config) (*Proxy, error) {
	target := strings.TrimPrefix(cfg.Target, "tcp://")
	if target == "" {
		return nil, errors.New("faultproxy: Config.Target is empty")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", strings.TrimPrefix(cfg.Listen, "tcp://"))
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{cfg: cfg, target: target, ln: ln, conns: map[*conn]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address the proxy listens on ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Endpoint returns the proxy's address as a ZeroTask endpoint ("tcp://127.0.0.1:port").
func (p *Proxy) Endpoint() string { return "tcp://" + p.Addr() }

// Close stops listening, closes every connection and waits for the proxy's goroutines. It is
// idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range conns {
		c.close(false)
	}
	p.wg.Wait()
	return err
}

// SetDelay delays every chunk of bytes, in each direction, by a random duration in [min, max]
// from the moment it arrives (as a link between two machines would: the bandwidth is not
// limited, and the order is kept). It applies to open connections too. 0, 0 removes the delay.
func (p *Proxy) SetDelay(min, max time.Duration) error {
	if min < 0 || max < min || max > MaxDelay {
		return fmt.Errorf("%w: [%v, %v], want 0 <= min <= max <= %v", ErrBadDelay, min, max, MaxDelay)
	}
	p.delayMin.Store(int64(min))
	p.delayMax.Store(int64(max))
	return nil
}

// Refuse switches the refusal of new connections: while on, a connection is closed (with a
// reset) as soon as it is accepted, before anything is read or the target dialled. Open
// connections are not touched.
func (p *Proxy) Refuse(on bool) { p.refuse.Store(on) }

// Stats returns the proxy's counts.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := len(p.conns)
	p.mu.Unlock()
	return Stats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), Cut: p.cut.Load(), Open: open,
		Up: p.bytes[0].Load(), Down: p.bytes[1].Load()}
}

// open returns the connections open now.
func (p *Proxy) open() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

// CutOpen arms cut on every open connection and returns how many it armed. A connection armed
// twice is cut at whichever point comes first.
func (p *Proxy) CutOpen(cut Cut) int {
	cs := p.open()
	for _, c := range cs {
		c.arm(cut)
	}
	return len(cs)
}

// CutNext arms cut on each of the next n connections the proxy accepts, counted from their
// first byte.
func (p *Proxy) CutNext(n int, cut Cut) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range n {
		p.armNew = append(p.armNew, cut)
	}
}

// Stall stops dir on every open connection for d: the proxy neither reads from the sending
// side (whose writes block once the socket buffers fill, as with a peer that stops reading) nor
// writes to the receiving side (which sees a peer that stops writing). Bytes already read are
// held and forwarded afterwards, in order. d is in (0, MaxStall].
func (p *Proxy) Stall(dir Dir, d time.Duration) (int, error) {
	until := time.Now().Add(d)
	return p.eachOpen(dir, d, func(pp *pipe) { pp.stall(until) }, nil)
}

// HalfClose closes dir on every open connection: the receiving side reads end-of-stream (a FIN)
// and whatever the sending side writes that way afterwards is read and dropped, while the other
// direction keeps flowing; after d (in (0, MaxStall]) the connection is cut, if its peers have
// not closed it by then. It returns how many connections it closed so.
func (p *Proxy) HalfClose(dir Dir, d time.Duration) (int, error) {
	return p.eachOpen(dir, d, func(pp *pipe) { pp.halfClose() }, func(c *conn) { c.cutBy(d) })
}

// eachOpen checks a timed fault's direction and span (d in (0, MaxStall]), then calls onPipe
// for every pipe of an open connection that runs in dir and, after those, after (when not nil)
// for the connection. It returns how many connections it touched.
func (p *Proxy) eachOpen(dir Dir, d time.Duration, onPipe func(*pipe), after func(*conn)) (int, error) {
	if d <= 0 || d > MaxStall {
		return 0, fmt.Errorf("%w: %v, want (0, %v]", ErrBadStall, d, MaxStall)
	}
	if dir&Both == 0 {
		return 0, ErrBadDir
	}
	cs := p.open()
	for _, c := range cs {
		for i, pp := range c.pipes {
			if dir&pipeDir(i) != 0 {
				onPipe(pp)
			}
		}
		if after != nil {
			after(c)
		}
	}
	return len(cs), nil
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			p.refused.Add(1)
			reset(in)
			continue
		}
		p.wg.Add(1)
		go p.forward(in)
	}
}

// forward dials the target for in and copies both ways until either side ends.
func (p *Proxy) forward(in net.Conn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: p.cfg.DialTimeout}
	out, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		p.refused.Add(1)
		reset(in)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		reset(in)
		reset(out)
		return
	}
	n := p.next
	p.next++
	var arm []Cut
	if len(p.armNew) > 0 {
		arm = append(arm, p.armNew[0])
		p.armNew = p.armNew[1:]
	}
	c := newConn(p, n, in, out)
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	p.accepted.Add(1)
	for _, cut := range arm {
		c.arm(cut)
	}
	c.run()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// reset closes c with a TCP reset rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// pipeDir is the direction of pipe i of a conn.
func pipeDir(i int) Dir { return Dir(1 << i) }

// conn is one proxied connection: in (accepted) and out (dialled), and a pipe each way.
type conn struct {
	p       *Proxy
	in, out net.Conn
	pipes   [2]*pipe // [0] Up (in -> out), [1] Down (out -> in)
	dead    chan struct{}

	mu     sync.Mutex // guards what follows
	rnd    *rand.Rand // the connection's choices: which direction a cut counts in
	timers []*time.Timer
	ended  bool
}

func newConn(p *Proxy, n uint64, in, out net.Conn) *conn {
	c := &conn{p: p, in: in, out: out, dead: make(chan struct{}), rnd: rand.New(rand.NewPCG(p.cfg.Seed, 3*n+1))}
	c.pipes[0] = &pipe{c: c, src: in, dst: out, rnd: rand.New(rand.NewPCG(p.cfg.Seed, 3*n+2)), cutAt: -1, count: &p.bytes[0]}
	c.pipes[1] = &pipe{c: c, src: out, dst: in, rnd: rand.New(rand.NewPCG(p.cfg.Seed, 3*n+3)), cutAt: -1, count: &p.bytes[1]}
	return c
}

// run copies both ways until both pipes end.
func (c *conn) run() {
	var wg sync.WaitGroup
	for _, pp := range c.pipes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pp.run()
		}()
	}
	wg.Wait()
	c.close(false)
}

// arm arms cut on c.
func (c *conn) arm(cut Cut) {
	dir := cut.Dir
	if dir&Both == 0 {
		dir = Both
	}
	by := cut.By
	if by <= 0 {
		by = DefaultCutBy
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	i := 0
	switch dir {
	case Down:
		i = 1
	case Both:
		i = c.rnd.IntN(2)
	}
	k := 0
	if cut.Within > 0 {
		k = c.rnd.IntN(cut.Within)
	}
	c.timers = append(c.timers, time.AfterFunc(by, func() { c.close(true) }))
	c.mu.Unlock()
	if k == 0 {
		c.close(true)
		return
	}
	c.pipes[i].armCut(int64(k))
}

// cutBy cuts c after d, unless it ended by then.
func (c *conn) cutBy(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ended {
		c.timers = append(c.timers, time.AfterFunc(d, func() { c.close(true) }))
	}
}

// close ends the connection (both sides reset); cut says a Cut did it.
func (c *conn) close(cut bool) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	for _, t := range c.timers {
		t.Stop()
	}
	close(c.dead)
	c.mu.Unlock()
	if cut {
		c.p.cut.Add(1)
	}
	reset(c.in)
	reset(c.out)
}

// chunk is bytes read from a pipe's source, due for writing at at.
type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies one direction of a conn.
type pipe struct {
	c        *conn
	src, dst net.Conn
	rnd      *rand.Rand     // delays; used by the reading goroutine only
	count    *atomic.Uint64 // the proxy's count of bytes forwarded this way

	mu         sync.Mutex // guards what follows
	stallUntil time.Time
	half       bool  // closed this way: drop what comes
	sent       int64 // bytes written to dst
	cutAt      int64 // cut once sent reaches it; -1: none armed
}

func (pp *pipe) stall(until time.Time) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if until.After(pp.stallUntil) {
		pp.stallUntil = until
	}
}

// halfClose passes an end-of-stream to dst at once and drops what comes from src afterwards.
func (pp *pipe) halfClose() {
	pp.mu.Lock()
	first := !pp.half
	pp.half = true
	pp.mu.Unlock()
	if first {
		closeWrite(pp.dst)
	}
}

func (pp *pipe) armCut(k int64) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if at := pp.sent + k; pp.cutAt < 0 || at < pp.cutAt {
		pp.cutAt = at
	}
}

// waitStall waits until no stall holds the pipe; false if the connection ended meanwhile.
func (pp *pipe) waitStall() bool {
	for {
		pp.mu.Lock()
		d := time.Until(pp.stallUntil)
		pp.mu.Unlock()
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-pp.c.dead:
			t.Stop()
			return false
		}
	}
}

// delay draws a chunk's delay.
func (pp *pipe) delay() time.Duration {
	lo, hi := pp.c.p.delayMin.Load(), pp.c.p.delayMax.Load()
	if hi <= 0 {
		return 0
	}
	if hi <= lo {
		return time.Duration(lo)
	}
	return time.Duration(lo + pp.rnd.Int64N(hi-lo+1))
}

// run reads src and hands chunks to a writer goroutine that writes them to dst when due.
func (pp *pipe) run() {
	q := make(chan chunk, maxChunks)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pp.write(q)
	}()
	buf := make([]byte, chunkSize)
	for {
		if !pp.waitStall() {
			break
		}
		n, err := pp.src.Read(buf)
		if n > 0 {
			select {
			case q <- chunk{b: append([]byte(nil), buf[:n]...), at: time.Now().Add(pp.delay())}:
			case <-pp.c.dead:
			}
		}
		if err != nil {
			break
		}
	}
	close(q)
	wg.Wait()
}

// write writes the chunks of q to dst, each when due, through stalls, cuts and a half-close;
// when src ends it passes the end on (a FIN) and leaves the other direction open.
func (pp *pipe) write(q <-chan chunk) {
	for ch := range q {
		if d := time.Until(ch.at); d > 0 {
			t := time.NewTimer(d) // the link's delay itself
			select {
			case <-t.C:
			case <-pp.c.dead:
				t.Stop()
			}
		}
		if !pp.waitStall() {
			continue // drain: the reader must not block
		}
		b := ch.b
		pp.mu.Lock()
		if pp.half {
			pp.mu.Unlock()
			continue
		}
		cut := false
		if pp.cutAt >= 0 && pp.sent+int64(len(b)) >= pp.cutAt {
			b = b[:pp.cutAt-pp.sent]
			cut = true
		}
		pp.sent += int64(len(b))
		pp.mu.Unlock()
		if len(b) > 0 {
			n, err := pp.dst.Write(b)
			pp.count.Add(uint64(n))
			if err != nil {
				pp.c.close(false)
				continue
			}
		}
		if cut {
			pp.c.close(true)
		}
	}
	// The source ended (EOF or error): pass the end on, the other direction keeps going until
	// its own source ends.
	closeWrite(pp.dst)
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	_ = c.Close()
}
