package zmtp

import "testing"

// TestFreeListBound: a socket's free list of received messages keeps at most 2×RecvHWM
// messages and maxFreeBytes of buffers; what does not fit goes to the shared pool, and taking
// messages back out gives their bytes back to the budget.
func TestFreeListBound(t *testing.T) {
	tests := []struct {
		name     string
		recvHWM  int
		bufSize  int
		wantKept int
	}{
		{"small buffers: bounded by count", 10, 512, 20},
		{"large buffers: bounded by bytes", 1000, 256 << 10, maxFreeBytes / (256 << 10)},
		{"buffers of exactly the budget", 10, maxFreeBytes, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSocket(Router, Options{RecvHWM: tc.recvHWM})
			defer s.Close()
			kept := 0
			for range 3 * tc.wantKept {
				m := &Msg{buf: make([]byte, 0, tc.bufSize), home: s}
				if s.putFree(m) {
					kept++
				}
			}
			if kept != tc.wantKept || len(s.free) != kept || s.freeBytes != kept*tc.bufSize {
				t.Fatalf("kept %d (list %d, %d bytes), want %d of %d bytes", kept, len(s.free), s.freeBytes, tc.wantKept, tc.bufSize)
			}
			if s.freeBytes > maxFreeBytes {
				t.Fatalf("free list holds %d bytes, bound %d", s.freeBytes, maxFreeBytes)
			}
			var arr [64]*Msg
			got := s.takeFree(arr[:0])
			if want := min(64, kept); len(got) != want || s.freeBytes != (kept-want)*tc.bufSize {
				t.Fatalf("took %d, %d bytes left; want %d taken, %d left", len(got), s.freeBytes, want, (kept-want)*tc.bufSize)
			}
			if !s.putFree(got[0]) {
				t.Fatal("a message taken out does not fit back")
			}
		})
	}
}

// TestReleaseTrimsFrames: a released message of many frames (MaxFrames unbounded, or a
// message built by hand) does not keep its frame and offset lists on the socket's free list
// or in the pool; a message of few frames keeps them (no allocation for the next one).
func TestReleaseTrimsFrames(t *testing.T) {
	for _, frames := range []int{1, maxPooledFrames / 2, 2 * maxPooledFrames, 100000} {
		s := NewSocket(Router, Options{})
		m := &Msg{home: s}
		for range frames {
			m.endFrame()
		}
		m.setFrames()
		m.Release()
		if len(s.free) != 1 || s.free[0] != m {
			t.Fatalf("%d frames: message not on the free list", frames)
		}
		kept := cap(m.Frames) > 0 && cap(m.offs) > 0
		if frames > maxPooledFrames && (cap(m.Frames) != 0 || cap(m.offs) != 0) {
			t.Fatalf("%d frames: free list keeps lists of %d and %d", frames, cap(m.Frames), cap(m.offs))
		}
		if frames <= maxPooledFrames && !kept {
			t.Fatalf("%d frames: lists dropped", frames)
		}
		s.Close()
	}
}
