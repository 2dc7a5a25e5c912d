package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// Redis is the Store on a Redis server (6.2 or later: LPOP with a count). Results are keys
// with a TTL, queues are lists of task ids, queued and claimed tasks are hashes (a claimed
// one listed in a sorted set per owner), tasks stored by Hold are fields of a hash per owner,
// and owners' leases are one sorted set; the package doc has the key layout and the
// durability it gives.
//
// Puts, Holds and Acks from every caller go through one writer goroutine that sends whatever
// has gathered as one pipeline (one round trip for a batch of results, held tasks and acks),
// and each call returns once Redis has acknowledged its part. Claims, Requeues, Renews,
// Recovers, Locates, SetRunnings and Gets are single commands or scripts that
// rueidis pipelines automatically with whatever else is in flight.
type Redis struct {
	c rueidis.Client
	o Options
	w *writer
	s *subscriber

	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	leaseMS   string
	tokenMS   string        // how long a claim token is kept
	bad       atomic.Uint64 // records quarantined
	keyR      string        // prefix + "r:" (result keys)
	keyQ      string        // prefix + "q:" (queue lists)
}

// DialRedis connects to the Redis a "redis://[user:password@]host:port[/db]" URL names, with
// o as the base options (the URL's query parameters, as in Open, override them), and checks
// its maxmemory-policy (CheckMaxmemoryPolicy): a Redis that may evict the store's keys is
// refused. ctx bounds the connection and the check.
func DialRedis(ctx context.Context, rawURL string, o Options) (*Redis, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrURL, rawURL, err)
	}
	if u.Scheme != "redis" {
		return nil, fmt.Errorf("%w: %q: scheme must be redis", ErrURL, rawURL)
	}
	if o, err = queryOptions(u.Query(), o); err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrURL, rawURL, err)
	}
	u.RawQuery = ""
	co, err := rueidis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrURL, rawURL, err)
	}
	o = o.withDefaults()
	co.DisableCache = true // no client-side caching: results are read once, tasks by scripts
	co.ClientName = "zerotask"
	co.Dialer.Timeout = o.DialTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < co.Dialer.Timeout {
		co.Dialer.Timeout = max(time.Until(dl), time.Millisecond)
	}
	c, err := rueidis.NewClient(co)
	if err != nil {
		return nil, fmt.Errorf("store: connect to redis %s: %w", u.Host, err)
	}
	r := newRedis(c, o)
	if err := r.CheckMaxmemoryPolicy(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func newRedis(c rueidis.Client, o Options) *Redis {
	r := &Redis{
		c:       c,
		o:       o,
		closing: make(chan struct{}),
		leaseMS: strconv.FormatInt(max(o.Lease.Milliseconds(), 1), 10),
		tokenMS: strconv.FormatInt((2*o.Lease + time.Minute).Milliseconds(), 10),
		keyR:    o.Prefix + "r:",
		keyQ:    o.Prefix + "q:",
	}
	r.s = newSubscriber(r)
	r.w = newWriter(r)
	return r
}

// Client returns the rueidis client the store uses (for tools and tests; the store's keys are
// its own).
func (r *Redis) Client() rueidis.Client { return r.c }

// CheckMaxmemoryPolicy refuses a Redis whose maxmemory-policy may evict the store's keys.
//
// Only noeviction is accepted. Under an allkeys-* policy Redis may drop queued tasks and
// in-flight records when memory runs out: acknowledged tasks would vanish silently (the way
// asynq lost leases). The volatile-* policies evict only keys with a TTL, which here are the
// results: a result could vanish before its TTL while a client waits on it, so they are
// refused too. With noeviction a full Redis fails writes instead, and the store returns that
// error to the caller, who can refuse the task (queue full) rather than lose it.
func (r *Redis) CheckMaxmemoryPolicy(ctx context.Context) error {
	m, err := r.c.Do(ctx, r.c.B().ConfigGet().Parameter("maxmemory-policy").Build()).AsStrMap()
	if err != nil {
		return fmt.Errorf("store: read redis maxmemory-policy (CONFIG GET maxmemory-policy): %w", err)
	}
	policy, ok := m["maxmemory-policy"]
	if !ok {
		return fmt.Errorf("store: redis did not report its maxmemory-policy")
	}
	if policy != "noeviction" {
		return fmt.Errorf("%w: maxmemory-policy is %q, which lets Redis drop queued tasks or results "+
			"when memory is full; fix it with `redis-cli CONFIG SET maxmemory-policy noeviction` "+
			"(and `maxmemory-policy noeviction` in redis.conf, or `CONFIG REWRITE`, to keep it across restarts)",
			ErrEvictionPolicy, policy)
	}
	return nil
}

func (r *Redis) closedErr() error {
	select {
	case <-r.closing:
		return ErrClosed
	default:
		return nil
	}
}

// Put implements ResultStore: the results join the writer's next batch (SET PX and PUBLISH per
// result, in one script) and Put returns when Redis has acknowledged them.
func (r *Redis) Put(ctx context.Context, ttl time.Duration, results ...Result) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: ttl %v", ErrInvalid, ttl)
	}
	if len(results) == 0 {
		return r.closedErr()
	}
	op := acquireOp(opPut)
	op.ttl = strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	for i := range results {
		if results[i].ID == "" {
			releaseOp(op)
			return fmt.Errorf("%w: empty result id", ErrInvalid)
		}
		op.buf = appendResult(op.buf, &results[i])
		op.ends = append(op.ends, len(op.buf))
		op.ids = append(op.ids, results[i].ID)
		if k := results[i].Key; k != "" {
			for len(op.keys) < i {
				op.keys = append(op.keys, "")
			}
			op.keys = append(op.keys, k)
		}
		if o := results[i].Owner; o != "" {
			for len(op.owners) < i {
				op.owners = append(op.owners, "")
			}
			op.owners = append(op.owners, o)
		}
	}
	op.n = len(results)
	return r.w.do(ctx, op)
}

