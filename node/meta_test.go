package node_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/protocol"
)

// metaAtBound returns a meta object of exactly protocol.MaxMetaLen+extra bytes.
func metaAtBound(extra int) string {
	const head, tail = `{"pad":"`, `"}`
	return head + strings.Repeat("x", protocol.MaxMetaLen+extra-len(head)-len(tail)) + tail
}

// TestMetaReachesHandler: a task's meta object reaches its handler byte for byte
// (dispatch.TaskInfo.Meta), through a task call and through broker.submit, and is in the
// submitted task's record, however odd its JSON: escapes, raw UTF-8, whitespace, numbers past
// float64, duplicate names, members named like the envelope's, and at its bound.
func TestMetaReachesHandler(t *testing.T) {
	b := startBroker(t)
	var mu sync.Mutex
	seen := map[string]string{} // case index (the params) -> the handler's TaskInfo.Meta
	release := make(chan struct{})
	d := dispatch.New()
	d.MustRegister("meta", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		info, ok := dispatch.TaskInfoFrom(ctx)
		if !ok {
			return nil, errors.New("no TaskInfo")
		}
		mu.Lock()
		seen[string(params)] = info.Meta
		mu.Unlock()
		return append(dst, "true"...), nil
	}))
	d.MustRegister("hold", dispatch.HandlerFunc(func(ctx context.Context, dst, _ []byte) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return append(dst, "true"...), nil
	}))
	startNode(t, b, node.Config{Dispatcher: d, Concurrency: 4})
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)

	cases := []struct{ name, meta string }{
		{"empty", `{}`},
		{"traceparent", `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}`},
		{"whitespace", "{ \"a\" :\t[1, 2 ,\n3]\r\n }"},
		{"escapes", `{"k\u00e9y":"\ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t \u0000 \u2028"}`},
		{"utf8", `{"ключ":"値 😀","":""}`},
		{"numbers", `{"n":-0.0e+00,"big":123456789012345678901234567890,"f":1E-7,"i":-9007199254740993}`},
		{"duplicates", `{"a":1,"a":2,"a":{"a":3}}`},
		{"nested", `{"a":{"b":{"c":[{"d":null},true,false,[],{}]}}}`},
		{"envelope names", `{"meta":{"meta":1},"params":[1],"id":"x","method":"m","queue":"q","timeout_ms":1,"key":"k","task":"t","attempt":9}`},
		{"at the bound", metaAtBound(0)},
	}
	for i, tc := range cases {
		// The params name the case, so the handler's record says which meta came with which.
		call, submit := `["call`+strconv.Itoa(i)+`"]`, `["submit`+strconv.Itoa(i)+`"]`
		if err := c.CallWith(ctx, "meta", nil, []any{"call" + strconv.Itoa(i)}, client.Meta([]byte(tc.meta))); err != nil {
			t.Fatalf("%s: call: %v", tc.name, err)
		}
		h, err := c.Submit(ctx, "meta", []any{"submit" + strconv.Itoa(i)}, client.Meta([]byte(tc.meta)))
		if err != nil {
			t.Fatalf("%s: submit: %v", tc.name, err)
		}
		if err := h.Wait(ctx, nil); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		mu.Lock()
		gotCall, gotSubmit := seen[call], seen[submit]
		mu.Unlock()
		if gotCall != tc.meta {
			t.Errorf("%s: the handler of a call got meta %.120q, want %.120q", tc.name, gotCall, tc.meta)
		}
		if gotSubmit != tc.meta {
			t.Errorf("%s: the handler of a submitted task got meta %.120q, want %.120q", tc.name, gotSubmit, tc.meta)
		}
		if ti, err := c.Status(ctx, h.ID()); err != nil || string(ti.Meta) != tc.meta {
			t.Errorf("%s: finished record's meta %.120q, %v; want %.120q", tc.name, ti.Meta, err, tc.meta)
		}
	}

	// A queued or running task's record has its meta too; a task without meta has none.
	h, err := c.Submit(ctx, "hold", nil, client.Meta([]byte(cases[1].meta)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitLong, func() bool {
		ti, err := c.Status(ctx, h.ID())
		return err == nil && ti.State == client.StateRunning && string(ti.Meta) == cases[1].meta
	}, "the running task's record has its meta")
	close(release)
	if err := h.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, "meta", nil, "none"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	none := seen[`["none"]`]
	mu.Unlock()
	if none != "" {
		t.Errorf("a task without meta: handler got %q", none)
	}
}

// TestMetaRefused: the broker refuses (invalid params) a meta past protocol.MaxMetaLen, or one
// that is not an object, through a task call and through broker.submit; the client refuses
// them before sending.
func TestMetaRefused(t *testing.T) {
	b := startBroker(t)
	startNode(t, b, node.Config{})
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)
	for _, meta := range []string{metaAtBound(1), `[1]`, `"traceparent"`, `null`, `7`} {
		if _, err := c.Submit(ctx, "echo", []any{1}, client.Meta([]byte(meta))); !errors.Is(err, client.ErrBadOption) {
			t.Errorf("client.Meta(%.20q...): %v, want ErrBadOption", meta, err)
		}
		// Past the client: a raw broker.submit, and a raw task call with the member beside params.
		params := `{"method":"echo","params":[1],"meta":` + meta + `}`
		if _, err := c.CallRaw(ctx, nil, protocol.MethodSubmit, []byte(params)); !isCode(err, codec.CodeInvalidParams) {
			t.Errorf("broker.submit with meta %.20q...: %v, want %d", meta, err, codec.CodeInvalidParams)
		}
	}
	if _, err := c.CallRaw(ctx, nil, protocol.MethodSubmit, []byte(`{"method":"echo","params":[1],"meta":`+metaAtBound(0)+`}`)); err != nil {
		t.Errorf("broker.submit with meta at the bound: %v", err)
	}
}
