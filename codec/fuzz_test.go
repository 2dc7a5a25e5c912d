package codec

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func addSeeds(f *testing.F) {
	for _, ex := range specExamples {
		f.Add([]byte(ex.request))
		if ex.reply != "" {
			f.Add([]byte(ex.reply))
		}
	}
	for _, s := range edgeFrames {
		f.Add([]byte(s))
	}
}

// FuzzDecode: no input panics Decode, and whatever decodes re-encodes to a frame that decodes
// to the same messages (and that Scan accepts).
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		msgs, batch, err := Decode(data)
		if err != nil {
			if msgs != nil {
				t.Fatalf("Decode returned messages with error %v", err)
			}
			return
		}
		out := encodeMessages(nil, msgs, batch)
		msgs2, batch2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v\nin:  %q\nout: %q", err, data, out)
		}
		if batch2 != batch || len(msgs2) != len(msgs) {
			t.Fatalf("re-encoded frame decodes differently (batch %v/%v, len %d/%d)\nin:  %q\nout: %q", batch, batch2, len(msgs), len(msgs2), data, out)
		}
		for i := range msgs {
			if d := diffMessages(&msgs[i], &msgs2[i]); d != "" {
				t.Fatalf("message %d differs after re-encoding: %s\nin:  %q\nout: %q", i, d, data, out)
			}
		}
		var h Header
		if err := Scan(out, &h); err != nil {
			t.Fatalf("Scan rejects the re-encoded frame: %v\nout: %q", err, out)
		}
	})
}

// encodeMessages encodes decoded messages again; an invalid batch element becomes 0, which is
// an invalid element too.
func encodeMessages(dst []byte, msgs []Message, batch bool) []byte {
	if !batch {
		return msgs[0].AppendTo(dst)
	}
	dst = AppendBatchStart(dst)
	for i := range msgs {
		dst = AppendBatchSep(dst, i)
		if msgs[i].Kind == KindInvalid {
			dst = append(dst, '0')
		} else {
			dst = msgs[i].AppendTo(dst)
		}
	}
	return AppendBatchEnd(dst)
}

func diffMessages(a, b *Message) string {
	switch {
	case a.Kind != b.Kind:
		return "kind " + a.Kind.String() + " vs " + b.Kind.String()
	case a.Err != b.Err:
		return "element error"
	case a.Request.Method != b.Request.Method:
		return "method"
	case !sameRaw(a.Request.ID, b.Request.ID) || !sameRaw(a.Response.ID, b.Response.ID):
		return "id"
	case !sameRaw(a.Request.Params, b.Request.Params):
		return "params"
	case !sameRaw(a.Response.Result, b.Response.Result):
		return "result"
	case (a.Response.Error == nil) != (b.Response.Error == nil):
		return "error presence"
	case a.Response.Error != nil && !sameError(a.Response.Error, b.Response.Error):
		return "error object"
	}
	return ""
}

