package zmtp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
)

// endpoint is a parsed "tcp://host:port" or "ipc://path".
type endpoint struct {
	network string // "tcp" or "unix"
	addr    string
}

// parseEndpoint parses an endpoint. For tcp, "*" as host means every interface (bind only).
// For ipc, the path follows "ipc://" ("ipc:///tmp/x.sock"); a leading '@' names a Linux
// abstract socket.
func parseEndpoint(ep string) (endpoint, error) {
	switch {
	case strings.HasPrefix(ep, "tcp://"):
		a := ep[len("tcp://"):]
		host, port, err := net.SplitHostPort(a)
		if err != nil || port == "" {
			return endpoint{}, fmt.Errorf("%w: %q: want tcp://host:port", ErrEndpoint, ep)
		}
		if host == "*" {
			host = ""
		}
		return endpoint{network: "tcp", addr: net.JoinHostPort(host, port)}, nil
	case strings.HasPrefix(ep, "ipc://"):
		p := ep[len("ipc://"):]
		if p == "" || p == "*" {
			return endpoint{}, fmt.Errorf("%w: %q: want ipc:///path", ErrEndpoint, ep)
		}
		return endpoint{network: "unix", addr: p}, nil
	}
	return endpoint{}, fmt.Errorf("%w: %q: unsupported transport (tcp://, ipc://)", ErrEndpoint, ep)
}

// listen binds the endpoint. A stale ipc socket file (nobody listening) is removed first, as
// libzmq does.
func (e endpoint) listen() (net.Listener, error) {
	if e.network == "unix" && !strings.HasPrefix(e.addr, "@") {
		if fi, err := os.Lstat(e.addr); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			if c, err := net.Dial("unix", e.addr); err == nil {
				c.Close()
			} else {
				_ = os.Remove(e.addr)
			}
		}
	}
	return net.Listen(e.network, e.addr)
}

// dial connects to the endpoint.
func (e endpoint) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, e.network, e.addr)
}

// endpointString renders a listener's resolved address as an endpoint.
func endpointString(l net.Listener) string {
	a := l.Addr()
	switch a.Network() {
	case "tcp":
		return "tcp://" + a.String()
	case "unix":
		return "ipc://" + a.String()
	}
	return a.Network() + "://" + a.String()
}

// isClosedErr reports an error from using a closed network connection or listener.
func isClosedErr(err error) bool { return errors.Is(err, net.ErrClosed) }
