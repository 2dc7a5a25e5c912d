package dispatch

// This file is the non-generic half of the typed adapters: the signature worked out once at
// registration (arity, parameter names, which fast decoder each argument uses), the splitting of
// raw params into one raw value per argument, and the -32602 messages. The generic half
// (adapters.go, generated) only calls into it, so each instantiation stays small.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
)

// maxArity is the largest number of parameters a typed adapter takes. A method with more
// parameters takes one struct instead (named params then come from its json tags).
const maxArity = 4

// kind selects a decoder or encoder at registration so that the per-request code is a switch on
// a small integer, never reflection. kindSlow goes through codec.Unmarshal / codec.Marshal.
type kind uint8

const (
	kindSlow kind = iota
	kindNull      // result only: an adapter with no result writes null
	kindBool
	kindString
	kindInt
	kindInt8
	kindInt16
	kindInt32
	kindInt64
	kindUint
	kindUint8
	kindUint16
	kindUint32
	kindUint64
	kindFloat32
	kindFloat64
)

// bits is the size in bits of a numeric kind's Go type (64 for the others).
func (k kind) bits() int {
	switch k {
	case kindInt, kindUint:
		return strconv.IntSize
	case kindInt8, kindUint8:
		return 8
	case kindInt16, kindUint16:
		return 16
	case kindInt32, kindUint32, kindFloat32:
		return 32
	}
	return 64
}

// null is the result type of the adapters whose function returns no value (Proc0..Proc4).
type null struct{}

var (
	typeContext = reflect.TypeFor[context.Context]()
	typeNull    = reflect.TypeFor[null]()
)

// kindOf picks the fast path for exactly the predeclared scalar types. Named types (type Celsius
// float64) may carry their own UnmarshalJSON / MarshalJSON, so they take the slow path.
func kindOf(t reflect.Type) kind {
	switch t {
	case typeNull:
		return kindNull
	case reflect.TypeFor[bool]():
		return kindBool
	case reflect.TypeFor[string]():
		return kindString
	case reflect.TypeFor[int]():
		return kindInt
	case reflect.TypeFor[int8]():
		return kindInt8
	case reflect.TypeFor[int16]():
		return kindInt16
	case reflect.TypeFor[int32]():
		return kindInt32
	case reflect.TypeFor[int64]():
		return kindInt64
	case reflect.TypeFor[uint]():
		return kindUint
	case reflect.TypeFor[uint8]():
		return kindUint8
	case reflect.TypeFor[uint16]():
		return kindUint16
	case reflect.TypeFor[uint32]():
		return kindUint32
	case reflect.TypeFor[uint64]():
		return kindUint64
	case reflect.TypeFor[float32]():
		return kindFloat32
	case reflect.TypeFor[float64]():
		return kindFloat64
	}
	return kindSlow
}

// sig is what a typed adapter knows about its function, worked out once when the adapter is
// built (and again when options such as Names are applied at registration). It is read-only
// afterwards, so any number of goroutines may serve through it.
type sig struct {
	arity   int
	err     error    // a problem found at construction, reported by Handle/Register
	whole   bool     // one struct parameter and no Names: a params object decodes into it whole
	names   []string // parameter names for named params (nil: positional only)
	kinds   [maxArity]kind
	types   [maxArity]string // Go type names, for messages
	label   [maxArity]string // "param 2 (b)", for messages
	res     kind
	adapter string // "Func2", for messages
}

// newSig builds the signature of an adapter. isNil reports a nil function: the adapter is
// still returned (adapters return a Handler, never an error) and registration refuses it.
func newSig(adapter string, isNil bool, res reflect.Type, args ...reflect.Type) sig {
	s := sig{arity: len(args), res: kindOf(res), adapter: adapter}
	if isNil {
		s.err = ErrNilHandler
	}
	for i, t := range args {
		s.kinds[i] = kindOf(t)
		s.types[i] = t.String()
		switch {
		case t == typeContext:
			s.err = fmt.Errorf("%w: %s: parameter %d is a context.Context; the context comes first and only with Func%d or Proc%d",
				ErrUnsupported, adapter, i+1, len(args)-1, len(args)-1)
		case t.Kind() == reflect.Func || t.Kind() == reflect.Chan || t.Kind() == reflect.UnsafePointer:
			s.err = fmt.Errorf("%w: %s: parameter %d has type %s, which JSON cannot carry", ErrUnsupported, adapter, i+1, t)
		}
	}
	switch k := res.Kind(); {
	case k == reflect.Func || k == reflect.Chan || k == reflect.UnsafePointer:
		s.err = fmt.Errorf("%w: %s: result type %s cannot be encoded as JSON", ErrUnsupported, adapter, res)
	}
	if len(args) == 1 {
		t := args[0]
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		s.whole = t.Kind() == reflect.Struct
	}
	s.setLabels()
	return s
}

