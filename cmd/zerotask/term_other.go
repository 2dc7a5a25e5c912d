//go:build !linux

package main

import "os"

// rawTerminal leaves the terminal as it is outside Linux: top then reads q after Enter.
func rawTerminal(*os.File) (restore func()) { return func() {} }

// terminalSize is 120x40 outside Linux.
func terminalSize(*os.File) (cols, rows int) { return 120, 40 }
