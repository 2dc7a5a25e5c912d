package codec

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"testing"
	"testing/quick"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	cases := map[string]string{
		"":                 `""`,
		"plain":            `"plain"`,
		`q"b\s/`:           `"q\"b\\s/"`,
		"\n\r\t\b\f":       `"\n\r\t\b\f"`,
		"\x00\x01\x1f\x7f": `"\u0000\u0001\u001f` + "\x7f" + `"`,
		"é→😀":              `"é→😀"`,
		"bad\xffutf8\xc0":  `"bad\ufffdutf8\ufffd"`,
		"\u2028\u2029":     `"\u2028\u2029"`,
		"<&>":              `"<&>"`,
	}
	for in, want := range cases {
		if got := string(AppendString(nil, in)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
		if got := string(AppendStringBytes(nil, []byte(in))); got != want {
			t.Errorf("AppendStringBytes(%q) = %s, want %s", in, got, want)
		}
	}
}

// Property: AppendString always writes valid JSON that decodes (with encoding/json) to the
// input, invalid UTF-8 replaced by U+FFFD; Scan accepts it as a method name and AppendUnescape
// gives the same string back.
func TestAppendStringRoundTrip(t *testing.T) {
	f := func(s string) bool {
		enc := AppendString(nil, s)
		var back string
		if err := stdjson.Unmarshal(enc, &back); err != nil {
			t.Logf("invalid JSON %q for %q", enc, s)
			return false
		}
		if utf8.ValidString(s) && back != s {
			return false
		}
		frame := AppendNotification(nil, s, nil)
		h := Header{Scratch: make([]byte, 0, len(enc))}
		if err := Scan(frame, &h); err != nil || string(h.Method) != back {
			t.Logf("Scan(%q) = %v, method %q want %q", frame, err, h.Method, back)
			return false
		}
		return string(AppendUnescape(nil, enc[1:len(enc)-1])) == back
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 5000}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"\xff", "a\xc3", "\xed\xa0\x80", "\U0010FFFF", "\x00"} {
		if !f(s) {
			t.Errorf("round trip fails for %q", s)
		}
	}
}

func TestAppendUnescape(t *testing.T) {
	cases := []string{
		`plain`, `\"\\\/\b\f\n\r\t`, `\u0041\u00e9\u20ac`, `\ud83d\ude00`, `\ud800`, `\udc00`,
		`\ud800\u0041`, `\ud800\ud800\udc00`, `a\u0000b`, `\uD83D\uDE00`,
	}
	for _, c := range cases {
		var want string
		if err := stdjson.Unmarshal([]byte(`"`+c+`"`), &want); err != nil {
			t.Fatal(err)
		}
		if got := string(AppendUnescape([]byte("pre:"), []byte(c))); got != "pre:"+want {
			t.Errorf("AppendUnescape(%s) = %q, want %q", c, got, want)
		}
	}
	// Malformed escapes (never produced by Scan) are copied, not a panic.
	for _, c := range []string{`\`, `\u12`, `\x`, `\u12G4`, `\ud800\u`} {
		_ = AppendUnescape(nil, []byte(c))
	}
}

func TestEncoders(t *testing.T) {
	cases := []struct{ got, want string }{
		{string(AppendRequest(nil, []byte(`1`), "subtract", []byte(`[42,23]`))), `{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}`},
		{string(AppendRequest(nil, []byte(`"x"`), "m", nil)), `{"jsonrpc":"2.0","method":"m","id":"x"}`},
		{string(AppendRequestBytes(nil, []byte(`null`), []byte("a\"b"), []byte(`{}`))), `{"jsonrpc":"2.0","method":"a\"b","params":{},"id":null}`},
		{string(AppendNotification(nil, "update", []byte(`[1]`))), `{"jsonrpc":"2.0","method":"update","params":[1]}`},
		{string(AppendNotification(nil, "ping", nil)), `{"jsonrpc":"2.0","method":"ping"}`},
		{string(AppendResult(nil, nil, nil)), `{"jsonrpc":"2.0","id":null,"result":null}`},
		{string(AppendResult([]byte("x"), []byte(`1`), []byte(`[1,2]`))), `x{"jsonrpc":"2.0","id":1,"result":[1,2]}`},
		{string(AppendError(nil, []byte(`1`), nil)), `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error"}}`},
		{string(AppendError(nil, nil, NewError(-32000, "boom\n", []byte(`{"a":1}`)))), `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"boom\n","data":{"a":1}}}`},
		{string(AppendErrorObject(nil, ErrInvalidParams)), `{"code":-32602,"message":"Invalid params"}`},
		{string(AppendBatchEnd(AppendBatchSep(AppendBatchSep(AppendBatchStart(nil), 0), 1))), `[,]`},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
	// What the encoders write, Scan reads back.
	var h Header
	for _, frame := range []string{cases[0].want, cases[3].want, cases[6].want[1:], cases[8].want} {
		if err := Scan([]byte(frame), &h); err != nil {
			t.Errorf("Scan(%s): %v", frame, err)
		}
	}
}

func TestErrorType(t *testing.T) {
	remote := &Error{Code: CodeMethodNotFound, Message: "no such method: foo"}
	if !errors.Is(remote, ErrMethodNotFound) || errors.Is(remote, ErrInvalidParams) {
		t.Fatal("Is must match by code")
	}
	wrapped := fmt.Errorf("call failed: %w", remote)
	if !errors.Is(wrapped, ErrMethodNotFound) || AsError(wrapped) != remote {
		t.Fatal("wrapped *Error not found")
	}
	if AsError(errors.New("x")) != ErrInternal || AsError(nil) != nil {
		t.Fatal("AsError of a plain error must be ErrInternal, of nil nil")
	}
	if !errors.Is(ErrTooDeep, ErrInvalidRequest) || !errors.Is(ErrBatchTooLarge, ErrInvalidRequest) {
		t.Fatal("limit errors must match ErrInvalidRequest")
	}
	if got := NewError(1, "m", []byte(`[1]`)).Error(); got != "jsonrpc: m (code 1): [1]" {
		t.Fatalf("Error() = %q", got)
	}
	var nilErr *Error
	if nilErr.Is(ErrParse) || nilErr.Error() == "" {
		t.Fatal("nil *Error")
	}
	for k, want := range map[Kind]string{KindInvalid: "invalid", KindRequest: "request", KindNotification: "notification", KindResponse: "response", KindBatch: "batch"} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q", k, k.String())
		}
	}
	if Kind(9).String() != "kind(9)" {
		t.Errorf("Kind(9).String() = %q", Kind(9).String())
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := DecodeRequest([]byte(`{"jsonrpc":"2.0","result":1,"id":1}`)); err != ErrInvalidRequest {
		t.Fatalf("DecodeRequest(response) = %v", err)
	}
	if _, err := DecodeRequest([]byte(`[{"jsonrpc":"2.0","method":"m"}]`)); err != ErrInvalidRequest {
		t.Fatalf("DecodeRequest(batch) = %v", err)
	}
	if _, err := DecodeResponse([]byte(`{"jsonrpc":"2.0","method":"m"}`)); err != ErrInvalidRequest {
		t.Fatalf("DecodeResponse(request) = %v", err)
	}
	if _, err := DecodeResponse([]byte(`{`)); err != ErrParse {
		t.Fatalf("DecodeResponse({) = %v", err)
	}
	r, err := DecodeResponse([]byte(`{"jsonrpc":"2.0","error":{"code":-32000,"message":"x","data":null},"id":1}`))
	if err != nil || r.Error == nil || string(r.Error.Data) != "null" {
		t.Fatalf("DecodeResponse = %+v, %v", r, err)
	}
	var v int
	if err := r.UnmarshalResult(&v); err != r.Error {
		t.Fatalf("UnmarshalResult of an error response = %v", err)
	}
	req, _ := DecodeRequest([]byte(`{"jsonrpc":"2.0","method":"m","params":["x"],"id":1}`))
	if err := req.UnmarshalParams(&v); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("UnmarshalParams type mismatch = %v", err)
	}
	if _, err := DecodeError([]byte(`{"code":1}`)); err != ErrInvalidRequest {
		t.Fatalf("DecodeError = %v", err)
	}
	if _, err := DecodeError([]byte(`{"code":1,`)); err != ErrParse {
		t.Fatalf("DecodeError = %v", err)
	}
}

