package codec

import (
	stdjson "encoding/json"
	"errors"
	"reflect"
	"sort"
	"strconv"
	"testing"
)

// specServer is the tiny JSON-RPC server of the specification's examples, built on the fast
// tier only (Scan, BatchIter, the Append encoders, AppendErrorReply, BatchWriter), the way the
// dispatcher and the broker use codec. It returns nil when no reply is due.
func specServer(frame []byte) []byte {
	var h Header
	if err := Scan(frame, &h); err != nil {
		return AppendErrorReply(nil, frame, err)
	}
	if h.Kind != KindBatch {
		return specCall(nil, &h)
	}
	var it BatchIter
	var bw BatchWriter
	out := bw.Begin(nil)
	it.Reset(frame)
	for it.Next() {
		eh, err := it.Header()
		if err != nil {
			out = bw.Next(out)
			out = AppendErrorReply(out, it.Elem(), err)
			continue
		}
		if reply := specCall(nil, eh); reply != nil {
			out = bw.Next(out)
			out = append(out, reply...)
		}
	}
	if it.Err() != nil { // cannot happen after a successful Scan
		return AppendErrorReply(nil, frame, it.Err())
	}
	out = bw.End(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// specCall runs one request or notification and appends its response (nothing for a
// notification, even when it fails).
func specCall(dst []byte, h *Header) []byte {
	if h.Kind != KindRequest && h.Kind != KindNotification {
		return dst // a server ignores responses
	}
	result, err := specMethod(string(h.Method), h.Params)
	if err != nil {
		return AppendErrorFor(dst, h, err)
	}
	if h.Kind == KindNotification {
		return dst
	}
	return AppendResult(dst, h.ID, result)
}

func specMethod(method string, params []byte) ([]byte, error) {
	switch method {
	case "subtract":
		var pos []int
		if Unmarshal(params, &pos) == nil && len(pos) == 2 {
			return strconv.AppendInt(nil, int64(pos[0]-pos[1]), 10), nil
		}
		var named struct{ Minuend, Subtrahend int }
		if err := Unmarshal(params, &named); err != nil {
			return nil, ErrInvalidParams
		}
		return strconv.AppendInt(nil, int64(named.Minuend-named.Subtrahend), 10), nil
	case "sum":
		var nums []int
		if err := Unmarshal(params, &nums); err != nil {
			return nil, ErrInvalidParams
		}
		s := 0
		for _, n := range nums {
			s += n
		}
		return strconv.AppendInt(nil, int64(s), 10), nil
	case "get_data":
		return Marshal([]any{"hello", 5})
	case "update", "notify_hello":
		return []byte("null"), nil
	}
	return nil, ErrMethodNotFound
}

// sameJSON compares two JSON texts as values; arrays of replies (batches) are compared as
// multisets, since the specification lets a server answer a batch in any order.
func sameJSON(t *testing.T, got, want string) bool {
	t.Helper()
	if got == "" || want == "" {
		return got == want
	}
	var g, w any
	if err := stdjson.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, got)
	}
	if err := stdjson.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("expected reply is not JSON: %v: %s", err, want)
	}
	ga, gok := g.([]any)
	wa, wok := w.([]any)
	if gok && wok {
		return reflect.DeepEqual(canonicalSet(ga), canonicalSet(wa))
	}
	return reflect.DeepEqual(g, w)
}

func canonicalSet(vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		b, _ := stdjson.Marshal(v) // map keys sorted
		out[i] = string(b)
	}
	sort.Strings(out)
	return out
}

// TestSpecExamples runs every example of section 7 of the specification through the test
// server and compares the reply with the specification's, as JSON values.
func TestSpecExamples(t *testing.T) {
	for _, ex := range specExamples {
		t.Run(ex.name, func(t *testing.T) {
			got := string(specServer([]byte(ex.request)))
			if !sameJSON(t, got, ex.reply) {
				t.Fatalf("request %s\n got reply: %s\nwant reply: %s", ex.request, got, ex.reply)
			}
		})
	}
}

