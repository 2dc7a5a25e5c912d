package rawjson

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSkip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		at   int
		want int
	}{
		{`"abc"`, 0, 5},
		{`"a\"b",1`, 0, 6},
		{`"open`, 0, -1},
		{`123,4`, 0, 3},
		{`-1.5e3]`, 0, 6},
		{`true}`, 0, 4},
		{`null`, 0, 4},
		{`[1,[2,{"a":"]"}]] tail`, 0, 17},
		{`{"a":{"b":"}"}}`, 0, 15},
		{`[[[`, 0, -1},
		{`,1`, 0, -1},
		{`:`, 0, -1},
		{` 1`, 0, -1}, // no leading space allowed
		{``, 0, -1},
		{`1`, 5, -1},
		{`1`, -1, -1},
		// Nesting up to codec.HardMaxDepth, what codec.Scan lets through at most.
		{strings.Repeat("[", 1024) + strings.Repeat("]", 1024), 0, 2048},
		{strings.Repeat("[", 1025) + strings.Repeat("]", 1025), 0, -1},
		{`"\x"`, 0, -1}, // validated: an invalid escape is not a string
	} {
		if got := Skip([]byte(tc.in), tc.at); got != tc.want {
			t.Errorf("Skip(%.40q, %d) = %d, want %d", tc.in, tc.at, got, tc.want)
		}
	}
}

func TestMember(t *testing.T) {
	for _, tc := range []struct {
		obj, key string
		want     string
		found    bool
	}{
		{`{"id":7,"method":"add"}`, "method", `"add"`, true},
		{` { "id" : 7 , "x" : [1, 2] } `, "x", `[1, 2]`, true},
		{`{"a":1,"a":2}`, "a", `2`, true}, // the last one wins, as in encoding/json
		{`{"a":{"b":1}}`, "b", ``, false}, // top level only
		{`{}`, "a", ``, false},
		{`[1]`, "a", ``, false},
		{`{"a":1,}`, "a", ``, false},
		{`{"a" 1}`, "a", ``, false},
		{`{"a":1`, "a", ``, false},
		{`{"a\"":1}`, `a\"`, `1`, true}, // names as written
		{``, "a", ``, false},
	} {
		got := Member([]byte(tc.obj), tc.key)
		if (got != nil) != tc.found || string(got) != tc.want {
			t.Errorf("Member(%q, %q) = %q, want %q (found %v)", tc.obj, tc.key, got, tc.want, tc.found)
		}
	}
}

func TestObjectKnown(t *testing.T) {
	obj := []byte(`{"jsonrpc":"2.0","params":[1,"]}"],"timeout_ms":50}`)
	i := bytes.Index(obj, []byte(`[1,`))
	params := obj[i : i+len(`[1,"]}"]`)]
	var names []string
	var o Object
	o.Reset(obj)
	o.Known(params)
	o.Known([]byte("[elsewhere]")) // not inside obj: ignored
	for o.Next() {
		names = append(names, string(o.Name())+"="+string(o.Value()))
	}
	if o.Malformed() {
		t.Fatal("walk reported malformed input")
	}
	want := []string{`jsonrpc="2.0"`, `params=[1,"]}"]`, `timeout_ms=50`}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("members %q, want %q", names, want)
	}
}

func TestArrayAndParam(t *testing.T) {
	for _, tc := range []struct {
		in    string
		elems []string
		bad   bool
	}{
		{`[]`, nil, false},
		{` [ 1 , "a" , [2,3] ] `, []string{`1`, `"a"`, `[2,3]`}, false},
		{`[1,]`, []string{`1`}, true},
		{`[1 2]`, nil, true},
		{`{"a":1}`, nil, true},
		{`[`, nil, true},
	} {
		var got []string
		var a Array
		for a.Reset([]byte(tc.in)); a.Next(); {
			got = append(got, string(a.Value()))
		}
		if strings.Join(got, "|") != strings.Join(tc.elems, "|") || a.Malformed() != tc.bad {
			t.Errorf("Array(%q) = %q malformed %v, want %q malformed %v", tc.in, got, a.Malformed(), tc.elems, tc.bad)
		}
	}
	for _, tc := range []struct {
		params string
		pos    int
		want   string
	}{
		{`[16]`, 0, `16`},
		{`[16,32]`, 1, `32`},
		{`[16]`, 1, ``},
		{`{"credit":16}`, 0, `16`},
		{`{"other":16}`, 0, ``},
		{`null`, 0, ``},
		{``, 0, ``},
	} {
		if got := Param([]byte(tc.params), "credit", tc.pos); string(got) != tc.want {
			t.Errorf("Param(%q, credit, %d) = %q, want %q", tc.params, tc.pos, got, tc.want)
		}
	}
}

