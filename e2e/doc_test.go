// Package e2e holds ZeroTask's end-to-end tests: a broker, nodes and clients over tcp loopback,
// in this process and as the real `zerotask` binary (built once in TestMain), plus a libzmq
// client (Debian's python3-zmq) speaking plain JSON-RPC. Every test binds 127.0.0.1 only, stops
// what it starts in its cleanup (child processes are killed by PID) and is bounded in time.
package e2e
