package codec

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The append-style encoders below write one JSON-RPC object to the end of dst and return the
// extended slice, like strconv.AppendInt: they allocate nothing when dst has room.
//
// id, params, result and Error.Data are raw JSON written verbatim: the caller vouches for them
// (ids from Scan or Decode are; a fresh id can be made with strconv.AppendInt or AppendString).
// Method names and error messages are Go strings, quoted and escaped by AppendString.

const version = `{"jsonrpc":"2.0"`

// AppendRequest appends a request `{"jsonrpc":"2.0","method":M,"params":P,"id":ID}`. params nil
// leaves out "params"; id nil leaves out "id", which makes a notification.
func AppendRequest(dst, id []byte, method string, params []byte) []byte {
	dst = append(dst, version+`,"method":`...)
	dst = appendString(dst, method)
	return appendRequestTail(dst, id, params)
}

// AppendRequestBytes is AppendRequest with the method name as bytes (unescaped, as in
// Header.Method), for forwarding a scanned request without converting its name to a string.
func AppendRequestBytes(dst, id, method, params []byte) []byte {
	dst = append(dst, version+`,"method":`...)
	dst = appendString(dst, method)
	return appendRequestTail(dst, id, params)
}

func appendRequestTail(dst, id, params []byte) []byte {
	if params != nil {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	if id != nil {
		dst = append(dst, `,"id":`...)
		dst = append(dst, id...)
	}
	return append(dst, '}')
}

// AppendNotification appends a notification (a request without id). params nil leaves out
// "params".
func AppendNotification(dst []byte, method string, params []byte) []byte {
	return AppendRequest(dst, nil, method, params)
}

// AppendResult appends a success response `{"jsonrpc":"2.0","id":ID,"result":R}`. id nil
// writes "id":null; result nil writes "result":null (the member is required).
func AppendResult(dst, id, result []byte) []byte {
	dst = appendResponseHead(dst, id)
	dst = append(dst, `,"result":`...)
	if result == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, result...)
	}
	return append(dst, '}')
}

// AppendError appends an error response
// `{"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M,"data":D}}`. id nil writes "id":null;
// "data" is left out when e.Data is nil; e nil stands for ErrInternal.
func AppendError(dst, id []byte, e *Error) []byte {
	if e == nil {
		e = ErrInternal
	}
	dst = appendResponseHead(dst, id)
	dst = append(dst, `,"error":`...)
	dst = AppendErrorObject(dst, e)
	return append(dst, '}')
}

// AppendErrorObject appends the bare error object `{"code":C,"message":M,"data":D}` ("data"
// left out when e.Data is nil).
func AppendErrorObject(dst []byte, e *Error) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(e.Code), 10)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, e.Message)
	if e.Data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, e.Data...)
	}
	return append(dst, '}')
}

func appendResponseHead(dst, id []byte) []byte {
	dst = append(dst, version+`,"id":`...)
	if id == nil {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

// AppendString appends s as a JSON string, with quotes. It escapes '"', '\\' and control
// characters (\n, \r, \t, \b, \f short forms, others as \u00XX), U+2028 and U+2029 (as
// encoding/json does), and replaces invalid UTF-8 with \ufffd, so the output is always valid
// JSON. Other characters, non-ASCII included, are written as they are.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

// AppendStringBytes is AppendString for a byte slice.
func AppendStringBytes(dst, s []byte) []byte { return appendString(dst, s) }

const hexDigits = "0123456789abcdef"

func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s, i)
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeRune decodes the UTF-8 sequence at s[i] for either a string or a byte slice without
// converting (and so without allocating).
func decodeRune[S ~string | ~[]byte](s S, i int) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s[i:min(i+utf8.UTFMax, len(s))])
	return utf8.DecodeRune(buf[:n])
}

// AppendUnescape appends the decoded contents of a JSON string to dst: s is what lies between
// the quotes (Header.Method when MethodEscaped is set). Escapes decode as encoding/json does,
// lone UTF-16 surrogates included (they become U+FFFD). A malformed escape is copied as it is.
func AppendUnescape(dst, s []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, len(s))...) // the decoded form is never longer
	w, _ := unescapeTo(dst[n:], s)
	return dst[:n+w]
}

// unescapeTo decodes the JSON string contents s into dst and returns the length written; ok is
// false when dst is too short.
func unescapeTo(dst, s []byte) (n int, ok bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			if n >= len(dst) {
				return n, false
			}
			dst[n] = c
			n++
			i++
			continue
		}
		var r rune
		switch s[i+1] {
		case '"', '\\', '/':
			r = rune(s[i+1])
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			r = hex4(s[i:])
			if r < 0 {
				r = '\\' // malformed: copy the backslash and go on
				i--
				break
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if dec := utf16.DecodeRune(r, hex4(s[i+2:])); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
		default:
			r = '\\'
			i--
		}
		i += 2
		if n+utf8.RuneLen(r) > len(dst) {
			return n, false
		}
		n += utf8.EncodeRune(dst[n:], r)
	}
	return n, true
}

// hex4 decodes `\uXXXX` at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// AppendBatchStart appends '[' to start a batch. Elements follow, each preceded by
// AppendBatchSep, and AppendBatchEnd closes it. BatchWriter does the same bookkeeping for a
// server, which must send nothing at all when no element is written.
func AppendBatchStart(dst []byte) []byte { return append(dst, '[') }

// AppendBatchSep appends the ',' that goes before element i (0-based) of a batch: nothing
// for the first.
func AppendBatchSep(dst []byte, i int) []byte {
	if i > 0 {
		dst = append(dst, ',')
	}
	return dst
}

// AppendBatchEnd appends ']' to close a batch.
func AppendBatchEnd(dst []byte) []byte { return append(dst, ']') }

// BatchWriter builds a batch reply in place. A server answers a batch with an array of the
// responses it has (in any order), and with nothing at all when every element was a
// notification; BatchWriter.End then takes the opening bracket back out.
//
//	var bw codec.BatchWriter
//	out = bw.Begin(out)
//	for each element that needs a response { out = bw.Next(out); out = codec.AppendResult(out, ...) }
//	out = bw.End(out) // len(out) unchanged from before Begin when nothing was written
type BatchWriter struct {
	start int
	n     int
}

// Begin remembers where the batch starts and appends '['.
func (w *BatchWriter) Begin(dst []byte) []byte {
	w.start, w.n = len(dst), 0
	return append(dst, '[')
}

// Next appends the separator before the next element and counts it.
func (w *BatchWriter) Next(dst []byte) []byte {
	w.n++
	if w.n > 1 {
		dst = append(dst, ',')
	}
	return dst
}

// Len returns the number of elements written since Begin.
func (w *BatchWriter) Len() int { return w.n }

// End closes the batch with ']', or, when no element was written, truncates dst back to its
// length before Begin: no reply at all.
func (w *BatchWriter) End(dst []byte) []byte {
	if w.n == 0 {
		return dst[:w.start]
	}
	return append(dst, ']')
}
