package node

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
)

func TestBuiltins(t *testing.T) {
	d := testDispatcher(t)
	cases := []struct {
		method, params string
		want           string // raw result; empty when an error is expected
		code           int
	}{
		{"add", "[5,6]", "11", 0},
		{"add", "[5, 6]", "11", 0},
		{"add", "[-5,-6]", "-11", 0},
		{"add", "[1E2,-1e-1]", "99.9", 0},
		{"add", "[1,2,3]", "", -32602},
		{"add", "[1-,2]", "", -32602},
		{"add", "[,2]", "", -32602},
		{"add", " [ -5 , 6 ] ", "1", 0},
		{"add", `{"a":5,"b":6}`, "11", 0},
		{"add", `{ "b" : 6 , "a" : 5 }`, "11", 0},
		{"add", "[1.5,2]", "3.5", 0},
		{"add", "[0.1,0.2]", "0.30000000000000004", 0},
		{"add", "[1e2,1]", "101", 0},
		{"add", "[5.0,6]", "11", 0},
		{"add", "[-0,0]", "0", 0},
		{"add", "[-,1]", "", -32602},
		{"add", "[-01,1]", "", -32602},
		{"add", "[123456789012345678,1]", "123456789012345679", 0},   // 18 digits: the one-pass path
		{"add", "[1234567890123456789,1]", "1234567890123456790", 0}, // 19: the general one
		{"add", "[-123456789012345678,-1]", "-123456789012345679", 0},
		// Past int64 the sum is a float64, written as encoding/json writes it.
		{"add", "[9223372036854775807,1]", "9223372036854776000", 0},
		{"add", "[-9223372036854775808,-1]", "-9223372036854776000", 0},
		{"add", "[9223372036854775806,1]", "9223372036854775807", 0},
		{"add", "[99999999999999999999,1]", "100000000000000000000", 0},
		{"add", "[1e300,1e300]", "2e+300", 0},
		{"add", "[1e-7,0]", "1e-7", 0},
		{"add", "[1.7976931348623157e308,1.7976931348623157e308]", "", -32000},
		{"add", "[1]", "", -32602},
		{"add", "[1,2,3]", "", -32602},
		{"add", `["5",6]`, "", -32602},
		{"add", "[true,6]", "", -32602},
		{"add", "[null,6]", "", -32602},
		{"add", "[01,6]", "", -32602},
		{"add", "[+1,6]", "", -32602},
		{"add", `{"a":1}`, "", -32602},
		{"add", `{"a":1,"b":2,"c":3}`, "", -32602},
		{"add", `{"a":1,"a":2}`, "", -32602},
		{"add", "", "", -32602},
		{"add", "null", "", -32602},
		{"add", "[]", "", -32602},
		{"subtract", "[42,23]", "19", 0},
		{"subtract", "[23,42]", "-19", 0},
		{"subtract", `{"minuend":42,"subtrahend":23}`, "", -32602},
		{"subtract", `{"a":42,"b":23}`, "19", 0},
		{"subtract", "[1.5,0.25]", "1.25", 0},
		{"subtract", "[-9223372036854775808,1]", "-9223372036854776000", 0},
		{"subtract", "[9223372036854775807,-1]", "9223372036854776000", 0},
		{"echo", `["hello"]`, `"hello"`, 0},
		{"echo", `[ {"a" : [1, "]"]} ]`, `{"a" : [1, "]"]}`, 0},
		{"echo", `[1,2]`, `[1,2]`, 0},
		{"echo", `[]`, `[]`, 0},
		{"echo", `{"x":1}`, `{"x":1}`, 0},
		{"echo", ``, `null`, 0},
		{"echo", `["a\"]b"]`, `"a\"]b"`, 0},
		{"sleep", "[0]", "0", 0},
		{"sleep", "[1]", "1", 0},
		{"sleep", "[1.5]", "1.5", 0},
		{"sleep", `{"ms":2}`, "2", 0},
		{"sleep", "[-1]", "", -32602},
		{"sleep", "[86400001]", "", -32602},
		{"sleep", `["1"]`, "", -32602},
		{"sleep", "[]", "", -32602},
		{"sum", "[[1,2,3]]", "6", 0},
		{"sum", "[1,2,3]", "6", 0},
		{"sum", "[[]]", "0", 0},
		{"sum", "[]", "0", 0},
		{"sum", "", "0", 0},
		{"sum", "[[1.5, 2]]", "3.5", 0},
		{"sum", "[[9223372036854775807,1]]", "9223372036854776000", 0},
		{"sum", `[[1,"2"]]`, "", -32602},
		{"sum", `{"a":1}`, "", -32602},
		{"sum", `[[1],[2]]`, "", -32602},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.params, func(t *testing.T) {
			var params []byte
			if c.params != "" {
				params = []byte(c.params)
			}
			got, err := d.Call(context.Background(), nil, []byte(c.method), params)
			if c.code != 0 {
				var ce *codec.Error
				if !errors.As(err, &ce) || ce.Code != c.code {
					t.Fatalf("got %s, %v; want error code %d", got, err, c.code)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("got %s, %v; want %s", got, err, c.want)
			}
			if !json.Valid(got) {
				t.Fatalf("result %s is not JSON", got)
			}
		})
	}
}

