package store

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// The Redis store keeps each result and each task as one binary value: a version byte, then
// fixed-order fields, each a varint or a uvarint length followed by that many bytes. The id is
// the key (not in the value); a task's queue and attempts live in fields of their own (the
// Lua scripts read and change them), so the value never changes after Hold.
//
//	result: 0x03 attempts(uvarint) finished_at(varint unix ns) state node result error method
//	        submitter
//	        (0x02, written before results named their submitter, reads with an empty Submitter;
//	        0x01, before they named their method, with an empty Method too)
//	task:   0x02 deadline(varint ns from the hold, 0 = none) method params meta
//	        (0x01: deadline as unix ns of the writer's clock, read as written)
//
// A task's deadline is stored relative to its hold, and the hold's time is Redis's own (the
// hash's h field, set by the hold script): a Claim reports each task's age on Redis's clock
// (Task.Age) and the deadline is read back as the claimer's now plus what was left minus the
// age, so brokers with skewed clocks agree on it within the hold's round trip.
//
// Decoding is bounded by the value's length: a length past the end is ErrCorrupt, never a
// large allocation.
const (
	resultVersion = 3
	taskVersion   = 2
)

// appendResult appends r's value (everything but its id) to dst.
func appendResult(dst []byte, r *Result) []byte {
	dst = append(dst, resultVersion)
	dst = binary.AppendUvarint(dst, uint64(max(r.Attempts, 0)))
	dst = binary.AppendVarint(dst, unixNano(r.FinishedAt))
	dst = appendField(dst, r.State)
	dst = appendField(dst, r.Node)
	dst = appendBytesField(dst, r.Result)
	dst = appendBytesField(dst, r.Error)
	dst = appendField(dst, r.Method)
	dst = appendField(dst, r.Submitter)
	return dst
}

// appendTask appends t's value (method, params, deadline and meta) to dst, its deadline as
// the time left from now.
func appendTask(dst []byte, t *Task, now time.Time) []byte {
	dst = append(dst, taskVersion)
	var left int64
	if !t.Deadline.IsZero() {
		left = t.Deadline.Sub(now).Nanoseconds()
		if left == 0 {
			left = -1 // 0 means none: due now reads as just past
		}
	}
	dst = binary.AppendVarint(dst, left)
	dst = appendField(dst, t.Method)
	dst = appendBytesField(dst, t.Params)
	dst = appendBytesField(dst, t.Meta)
	return dst
}

// appendHeld appends the tail of t's held record to dst: "<i>,<attempts>,<len(queue)>,<queue>"
// then t's value (appendTask), i being t's place in its Hold call, from 1. The hold script
// puts "<hold time>,<claim sequence before the call>," before it and stores it as the field
// t.ID of the owner's held hash (scripts.go); the scripts read the record's numbers and queue,
// Claim and the give-backs its value.
func appendHeld(dst []byte, i int, t *Task, now time.Time) []byte {
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(max(t.Attempts, 0)), 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(len(t.Queue)), 10)
	dst = append(dst, ',')
	dst = append(dst, t.Queue...)
	return appendTask(dst, t, now)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func appendField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytesField(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// decoder reads a value; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
}

func (d *decoder) uvarint(what string) uint64 { return readVarint(d, what, binary.Uvarint) }

func (d *decoder) varint(what string) int64 { return readVarint(d, what, binary.Varint) }

// readVarint reads one varint with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](d *decoder, what string, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next length-prefixed field, aliasing the value.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what + " length past the end")
		return nil
	}
	f := d.b[:n:n]
	d.b = d.b[n:]
	return f
}

// header reads the version byte of a value and returns it: any version from 1 (the first
// layout, still read) to want, the current one.
func (d *decoder) header(want byte, what string) (version byte) {
	if len(d.b) == 0 || d.b[0] < 1 || d.b[0] > want {
		d.fail(what + " version")
		return 0
	}
	version = d.b[0]
	d.b = d.b[1:]
	return version
}

func (d *decoder) end(what string) {
	if d.err == nil && len(d.b) != 0 {
		d.fail(what + " has trailing bytes")
	}
}

// decodeResult decodes a result value into dst (id aside), reusing dst's buffers. State
// strings of the protocol are not allocated.
func decodeResult(v []byte, dst *Result) error {
	d := decoder{b: v}
	version := d.header(resultVersion, "result")
	attempts := d.uvarint("attempts")
	finished := d.varint("finished_at")
	state := d.bytes("state")
	node := d.bytes("node")
	res := d.bytes("result")
	errObj := d.bytes("error")
	var method, submitter []byte
	if version >= 2 {
		method = d.bytes("method")
	}
	if version >= 3 {
		submitter = d.bytes("submitter")
	}
	d.end("result")
	if d.err != nil {
		return d.err
	}
	if attempts > 1<<31 {
		return fmt.Errorf("%w: attempts %d", ErrCorrupt, attempts)
	}
	dst.Attempts = int(attempts)
	dst.FinishedAt = fromUnixNano(finished)
	dst.State = internState(state)
	if string(node) != dst.Node { // no allocation when the node is the same as dst's
		dst.Node = string(node)
	}
	if string(method) != dst.Method {
		dst.Method = string(method)
	}
	if string(submitter) != dst.Submitter {
		dst.Submitter = string(submitter)
	}
	dst.Result = append(dst.Result[:0], res...)
	dst.Error = append(dst.Error[:0], errObj...)
	return nil
}

func internState(b []byte) string {
	switch string(b) {
	case StateSuccess:
		return StateSuccess
	case StateFailure:
		return StateFailure
	case StateRevoked:
		return StateRevoked
	case StateExpired:
		return StateExpired
	}
	return string(b)
}

// maxDeadlineSpan bounds how far from now a stored task's deadline may be.
const maxDeadlineSpan = 100 * 365 * 24 * time.Hour

// decodeTask decodes a task value into t (id, queue and attempts aside), now being the
// reader's time and t.Age the task's age since its hold. Params and Meta are copied into fresh
// slices of one allocation (the caller may keep them).
func decodeTask(v []byte, t *Task, now time.Time) error {
	d := decoder{b: v}
	v1 := d.header(taskVersion, "task") == 1
	deadline := d.varint("deadline")
	method := d.bytes("method")
	params := d.bytes("params")
	meta := d.bytes("meta")
	d.end("task")
	if d.err != nil {
		return d.err
	}
	switch {
	case v1:
		t.Deadline = fromUnixNano(deadline)
		// A value written now holds the deadline as the time left, an int64 of nanoseconds
		// (about 292 years either way): one further from now than maxDeadlineSpan could not be
		// written back as it was read, and no broker set it.
		if off := t.Deadline.Sub(now); !t.Deadline.IsZero() && (off > maxDeadlineSpan || off < -maxDeadlineSpan) {
			return fmt.Errorf("%w: deadline %v", ErrCorrupt, t.Deadline)
		}
	case deadline == 0:
		t.Deadline = time.Time{}
	default:
		t.Deadline = now.Add(time.Duration(deadline) - t.Age)
	}
	t.Method = string(method)
	t.Params, t.Meta = nil, nil
	if n := len(params) + len(meta); n > 0 {
		buf := make([]byte, n)
		copy(buf, params)
		copy(buf[len(params):], meta)
		if len(params) > 0 {
			t.Params = buf[:len(params):len(params)]
		}
		if len(meta) > 0 {
			t.Meta = buf[len(params):]
		}
	}
	return nil
}
