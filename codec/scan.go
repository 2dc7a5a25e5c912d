package codec

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// Kind tells what a frame or a batch element holds.
type Kind uint8

// The kinds of JSON-RPC message.
const (
	KindInvalid      Kind = iota // not a valid JSON-RPC message (see the error Scan returned)
	KindRequest                  // a request: it has a method and an id (the id may be null)
	KindNotification             // a notification: a request without an id member; never answered
	KindResponse                 // a response: an id and exactly one of result or error
	KindBatch                    // a JSON array of messages; walk it with BatchIter
)

var kindNames = [...]string{"invalid", "request", "notification", "response", "batch"}

// String returns the kind's name in lower case, such as "request".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Header is what Scan takes out of one JSON-RPC object without decoding params or result and
// without allocating. Every []byte is a sub-slice of the scanned frame (so it is valid only as
// long as the frame is, and must not be modified), except Method when it was unescaped into
// Scratch.
//
// Raw members keep their JSON form: ID is `"abc"` (with quotes), `12` or `null`; Params, Result
// and Error are the raw JSON value of the member, from its first to its last byte. A nil slice
// means the member is absent: ID == nil is a notification, while `"id":null` gives the 4 bytes
// `null` (a request that must still be answered, with id null).
//
// Method is the method name without quotes. Names without escape sequences (all names in
// practice) are a sub-slice of the frame. A name with escapes (`"sub\u0074ract"`) is decoded
// into Scratch when cap(Scratch) >= the escaped length, and Method is then a sub-slice of
// Scratch; without room Method holds the still-escaped contents and MethodEscaped is true, and
// the caller decodes it with AppendUnescape (or answers Method not found). Either way Scan
// allocates nothing.
type Header struct {
	Kind   Kind
	ID     []byte // raw JSON id; nil when absent (a notification)
	Method []byte // method name, unquoted (see MethodEscaped)
	Params []byte // raw JSON params (array or object); nil when absent
	Result []byte // raw JSON result of a success response; nil when absent
	Error  []byte // raw JSON error object of an error response; nil when absent
	// Ext spans the members codec does not read (ZeroTask's extension members, or any
	// other): the raw bytes from the first such member's name to the end of the last one's
	// value, the members between them included, so that a reader of extensions walks these
	// few bytes (see ExtMembers) instead of the whole object again. nil when there are none.
	Ext []byte

	// MethodEscaped is true when Method still holds JSON escape sequences because Scratch had
	// no room to decode them into.
	MethodEscaped bool
	// BatchLen is the number of elements of a batch (Kind == KindBatch); 0 otherwise.
	BatchLen int
	// Scratch is an optional buffer that the caller provides for decoding escaped method
	// names. Scan keeps it (it is the only field Scan does not reset) and never grows it.
	Scratch []byte
}

// reset clears every field but Scratch. (Field by field: rebuilding *h from a composite
// literal that copies h.Scratch would make Scratch's memory escape in the escape analysis,
// whereas h.Method = h.Scratch[:n] is a recognised self-assignment.)
func (h *Header) reset() {
	h.Kind, h.MethodEscaped, h.BatchLen = KindInvalid, false, 0
	h.ID, h.Method, h.Params, h.Result, h.Error, h.Ext = nil, nil, nil, nil, nil, nil
}

// The default limits and the hard ceiling on nesting.
const (
	DefaultMaxFrame = 1 << 20 // bytes in one frame
	DefaultMaxBatch = 1024    // elements in one batch
	DefaultMaxDepth = 64      // nesting of arrays and objects; the top-level value is depth 1

	// HardMaxDepth caps Limits.MaxDepth: the scanner tracks open containers in a fixed bit
	// stack of this many entries so that it needs no allocation. Larger values are clamped.
	HardMaxDepth = 1024
)