func TestScalars(t *testing.T) {
	for _, tc := range []struct {
		in   string
		u    uint64
		uok  bool
		i    int64
		iok  bool
		str  string
		sok  bool
		true bool
	}{
		{in: `0`, u: 0, uok: true, i: 0, iok: true},
		{in: ` 42 `, u: 42, uok: true, i: 42, iok: true},
		{in: `-7`, i: -7, iok: true},
		{in: `18446744073709551615`, u: 1<<64 - 1, uok: true},
		{in: `18446744073709551616`},
		{in: `18446744073709551625`},
		{in: `28446744073709551615`},
		{in: `1844674407370955161a`},
		{in: `9999999999999999999`, u: 9999999999999999999, uok: true},
		{in: `10000000000000000000`, u: 10000000000000000000, uok: true},
		{in: `184467440737095516150`},
		{in: `12a`},
		{in: "\t9\n", u: 9, uok: true, i: 9, iok: true},
		{in: ` `},
		{in: ``},
		{in: `4611686018427387904`, u: 1 << 62, uok: true, i: 1 << 62, iok: true},
		{in: `4611686018427387905`, u: 1<<62 + 1, uok: true},
		{in: `007`},
		{in: `1.5`},
		{in: `1e3`},
		{in: `-`},
		{in: `"abc"`, str: "abc", sok: true},
		{in: `"a\"b"`},
		{in: "\"\xff\""},
		{in: `""`, str: "", sok: true},
		{in: ` true `, true: true},
		{in: `"true"`, str: "true", sok: true},
	} {
		u, uok := ParseUint([]byte(tc.in))
		i, iok := ParseInt([]byte(tc.in))
		s, sok := Unquote([]byte(tc.in))
		if u != tc.u || uok != tc.uok || i != tc.i || iok != tc.iok || string(s) != tc.str || sok != tc.sok || IsTrue([]byte(tc.in)) != tc.true {
			t.Errorf("%q: ParseUint %d %v, ParseInt %d %v, Unquote %q %v, IsTrue %v; want %d %v, %d %v, %q %v, %v",
				tc.in, u, uok, i, iok, s, sok, IsTrue([]byte(tc.in)), tc.u, tc.uok, tc.i, tc.iok, tc.str, tc.sok, tc.true)
		}
	}
}

