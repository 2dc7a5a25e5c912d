//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
)

// sighup sends SIGHUP to this process (a broker run in it reloads its key lists).
func sighup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
