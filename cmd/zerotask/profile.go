package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// addCPUProfileFlag adds --cpuprofile to a serving command (broker, node, up): a pprof CPU
// profile of the whole run, to find where a deployed process spends its CPU per task.
func addCPUProfileFlag(fs *flagSet) *string {
	return fs.String("cpuprofile", "", "write a pprof CPU profile of the whole run to `file` (complete once the process has stopped gracefully)")
}

// startCPUProfile starts a CPU profile into path ("" = none); stop ends it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
