package codec

// AppendErrorReply appends the reply a server owes for a frame that failed with err, as the
// specification prescribes, or nothing when no reply is due. It is the one place where the
// dispatcher and the broker turn a failure into bytes on the wire.
//
//   - err nil: nothing.
//   - err is (or wraps) an *Error with code -32700 or -32600 (what Scan,
//     BatchIter and Decode return for a bad frame or element): an error response with
//     "id":null, because the id could not be trusted. This is the reply to `[]`, to invalid
//     JSON, and to each invalid element of a batch, even one without an id.
//   - any other error (ErrMethodNotFound, ErrInvalidParams, an application *Error, or a plain
//     Go error, sent as ErrInternal): frame is the request it is about (or the batch element);
//     the reply echoes its id, and a notification gets nothing, even on error.
//
// Batches: the server Scans the frame; on error it sends this single reply (never an array).
// Otherwise it walks the elements with BatchIter and collects the replies of the elements that
// have one into a BatchWriter: an invalid element gets its own -32600 with id null, its valid
// siblings are processed, and when no element needs a reply (all notifications) nothing at
// all is sent. So `[]` gets one -32600 object, `[1]` an array holding one -32600 object.
func AppendErrorReply(dst, frame []byte, err error) []byte {
	if err == nil {
		return dst
	}
	e := AsError(err)
	if isFrameError(e) {
		return AppendError(dst, nil, e)
	}
	var h Header
	if Scan(frame, &h) != nil {
		return AppendError(dst, nil, e)
	}
	return AppendErrorFor(dst, &h, e)
}

// AppendErrorFor is AppendErrorReply for a frame already scanned into h: a request gets an
// error response with its id, a notification (or a response) gets nothing, and a frame-level
// error (-32700, -32600) or a header that is not a request gets id null.
func AppendErrorFor(dst []byte, h *Header, err error) []byte {
	if err == nil {
		return dst
	}
	e := AsError(err)
	if isFrameError(e) {
		return AppendError(dst, nil, e)
	}
	switch h.Kind {
	case KindNotification, KindResponse:
		return dst
	case KindRequest:
		return AppendError(dst, h.ID, e)
	}
	return AppendError(dst, nil, e)
}

func isFrameError(e *Error) bool {
	return e.Code == CodeParseError || e.Code == CodeInvalidRequest
}

// IsReserved reports whether a method name is reserved by the specification: names that
// begin with "rpc." are for rpc-internal methods and extensions (section 4). The dispatcher
// refuses to register them; the broker never forwards them as tasks. The match is exact and
// case-sensitive, on the unescaped name.
func IsReserved(method []byte) bool {
	return len(method) >= 4 && string(method[:4]) == "rpc."
}

// IsReservedName is IsReserved for a string.
func IsReservedName(method string) bool {
	return len(method) >= 4 && method[:4] == "rpc."
}
