package broker

import "github.com/zerotask/zerotask/zmtp"

// CloseCurvePeers closes the ROUTER and PUB connections whose CURVE key drop returns true (see
// zmtp.Socket.CloseCurvePeers), after the keys allowed by Config.Security changed: a revoked
// key's open connections go too. It returns how many it closed.
func (b *Broker) CloseCurvePeers(drop func(zmtp.CurveKey) bool) int {
	n := b.router.CloseCurvePeers(drop)
	if b.pub != nil {
		n += b.pub.CloseCurvePeers(drop)
	}
	return n
}