func (s *sig) setLabels() {
	for i := 0; i < s.arity; i++ {
		if s.names != nil {
			s.label[i] = "param " + strconv.Itoa(i+1) + " (" + s.names[i] + ")"
		} else {
			s.label[i] = "param " + strconv.Itoa(i+1)
		}
	}
}

// configure applies registration options. It works on a copy owned by the caller.
func (s *sig) configure(o *options) error {
	if o.names == nil {
		return nil
	}
	if len(o.names) != s.arity {
		return fmt.Errorf("%w: Names got %d names for a function of %d params", ErrBadOption, len(o.names), s.arity)
	}
	seen := make(map[string]bool, len(o.names))
	for i, n := range o.names {
		if n == "" {
			return fmt.Errorf("%w: Names: name %d is empty", ErrBadOption, i+1)
		}
		if seen[n] {
			return fmt.Errorf("%w: Names: name %q given twice", ErrBadOption, n)
		}
		seen[n] = true
	}
	s.names = append([]string(nil), o.names...)
	s.whole = false
	s.setLabels()
	return nil
}

// invalidParams builds the -32602 error. Only the error path allocates.
func invalidParams(msg string) error {
	return codec.NewError(codec.CodeInvalidParams, msg, nil)
}

func (s *sig) countError(got int) error {
	want := "params"
	if s.arity == 1 {
		want = "param"
	}
	if s.names != nil {
		return invalidParams(fmt.Sprintf("expected %d %s (%s), got %d", s.arity, want, strings.Join(s.names, ", "), got))
	}
	return invalidParams(fmt.Sprintf("expected %d %s, got %d", s.arity, want, got))
}

func syntaxError(err error, off int) error {
	if errors.Is(err, errDepth) {
		return invalidParams(fmt.Sprintf("params nested deeper than %d levels", maxParamDepth))
	}
	return invalidParams(fmt.Sprintf("params: invalid JSON at offset %d", off))
}

// typeError reports a value the fast path refused: "param 2 (b): expected int, got string".
func (s *sig) typeError(i int, raw []byte) error {
	return invalidParams(s.label[i] + ": expected " + s.types[i] + ", got " + jsonKind(raw))
}

// decodeError turns a decoding failure into a -32602 message in the same words as the fast
// path ("param 1 (p): field x: expected int, got string").
func decodeError(label string, err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		msg := label + ": "
		if ute.Field != "" {
			msg += "field " + ute.Field + ": "
		}
		return invalidParams(msg + "expected " + ute.Type.String() + ", got " + ute.Value)
	}
	return invalidParams(label + ": " + strings.TrimPrefix(err.Error(), "json: "))
}

// split validates params and cuts them into one raw value per parameter, in out (len(out) ==
// s.arity, all nil on entry). It accepts absent params and null as "no params", a positional
// array, or a named object (with Names, or whole into a single struct parameter). out only
// receives sub-slices of params, so nothing here allocates on success.
func (s *sig) split(params []byte, out [][]byte) error {
	p := rawjson.TrimSpace(params)
	if len(p) == 0 || string(p) == "null" {
		if s.arity == 0 {
			return nil
		}
		return s.countError(0)
	}
	switch p[0] {
	case '[':
		it := elemIter(p, 1)
		for it.next() {
			if it.n <= len(out) {
				out[it.n-1] = it.val
			}
		}
		if it.err != nil {
			return syntaxError(it.err, it.i)
		}
		if it.i != len(p) {
			return syntaxError(errSyntax, it.i)
		}
		if it.n != s.arity {
			return s.countError(it.n)
		}
		return nil
	case '{':
		if s.whole {
			end, err := skipValue(p, 0)
			if err != nil || end != len(p) {
				if err == nil {
					err = errSyntax
				}
				return syntaxError(err, end)
			}
			out[0] = p
			return nil
		}
		return s.splitNamed(p, out)
	}
	return invalidParams("params must be an array or an object, got " + jsonKind(p))
}

