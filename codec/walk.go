package codec

// The JSON walker. Scan, BatchIter and Decode validate with it, and it is the one every other
// package uses to find where a JSON value ends (dispatch's params scanner, internal/rawjson's
// member and element walks): one state machine over the bytes, so a fix to what counts as
// valid JSON lands everywhere at once.

// SkipSpace returns the index of the first byte at or after i that is not JSON whitespace
// (space, tab, line feed, carriage return), or len(data).
func SkipSpace(data []byte, i int) int { return skipWS(data, i) }

// SkipValue validates the JSON value that starts at data[i] (no whitespace before it) against
// RFC 8259, as Scan does (no leading zeros, valid escapes and UTF-8, no raw control characters
// in strings), and returns the index just past it. What follows the value is not looked at.
// Arrays and objects nested deeper than HardMaxDepth fail with ErrTooDeep; anything else
// malformed with ErrParse, with the index where the walk stopped. It allocates nothing and
// uses no recursion, however deep the input nests.
func SkipValue(data []byte, i int) (int, error) {
	if i < 0 || i >= len(data) {
		return i, ErrParse
	}
	s := scanner{maxDepth: HardMaxDepth}
	end, e := s.skipValue(data, i, 0)
	if e != nil {
		return end, e
	}
	return end, nil
}

// SkipString validates the JSON string that starts with the quote at data[i] and returns the
// index just past its closing quote, and whether it holds escape sequences. A string that is
// not closed, or holds an invalid escape, invalid UTF-8 or a raw control character, fails with
// ErrParse.
func SkipString(data []byte, i int) (end int, escaped bool, err error) {
	if i < 0 || i >= len(data) || data[i] != '"' {
		return i, false, ErrParse
	}
	end, escaped, e := scanString(data, i)
	if e != nil {
		return end, escaped, e
	}
	return end, escaped, nil
}
