package broker

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestStoreBytesBudget: in durable mode, while the test's own redis-server is stopped
// (SIGSTOP) so that writes pile up unanswered, submits are accepted up to MaxStoreBytes of
// tasks being written, exactly, and the next is refused at once with -32001, data
// {"budget":"store_bytes"}; once Redis runs again the pending submits are answered, the bytes
// drain to zero, and submits are accepted again.
func TestStoreBytesBudget(t *testing.T) {
	srv := testutil.StartRedisServer(t, testutil.RedisOptions{})
	st := redisStoreFor(t, srv.Addr)
	params := `["` + strings.Repeat("p", 1000) + `"]`
	const fit = 4
	bound := fit * storeCost(len(params))
	// StoreTimeout outlasts the stop: the writes wait for Redis instead of failing.
	b := startBroker(t, Config{Store: st, StoreOwner: "b", MaxStoreBytes: bound, StoreTimeout: 2 * time.Minute, Logger: discardLogger()})
	c := dealer(t, b)
	unacked := func() int64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.c.dur.unacked
	}
	for range 2 * fit { // more than the bound, one after the other: each write is answered
		submitID(t, c, "work", params, "")
	}
	testutil.Eventually(t, wait, func() bool { return unacked() == 0 }, "the bytes of answered writes drain")

	pid := srv.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	cont := func() {
		if stopped {
			stopped = false
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(cont)
	submit := func(id int) {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"broker.submit","params":{"method":"work","params":%s}}`, id, params))
	}
	for i := range fit {
		submit(i)
	}
	submit(fit)
	r := decodeResp(t, c.recv()) // the only answer while Redis is stopped
	if r.Error == nil || r.Error.Code != CodeQueueFull || string(r.ID) != fmt.Sprint(fit) {
		t.Fatalf("submit past MaxStoreBytes answered %s %+v, want id %d with -32001", r.ID, r.Error, fit)
	}
	if !strings.Contains(string(r.Error.Data), `"budget":"store_bytes"`) {
		t.Fatalf("refusal's data %s does not name the budget store_bytes", r.Error.Data)
	}
	if u := unacked(); u != bound {
		t.Fatalf("%d bytes being written, want the %d submits' %d", u, fit, bound)
	}
	c.none() // the accepted submits wait for Redis

	cont()
	seen := map[string]bool{}
	for range fit {
		r := decodeResp(t, c.recv())
		if r.Error != nil {
			t.Fatalf("a submit accepted while Redis was stopped answered %+v once it runs", r.Error)
		}
		seen[string(r.ID)] = true
	}
	if len(seen) != fit {
		t.Fatalf("answers for ids %v, want %d distinct", seen, fit)
	}
	testutil.Eventually(t, wait, func() bool { return unacked() == 0 }, "the bytes drain once Redis answers")
	for range fit + 1 {
		submitID(t, c, "work", params, "")
	}
}
