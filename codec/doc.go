// Package codec is ZeroTask's JSON-RPC 2.0 codec (https://www.jsonrpc.org/specification):
// requests, notifications, responses, errors and batches, with ids, params and results kept
// as raw JSON bytes and echoed back untouched.
//
// # Two tiers
//
// The fast tier is what the broker, node and client use on the hot path, and allocates nothing:
//
//   - Scan / ScanLimits validate one frame (JSON per RFC 8259 and JSON-RPC per the
//     specification) with a hand-written state machine over the bytes, and fill a Header whose
//     fields are sub-slices of the frame: kind, id, method, params, result, error.
//   - BatchIter walks the elements of a batch.
//   - AppendRequest, AppendNotification, AppendResult, AppendError, AppendString and the batch
//     helpers (BatchWriter, AppendBatchStart/Sep/End) encode into a caller's buffer.
//   - AppendErrorReply / AppendErrorFor produce the spec-exact reply to a bad frame or failed
//     request, or nothing when none is due.
//   - Acquire / Release lend pooled buffers (bytebufferpool).
//
// The convenient tier allocates: Decode, DecodeRequest and DecodeResponse return Go values
// (copies of the raw members, unescaped strings), Request.UnmarshalParams and
// Response.UnmarshalResult decode into Go values with goccy/go-json, and Marshal / Unmarshal
// are the JSON functions for the rest of ZeroTask. Decode is built on Scan, so the two never
// disagree; the fuzz target FuzzScan holds both to an independent reference decoder (in the
// tests, written with encoding/json and goccy/go-json) on every input.
//
// # Validation rules
//
// Invalid JSON is a parse error (-32700): numbers such as 01, 1. or +1, raw control characters
// or bad escapes in strings, invalid UTF-8 anywhere, trailing commas, anything but whitespace
// after the value. Valid JSON that is not a JSON-RPC message is an invalid request (-32600):
// "jsonrpc" missing or not exactly "2.0"; "method" not a string; "params" neither array nor
// object; "id" neither string, number nor null; a response without id, with both or neither of
// result and error, or with an error that is not {"code": integer, "message": string}. Unknown
// members are ignored (the specification does not forbid them). A member given twice: the last
// one wins. Ids keep their raw form (1, -1.5e3, "abc", null). Method names beginning with
// "rpc." are reserved (IsReserved). See ScanLimits for the full list and the precedence.
//
// # How a server answers (specification sections 4-6)
//
// A server Scans each frame. If Scan fails, it sends AppendErrorReply(nil, frame, err): one
// error object with id null, whatever the frame was (so `[]` gets one -32600 object, not an
// array). A notification is never answered, not even when it fails. For a batch it walks
// BatchIter: each invalid element gets its own -32600 error object with id null, valid
// siblings are processed, the replies go into one array in any order (BatchWriter), and a
// batch of notifications only gets no reply at all. `[1]` is answered with an array holding
// one -32600 object.
//
// # Limits
//
// Limits bounds the frame size (default 1 MiB, ErrFrameTooLarge with code -32600), the batch
// length (default 1024, ErrBatchTooLarge, -32600) and the nesting depth (default 64,
// ErrTooDeep, -32600). Scan, BatchIter and Decode enforce them; nothing panics past a limit.
//
// # Ownership
//
// Everything Scan and BatchIter return points into the frame: keep the frame alive and
// unmodified while using them, copy what must outlive it. A Buffer belongs to the caller from
// Acquire until Release, and must not be touched after Release.
package codec
