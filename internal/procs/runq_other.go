//go:build !linux

package procs

// runqMeter has nothing to read here: without the run-queue wait no process keeps to one CPU.
type runqMeter struct{}

func newRunqMeter() *runqMeter { return &runqMeter{} }

func (m *runqMeter) read() runqSample { return runqSample{} }

func (m *runqMeter) close() {}