func TestBatchIterErrors(t *testing.T) {
	cases := map[string]*Error{
		`{"jsonrpc":"2.0","method":"m"}`: ErrInvalidRequest, // not a batch
		`[]`:                             ErrInvalidRequest,
		` [ ] x`:                         ErrParse,
		``:                               ErrParse,
		`[`:                              ErrParse,
		`[1`:                             ErrParse,
		`[1 2]`:                          ErrParse,
		`[1,]`:                           ErrParse,
		`[1]x`:                           ErrParse,
		`[{"a":}]`:                       ErrParse,
	}
	for frame, want := range cases {
		var it BatchIter
		it.Reset([]byte(frame))
		for it.Next() {
		}
		if it.Err() != want {
			t.Errorf("BatchIter(%s).Err() = %v, want %v", frame, it.Err(), want)
		}
		if it.Next() {
			t.Errorf("Next after the end")
		}
	}
	// Reuse: a BatchIter resets cleanly.
	var it BatchIter
	it.Reset([]byte(`[1`))
	for it.Next() {
	}
	it.Reset([]byte(`[{"jsonrpc":"2.0","method":"m","id":1}]`))
	n := 0
	for it.Next() {
		h, err := it.Header()
		if err != nil || h.Kind != KindRequest || string(it.Elem()) != `{"jsonrpc":"2.0","method":"m","id":1}` {
			t.Fatalf("element: %+v %v", h, err)
		}
		n++
	}
	if n != 1 || it.Err() != nil {
		t.Fatalf("n=%d err=%v", n, it.Err())
	}
}

// Regression: go-json v0.10.5 trips checkptr (fatal under -race) on a bare JSON string with
// escapes; Unmarshal and Decode route such strings to encoding/json.
func TestUnmarshalEscapedString(t *testing.T) {
	var s string
	if err := Unmarshal([]byte(`"a\u0041\n"`), &s); err != nil || s != "aA\n" {
		t.Fatalf("Unmarshal = %q, %v", s, err)
	}
	r, err := DecodeResponse([]byte(`{"jsonrpc":"2.0","result":"x\u0079","id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.UnmarshalResult(&s); err != nil || s != "xy" {
		t.Fatalf("UnmarshalResult = %q, %v", s, err)
	}
	var v struct{ A []int }
	if err := Unmarshal([]byte(`{"A":[1,2]}`), &v); err != nil || len(v.A) != 2 {
		t.Fatalf("Unmarshal struct = %+v, %v", v, err)
	}
	b, err := Marshal(map[string]int{"a": 1})
	if err != nil || string(b) != `{"a":1}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
}
