package codec

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

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
// (batch true, one Message per element, invalid elements included). It is the convenient and
// independent twin of Scan: JSON validity comes from encoding/json.Valid plus a UTF-8 check,
// members and strings from goccy/go-json; it accepts exactly the frames Scan accepts and
// returns the same sentinel errors, in the same order of precedence (see ScanLimits). Raw
// fields (ID, Params, Result, Error.Data) are copies, not sub-slices of frame.
func DecodeLimits(frame []byte, lim *Limits) (msgs []Message, batch bool, err error) {
	maxFrame, maxBatch, maxDepth := lim.values()
	if len(frame) > maxFrame {
		return nil, false, ErrFrameTooLarge
	}
	depth := nesting(frame)
	if depth > HardMaxDepth {
		return nil, false, ErrTooDeep
	}
	if !utf8.Valid(frame) || !stdjson.Valid(frame) {
		return nil, false, ErrParse
	}
	if depth > maxDepth {
		return nil, false, ErrTooDeep
	}
	switch frame[skipWS(frame, 0)] {
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(frame, &elems); err != nil {
			return nil, false, ErrParse
		}
		if len(elems) > maxBatch {
			return nil, false, ErrBatchTooLarge
		}
		if len(elems) == 0 {
			return nil, false, ErrInvalidRequest
		}
		msgs = make([]Message, len(elems))
		for i, el := range elems {
			if msgs[i], err = decodeObject(el); err != nil {
				msgs[i] = Message{Kind: KindInvalid, Err: ErrInvalidRequest}
			}
		}
		return msgs, true, nil
	case '{':
		m, err := decodeObject(frame)
		if err != nil {
			return nil, false, err
		}
		return []Message{m}, false, nil
	}
	return nil, false, ErrInvalidRequest
}

// DecodeRequest decodes a frame holding one request or notification. Anything else (a
// response, a batch) fails with ErrInvalidRequest.
func DecodeRequest(frame []byte) (*Request, error) {
	msgs, batch, err := Decode(frame)
	if err != nil {
		return nil, err
	}
	if batch || (msgs[0].Kind != KindRequest && msgs[0].Kind != KindNotification) {
		return nil, ErrInvalidRequest
	}
	return &msgs[0].Request, nil
}

// DecodeResponse decodes a frame holding one response. Anything else (a request, a batch)
// fails with ErrInvalidRequest.
func DecodeResponse(frame []byte) (*Response, error) {
	msgs, batch, err := Decode(frame)
	if err != nil {
		return nil, err
	}
	if batch || msgs[0].Kind != KindResponse {
		return nil, ErrInvalidRequest
	}
	return &msgs[0].Response, nil
}

// DecodeError decodes a raw JSON-RPC error object (Header.Error) into an *Error. It fails with
// ErrInvalidRequest when raw is not an object with an integer code and a string message.
func DecodeError(raw []byte) (*Error, error) {
	if !utf8.Valid(raw) || !stdjson.Valid(raw) {
		return nil, ErrParse
	}
	e, ok := decodeErrorObject(raw)
	if !ok {
		return nil, ErrInvalidRequest
	}
	return e, nil
}

// nesting returns the deepest nesting of arrays and objects in frame, counting brackets outside
// strings (exact for valid JSON; a rough figure otherwise).
func nesting(frame []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(frame); i++ {
		c := frame[i]
		if inString {
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if depth++; depth > deepest {
				deepest = depth
			}
		case ']', '}':
			depth--
		}
	}
	return deepest
}

// decodeObject applies the JSON-RPC rules to one valid JSON value.
func decodeObject(raw []byte) (Message, error) {
	var obj map[string]json.RawMessage
	if raw[skipWS(raw, 0)] != '{' {
		return Message{}, ErrInvalidRequest
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Message{}, ErrParse
	}
	if v, ok := decodeString(obj["jsonrpc"]); !ok || v != "2.0" {
		return Message{}, ErrInvalidRequest
	}
	id, hasID := obj["id"]
	if hasID {
		switch id[0] {
		case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		default:
			return Message{}, ErrInvalidRequest
		}
	} else {
		id = nil
	}
	if rawMethod, ok := obj["method"]; ok {
		method, ok := decodeString(rawMethod)
		if !ok {
			return Message{}, ErrInvalidRequest
		}
		params, hasParams := obj["params"]
		if hasParams && params[0] != '[' && params[0] != '{' {
			return Message{}, ErrInvalidRequest
		}
		if !hasParams {
			params = nil
		}
		kind := KindRequest
		if !hasID {
			kind = KindNotification
		}
		return Message{Kind: kind, Request: Request{ID: id, Method: method, Params: params}}, nil
	}
	result, hasResult := obj["result"]
	rawErr, hasErr := obj["error"]
	if !hasID || hasResult == hasErr {
		return Message{}, ErrInvalidRequest
	}
	if hasErr {
		e, ok := decodeErrorObject(rawErr)
		if !ok {
			return Message{}, ErrInvalidRequest
		}
		return Message{Kind: KindResponse, Response: Response{ID: id, Error: e}}, nil
	}
	return Message{Kind: KindResponse, Response: Response{ID: id, Result: result}}, nil
}

func decodeErrorObject(raw []byte) (*Error, bool) {
	var obj map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	code, ok := obj["code"]
	if !ok || (code[0] != '-' && (code[0] < '0' || code[0] > '9')) {
		return nil, false
	}
	n, err := strconv.ParseInt(string(code), 10, 32)
	if err != nil {
		return nil, false
	}
	msg, ok := decodeString(obj["message"])
	if !ok {
		return nil, false
	}
	data, hasData := obj["data"]
	if !hasData {
		data = nil
	}
	return &Error{Code: int(n), Message: msg, Data: data}, true
}

// decodeString decodes a raw JSON value that must be a string. It uses encoding/json: go-json
// v0.10.5 trips Go's checkptr (a fatal error under -race) on a lone string with escapes at the
// very end of its input (goccy/go-json#575 is the same family).
func decodeString(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if stdjson.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
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
