package store

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// TestDecodePreviousVersions: values written by earlier versions of the store still decode
// (a rolling upgrade reads what the brokers before it wrote): a version-1 result has no
// method or submitter, a version-2 result no submitter, and a version-1 task keeps its
// deadline as unix ns of the writer's clock.
func TestDecodePreviousVersions(t *testing.T) {
	field := func(dst []byte, s string) []byte { return append(binary.AppendUvarint(dst, uint64(len(s))), s...) }
	finished := time.Unix(1700000000, 5)
	resultV := func(version byte) []byte {
		b := []byte{version}
		b = binary.AppendUvarint(b, 2)
		b = binary.AppendVarint(b, finished.UnixNano())
		b = field(b, StateSuccess)
		b = field(b, "n1")
		b = field(b, `{"a":1}`)
		b = field(b, "")
		if version >= 2 {
			b = field(b, "add")
		}
		if version >= 3 {
			b = field(b, "alice")
		}
		return b
	}
	for _, tc := range []struct {
		version           byte
		method, submitter string
	}{
		{1, "", ""},
		{2, "add", ""},
		{3, "add", "alice"},
	} {
		var r Result
		if err := decodeResult(resultV(tc.version), &r); err != nil {
			t.Fatalf("result version %d: %v", tc.version, err)
		}
		if r.State != StateSuccess || r.Node != "n1" || string(r.Result) != `{"a":1}` || r.Attempts != 2 || !r.FinishedAt.Equal(finished) ||
			r.Method != tc.method || r.Submitter != tc.submitter {
			t.Errorf("result version %d decoded as %+v", tc.version, r)
		}
	}
	if resultVersion != 3 {
		t.Errorf("result version %d: add the new layout to this test, keeping the old ones", resultVersion)
	}

	deadline := time.Unix(1800000000, 0)
	b := []byte{1}
	b = binary.AppendVarint(b, deadline.UnixNano())
	b = field(b, "add")
	b = field(b, "[1,2]")
	b = field(b, "\x05m")
	var tk Task
	if err := decodeTask(b, &tk, time.Unix(1700000000, 0)); err != nil {
		t.Fatalf("task version 1: %v", err)
	}
	if tk.Method != "add" || string(tk.Params) != "[1,2]" || string(tk.Meta) != "\x05m" || !tk.Deadline.Equal(deadline) {
		t.Errorf("task version 1 decoded as %+v", tk)
	}
	// A version 1 deadline further than maxDeadlineSpan from now could not be written back as
	// the time left: the value is corrupt; at the bound it decodes.
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		off     time.Duration
		corrupt bool
	}{
		{maxDeadlineSpan, false}, {-maxDeadlineSpan, false},
		{maxDeadlineSpan + time.Nanosecond, true}, {-maxDeadlineSpan - time.Nanosecond, true},
	} {
		v := binary.AppendVarint([]byte{1}, now.Add(tc.off).UnixNano())
		v = field(field(field(v, "m"), ""), "")
		err := decodeTask(v, &tk, now)
		if corrupt := errors.Is(err, ErrCorrupt); corrupt != tc.corrupt || (!corrupt && err != nil) {
			t.Errorf("version 1, deadline %v from now: %v, want corrupt %v", tc.off, err, tc.corrupt)
		}
	}
	if taskVersion != 2 {
		t.Errorf("task version %d: add the new layout to this test, keeping the old ones", taskVersion)
	}
}
