//go:build !linux

package procs

// affinity is not set here: a process on one P keeps all its CPUs.
type affinity struct{ ok bool }

func newAffinity() *affinity { return &affinity{} }

func (a *affinity) apply(bool) {}

func (a *affinity) withAll(f func() error) error { return f() }