func sameRaw(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func sameError(a, b *Error) bool {
	return a.Code == b.Code && a.Message == b.Message && sameRaw(a.Data, b.Data)
}

// FuzzScan: Scan, BatchIter and Decode agree with the independent reference decoder
// (refDecode, encoding/json + goccy/go-json) on every input: the same verdict and error, and
// for accepted frames the same kind, method, id, params, result and error, for a single
// message and for each element of a batch.
func FuzzScan(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		var h Header
		h.Scratch = make([]byte, 0, len(data))
		serr := Scan(data, &h)
		msgs, batch, derr := refDecode(data, nil)
		if derr != nil {
			if serr == nil {
				t.Fatalf("Scan accepts (%v) what the reference rejects (%v): %q", h.Kind, derr, data)
			}
			if serr != derr && !(derr == ErrTooDeep && serr == ErrParse && refNesting(data) > HardMaxDepth) {
				t.Fatalf("Scan says %v, the reference says %v: %q", serr, derr, data)
			}
			if h.Kind != KindInvalid {
				t.Fatalf("failed Scan left kind %v", h.Kind)
			}
		} else if serr != nil {
			t.Fatalf("Scan rejects (%v) what the reference accepts: %q", serr, data)
		}
		// Decode (built on Scan) returns what the reference returns.
		dmsgs, dbatch, err := Decode(data)
		if err != serr || dbatch != batch || len(dmsgs) != len(msgs) {
			t.Fatalf("Decode: %v batch=%v n=%d; reference: %v batch=%v n=%d: %q", err, dbatch, len(dmsgs), derr, batch, len(msgs), data)
		}
		for i := range msgs {
			if d := diffMessages(&dmsgs[i], &msgs[i]); d != "" {
				t.Fatalf("message %d: Decode and the reference disagree on %s: %q", i, d, data)
			}
		}
		if derr != nil {
			return
		}
		if !batch {
			if d := diffHeader(&h, &msgs[0]); d != "" {
				t.Fatalf("Scan and the reference disagree on %s: %q", d, data)
			}
			checkExt(t, &h, data)
			return
		}
		if h.Kind != KindBatch || h.BatchLen != len(msgs) {
			t.Fatalf("Scan: kind %v len %d; reference: batch of %d: %q", h.Kind, h.BatchLen, len(msgs), data)
		}
		var it BatchIter
		it.Scratch = make([]byte, 0, len(data))
		it.Reset(data)
		n := 0
		for it.Next() {
			eh, err := it.Header()
			m := &msgs[it.Index()]
			if (err != nil) != (m.Kind == KindInvalid) || (err != nil && err != m.Err) {
				t.Fatalf("element %d: BatchIter says %v, the reference says %v: %q", it.Index(), err, m.Err, data)
			}
			if d := diffHeader(eh, m); d != "" {
				t.Fatalf("element %d: BatchIter and the reference disagree on %s: %q", it.Index(), d, data)
			}
			if err == nil {
				checkExt(t, eh, it.Elem())
			}
			n++
		}
		if it.Err() != nil || n != len(msgs) {
			t.Fatalf("BatchIter: %d elements, err %v; reference: %d: %q", n, it.Err(), len(msgs), data)
		}
	})
}

func diffHeader(h *Header, m *Message) string {
	if h.Kind != m.Kind {
		return "kind " + h.Kind.String() + " vs " + m.Kind.String()
	}
	switch h.Kind {
	case KindRequest, KindNotification:
		if h.MethodEscaped || string(h.Method) != m.Request.Method {
			return "method"
		}
		if !sameRaw(h.ID, m.Request.ID) {
			return "id"
		}
		if !sameRaw(h.Params, m.Request.Params) {
			return "params"
		}
	case KindResponse:
		if !sameRaw(h.ID, m.Response.ID) {
			return "id"
		}
		if !sameRaw(h.Result, m.Response.Result) {
			return "result"
		}
		if (h.Error == nil) != (m.Response.Error == nil) {
			return "error presence"
		}
		if h.Error != nil {
			e, err := refDecodeError(h.Error)
			if err != nil || !sameError(e, m.Response.Error) {
				return "error object"
			}
			if e2, err := DecodeError(h.Error); err != nil || !sameError(e2, e) {
				return "DecodeError"
			}
		}
	}
	return ""
}

// watchdog turns a hang into a crash that the fuzzer records with its input (go test -fuzz has
// no per-input timeout of its own). Use as defer watchdog(data)().
func watchdog(data []byte) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			panic(fmt.Sprintf("no result after 20s on input %q", data))
		}
	}()
	return func() { close(done) }
}

// checkExt checks Header.Ext of an accepted object obj: nil, or a span of obj that starts with
// a member name and leaves out the braces.
func checkExt(t *testing.T, h *Header, obj []byte) {
	t.Helper()
	if h.Ext == nil {
		return
	}
	off := cap(obj) - cap(h.Ext)
	if len(h.Ext) == 0 || h.Ext[0] != '"' || off < 1 || off+len(h.Ext) >= len(obj) {
		t.Fatalf("Ext %q is not a member span of %q", h.Ext, obj)
	}
}
