package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigPrecedence: a flag's value comes from the command line, else
// ZEROTASK_<COMMAND>_<FLAG>, else ZEROTASK_<FLAG>, else the config file's [command] table, else
// its top level, else the default; the config file comes from --config or $ZEROTASK_CONFIG.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "zerotask.toml")
	if err := os.WriteFile(file, []byte(`
# top level: every command that has the flag
limit = 7
timeout = "3s"
queue = "top"
method = "top"
state = "QUEUED"

[ls]
queue = "table"
method = "table"
newest = true

[broker]
max-queued = 5
`), 0o600); err != nil {
		t.Fatal(err)
	}
	type vals struct {
		limit   int
		timeout time.Duration
		queue   string
		method  string
		state   string
		newest  bool
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want vals
	}{
		{"defaults", nil, nil, vals{100, 10 * time.Second, "", "", "", false}},
		{"file by flag", []string{"--config", file}, nil, vals{7, 3 * time.Second, "table", "table", "QUEUED", true}},
		{"file by env", nil, map[string]string{"ZEROTASK_CONFIG": file}, vals{7, 3 * time.Second, "table", "table", "QUEUED", true}},
		{"env over file", []string{"--config", file}, map[string]string{"ZEROTASK_QUEUE": "env", "ZEROTASK_LIMIT": "9"}, vals{9, 3 * time.Second, "env", "table", "QUEUED", true}},
		{"scoped env over env", nil, map[string]string{"ZEROTASK_QUEUE": "env", "ZEROTASK_LS_QUEUE": "scoped"}, vals{100, 10 * time.Second, "scoped", "", "", false}},
		{"flag over all", []string{"--config", file, "--queue", "flag", "--limit", "1", "--newest=false"},
			map[string]string{"ZEROTASK_QUEUE": "env", "ZEROTASK_LS_QUEUE": "scoped", "ZEROTASK_LIMIT": "9"}, vals{1, 3 * time.Second, "flag", "table", "QUEUED", false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("ls", "", "")
			cf := addClientFlags(fs, 10*time.Second)
			state := fs.String("state", "", "")
			queue := fs.String("queue", "", "")
			method := fs.String("method", "", "")
			limit := fs.Int("limit", 100, "")
			newest := fs.Bool("newest", false, "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			if err := fs.applyEnvAndFile(lookup); err != nil {
				t.Fatal(err)
			}
			got := vals{*limit, *cf.timeout, *queue, *method, *state, *newest}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestConfigErrors: a value a flag refuses, from the environment or the file, and a key of the
// command's table that is no flag, are usage errors naming where they came from.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"bad env value", "", map[string]string{"ZEROTASK_LIMIT": "many"}, "$ZEROTASK_LIMIT"},
		{"bad file value", write("a.toml", "limit = \"many\"\n"), nil, "limit"},
		{"unknown key in the table", write("b.toml", "[ls]\nlimmit = 3\n"), nil, "has no such flag"},
		{"not toml", write("c.toml", "limit = = 3\n"), nil, "c.toml"},
		{"a table value", write("d.toml", "limit = {a = 1}\n"), nil, ""},
		{"missing file", filepath.Join(dir, "none.toml"), nil, "none.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("ls", "", "")
			fs.Int("limit", 100, "")
			args := []string{}
			if tc.file != "" {
				args = append(args, "--config", tc.file)
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			err := fs.applyEnvAndFile(lookup)
			if tc.name == "a table value" {
				// A table at the top level is another command's: ignored.
				if err != nil {
					t.Fatalf("a table named limit: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("%v is not a usage error (exit %d)", err, exitUsage)
			}
		})
	}
}

// FuzzParseConfig: any text gives flag values or an error, never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add("limit = 7\n[ls]\nqueue = \"a\"\n")
	f.Add("queues = [\"a\", \"b\"]\n[broker]\nmax-queued = 5\nheartbeat = \"1s\"\n")
	f.Add("x = 1979-05-27T07:32:00Z\n[ls]\nnewest = true\n")
	f.Fuzz(func(t *testing.T, text string) {
		fs := newFlagSet("ls", "", "")
		fs.Int("limit", 100, "")
		fs.String("queue", "", "")
		fs.Bool("newest", false, "")
		_, _ = parseConfig(text, "fuzz.toml", "ls", fs.FlagSet)
	})
}
