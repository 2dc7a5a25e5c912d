package broker

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkList: one broker.list page over 1,000,000 queued submitted tasks (half in the
// queue "slow"), handled by the routing state as the routing loop does, reply included. The
// routing loop holds its lock for the whole page, so ns/op is also how long a page keeps task
// routing waiting; "nomatch" is the worst case (a filter that matches nothing looks at the
// most entries a page may: DefaultListScan, or DefaultListTime) and p50/p99/max-ms are the
// pages' wall times (on a loaded machine the tail is the scheduler's, not the page's).
func BenchmarkList(b *testing.B) {
	const total = 1_000_000
	r := newRig(b, Config{MaxQueued: 2 * total, MemoryBudget: 8 << 30, MaxInFlightPerClient: 1 << 20})
	var req bytes.Buffer
	for i := 0; i < total; i += 1000 {
		req.Reset()
		req.WriteByte('[')
		for j := range 1000 {
			if j > 0 {
				req.WriteByte(',')
			}
			q := "default"
			if (i+j)%2 == 1 {
				q = "slow"
			}
			fmt.Fprintf(&req, `{"jsonrpc":"2.0","id":%d,"method":"broker.submit","params":{"method":"work","params":[%d],"queue":%q}}`, i+j, i+j, q)
		}
		req.WriteByte(']')
		r.sendBytes("C", req.Bytes())
	}
	if n := r.c.lix.n; n != total {
		b.Fatalf("%d live submitted tasks, want %d", n, total)
	}
	mid := strconv.Quote(cursorAt(srcLive, total/2))
	for _, bc := range []struct{ name, params string }{
		{"first", `{"limit":100}`},
		{"cursor-mid", `{"limit":100,"cursor":` + mid + `}`},
		{"newest", `{"limit":100,"order":"newest"}`},
		{"queue", `{"limit":100,"queue":"slow","cursor":` + mid + `}`},
		{"max-page", `{"limit":1000,"state":"QUEUED","cursor":` + mid + `}`},
		{"nomatch", `{"limit":100,"method":"other"}`},
	} {
		body := []byte(`{"jsonrpc":"2.0","id":"l","method":"broker.list","params":` + bc.params + `}`)
		b.Run(bc.name, func(b *testing.B) {
			var took []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				r.sendBytes("C", body)
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			out := r.out.body("C")
			if !bytes.Contains(out, []byte(`"tasks":[`)) {
				b.Fatalf("reply %.200s", out)
			}
			b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100])/1e6, "p99-ms")
			b.ReportMetric(float64(took[len(took)-1])/1e6, "max-ms")
		})
	}
}
