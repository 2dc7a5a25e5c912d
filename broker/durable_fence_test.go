package broker

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/store"
)

// lateFenceStore lands the first Hold but answers it as a timeout (Redis ran the write after
// the call gave up), and refuses every later Hold as fenced (the run's lease ran out meanwhile
// and a claim gave its tasks back to the queues).
type lateFenceStore struct {
	store.Store
	holds atomic.Int32
}

func (s *lateFenceStore) Hold(ctx context.Context, owner string, ts ...store.Task) error {
	if s.holds.Add(1) == 1 {
		if err := s.Store.Hold(ctx, owner, ts...); err != nil {
			return err
		}
		return context.DeadlineExceeded
	}
	return store.ErrFenced
}

// TestDurableFencedAfterTimeoutNotRefused: a submit whose write timed out (and landed) and
// whose resend is refused as fenced is not answered -32001, since the task is in the store
// and will run: it is answered -32603 (the lease was lost, the task may run elsewhere).
func TestDurableFencedAfterTimeoutNotRefused(t *testing.T) {
	st0 := storeFor(t)
	st := &lateFenceStore{Store: st0}
	b := startBroker(t, Config{Store: st, StoreOwner: "b1", Logger: discardLogger()})
	c := dealer(t, b)
	for _, tc := range []struct{ name, req string }{
		{"submit", `{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"add","params":[1,2]}}`},
		{"call", `{"jsonrpc":"2.0","id":2,"method":"add","params":[1,2]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st.holds.Store(0)
			if code := errCode(t, c.call(tc.req)); code != codec.CodeInternalError {
				t.Fatalf("answered %d, want %d (not a refusal: the task is in the store)", code, codec.CodeInternalError)
			}
		})
	}
	if s := b.Stats(); s.Storing != 0 || s.Rejected != 0 {
		t.Fatalf("stats %+v: want nothing storing, nothing rejected", s)
	}
}
