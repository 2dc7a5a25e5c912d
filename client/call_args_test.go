package client

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// TestAppendArgs: the kinds appendArgs writes itself come out as the same JSON values as
// encoding/json makes of them; anything else goes to codec.Marshal (ok false), whose answer
// encodeArgs then gives; a json.RawMessage that is not one valid JSON value is refused.
func TestAppendArgs(t *testing.T) {
	type point struct{ X, Y int }
	cases := []struct {
		name string
		args []any
		ok   bool
		bad  bool // encodeArgs refuses it
	}{
		{"two ints", []any{5, 6}, true, false},
		{"every integer type", []any{int8(-8), int16(-16), int32(-32), int64(math.MinInt64), uint(1), uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(math.MaxUint64)}, true, false},
		{"bool and nil", []any{true, false, nil}, true, false},
		{"strings", []any{"", "plain", "quote \" backslash \\ tab \t nl \n", "\x01\x1f", "é \u2028 \u2029", "<&>", string([]byte{0xff, 'a'})}, true, false},
		{"raw values", []any{json.RawMessage(`{"a":[1,2.5e3,"x"]}`), json.RawMessage(` 7 `), json.RawMessage(`null`)}, true, false},
		{"a float", []any{1.5}, false, false},
		{"a struct", []any{point{1, 2}}, false, false},
		{"a map", []any{map[string]int{"a": 1}}, false, false},
		{"a slice", []any{[]int{1, 2}}, false, false},
		{"ints then a float", []any{1, 2, 3.25}, false, false},
		{"invalid raw", []any{json.RawMessage(`{"a":01}`)}, false, true},
		{"two raw values in one", []any{json.RawMessage(`1 2`)}, false, true},
		{"empty raw", []any{json.RawMessage(``)}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, _ := appendArgs(nil, tc.args)
			if ok != tc.ok {
				t.Fatalf("appendArgs ok = %v, want %v (%s)", ok, tc.ok, got)
			}
			enc, err := encodeArgs(nil, tc.args)
			if tc.bad {
				if err == nil {
					t.Fatalf("encodeArgs = %s, want an error", enc)
				}
				return
			}
			want, werr := json.Marshal(tc.args)
			if (err != nil) != (werr != nil) {
				t.Fatalf("encodeArgs error %v, encoding/json's %v", err, werr)
			}
			if werr != nil {
				return
			}
			var g, w any
			if err := json.Unmarshal(enc, &g); err != nil {
				t.Fatalf("encodeArgs gave invalid JSON %q: %v", enc, err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("encodeArgs = %s, encoding/json = %s", enc, want)
			}
		})
	}
}

// TestArgsBufBound: a params buffer grown up to argsPooledMax goes back to the pool in place of
// the one taken; one grown past it does not.
func TestArgsBufBound(t *testing.T) {
	for _, tc := range []struct {
		size int
		kept bool
	}{{argsPooledMax, true}, {argsPooledMax + 1, false}} {
		pb := &[]byte{}
		params := make([]byte, 0, tc.size)
		putArgsBuf(pb, params)
		if got := cap(*pb) == tc.size; got != tc.kept {
			t.Errorf("params of cap %d: kept %v, want %v", tc.size, got, tc.kept)
		}
	}
}