// splitNamed matches the members of the params object to the names given at registration.
// JSON-RPC asks for exact, case-sensitive names; unknown and repeated names are refused.
func (s *sig) splitNamed(p []byte, out [][]byte) error {
	it := fieldIter(p, 1)
	for it.next() {
		if s.names == nil {
			continue // refused below once the object is known to be valid JSON
		}
		j := s.nameIndex(it.key)
		if j < 0 {
			return invalidParams("unknown param " + keyText(it.key))
		}
		if out[j] != nil {
			return invalidParams("duplicate param " + keyText(it.key))
		}
		out[j] = it.val
	}
	if it.err != nil {
		return syntaxError(it.err, it.i)
	}
	if it.i != len(p) {
		return syntaxError(errSyntax, it.i)
	}
	if s.names == nil {
		if s.arity == 0 && it.n == 0 {
			return nil // {} for a method without params
		}
		if s.arity == 0 {
			return invalidParams(fmt.Sprintf("expected no params, got %d", it.n))
		}
		return invalidParams("named params are not supported by this method: pass an array of " +
			strconv.Itoa(s.arity))
	}
	for j := range out {
		if out[j] == nil {
			return invalidParams("missing " + s.label[j])
		}
	}
	return nil
}

// nameIndex finds the parameter named by the raw JSON key (quotes included). Keys without
// escapes compare in place (string(b) == s does not allocate); escaped keys are decoded first.
func (s *sig) nameIndex(key []byte) int {
	k := key[1 : len(key)-1]
	if bytes.IndexByte(k, '\\') >= 0 {
		var dec string
		if codec.Unmarshal(key, &dec) != nil {
			return -1
		}
		k = []byte(dec)
	}
	for j, n := range s.names {
		if string(k) == n {
			return j
		}
	}
	return -1
}

// keyText renders a raw key for a message, shortened so that a hostile key cannot make the error
// large.
func keyText(key []byte) string {
	if len(key) > 66 {
		return string(key[:64]) + `..."`
	}
	return string(key)
}

// decodeArg decodes the raw value of parameter i into an A. The predeclared scalar types are
// parsed here (strictly: 5.0 is not an int, null is not a string); everything else goes through
// codec.Unmarshal. The unsafe conversions are sound because kindOf matched A's exact type when
// the adapter was built; they avoid boxing A in an interface, which would allocate.
func decodeArg[A any](s *sig, i int, raw []byte) (a A, err error) {
	p := unsafe.Pointer(&a)
	switch s.kinds[i] {
	case kindSlow:
		return decodeSlow[A](s.label[i], raw)
	case kindBool:
		switch string(raw) {
		case "true":
			*(*bool)(p) = true
		case "false":
		default:
			return a, s.typeError(i, raw)
		}
	case kindString:
		if len(raw) < 2 || raw[0] != '"' {
			return a, s.typeError(i, raw)
		}
		if bytes.IndexByte(raw, '\\') >= 0 {
			return decodeSlow[A](s.label[i], raw)
		}
		// The scanner already checked the quotes and UTF-8. The copy is the one allocation a
		// string param costs: the handler may keep it after the request buffer is reused.
		*(*string)(p) = string(raw[1 : len(raw)-1])
	case kindFloat32, kindFloat64:
		f, ok := parseFloat(raw, s.kinds[i].bits())
		if !ok {
			return a, s.typeError(i, raw)
		}
		if s.kinds[i] == kindFloat32 {
			*(*float32)(p) = float32(f)
		} else {
			*(*float64)(p) = f
		}
	case kindInt, kindInt8, kindInt16, kindInt32, kindInt64:
		v, ok := parseInt(raw, s.kinds[i].bits())
		if !ok {
			return a, s.typeError(i, raw)
		}
		switch s.kinds[i] {
		case kindInt:
			*(*int)(p) = int(v)
		case kindInt8:
			*(*int8)(p) = int8(v)
		case kindInt16:
			*(*int16)(p) = int16(v)
		case kindInt32:
			*(*int32)(p) = int32(v)
		default:
			*(*int64)(p) = v
		}
	case kindUint, kindUint8, kindUint16, kindUint32, kindUint64:
		v, ok := parseUint(raw, s.kinds[i].bits())
		if !ok {
			return a, s.typeError(i, raw)
		}
		switch s.kinds[i] {
		case kindUint:
			*(*uint)(p) = uint(v)
		case kindUint8:
			*(*uint8)(p) = uint8(v)
		case kindUint16:
			*(*uint16)(p) = uint16(v)
		case kindUint32:
			*(*uint32)(p) = uint32(v)
		default:
			*(*uint64)(p) = v
		}
	}
	return a, nil
}

