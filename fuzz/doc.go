// Package fuzz holds ZeroTask's cross-layer fuzz targets and their seed corpus: raw bytes go in
// as a peer would put them on a connection, and travel the whole stack, ZMTP framing, the
// JSON-RPC codec, the dispatcher and the broker's routing state, without a network. The
// per-package targets (FuzzScan in codec, FuzzFrameReader in zmtp, FuzzHandle in broker, ...)
// stay beside their code; the ones here check what only the layers together can break.
//
// FuzzStack feeds a client's ZMTP frames to the broker (broker.Engine, as its ROUTER would
// deliver them), hands every task the broker sends to a node's dispatcher (dispatch.ServeFrame
// with the node's builtins) and feeds the node's answers back, and checks that nothing panics,
// that every message the broker sends is valid JSON-RPC, and that its queues stay within their
// bounds.
//
// The ZMTP framing goes through zmtp.Decoder (frames.go): the frame reader, limits and protocol
// checks of a real connection, without the connection.
package fuzz
