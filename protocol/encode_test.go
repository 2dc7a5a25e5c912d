package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/zerotask/zerotask/codec"
)

// msg is the decoded form every control message is compared in.
type msg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  any             `json:"params,omitempty"`
	Timeout *int64          `json:"timeout_ms,omitempty"`
}

func decode(t *testing.T, b []byte) msg {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not valid JSON: %s", b)
	}
	var m msg
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if m.JSONRPC != "2.0" {
		t.Fatalf("jsonrpc %q in %s", m.JSONRPC, b)
	}
	// codec's scanner must take it too, as the request or notification it is.
	var h codec.Header
	if err := codec.Scan(b, &h); err != nil {
		t.Fatalf("codec.Scan %s: %v", b, err)
	}
	if h.Kind != codec.KindRequest && h.Kind != codec.KindNotification {
		t.Fatalf("codec.Scan %s: kind %v", b, h.Kind)
	}
	if string(h.Method) != m.Method {
		t.Fatalf("codec.Scan %s: method %q", b, h.Method)
	}
	return m
}

func num(s string) json.Number { return json.Number(s) }

func TestEncoders(t *testing.T) {
	five := int64(5)
	for _, tc := range []struct {
		name string
		b    []byte
		want msg
	}{
		{"client hello", AppendClientHello(nil, []byte("7"), 0),
			msg{"2.0", json.RawMessage("7"), MethodHello, map[string]any{"role": RoleClient, "unordered": true}, nil}},
		{"client hello with its size", AppendClientHello(nil, []byte("8"), 4096),
			msg{"2.0", json.RawMessage("8"), MethodHello, map[string]any{"role": RoleClient, "unordered": true, "max_msg_size": num("4096")}, nil}},
		{"node hello with its size", AppendNodeHello(nil, []byte(`"hello-2"`), &NodeHello{Name: "n", Methods: []string{"add"}, Concurrency: 1, MaxMsgSize: 1 << 20}),
			msg{"2.0", json.RawMessage(`"hello-2"`), MethodHello, map[string]any{"role": RoleNode, "name": "n", "methods": []any{"add"}, "concurrency": num("1"), "prefetch": num("0"), "max_msg_size": num("1048576")}, nil}},
		{"node hello", AppendNodeHello(nil, []byte(`"hello-1"`), &NodeHello{Name: `n"1`, Methods: []string{"add", "broker.x", "rpc.y", "sub"}, Concurrency: 4, Prefetch: 2, Queues: []string{"default", "q2"}}),
			msg{"2.0", json.RawMessage(`"hello-1"`), MethodHello, map[string]any{"role": RoleNode, "name": `n"1`, "methods": []any{"add", "sub"}, "concurrency": num("4"), "prefetch": num("2"), "queues": []any{"default", "q2"}}, nil}},
		{"node hello, no methods, no queues", AppendNodeHello(nil, []byte("1"), &NodeHello{Name: "n"}),
			msg{"2.0", json.RawMessage("1"), MethodHello, map[string]any{"role": RoleNode, "name": "n", "methods": []any{}, "concurrency": num("0"), "prefetch": num("0")}, nil}},
		{"credit", AppendCredit(nil, nil, 12), msg{"2.0", nil, MethodCredit, []any{num("12")}, nil}},
		{"credit as a request", AppendCredit(nil, []byte(`"credit-3"`), 12), msg{"2.0", json.RawMessage(`"credit-3"`), MethodCredit, []any{num("12")}, nil}},
		{"running", AppendRunning(nil, [][]byte{[]byte("3"), []byte(`"x"`)}), msg{"2.0", nil, MethodRunning, []any{num("3"), "x"}, nil}},
		{"running, none", AppendRunning(nil, nil), msg{"2.0", nil, MethodRunning, []any{}, nil}},
		{"bye", AppendBye(nil), msg{"2.0", nil, MethodBye, nil, nil}},
		{"shutdown", AppendShutdown(nil), msg{"2.0", nil, MethodShutdown, nil, nil}},
		{"hello required", AppendHelloRequired(nil, "5f3a09c1"), msg{"2.0", nil, MethodHelloRequired, map[string]any{"broker": "5f3a09c1"}, nil}},
		{"revoke", AppendRevoke(nil, [][]byte{[]byte(`"e.1"`), []byte("4503599627370496")}), msg{"2.0", nil, MethodRevoke, map[string]any{ParamIDs: []any{"e.1", num("4503599627370496")}}, nil}},
		{"revoke, none", AppendRevoke(nil, nil), msg{"2.0", nil, MethodRevoke, map[string]any{ParamIDs: []any{}}, nil}},
		{"task", AppendTask(nil, []byte(`"e.42"`), []byte(`"add"`), []byte("[5,6]"), 5),
			msg{"2.0", json.RawMessage(`"e.42"`), "add", []any{num("5"), num("6")}, &five}},
		{"task, no params, no deadline", AppendTask(nil, []byte("1"), []byte(`"ping"`), nil, 0),
			msg{"2.0", json.RawMessage("1"), "ping", nil, nil}},
		{"state", AppendStateNotice(nil, []byte(`"e-1"`), StateRunning),
			msg{"2.0", nil, MethodState, map[string]any{"id": "e-1", "state": StateRunning}, nil}},
		{"tasks", AppendTasksNotice(nil, []byte(`"add"`), "", 3),
			msg{"2.0", nil, MethodTasks, map[string]any{"method": "add", "queued": num("3")}, nil}},
		{"tasks in a queue", AppendTasksNotice(nil, []byte(`"add"`), "q", 3),
			msg{"2.0", nil, MethodTasks, map[string]any{"method": "add", "queue": "q", "queued": num("3")}, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decode(t, tc.b)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s\n got %#v\nwant %#v", tc.b, got, tc.want)
			}
			// Appending keeps what dst holds.
			pre := append([]byte("prefix"), tc.b...)
			if string(pre[6:]) != string(tc.b) {
				t.Fatalf("append changed the message")
			}
		})
	}
}

