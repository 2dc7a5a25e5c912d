package broker

// Hand-out ids. The id a node sees for a task is a JSON string "<epoch>.<key>": the broker
// run's epoch (8 hex digits, the "broker" of its hello reply) and the task key (see taskKey).
// Keys alone restart from the same values in every broker run, so an answer that a node sends
// to a restarted broker (or to another broker on the same store) for a task of an earlier run
// could otherwise finish whatever task now has that key. With the epoch in the id, such an
// answer names its own run, and the broker ignores it (counted stale); revokes on the shared
// PUB "control" topic name tasks of one broker run only, too.

// handoutIDMax bounds the bytes of a hand-out id: quotes, epoch, dot and a key below 2^53.
const handoutIDMax = 2 + 8 + 1 + 16

// appendHandout appends the JSON hand-out id of task key k.
func (c *core) appendHandout(dst []byte, k uint64) []byte {
	dst = append(dst, '"')
	dst = append(dst, c.epoch...)
	dst = append(dst, '.')
	dst = appendUint(dst, k)
	return append(dst, '"')
}

// parseHandout reads a hand-out id from a node (raw JSON). ok is false when raw is not a
// hand-out id at all (it names nothing: a protocol violation); ours is false for the id of
// another broker run (a late answer to a task this run never handed out).
func (c *core) parseHandout(raw []byte) (k uint64, ours, ok bool) {
	n := len(raw)
	e := len(c.epoch)
	if n < e+4 || n > handoutIDMax || raw[0] != '"' || raw[n-1] != '"' || raw[e+1] != '.' {
		return 0, false, false
	}
	for _, b := range raw[1 : e+1] {
		if !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
			return 0, false, false
		}
	}
	digits := raw[e+2 : n-1]
	if len(digits) == 0 || len(digits) > 16 {
		return 0, false, false
	}
	for _, b := range digits {
		if b < '0' || b > '9' {
			return 0, false, false
		}
		k = k*10 + uint64(b-'0')
	}
	if k >= 1<<53 {
		return 0, false, false
	}
	return k, string(raw[1:e+1]) == c.epoch, true
}
