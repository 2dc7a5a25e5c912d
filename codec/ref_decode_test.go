package codec

import (
	stdjson "encoding/json"
	"strconv"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// refDecode is the reference decoder the tests hold Scan, BatchIter and Decode to. It shares no
// parsing code with them: JSON validity comes from encoding/json.Valid plus a UTF-8 check,
// members from goccy/go-json (map[string]RawMessage: exact names, last duplicate wins),
// strings from encoding/json. It must accept exactly the frames Scan accepts and return the
// same sentinel errors in the same order of precedence (see ScanLimits); the one allowed
// difference is an invalid frame nested deeper than HardMaxDepth, where the scanner stops at
// the depth and may not have met the syntax error yet.
func refDecode(frame []byte, lim *Limits) (msgs []Message, batch bool, err error) {
	maxFrame, maxBatch, maxDepth := lim.values()
	if len(frame) > maxFrame {
		return nil, false, ErrFrameTooLarge
	}
	depth := refNesting(frame)
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
			if msgs[i], err = refDecodeObject(el); err != nil {
				msgs[i] = Message{Kind: KindInvalid, Err: ErrInvalidRequest}
			}
		}
		return msgs, true, nil
	case '{':
		m, err := refDecodeObject(frame)
		if err != nil {
			return nil, false, err
		}
		return []Message{m}, false, nil
	}
	return nil, false, ErrInvalidRequest
}

// refDecodeError is DecodeError done the reference way.
func refDecodeError(raw []byte) (*Error, error) {
	if !utf8.Valid(raw) || !stdjson.Valid(raw) {
		return nil, ErrParse
	}
	e, ok := refDecodeErrorObject(raw)
	if !ok {
		return nil, ErrInvalidRequest
	}
	return e, nil
}

// nesting returns the deepest nesting of arrays and objects in frame, counting brackets outside
// strings (exact for valid JSON; a rough figure otherwise).
func refNesting(frame []byte) int {
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
func refDecodeObject(raw []byte) (Message, error) {
	var obj map[string]json.RawMessage
	if raw[skipWS(raw, 0)] != '{' {
		return Message{}, ErrInvalidRequest
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Message{}, ErrParse
	}
	if v, ok := refDecodeString(obj["jsonrpc"]); !ok || v != "2.0" {
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
		method, ok := refDecodeString(rawMethod)
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
		e, ok := refDecodeErrorObject(rawErr)
		if !ok {
			return Message{}, ErrInvalidRequest
		}
		return Message{Kind: KindResponse, Response: Response{ID: id, Error: e}}, nil
	}
	return Message{Kind: KindResponse, Response: Response{ID: id, Result: result}}, nil
}

func refDecodeErrorObject(raw []byte) (*Error, bool) {
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
	msg, ok := refDecodeString(obj["message"])
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
func refDecodeString(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if stdjson.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
