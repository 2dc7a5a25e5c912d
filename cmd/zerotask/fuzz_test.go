package main

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParamsOf feeds arbitrary command-line arguments to the ARG parser: the params are always a
// JSON array with one member per argument, a valid-JSON argument kept as that value and any
// other (valid UTF-8) argument kept as the exact string.
func FuzzParamsOf(f *testing.F) {
	for _, seed := range [][2]string{
		{"5", "6"}, {"hello", "1e3"}, {`{"a":[1,2]}`, `"quoted"`}, {"", " "}, {"-0", "nul"},
		{"\xff\xfe", "[1,"}, {"\u2028", `"\ud800"`}, {"1 2", "true false"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		params, err := paramsOf([]string{a, b}, "")
		if err != nil {
			t.Fatalf("paramsOf(%q, %q): %v", a, b, err)
		}
		var members []json.RawMessage
		if err := json.Unmarshal(params, &members); err != nil || len(members) != 2 {
			t.Fatalf("paramsOf(%q, %q) = %s: not a JSON array of 2 (%v)", a, b, params, err)
		}
		for i, arg := range []string{a, b} {
			m := members[i]
			if json.Valid([]byte(arg)) {
				var x, y any
				if json.Unmarshal([]byte(arg), &x) != nil || json.Unmarshal(m, &y) != nil {
					t.Fatalf("arg %q became %s", arg, m)
				}
				continue
			}
			var s string
			if err := json.Unmarshal(m, &s); err != nil {
				t.Fatalf("non-JSON arg %q became %s, not a string", arg, m)
			}
			if utf8.ValidString(arg) && s != arg {
				t.Fatalf("arg %q became the string %q", arg, s)
			}
		}
		// --params accepts exactly the arrays and objects, whatever else it is given ("" means
		// the flag was not given).
		if raw, err := paramsOf(nil, a); err == nil && a != "" {
			if !json.Valid(raw) || (raw[0] != '[' && raw[0] != '{') {
				t.Fatalf("--params %q gave %s", a, raw)
			}
		}
	})
}