// TestSpecValidation holds one subtest per validation rule: the frame, the error Scan and
// Decode must both return (nil: accepted), and the kind of an accepted frame.
func TestSpecValidation(t *testing.T) {
	cases := []struct {
		name  string
		frame string
		err   *Error
		kind  Kind
	}{
		// invalid JSON: -32700
		{"invalid_json/truncated", `{"jsonrpc":"2.0","method":"m"`, ErrParse, 0},
		{"invalid_json/empty", ``, ErrParse, 0},
		{"invalid_json/whitespace_only", " \n\t", ErrParse, 0},
		{"invalid_json/trailing_garbage", `{"jsonrpc":"2.0","method":"m"} x`, ErrParse, 0},
		{"invalid_json/two_values", `{"jsonrpc":"2.0","method":"m"}{}`, ErrParse, 0},
		{"invalid_json/trailing_comma_object", `{"jsonrpc":"2.0","method":"m",}`, ErrParse, 0},
		{"invalid_json/trailing_comma_array", `{"jsonrpc":"2.0","method":"m","params":[1,]}`, ErrParse, 0},
		{"invalid_json/single_quotes", `{'jsonrpc':'2.0'}`, ErrParse, 0},
		{"invalid_json/bad_literal", `{"jsonrpc":"2.0","method":"m","params":[tru]}`, ErrParse, 0},
		{"invalid_json/byte_order_mark", "\ufeff{\"jsonrpc\":\"2.0\",\"method\":\"m\"}", ErrParse, 0},
		{"invalid_json/number_trailing_dot", `{"jsonrpc":"2.0","method":"m","id":1.}`, ErrParse, 0},
		{"invalid_json/number_leading_zero", `{"jsonrpc":"2.0","method":"m","id":01}`, ErrParse, 0},
		{"invalid_json/number_plus", `{"jsonrpc":"2.0","method":"m","id":+1}`, ErrParse, 0},
		{"invalid_json/number_leading_dot", `{"jsonrpc":"2.0","method":"m","id":.5}`, ErrParse, 0},
		{"invalid_json/number_bare_minus", `{"jsonrpc":"2.0","method":"m","id":-}`, ErrParse, 0},
		{"invalid_json/number_empty_exponent", `{"jsonrpc":"2.0","method":"m","id":1e}`, ErrParse, 0},
		{"invalid_json/number_hex", `{"jsonrpc":"2.0","method":"m","id":0x1}`, ErrParse, 0},
		{"invalid_json/string_raw_control", "{\"jsonrpc\":\"2.0\",\"method\":\"a\x01b\"}", ErrParse, 0},
		{"invalid_json/string_raw_newline", "{\"jsonrpc\":\"2.0\",\"method\":\"a\nb\"}", ErrParse, 0},
		{"invalid_json/string_bad_escape", `{"jsonrpc":"2.0","method":"a\xb"}`, ErrParse, 0},
		{"invalid_json/string_short_unicode_escape", `{"jsonrpc":"2.0","method":"\u12"}`, ErrParse, 0},
		{"invalid_json/string_invalid_utf8", "{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}", ErrParse, 0},
		{"invalid_json/string_overlong_utf8", "{\"jsonrpc\":\"2.0\",\"method\":\"\xc0\xaf\"}", ErrParse, 0},
		{"invalid_json/string_utf8_surrogate", "{\"jsonrpc\":\"2.0\",\"method\":\"\xed\xa0\x80\"}", ErrParse, 0},
		{"invalid_json/invalid_utf8_in_params", "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[\"\xfe\"]}", ErrParse, 0},
		{"invalid_json/unterminated_string", `{"jsonrpc":"2.0","method":"m`, ErrParse, 0},
		{"invalid_json/parse_error_wins_over_invalid_request", `{"jsonrpc":"1.0","method":1,`, ErrParse, 0},
		{"invalid_json/batch_truncated", `[{"jsonrpc":"2.0","method":"m"}`, ErrParse, 0},

		// valid JSON, not a request: -32600
		{"jsonrpc/missing", `{"method":"m","id":1}`, ErrInvalidRequest, 0},
		{"jsonrpc/1.0", `{"jsonrpc":"1.0","method":"m","id":1}`, ErrInvalidRequest, 0},
		{"jsonrpc/number", `{"jsonrpc":2.0,"method":"m","id":1}`, ErrInvalidRequest, 0},
		{"jsonrpc/2.0_with_space", `{"jsonrpc":"2.0 ","method":"m","id":1}`, ErrInvalidRequest, 0},
		{"jsonrpc/null", `{"jsonrpc":null,"method":"m","id":1}`, ErrInvalidRequest, 0},
		{"jsonrpc/escaped_2.0_is_2.0", `{"jsonrpc":"2\u002e0","method":"m","id":1}`, nil, KindRequest},
		{"jsonrpc/member_names_case_sensitive", `{"JSONRPC":"2.0","method":"m","id":1}`, ErrInvalidRequest, 0},
		{"method/missing", `{"jsonrpc":"2.0","params":[1],"id":1}`, ErrInvalidRequest, 0},
		{"method/number", `{"jsonrpc":"2.0","method":1,"id":1}`, ErrInvalidRequest, 0},
		{"method/null", `{"jsonrpc":"2.0","method":null,"id":1}`, ErrInvalidRequest, 0},
		{"method/array", `{"jsonrpc":"2.0","method":["m"],"id":1}`, ErrInvalidRequest, 0},
		{"method/object", `{"jsonrpc":"2.0","method":{},"id":1}`, ErrInvalidRequest, 0},
		{"params/string", `{"jsonrpc":"2.0","method":"m","params":"bar","id":1}`, ErrInvalidRequest, 0},
		{"params/number", `{"jsonrpc":"2.0","method":"m","params":1,"id":1}`, ErrInvalidRequest, 0},
		{"params/null", `{"jsonrpc":"2.0","method":"m","params":null,"id":1}`, ErrInvalidRequest, 0},
		{"params/bool", `{"jsonrpc":"2.0","method":"m","params":true,"id":1}`, ErrInvalidRequest, 0},
		{"params/array", `{"jsonrpc":"2.0","method":"m","params":[],"id":1}`, nil, KindRequest},
		{"params/object", `{"jsonrpc":"2.0","method":"m","params":{},"id":1}`, nil, KindRequest},
		{"params/absent", `{"jsonrpc":"2.0","method":"m","id":1}`, nil, KindRequest},
		{"id/true", `{"jsonrpc":"2.0","method":"m","id":true}`, ErrInvalidRequest, 0},
		{"id/false", `{"jsonrpc":"2.0","method":"m","id":false}`, ErrInvalidRequest, 0},
		{"id/object", `{"jsonrpc":"2.0","method":"m","id":{}}`, ErrInvalidRequest, 0},
		{"id/array", `{"jsonrpc":"2.0","method":"m","id":[1]}`, ErrInvalidRequest, 0},
		{"id/string", `{"jsonrpc":"2.0","method":"m","id":"abc"}`, nil, KindRequest},
		{"id/number_fraction_exponent", `{"jsonrpc":"2.0","method":"m","id":-1.5e3}`, nil, KindRequest},
		{"id/null_is_a_request", `{"jsonrpc":"2.0","method":"m","id":null}`, nil, KindRequest},
		{"id/absent_is_a_notification", `{"jsonrpc":"2.0","method":"m"}`, nil, KindNotification},
		{"response/result_and_error", `{"jsonrpc":"2.0","result":1,"error":{"code":1,"message":"m"},"id":1}`, ErrInvalidRequest, 0},
		{"response/neither_result_nor_error", `{"jsonrpc":"2.0","id":1}`, ErrInvalidRequest, 0},
		{"response/no_id", `{"jsonrpc":"2.0","result":1}`, ErrInvalidRequest, 0},
		{"response/bad_id", `{"jsonrpc":"2.0","result":1,"id":true}`, ErrInvalidRequest, 0},
		{"response/result", `{"jsonrpc":"2.0","result":{"a":1},"id":1}`, nil, KindResponse},
		{"response/null_result_null_id", `{"jsonrpc":"2.0","result":null,"id":null}`, nil, KindResponse},
		{"response/error", `{"jsonrpc":"2.0","error":{"code":-32000,"message":"x","data":[1]},"id":"a"}`, nil, KindResponse},
		{"error_object/not_an_object", `{"jsonrpc":"2.0","error":"boom","id":1}`, ErrInvalidRequest, 0},
		{"error_object/empty", `{"jsonrpc":"2.0","error":{},"id":1}`, ErrInvalidRequest, 0},
		{"error_object/code_missing", `{"jsonrpc":"2.0","error":{"message":"x"},"id":1}`, ErrInvalidRequest, 0},
		{"error_object/code_fraction", `{"jsonrpc":"2.0","error":{"code":1.5,"message":"x"},"id":1}`, ErrInvalidRequest, 0},
		{"error_object/code_exponent", `{"jsonrpc":"2.0","error":{"code":1e3,"message":"x"},"id":1}`, ErrInvalidRequest, 0},
		{"error_object/code_string", `{"jsonrpc":"2.0","error":{"code":"1","message":"x"},"id":1}`, ErrInvalidRequest, 0},
		{"error_object/code_beyond_int32", `{"jsonrpc":"2.0","error":{"code":2147483648,"message":"x"},"id":1}`, ErrInvalidRequest, 0},
		{"error_object/code_int32_min", `{"jsonrpc":"2.0","error":{"code":-2147483648,"message":"x"},"id":1}`, nil, KindResponse},
		{"error_object/message_missing", `{"jsonrpc":"2.0","error":{"code":1},"id":1}`, ErrInvalidRequest, 0},
		{"error_object/message_number", `{"jsonrpc":"2.0","error":{"code":1,"message":2},"id":1}`, ErrInvalidRequest, 0},
		{"error_object/unknown_members_ignored", `{"jsonrpc":"2.0","error":{"code":1,"message":"x","extra":{}},"id":1}`, nil, KindResponse},
		{"top_level/string", `"x"`, ErrInvalidRequest, 0},
		{"top_level/number", `1`, ErrInvalidRequest, 0},
		{"top_level/null", `null`, ErrInvalidRequest, 0},
		{"top_level/empty_object", `{}`, ErrInvalidRequest, 0},
		{"batch/empty", `[]`, ErrInvalidRequest, 0},
		{"batch/empty_with_spaces", ` [ ] `, ErrInvalidRequest, 0},
		{"batch/of_numbers_is_a_batch", `[1,2,3]`, nil, KindBatch},
		{"batch/nested_batch_is_a_batch", `[[{"jsonrpc":"2.0","method":"m"}]]`, nil, KindBatch},

		// unknown members and duplicate keys
		{"unknown_members/ignored", `{"jsonrpc":"2.0","method":"m","params":[1],"id":1,"extra":{"x":[1,2]}}`, nil, KindRequest},
		{"duplicate_keys/last_wins_valid", `{"jsonrpc":"1.0","method":"m","jsonrpc":"2.0"}`, nil, KindNotification},
		{"duplicate_keys/last_wins_invalid", `{"jsonrpc":"2.0","method":"m","method":1}`, ErrInvalidRequest, 0},
		{"duplicate_keys/escaped_name_same_member", `{"jsonrpc":"1.0","jsonr\u0070c":"2.0","method":"m"}`, nil, KindNotification},
		{"duplicate_keys/id_then_null", `{"jsonrpc":"2.0","method":"m","id":1,"id":null}`, nil, KindRequest},
		{"method_with_result_member_is_request", `{"jsonrpc":"2.0","method":"m","result":1,"id":1}`, nil, KindRequest},
		{"strings/valid_escapes", `{"jsonrpc":"2.0","method":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","params":["\u0000"]}`, nil, KindNotification},
		{"strings/lone_surrogate_escape_is_valid_json", `{"jsonrpc":"2.0","method":"\ud800"}`, nil, KindNotification},
		{"strings/utf8", `{"jsonrpc":"2.0","method":"héllo→😀"}`, nil, KindNotification},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Header
			h.Scratch = make([]byte, 0, 64)
			err := Scan([]byte(c.frame), &h)
			if c.err == nil {
				if err != nil {
					t.Fatalf("Scan(%s) = %v, want nil", c.frame, err)
				}
				if h.Kind != c.kind {
					t.Fatalf("Scan(%s): kind %v, want %v", c.frame, h.Kind, c.kind)
				}
			} else if err != c.err {
				t.Fatalf("Scan(%s) = %v, want %v", c.frame, err, c.err)
			}
			_, _, derr := Decode([]byte(c.frame))
			if c.err == nil && derr != nil || c.err != nil && derr != c.err {
				t.Fatalf("Decode(%s) = %v, want %v", c.frame, derr, c.err)
			}
			_, _, rerr := refDecode([]byte(c.frame), nil)
			if c.err == nil && rerr != nil || c.err != nil && rerr != c.err {
				t.Fatalf("reference decoder(%s) = %v, want %v", c.frame, rerr, c.err)
			}
			// The reply a server sends for a rejected frame: one error object, id null.
			if c.err != nil {
				want := `{"jsonrpc":"2.0","id":null,"error":{"code":` + strconv.Itoa(c.err.Code) + `,"message":"` + c.err.Message + `"}}`
				if got := string(AppendErrorReply(nil, []byte(c.frame), err)); got != want {
					t.Fatalf("reply %s, want %s", got, want)
				}
			}
		})
	}
}

