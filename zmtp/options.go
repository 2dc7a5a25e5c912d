package zmtp

import (
	"fmt"
	"log/slog"
	"time"
)

// SocketType is the kind of a socket (rfc.zeromq.org/spec/28 and 29). Its String is the name
// sent in the READY command's Socket-Type property.
type SocketType uint8

// The socket types this package implements. The zero value is not a socket type.
const (
	// Req sends a request and waits for its reply, strictly alternating, to one peer at a time
	// (round-robin). It prepends the empty delimiter frame on send and strips it on receive.
	Req SocketType = iota + 1
	// Rep receives requests (fair-queued) and sends each reply back to the peer that asked,
	// with the request's envelope.
	Rep
	// Dealer sends round-robin to its connected peers and receives from all of them.
	Dealer
	// Router addresses peers by routing identity: Recv prepends the sender's identity, Send
	// takes the destination from the first frame.
	Router
	// Pub sends every message to each subscriber whose subscription is a prefix of the
	// message's first frame; it never blocks, dropping for subscribers past their HWM.
	Pub
	// Sub receives the messages of the publishers it is connected to that match its
	// subscriptions.
	Sub
)

// String returns the socket type's name as on the wire ("ROUTER", "DEALER", ...).
func (t SocketType) String() string {
	switch t {
	case Req:
		return "REQ"
	case Rep:
		return "REP"
	case Dealer:
		return "DEALER"
	case Router:
		return "ROUTER"
	case Pub:
		return "PUB"
	case Sub:
		return "SUB"
	}
	return fmt.Sprintf("SocketType(%d)", uint8(t))
}

func (t SocketType) valid() bool { return t >= Req && t <= Sub }

// compatible reports whether a peer announcing the socket type name peer may talk to a socket
// of type t (rfc 28 and 29, as libzmq's mechanism_t::check_socket_type).
func (t SocketType) compatible(peer []byte) bool {
	p := string(peer) // no allocation: compared only
	switch t {
	case Req:
		return p == "REP" || p == "ROUTER"
	case Rep:
		return p == "REQ" || p == "DEALER"
	case Dealer:
		return p == "REP" || p == "DEALER" || p == "ROUTER"
	case Router:
		return p == "REQ" || p == "DEALER" || p == "ROUTER"
	case Pub:
		return p == "SUB" || p == "XSUB"
	case Sub:
		return p == "PUB" || p == "XPUB"
	}
	return false
}

// sendsIdentity reports whether READY carries the Identity property for this type (spec 37:
// REQ, DEALER and ROUTER).
func (t SocketType) sendsIdentity() bool { return t == Req || t == Dealer || t == Router }

// Defaults for the zero values of Options.
const (
	// DefaultSendHWM is Options.SendHWM's default, in messages per peer.
	DefaultSendHWM = 1000
	// DefaultRecvHWM is Options.RecvHWM's default, in messages per socket.
	DefaultRecvHWM = 1000
	// DefaultRecvHWMBytes is Options.RecvHWMBytes's default.
	DefaultRecvHWMBytes = 16 << 20
	// DefaultSendHWMBytes is Options.SendHWMBytes's default, in bytes per peer.
	DefaultSendHWMBytes = 16 << 20
	// DefaultSendHWMTotalBytes is Options.SendHWMTotalBytes's default, in bytes for all the
	// socket's peers together.
	DefaultSendHWMTotalBytes = 256 << 20
	// DefaultMaxMsgSize is Options.MaxMsgSize's default, in bytes.
	DefaultMaxMsgSize = 1 << 20
	// DefaultMaxFrames is Options.MaxFrames's default, in frames per message.
	DefaultMaxFrames = 128
	// DefaultHandshakeTimeout is Options.HandshakeTimeout's default.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxConns is Options.MaxConns's default.
	DefaultMaxConns = 1024
	// DefaultReconnectInterval is Options.ReconnectInterval's default.
	DefaultReconnectInterval = 100 * time.Millisecond
	// DefaultReconnectIntervalMax is Options.ReconnectIntervalMax's default.
	DefaultReconnectIntervalMax = 5 * time.Second
	// MaxSubscriptions bounds the subscriptions one SUB peer may hold on a PUB socket; a peer
	// asking for more has its connection closed as a protocol violation.
	MaxSubscriptions = 10000
	// DefaultMaxSubscriptionBytes is Options.MaxSubscriptionBytes's default.
	DefaultMaxSubscriptionBytes = 256 << 10
)

