package broker

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestFairHandout: greedy clients queue many calls of a method before a polite client queues a
// few of the same method; once a node takes them, the polite client's tasks are handed out
// within its fair share: its i-th task (from 0) among the first (i+1)*clients hand-outs,
// where clients is how many had tasks waiting. Submitted tasks, which are no client's, share
// one lane; a higher priority still goes first.
func TestFairHandout(t *testing.T) {
	for _, tc := range []struct {
		name       string
		greedy     int // clients calling
		each       int // calls of each greedy client
		submits    int // tasks submitted by a greedy submitter (one lane)
		polite     int // calls of the polite client
		politePrio int // the polite client's priority (0: none)
		wantWithin func(i, clients int) int
	}{
		{name: "10 greedy callers, 1 polite", greedy: 10, each: 30, polite: 3,
			wantWithin: func(i, clients int) int { return (i + 1) * clients }},
		{name: "1 greedy caller, 1 polite", greedy: 1, each: 200, polite: 5,
			wantWithin: func(i, clients int) int { return (i + 1) * clients }},
		{name: "a submit backlog, 1 polite", submits: 300, polite: 3,
			wantWithin: func(i, clients int) int { return (i + 1) * clients }},
		{name: "priority first", greedy: 3, each: 30, polite: 3, politePrio: 5,
			wantWithin: func(i, _ int) int { return i + 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, Config{})
			n := newNode(t, b, "n", "work")
			for g := range tc.greedy {
				c := dealer(t, b)
				var sb strings.Builder
				sb.WriteByte('[')
				for i := range tc.each {
					if i > 0 {
						sb.WriteByte(',')
					}
					fmt.Fprintf(&sb, `{"jsonrpc":"2.0","id":%d,"method":"work","params":["g%d",%d]}`, i, g, i)
				}
				sb.WriteByte(']')
				c.send(sb.String())
				if r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":"ping","method":"broker.ping"}`)); r.Error != nil {
					t.Fatalf("ping: %+v", r.Error)
				} // its calls are queued (one connection's messages are handled in order)
			}
			if tc.submits > 0 {
				s := dealer(t, b)
				for i := range tc.submits {
					if id := submit(t, s, "work", fmt.Sprintf(`["s",%d]`, i)); id == "" {
						t.Fatal("submit refused")
					}
				}
			}
			p := dealer(t, b)
			for i := range tc.polite {
				prio := ""
				if tc.politePrio > 0 {
					prio = fmt.Sprintf(`,"priority":%d`, tc.politePrio)
				}
				p.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work","params":["polite",%d]%s}`, i, i, prio))
			}
			p.call(`{"jsonrpc":"2.0","id":"ping","method":"broker.ping"}`)
			clients := tc.greedy + 1
			if tc.submits > 0 {
				clients++
			}
			total := tc.greedy*tc.each + tc.submits + tc.polite
			n.credit(total)
			got := n.collect(total)
			seen := 0
			for pos, task := range got {
				var ps []json.RawMessage
				if err := json.Unmarshal(task.Params, &ps); err != nil || len(ps) != 2 {
					t.Fatalf("params %s: %v", task.Params, err)
				}
				if string(ps[0]) != `"polite"` {
					continue
				}
				if want := tc.wantWithin(seen, clients); pos+1 > want {
					t.Fatalf("the polite client's task %d was hand-out %d of %d, want within the first %d", seen, pos+1, total, want)
				}
				seen++
			}
			if seen != tc.polite {
				t.Fatalf("saw %d of the polite client's tasks, want %d", seen, tc.polite)
			}
		})
	}
}