// Get implements ResultStore.
func (r *Redis) Get(ctx context.Context, id string, dst *Result) (bool, error) {
	if err := r.closedErr(); err != nil {
		return false, err
	}
	v, err := r.c.Do(ctx, r.c.B().Get().Key(r.keyR+id).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: get result %q: %w", id, err)
	}
	if err := decodeResult(v, dst); err != nil {
		return false, fmt.Errorf("store: result %q: %w", id, err)
	}
	dst.ID = id
	return true, nil
}

// Wait implements ResultStore: it subscribes to the id's done channel, then reads the result;
// if it is not there yet, the PUBLISH of the Put that stores it (from any broker), or a local
// Put, wakes it. No polling.
func (r *Redis) Wait(ctx context.Context, id string, dst *Result) error {
	if err := r.closedErr(); err != nil {
		return err
	}
	e, err := r.s.acquire(ctx, id)
	if err != nil {
		return err
	}
	defer r.s.release(id, e)
	for {
		ch := r.s.wakeChan(e)
		found, err := r.Get(ctx, id, dst)
		if err != nil || found {
			return err
		}
		select {
		case <-ch: // a Put of id, a PUBLISH on its channel, or a resubscription: read again
		case <-ctx.Done():
			return ctx.Err()
		case <-r.closing:
			return ErrClosed
		}
	}
}

// Claim implements QueueStore (one script: expired owners' tasks given back first). A task
// whose record cannot be decoded is quarantined (see Quarantined), not returned: the rest of
// the claim goes on.
func (r *Redis) Claim(ctx context.Context, queue, owner, token string, n int, dst []Task) ([]Task, error) {
	if queue == "" || owner == "" || n <= 0 {
		return dst, fmt.Errorf("%w: claim of %d from queue %q by owner %q", ErrInvalid, n, queue, owner)
	}
	if err := r.closedErr(); err != nil {
		return dst, err
	}
	msgs, err := eval(ctx, r.c, scriptClaim, r.o.Prefix, queue, owner, strconv.Itoa(n), r.leaseMS, token, r.tokenMS).ToArray()
	if err != nil {
		return dst, fmt.Errorf("store: claim from %q: %w", queue, scriptErr(err))
	}
	if len(msgs)%4 != 0 {
		return dst, fmt.Errorf("%w: claim reply of %d items", ErrCorrupt, len(msgs))
	}
	now := time.Now()
	for i := 0; i < len(msgs); i += 4 {
		var t Task
		id, err1 := msgs[i].ToString()
		v, err2 := msgs[i+1].AsBytes()
		a, err3 := msgs[i+2].AsInt64()
		age, err4 := msgs[i+3].AsInt64()
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return dst, fmt.Errorf("%w: claim reply: %w", ErrCorrupt, err)
		}
		t.Age = time.Duration(max(age, 0)) * time.Millisecond
		if err := decodeTask(v, &t, now); err != nil {
			// A broken record cannot be run: set aside, never blocking the rest.
			r.quarantine(ctx, owner, id, err)
			continue
		}
		t.ID, t.Queue, t.Attempts = id, queue, int(a)
		dst = append(dst, t)
	}
	return dst, nil
}

