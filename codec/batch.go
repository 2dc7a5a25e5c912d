package codec

// BatchIter walks the elements of a batch frame (a JSON array) without allocating, validating
// and scanning each element as it goes:
//
//	var it codec.BatchIter
//	it.Reset(frame)
//	for it.Next() {
//		elem := it.Elem()       // the element's raw bytes, a sub-slice of frame
//		h, err := it.Header()   // its header, or ErrInvalidRequest for an invalid element
//		...
//	}
//	if err := it.Err(); err != nil { ... } // the batch as a whole is bad
//
// Element errors (Header) concern one element only: the server answers that element with an
// error object with id null and goes on with the others. Batch errors (Err) concern the frame:
// not an array, empty, invalid JSON, or past a limit; the server answers the frame with one
// error object. BatchIter learns of a parse error only when it reaches it, after the elements
// before it have been handed out, so a server must first Scan the frame (which validates all
// of it and reports ErrParse for the whole batch, as the specification wants) and only then
// walk it. Over a frame that Scan accepted with the same limits, Err is always nil.
//
// The zero BatchIter is ready for Reset. A BatchIter may be reused for many frames.
type BatchIter struct {
	// Scratch is an optional buffer for decoding escaped method names of elements, as
	// Header.Scratch is for Scan. Reset keeps it.
	Scratch []byte

	frame    []byte
	pos      int
	n        int
	maxBatch int
	done     bool
	elem     []byte
	h        Header
	herr     *Error
	err      *Error
	s        scanner
}

// Reset starts walking frame with DefaultLimits.
func (it *BatchIter) Reset(frame []byte) { it.ResetLimits(frame, nil) }

// ResetLimits starts walking frame with the given limits (nil means DefaultLimits).
func (it *BatchIter) ResetLimits(frame []byte, lim *Limits) {
	maxFrame, maxBatch, maxDepth := lim.values()
	it.frame, it.pos, it.n, it.maxBatch, it.done = frame, 0, 0, maxBatch, false
	it.elem, it.h, it.herr, it.err = nil, Header{}, nil, nil
	it.s.maxDepth, it.s.tooDeep = maxDepth, false
	if len(frame) > maxFrame {
		it.fail(ErrFrameTooLarge)
		return
	}
	i := skipWS(frame, 0)
	if i >= len(frame) {
		it.fail(ErrParse)
		return
	}
	if frame[i] != '[' {
		it.fail(ErrInvalidRequest) // not a batch
		return
	}
	it.s.open(1, false)
	if i = skipWS(frame, i+1); i >= len(frame) {
		it.fail(ErrParse)
		return
	}
	if frame[i] == ']' {
		if e := it.s.finish(frame, i+1); e != nil {
			it.fail(e)
		} else {
			it.fail(ErrInvalidRequest) // an empty batch
		}
		return
	}
	it.pos = i
}

func (it *BatchIter) fail(e *Error) {
	it.err, it.done, it.elem = e, true, nil
	it.h, it.herr = Header{}, nil
}

// Next moves to the next element and reports whether there is one.
func (it *BatchIter) Next() bool {
	if it.done {
		return false
	}
	frame, i := it.frame, it.pos
	if it.n > 0 {
		if i = skipWS(frame, i); i >= len(frame) {
			it.fail(ErrParse)
			return false
		}
		if frame[i] == ']' {
			if e := it.s.finish(frame, i+1); e != nil {
				it.fail(e)
				return false
			}
			it.done, it.elem, it.h, it.herr = true, nil, Header{}, nil
			return false
		}
		if frame[i] != ',' {
			it.fail(ErrParse)
			return false
		}
		if i = skipWS(frame, i+1); i >= len(frame) {
			it.fail(ErrParse)
			return false
		}
	}
	if it.n >= it.maxBatch {
		it.fail(ErrBatchTooLarge)
		return false
	}
	start := i
	it.h = Header{Scratch: it.Scratch}
	it.herr = nil
	var e *Error
	if frame[i] == '{' {
		var m members
		if i, e = it.s.scanObject(frame, i, 1, &m); e == nil && it.s.tooDeep {
			e = ErrTooDeep
		}
		if e != nil {
			it.fail(e)
			return false
		}
		if it.herr = it.s.validate(&m, &it.h); it.herr != nil {
			it.h.Kind = KindInvalid
		}
	} else {
		if i, e = it.s.skipValue(frame, i, 1); e == nil && it.s.tooDeep {
			e = ErrTooDeep
		}
		if e != nil {
			it.fail(e)
			return false
		}
		it.herr = ErrInvalidRequest // a batch element must be an object
	}
	it.elem, it.pos = frame[start:i], i
	it.n++
	return true
}

// Elem returns the current element's raw JSON, a sub-slice of the frame.
func (it *BatchIter) Elem() []byte { return it.elem }

// Index returns the 0-based position of the current element in the batch.
func (it *BatchIter) Index() int { return it.n - 1 }

// Header returns the current element's header and its validation error: nil, or
// ErrInvalidRequest when the element is not a valid request, notification or response (its
// header's Kind is then KindInvalid). The header belongs to the iterator and changes with Next.
func (it *BatchIter) Header() (*Header, error) {
	if it.herr != nil {
		return &it.h, it.herr
	}
	return &it.h, nil
}

// Scan copies the current element's header into h and returns its validation error, like Scan
// on the element alone. h.Scratch is kept but not used: escaped method names of batch elements
// are decoded into it.Scratch.
func (it *BatchIter) Scan(h *Header) error {
	scratch := h.Scratch
	*h = it.h
	h.Scratch = scratch
	if it.herr != nil {
		return it.herr
	}
	return nil
}

// Err returns the error that ended the walk early, or nil when the whole array was walked.
func (it *BatchIter) Err() error {
	if it.err != nil {
		return it.err
	}
	return nil
}