// TestAllocs: the walks allocate nothing.
func TestAllocs(t *testing.T) {
	obj := []byte(`{"jsonrpc":"2.0","id":12,"method":"broker.credit","params":{"credit":16,"ids":[1,2,3]}}`)
	n := testing.AllocsPerRun(100, func() {
		p := Member(obj, "params")
		if c, ok := ParseUint(Param(p, "credit", 0)); !ok || c != 16 {
			t.Fatal("credit not found")
		}
		var a Array
		for a.Reset(Member(p, "ids")); a.Next(); {
			if _, ok := ParseUint(a.Value()); !ok {
				t.Fatal("bad id")
			}
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per walk, want 0", n)
	}
}

// FuzzRawJSON feeds any bytes to the walks: none may panic or run past its input, on valid
// JSON they agree with encoding/json, and the integer parsers agree with strconv.
func FuzzRawJSON(f *testing.F) {
	for _, s := range []string{
		`[16]`, `{"credit":16}`, `[1,2,3]`, `{"ids":[1,2]}`, `{"id":"0badcafe-17","wait_ms":50}`,
		`["add",[5,6]]`, `{"a":{"b":[1,{"c":"\"}"}]},"a":2}`, `[`, `{"x":`, `"\u00e9"`, `18446744073709551615`,
		`18446744073709551616`, `-0`, `007`, ` [ 1 , 2 ] `, `[]`, `{}`, `[[[[[[[[[[]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Valid as RFC 8259 and codec.Scan read it: encoding/json does not demand valid UTF-8
		// inside strings (it substitutes U+FFFD), the walker does.
		valid := json.Valid(b) && utf8.Valid(b)
		tb := TrimSpace(b)
		if end := Skip(tb, 0); end == 0 || end > len(tb) {
			t.Fatalf("Skip(%q) = %d", tb, end)
		} else if valid && end != len(tb) {
			t.Fatalf("Skip(%q) = %d on valid JSON, want %d", tb, end, len(tb))
		}
		var o Object
		for o.Reset(b); o.Next(); {
			if len(o.Value()) == 0 {
				t.Fatalf("empty member value in %q", b)
			}
		}
		if valid && len(tb) > 0 && tb[0] == '{' {
			if o.Malformed() {
				t.Fatalf("valid object %q walked as malformed", b)
			}
			var m map[string]json.RawMessage
			// Member compares names as written: only where nothing is escaped or replaced
			// do they equal encoding/json's.
			if err := json.Unmarshal(b, &m); err == nil && !bytes.Contains(b, []byte{'\\'}) && utf8.Valid(b) {
				for k, v := range m {
					if got := Member(b, k); !bytes.Equal(got, v) {
						t.Fatalf("Member(%q, %q) = %q, encoding/json says %q", b, k, got, v)
					}
				}
			}
		}
		var a Array
		for a.Reset(b); a.Next(); {
			if len(a.Value()) == 0 {
				t.Fatalf("empty element in %q", b)
			}
		}
		if valid && len(tb) > 0 && tb[0] == '[' {
			var elems []json.RawMessage
			if err := json.Unmarshal(b, &elems); err == nil {
				a.Reset(b)
				for k := 0; k < len(elems); k++ {
					if !a.Next() || !bytes.Equal(a.Value(), elems[k]) {
						t.Fatalf("element %d of %q = %q, encoding/json says %q", k, b, a.Value(), elems[k])
					}
				}
				if a.Next() || a.Malformed() {
					t.Fatalf("array %q: walk does not end with encoding/json's %d elements", b, len(elems))
				}
			}
		}
		if n, ok := ParseUint(b); ok {
			want, err := strconv.ParseUint(string(tb), 10, 64)
			if err != nil || want != n {
				t.Fatalf("ParseUint(%q) = %d, strconv says %d, %v", b, n, want, err)
			}
		}
		if n, ok := ParseInt(b); ok {
			want, err := strconv.ParseInt(string(tb), 10, 64)
			if err != nil || want != n {
				t.Fatalf("ParseInt(%q) = %d, strconv says %d, %v", b, n, want, err)
			}
		}
		if s, ok := Unquote(b); ok {
			var v string
			if err := json.Unmarshal(tb, &v); err != nil || v != string(s) {
				t.Fatalf("Unquote(%q) = %q, encoding/json says %q, %v", b, s, v, err)
			}
		}
	})
}

// TestResetMembers: a member list without braces is walked like an object's members; a
// malformed one stops the walk.
func TestResetMembers(t *testing.T) {
	tests := []struct {
		in   string
		want string // name=value pairs, space-separated
		bad  bool
	}{
		{``, ``, false},
		{`  `, ``, false},
		{`"a":1`, `a=1`, false},
		{`"a":1,"b":{"c":[2]} , "d" : "x"`, `a=1 b={"c":[2]} d="x"`, false},
		{`"a":1,`, `a=1`, true},
		{`"a":1}`, ``, true},
		{`"a"`, ``, true},
	}
	for _, tt := range tests {
		var o Object
		o.ResetMembers([]byte(tt.in))
		var got []string
		for o.Next() {
			got = append(got, string(o.Name())+"="+string(o.Value()))
		}
		if g := strings.Join(got, " "); g != tt.want || o.Malformed() != tt.bad {
			t.Errorf("%q: %q malformed %v, want %q malformed %v", tt.in, g, o.Malformed(), tt.want, tt.bad)
		}
	}
}