// Hold implements QueueStore: the tasks join the writer's next batch (one script for every
// Hold in it) and Hold returns when Redis has acknowledged them. With no tasks it only renews
// owner's lease (Renew).
func (r *Redis) Hold(ctx context.Context, owner string, tasks ...Task) error {
	if owner == "" {
		return fmt.Errorf("%w: empty owner", ErrInvalid)
	}
	if len(tasks) == 0 {
		return r.Renew(ctx, owner)
	}
	now := time.Now()
	op := acquireOp(opHold)
	op.owner = owner
	for i := range tasks {
		t := &tasks[i]
		if t.ID == "" || t.Queue == "" {
			releaseOp(op)
			return fmt.Errorf("%w: task with an empty id or queue", ErrInvalid)
		}
		if t.Key != "" && t.KeyTTL <= 0 {
			releaseOp(op)
			return fmt.Errorf("%w: task %q: key without a positive KeyTTL", ErrInvalid, t.ID)
		}
		t.Bound, t.Taken = "", false
		op.buf = appendHeld(op.buf, i+1, t, now)
		op.ends = append(op.ends, len(op.buf))
		op.ids = append(op.ids, t.ID)
		if t.Key != "" {
			for len(op.keys) < i {
				op.keys = append(op.keys, "")
				op.keyTTLs = append(op.keyTTLs, "")
			}
			op.keys = append(op.keys, t.Key)
			op.keyTTLs = append(op.keyTTLs, strconv.FormatInt(max(t.KeyTTL.Milliseconds(), 1), 10))
		}
	}
	op.n = len(tasks)
	op.held = tasks
	return r.w.do(ctx, op)
}

// ownerCall checks the owner of a call and that the store is open.
func (r *Redis) ownerCall(owner string) error {
	if owner == "" {
		return fmt.Errorf("%w: empty owner", ErrInvalid)
	}
	return r.closedErr()
}

// SetRunning implements QueueStore: one script for all ids.
func (r *Redis) SetRunning(ctx context.Context, owner string, running bool, ids ...string) error {
	if err := r.ownerCall(owner); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	flag := "0"
	if running {
		flag = "1"
	}
	args := make([]string, 0, 3+len(ids))
	args = append(args, r.o.Prefix, owner, flag)
	args = append(args, ids...)
	if err := eval(ctx, r.c, scriptRunning, args...).Error(); err != nil {
		return fmt.Errorf("store: mark running: %w", err)
	}
	return nil
}

// Locate implements QueueStore: one script (the task's key, else the held hash that has it).
func (r *Redis) Locate(ctx context.Context, id string) (Where, string, error) {
	if id == "" {
		return WhereNone, "", fmt.Errorf("%w: empty task id", ErrInvalid)
	}
	if err := r.closedErr(); err != nil {
		return WhereNone, "", err
	}
	v, err := eval(ctx, r.c, scriptLocate, r.o.Prefix, id).AsStrSlice()
	if err != nil {
		return WhereNone, "", fmt.Errorf("store: locate task %q: %w", id, err)
	}
	if len(v) != 2 {
		return WhereNone, "", fmt.Errorf("%w: locate reply of %d items", ErrCorrupt, len(v))
	}
	switch v[0] {
	case "running":
		return WhereRunning, v[1], nil
	case "held":
		return WhereHeld, v[1], nil
	case "queued":
		return WhereQueued, "", nil
	case "none":
		return WhereNone, "", nil
	}
	return WhereNone, "", fmt.Errorf("%w: locate reply %q", ErrCorrupt, v[0])
}

