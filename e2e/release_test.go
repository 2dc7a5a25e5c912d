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

// TestReleaseScript runs scripts/release.sh for this machine's Linux platform (TARGETS; the six
// platforms take minutes) and checks what it wrote: a statically linked binary (no program
// interpreter, no dynamic section: what `file` calls "statically linked"), SHA256SUMS that
// match it, and `zerotask version` printing the stamped version, commit and date.
func TestReleaseScript(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the release script's Linux build is checked on Linux")
	}
	dir := t.TempDir()
	const version = "v0.0.0-e2e"
	target := "linux/" + runtime.GOARCH
	cmd := exec.Command("sh", "../scripts/release.sh", dir)
	cmd.Env = append(os.Environ(), "VERSION="+version, "TARGETS="+target)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	name := "zerotask-" + version + "-linux-" + runtime.GOARCH
	bin := filepath.Join(dir, name)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not statically linked", name, p.Type)
		}
	}
	f.Close()
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; string(sums) != want {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", sums, want)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		head = []byte("unknown") // not a git checkout: release.sh says so
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "zerotask "+version+" (go") || !strings.Contains(lines[0], "linux/"+runtime.GOARCH) ||
		!strings.HasPrefix(lines[1], "commit "+strings.TrimSpace(string(head))+", built 20") {
		t.Errorf("zerotask version printed %q (HEAD %s)", out, head)
	}
}
