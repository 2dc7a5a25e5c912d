//go:build linux

package procs

import (
	"bytes"
	"os"

	"github.com/zerotask/zerotask/internal/rawjson"
)

// machineMeter reads the machine's CPU time from /proc/stat, kept open and read again from its
// start each time (one pread; the kernel renders it afresh).
type machineMeter struct {
	f   *os.File
	buf []byte
}

func newMachineMeter() *machineMeter {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return &machineMeter{}
	}
	return &machineMeter{f: f, buf: make([]byte, 512)}
}

// read returns the idle (idle and iowait) and total ticks of all CPUs so far; ok false when
// they cannot be read.
func (m *machineMeter) read() (idle, total uint64, ok bool) {
	if m.f == nil {
		return 0, 0, false
	}
	n, _ := m.f.ReadAt(m.buf, 0)
	return parseStat(m.buf[:n])
}

// parseStat reads the first line of /proc/stat: "cpu  user nice system idle iowait irq
// softirq steal guest guest_nice" (guest time is within user already, so not added).
func parseStat(b []byte) (idle, total uint64, ok bool) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0, false
	}
	for i := 1; i < len(f) && i <= 8; i++ {
		v, ok := rawjson.ParseDigits(f[i])
		if !ok {
			return 0, 0, false
		}
		total += v
		if i == 4 || i == 5 {
			idle += v
		}
	}
	return idle, total, true
}
