// Package client is ZeroTask's Go client: it calls tasks through a broker, synchronously (Call,
// CallWith, CallRaw), asynchronously (Submit, with a Handle to wait on), or over many inputs at
// once (Map).
//
// A Client is one DEALER connected to the broker's ROUTER (or to several brokers' ROUTERs: see
// Several brokers), one reader goroutine and a table of pending calls keyed by JSON-RPC id. It is
// safe for use by many goroutines at once, and meant to be shared: one Client per process and
// broker (or set of brokers) is the usual shape.
//
// # Batching without added latency
//
// Every request is appended to an outgoing buffer. The goroutine that finds nobody sending
// sends it at once (a lone call leaves alone, immediately, from the caller's own goroutine);
// requests that arrive while a send is under way pile up and leave together as one JSON-RPC
// batch when the sender comes back for them. The client says `broker.hello` with
// `"unordered": true` on every new connection, so the broker answers batch members as they
// complete instead of holding a batch's answers until its slowest member is done. Map issues
// its requests many at a time and so always travels in batches.
//
// # Errors
//
// An error returned by the task, or by the broker, is a *codec.Error (also spelled
// *client.Error): its Code, Message and Data are what came on the wire; errors.As finds it, and
// errors.Is matches it against the codec sentinels by code (errors.Is(err,
// codec.ErrMethodNotFound)). Everything else is local: ErrClosed after Close,
// ErrConnectionLost when the connection dropped while the call was out (its outcome is then
// unknown: the task may or may not have run), ErrTooLarge, or the context's error.
//
// # Task options and deadlines
//
// Options passed after the params, to CallWith and Submit, set how the broker treats one task
// (docs/reliability.md): Delay and ETA (held by the broker until then), Priority and Queue,
// MaxAttempts and Backoff (retries), Timeout (a deadline), and, for Submit only, Key (a second
// submit with the same key returns the first task). The types say where each applies: a
// TaskOption goes to CallWith or Submit, a SubmitOption (Key) to Submit only. They travel as
// extension members of the request and are not params. The deadline of a task call's context travels too, as the time left
// ("timeout_ms"): the task expires if it is still queued then, and its handler's context ends
// then; CallRaw and Map carry it without allocating. The broker's error codes have sentinels
// (ErrQueueFull, ErrTooManyInFlight, ErrShuttingDown, ErrRevoked, ErrExpired, ErrNodeLost,
// ErrDeadline) that match a remote error by code with errors.Is.
//
// # Connection loss
//
// The DEALER reconnects by itself. When the connection drops, the calls sent on it fail with
// ErrConnectionLost at once (detected by the zmtp monitor, or by missed heartbeats when the
// broker hangs); calls made while the broker is away wait, each bounded by its context, and go
// out as soon as the connection is back. The Client does not have to be rebuilt. (With several
// endpoints, see below.)
//
// # Several brokers
//
// Dial takes a comma-separated list of endpoints ("tcp://10.0.0.1:5555,tcp://10.0.0.2:5555")
// for brokers that share one store (Redis), where a task's result can be read through any of
// them. The one DEALER connects to every endpoint, sends each message round robin over the
// connections that are up and receives from all; calls spread over the brokers. The client is
// connected while at least one connection is up, and Dial returns once any broker has answered
// a hello.
//
//   - Every new connection gets a broker.hello, but round robin may carry it to another broker,
//     so one broker may get two and another none. Nothing breaks: the hello only asks for
//     unordered replies and learns max_batch; a broker that got none answers a batch in one
//     reply once all its members are done (later for the quick ones, but the client reads it
//     all the same), and the client keeps the smallest max_batch announced (give the brokers
//     the same MaxBatch).
//   - When one connection drops while others stay up, the calls out at that moment fail with
//     ErrConnectionLost whichever broker they went to: the DEALER does not say which connection
//     a message took, so the client cannot tell the lost ones from the others (whose late
//     replies are then dropped). Retry such a call, or use Submit, whose Handle survives a lost
//     connection (its task survives its broker when the brokers share a store). Calls not yet
//     sent stay queued and go out on the connections that are up.
//   - Status, Wait, Revoke and a Handle's polls go to whichever broker round robin picks. A
//     broker that does not hold the task answers UNKNOWN, so with several endpoints an UNKNOWN
//     answer is asked again, with short pauses, and believed only when 8 answers per endpoint
//     in a row say so: a task really unknown everywhere takes a few seconds to be reported as
//     such (ErrUnknownTask). Revoke is asked again likewise until the broker that holds the
//     task answers.
//
// # Limits
//
//   - WithMaxInFlight (default 10,000, the broker's per-client default): calls waiting for
//     their answer. Past it, a call blocks until one of them completes or its context ends.
//     A call abandoned by its context frees its slot at once, though the broker still counts
//     the task until it is answered.
//   - Outgoing messages hold at most the broker's max_batch requests (1,024 by default, from
//     its hello reply; the smallest one announced, with several brokers) and at most
//     WithMaxMsgSize bytes (1 MiB), or the broker's max_msg_size when smaller; a single
//     request larger than that fails with ErrTooLarge.
//   - Handles learn of completion through `broker.result` long polls (WithPollWait, default
//     10s, per poll), one at a time per handle that something waits on; each takes an
//     in-flight slot while it is out.
//   - Map keeps at most MapConcurrency (default 1,000) inputs in flight.
//
// # Ownership
//
// CallRaw appends the raw JSON result to dst and returns it; params are copied before
// CallRaw returns. Handle.TryResult returns the handle's own bytes: do not modify them.
package client
