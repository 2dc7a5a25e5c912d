package broker

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/protocol"
)

// TestTaskIDsUnguessable: on a broker without authentication, client B knows A's task only by
// its exact id. The broker id and a sequence number (what broker.stats and the state stream
// show), or the id with a wrong tag, read, wait on and revoke nothing; the state stream names
// the task without its tag.
func TestTaskIDsUnguessable(t *testing.T) {
	b := startBroker(t, Config{})
	sub := subscribe(t, b, protocol.TopicState)
	a, c := dealer(t, b), dealer(t, b)
	var id string
	probe := 0
	for {
		id = submit(t, a, "secret", "[1]")
		if _, _, ok := sub.next(50 * time.Millisecond); ok {
			break
		}
		if probe++; probe > 100 {
			t.Fatal("no state notice")
		}
	}
	name := taskName(id)
	if name == id || !strings.HasPrefix(id, name+"-") || len(id)-len(name)-1 != idTagLen || !strings.HasPrefix(id, b.ID()+"-") {
		t.Fatalf("id %q, name %q", id, name)
	}
	id2 := submit(t, a, "secret", "[2]")
	if _, body := sub.until(func(_, body string) bool { return strings.Contains(body, taskName(id2)) }); strings.Contains(body, id2) {
		t.Fatalf("state notice carries the id: %s", body)
	}
	flip := []byte(id)
	if flip[len(flip)-1] == '0' {
		flip[len(flip)-1] = '1'
	} else {
		flip[len(flip)-1] = '0'
	}
	guesses := []string{name, string(flip), name + "-", name + "-" + strings.Repeat("0", idTagLen), id + "0"}
	for _, g := range guesses {
		for _, m := range []string{protocol.MethodStatus, protocol.MethodResult, protocol.MethodRevoke} {
			r := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":{"id":%q}}`, m, g)))
			var v struct{ State string }
			if r.Error == nil {
				_ = json.Unmarshal(r.Result, &v)
			}
			if r.Error == nil && v.State != protocol.StateUnknown {
				t.Fatalf("%s of guessed id %q: %s", m, g, r.Result)
			}
		}
	}
	if got, ok := b.TaskID(name); !ok || got != id {
		t.Fatalf("TaskID(%q) = %q, %v; want %q", name, got, ok, id)
	}
	if got, ok := b.TaskID("ffffffff-1"); ok && b.ID() != "ffffffff" {
		t.Fatalf("TaskID of another broker's name: %q", got)
	}
	if st := status(t, c, id); st.State != protocol.StateQueued {
		t.Fatalf("A's task after the guesses: %+v", st)
	}
}

// TestTaskNameOf: taskName drops a tag of 16 hex digits and leaves other ids alone.
func TestTaskNameOf(t *testing.T) {
	for _, tc := range []struct{ id, name string }{
		{"0a1b2c3d-7-0123456789abcdef", "0a1b2c3d-7"},
		{"0a1b2c3d-7", "0a1b2c3d-7"},
		{"0a1b2c3d-7-0123456789abcdeF", "0a1b2c3d-7-0123456789abcdeF"},
		{"-0123456789abcdef", "-0123456789abcdef"},
		{"x0123456789abcdef", "x0123456789abcdef"},
		{"", ""},
	} {
		if got := taskName(tc.id); got != tc.name {
			t.Errorf("taskName(%q) = %q, want %q", tc.id, got, tc.name)
		}
	}
}

// TestPublicIDAllocs: building and checking a public id allocate nothing (the hand-out path
// builds one per submitted task).
func TestPublicIDAllocs(t *testing.T) {
	c := newCore(&Config{epoch: "0a1b2c3d"}, nil, nil)
	buf := make([]byte, 0, 64)
	seq := uint64(1)
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		buf = c.appendPublicID(buf[:0], seq)
		if got, ok := c.parsePublicID(buf); !ok || got != seq {
			t.Fatalf("parse %s: %d %v", buf, got, ok)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per id", n)
	}
}

// BenchmarkPublicID: the cost of one id's tag, built and checked.
func BenchmarkPublicID(b *testing.B) {
	c := newCore(&Config{epoch: "0a1b2c3d"}, nil, nil)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := range b.N {
		buf = c.appendPublicID(buf[:0], uint64(i))
		if _, ok := c.parsePublicID(buf); !ok {
			b.Fatal("parse")
		}
	}
}
