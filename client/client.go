package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/brokerlink"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// Defaults of the options (package protocol's, but the poll wait).
const (
	DefaultEndpoint    = protocol.DefaultEndpoint
	DefaultMaxInFlight = protocol.DefaultMaxInFlightPerClient
	DefaultHeartbeat   = protocol.DefaultHeartbeatInterval
	DefaultPollWait    = 10 * time.Second
	DefaultMaxMsgSize  = protocol.DefaultMaxMsgSize
	DefaultMaxBatch    = protocol.DefaultMaxBatch
)

// Local errors. Remote errors are *codec.Error values (see Error).
var (
	// ErrClosed: the Client was closed (by Close) before or while the call ran.
	ErrClosed = errors.New("client: closed")
	// ErrConnectionLost: a connection to a broker dropped while the call was out; the task
	// may or may not have run. With several endpoints (see Dial) every call out at that moment
	// fails so, whichever broker it went to. Later calls use the connections that are up (or
	// the next one).
	ErrConnectionLost = errors.New("client: connection to broker lost")
	// ErrTooLarge: the request does not fit in one message (WithMaxMsgSize).
	ErrTooLarge = errors.New("client: request larger than the message size limit")
	// ErrUnknownTask: the broker does not know the task (never seen, forgotten after its
	// result TTL, or lost in a broker restart).
	ErrUnknownTask = errors.New("client: task unknown to the broker")
)

// The broker's and the node's error codes (docs/reliability.md) as sentinels: a remote
// *codec.Error matches one with errors.Is by code, whatever its message. They are package
// protocol's sentinels.
//
//	if errors.Is(err, client.ErrQueueFull) { /* back off and try again */ }
var (
	// ErrQueueFull (protocol.CodeQueueFull): the broker's queue limit is reached; nothing was
	// queued.
	ErrQueueFull = protocol.ErrQueueFull
	// ErrTooManyInFlight (protocol.CodeTooManyInFlight): this client has the broker's
	// per-client maximum of requests pending.
	ErrTooManyInFlight = protocol.ErrTooManyInFlight
	// ErrShuttingDown (protocol.CodeShuttingDown): the broker is shutting down.
	ErrShuttingDown = protocol.ErrShuttingDown
	// ErrRevoked (protocol.CodeRevoked): the task was revoked.
	ErrRevoked = protocol.ErrRevoked
	// ErrExpired (protocol.CodeExpired): the task's deadline passed before it ran.
	ErrExpired = protocol.ErrExpired
	// ErrNodeLost (protocol.CodeNodeLost): the task's node was lost and it had no attempt left.
	ErrNodeLost = protocol.ErrNodeLost
	// ErrDeadline (protocol.CodeDeadline): the task's deadline or time limit ended while it ran.
	ErrDeadline = protocol.ErrDeadline
)

// Error is a JSON-RPC error object returned by the broker or by the task: Code, Message and
// Data (raw JSON) as they came on the wire. errors.Is matches two of them by Code.
type Error = codec.Error

// Option configures a Client.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	maxInFlight int
	heartbeat   time.Duration
	security    zmtp.Mechanism
	pollWait    time.Duration
	maxMsgSize  int64
	maxBatch    int
}

// WithLogger sets the logger for connection events. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMaxInFlight bounds the calls waiting for their answer (default 10,000). Past it, a call
// blocks until another completes or its context ends.
func WithMaxInFlight(n int) Option { return func(o *options) { o.maxInFlight = n } }

// WithHeartbeat sets the ZMTP heartbeat interval (default 1s): a broker silent for three
// intervals is taken as lost, its calls fail with ErrConnectionLost and the client reconnects.
// A negative value turns heartbeats off.
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// WithPlain authenticates with ZMTP PLAIN credentials.
func WithPlain(user, pass string) Option {
	return func(o *options) { o.security = zmtp.PlainClient(user, pass) }
}

// WithCurve encrypts the connection with CURVE: server is the broker's public key, own this
// client's key pair (which the broker may check against its list of allowed keys).
func WithCurve(server zmtp.CurveKey, own zmtp.CurveKeyPair) Option {
	return func(o *options) { o.security = zmtp.CurveClient(server, own) }
}

// WithPollWait sets how long one broker.result long poll of a Handle waits (default 10s). A
// poll that ends before the task does is issued again at once.
func WithPollWait(d time.Duration) Option { return func(o *options) { o.pollWait = d } }

// WithMaxMsgSize bounds every message sent and received, in bytes (default 1 MiB, the broker's
// default frame limit).
func WithMaxMsgSize(n int64) Option { return func(o *options) { o.maxMsgSize = n } }