// decodeSlow decodes through codec.Unmarshal. It is its own function so that taking the
// address of its variable (which escapes into Unmarshal) does not move decodeArg's to the heap.
//
// On failure the value is decoded a second time with encoding/json, only to word the error:
// its UnmarshalTypeError names the JSON path and kind precisely, where goccy/go-json's names Go
// fields and truncated values. Failed requests are the rare case; their cost does not matter.
func decodeSlow[A any](label string, raw []byte) (A, error) {
	var a A
	if err := codec.Unmarshal(raw, &a); err != nil {
		var again A
		if serr := json.Unmarshal(raw, &again); serr != nil {
			err = serr
		}
		return a, decodeError(label, err)
	}
	return a, nil
}

// appendResult appends r as JSON. Like decodeArg it handles the predeclared scalar types itself
// and hands everything else to codec.Marshal.
func appendResult[R any](dst []byte, k kind, r R) ([]byte, error) {
	p := unsafe.Pointer(&r)
	switch k {
	case kindSlow:
		return appendSlow(dst, r)
	case kindNull:
		return append(dst, "null"...), nil
	case kindBool:
		if *(*bool)(p) {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case kindString:
		return codec.AppendString(dst, *(*string)(p)), nil
	case kindInt:
		return strconv.AppendInt(dst, int64(*(*int)(p)), 10), nil
	case kindInt8:
		return strconv.AppendInt(dst, int64(*(*int8)(p)), 10), nil
	case kindInt16:
		return strconv.AppendInt(dst, int64(*(*int16)(p)), 10), nil
	case kindInt32:
		return strconv.AppendInt(dst, int64(*(*int32)(p)), 10), nil
	case kindInt64:
		return strconv.AppendInt(dst, *(*int64)(p), 10), nil
	case kindUint:
		return strconv.AppendUint(dst, uint64(*(*uint)(p)), 10), nil
	case kindUint8:
		return strconv.AppendUint(dst, uint64(*(*uint8)(p)), 10), nil
	case kindUint16:
		return strconv.AppendUint(dst, uint64(*(*uint16)(p)), 10), nil
	case kindUint32:
		return strconv.AppendUint(dst, uint64(*(*uint32)(p)), 10), nil
	case kindUint64:
		return strconv.AppendUint(dst, *(*uint64)(p), 10), nil
	case kindFloat32, kindFloat64:
		f, bits := float64(0), 64
		if k == kindFloat32 {
			f, bits = float64(*(*float32)(p)), 32
		} else {
			f = *(*float64)(p)
		}
		out, ok := appendFloat(dst, f, bits)
		if !ok {
			return dst, resultError(fmt.Errorf("unsupported value %v", f))
		}
		return out, nil
	}
	return appendSlow(dst, r)
}

func appendSlow[R any](dst []byte, r R) ([]byte, error) {
	b, err := codec.Marshal(r)
	if err != nil {
		return dst, resultError(err)
	}
	return append(dst, b...), nil
}

// resultError is the -32603 a typed handler returns when its result cannot be encoded: the
// method ran, but its answer cannot be sent, which is the server's fault.
func resultError(err error) error {
	return codec.NewError(codec.CodeInternalError, "internal error: cannot encode result: "+
		strings.TrimPrefix(err.Error(), "json: "), nil)
}

// typedHandler is implemented by every adapter (Func2, Pure2, ...). Register uses it to apply
// options and to report problems found when the adapter was built.
type typedHandler interface {
	Handler
	signature() *sig
	withOptions(o *options) (Handler, error)
}

// Option configures a method at registration (see Register).
type Option interface {
	apply(*options)
}

type options struct {
	names  []string
	policy Policy // TimeLimit, RetryOnError: any handler (see retry.go)
}

// empty reports whether no option changes how a typed adapter decodes its params (Names).
func (o *options) empty() bool { return o.names == nil }

type namesOption []string

func (n namesOption) apply(o *options) { o.names = append([]string{}, n...) }

// Names gives the parameters of a typed adapter their names, in order, so that the method also
// accepts named params: {"a":5,"b":6} as well as [5,6]. Names must match exactly (JSON-RPC
// names are case-sensitive); a params object with an unknown, repeated or missing name gets
// -32602. The count must equal the function's arity, or Register fails with ErrBadOption.
//
// Without Names a method takes positional params only, except a method with one struct
// (or pointer to struct) parameter, which also takes a params object decoded whole into it
// by its json tags.
func Names(names ...string) Option { return namesOption(names) }