// TestSpecHeaderFields checks what Scan takes out of valid frames.
func TestSpecHeaderFields(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		var h Header
		mustScan(t, `{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42}, "id": "a1"}`, &h)
		expectHeader(t, &h, KindRequest, `"a1"`, "subtract", `{"minuend": 42}`, "", "")
	})
	t.Run("id_kept_raw", func(t *testing.T) {
		var h Header
		mustScan(t, `{"jsonrpc":"2.0","method":"m","id":-1.5e3}`, &h)
		expectHeader(t, &h, KindRequest, `-1.5e3`, "m", "", "", "")
	})
	t.Run("null_id", func(t *testing.T) {
		var h Header
		mustScan(t, `{"jsonrpc":"2.0","method":"m","id":null}`, &h)
		expectHeader(t, &h, KindRequest, `null`, "m", "", "", "")
	})
	t.Run("notification", func(t *testing.T) {
		var h Header
		mustScan(t, `{"jsonrpc":"2.0","method":"update","params":[1,2]}`, &h)
		expectHeader(t, &h, KindNotification, "", "update", "[1,2]", "", "")
		if h.ID != nil {
			t.Fatal("notification has an id")
		}
	})
	t.Run("response_result", func(t *testing.T) {
		var h Header
		mustScan(t, `{"jsonrpc":"2.0","result":["hello", 5],"id":9}`, &h)
		expectHeader(t, &h, KindResponse, "9", "", "", `["hello", 5]`, "")
	})
	t.Run("response_error", func(t *testing.T) {
		var h Header
		mustScan(t, `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"5"}`, &h)
		expectHeader(t, &h, KindResponse, `"5"`, "", "", "", `{"code":-32601,"message":"Method not found"}`)
		e, err := DecodeError(h.Error)
		if err != nil || !errors.Is(e, ErrMethodNotFound) || e.Message != "Method not found" {
			t.Fatalf("DecodeError = %v, %v", e, err)
		}
	})
	t.Run("escaped_method_with_scratch", func(t *testing.T) {
		h := Header{Scratch: make([]byte, 0, 32)}
		mustScan(t, `{"jsonrpc":"2.0","method":"sub\u0074ract","id":1}`, &h)
		if string(h.Method) != "subtract" || h.MethodEscaped {
			t.Fatalf("method %q escaped %v", h.Method, h.MethodEscaped)
		}
	})
	t.Run("escaped_method_without_scratch", func(t *testing.T) {
		var h Header
		mustScan(t, `{"jsonrpc":"2.0","method":"sub\u0074ract","id":1}`, &h)
		if string(h.Method) != `sub\u0074ract` || !h.MethodEscaped {
			t.Fatalf("method %q escaped %v", h.Method, h.MethodEscaped)
		}
		if got := string(AppendUnescape(nil, h.Method)); got != "subtract" {
			t.Fatalf("AppendUnescape = %q", got)
		}
	})
	t.Run("batch", func(t *testing.T) {
		var h Header
		mustScan(t, `[1, {"jsonrpc":"2.0","method":"m"}, []]`, &h)
		if h.Kind != KindBatch || h.BatchLen != 3 {
			t.Fatalf("kind %v len %d", h.Kind, h.BatchLen)
		}
	})
}