// Ack implements QueueStore: the ids join the writer's next batch (one script for every Ack
// in it), so that many concurrent Acks share a round trip, and Ack returns when Redis has
// acknowledged them.
func (r *Redis) Ack(ctx context.Context, owner string, ids ...string) error {
	if owner == "" {
		return fmt.Errorf("%w: empty owner", ErrInvalid)
	}
	if len(ids) == 0 {
		return r.closedErr()
	}
	op := acquireOp(opAck)
	op.owner = owner
	op.ids = append(op.ids, ids...)
	op.n = len(ids)
	return r.w.do(ctx, op)
}

// Requeue implements QueueStore.
func (r *Redis) Requeue(ctx context.Context, owner string, ids ...string) error {
	if err := r.ownerCall(owner); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	args := make([]string, 0, 2+len(ids))
	args = append(args, r.o.Prefix, owner)
	args = append(args, ids...)
	if err := eval(ctx, r.c, scriptRequeue, args...).Error(); err != nil {
		return fmt.Errorf("store: requeue: %w", scriptErr(err))
	}
	return nil
}

// Register implements QueueStore.
func (r *Redis) Register(ctx context.Context, owner string, force bool) (string, int, error) {
	if err := r.ownerCall(owner); err != nil {
		return "", 0, err
	}
	f := "0"
	if force {
		f = "1"
	}
	v, err := eval(ctx, r.c, scriptRegister, r.o.Prefix, owner, r.leaseMS, f).ToArray()
	if err != nil {
		if re, ok := rueidis.IsRedisErr(err); ok && strings.HasPrefix(re.Error(), "OWNERLIVE") {
			ms, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(re.Error(), "OWNERLIVE")), 10, 64)
			return "", 0, &OwnerLiveError{Owner: owner, Left: time.Duration(ms) * time.Millisecond}
		}
		return "", 0, fmt.Errorf("store: register owner %q: %w", owner, scriptErr(err))
	}
	if len(v) != 2 {
		return "", 0, fmt.Errorf("%w: register reply of %d items", ErrCorrupt, len(v))
	}
	run, err1 := v[0].ToString()
	n, err2 := v[1].AsInt64()
	if err := errors.Join(err1, err2); err != nil {
		return "", 0, fmt.Errorf("%w: register reply: %w", ErrCorrupt, err)
	}
	return run, int(n), nil
}

// scriptErr maps a script's FENCED error to ErrFenced.
func scriptErr(err error) error {
	if re, ok := rueidis.IsRedisErr(err); ok && strings.HasPrefix(re.Error(), "FENCED") {
		return fmt.Errorf("%w (%s)", ErrFenced, re.Error())
	}
	return err
}

// quarantine sets aside the record of task id, which cannot be decoded (damaged, or written
// by an unknown version): its hash moves to <p>bad:<id>, out of owner's set, for an operator
// to look at; it is counted and logged (the first time, then every 1,000th).
func (r *Redis) quarantine(ctx context.Context, owner, id string, why error) {
	n := r.bad.Add(1)
	if n == 1 || n%1000 == 0 {
		r.o.Logger.Error("store: a task record cannot be decoded: moved aside", "id", id, "key", r.o.Prefix+"bad:"+id, "err", why, "quarantined", n)
	}
	if err := eval(ctx, r.c, scriptQuarantine, r.o.Prefix, owner, id).Error(); err != nil {
		r.o.Logger.Error("store: moving a damaged task record aside failed", "id", id, "err", err)
	}
}

// Lease returns the lease the store gives its owners (Options.Lease).
func (r *Redis) Lease() time.Duration { return r.o.Lease }

// Quarantined returns how many damaged records this store has moved aside.
func (r *Redis) Quarantined() uint64 { return r.bad.Load() }

// Renew implements QueueStore.
func (r *Redis) Renew(ctx context.Context, owner string) error {
	if err := r.ownerCall(owner); err != nil {
		return err
	}
	if err := eval(ctx, r.c, scriptRenew, r.o.Prefix, owner, r.leaseMS).Error(); err != nil {
		return fmt.Errorf("store: renew lease of %q: %w", owner, scriptErr(err))
	}
	return nil
}