// Options configure a socket. The zero value works: every zero field takes the default written
// beside it.
type Options struct {
	// Identity is the routing identity sent in READY (REQ, DEALER and ROUTER only), at most 255
	// bytes. Default: none, and a ROUTER peer generates one (0x00 followed by a uint32).
	Identity []byte
	// SendHWM bounds each peer's send queue, in messages. Default 1000. Up to SendHWM messages
	// wait in the queue, plus those of the batch being written at that moment.
	SendHWM int
	// SendHWMBytes bounds each peer's send queue in bytes too (encoded messages, framing
	// included): a message that would take the queue past it counts as the HWM reached. A
	// message always fits an empty queue, whatever its size. Default 16 MiB; -1 removes the
	// bound (SendHWM alone then bounds the queue: up to SendHWM x message size bytes).
	SendHWMBytes int
	// SendHWMTotalBytes bounds the bytes in all the peers' send queues together, so that many
	// peers that do not read cannot hold SendHWMBytes each: a message that would take the total
	// past it counts as its peer's HWM reached (Send waits or fails as at SendHWM, PUB drops).
	// A message still always fits its peer's empty queue, so the total may pass the bound by
	// at most one message per peer. Default 256 MiB; -1 removes the bound.
	SendHWMTotalBytes int
	// RecvHWM bounds the socket's receive queue, in messages. Default 1000. When it is full the
	// connections stop reading, which pushes back on the peers through TCP. The queue is fair
	// between connections: Recv takes one message from each in turn, and a connection with
	// nothing queued may always queue one (so the bounds may be passed by one message per
	// connection, each already read).
	RecvHWM int
	// RecvHWMBytes bounds the receive queue in bytes too (the messages' buffers): once it
	// holds that much, the connections stop reading as when RecvHWM is reached, so a peer's
	// flood of large messages takes at most that much memory; it delays the other peers'
	// messages by one of its own (see RecvHWM). Default 16 MiB; -1 removes the bound.
	RecvHWMBytes int
	// MaxMsgSize bounds every incoming frame and message (the sum of its frames), in bytes.
	// Default 1 MiB. A peer announcing more is disconnected before anything is allocated for
	// it. -1 removes the limit (trusted peers only: memory is still only allocated as bytes
	// arrive, but a peer may then make a message as large as it likes).
	MaxMsgSize int64
	// MaxFrames bounds the frames of every incoming message (a ROUTER's identity frame not
	// counted). Default 128: far more than real peers use (an envelope of a few routing
	// frames, a delimiter and a body), while each frame costs about 32 bytes of bookkeeping
	// whatever its size, so a message of empty frames (2 bytes each on the wire) is cut off
	// at about 4 KiB. A peer sending more frames in one message is disconnected as a protocol
	// violation (Stats.ProtocolErrors) once the frame past the bound arrives. -1 removes the
	// bound (trusted peers only: MaxMsgSize does not count empty frames).
	MaxFrames int
	// MaxSubscriptionBytes bounds the bytes of the distinct prefixes one SUB peer holds on a
	// PUB socket. Default 256 KiB (MaxSubscriptions prefixes of 26 bytes): with MaxConns it bounds the subscriptions' memory (a prefix's
	// bytes are kept twice: in the peer's set and in the socket's tree). A subscription that
	// would take the peer past it is not recorded (Stats.SubsRefused): the peer does not get
	// that topic and keeps its other subscriptions. -1 removes the bound (MaxSubscriptions
	// prefixes of up to MaxMsgSize bytes each remain possible).
	MaxSubscriptionBytes int
	// HandshakeTimeout bounds the greeting plus the security handshake of each connection.
	// Default 5s. The handshake runs in the connection's own goroutine, so a silent peer only
	// holds its own connection slot.
	HandshakeTimeout time.Duration
	// MaxConns bounds the connections accepted at once by a bound socket (over all its Bind
	// endpoints, handshaking ones included). Default 1024. Past it, new connections are closed
	// at once and counted in Stats.Refused.
	MaxConns int
	// MaxConnsPerAddr bounds the connections a bound socket accepts at once from one source
	// IP address (tcp; ipc connections have no address and count only against MaxConns), so
	// one host cannot take every slot of MaxConns. Past it, new connections from that address
	// are closed at once and counted in Stats.Refused. Default 0: MaxConns alone. Peers behind
	// one NAT or proxy, and everything on loopback, share an address.
	MaxConnsPerAddr int
	// HeartbeatInterval is the ZMTP 3.1 PING interval: a PING goes out when an interval passed
	// with nothing sent or nothing received on the connection, and HeartbeatTimeout applies.
	// Default 0: no PINGs and no timeout (PINGs from the peer are always answered).
	HeartbeatInterval time.Duration
	// HeartbeatTimeout closes a connection from which nothing at all (data or command) arrived
	// for that long. Only used with HeartbeatInterval; default 3×HeartbeatInterval. It applies
	// to every peer: a ZMTP 3.0 peer, which has no PING to answer, must itself send something
	// (a message, or a 3.0 subscription on a PUB) within each HeartbeatTimeout, or it is
	// closed like a silent 3.1 peer; so with heartbeats on, an idle 3.0 peer does not hold a
	// connection slot forever, at the price of being disconnected when it is merely idle.
	HeartbeatTimeout time.Duration
	// HeartbeatTTL is the time-to-live sent in our PINGs: the peer should close the
	// connection if it hears nothing from us for that long. Default 0: none. Rounded to
	// deciseconds, at most 6553.5s. A peer's own TTL is always honoured.
	HeartbeatTTL time.Duration
	// ReconnectInterval is the first wait before a connecting socket redials after a failed
	// attempt or a lost connection. Default 100ms. It doubles after each failure up to
	// ReconnectIntervalMax and starts again after a connection that completed its handshake and
	// lasted at least the current wait (a peer that accepts and closes at once is redialled
	// ever more slowly).
	ReconnectInterval time.Duration
	// ReconnectIntervalMax bounds the reconnect backoff. Default 5s.
	ReconnectIntervalMax time.Duration
	// Security is the security mechanism. Default (nil): NULL.
	Security Mechanism
	// RouterHandover lets a new connection whose identity is already in use on a ROUTER take
	// it over (the old connection is closed), as ZMQ_ROUTER_HANDOVER. Default false: the new
	// connection is refused, as libzmq does.
	RouterHandover bool
	// RouterAssignIdentities makes a ROUTER ignore the identity a peer sends and give every
	// connection one of its own: a zero byte and 16 random bytes, new for each connection. No
	// peer can then take over, or lock out, another peer's identity by claiming it, and none
	// can predict another's. For a server whose peers need no stable identity across
	// reconnections (ZeroTask's broker). Default false: the peer's identity, as libzmq.
	RouterAssignIdentities bool
	// RouterNotify makes a ROUTER deliver a peer's connection and/or disconnection as a
	// message in its own receive stream, as libzmq's ZMQ_ROUTER_NOTIFY does: two frames, the
	// peer's routing identity and an empty frame. NotifyConnect comes before the peer's first
	// message; NotifyDisconnect after its last one (every message the peer completed is
	// delivered before it, also when the connection failed), once per connection that
	// completed its handshake. Msg.Notification tells such a message from a peer's own
	// two-frame message with an empty body, which libzmq cannot. A peer's identity stays in
	// use until its disconnection is queued, so a reconnecting peer with the same identity is
	// refused (or, with RouterHandover, waits) until then, and its messages always come after
	// the old connection's. Default 0: no notifications. Ignored by other socket types.
	RouterNotify Notify
	// Logger receives connection events at debug level. Default slog.Default().
	Logger *slog.Logger
	// Monitor, when set, is called for connection events. It runs on the connection's
	// goroutine and must not block.
	Monitor func(Event)
	// Handler, when set, takes the messages a ROUTER or DEALER receives in place of Recv: each
	// connection's reader calls it with the messages it has read, in order, a batch at a time
	// (every message complete in the read buffer, at most 64), so a message reaches its
	// consumer on the goroutine that read it, without the hand-off through the receive queue
	// (about a third of a lone request's trip through a process that receives, handles and
	// sends). Recv and RecvBatch then fail with ErrNotSupported. Connections call it
	// concurrently; each waits for its own call to return before reading on (backpressure
	// instead of RecvHWM). The handler owns the messages (Release each) but not the slice, and
	// must not call Close. RouterNotify notifications come through it too, after the
	// connection's last message. Messages read once Close has begun are dropped, as the
	// receive queue drops them.
	Handler func(msgs []*Msg)
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.SendHWM <= 0 {
		o.SendHWM = DefaultSendHWM
	}
	if o.RecvHWMBytes == 0 {
		o.RecvHWMBytes = DefaultRecvHWMBytes
	} else if o.RecvHWMBytes < 0 {
		o.RecvHWMBytes = -1
	}
	if o.RecvHWM <= 0 {
		o.RecvHWM = DefaultRecvHWM
	}
	if o.SendHWMBytes == 0 {
		o.SendHWMBytes = DefaultSendHWMBytes
	} else if o.SendHWMBytes < 0 {
		o.SendHWMBytes = 0 // no bound (conn.hwmBytes 0)
	}
	if o.SendHWMTotalBytes == 0 {
		o.SendHWMTotalBytes = DefaultSendHWMTotalBytes
	} else if o.SendHWMTotalBytes < 0 {
		o.SendHWMTotalBytes = 0 // no bound
	}
	if o.MaxMsgSize == 0 {
		o.MaxMsgSize = DefaultMaxMsgSize
	} else if o.MaxMsgSize < 0 {
		o.MaxMsgSize = -1
	}
	if o.MaxSubscriptionBytes == 0 {
		o.MaxSubscriptionBytes = DefaultMaxSubscriptionBytes
	} else if o.MaxSubscriptionBytes < 0 {
		o.MaxSubscriptionBytes = -1
	}
	if o.MaxFrames == 0 {
		o.MaxFrames = DefaultMaxFrames
	} else if o.MaxFrames < 0 {
		o.MaxFrames = -1
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConnsPerAddr < 0 {
		o.MaxConnsPerAddr = 0
	}
	if o.HeartbeatInterval < 0 {
		o.HeartbeatInterval = 0
	}
	if o.HeartbeatInterval > 0 && o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = 3 * o.HeartbeatInterval
	}
	if o.HeartbeatTTL < 0 {
		o.HeartbeatTTL = 0
	}
	if o.ReconnectInterval <= 0 {
		o.ReconnectInterval = DefaultReconnectInterval
	}
	if o.ReconnectIntervalMax <= 0 {
		o.ReconnectIntervalMax = DefaultReconnectIntervalMax
	}
	if o.ReconnectIntervalMax < o.ReconnectInterval {
		o.ReconnectIntervalMax = o.ReconnectInterval
	}
	if o.Security == nil {
		o.Security = Null()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Identity = append([]byte(nil), o.Identity...)
	return o
}

// Notify selects the notifications of Options.RouterNotify. Its values are libzmq's
// (ZMQ_NOTIFY_CONNECT, ZMQ_NOTIFY_DISCONNECT).
type Notify uint8

// The notifications a ROUTER can deliver in its receive stream.
const (
	// NotifyConnect delivers [identity, ""] when a peer completed its handshake.
	NotifyConnect Notify = 1
	// NotifyDisconnect delivers [identity, ""] after the last message of a peer whose
	// connection ended.
	NotifyDisconnect Notify = 2
)

// EventType is the kind of a connection event.
type EventType uint8

// Connection events, passed to Options.Monitor.
const (
	// EventListening: Bind succeeded; Endpoint is the resolved address.
	EventListening EventType = iota + 1
	// EventAccepted: a bound socket accepted a connection (the handshake is next).
	EventAccepted
	// EventConnected: a connection completed its handshake and carries messages; Identity is
	// the peer's routing identity (ROUTER: the one in use, generated when the peer sent none).
	EventConnected
	// EventDisconnected: a ready connection ended; Err says why.
	EventDisconnected
	// EventHandshakeFailed: the greeting or handshake failed or timed out; Err says why.
	EventHandshakeFailed
	// EventConnectFailed: a dial failed; the socket retries after its backoff.
	EventConnectFailed
	// EventRefused: a connection was closed at once (MaxConns or MaxConnsPerAddr reached, or a
	// ROUTER identity already in use without RouterHandover).
	EventRefused
	// EventClosed: a listener or dialer stopped (Close, Unbind, Disconnect).
	EventClosed
)

// String returns the event type's name.
func (e EventType) String() string {
	switch e {
	case EventListening:
		return "listening"
	case EventAccepted:
		return "accepted"
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventHandshakeFailed:
		return "handshake-failed"
	case EventConnectFailed:
		return "connect-failed"
	case EventRefused:
		return "refused"
	case EventClosed:
		return "closed"
	}
	return fmt.Sprintf("EventType(%d)", uint8(e))
}

// Event is a connection event passed to Options.Monitor.
type Event struct {
	Type     EventType
	Endpoint string // the Bind or Connect endpoint the connection belongs to
	Remote   string // the peer's address, when there is one
	Identity []byte // the peer's routing identity (EventConnected, EventDisconnected)
	Err      error  // why (failures and disconnections)
}

// Stats are a socket's counters, readable at any time (Socket.Stats).
type Stats struct {
	MsgsIn            uint64 // messages received from peers and queued for Recv
	MsgsOut           uint64 // messages written to peers
	BytesIn           uint64 // payload bytes of MsgsIn (frame bodies, without framing)
	BytesOut          uint64 // bytes written to peers, framing included
	Drops             uint64 // PUB messages not queued for a subscriber at its HWM
	SubsRefused       uint64 // PUB subscriptions not recorded: past the peer's MaxSubscriptionBytes
	Peers             int    // connections that completed their handshake and are open now
	Accepted          uint64 // connections accepted by bound endpoints
	Refused           uint64 // connections closed at once (MaxConns, MaxConnsPerAddr, identity in use)
	HandshakeFailures uint64 // greetings or handshakes that failed or timed out
	ProtocolErrors    uint64 // connections closed for a protocol violation (sizes included)
	HeartbeatTimeouts uint64 // connections closed because the peer went silent
	Reconnects        uint64 // dials made after the first one of each Connect
}
