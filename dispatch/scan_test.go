package dispatch

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zerotask/zerotask/internal/rawjson"
)

// validJSON is the scanner's verdict on a whole text: one value and nothing but whitespace.
func validJSON(b []byte) bool {
	i := rawjson.SkipSpace(b, 0)
	end, err := skipValue(b, i)
	return err == nil && rawjson.SkipSpace(b, end) == len(b)
}

func TestSkipValue(t *testing.T) {
	valid := []string{
		`0`, `-0`, `1`, `-12.5e+3`, `1E9`, `0.5`, `"x"`, `""`, `"\u00e9\n\"\\\/"`, `"é"`, `true`, `false`, `null`,
		`[]`, `[ ]`, `[1,[2,[3]]]`, `{}`, `{ "a" : [ {} ] , "b":null}`, " \t\r\n1 ",
	}
	invalid := []string{
		``, ` `, `01`, `-`, `1.`, `.5`, `1e`, `+1`, `0x1`, `NaN`, `"`, `"\x"`, `"\u12"`, "\"\x01\"", "\"\xff\"",
		`tru`, `nul`, `[1,]`, `[,1]`, `[1 2]`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1,}`, `{"a":1 "b":2}`, `[`, `{`,
		`1 2`, `[1]]`, `{}}`,
	}
	for _, s := range valid {
		if !validJSON([]byte(s)) || !json.Valid([]byte(s)) {
			t.Errorf("%q: scanner %v, encoding/json %v, want valid", s, validJSON([]byte(s)), json.Valid([]byte(s)))
		}
	}
	for _, s := range invalid {
		if validJSON([]byte(s)) || refValid([]byte(s)) {
			t.Errorf("%q: scanner %v, reference %v, want invalid", s, validJSON([]byte(s)), refValid([]byte(s)))
		}
	}
	// The depth bound: maxParamDepth containers are fine, one more is refused.
	ok := strings.Repeat("[", maxParamDepth) + strings.Repeat("]", maxParamDepth)
	if _, err := skipValue([]byte(ok), 0); err != nil {
		t.Fatalf("depth %d: %v", maxParamDepth, err)
	}
	deep := "[" + ok + "]"
	if _, err := skipValue([]byte(deep), 0); err != errDepth {
		t.Fatalf("depth %d: %v, want errDepth", maxParamDepth+1, err)
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		bits int
		want int64
		ok   bool
	}{
		{"0", 64, 0, true}, {"-0", 64, 0, true}, {"127", 8, 127, true}, {"128", 8, 0, false},
		{"-128", 8, -128, true}, {"-129", 8, 0, false},
		{"9223372036854775807", 64, math.MaxInt64, true}, {"9223372036854775808", 64, 0, false},
		{"-9223372036854775808", 64, math.MinInt64, true}, {"-9223372036854775809", 64, 0, false},
		{"99999999999999999999999", 64, 0, false}, {"01", 64, 0, false}, {"-", 64, 0, false},
		{"", 64, 0, false}, {"1.0", 64, 0, false}, {"1e2", 64, 0, false}, {"--1", 64, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseInt([]byte(tt.in), tt.bits)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseInt(%q, %d) = %d, %v; want %d, %v", tt.in, tt.bits, got, ok, tt.want, tt.ok)
		}
	}
	utests := []struct {
		in   string
		bits int
		want uint64
		ok   bool
	}{
		{"0", 8, 0, true}, {"255", 8, 255, true}, {"256", 8, 0, false}, {"-1", 64, 0, false},
		{"18446744073709551615", 64, math.MaxUint64, true}, {"18446744073709551616", 64, 0, false},
		{"4294967296", 32, 0, false}, {"00", 64, 0, false}, {"", 64, 0, false},
	}
	for _, tt := range utests {
		got, ok := parseUint([]byte(tt.in), tt.bits)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseUint(%q, %d) = %d, %v; want %d, %v", tt.in, tt.bits, got, ok, tt.want, tt.ok)
		}
	}
}

// TestAppendFloat holds the float encoder to encoding/json's output.
func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, math.MaxFloat64,
		math.SmallestNonzeroFloat64, -2.5e-300, 5e-324, math.Copysign(0, -1)} {
		want, _ := json.Marshal(f)
		got, ok := appendFloat(nil, f, 64)
		if !ok || string(got) != string(want) {
			t.Errorf("appendFloat(%v, 64) = %s, want %s", f, got, want)
		}
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) {
			continue
		}
		want, _ = json.Marshal(f32)
		got, ok = appendFloat(nil, float64(f32), 32)
		if !ok || string(got) != string(want) {
			t.Errorf("appendFloat(%v, 32) = %s, want %s", f32, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, ok := appendFloat(nil, f, 64); ok {
			t.Errorf("appendFloat(%v) succeeded", f)
		}
	}
}

// refValid is the reference verdict: encoding/json's, plus valid UTF-8, which encoding/json
// does not demand inside strings (it substitutes U+FFFD) but RFC 8259 and codec.Scan do.
func refValid(b []byte) bool { return json.Valid(b) && utf8.Valid(b) }

// FuzzSkipValue holds the params scanner to encoding/json's verdict on every input (plus
// valid UTF-8: see refValid).
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{`[1,2]`, `{"a":[true,null,"x\u00e9"]}`, `-1.5e3`, `[1,]`, `"\ud800"`, "\"\xed\xa0\x80\"", `01`, ` [ ] `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), refValid(b); got != want {
			t.Fatalf("%q: scanner says %v, the reference says %v", b, got, want)
		}
	})
}

// refAdd decodes params for add(a, b int) with encoding/json, as strictly as the typed fast
// path does (null is not an int): the reference the fuzz target compares against.
func refAdd(params []byte) (int, bool) {
	var raw []json.RawMessage
	if err := json.Unmarshal(params, &raw); err != nil || len(raw) != 2 {
		return 0, false
	}
	sum := 0
	for _, r := range raw {
		if strings.TrimSpace(string(r)) == "null" {
			return 0, false
		}
		var v int
		if err := json.Unmarshal(r, &v); err != nil {
			return 0, false
		}
		sum += v
	}
	return sum, true
}

// FuzzTypedParams feeds any params to the typed add and checks it against encoding/json: the
// same params succeed, with the same sum; failures are always -32602.
func FuzzTypedParams(f *testing.F) {
	for _, s := range []string{`[5,6]`, `[5]`, `[1,"x"]`, `{"a":1,"b":2}`, `[1.0,2]`, `[-0,0]`, `null`, `[9223372036854775807,0]`, `[[1],2]`} {
		f.Add([]byte(s))
	}
	_, typed := addDispatchers(f)
	method := []byte("add")
	f.Fuzz(func(t *testing.T, params []byte) {
		out, err := typed.Call(context.Background(), nil, method, params)
		if len(params) > 0 && params[0] == '{' {
			return // named params: the reference only knows arrays
		}
		want, ok := refAdd(params)
		if len(rawjson.TrimSpace(params)) == 0 {
			ok = false
		}
		if ok != (err == nil) {
			t.Fatalf("%q: Call gave %s, %v; encoding/json ok=%v", params, out, err, ok)
		}
		if err != nil {
			if ce := asRPCError(err); ce.Code != -32602 {
				t.Fatalf("%q: error code %d", params, ce.Code)
			}
			return
		}
		if string(out) != strconv.Itoa(want) {
			t.Fatalf("%q: got %s, want %d", params, out, want)
		}
	})
}