func TestBuiltinsRegistration(t *testing.T) {
	d := dispatch.New()
	if err := d.Register("add", dispatch.HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) { return dst, nil })); err != nil {
		t.Fatal(err)
	}
	if err := Builtins(d); !errors.Is(err, dispatch.ErrDuplicate) {
		t.Fatalf("Builtins over an existing add: %v, want ErrDuplicate", err)
	}
	if _, ok := d.Lookup([]byte("echo")); ok {
		t.Errorf("a failed Builtins registered echo anyway")
	}
	d2 := dispatch.New()
	if err := Builtins(d2); err != nil {
		t.Fatal(err)
	}
	if got := d2.Methods(); len(got) != 5 {
		t.Errorf("methods %v", got)
	}
}

func TestSleepHonoursContext(t *testing.T) {
	d := testDispatcher(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := d.Call(ctx, nil, []byte("sleep"), []byte("[60000]"))
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("sleep returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleep ignored its context")
	}
}

// TestBuiltinsAllocs: add, subtract and echo allocate nothing.
func TestBuiltinsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	d := testDispatcher(t)
	dst := make([]byte, 0, 64)
	ctx := context.Background()
	for _, c := range []struct{ method, params string }{
		{"add", "[5,6]"}, {"add", `{"a":1.5,"b":2}`}, {"subtract", "[1e3,2.5]"}, {"echo", `["hello"]`},
	} {
		m, p := []byte(c.method), []byte(c.params)
		if a := testing.AllocsPerRun(200, func() { _, _ = d.Call(ctx, dst[:0], m, p) }); a != 0 {
			t.Errorf("%s %s: %v allocs per call, want 0", c.method, c.params, a)
		}
	}
}

// FuzzBuiltins feeds any params to add, subtract and echo: no panic; a result is valid JSON;
// add agrees with float64 arithmetic; echo returns (a part of) its input.
func FuzzBuiltins(f *testing.F) {
	for _, s := range []string{"[5,6]", `{"a":1,"b":2}`, "[1.5,2]", `["x"]`, "[9223372036854775807,1]",
		`[{"a":[1,"]"]}]`, "[1e308,1e308]", "[-0.0,0]", `{"a":1,"a":2}`, "[", "]", `["\"]`, "{}", "[[1],2]"} {
		f.Add([]byte(s))
	}
	d := dispatch.New()
	if err := Builtins(d); err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, params []byte) {
		var raw [2][]byte
		_ = args(params, &raw, "a", "b")
		for _, m := range []string{"add", "subtract", "echo"} {
			res, err := d.Call(ctx, nil, []byte(m), params)
			if err != nil {
				var ce *codec.Error
				if !errors.As(err, &ce) {
					t.Fatalf("%s(%q): error %v is not a *codec.Error", m, params, err)
				}
				continue
			}
			if !json.Valid(params) {
				continue // params the node would never pass on (it validates every message)
			}
			if !json.Valid(res) {
				t.Fatalf("%s(%q) = %q: not JSON", m, params, res)
			}
			if m == "add" {
				var xs []json.Number
				if json.Unmarshal(params, &xs) != nil || len(xs) != 2 {
					continue
				}
				a, _ := strconv.ParseFloat(string(xs[0]), 64)
				b, _ := strconv.ParseFloat(string(xs[1]), 64)
				got, _ := strconv.ParseFloat(string(res), 64)
				if want := a + b; math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
					t.Fatalf("add(%s) = %s, want about %v", params, res, want)
				}
			}
		}
	})
}