func mustScan(t *testing.T, frame string, h *Header) {
	t.Helper()
	if err := Scan([]byte(frame), h); err != nil {
		t.Fatalf("Scan(%s): %v", frame, err)
	}
}

func expectHeader(t *testing.T, h *Header, kind Kind, id, method, params, result, errObj string) {
	t.Helper()
	if h.Kind != kind || string(h.ID) != id || string(h.Method) != method || string(h.Params) != params ||
		string(h.Result) != result || string(h.Error) != errObj {
		t.Fatalf("header %+v\nwant kind %v id %s method %s params %s result %s error %s", h, kind, id, method, params, result, errObj)
	}
}

// TestSpecServerRules checks the server-side rules: notifications are never answered, even on
// error; an invalid batch element gets its own -32600 with id null while valid siblings run.
func TestSpecServerRules(t *testing.T) {
	t.Run("notification_error_gets_no_reply", func(t *testing.T) {
		if got := specServer([]byte(`{"jsonrpc":"2.0","method":"no_such_method"}`)); got != nil {
			t.Fatalf("reply %s", got)
		}
		frame := []byte(`{"jsonrpc":"2.0","method":"m"}`)
		if got := AppendErrorReply(nil, frame, ErrMethodNotFound); got != nil {
			t.Fatalf("reply %s", got)
		}
	})
	t.Run("request_error_echoes_id", func(t *testing.T) {
		frame := []byte(`{"jsonrpc":"2.0","method":"m","id":"x-1"}`)
		got := string(AppendErrorReply(nil, frame, ErrInvalidParams))
		want := `{"jsonrpc":"2.0","id":"x-1","error":{"code":-32602,"message":"Invalid params"}}`
		if got != want {
			t.Fatalf("got %s want %s", got, want)
		}
	})
	t.Run("plain_go_error_is_internal_error", func(t *testing.T) {
		frame := []byte(`{"jsonrpc":"2.0","method":"m","id":1}`)
		got := string(AppendErrorReply(nil, frame, errors.New("disk on fire")))
		want := `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error"}}`
		if got != want {
			t.Fatalf("got %s want %s", got, want)
		}
	})
	t.Run("null_id_request_is_answered", func(t *testing.T) {
		got := string(specServer([]byte(`{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":null}`)))
		if !sameJSON(t, got, `{"jsonrpc":"2.0","result":3,"id":null}`) {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("batch_invalid_element_and_valid_siblings", func(t *testing.T) {
		got := string(specServer([]byte(`[{"jsonrpc":"2.0","method":"sum","params":[1],"id":1},{"jsonrpc":"2.0","method":1,"id":2},{"jsonrpc":"2.0","method":"nope"}]`)))
		want := `[{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}]`
		if !sameJSON(t, got, want) {
			t.Fatalf("got %s want %s", got, want)
		}
	})
	t.Run("reserved_method_names", func(t *testing.T) {
		for name, want := range map[string]bool{"rpc.discover": true, "rpc.": true, "rpc": false, "rpcx.a": false, "RPC.a": false, "a.rpc.b": false, "": false} {
			if IsReserved([]byte(name)) != want || IsReservedName(name) != want {
				t.Errorf("IsReserved(%q) != %v", name, want)
			}
		}
	})
}