// Limits bounds what Scan, BatchIter and Decode accept, so that a hostile peer cannot make a
// server work or allocate without bound. The zero value of each field (or any value <= 0)
// means its default.
//
//   - MaxFrame (default 1 MiB): longer frames fail with ErrFrameTooLarge (code -32600), before
//     a single byte is looked at.
//   - MaxBatch (default 1024): batches with more elements fail with ErrBatchTooLarge (-32600).
//   - MaxDepth (default 64, at most HardMaxDepth): arrays and objects nested deeper fail with
//     ErrTooDeep (-32600). The top-level object or batch array is depth 1, so a request
//     {"params":[[1]]} has depth 3, and the same request inside a batch has depth 4.
//
// Invalid JSON takes precedence: a frame that breaks a batch or depth limit and is also not
// valid JSON fails with ErrParse, except that nesting beyond HardMaxDepth stops the scan at
// once with ErrTooDeep.
type Limits struct {
	MaxFrame int
	MaxBatch int
	MaxDepth int
}

// DefaultLimits are the limits Scan, BatchIter.Reset and Decode use.
var DefaultLimits = Limits{MaxFrame: DefaultMaxFrame, MaxBatch: DefaultMaxBatch, MaxDepth: DefaultMaxDepth}

// Effective returns the limits l applies: its unset fields (all of them for a nil l) take the
// defaults, and MaxDepth is capped at HardMaxDepth.
func (l *Limits) Effective() Limits {
	maxFrame, maxBatch, maxDepth := l.values()
	return Limits{MaxFrame: maxFrame, MaxBatch: maxBatch, MaxDepth: maxDepth}
}

// values returns the effective limits; a nil *Limits means the defaults.
func (l *Limits) values() (maxFrame, maxBatch, maxDepth int) {
	maxFrame, maxBatch, maxDepth = DefaultMaxFrame, DefaultMaxBatch, DefaultMaxDepth
	if l == nil {
		return
	}
	if l.MaxFrame > 0 {
		maxFrame = l.MaxFrame
	}
	if l.MaxBatch > 0 {
		maxBatch = l.MaxBatch
	}
	if l.MaxDepth > 0 {
		maxDepth = min(l.MaxDepth, HardMaxDepth)
	}
	return
}

// Scan validates one frame against JSON (RFC 8259) and JSON-RPC 2.0 and fills h, with
// DefaultLimits. See ScanLimits.
func Scan(frame []byte, h *Header) error {
	return ScanLimits(frame, h, nil)
}

// ScanLimits validates one frame and fills h without allocating. lim nil means DefaultLimits.
//
// A single object gives Kind KindRequest, KindNotification or KindResponse; an array gives
// KindBatch and BatchLen, after the whole array was validated as JSON (each element is then
// judged on its own by BatchIter, as the specification wants). On failure h.Kind is
// KindInvalid and the error is one of the sentinels, in this order of precedence:
//
//   - ErrFrameTooLarge: len(frame) > MaxFrame.
//   - ErrParse: the frame is not one valid JSON text (RFC 8259: no leading zeros, no trailing
//     commas, no raw control characters in strings, valid escapes and UTF-8, nothing but
//     whitespace after the value).
//   - ErrTooDeep, then ErrBatchTooLarge: a limit is broken.
//   - ErrInvalidRequest: valid JSON that is not a JSON-RPC 2.0 message: "jsonrpc" missing or not
//     exactly "2.0"; "method" not a string; "params" neither array nor object; "id" neither
//     string, number nor null; a response without "id", or with both or neither of "result"
//     and "error", or whose error is not an object with an integer "code" (no fraction or
//     exponent, within int32) and a string "message"; an empty batch `[]`; a top-level value
//     that is neither object nor array.
//
// An object with a "method" member is a request (members "result" and "error" are then
// ignored); one without is a response. Unknown members are ignored, as the specification does
// not forbid them. When a member appears twice the last one wins, as with encoding/json and
// Decode. Member names are matched exactly (case-sensitive) after unescaping.
func ScanLimits(frame []byte, h *Header, lim *Limits) error {
	maxFrame, maxBatch, maxDepth := lim.values()
	h.reset()
	if len(frame) > maxFrame {
		return ErrFrameTooLarge
	}
	var s scanner
	s.maxDepth = maxDepth
	var e *Error
	i := skipWS(frame, 0)
	switch {
	case i >= len(frame):
		e = ErrParse
	case frame[i] == '{':
		var m members
		if i, e = s.scanObject(frame, i, 0, &m); e == nil {
			e = s.finish(frame, i)
		}
		if e == nil {
			e = s.validate(&m, h)
		}
	case frame[i] == '[':
		e = s.scanBatch(frame, i, h, maxBatch)
	default:
		if i, e = s.skipValue(frame, i, 0); e == nil {
			e = s.finish(frame, i)
		}
		if e == nil {
			e = ErrInvalidRequest
		}
	}
	if e != nil {
		h.Kind = KindInvalid
		return e
	}
	return nil
}

