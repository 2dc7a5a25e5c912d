//go:build linux

package procs

import (
	"bytes"
	"os"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/internal/rawjson"
)

// runqRelist is how many reads of the run-queue meter go by between two listings of the
// process's threads: the Go runtime starts threads rarely once it runs, and a thread that
// ended is noticed at once by its failed read.
const runqRelist = 100

// runqMeter reads how long the process's threads waited on a run queue of the kernel, runnable
// but not running, and how many times they were run, from each thread's
// /proc/self/task/<tid>/schedstat ("<ns on CPU> <ns waiting on a run queue> <runs>"). The
// files are kept open and read again from their start (one pread each; the kernel renders
// them afresh), the threads listed again every runqRelist reads.
type runqMeter struct {
	files map[int]*os.File
	buf   []byte
	reads int
}

func newRunqMeter() *runqMeter {
	m := &runqMeter{files: map[int]*os.File{}, buf: make([]byte, 128)}
	m.list()
	return m
}

// list opens the schedstat file of every thread not open yet.
func (m *runqMeter) list() {
	for _, tid := range threads() {
		if m.files[tid] != nil {
			continue
		}
		if f, err := os.Open("/proc/self/task/" + strconv.Itoa(tid) + "/schedstat"); err == nil {
			m.files[tid] = f
		}
	}
}

// threads lists the thread ids of the process (/proc/self/task; none if it cannot be read).
func threads() []int {
	d, err := os.Open("/proc/self/task")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	tids := make([]int, 0, len(names))
	for _, n := range names {
		if tid, err := strconv.Atoi(n); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}

// read returns the threads' run-queue wait and runs so far (ok false when none could be read).
// A thread that ended takes its counts with it: the sums can go down.
func (m *runqMeter) read() runqSample {
	if m.reads++; m.reads%runqRelist == 0 {
		m.list()
	}
	var s runqSample
	for tid, f := range m.files {
		n, _ := f.ReadAt(m.buf, 0)
		wait, runs, ok := parseSchedstat(m.buf[:n])
		if !ok {
			f.Close()
			delete(m.files, tid)
			continue
		}
		s.wait += wait
		s.runs += runs
		s.ok = true
	}
	return s
}

// close closes the files.
func (m *runqMeter) close() {
	for tid, f := range m.files {
		f.Close()
		delete(m.files, tid)
	}
}

// parseSchedstat reads "<ns on CPU> <ns waiting on a run queue> <runs>\n" (without
// bytes.Fields: no slice per read, eight threads a hundred times a second).
func parseSchedstat(b []byte) (wait time.Duration, runs int64, ok bool) {
	b = bytes.TrimRight(b, "\n")
	var v [3]uint64
	for i := range v {
		field, rest, found := bytes.Cut(b, []byte{' '})
		n, ok := rawjson.ParseDigits(field)
		if !ok || n > 1<<62 || found != (i < len(v)-1) {
			return 0, 0, false
		}
		v[i], b = n, rest
	}
	return time.Duration(v[1]), int64(v[2]), true
}