// TestTaskOverhead: a task with the longest timeout takes TaskOverhead bytes besides its id,
// method and params.
func TestTaskOverhead(t *testing.T) {
	id, method, params := []byte(`"e.1"`), []byte(`"m"`), []byte("[1]")
	b := AppendTask(nil, id, method, params, 1<<63-1)
	if got := len(b) - len(id) - len(method) - len(params); got != TaskOverhead {
		t.Fatalf("overhead %d, TaskOverhead %d", got, TaskOverhead)
	}
}

func TestStateRecord(t *testing.T) {
	b := AppendStateRecord([]byte("x"), []byte(`"e-9"`), StateUnknown)
	var r struct{ ID, State string }
	if err := json.Unmarshal(b[1:], &r); err != nil || r.ID != "e-9" || r.State != StateUnknown || b[0] != 'x' {
		t.Fatalf("%s: %+v %v", b, r, err)
	}
}

func TestHelloReply(t *testing.T) {
	var r struct {
		Broker      string `json:"broker"`
		HeartbeatMS int64  `json:"heartbeat_ms"`
		MaxBatch    int    `json:"max_batch"`
		MaxMsgSize  int    `json:"max_msg_size"`
	}
	b := AppendHelloReply(nil, "5f3a", 1000, 512, 1<<20)
	if err := json.Unmarshal(b, &r); err != nil || r.Broker != "5f3a" || r.HeartbeatMS != 1000 || r.MaxBatch != 512 || r.MaxMsgSize != 1<<20 {
		t.Fatalf("%s: %+v %v", b, r, err)
	}
}

func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		after int64
		want  string
	}{
		{0, `{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"m"},"retry":true}`},
		{250, `{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"m"},"retry":true,"retry_after_ms":250}`},
	} {
		b := codec.AppendError(nil, []byte("3"), codec.NewError(-1, "m", nil))
		b = AppendRetry(b, tc.after)
		var got, want any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		_ = json.Unmarshal([]byte(tc.want), &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %s, want %s", b, tc.want)
		}
	}
	if b := AppendRetry([]byte("x"), 1); string(b) != "x" {
		t.Fatalf("AppendRetry changed a buffer that holds no object: %s", b)
	}
}

func TestAppendMember(t *testing.T) {
	b := append([]byte(`{"a":1`), AppendMember(nil, MemberMaxAttempts)...)
	b = append(b, "3}"...)
	var m map[string]int
	if err := json.Unmarshal(b, &m); err != nil || m["a"] != 1 || m[MemberMaxAttempts] != 3 {
		t.Fatalf("%s: %v %v", b, m, err)
	}
}

func TestSentinels(t *testing.T) {
	for _, e := range []*codec.Error{ErrQueueFull, ErrTooManyInFlight, ErrShuttingDown, ErrRevoked, ErrExpired, ErrNodeLost, ErrDeadline, ErrNoCredit, ErrTooManyMethods, ErrBrokerBusy, ErrTooManyWaits, ErrMethodShare, ErrWaitShare, ErrTaskBytes, ErrInFlightBytes, ErrLeaseLost} {
		if e.Code < CodeServerErrorMin || e.Code > CodeServerErrorMax || e.Message == "" {
			t.Errorf("%v: code outside the server-error range or no message", e)
		}
		// A remote error decoded from the wire matches its sentinel by code.
		wire := codec.AppendErrorObject(nil, codec.NewError(e.Code, "other words", nil))
		var got struct{ Code int }
		if err := json.Unmarshal(wire, &got); err != nil || !errors.Is(codec.NewError(got.Code, "x", nil), e) {
			t.Errorf("%v: a decoded error with its code does not match it (%s)", e, wire)
		}
	}
	if !json.Valid([]byte(NoCreditData)) || string(ErrNoCredit.Data) != NoCreditData {
		t.Fatalf("ErrNoCredit data %s", ErrNoCredit.Data)
	}
	if ErrNotNode.Code != codec.CodeInvalidParams || ErrMethodTooLong.Code != codec.CodeInvalidRequest {
		t.Fatal("ErrNotNode or ErrMethodTooLong has the wrong code")
	}
}

