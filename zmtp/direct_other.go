//go:build !unix

package zmtp

import (
	"io"
	"net"
)

// directWriter is disabled where the socket's descriptor cannot be written without blocking
// from here: every message goes through the connection's writer.
type directWriter struct{ ok bool }

func (d *directWriter) init(net.Conn) {}

func (d *directWriter) write([]byte) int { return 0 }

// newRawReader returns nil here: the connection reads through net.Conn.
func newRawReader(net.Conn) io.Reader { return nil }
