// Package brokerlink holds what the client and the node do alike on their DEALER to the
// broker, apart from sending (internal/batch): the receive loop and the connection events.
package brokerlink

import (
	"context"
	"errors"
	"log/slog"

	"github.com/zerotask/zerotask/zmtp"
)

// Receiver is the part of a zmtp DEALER the receive loop uses.
type Receiver interface {
	Recv(ctx context.Context) (*zmtp.Msg, error)
}

// ReadLoop receives messages until the socket closes or ctx ends, handing the body of each
// to ingest. The body is the last frame: the broker echoes an empty delimiter only when the
// peer sends one (neither the client nor the node does). The body is valid during the call
// only. A receive error other than a close or ctx's end is logged as who (for example
// "client").
func ReadLoop(ctx context.Context, sock Receiver, log *slog.Logger, who string, ingest func(body []byte)) {
	for {
		m, err := sock.Recv(ctx)
		if err != nil {
			if !errors.Is(err, zmtp.ErrClosed) && ctx.Err() == nil {
				log.Error(who+": receive failed", "err", err)
			}
			return
		}
		if k := len(m.Frames); k > 0 {
			ingest(m.Frames[k-1])
		}
		m.Release()
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
