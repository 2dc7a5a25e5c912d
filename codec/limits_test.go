package codec

import (
	"strings"
	"testing"
)

// nestedRequest returns a notification whose total nesting is depth (the object itself is
// depth 1, so params holds depth-1 nested arrays).
func nestedRequest(depth int) string {
	return `{"jsonrpc":"2.0","method":"m","params":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

func batchOf(n int) string {
	elems := make([]string, n)
	for i := range elems {
		elems[i] = `{"jsonrpc":"2.0","method":"m"}`
	}
	return "[" + strings.Join(elems, ",") + "]"
}

// checkLimit runs frame through Scan, BatchIter (for batches) and Decode with lim and expects
// want (nil: accepted) from each.
func checkLimit(t *testing.T, frame string, lim *Limits, want *Error) {
	t.Helper()
	var h Header
	if err := ScanLimits([]byte(frame), &h, lim); err != want && !(want == nil && err == nil) {
		t.Fatalf("ScanLimits = %v, want %v", err, want)
	}
	if _, _, err := DecodeLimits([]byte(frame), lim); err != want && !(want == nil && err == nil) {
		t.Fatalf("DecodeLimits = %v, want %v", err, want)
	}
	if _, _, err := refDecode([]byte(frame), lim); err != want && !(want == nil && err == nil) {
		t.Fatalf("reference decoder = %v, want %v", err, want)
	}
	if strings.HasPrefix(frame, "[") {
		var it BatchIter
		it.ResetLimits([]byte(frame), lim)
		for it.Next() {
		}
		if err := it.Err(); err != want && !(want == nil && err == nil) {
			t.Fatalf("BatchIter.Err = %v, want %v", err, want)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		if DefaultLimits != (Limits{MaxFrame: 1 << 20, MaxBatch: 1024, MaxDepth: 64}) {
			t.Fatalf("DefaultLimits = %+v", DefaultLimits)
		}
		var zero Limits
		f, b, d := zero.values()
		if f != 1<<20 || b != 1024 || d != 64 {
			t.Fatalf("zero Limits gives %d %d %d", f, b, d)
		}
	})

	frame := `{"jsonrpc":"2.0","method":"m","params":[1,2,3],"id":1}`
	t.Run("frame/at_bound", func(t *testing.T) { checkLimit(t, frame, &Limits{MaxFrame: len(frame)}, nil) })
	t.Run("frame/one_past", func(t *testing.T) { checkLimit(t, frame+" ", &Limits{MaxFrame: len(frame)}, ErrFrameTooLarge) })
	t.Run("frame/batch_one_past", func(t *testing.T) {
		b := batchOf(2)
		checkLimit(t, b, &Limits{MaxFrame: len(b)}, nil)
		checkLimit(t, b+" ", &Limits{MaxFrame: len(b)}, ErrFrameTooLarge)
	})
	t.Run("frame/default_bound", func(t *testing.T) {
		pad := 1<<20 - len(`{"jsonrpc":"2.0","method":"m","params":[""]}`)
		big := `{"jsonrpc":"2.0","method":"m","params":["` + strings.Repeat("x", pad) + `"]}`
		checkLimit(t, big, nil, nil)
		checkLimit(t, big+" ", nil, ErrFrameTooLarge)
	})
	t.Run("frame/code", func(t *testing.T) {
		if ErrFrameTooLarge.Code != CodeInvalidRequest {
			t.Fatal("frame-size code outside the server-error range")
		}
	})

	t.Run("batch/at_bound", func(t *testing.T) { checkLimit(t, batchOf(3), &Limits{MaxBatch: 3}, nil) })
	t.Run("batch/one_past", func(t *testing.T) { checkLimit(t, batchOf(4), &Limits{MaxBatch: 3}, ErrBatchTooLarge) })
	t.Run("batch/default_at_bound", func(t *testing.T) { checkLimit(t, batchOf(1024), nil, nil) })
	t.Run("batch/default_one_past", func(t *testing.T) { checkLimit(t, batchOf(1025), nil, ErrBatchTooLarge) })
	t.Run("batch/parse_error_wins", func(t *testing.T) {
		var h Header
		if err := ScanLimits([]byte(batchOf(4)[1:]+"x"), &h, &Limits{MaxBatch: 3}); err != ErrParse {
			t.Fatalf("got %v", err)
		}
		f := batchOf(4)
		f = f[:len(f)-1] + ",]"
		if err := ScanLimits([]byte(f), &h, &Limits{MaxBatch: 3}); err != ErrParse {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("batch/error_is_invalid_request", func(t *testing.T) {
		if ErrBatchTooLarge.Code != CodeInvalidRequest || ErrTooDeep.Code != CodeInvalidRequest {
			t.Fatal("limit errors must carry -32600")
		}
	})

	t.Run("depth/at_bound", func(t *testing.T) { checkLimit(t, nestedRequest(5), &Limits{MaxDepth: 5}, nil) })
	t.Run("depth/one_past", func(t *testing.T) { checkLimit(t, nestedRequest(6), &Limits{MaxDepth: 5}, ErrTooDeep) })
	t.Run("depth/in_batch_at_bound", func(t *testing.T) {
		checkLimit(t, "["+nestedRequest(4)+"]", &Limits{MaxDepth: 5}, nil)
	})
	t.Run("depth/in_batch_one_past", func(t *testing.T) {
		checkLimit(t, "["+nestedRequest(5)+"]", &Limits{MaxDepth: 5}, ErrTooDeep)
	})
	t.Run("depth/in_response_result", func(t *testing.T) {
		f := func(d int) string {
			return `{"jsonrpc":"2.0","id":1,"result":` + strings.Repeat("{\"a\":", d-1) + "1" + strings.Repeat("}", d-1) + `}`
		}
		checkLimit(t, f(5), &Limits{MaxDepth: 5}, nil)
		checkLimit(t, f(6), &Limits{MaxDepth: 5}, ErrTooDeep)
	})
	t.Run("depth/default_at_bound", func(t *testing.T) { checkLimit(t, nestedRequest(64), nil, nil) })
	t.Run("depth/default_one_past", func(t *testing.T) { checkLimit(t, nestedRequest(65), nil, ErrTooDeep) })
	t.Run("depth/clamped_to_hard_max", func(t *testing.T) {
		lim := &Limits{MaxDepth: 1 << 30}
		checkLimit(t, nestedRequest(HardMaxDepth), lim, nil)
		checkLimit(t, nestedRequest(HardMaxDepth+1), lim, ErrTooDeep)
	})
	t.Run("depth/far_past_hard_max_stops_early", func(t *testing.T) {
		checkLimit(t, strings.Repeat("[", 500000), nil, ErrTooDeep)
		checkLimit(t, `{"jsonrpc":"2.0","method":"m","params":`+strings.Repeat(`{"a":`, 150000), nil, ErrTooDeep)
	})
	t.Run("depth/parse_error_wins", func(t *testing.T) {
		f := nestedRequest(10)
		f = f[:len(f)-1] // unterminated
		var h Header
		if err := ScanLimits([]byte(f), &h, &Limits{MaxDepth: 5}); err != ErrParse {
			t.Fatalf("got %v", err)
		}
		if _, _, err := refDecode([]byte(f), &Limits{MaxDepth: 5}); err != ErrParse {
			t.Fatalf("reference decoder got %v", err)
		}
	})
	t.Run("negative_means_default", func(t *testing.T) {
		checkLimit(t, nestedRequest(64), &Limits{MaxFrame: -1, MaxBatch: -1, MaxDepth: -1}, nil)
		checkLimit(t, nestedRequest(65), &Limits{MaxDepth: -1}, ErrTooDeep)
	})
}
