package batch

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// count records how many members a frame has and the sum of their tags.
type count struct{ n, sum int }

func (c count) Add(m count) count { return count{c.n + m.n, c.sum + m.sum} }

// member returns a JSON object of exactly size bytes (size >= 12).
func member(k, size int) string {
	head := fmt.Sprintf(`{"k":%d,"p":"`, k)
	return head + strings.Repeat("x", size-len(head)-2) + `"}`
}

func TestBuilder(t *testing.T) {
	tests := []struct {
		name     string
		maxBatch int
		maxBytes int
		sizes    []int
		want     [][]int // the members (by index) of each frame, in order
	}{
		{"one member is a bare object", 8, 1024, []int{20}, [][]int{{0}}},
		{"several are a batch", 8, 1024, []int{20, 20, 20}, [][]int{{0, 1, 2}}},
		{"closed at MaxBatch", 2, 1024, []int{20, 20, 20, 20, 20}, [][]int{{0, 1}, {2, 3}, {4}}},
		{"MaxBatch 1", 1, 1024, []int{20, 20}, [][]int{{0}, {1}}},
		// '[' + 40 + ',' + 40 + ']' = 83 bytes: fits in 83, not in 82.
		{"at the byte bound", 8, 83, []int{40, 40}, [][]int{{0, 1}}},
		{"one byte past it", 8, 82, []int{40, 40, 40}, [][]int{{0}, {1}, {2}}},
		{"a member that does not fit starts the next message", 8, 100, []int{30, 30, 30, 30}, [][]int{{0, 1, 2}, {3}}},
		{"a member of MaxBytes-2 alone", 8, 50, []int{48, 20, 48}, [][]int{{0}, {1}, {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Builder[count]{Packer: Packer{MaxBatch: tt.maxBatch, MaxBytes: tt.maxBytes}}
			for k, size := range tt.sizes {
				start := b.Begin()
				b.Cur = append(b.Cur, member(k, size)...)
				b.End(start, count{1, k})
			}
			var got [][]int
			for {
				f, ok := b.Next()
				if !ok {
					break
				}
				if len(f.B) > tt.maxBytes {
					t.Errorf("frame of %d bytes, MaxBytes %d", len(f.B), tt.maxBytes)
				}
				var ms []struct{ K int }
				if f.B[0] == '{' {
					var m struct{ K int }
					if err := json.Unmarshal(f.B, &m); err != nil {
						t.Fatalf("frame %q: %v", f.B, err)
					}
					ms = append(ms, m)
				} else if err := json.Unmarshal(f.B, &ms); err != nil {
					t.Fatalf("frame %q: %v", f.B, err)
				}
				var ks []int
				sum := 0
				for _, m := range ms {
					ks = append(ks, m.K)
					sum += m.K
				}
				if f.Meta != (count{len(ms), sum}) {
					t.Errorf("frame %v recorded %+v, want %+v", ks, f.Meta, count{len(ms), sum})
				}
				got = append(got, ks)
				b.Recycle(f.B)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("frames %v, want %v", got, tt.want)
			}
			if b.Members() != 0 || len(b.Queued()) != 0 {
				t.Fatalf("builder not empty after Next: %d members, %d frames", b.Members(), len(b.Queued()))
			}
		})
	}
}

func TestCancelAndPushFront(t *testing.T) {
	b := Builder[count]{Packer: Packer{MaxBatch: 8, MaxBytes: 1024}}
	start := b.Begin()
	b.Cur = append(b.Cur, `{"k":0}`...)
	b.Cancel(start) // the first member dropped: nothing left
	if f, ok := b.Next(); ok {
		t.Fatalf("Next after Cancel gave %q", f.B)
	}
	for k := 1; k <= 2; k++ {
		start := b.Begin()
		b.Cur = append(b.Cur, fmt.Sprintf(`{"k":%d}`, k)...)
		b.End(start, count{1, k})
	}
	start = b.Begin()
	b.Cur = append(b.Cur, `{"k":3}`...)
	b.Cancel(start) // a later member dropped: the others stay
	if m := b.Meta(); m != (count{2, 3}) {
		t.Fatalf("Meta %+v, want {2 3}", m)
	}
	b.Close()
	b.PushFront(Frame[count]{B: []byte(`{"hello":1}`)})
	var got []string
	for f, ok := b.Next(); ok; f, ok = b.Next() {
		got = append(got, string(f.B))
	}
	want := []string{`{"hello":1}`, `[{"k":1},{"k":2}]`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("frames %q, want %q", got, want)
	}
}

// TestAllocs: with its buffers warm, building and taking frames allocates nothing.
func TestAllocs(t *testing.T) {
	b := Builder[count]{Packer: Packer{MaxBatch: 16, MaxBytes: 4096}}
	round := func() {
		for k := range 100 {
			start := b.Begin()
			b.Cur = append(b.Cur, `{"jsonrpc":"2.0","id":1,"result":11}`...)
			b.End(start, count{1, k})
		}
		for f, ok := b.Next(); ok; f, ok = b.Next() {
			b.Recycle(f.B)
		}
	}
	round()
	if n := testing.AllocsPerRun(100, round); n != 0 {
		t.Fatalf("%v allocations per round, want 0", n)
	}
}

func TestPacker(t *testing.T) {
	tests := []struct {
		name     string
		maxBatch int
		maxBytes int
		sizes    []int
		want     [][]int // the members (by index) of each message, in order
	}{
		{"one member is a bare object", 8, 1024, []int{20}, [][]int{{0}}},
		{"several are a batch", 8, 1024, []int{20, 20, 20}, [][]int{{0, 1, 2}}},
		{"closed at MaxBatch", 2, 1024, []int{20, 20, 20, 20, 20}, [][]int{{0, 1}, {2, 3}, {4}}},
		// '[' + 40 + ',' + 40 + ']' = 83 bytes: fits in 83, not in 82.
		{"at the byte bound", 8, 83, []int{40, 40}, [][]int{{0, 1}}},
		{"one byte past it", 8, 82, []int{40, 40, 40}, [][]int{{0}, {1}, {2}}},
		{"a member of MaxMember alone", 8, 50, []int{48, 20, 48}, [][]int{{0}, {1}, {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packer{MaxBatch: tt.maxBatch, MaxBytes: tt.maxBytes}
			var got [][]int
			var cur []int
			take := func() {
				msg := p.Take(false)
				if msg == nil {
					return
				}
				if len(msg) > tt.maxBytes {
					t.Errorf("message of %d bytes, MaxBytes %d", len(msg), tt.maxBytes)
				}
				if !json.Valid(msg) {
					t.Errorf("message %q is not JSON", msg)
				}
				got, cur = append(got, cur), nil
			}
			for k, size := range tt.sizes {
				if size > p.MaxMember() {
					t.Fatalf("member %d of %d bytes is past MaxMember %d", k, size, p.MaxMember())
				}
				if !p.Room(size) {
					take()
				}
				p.Append([]byte(member(k, size)))
				cur = append(cur, k)
				if p.Full() {
					take()
				}
			}
			take()
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("messages %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPackerRoom(t *testing.T) {
	p := Packer{MaxBatch: 4, MaxBytes: 100}
	if !p.Room(98) || p.Room(99) {
		t.Errorf("empty packer: Room(98) %v, Room(99) %v; want true, false", p.Room(98), p.Room(99))
	}
	p.Append([]byte(member(0, 40)))
	// '[' + 40 + ',' + 57 + ']' = 100.
	if !p.Room(57) || p.Room(58) {
		t.Errorf("after 41 bytes: Room(57) %v, Room(58) %v; want true, false", p.Room(57), p.Room(58))
	}
	if msg := p.Take(true); string(msg) != "["+member(0, 40)+"]" {
		t.Errorf("Take(true) = %q, want an array of one", msg)
	}
	if p.Members() != 0 || p.Take(false) != nil {
		t.Errorf("after Take: %d members", p.Members())
	}
}

// TestNewBufferSize: while frames queue unsent (none recycled), each new message starts in a
// buffer sized for the last one, so that its members are appended without growing it; the size
// stays within maxKeptBuf.
func TestNewBufferSize(t *testing.T) {
	for _, tc := range []struct {
		name           string
		maxBatch, size int // members per frame, bytes per member
	}{
		{"small frames", 4, 100},
		{"frames of 40 KB", 400, 100},
		{"frames past maxKeptBuf", 64, 8 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Builder[count]{Packer: Packer{MaxBatch: tc.maxBatch, MaxBytes: 1 << 20}}
			grown := 0
			for k := range 3 * tc.maxBatch {
				start := b.Begin()
				before := cap(b.Cur)
				b.Cur = append(b.Cur, member(k, tc.size)...)
				if cap(b.Cur) != before && k >= tc.maxBatch && len(b.Cur) <= maxKeptBuf {
					grown++ // a frame after the first grew its buffer
				}
				b.End(start, count{1, k})
			}
			if grown > 0 {
				t.Errorf("buffers of later frames grew %d times", grown)
			}
			if n := len(b.Queued()); n != 3 {
				t.Fatalf("%d frames queued, want 3", n)
			}
			for _, f := range b.Queued() {
				if want := min(max(minBuf, tc.maxBatch*(tc.size+1)*9/8+16), maxKeptBuf); len(f.B) <= maxKeptBuf && cap(f.B) > 2*want {
					t.Errorf("a frame of %d bytes in a buffer of %d", len(f.B), cap(f.B))
				}
			}
		})
	}
}