// WithMaxBatch bounds the requests packed in one message (default 1,024). The broker's own
// max_batch, from its hello reply, lowers it further when smaller.
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// Client is a connection to a ZeroTask broker, or to several (see Dial). It is safe for
// concurrent use.
type Client struct {
	opts     options
	endpoint string // as given to Dial (DefaultEndpoint for ""): one endpoint or a list
	// unknownTries is how many UNKNOWN answers in a row a task query takes as final: 1 with
	// one broker; with several, a broker that does not hold the task may say UNKNOWN while
	// another knows it (see taskCall).
	unknownTries int
	log          *slog.Logger
	sock         *zmtp.Socket
	slots        inflight // max in flight

	out outbox

	life  context.Context // ends at Close
	stop  context.CancelFunc
	wg    sync.WaitGroup
	hooks hookRunner

	ready     chan struct{} // closed at the first hello reply (or refusal)
	readyOnce sync.Once
	dialErr   error // the broker's refusal of the first hello, if it refused (set before ready closes)

	goMu    sync.Mutex // guards closing against wg.Add while Close waits
	closing bool
}

// spawn runs f on a goroutine that Close waits for; it reports false (and does not run f) once
// the client is closing.
func (c *Client) spawn(f func()) bool {
	c.goMu.Lock()
	defer c.goMu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// Dial connects to the broker's ROUTER at endpoint ("" means DefaultEndpoint) and returns once
// the broker has answered the client's hello, or fails when ctx ends first. Later outages do
// not need a new Dial: the client reconnects by itself.
//
// endpoint may list several brokers, separated by commas ("tcp://10.0.0.1:5555,
// tcp://10.0.0.2:5555"; spaces around the commas are ignored, an empty element or one listed
// twice is an error): the client's one DEALER connects to each, sends its requests round robin
// over the connections that are up and takes replies from all of them, and Dial returns once
// any broker has answered a hello. This is for brokers that share one store (Redis), where a
// task's result can be read through any of them. Each connection gets a hello, but round robin
// may carry it to another broker: harmless (see the package doc). When one connection drops,
// every call out at that moment fails with ErrConnectionLost, whichever broker it went to (the
// DEALER does not say which connection a message took): retry such a call, or use Submit,
// whose Handle survives. Calls not yet sent stay queued and go out on the other connections.
// Status, Wait, Revoke and Handles ask again when a broker answers UNKNOWN, since another may
// hold the task (see the package doc).
func Dial(ctx context.Context, endpoint string, opts ...Option) (*Client, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	endpoints, err := splitEndpoints(endpoint)
	if err != nil {
		return nil, err
	}
	o := options{
		maxInFlight: DefaultMaxInFlight,
		heartbeat:   DefaultHeartbeat,
		pollWait:    DefaultPollWait,
		maxMsgSize:  DefaultMaxMsgSize,
		maxBatch:    DefaultMaxBatch,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	switch {
	case o.maxInFlight < 1:
		return nil, fmt.Errorf("client: WithMaxInFlight(%d): must be at least 1", o.maxInFlight)
	case o.maxMsgSize < 256:
		return nil, fmt.Errorf("client: WithMaxMsgSize(%d): must be at least 256", o.maxMsgSize)
	case o.maxBatch < 1:
		return nil, fmt.Errorf("client: WithMaxBatch(%d): must be at least 1", o.maxBatch)
	case o.pollWait <= 0:
		return nil, fmt.Errorf("client: WithPollWait(%v): must be positive", o.pollWait)
	}
	hb := o.heartbeat
	if hb < 0 {
		hb = 0
	}
	c := &Client{
		opts:         o,
		endpoint:     endpoint,
		unknownTries: 1,
		log:          o.logger,
		ready:        make(chan struct{}),
	}
	if n := len(endpoints); n > 1 {
		c.unknownTries = unknownTriesPerBroker * n
	}
	c.slots.init(o.maxInFlight)
	c.life, c.stop = context.WithCancel(context.Background())
	c.out.init(c)
	c.hooks.init()
	c.sock = zmtp.NewDealer(zmtp.Options{
		HeartbeatInterval: hb,
		MaxMsgSize:        o.maxMsgSize,
		Security:          o.security,
		Logger:            o.logger,
		Monitor:           brokerlink.Monitor(c.log, "client", c.out.onConnect, c.out.onDisconnect),
		Handler:           c.receiveHandler(),
	})
	c.out.sock = c.sock
	for _, ep := range endpoints {
		if err := c.sock.Connect(ep); err != nil {
			c.sock.Close()
			c.stop()
			return nil, fmt.Errorf("client: dial %s: %w", ep, err)
		}
	}
	c.spawn(func() { c.out.loop(c.life) })
	c.spawn(func() { c.hooks.run(c.life) })
	select {
	case <-c.ready:
		if c.dialErr != nil {
			c.Close()
			return nil, fmt.Errorf("client: dial %s: hello refused: %w", endpoint, c.dialErr)
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("client: dial %s: no answer from a broker: %w", endpoint, ctx.Err())
	}
}

// splitEndpoints splits Dial's comma-separated endpoint list.
func splitEndpoints(list string) ([]string, error) {
	if !strings.Contains(list, ",") {
		if ep := strings.TrimSpace(list); ep != "" {
			return []string{ep}, nil
		}
		return nil, fmt.Errorf("client: dial %q: empty endpoint", list)
	}
	parts := strings.Split(list, ",")
	eps := make([]string, 0, len(parts))
	for i, p := range parts {
		ep := strings.TrimSpace(p)
		if ep == "" {
			return nil, fmt.Errorf("client: dial %q: endpoint %d of %d is empty", list, i+1, len(parts))
		}
		if slices.Contains(eps, ep) {
			return nil, fmt.Errorf("client: dial %q: %s listed twice", list, ep)
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// Close fails the calls still waiting with ErrClosed, closes the connection and waits for the
// client's goroutines. Close is idempotent.
func (c *Client) Close() error {
	if !c.out.close() {
		return nil
	}
	c.stop()
	c.sock.Close()
	c.goMu.Lock()
	c.closing = true
	c.goMu.Unlock()
	c.wg.Wait()
	return nil
}

// helloDone handles the hello reply (on the reader goroutine).
func (c *Client) helloDone(cl *call) {
	if cl.err != nil {
		var remote *codec.Error
		if errors.As(cl.err, &remote) {
			c.log.Error("client: broker refused hello", "err", cl.err)
			c.readyOnce.Do(func() {
				c.dialErr = cl.err
				close(c.ready)
			})
		}
		return
	}
	var reply struct {
		Broker     string `json:"broker"`
		MaxBatch   int    `json:"max_batch"`
		MaxMsgSize int64  `json:"max_msg_size"`
	}
	if err := codec.Unmarshal(cl.result, &reply); err != nil {
		c.log.Warn("client: bad hello reply", "err", err)
	}
	c.log.Debug("client: hello answered", "broker", reply.Broker, "max_batch", reply.MaxBatch)
	if reply.MaxBatch > 0 {
		c.out.setMaxBatch(reply.MaxBatch)
	}
	if reply.MaxMsgSize >= 256 {
		c.out.setMaxBytes(reply.MaxMsgSize)
	}
	c.readyOnce.Do(func() { close(c.ready) })
}

// receiveHandler returns the DEALER's receive handler: the broker's replies complete their
// calls on the connection's reader goroutine, which wakes each caller directly.
func (c *Client) receiveHandler() func([]*zmtp.Msg) {
	r := &reader{c: c, lim: codec.Limits{MaxFrame: int(c.opts.maxMsgSize)}}
	return brokerlink.Handler(r.ingest)
}

// reader turns reply messages into completed calls; it belongs to one DEALER reader at a time
// (brokerlink.Handler).
type reader struct {
	c   *Client
	lim codec.Limits
	h   codec.Header
	it  codec.BatchIter
}

func (r *reader) ingest(body []byte) {
	if i := codec.SkipSpace(body, 0); i >= len(body) || body[i] != '[' {
		if err := codec.ScanLimits(body, &r.h, &r.lim); err != nil {
			r.c.log.Warn("client: bad message from broker", "err", err, "bytes", len(body))
			return
		}
		r.one(&r.h)
		return
	}
	// An array is validated as it is walked, each element scanned once: the answers before a
	// fault past the first elements are delivered, the rest of the array is dropped.
	r.it.ResetLimits(body, &r.lim)
	for r.it.Next() {
		if h, err := r.it.Header(); err == nil {
			r.one(h)
		}
	}
	if err := r.it.Err(); err != nil {
		r.c.log.Warn("client: bad message from broker", "err", err, "bytes", len(body))
	}
}

func (r *reader) one(h *codec.Header) {
	if h.Kind == codec.KindNotification && string(h.Method) == protocol.MethodShutdown {
		// The broker stops: calls in flight are answered (or fail with the connection), and
		// the client reconnects by itself when a broker is back.
		r.c.log.Info("client: the broker is shutting down")
		return
	}
	if h.Kind != codec.KindResponse {
		return
	}
	id, ok := rawjson.ParseDigits(h.ID) // the client's own ids: unsigned integers
	if !ok {
		if h.Error != nil {
			// id null: the broker could not read a request of ours (or a whole batch).
			r.c.log.Error("client: broker rejected a message", "error", string(h.Error))
		}
		return
	}
	cl := r.c.out.take(id)
	if cl == nil {
		return // abandoned by its caller, or failed when the connection dropped
	}
	if h.Error != nil {
		cl.err = decodeError(h.Error)
	} else {
		cl.result = append(cl.result[:0], h.Result...)
	}
	cl.complete()
}

// decodeError turns a raw JSON-RPC error object into a *codec.Error.
func decodeError(raw []byte) *codec.Error {
	var e struct {
		Code    int          `json:"code"`
		Message string       `json:"message"`
		Data    rawJSONField `json:"data"`
	}
	if err := codec.Unmarshal(raw, &e); err != nil {
		return codec.NewError(codec.CodeInternalError, "client: undecodable error object: "+string(raw), nil)
	}
	return codec.NewError(e.Code, e.Message, e.Data)
}

// rawJSONField keeps a member's raw JSON (nil when absent).
type rawJSONField []byte

// UnmarshalJSON keeps a copy of the raw bytes.
func (r *rawJSONField) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}
