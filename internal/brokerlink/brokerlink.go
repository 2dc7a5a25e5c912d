// Package brokerlink holds what the client and the node do alike on their DEALER to the
// broker, apart from sending (internal/batch): the receive handler and the connection events.
package brokerlink

import (
	"log/slog"
	"sync"

	"github.com/zerotask/zerotask/zmtp"
)

// Handler returns the DEALER's zmtp Options.Handler: the body of each message read is handed
// to ingest on the goroutine that read it (no hand-off to a receive loop), one message at a
// time across connections (ingest's buffers belong to one caller at a time). The body is the
// last frame: the broker echoes an empty delimiter only when the peer sends one (neither the
// client nor the node does); it is valid during the call only. ingest runs on a connection's
// reader: it must not block (that connection reads nothing meanwhile, PINGs included).
func Handler(ingest func(body []byte)) func([]*zmtp.Msg) {
	var mu sync.Mutex
	return func(msgs []*zmtp.Msg) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if k := len(m.Frames); k > 0 {
				ingest(m.Frames[k-1])
			}
			m.Release()
		}
	}
}

// Monitor returns a zmtp monitor (Options.Monitor) that logs the DEALER's connects and
// disconnects as who and calls onConnect and onDisconnect. It runs on a zmtp goroutine, so
// neither may block or call the socket.
func Monitor(log *slog.Logger, who string, onConnect, onDisconnect func()) func(zmtp.Event) {
	connected, lost := who+": connected", who+": connection to broker lost"
	return func(e zmtp.Event) {
		switch e.Type {
		case zmtp.EventConnected:
			log.Debug(connected, "endpoint", e.Endpoint, "remote", e.Remote)
			onConnect()
		case zmtp.EventDisconnected:
			log.Info(lost, "endpoint", e.Endpoint, "err", e.Err)
			onDisconnect()
		}
	}
}
