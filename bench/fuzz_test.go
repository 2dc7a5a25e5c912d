package bench

import (
	"encoding/json"
	"testing"
)

// FuzzParseStats feeds arbitrary broker.stats answers to the counter parser: it never panics,
// and what it accepts is a JSON object holding the counter it reports.
func FuzzParseStats(f *testing.F) {
	for _, s := range []string{
		`{"queued":0,"succeeded":10,"failed":2,"nodes":1}`, `{"done":7}`, `{"succeeded":"x"}`,
		`{"succeeded":1e3}`, `[]`, `null`, `{"succeeded":-1,"failed":9223372036854775807}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		done, _, err := parseStats(raw)
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			t.Fatalf("parseStats accepted %q, which is not a JSON object", raw)
		}
		found := false
		for _, k := range []string{"succeeded", "done", "completed"} {
			var n int64
			if v, ok := m[k]; ok && json.Unmarshal(v, &n) == nil {
				if n != done {
					t.Fatalf("parseStats(%q) = %d, but %s is %d", raw, done, k, n)
				}
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("parseStats accepted %q without a counter", raw)
		}
	})
}
