package broker

// Idempotency keys. A broker.submit with "key" remembers key -> the task's sequence number; a
// later submit with the same key, while the broker still knows that task (it is live, or its
// record is kept in the result store), is answered with the first task's id and runs nothing.
// Once the first task is forgotten (its record past ResultTTL or pushed out by MaxResults) the
// key is free again: "never twice while the first is known", as docs/reliability.md says.
//
// The map is checked on use (an entry whose task is forgotten is stale) and swept of stale
// entries when they could outnumber the live ones, so its size stays within a small factor of
// the tasks and records the broker holds anyway.

// keyed returns the task of key if the broker still knows it.
func (c *core) keyed(key []byte) (uint64, bool) {
	seq, ok := c.keys[string(key)]
	if !ok {
		return 0, false
	}
	if c.known(seq) {
		return seq, true
	}
	delete(c.keys, string(key))
	return 0, false
}

// unconfirmed reports whether submitted task seq is still being written to the store.
func (c *core) unconfirmed(seq uint64) bool {
	slot, ok := c.subm[seq]
	return ok && c.tasks.at(slot).state == stStoring
}

// known reports whether submitted task seq is live or has a record kept.
func (c *core) known(seq uint64) bool {
	if _, ok := c.subm[seq]; ok || c.flowOf(seq) != nil {
		return true
	}
	_, ok := c.store.get(seq)
	return ok
}

// pruneKeys sweeps the stale keys once the map is larger than everything it can refer to.
func (c *core) pruneKeys() {
	if len(c.keys) <= 1024 || len(c.keys) <= 2*(len(c.subm)+c.store.len()) {
		return
	}
	for k, seq := range c.keys {
		if !c.known(seq) {
			delete(c.keys, k)
		}
	}
}
