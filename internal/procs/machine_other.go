//go:build !linux

package procs

// machineMeter has nothing to read here: the machine's idle CPU is not known, and raises are
// not gated on it.
type machineMeter struct{}

func newMachineMeter() *machineMeter { return &machineMeter{} }

func (m *machineMeter) read() (idle, total uint64, ok bool) { return 0, 0, false }