// Recover implements QueueStore.
func (r *Redis) Recover(ctx context.Context, owner string) (int, error) {
	if err := r.closedErr(); err != nil {
		return 0, err
	}
	n, err := eval(ctx, r.c, scriptRecover, r.o.Prefix, owner).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("store: recover tasks of %q: %w", owner, err)
	}
	return int(n), nil
}

// Waiting returns how many ids have a Wait of this store subscribed to them.
func (r *Redis) Waiting() int {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	n := 0
	for _, e := range r.s.waits {
		if e.subscribed {
			n++
		}
	}
	return n
}

// Close implements Store: writes already handed to the writer are sent, blocked Waits return
// ErrClosed, and the connections are closed. Data stays in Redis.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		close(r.closing)
		r.w.stop()
		r.s.stop()
		r.c.Close()
	})
	return nil
}

// subscriber owns the pub/sub connection that Waits listen on: one SUBSCRIBE per waited id
// (shared by every Wait of this store on that id), an UNSUBSCRIBE when the last one leaves.
// Subscription changes are serialized by subMu (so an UNSUBSCRIBE never overtakes a newer
// SUBSCRIBE of the same id); the table is guarded by mu, which is never held across a
// network call. Lock order: subMu, then mu.
type subscriber struct {
	r *Redis

	subMu  sync.Mutex
	dc     rueidis.DedicatedClient // nil until the first Wait, and after a broken connection
	dcFree func()
	dcErr  <-chan error
	quit   chan struct{}  // closed by stop
	wg     sync.WaitGroup // watcher goroutines

	mu    sync.Mutex
	waits map[string]*rwait
}

// rwait is the entry of one waited id. ch is closed (and replaced) at every wake-up; n counts
// the Waits on the id; subscribed says the SUBSCRIBE on the current connection is confirmed.
type rwait struct {
	ch         chan struct{}
	n          int
	subscribed bool
}

func newSubscriber(r *Redis) *subscriber {
	return &subscriber{r: r, waits: make(map[string]*rwait), quit: make(chan struct{})}
}

func (s *subscriber) channel(id string) string { return s.r.o.Prefix + "done:" + id }

// acquire registers a Wait on id and returns once the id's channel is subscribed.
func (s *subscriber) acquire(ctx context.Context, id string) (*rwait, error) {
	s.mu.Lock()
	e := s.waits[id]
	if e == nil {
		e = &rwait{ch: make(chan struct{})}
		s.waits[id] = e
	}
	e.n++
	s.mu.Unlock()

	s.subMu.Lock()
	err := s.subscribeLocked(ctx, id, e)
	s.subMu.Unlock()
	if err != nil {
		s.release(id, e)
		return nil, err
	}
	return e, nil
}

// subscribeLocked subscribes to id's channel unless e already is (subMu held).
func (s *subscriber) subscribeLocked(ctx context.Context, id string, e *rwait) error {
	if err := s.connectLocked(); err != nil {
		return err
	}
	s.mu.Lock()
	need := !e.subscribed
	s.mu.Unlock()
	if !need {
		return nil
	}
	if err := s.dc.Do(ctx, s.dc.B().Subscribe().Channel(s.channel(id)).Build()).Error(); err != nil {
		return fmt.Errorf("store: subscribe to the result of %q: %w", id, err)
	}
	s.mu.Lock()
	e.subscribed = true
	s.mu.Unlock()
	return nil
}

// wakeChan returns the channel that the next wake-up of e closes.
func (s *subscriber) wakeChan(e *rwait) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.ch
}

// fire wakes every Wait on id (a local Put or a message).
func (s *subscriber) fire(id string) {
	s.mu.Lock()
	if e := s.waits[id]; e != nil {
		close(e.ch)
		e.ch = make(chan struct{})
	}
	s.mu.Unlock()
}

