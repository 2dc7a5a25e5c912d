//go:build !unix

package main

import "testing"

// sighup: there is no SIGHUP to send here; the reload is tested on unix.
func sighup(t *testing.T) {
	t.Helper()
	t.Skip("no SIGHUP on this platform")
}
