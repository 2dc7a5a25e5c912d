package client

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
)

func TestSubmitWait(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	h, err := c.Submit(ctx, "sleep", []any{300})
	if err != nil {
		t.Fatal(err)
	}
	if h.ID() == "" {
		t.Fatal("empty task id")
	}
	if _, done, _ := h.TryResult(); done {
		t.Fatal("done right after Submit")
	}
	// QUEUED, then RUNNING, then SUCCESS.
	seen := map[State]bool{}
	testutil.Eventually(t, waitLong, func() bool {
		s, err := h.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen[s] = true
		return s == StateRunning
	}, "RUNNING")
	if !seen[StateQueued] {
		t.Logf("QUEUED not observed (the fake keeps it 20ms): %v", seen)
	}
	var hooked atomic.Int32
	hookDone := make(chan *Handle, 2)
	h.OnDone(func(h *Handle) { hooked.Add(1); hookDone <- h })
	var ms int
	if err := h.Wait(ctx, &ms); err != nil {
		t.Fatal(err)
	}
	if ms != 300 {
		t.Errorf("Wait result %d", ms)
	}
	select {
	case <-h.Done():
	default:
		t.Error("Done not closed after Wait returned")
	}
	raw, done, err := h.TryResult()
	if !done || err != nil || string(raw) != "300" {
		t.Errorf("TryResult() = %s, %v, %v", raw, done, err)
	}
	if s, err := h.Status(ctx); err != nil || s != StateSuccess {
		t.Errorf("Status after done = %v, %v", s, err)
	}
	select {
	case got := <-hookDone:
		if got != h {
			t.Error("hook got another handle")
		}
	case <-time.After(waitLong):
		t.Fatal("OnDone hook did not run")
	}
	// A hook added after completion runs too, once.
	h.OnDone(func(h *Handle) { hooked.Add(1); hookDone <- h })
	<-hookDone
	if n := hooked.Load(); n != 2 {
		t.Errorf("hooks ran %d times, want 2", n)
	}
	if info := h.Info(); info.State != StateSuccess || info.Node != "fake-node" || info.Attempts != 1 {
		t.Errorf("Info %+v", info)
	}
	// Long polls, not busy polling: a 300ms task with a 10s poll window needs one or two.
	f.snapshot(func(f *fakeBroker) {
		if n := f.methods["broker.result"]; n < 1 || n > 3 {
			t.Errorf("%d broker.result polls for one task", n)
		}
	})
	f.CheckClean()
}

func TestHandleDoneAndHooks(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f, WithPollWait(50*time.Millisecond))
	ctx := testutil.Context(t, waitLong)
	h, err := c.Submit(ctx, "sleep", []any{200})
	if err != nil {
		t.Fatal(err)
	}
	fired := make(chan struct{})
	h.OnDone(func(*Handle) { close(fired) })
	select {
	case <-h.Done():
	case <-time.After(waitLong):
		t.Fatal("Done never closed")
	}
	<-fired
	// With a 50ms poll window and a ~220ms task, polls are re-issued a few times, not spun.
	f.snapshot(func(f *fakeBroker) {
		if n := f.methods["broker.result"]; n < 2 || n > 10 {
			t.Errorf("%d broker.result polls", n)
		}
	})
}

func TestSubmitFailure(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	h, err := c.Submit(ctx, "fail", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = h.Wait(ctx, nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != -32099 || e.Message != "boom" {
		t.Fatalf("Wait on a failing task: %v", err)
	}
	if h.Info().State != StateFailure {
		t.Errorf("state %s", h.Info().State)
	}
}

func TestRevokeAndUnknown(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	h, err := c.Submit(ctx, "sleep", []any{60000})
	if err != nil {
		t.Fatal(err)
	}
	ti, err := c.Revoke(ctx, h.ID())
	if err != nil || ti.State != StateRevoked {
		t.Fatalf("Revoke = %+v, %v", ti, err)
	}
	err = h.Wait(ctx, nil)
	if !errors.Is(err, codec.NewError(-32004, "", nil)) {
		t.Errorf("Wait on a revoked task: %v", err)
	}
	ti, err = c.Status(ctx, "no-such-task")
	if err != nil || ti.State != StateUnknown || !errors.Is(ti.Err(), ErrUnknownTask) {
		t.Errorf("Status(unknown) = %+v, %v", ti, err)
	}
	ti, err = c.Wait(ctx, "no-such-task", time.Second)
	if err != nil || ti.State != StateUnknown {
		t.Errorf("Wait(unknown) = %+v, %v", ti, err)
	}
}

func TestWaitContext(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	h, err := c.Submit(ctx, "sleep", []any{60000})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := h.Wait(short, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a short ctx: %v", err)
	}
	// The poller stops after its current poll once nothing waits; Close ends it at once.
	c.Close()
	if err := h.Wait(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close: %v", err)
	}
}

func TestStateDone(t *testing.T) {
	for s, want := range map[State]bool{
		StateQueued: false, StateRunning: false, StateRetry: false,
		StateSuccess: true, StateFailure: true, StateRevoked: true, StateExpired: true, StateUnknown: true,
	} {
		if s.Done() != want {
			t.Errorf("%s.Done() = %v", s, !want)
		}
	}
	ti := TaskInfo{State: StateExpired}
	if !errors.Is(ti.Err(), codec.NewError(-32005, "", nil)) {
		t.Errorf("EXPIRED error %v", ti.Err())
	}
	ti = TaskInfo{State: StateRunning}
	if ti.Err() != nil {
		t.Errorf("RUNNING error %v", ti.Err())
	}
}

func TestDecodeTaskInfo(t *testing.T) {
	ti, err := decodeTaskInfo([]byte(`{"id":"5f-17","method":"add","state":"FAILURE","attempts":2,"result":null,` +
		`"error":{"code":-32000,"message":"x","data":[1]},"node":"n1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ti.ID != "5f-17" || ti.Method != "add" || ti.Attempts != 2 || ti.Node != "n1" ||
		ti.Error == nil || ti.Error.Code != -32000 || string(ti.Error.Data) != "[1]" {
		t.Errorf("%+v %+v", ti, ti.Error)
	}
	ti, err = decodeTaskInfo([]byte(`{"id":"1","state":"SUCCESS","result":{"a":[1,2]},"error":null}`))
	if err != nil || string(ti.Result) != `{"a":[1,2]}` || ti.Error != nil {
		t.Errorf("%+v %v", ti, err)
	}
	if _, err := decodeTaskInfo([]byte(`[`)); err == nil {
		t.Error("bad record decoded")
	}
}
