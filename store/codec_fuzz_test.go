package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzDecodeResult: any bytes decode to a result or ErrCorrupt, never a panic or an
// allocation past the input's size; whatever decodes re-encodes to a value that decodes the
// same.
func FuzzDecodeResult(f *testing.F) {
	for _, r := range []Result{
		{},
		{State: StateSuccess, Result: []byte(`11`), Attempts: 1, Node: "n", FinishedAt: time.Unix(1700000000, 5)},
		{State: StateFailure, Error: []byte(`{"code":-32000,"message":"x"}`), Attempts: 300},
		{State: StateSuccess, Result: []byte(`1`), Method: "add", Submitter: "alice"},
	} {
		f.Add(appendResult(nil, &r))
	}
	f.Add([]byte{resultVersion, 0x80})                   // truncated varint
	f.Add([]byte{resultVersion, 0, 0, 0xff, 0xff, 0x7f}) // length past the end
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Result
		err := decodeResult(b, &r)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(r.Result)+len(r.Error)+len(r.State)+len(r.Node)+len(r.Method)+len(r.Submitter) > len(b) {
			t.Fatalf("decoded more bytes than the input holds")
		}
		var again Result
		if err := decodeResult(appendResult(nil, &r), &again); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if again.State != r.State || again.Node != r.Node || again.Method != r.Method || again.Submitter != r.Submitter || again.Attempts != r.Attempts ||
			!again.FinishedAt.Equal(r.FinishedAt) || !bytes.Equal(again.Result, r.Result) || !bytes.Equal(again.Error, r.Error) {
			t.Fatalf("round trip changed the result: %+v -> %+v", r, again)
		}
	})
}

// FuzzDecodeTask: as FuzzDecodeResult, for task values.
func FuzzDecodeTask(f *testing.F) {
	for _, tk := range []Task{
		{},
		{Method: "add", Params: []byte(`[5,6]`), Meta: []byte{1, 2}, Deadline: time.Unix(1800000000, 0)},
		{Method: "m", Deadline: time.Unix(-5, 0)},
	} {
		f.Add(appendTask(nil, &tk, time.Unix(1700000000, 0)))
	}
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{taskVersion, 0, 3, 'a'})
	f.Add([]byte{taskVersion, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var tk Task
		now := time.Unix(1700000000, 0)
		err := decodeTask(b, &tk, now)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(tk.Method)+len(tk.Params)+len(tk.Meta) > len(b) {
			t.Fatalf("decoded more bytes than the input holds")
		}
		var again Task
		if err := decodeTask(appendTask(nil, &tk, now), &again, now); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if again.Method != tk.Method || !again.Deadline.Equal(tk.Deadline) ||
			!bytes.Equal(again.Params, tk.Params) || !bytes.Equal(again.Meta, tk.Meta) {
			t.Fatalf("round trip changed the task: %+v -> %+v", tk, again)
		}
	})
}