// release ends a Wait on id; the last one unsubscribes. Called without subMu.
func (s *subscriber) release(id string, e *rwait) {
	s.mu.Lock()
	e.n--
	last := e.n == 0
	if last {
		delete(s.waits, id)
	}
	s.mu.Unlock()
	if !last {
		return
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	again := s.waits[id] != nil // a new Wait on id came meanwhile: its subscription stands
	subscribed := e.subscribed
	s.mu.Unlock()
	if again || !subscribed || s.dc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A failed UNSUBSCRIBE leaves a subscription whose messages find no entry: harmless, and
	// gone with the connection.
	_ = s.dc.Do(ctx, s.dc.B().Unsubscribe().Channel(s.channel(id)).Build()).Error()
}

// connectLocked makes sure the pub/sub connection is up (subMu held). A new connection
// resubscribes every waited id and wakes every Wait, so that results stored while no
// connection listened are read.
func (s *subscriber) connectLocked() error {
	select {
	case <-s.quit:
		return ErrClosed
	default:
	}
	if s.dc != nil {
		select {
		case <-s.dcErr:
			s.dcFree()
			s.dc, s.dcFree, s.dcErr = nil, nil, nil
		default:
			return nil
		}
	}
	dc, free := s.r.c.Dedicate()
	errc := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) {
		s.fire(strings.TrimPrefix(m.Channel, s.r.o.Prefix+"done:"))
	}})
	s.dc, s.dcFree, s.dcErr = dc, free, errc
	s.mu.Lock()
	ids := make([]string, 0, len(s.waits))
	for id, e := range s.waits { // every waited id, also those whose SUBSCRIBE failed before
		e.subscribed = false
		ids = append(ids, id)
	}
	s.mu.Unlock()
	if len(ids) > 0 {
		chans := make([]string, len(ids))
		for i, id := range ids {
			chans[i] = s.channel(id)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := dc.Do(ctx, dc.B().Subscribe().Channel(chans...).Build()).Error()
		cancel()
		if err != nil {
			free()
			s.dc, s.dcFree, s.dcErr = nil, nil, nil
			return fmt.Errorf("store: resubscribe result channels: %w", err)
		}
		s.mu.Lock()
		for _, id := range ids {
			if e := s.waits[id]; e != nil {
				e.subscribed = true
			}
		}
		s.mu.Unlock()
	}
	s.wg.Add(1)
	go s.watch(errc)
	return nil
}

// watch waits for the pub/sub connection to break, then reconnects it (resubscribing and
// waking every Wait), retrying with a growing delay (10ms to 1s) until it succeeds, no Wait
// is left, or the store closes. One watcher runs per connection.
func (s *subscriber) watch(errc <-chan error) {
	defer s.wg.Done()
	var err error
	select {
	case err = <-errc:
	case <-s.quit:
		return
	}
	s.r.o.Logger.Warn("store: redis pub/sub connection lost; reconnecting", "err", err)
	delay := 10 * time.Millisecond
	for {
		select {
		case <-s.quit:
			return
		default:
		}
		s.subMu.Lock()
		if s.dcErr == errc { // still the broken connection: drop it
			s.dcFree()
			s.dc, s.dcFree, s.dcErr = nil, nil, nil
		}
		s.mu.Lock()
		n := len(s.waits)
		s.mu.Unlock()
		err = nil
		if n > 0 {
			err = s.connectLocked() // a Wait may have reconnected already: then a no-op
		}
		s.subMu.Unlock()
		if err == nil {
			s.wakeAll() // results stored while nothing listened are read now
			return
		}
		s.r.o.Logger.Debug("store: redis pub/sub reconnect failed; retrying", "err", err, "in", delay)
		select {
		case <-time.After(delay): // retry backoff, not synchronization
		case <-s.quit:
			return
		}
		delay = min(2*delay, time.Second)
	}
}

// wakeAll wakes every Wait: they read their result again.
func (s *subscriber) wakeAll() {
	s.mu.Lock()
	for _, e := range s.waits {
		close(e.ch)
		e.ch = make(chan struct{})
	}
	s.mu.Unlock()
}

func (s *subscriber) stop() {
	close(s.quit)
	s.subMu.Lock()
	if s.dc != nil {
		s.dcFree()
		s.dc, s.dcFree, s.dcErr = nil, nil, nil
	}
	s.subMu.Unlock()
	s.wg.Wait()
}
