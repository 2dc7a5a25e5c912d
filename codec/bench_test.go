package codec

import (
	stdjson "encoding/json"
	"strconv"
	"strings"
	"testing"
)

// Each benchmark has a zerotask variant and an encoding/json baseline doing the same job, side
// by side: go test ./codec -run '^$' -bench . -benchmem -count 3

var (
	benchRequest = []byte(`{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}`)
	benchLarge   = []byte(`{"jsonrpc":"2.0","method":"process","params":{"items":[` +
		strings.TrimSuffix(strings.Repeat(`{"name":"item","value":12345,"tags":["a","b"],"ok":true},`, 16), ",") +
		`]},"id":"req-000001"}`)
)

// stdRequest is what an encoding/json user decodes a request into, keeping params raw.
type stdRequest struct {
	JSONRPC string             `json:"jsonrpc"`
	Method  string             `json:"method"`
	Params  stdjson.RawMessage `json:"params"`
	ID      stdjson.RawMessage `json:"id"`
}

type stdResponse struct {
	JSONRPC string             `json:"jsonrpc"`
	ID      stdjson.RawMessage `json:"id"`
	Result  stdjson.RawMessage `json:"result"`
}

func BenchmarkScanRequest(b *testing.B) {
	for _, in := range []struct {
		name  string
		frame []byte
	}{{"small", benchRequest}, {"1KiB", benchLarge}} {
		b.Run("zerotask/"+in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.frame)))
			var h Header
			for b.Loop() {
				if err := Scan(in.frame, &h); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encoding_json/"+in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.frame)))
			for b.Loop() {
				var r stdRequest
				if err := stdjson.Unmarshal(in.frame, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	b.Run("zerotask", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchRequest)))
		for b.Loop() {
			if _, err := DecodeRequest(benchRequest); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchRequest)))
		for b.Loop() {
			var r stdRequest
			if err := stdjson.Unmarshal(benchRequest, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncodeResponse(b *testing.B) {
	id, result := []byte(`"req-000001"`), []byte(`{"sum":19,"items":[1,2,3]}`)
	b.Run("zerotask", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf = AppendResult(buf[:0], id, result)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := stdjson.Marshal(stdResponse{JSONRPC: "2.0", ID: id, Result: result}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBatch64: a batch of 64 requests is scanned in full and answered with a batch of 64
// responses (the result is the request's params echoed back).
func BenchmarkBatch64(b *testing.B) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := 0; i < 64; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"jsonrpc":"2.0","method":"add","params":[` + strconv.Itoa(i) + `,1],"id":` + strconv.Itoa(i) + `}`)
	}
	sb.WriteByte(']')
	frame := []byte(sb.String())
	b.Run("zerotask", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		out := make([]byte, 0, 8192)
		var h Header
		var it BatchIter
		var bw BatchWriter
		for b.Loop() {
			if err := Scan(frame, &h); err != nil {
				b.Fatal(err)
			}
			out = bw.Begin(out[:0])
			it.Reset(frame)
			for it.Next() {
				eh, err := it.Header()
				if err != nil {
					b.Fatal(err)
				}
				out = bw.Next(out)
				out = AppendResult(out, eh.ID, eh.Params)
			}
			out = bw.End(out)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			var reqs []stdRequest
			if err := stdjson.Unmarshal(frame, &reqs); err != nil {
				b.Fatal(err)
			}
			resps := make([]stdResponse, len(reqs))
			for i, r := range reqs {
				resps[i] = stdResponse{JSONRPC: "2.0", ID: r.ID, Result: r.Params}
			}
			if _, err := stdjson.Marshal(resps); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIterBatch64 walks batches of 64 with BatchIter as the broker and the node do, in the
// shapes they carry most: a client's requests, a broker's task hand-outs to a node, and a
// node's results.
func BenchmarkIterBatch64(b *testing.B) {
	for _, in := range []struct{ name, elem string }{
		{"requests", `{"jsonrpc":"2.0","method":"add","params":[5,6],"id":%d,"timeout_ms":9000}`},
		{"handouts", `{"jsonrpc":"2.0","id":"b383330e.%d","method":"add","params":[5,6],"timeout_ms":10000,"attempt":1}`},
		{"results", `{"jsonrpc":"2.0","id":"b383330e.%d","result":11}`},
	} {
		var sb strings.Builder
		sb.WriteByte('[')
		for i := 0; i < 64; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strings.Replace(in.elem, "%d", strconv.Itoa(67108864+i), 1))
		}
		sb.WriteByte(']')
		frame := []byte(sb.String())
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			var it BatchIter
			for b.Loop() {
				it.Reset(frame)
				for it.Next() {
					if _, err := it.Header(); err != nil {
						b.Fatal(err)
					}
				}
				if err := it.Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