func TestIsBrokerMethod(t *testing.T) {
	for m, want := range map[string]bool{MethodHello: true, "broker.mine": true, "broker": false, "add": false, "rpc.x": false, "": false} {
		if IsBrokerMethod(m) != want {
			t.Errorf("IsBrokerMethod(%q) = %v", m, !want)
		}
	}
}

// TestEncodersAllocs: every encoder allocates nothing when dst has room.
func TestEncodersAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	id, method, params := []byte(`"e-12"`), []byte(`"add"`), []byte("[5,6]")
	ids := [][]byte{[]byte("1"), []byte("2")}
	hello := &NodeHello{Name: "n", Methods: []string{"add", "broker.x"}, Concurrency: 4, Prefetch: 4, Queues: []string{"q"}}
	errResp := codec.AppendError(nil, []byte("3"), ErrDeadline)
	for name, f := range map[string]func(){
		"ClientHello":  func() { buf = AppendClientHello(buf[:0], id, 1<<20) },
		"NodeHello":    func() { buf = AppendNodeHello(buf[:0], id, hello) },
		"HelloReply":   func() { buf = AppendHelloReply(buf[:0], "epoch", 1000, 1024, 1<<20) },
		"Credit":       func() { buf = AppendCredit(buf[:0], nil, 100) },
		"CreditProbe":  func() { buf = AppendCredit(buf[:0], id, 100) },
		"Running":      func() { buf = AppendRunning(buf[:0], ids) },
		"Bye":          func() { buf = AppendBye(buf[:0]) },
		"Shutdown":     func() { buf = AppendShutdown(buf[:0]) },
		"HelloReq":     func() { buf = AppendHelloRequired(buf[:0], "5f3a09c1") },
		"Revoke":       func() { buf = AppendRevoke(buf[:0], ids) },
		"Task":         func() { buf = AppendTask(buf[:0], id, method, params, 100) },
		"Retry":        func() { buf = AppendRetry(append(buf[:0], errResp...), 10) },
		"StateRecord":  func() { buf = AppendStateRecord(buf[:0], id, StateQueued) },
		"StateNotice":  func() { buf = AppendStateNotice(buf[:0], id, StateQueued) },
		"TasksNotice":  func() { buf = AppendTasksNotice(buf[:0], method, "q", 9) },
		"AppendMember": func() { buf = AppendMember(buf[:0], MemberKey) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, n)
		}
	}
}

func BenchmarkAppendTask(b *testing.B) {
	buf := make([]byte, 0, 256)
	id, method, params := []byte(`"5f3a09c1.123456789"`), []byte(`"add"`), []byte("[5,6]")
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTask(buf[:0], id, method, params, 30000)
	}
}

func TestNoticeParams(t *testing.T) {
	type rec struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	one := AppendStateNotice(nil, []byte(`"a"`), StateSuccess)
	two := AppendStateNotice(nil, []byte(`"b"`), StateFailure)
	batch := append(append(append(append([]byte{'['}, one...), ','), two...), ']')
	for _, tc := range []struct {
		name    string
		body    []byte
		want    []rec
		wantErr bool
	}{
		{"one notice", one, []rec{{"a", StateSuccess}}, false},
		{"a batch", batch, []rec{{"a", StateSuccess}, {"b", StateFailure}}, false},
		{"empty batch", []byte(`[]`), []rec{}, false},
		{"not JSON", []byte(`{"params":`), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := slices.Clip(slices.Clone(tc.body))
			got, err := NoticeParams[rec](body)
			if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("NoticeParams(%s) = %v, %v; want %v (error %v)", tc.body, got, err, tc.want, tc.wantErr)
			}
			if !bytes.Equal(body, tc.body) {
				t.Fatalf("the body changed: %s", body)
			}
		})
	}
}

// TestTaskWriter: a TaskWriter writes what AppendTask writes, whatever the order of the
// timeouts it is given (repeated, changed, none, the largest).
func TestTaskWriter(t *testing.T) {
	id, method, params := []byte(`"e.42"`), []byte(`"add"`), []byte("[5,6]")
	var w TaskWriter
	for i, ms := range []int64{5, 5, 7, 0, 7, 123456, 1<<63 - 1, 5, -1, 5} {
		got := string(w.Append(nil, id, method, params, ms))
		if want := string(AppendTask(nil, id, method, params, ms)); got != want {
			t.Fatalf("task %d (timeout %d): %s, want %s", i, ms, got, want)
		}
	}
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { buf = w.Append(buf[:0], id, method, params, 9) }); n != 0 {
		t.Errorf("Append allocates %v times", n)
	}
}