// scanner is the state of one scan: the nesting limit and a bit stack of the open containers
// (bit set: object), so that no allocation is needed however the input nests. It is written as
// a state machine over the bytes with explicit states (a value is expected, or a separator or
// closing bracket is), in the style of nats-server's parser: no recursion, no callbacks.
type scanner struct {
	maxDepth int
	tooDeep  bool // a container opened past maxDepth; scanning goes on to find parse errors
	stack    [HardMaxDepth / 64]uint64
}

// members holds the raw values of the top-level members Scan cares about. A JSON value is at
// least one byte long, so nil means absent.
type members struct {
	jsonrpc, id, method, params, result, err []byte
	ext                                      []byte // see Header.Ext
	extStart                                 int    // offset of ext's first member, when ext != nil
}

// finish checks that only whitespace follows the top-level value and reports a broken depth
// limit, which ranks after parse errors.
func (s *scanner) finish(data []byte, i int) *Error {
	if skipWS(data, i) != len(data) {
		return ErrParse
	}
	if s.tooDeep {
		return ErrTooDeep
	}
	return nil
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// open records a container opened at depth d (1-based) and applies the limits.
func (s *scanner) open(d int, object bool) *Error {
	if d > s.maxDepth {
		if d > HardMaxDepth {
			return ErrTooDeep
		}
		s.tooDeep = true
	}
	w, b := (d-1)>>6, uint64(1)<<((d-1)&63)
	if object {
		s.stack[w] |= b
	} else {
		s.stack[w] &^= b
	}
	return nil
}

func (s *scanner) isObject(d int) bool {
	return s.stack[(d-1)>>6]&(1<<((d-1)&63)) != 0
}

// skipValue validates the JSON value that starts at data[i] (not whitespace), which sits inside
// a container at depth base (0 for a top-level value), and returns the index just past it.
func (s *scanner) skipValue(data []byte, i, base int) (int, *Error) {
	depth := base
	var e *Error
	for {
		// State 1: a value is expected at data[i].
		if i >= len(data) {
			return i, ErrParse
		}
		switch c := data[i]; c {
		case '"':
			if i, _, e = scanString(data, i); e != nil {
				return i, e
			}
		case '{', '[':
			depth++
			if e = s.open(depth, c == '{'); e != nil {
				return i, e
			}
			if i = skipWS(data, i+1); i >= len(data) {
				return i, ErrParse
			}
			if data[i] == c+2 { // '{'+2 == '}', '['+2 == ']': empty container
				depth--
				i++
				break
			}
			if c == '{' {
				if i, e = objectKey(data, i); e != nil {
					return i, e
				}
			}
			continue // the first element or member value
		case 't':
			if !hasLiteral(data, i, "true") {
				return i, ErrParse
			}
			i += 4
		case 'f':
			if !hasLiteral(data, i, "false") {
				return i, ErrParse
			}
			i += 5
		case 'n':
			if !hasLiteral(data, i, "null") {
				return i, ErrParse
			}
			i += 4
		default:
			if i, e = scanNumber(data, i); e != nil {
				return i, e
			}
		}
		// State 2: a value ended; a separator or a closing bracket may follow.
		for {
			if depth == base {
				return i, nil
			}
			if i = skipWS(data, i); i >= len(data) {
				return i, ErrParse
			}
			c := data[i]
			obj := s.isObject(depth)
			if c == ',' {
				if i = skipWS(data, i+1); obj {
					if i, e = objectKey(data, i); e != nil {
						return i, e
					}
				}
				break // back to state 1
			}
			if (obj && c == '}') || (!obj && c == ']') {
				depth--
				i++
				continue
			}
			return i, ErrParse
		}
	}
}

// objectKey scans `"key" :` from data[i] and returns the index of the member's value.
func objectKey(data []byte, i int) (int, *Error) {
	if i >= len(data) || data[i] != '"' {
		return i, ErrParse
	}
	i, _, e := scanString(data, i)
	if e != nil {
		return i, e
	}
	if i = skipWS(data, i); i >= len(data) || data[i] != ':' {
		return i, ErrParse
	}
	if i = skipWS(data, i+1); i >= len(data) {
		return i, ErrParse
	}
	return i, nil
}

func hasLiteral(data []byte, i int, lit string) bool {
	return len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit
}

// scanNumber validates the number at data[i] (RFC 8259 grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) and returns the index past it. What follows
// is checked by the caller, so "01" fails there (a 0 followed by a digit).
func scanNumber(data []byte, i int) (int, *Error) {
	n := len(data)
	if data[i] == '-' {
		if i++; i >= n {
			return i, ErrParse
		}
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i++
		for i < n && isDigit(data[i]) {
			i++
		}
	default:
		return i, ErrParse
	}
	if i < n && data[i] == '.' {
		if i++; i >= n || !isDigit(data[i]) {
			return i, ErrParse
		}
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		if i++; i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n || !isDigit(data[i]) {
			return i, ErrParse
		}
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	return i, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

// plain[c] is true for the bytes a string holds as they are: not '"', '\\', a control
// character, or the start of a multi-byte UTF-8 sequence (which needs validation).
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanString validates the string that starts with the quote at data[i] and returns the index
// past its closing quote and whether it holds escape sequences.
func scanString(data []byte, i int) (int, bool, *Error) {
	esc := false
	i++
	for {
		// Eight bytes at a time while none is special: a byte is special when it is below
		// 0x20, a quote, a backslash or >= 0x80 (the usual SWAR has-less/has-zero tricks). A
		// false positive can only sit above a true one (a borrow runs upwards from a special
		// byte), so the lowest bit set marks the first special byte exactly: jump to it.
		for {
			if i+8 > len(data) {
				for i < len(data) && plain[data[i]] {
					i++
				}
				break
			}
			w := binary.LittleEndian.Uint64(data[i:])
			if m := ((w-lsb*0x20)|((w^(lsb*'"'))-lsb)|((w^(lsb*'\\'))-lsb))&^w&msb | w&msb; m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(data) {
			return i, esc, ErrParse
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(data) {
				return i, esc, ErrParse
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) || !isHex(data[i+5]) {
					return i, esc, ErrParse
				}
				i += 6
			default:
				return i, esc, ErrParse
			}
		case c < 0x20:
			return i, esc, ErrParse
		default: // c >= 0x80: one UTF-8 sequence, valid per RFC 3629 or a parse error
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return i, esc, ErrParse
			}
			i += size
		}
	}
}

// scanObject validates the object that starts at data[i] inside a container at depth base and
// collects the raw values of the members codec knows into m (last one wins). It returns the
// index past the closing brace.
func (s *scanner) scanObject(data []byte, i, base int, m *members) (int, *Error) {
	if e := s.open(base+1, true); e != nil {
		return i, e
	}
	if i = skipWS(data, i+1); i >= len(data) {
		return i, ErrParse
	}
	if data[i] == '}' {
		return i + 1, nil
	}
	for {
		if data[i] != '"' {
			return i, ErrParse
		}
		ks := i
		var e *Error
		var slot *[]byte
		if slot, i = m.compactKey(data, i); slot == nil {
			// Not one of codec's members written compactly: scan the key as any string.
			var esc bool
			if i, esc, e = scanString(data, i); e != nil {
				return i, e
			}
			key := data[ks+1 : i-1]
			if i = skipWS(data, i); i >= len(data) || data[i] != ':' {
				return i, ErrParse
			}
			slot = m.slot(key, esc)
		}
		if i = skipWS(data, i+1); i >= len(data) {
			return i, ErrParse
		}
		vs := i
		if slot == &m.jsonrpc && len(data)-i >= 5 && string(data[i:i+5]) == `"2.0"` {
			i += len(`"2.0"`) // the one value jsonrpc has, in almost every message
		} else if i, e = s.skipValue(data, i, base+1); e != nil {
			return i, e
		}
		if slot != nil {
			*slot = data[vs:i]
		} else {
			if m.ext == nil {
				m.extStart = ks
			}
			m.ext = data[m.extStart:i]
		}
		if i = skipWS(data, i); i >= len(data) {
			return i, ErrParse
		}
		switch data[i] {
		case ',':
			if i = skipWS(data, i+1); i >= len(data) {
				return i, ErrParse
			}
		case '}':
			return i + 1, nil
		default:
			return i, ErrParse
		}
	}
}

// compactKey recognises the name of a member codec knows written as most peers write it,
// without escapes and with the colon right after the closing quote ("method":), at data[i] (a
// quote): it returns where the member's value goes and the index of the colon, or nil and i.
// Every message names three or four of them, so this spares their scan as strings and the
// name switch.
func (m *members) compactKey(data []byte, i int) (*[]byte, int) {
	// Each name is compared with a constant of its own length, which the compiler turns into
	// a few word loads (a variable one would cost a call to memequal).
	d := data[i:]
	if len(d) < 10 {
		return nil, i
	}
	switch d[1] {
	case 'j':
		if string(d[:10]) == `"jsonrpc":` {
			return &m.jsonrpc, i + 9
		}
	case 'i':
		if string(d[:5]) == `"id":` {
			return &m.id, i + 4
		}
	case 'm':
		if string(d[:9]) == `"method":` {
			return &m.method, i + 8
		}
	case 'p':
		if string(d[:9]) == `"params":` {
			return &m.params, i + 8
		}
	case 'r':
		if string(d[:9]) == `"result":` {
			return &m.result, i + 8
		}
	case 'e':
		if string(d[:8]) == `"error":` {
			return &m.err, i + 7
		}
	}
	return nil, i
}

// slot returns where the value of member key goes, or nil for a member codec ignores.
func (m *members) slot(key []byte, esc bool) *[]byte {
	var buf [8]byte
	if esc {
		n, ok := unescapeTo(buf[:], key)
		if !ok {
			return nil // longer than any member name codec knows
		}
		key = buf[:n]
	}
	switch string(key) {
	case "jsonrpc":
		return &m.jsonrpc
	case "id":
		return &m.id
	case "method":
		return &m.method
	case "params":
		return &m.params
	case "result":
		return &m.result
	case "error":
		return &m.err
	}
	return nil
}

// scanBatch validates the array at data[i] as a batch: valid JSON to its end, within the
// limits, not empty.
func (s *scanner) scanBatch(data []byte, i int, h *Header, maxBatch int) *Error {
	if e := s.open(1, false); e != nil {
		return e
	}
	if i = skipWS(data, i+1); i >= len(data) {
		return ErrParse
	}
	n := 0
	if data[i] == ']' {
		i++
	} else {
		var e *Error
		for {
			if i, e = s.skipValue(data, i, 1); e != nil {
				return e
			}
			n++
			if i = skipWS(data, i); i >= len(data) {
				return ErrParse
			}
			if data[i] == ']' {
				i++
				break
			}
			if data[i] != ',' {
				return ErrParse
			}
			i = skipWS(data, i+1)
		}
	}
	if e := s.finish(data, i); e != nil {
		return e
	}
	if n > maxBatch {
		return ErrBatchTooLarge
	}
	if n == 0 {
		return ErrInvalidRequest
	}
	h.Kind = KindBatch
	h.BatchLen = n
	return nil
}

// validate applies the JSON-RPC rules to the members of a syntactically valid object and fills
// h. It returns ErrInvalidRequest or nil.
func (s *scanner) validate(m *members, h *Header) *Error {
	if m.jsonrpc == nil || !stringEquals(m.jsonrpc, "2.0") {
		return ErrInvalidRequest
	}
	if m.id != nil && !isID(m.id) {
		return ErrInvalidRequest
	}
	if m.method != nil {
		if m.method[0] != '"' {
			return ErrInvalidRequest
		}
		if m.params != nil && m.params[0] != '[' && m.params[0] != '{' {
			return ErrInvalidRequest
		}
		h.Kind = KindRequest
		if m.id == nil {
			h.Kind = KindNotification
		}
		h.ID, h.Params, h.Ext = m.id, m.params, m.ext
		name := m.method[1 : len(m.method)-1]
		switch {
		case bytes.IndexByte(name, '\\') < 0:
			h.Method = name
		case cap(h.Scratch) >= len(name):
			n, _ := unescapeTo(h.Scratch[:cap(h.Scratch)], name)
			h.Method = h.Scratch[:n]
		default:
			h.Method, h.MethodEscaped = name, true
		}
		return nil
	}
	if m.id == nil || (m.result == nil) == (m.err == nil) {
		return ErrInvalidRequest
	}
	if m.err != nil {
		if _, _, _, ok := s.errorObject(m.err); !ok {
			return ErrInvalidRequest
		}
	}
	h.Kind = KindResponse
	h.ID, h.Result, h.Error, h.Ext = m.id, m.result, m.err, m.ext
	return nil
}

// isID reports whether a raw JSON value may be an id: a string, a number or null.
func isID(raw []byte) bool {
	c := raw[0]
	return c == '"' || c == 'n' || c == '-' || isDigit(c)
}

// stringEquals reports whether the raw JSON value is a string whose decoded contents are s
// (len(s) <= 8).
func stringEquals(raw []byte, s string) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	body := raw[1 : len(raw)-1]
	if string(body) == s {
		return true
	}
	if bytes.IndexByte(body, '\\') < 0 {
		return false
	}
	var buf [8]byte
	n, ok := unescapeTo(buf[:], body)
	return ok && string(buf[:n]) == s
}

// errorObject checks a raw JSON value (already validated as JSON) as a JSON-RPC error object:
// an object with an integer "code" and a string "message"; "data" is optional. It returns the
// code, the raw message string (with quotes) and the raw data.
func (s *scanner) errorObject(raw []byte) (code int, message, data []byte, ok bool) {
	if raw[0] != '{' {
		return 0, nil, nil, false
	}
	var rawCode []byte
	i := skipWS(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return 0, nil, nil, false
	}
	for i < len(raw) {
		ks := i
		var esc bool
		var e *Error
		if i, esc, e = scanString(raw, i); e != nil {
			return 0, nil, nil, false
		}
		key := raw[ks+1 : i-1]
		i = skipWS(raw, skipWS(raw, i)+1) // past ':' (raw is valid JSON already)
		vs := i
		if i, e = s.skipValue(raw, i, 1); e != nil {
			return 0, nil, nil, false
		}
		val := raw[vs:i]
		var buf [8]byte
		if esc {
			n, fits := unescapeTo(buf[:], key)
			if !fits {
				n = 0
			}
			key = buf[:n]
		}
		switch string(key) {
		case "code":
			rawCode = val
		case "message":
			message = val
		case "data":
			data = val
		}
		i = skipWS(raw, i)
		if i >= len(raw) || raw[i] == '}' {
			break
		}
		i = skipWS(raw, i+1) // past ','
	}
	if rawCode == nil || message == nil || message[0] != '"' {
		return 0, nil, nil, false
	}
	code, ok = parseInt32(rawCode)
	return code, message, data, ok
}

// parseInt32 parses a JSON number that must be an integer (no fraction, no exponent) within
// the int32 range.
func parseInt32(raw []byte) (int, bool) {
	neg := raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 10 {
		return 0, false
	}
	var v int64
	for _, c := range raw {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	if v < -1<<31 || v > 1<<31-1 {
		return 0, false
	}
	return int(v), true
}
