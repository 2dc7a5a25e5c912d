package broker

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestDecodeMetaPreviousVersions: task metadata written by earlier versions of the broker
// still decodes (a rolling upgrade claims what the brokers before it held): version 1 has no
// key and, like version 2, keeps the due time as unix ms of the writer's clock; version 3
// keeps it relative to the hold; version 4 adds the submitter, version 5 the meta object.
func TestDecodeMetaPreviousVersions(t *testing.T) {
	const now = int64(1e18)
	const age = 200 * time.Millisecond
	field := func(dst []byte, s string) []byte { return append(binary.AppendUvarint(dst, uint64(len(s))), s...) }
	meta := func(version byte, due uint64) []byte {
		b := []byte{version, metaSubmitted, 3, 5}
		b = binary.AppendUvarint(b, 1000)
		b = binary.AppendUvarint(b, 60000)
		b = binary.AppendUvarint(b, due)
		if version >= 2 {
			b = field(b, "k1")
		}
		if version >= 4 {
			b = field(b, "alice")
		}
		if version >= 5 {
			b = field(b, `{"t":1}`)
		}
		return b
	}
	absDue := uint64(now/int64(time.Millisecond)) + 5000 // unix ms, 5 s after now
	for _, tc := range []struct {
		version             byte
		due                 uint64
		wantDue             int64
		key, owner, metaObj string
	}{
		{1, absDue, now + 5*int64(time.Second), "", "", ""},
		{2, absDue, now + 5*int64(time.Second), "k1", "", ""},
		{3, 5001, now + 5*int64(time.Second) - int64(age), "k1", "", ""},
		{4, 5001, now + 5*int64(time.Second) - int64(age), "k1", "alice", ""},
		{5, 5001, now + 5*int64(time.Second) - int64(age), "k1", "alice", `{"t":1}`},
	} {
		m, ok := decodeMeta(meta(tc.version, tc.due), now, age)
		if !ok {
			t.Fatalf("meta version %d does not decode", tc.version)
		}
		if !m.submitted || m.prio != 3 || m.opts.maxAttempts != 5 || m.opts.backoff != time.Second || m.opts.maxBackoff != time.Minute ||
			m.due != tc.wantDue || m.opts.key != tc.key || m.opts.owner != tc.owner || m.opts.meta != tc.metaObj {
			t.Errorf("meta version %d decoded as %+v (due %v from now)", tc.version, m, time.Duration(m.due-now))
		}
	}
	if metaVersion != 5 {
		t.Errorf("meta version %d: add the new layout to this test, keeping the old ones", metaVersion)
	}
	if _, ok := decodeMeta(meta(metaVersion+1, 0), now, 0); ok {
		t.Errorf("meta of an unknown, later version decoded")
	}
}
