package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// rawTerminal turns off line buffering and echo on a terminal, so top sees each key as it is
// typed; Ctrl-C still raises SIGINT. It returns the function that restores the terminal (a
// no-op when in is not a terminal).
func rawTerminal(in *os.File) (restore func()) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}

// terminalSize returns out's columns and rows, or 120x40 when it is not a terminal.
func terminalSize(out *os.File) (cols, rows int) {
	ws, err := unix.IoctlGetWinsize(int(out.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 || ws.Row == 0 {
		return 120, 40
	}
	return int(ws.Col), int(ws.Row)
}
