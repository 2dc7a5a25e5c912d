package codec

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"

	json "github.com/goccy/go-json"
)

// Request is a decoded request or notification (the convenient tier: it allocates).
type Request struct {
	ID     []byte // raw JSON id; nil for a notification, `null` for an explicit null id
	Method string // the method name, unescaped
	Params []byte // raw JSON params (array or object); nil when absent
}

// IsNotification reports whether r has no id, so that it must never be answered.
func (r *Request) IsNotification() bool { return r.ID == nil }

// UnmarshalParams decodes the params into v with goccy/go-json. Absent params leave v alone.
// A decoding failure wraps ErrInvalidParams, so AsError and errors.Is see code -32602.
func (r *Request) UnmarshalParams(v any) error {
	if r.Params == nil {
		return nil
	}
	if err := Unmarshal(r.Params, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidParams, err)
	}
	return nil
}

// AppendTo appends r encoded as a request (a notification when ID is nil).
func (r *Request) AppendTo(dst []byte) []byte {
	return AppendRequest(dst, r.ID, r.Method, r.Params)
}

// Response is a decoded response (the convenient tier: it allocates).
type Response struct {
	ID     []byte // raw JSON id (`null` when the server could not read the request's id)
	Result []byte // raw JSON result of a success; nil when Error is set
	Error  *Error // the error object of a failure; nil on success
}

// UnmarshalResult decodes the result into v with goccy/go-json, or returns r.Error when the
// response is an error.
func (r *Response) UnmarshalResult(v any) error {
	if r.Error != nil {
		return r.Error
	}
	return Unmarshal(r.Result, v)
}

// AppendTo appends r encoded as a response.
func (r *Response) AppendTo(dst []byte) []byte {
	if r.Error != nil {
		return AppendError(dst, r.ID, r.Error)
	}
	return AppendResult(dst, r.ID, r.Result)
}

// Message is one decoded JSON-RPC object: a request or notification (Request is set), a
// response (Response is set), or, inside a batch only, an invalid element (Kind KindInvalid,
// Err is ErrInvalidRequest), which the server answers with a -32600 error with id null.
type Message struct {
	Kind     Kind
	Request  Request
	Response Response
	Err      *Error
}

// AppendTo appends the message encoded again. An invalid element appends nothing.
func (m *Message) AppendTo(dst []byte) []byte {
	switch m.Kind {
	case KindRequest, KindNotification:
		return m.Request.AppendTo(dst)
	case KindResponse:
		return m.Response.AppendTo(dst)
	}
	return dst
}

// Decode decodes a whole frame with DefaultLimits. See DecodeLimits.
func Decode(frame []byte) (msgs []Message, batch bool, err error) {
	return DecodeLimits(frame, nil)
}

// DecodeLimits decodes a whole frame: one message (batch false, len(msgs) == 1) or a batch
// (batch true, one Message per element, invalid elements included). It accepts exactly what
// ScanLimits accepts and returns the same errors (it is built on Scan and BatchIter); its raw
// fields (ID, Params, Result, Error.Data) are copies, not sub-slices of frame, and method names
// and error messages are unescaped Go strings.
//
// The tests hold it, Scan and BatchIter to an independent reference decoder written with
// encoding/json and goccy/go-json (FuzzScan, FuzzDecode).
func DecodeLimits(frame []byte, lim *Limits) (msgs []Message, batch bool, err error) {
	var h Header
	if err := ScanLimits(frame, &h, lim); err != nil {
		return nil, false, err
	}
	if h.Kind != KindBatch {
		return []Message{messageOf(&h)}, false, nil
	}
	msgs = make([]Message, 0, h.BatchLen)
	var it BatchIter
	it.ResetLimits(frame, lim)
	for it.Next() {
		eh, err := it.Header()
		if err != nil {
			msgs = append(msgs, Message{Kind: KindInvalid, Err: ErrInvalidRequest})
			continue
		}
		msgs = append(msgs, messageOf(eh))
	}
	if err := it.Err(); err != nil { // not after a successful Scan with the same limits
		return nil, false, err
	}
	return msgs, true, nil
}

// messageOf copies a valid header into a Message.
func messageOf(h *Header) Message {
	if h.Kind == KindResponse {
		r := Response{ID: bytes.Clone(h.ID), Result: bytes.Clone(h.Result)}
		if h.Error != nil {
			var s scanner
			s.maxDepth = HardMaxDepth
			code, msg, data, _ := s.errorObject(h.Error)
			r.Error = &Error{Code: code, Message: unquote(msg), Data: bytes.Clone(data)}
		}
		return Message{Kind: KindResponse, Response: r}
	}
	method := string(h.Method)
	if h.MethodEscaped {
		method = string(AppendUnescape(nil, h.Method))
	}
	return Message{Kind: h.Kind, Request: Request{ID: bytes.Clone(h.ID), Method: method, Params: bytes.Clone(h.Params)}}
}

// unquote decodes a raw JSON string already validated by the scanner.
func unquote(raw []byte) string {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body)
	}
	return string(AppendUnescape(nil, body))
}

// DecodeRequest decodes a frame holding one request or notification. Anything else (a
// response, a batch) fails with ErrInvalidRequest.
func DecodeRequest(frame []byte) (*Request, error) {
	var h Header
	if err := Scan(frame, &h); err != nil {
		return nil, err
	}
	if h.Kind != KindRequest && h.Kind != KindNotification {
		return nil, ErrInvalidRequest
	}
	m := messageOf(&h)
	return &m.Request, nil
}

// DecodeResponse decodes a frame holding one response. Anything else (a request, a batch)
// fails with ErrInvalidRequest.
func DecodeResponse(frame []byte) (*Response, error) {
	var h Header
	if err := Scan(frame, &h); err != nil {
		return nil, err
	}
	if h.Kind != KindResponse {
		return nil, ErrInvalidRequest
	}
	m := messageOf(&h)
	return &m.Response, nil
}

// DecodeError decodes a raw JSON-RPC error object (Header.Error) into an *Error. It fails with
// ErrParse when raw is not valid JSON, ErrInvalidRequest when it is not an object with an
// integer code and a string message.
func DecodeError(raw []byte) (*Error, error) {
	var s scanner
	s.maxDepth = HardMaxDepth
	i := skipWS(raw, 0)
	if i >= len(raw) {
		return nil, ErrParse
	}
	end, e := s.skipValue(raw, i, 0)
	if e == nil && skipWS(raw, end) != len(raw) {
		e = ErrParse
	}
	if e != nil {
		return nil, e
	}
	code, msg, data, ok := s.errorObject(raw[i:end])
	if !ok {
		return nil, ErrInvalidRequest
	}
	return &Error{Code: code, Message: unquote(msg), Data: bytes.Clone(data)}, nil
}

// Marshal encodes v as JSON with goccy/go-json: the one JSON encoder for the rest of ZeroTask.
func Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON into v with goccy/go-json, the JSON decoder for the rest of
// ZeroTask (params, results). It is lenient where Scan is strict: it does not check
// json.RawMessage members, and accepts some invalid numbers and literals there; decode only
// what Scan or Decode validated. A bare JSON string with escapes is decoded with
// encoding/json instead, because go-json v0.10.5 reads past the end of such an input (a fatal
// checkptr error under -race; goccy/go-json#575 is the same family).
func Unmarshal(data []byte, v any) error {
	if i := skipWS(data, 0); i < len(data) && data[i] == '"' && bytes.IndexByte(data, '\\') >= 0 {
		return stdjson.Unmarshal(data, v)
	}
	return json.Unmarshal(data, v)
}
