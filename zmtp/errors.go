package zmtp

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these with %w, so callers test
// them with errors.Is.
var (
	// ErrClosed is returned by every call on a closed socket, and by pending Send and Recv
	// calls when Close runs.
	ErrClosed = errors.New("zmtp: socket closed")
	// ErrUnknownPeer is returned by a ROUTER's Send when no connected peer has the destination
	// identity (never connected, or gone). A ROUTER never drops such a message silently.
	ErrUnknownPeer = errors.New("zmtp: unknown peer")
	// ErrQueueFull is returned when the destination's send queue is at its high-water mark and
	// the call may not wait (TrySend, or a context that is already done).
	ErrQueueFull = errors.New("zmtp: send queue full")
	// ErrNoPeer is returned by TrySend when no peer is connected.
	ErrNoPeer = errors.New("zmtp: no connected peer")
	// ErrMsgTooLarge reports a frame or message larger than Options.MaxMsgSize.
	ErrMsgTooLarge = errors.New("zmtp: message too large")
	// ErrTooManyFrames reports a message with more frames than Options.MaxFrames.
	ErrTooManyFrames = errors.New("zmtp: too many frames in a message")
	// ErrProtocol reports a ZMTP protocol violation by a peer; the connection is closed.
	ErrProtocol = errors.New("zmtp: protocol error")
	// ErrHandshake reports a failed greeting or security handshake (bad credentials, wrong
	// mechanism, incompatible socket type, deadline passed).
	ErrHandshake = errors.New("zmtp: handshake failed")
	// ErrNotSupported is returned by an operation the socket type does not have (Recv on a
	// PUB, Send on a SUB, Subscribe on anything but a SUB).
	ErrNotSupported = errors.New("zmtp: operation not supported by this socket type")
	// ErrState is returned when a REQ or REP socket is used out of its send/receive order.
	ErrState = errors.New("zmtp: operation not valid in the socket's current state")
	// ErrEndpoint reports an endpoint that cannot be parsed or is not bound/connected.
	ErrEndpoint = errors.New("zmtp: bad endpoint")
	// ErrBadOption reports an invalid Options value (for example an Identity over 255 bytes).
	ErrBadOption = errors.New("zmtp: bad option")
	// ErrEmptyMsg is returned by Send for a message without frames (or, on a ROUTER, without
	// a frame after the identity).
	ErrEmptyMsg = errors.New("zmtp: empty message")
)
