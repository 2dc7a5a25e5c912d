package zmtp

// ClosePeer closes the connection of the ROUTER peer with this routing identity, for reason,
// as if the peer had gone: its disconnect reaches the Monitor as usual, and a peer that
// reconnects comes back as a new connection. It reports whether such a peer was connected.
// A broker uses it to drop a peer that broke the protocol above ZMTP.
func (s *Socket) ClosePeer(identity []byte, reason error) bool {
	if s.typ != Router {
		return false
	}
	s.rmu.RLock()
	c := s.routes[string(identity)]
	s.rmu.RUnlock()
	if c == nil {
		return false
	}
	c.shutdown(reason)
	return true
}
