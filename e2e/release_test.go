package e2e

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReleaseScript runs scripts/release.sh for the Linux platform of this machine's
// architecture, and for this machine's own platform when that is another (TARGETS; the six
// platforms take minutes), and checks what it wrote: a statically linked Linux binary (no
// program interpreter, no dynamic section: what `file` calls "statically linked"; read with
// debug/elf on any host), SHA256SUMS that match every binary, and `zerotask version` of this
// machine's binary printing the stamped version, commit and date.
func TestReleaseScript(t *testing.T) {
	dir := t.TempDir()
	const version = "v0.0.0-e2e"
	binName := func(goos string) string {
		name := "zerotask-" + version + "-" + goos + "-" + runtime.GOARCH
		if goos == "windows" {
			name += ".exe"
		}
		return name
	}
	targets := []string{"linux/" + runtime.GOARCH}
	names := []string{binName("linux")}
	if runtime.GOOS != "linux" {
		targets = append(targets, runtime.GOOS+"/"+runtime.GOARCH)
		names = append(names, binName(runtime.GOOS))
	}
	cmd := exec.Command("sh", "../scripts/release.sh", dir)
	cmd.Env = append(os.Environ(), "VERSION="+version, "TARGETS="+strings.Join(targets, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	f, err := elf.Open(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not statically linked", names[0], p.Type)
		}
	}
	f.Close()
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, name := range names { // each binary has its line
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		want.WriteString(hex.EncodeToString(sum[:]) + "  " + name + "\n")
	}
	if got := strings.Split(strings.TrimSpace(string(sums)), "\n"); len(got) != len(names) {
		t.Errorf("SHA256SUMS has %d lines, want %d:\n%s", len(got), len(names), sums)
	}
	for _, line := range strings.SplitAfter(want.String(), "\n") {
		if line != "" && !strings.Contains(string(sums), line) {
			t.Errorf("SHA256SUMS:\n%s\nlacks:\n%s", sums, line)
		}
	}
	own := names[len(names)-1]
	out, err := exec.Command(filepath.Join(dir, own), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		head = []byte("unknown") // not a git checkout: release.sh says so
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "zerotask "+version+" (go") || !strings.Contains(lines[0], runtime.GOOS+"/"+runtime.GOARCH) ||
		!strings.HasPrefix(lines[1], "commit "+strings.TrimSpace(string(head))+", built 20") {
		t.Errorf("zerotask version printed %q (HEAD %s)", out, head)
	}
}
