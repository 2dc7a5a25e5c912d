package zmtp

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// refFrames is the reference encoding of a message: each frame's header then its body, MORE
// on every frame but the last (spec 23).
func refFrames(pre, frames [][]byte) []byte {
	var out []byte
	all := append(append([][]byte{}, pre...), frames...)
	for i, f := range all {
		var fl byte
		if i < len(all)-1 {
			fl = flagMore
		}
		out = appendFrameHeader(out, fl, len(f))
		out = append(out, f...)
	}
	return out
}

// joined returns the queued bytes of q in order, and checks the chunk invariants: every chunk
// but the last is full, and q.n is their total.
func joined(t *testing.T, q *wqueue) []byte {
	t.Helper()
	var out []byte
	for i, c := range q.chunks {
		if cap(c) != wchunkSize {
			t.Fatalf("chunk %d has cap %d, want %d", i, cap(c), wchunkSize)
		}
		if i < len(q.chunks)-1 && len(c) != wchunkSize {
			t.Fatalf("chunk %d of %d holds %d bytes: only the last may be partial", i, len(q.chunks), len(c))
		}
		out = append(out, c...)
	}
	if len(out) != q.n {
		t.Fatalf("q.n = %d, chunks hold %d", q.n, len(out))
	}
	return out
}

// TestWqueueEncoding: frames of every size class, alone and after a partly filled chunk,
// encode exactly as the reference, spanning chunks where they must.
func TestWqueueEncoding(t *testing.T) {
	sizes := []int{0, 1, maxShortFrame, maxShortFrame + 1, wchunkSize - 3, wchunkSize, wchunkSize + 1, 3*wchunkSize + 7}
	for _, lead := range []int{0, 5, wchunkSize - 1} {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("lead=%d/size=%d", lead, size), func(t *testing.T) {
				var q wqueue
				body := bytes.Repeat([]byte{'b'}, size)
				for i := range body {
					body[i] = byte(i * 7)
				}
				pre := [][]byte{[]byte("id"), {}}
				var want []byte
				if lead > 0 {
					q.write(bytes.Repeat([]byte{'L'}, lead))
					want = append(want, bytes.Repeat([]byte{'L'}, lead)...)
				}
				q.writeFrames(pre, [][]byte{body, []byte("tail")})
				want = append(want, refFrames(pre, [][]byte{body, []byte("tail")})...)
				q.writeCommand("PING", []byte{0, 1}, []byte("ctx"))
				want = append(want, appendCommand(nil, "PING", []byte{0, 1}, []byte("ctx"))...)
				if got := joined(t, &q); !bytes.Equal(got, want) {
					t.Fatalf("encoded %d bytes, differs from the reference (%d bytes)", len(got), len(want))
				}
				if got := framesSize(pre, [][]byte{body, []byte("tail")}); got != len(refFrames(pre, [][]byte{body, []byte("tail")})) {
					t.Fatalf("framesSize = %d, reference %d", got, len(refFrames(pre, [][]byte{body, []byte("tail")})))
				}
				// Written chunks come back: a connection keeps maxFreeChunks, the rest go to
				// the pool, and the queue's own list is emptied.
				out := q.swap(nil)
				if q.n != 0 || len(q.chunks) != 0 {
					t.Fatalf("after swap: n=%d, %d chunks", q.n, len(q.chunks))
				}
				k := len(out)
				_ = q.recycle(out)
				if q.nfree != min(k, maxFreeChunks) {
					t.Fatalf("kept %d free chunks of %d written, want %d", q.nfree, k, min(k, maxFreeChunks))
				}
				q.drop()
				if q.nfree != 0 {
					t.Fatalf("drop kept %d free chunks", q.nfree)
				}
			})
		}
	}
}

