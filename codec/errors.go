package codec

import (
	"errors"
	"strconv"
)

// Error codes defined by the JSON-RPC 2.0 specification (section 5.1). The specification
// reserves the codes from -32768 up, and leaves the last hundred reserved codes, the
// server-error range, to implementations: codec uses none of those (package protocol assigns
// ZeroTask's).
const (
	CodeParseError     = -32700 // invalid JSON was received
	CodeInvalidRequest = -32600 // the JSON is not a valid Request object
	CodeMethodNotFound = -32601 // the method does not exist or is not available
	CodeInvalidParams  = -32602 // invalid method parameters
	CodeInternalError  = -32603 // internal JSON-RPC error
)

// Error is a JSON-RPC error object (specification section 5.1). It implements error.
//
// Code and Message are the members of the same names; Data is the raw JSON of the optional
// "data" member, written and read verbatim (nil means the member is absent; the JSON literal
// null is the 4 bytes `null`).
//
// Two *Error values match under errors.Is when their codes are equal, so a remote error decoded
// from the wire satisfies errors.Is(err, codec.ErrMethodNotFound) whatever its message says.
type Error struct {
	Code    int
	Message string
	Data    []byte
}

// NewError returns a new *Error. data is raw JSON (nil for none); it is kept, not copied.
func NewError(code int, message string, data []byte) *Error {
	return &Error{Code: code, Message: message, Data: data}
}

// Error returns "jsonrpc: MESSAGE (code CODE)", followed by the data when present.
func (e *Error) Error() string {
	if e == nil {
		return "jsonrpc: <nil error>"
	}
	s := "jsonrpc: " + e.Message + " (code " + strconv.Itoa(e.Code) + ")"
	if e.Data != nil {
		s += ": " + string(e.Data)
	}
	return s
}

// Is reports whether target is an *Error with the same Code. It makes
// errors.Is(err, codec.ErrInvalidParams) true for any error object with code -32602.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e != nil && t != nil && e.Code == t.Code
}

// The sentinel errors. They are package-level values, so returning one allocates nothing;
// callers must never modify them. The limit errors carry code -32600 and therefore also match
// ErrInvalidRequest under errors.Is; compare pointers (err == ErrTooDeep) to tell them apart.
var (
	ErrParse          = &Error{Code: CodeParseError, Message: "Parse error"}
	ErrInvalidRequest = &Error{Code: CodeInvalidRequest, Message: "Invalid Request"}
	ErrMethodNotFound = &Error{Code: CodeMethodNotFound, Message: "Method not found"}
	ErrInvalidParams  = &Error{Code: CodeInvalidParams, Message: "Invalid params"}
	ErrInternal       = &Error{Code: CodeInternalError, Message: "Internal error"}

	// ErrFrameTooLarge: the frame is longer than Limits.MaxFrame (code -32600).
	ErrFrameTooLarge = &Error{Code: CodeInvalidRequest, Message: "Invalid Request: frame too large"}
	// ErrBatchTooLarge: a batch has more elements than Limits.MaxBatch (code -32600).
	ErrBatchTooLarge = &Error{Code: CodeInvalidRequest, Message: "Invalid Request: batch too large"}
	// ErrTooDeep: arrays and objects nest deeper than Limits.MaxDepth (code -32600).
	ErrTooDeep = &Error{Code: CodeInvalidRequest, Message: "Invalid Request: nesting too deep"}
)

// AsError returns err as an *Error: err itself when it is one (or wraps one), otherwise
// ErrInternal. A nil err gives nil. The fast path (err is an *Error) allocates nothing.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok {
		return e
	}
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	return ErrInternal
}
