package client

import (
	"context"
	"testing"

	"github.com/zerotask/zerotask/codec"
)

// offlineClient is a Client without a socket, for driving its reader directly.
func offlineClient() *Client {
	c := &Client{
		opts: options{maxInFlight: 10, maxMsgSize: DefaultMaxMsgSize, maxBatch: DefaultMaxBatch, pollWait: DefaultPollWait},
		log:  quiet,
	}
	c.life, c.stop = context.WithCancel(context.Background())
	c.out.init(c)
	return c
}

// FuzzReader feeds any bytes to the client as a reply message: no panic; a pending call is
// completed at most once, only by a response with its own id, and a completed call carries
// either a result or an error.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":11}`,
		`[{"jsonrpc":"2.0","id":2,"result":"x"},{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found"}}]`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"}}`,
		`{"jsonrpc":"2.0","id":"1","result":1}`,
		`{"jsonrpc":"2.0","id":18446744073709551616,"result":1}`,
		`[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":1,"result":2}]`,
		`{"jsonrpc":"2.0","method":"broker.state","params":{}}`,
		`[`, ``, `[]`, `{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"m","data":{"deep":[1,[2]]}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := offlineClient()
		defer c.stop()
		calls := ingestPending(c, body)
		for i := 1; i < len(calls); i++ {
			cl := calls[i]
			c.out.mu.Lock()
			still := c.out.pending.get(uint64(i)) != nil
			c.out.mu.Unlock()
			got := len(cl.own)
			if still && got != 0 || !still && got != 1 {
				t.Fatalf("call %d: pending %v, completions %d", i, still, got)
			}
			if got == 1 {
				<-cl.own
				if cl.err == nil && !validJSONish(cl.result) {
					t.Fatalf("call %d completed with result %q", i, cl.result)
				}
			}
		}
	})
}

// ingestPending makes calls 1, 2 and 3 pending on c, then has a reader ingest body; it
// returns the calls by id (index 0 unused).
func ingestPending(c *Client, body []byte) []*call {
	calls := make([]*call, 4)
	c.out.mu.Lock()
	for i := 1; i < len(calls); i++ {
		calls[i] = newCall(nil)
		calls[i].id = uint64(i)
		c.out.pending.put(calls[i])
	}
	c.out.mu.Unlock()
	r := reader{c: c, lim: codec.Limits{MaxFrame: DefaultMaxMsgSize}}
	r.ingest(body)
	return calls
}

// validJSONish: a result the reader accepted is what codec.Scan accepted: non-empty.
func validJSONish(b []byte) bool { return len(b) > 0 }

// TestReaderArray: the answers of an array are delivered as it is walked; an array malformed
// past its first elements delivers those before the fault and drops the rest.
func TestReaderArray(t *testing.T) {
	tests := []struct {
		name string
		body string
		done []bool // calls 1..3 completed
	}{
		{"three answers", `[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":2},{"jsonrpc":"2.0","id":3,"result":3}]`, []bool{true, true, true}},
		{"broken after two", `[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":2},{"jsonrpc":"2.0","id":3,`, []bool{true, true, false}},
		{"broken at once", `[{"jsonrpc":"2.0","id":1,"result":1`, []bool{false, false, false}},
		{"a lone answer", `{"jsonrpc":"2.0","id":3,"result":3}`, []bool{false, false, true}},
		{"empty", `[]`, []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := offlineClient()
			defer c.stop()
			calls := ingestPending(c, []byte(tt.body))
			for i := 1; i < len(calls); i++ {
				if got := len(calls[i].own) == 1; got != tt.done[i-1] {
					t.Errorf("call %d completed %v, want %v", i, got, tt.done[i-1])
				}
			}
		})
	}
}