// TestSendHWMBytes: the queue takes messages until the next one would pass SendHWMBytes,
// always takes a message into an empty queue whatever its size, and has no byte bound with -1.
// Tested on a connection without a writer, so nothing drains the queue under the test.
func TestSendHWMBytes(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 98) // 100 bytes encoded
	big := bytes.Repeat([]byte("y"), 5000)
	tests := []struct {
		name     string
		opts     Options
		frames   [][]byte
		wantTook int // messages taken before the first refusal (-1: none refused in 1000)
	}{
		{"bound 1000 takes 10 of 100 bytes", Options{SendHWMBytes: 1000}, [][]byte{body}, 10},
		{"bound 999 takes 9", Options{SendHWMBytes: 999}, [][]byte{body}, 9},
		{"one message larger than the bound fits an empty queue", Options{SendHWMBytes: 1000}, [][]byte{big}, 1},
		{"message count still bounds", Options{SendHWMBytes: 1 << 20, SendHWM: 3}, [][]byte{body}, 3},
		{"-1: no byte bound", Options{SendHWMBytes: -1, SendHWM: 1 << 20}, [][]byte{big}, -1},
		{"default 16 MiB", Options{SendHWM: 1 << 20}, [][]byte{bytes.Repeat([]byte("z"), 1<<20-9)}, DefaultSendHWMBytes >> 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSocket(Dealer, tc.opts)
			defer s.Close()
			c := newConn(s, nil, "test")
			defer func() {
				c.wq.drop()
				c.fr.release()
			}()
			took := -1
			for i := range 1000 {
				ok, closed := c.enqueue(nil, tc.frames)
				if closed {
					t.Fatal("queue reported closed")
				}
				if !ok {
					took = i
					break
				}
			}
			if took != tc.wantTook {
				t.Fatalf("took %d messages before the first refusal, want %d", took, tc.wantTook)
			}
			if tc.wantTook > 0 {
				// A PUB drops at the same bound (and counts it) instead of refusing.
				c.s.typ = Pub
				if c.publish(tc.frames) {
					t.Fatal("publish at the bound queued the message, want a drop")
				}
			}
		})
	}
}

// TestSendHWMTotalBytes: SendHWMTotalBytes bounds the bytes queued for all of a socket's peers
// together: once one peer's queue holds the total, another peer takes one message into its
// empty queue and no more, and room comes back when a queue is taken for a write or dropped.
// Connections without writers, so nothing drains a queue under the test.
func TestSendHWMTotalBytes(t *testing.T) {
	body := [][]byte{bytes.Repeat([]byte("x"), 98)} // 100 bytes encoded
	fill := func(c *conn) int {
		for i := range 1000 {
			if ok, _ := c.enqueue(nil, body); !ok {
				return i
			}
		}
		return -1
	}
	tests := []struct {
		name  string
		total int
		want  [2]int // messages the first and the second peer take
	}{
		{"bound 1000: 10, then 1 into the empty queue", 1000, [2]int{10, 1}},
		{"bound 1099: still 10, then 1", 1099, [2]int{10, 1}},
		{"bound 1500: 15, then 1", 1500, [2]int{15, 1}},
		{"-1: only SendHWM bounds", -1, [2]int{20, 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSocket(Router, Options{SendHWM: 20, SendHWMTotalBytes: tc.total})
			defer s.Close()
			var cs [2]*conn
			for i := range cs {
				cs[i] = newConn(s, nil, "test")
			}
			defer func() {
				for _, c := range cs {
					c.wmu.Lock()
					c.dropLocked()
					c.wmu.Unlock()
					c.fr.release()
				}
			}()
			for i, c := range cs {
				if got := fill(c); got != tc.want[i] {
					t.Fatalf("peer %d took %d messages, want %d", i, got, tc.want[i])
				}
			}
			if got, want := s.queued.Load(), int64(100*(tc.want[0]+tc.want[1])); got != want {
				t.Fatalf("socket counts %d bytes queued, want %d", got, want)
			}
			if tc.total < 0 {
				return
			}
			// The first peer's queue taken for a write gives its bytes back to the others.
			cs[0].wmu.Lock()
			cs[0].takeLocked(&cs[0].w)
			if got := fill(cs[1]); got != tc.want[0]-1 {
				t.Fatalf("after the first queue was written, the second peer took %d more, want %d", got, tc.want[0]-1)
			}
			cs[1].wmu.Lock()
			cs[1].dropLocked()
			cs[1].wmu.Unlock()
			if got := s.queued.Load(); got != 0 {
				t.Fatalf("%d bytes counted after every queue was taken or dropped, want 0", got)
			}
		})
	}
}

