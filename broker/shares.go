package broker

// Fair shares. Every table the clients fill together (the methods with a queue, the
// broker.result waits) has a global bound and a per-client share of it (Config.ClientShare
// percent), so that one client cannot fill a table the others need. A client is its
// authenticated CURVE key when the connection has one (all the connections of one key share
// one share), else its routing identity: without authentication one host's connections are
// bounded only by MaxConnsPerAddr, so the share bounds each connection.
//
// A queue is charged to the client whose call or hello made it, until it is forgotten; a wait
// to the client that waits. A share lives while a peer uses it or it holds anything.

// share counts what one client holds in the shared tables.
type share struct {
	key     string
	peers   int // live peers using it
	methods int // queues it made that still exist
	waits   int // its broker.result waits
}

// shareFor returns the share of a client known by key (its CURVE key, or its identity).
func (c *core) shareFor(key []byte) *share {
	if sh, ok := c.shares[string(key)]; ok {
		return sh
	}
	sh := &share{key: string(key)}
	c.shares[sh.key] = sh
	return sh
}

// releaseShare forgets a share that nothing uses any more.
func (c *core) releaseShare(sh *share) {
	if sh != nil && sh.peers == 0 && sh.methods == 0 && sh.waits == 0 {
		delete(c.shares, sh.key)
	}
}

// shareOf returns the per-client bound of a table bounded globally by total: at least 1.
func (c *core) shareOf(total int) int {
	return max(total*c.cfg.ClientShare/100, 1)
}
