// Package zmtp is ZeroTask's own ZeroMQ engine: ZMTP 3.1 (rfc.zeromq.org/spec/23 and 37) over
// tcp and ipc, with the NULL, PLAIN (spec 24) and CURVE (spec 26, CurveZMQ; keys in Z85 as
// libzmq's and czmq's) security mechanisms, and the REQ, REP, DEALER,
// ROUTER (spec 28), PUB and SUB (spec 29) socket types. It talks to libzmq and to other ZMTP
// 3.0/3.1 implementations, and is payload-agnostic: frames are bytes.
//
// # What it owns
//
// Greeting and handshake, framing, socket semantics, connection management (bind, connect,
// reconnect with backoff), ZMTP 3.1 heartbeats (PING/PONG and TTL; with heartbeats on, a
// ZMTP 3.0 peer, which has no PING, must send something within each heartbeat timeout or it
// is closed), high-water marks, frame
// and message size limits, and write coalescing. It does not own the payload (see codec).
//
// # Ownership
//
// Send copies the frames before it returns: the caller keeps its message and buffers. Recv
// returns a pooled *Msg that the caller owns until it calls Release; frames must not be used
// after Release. AcquireMsg gives an empty pooled message for sending.
//
// # Limits (all in Options, each with a default)
//
//   - MaxMsgSize (1 MiB): a frame or message announced larger closes the connection before
//     anything is allocated for it; memory for a large frame grows only as its bytes arrive.
//   - MaxFrames (128 per message): one frame more closes the connection, so a message of
//     empty frames cannot cost more than about 4 KiB of bookkeeping; released messages keep
//     frame lists of at most 32 entries on the free list and in the pool.
//   - HandshakeTimeout (5s): greeting plus handshake; run on the connection's own goroutine,
//     never in the accept loop, so a silent client delays nobody else.
//   - MaxConns (1024): connections accepted at once by a bound socket; past it new ones are
//     closed at once and counted (Stats.Refused).
//   - MaxConnsPerAddr (off): connections accepted at once from one source IP address; past
//     it new ones from that address are closed at once and counted (Stats.Refused).
//   - HeartbeatInterval (off) and HeartbeatTimeout (3 intervals): with heartbeats on, every
//     connection silent past the timeout is closed, ZMTP 3.0 peers (no PING) included.
//   - SendHWM (1000 messages per peer) and SendHWMBytes (16 MiB per peer, framing included; a
//     message always fits an empty queue): DEALER/REQ/ROUTER/REP block (with the context) or
//     fail fast (TrySend); PUB drops for that subscriber and counts it (Stats.Drops).
//     SendHWMTotalBytes (256 MiB) bounds all the peers' queues together, so that many peers
//     that do not read cannot each hold SendHWMBytes; past it a peer counts as at its HWM.
//   - RecvHWM (1000 messages per socket): when full, connections stop reading (TCP
//     backpressure). The queue is fair: Recv takes one message from each connection in turn,
//     and a connection with nothing queued may always queue one, so a flooding peer delays
//     another's message by at most one of its own.
//   - MaxSubscriptions (10000 per SUB peer on a PUB).
//
// Protocol violations (bad greeting, unknown mechanism, malformed or unexpected command,
// reserved flag bits, a message before the handshake completed, ...) close that connection at
// once and are counted in Stats.ProtocolErrors or Stats.HandshakeFailures; the socket keeps
// serving its other peers.
//
// # Performance shape
//
// Each connection has at most two goroutines: a reader (the goroutine that accepted or dialed
// it, which also runs the handshake) and a writer. The reader parses frames in place from a
// pooled 64 KiB buffer and copies each complete message once into a pooled Msg, delivering
// batches to the socket's bounded receive ring under one lock. Send encodes straight into the
// peer's pending output under the connection's mutex (that output is the queue: 16 KiB chunks
// from a shared pool, so a filling queue never copies what it holds) and wakes the writer only
// when it is idle; the writer takes every queued chunk and writes them in one syscall (writev),
// so messages sent during a write leave together in the next one, while a lone message is
// written at once. RecvBatch hands a receive loop every queued message at once (one lock of the
// receive queue per burst, where Recv takes one per message). The steady-state send and
// receive paths allocate nothing.
//
// # Differences from libzmq
//
// A ROUTER always reports an unknown destination (ErrUnknownPeer; ZMQ_ROUTER_MANDATORY is
// always on). Close does not linger: queued messages not yet written are dropped, and so are
// the queued messages of a peer that disconnects (as in libzmq). A REQ whose peer disconnects
// before replying waits until its Recv context ends (no ZMQ_REQ_RELAXED). A PLAIN server
// refuses bad credentials with the ERROR command spelled as libzmq's PLAIN does ("^RROR",
// reason "400"), so libzmq clients report an authentication failure. SUB
// subscriptions go out as SUBSCRIBE/CANCEL commands to ZMTP 3.1 peers and as 0x01/0x00
// messages to ZMTP 3.0 peers; a PUB accepts both. A CURVE server refuses an unknown client key
// with an ERROR command (reason "400", as libzmq's ZAP refusal) after INITIATE, and checks more
// than libzmq does: HELLO's padding must be zero and the vouch must name the server's key.
//
// ROUTER notifications (Options.RouterNotify) are libzmq's ZMQ_ROUTER_NOTIFY: the same
// [identity, ""] messages in the receive stream, a disconnection after the peer's last
// message. Msg.Notification tells them from a peer's own empty message, and a connection's
// complete messages are delivered even when it fails while the receive queue is full.
package zmtp