// TestLargeMessagesAcrossChunks: messages spanning many chunks, interleaved with small ones,
// arrive byte for byte over a real connection, in order.
func TestLargeMessagesAcrossChunks(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			r := newBound(t, Router, Options{MaxMsgSize: 4 << 20}, tr)
			d := newConnected(t, Dealer, Options{Identity: []byte("d")}, r.LastEndpoint())
			waitPeers(t, d, 1)
			var msgs [][]byte
			for i, size := range []int{10, wchunkSize + 1, 300, 1 << 20, 0, 3*wchunkSize - 2, 2 << 20} {
				b := make([]byte, size)
				for j := range b {
					b[j] = byte(i + j*31)
				}
				msgs = append(msgs, b)
			}
			for _, m := range msgs {
				send(t, d, []byte("head"), m)
			}
			for i, m := range msgs {
				got := recv(t, r)
				if len(got) != 3 || string(got[1]) != "head" || !bytes.Equal(got[2], m) {
					t.Fatalf("message %d (%d bytes) arrived altered: %d frames", i, len(m), len(got))
				}
			}
		})
	}
}

// TestSendHWMBytesSlowPeer: over a real connection to a peer that does not read, a ROUTER
// whose message bound is far away refuses at the byte bound (after the kernel's buffers fill).
func TestSendHWMBytesSlowPeer(t *testing.T) {
	r := newBound(t, Router, Options{SendHWM: 1 << 20, SendHWMBytes: 256 << 10}, "tcp")
	_ = newConnected(t, Dealer, Options{Identity: []byte("slow"), RecvHWM: 1}, r.LastEndpoint())
	waitPeers(t, r, 1)
	m := AcquireMsg()
	defer m.Release()
	m.Frames = append(m.Frames, []byte("slow"), bytes.Repeat([]byte("s"), 16<<10))
	var err error
	n := 0
	for ; n < 100000; n++ {
		if err = r.TrySend(m); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("after %d messages: %v, want ErrQueueFull", n, err)
	}
	if n > 4000 { // 64 MiB: far past any kernel buffer plus the 256 KiB bound
		t.Fatalf("%d messages of 16 KiB taken before the bound", n)
	}
}

// FuzzWqueueRoundTrip: whatever frames a message holds and wherever the queue's chunks start,
// what the write queue holds reads back through the frame reader as the same message. The
// input gives a lead (bytes already queued before the message), then frame sizes and contents.
func FuzzWqueueRoundTrip(f *testing.F) {
	f.Add(uint16(0), []byte{3, 'a', 'b', 'c'}, uint16(0))
	f.Add(uint16(wchunkSize-1), []byte{0, 1, 'x'}, uint16(300))
	f.Add(uint16(5), []byte{255, 0}, uint16(wchunkSize+1))
	f.Fuzz(func(t *testing.T, lead uint16, spec []byte, big uint16) {
		var frames [][]byte
		for i := 0; i < len(spec); {
			n := int(spec[i])
			i++
			end := min(len(spec), i+n)
			frames = append(frames, spec[i:end])
			i = end
		}
		if big > 0 { // one frame larger than the spec can say, spanning chunks
			b := make([]byte, int(big)*3)
			for i := range b {
				b[i] = byte(i)
			}
			frames = append(frames, b)
		}
		if len(frames) == 0 {
			frames = [][]byte{{}}
		}
		var q wqueue
		defer q.drop()
		// The lead is a whole message of its own (one frame of lead bytes), so that the
		// stream stays valid ZMTP and the message under test starts mid-chunk.
		leadMsg := [][]byte{make([]byte, int(lead))}
		q.writeFrames(nil, leadMsg)
		q.writeFrames(nil, frames)
		if want := framesSize(nil, leadMsg) + framesSize(nil, frames); q.n != want {
			t.Fatalf("queued %d bytes, framesSize says %d", q.n, want)
		}
		var stream []byte
		for i, c := range q.chunks {
			if i < len(q.chunks)-1 && len(c) != wchunkSize {
				t.Fatalf("chunk %d of %d partly filled (%d bytes)", i, len(q.chunks), len(c))
			}
			stream = append(stream, c...)
		}
		fr := newFrameReader(bytes.NewReader(stream), -1)
		defer fr.release()
		for k, want := range [][][]byte{leadMsg, frames} {
			m := AcquireMsg()
			kind, err := fr.readMsg(m)
			if err != nil || kind != kindData {
				t.Fatalf("message %d: kind %v, %v", k, kind, err)
			}
			if !framesEqual(m.Frames, want) {
				t.Fatalf("message %d read back as %d frames, want %d", k, len(m.Frames), len(want))
			}
			m.Release()
		}
	})
}
