package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// asBinary, set in a child's environment, makes the test binary run as zerotask itself (main),
// so that `zerotask bench` can start broker and node processes from it (os.Executable).
const asBinary = "ZEROTASK_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(asBinary) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// runArgs runs the command line in-process and returns the exit status, stdout and stderr.
func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &stdio{out: &out, err: &errb})
	return code, out.String(), errb.String()
}

// runTTY is runArgs with stdout taken for a terminal (tables instead of JSON).
func runTTY(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &stdio{outTTY: true, out: &out, err: &errb})
	return code, out.String(), errb.String()
}

// TestInterleave: flags anywhere on the line, their values kept with them, "--" ending the
// flags, negative numbers taken as arguments.
func TestInterleave(t *testing.T) {
	fs := newFlagSet("t", "", "")
	fs.Duration("timeout", 0, "")
	fs.Bool("json", false, "")
	fs.String("queue", "", "")
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"add", "5", "6"}, "-- add 5 6"},
		{[]string{"add", "5", "6", "--timeout", "1s"}, "--timeout 1s -- add 5 6"},
		{[]string{"--timeout", "1s", "add", "5", "--json", "6"}, "--timeout 1s --json -- add 5 6"},
		{[]string{"add", "--queue=q", "-5", "-1.5e3"}, "--queue=q -- add -5 -1.5e3"},
		{[]string{"echo", "--", "--timeout", "-x"}, "-- echo --timeout -x"},
		{[]string{"echo", "--queue", "--", "x"}, "--queue -- -- echo x"},
		{[]string{"echo", "--nope", "x"}, "--nope -- echo x"},
		{[]string{"echo", "--timeout"}, "--timeout"},
		{[]string{"echo", "-"}, "-- echo -"},
	}
	for _, tc := range tests {
		if got := strings.Join(interleave(fs.FlagSet, tc.in), " "); got != tc.want {
			t.Errorf("interleave(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestArgValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"5", "5"},
		{"-3.5", "-3.5"},
		{"1e3", "1e3"},
		{"true", "true"},
		{"null", "null"},
		{`"5"`, `"5"`},
		{"hello", `"hello"`},
		{"5x", `"5x"`},
		{"", `""`},
		{`{"a": 1, "b": [1, 2]}`, `{"a":1,"b":[1,2]}`},
		{"[1, 2]", "[1,2]"},
		{`say "hi"`, `"say \"hi\""`},
		{"héllo", `"héllo"`},
		{"{not json", `"{not json"`},
	}
	for _, tc := range tests {
		if got := string(argValue(tc.in)); got != tc.want {
			t.Errorf("argValue(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParamsOf(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		raw     string
		want    string
		wantErr bool
	}{
		{"no args omits params", nil, "", "", false},
		{"numbers", []string{"5", "6"}, "", "[5,6]", false},
		{"mixed", []string{"x", "1", `{"k":true}`}, "", `["x",1,{"k":true}]`, false},
		{"raw object", nil, `{ "a": 5, "b": 6 }`, `{"a":5,"b":6}`, false},
		{"raw array", nil, `[1, 2]`, `[1,2]`, false},
		{"raw scalar is refused", nil, `5`, "", true},
		{"raw invalid", nil, `{"a":`, "", true},
		{"raw blank", nil, "  \t", "", true},
		{"raw and args", []string{"1"}, `[1]`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := paramsOf(tc.args, tc.raw)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if string(got) != tc.want {
				t.Fatalf("params = %q, want %q", got, tc.want)
			}
			if tc.want == "" && got != nil {
				t.Fatalf("params = %q, want nil (omitted)", got)
			}
		})
	}
}

// TestHelp checks that every command answers -h on stdout with exit status 0, with its synopsis
// and every flag documented.
func TestHelp(t *testing.T) {
	for _, c := range commands() {
		if c.run == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runArgs(t, c.name, "-h")
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !strings.HasPrefix(out, "usage: zerotask "+c.name) {
				t.Fatalf("help does not start with the synopsis:\n%s", out)
			}
			// Every flag line ("  -name type") is followed by its description.
			lines := strings.Split(out, "\n")
			for i, l := range lines {
				if strings.HasPrefix(l, "  -") && !strings.Contains(l, "\t") {
					if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) == "" {
						t.Errorf("flag %q has no description", l)
					}
				}
			}
			code2, out2, _ := runArgs(t, "help", c.name)
			if code2 != exitOK || out2 != out {
				t.Errorf("`zerotask help %s` differs from `-h` (exit %d)", c.name, code2)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"no command", nil, exitUsage, "usage: zerotask COMMAND"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"unknown flag", []string{"call", "--nope", "add"}, exitUsage, "flag provided but not defined: -nope"},
		{"call without method", []string{"call"}, exitUsage, "missing arguments"},
		{"status without id", []string{"status"}, exitUsage, "missing arguments"},
		{"status with two ids", []string{"status", "a", "b"}, exitUsage, "unexpected arguments"},
		{"result negative wait", []string{"result", "--wait", "-1s", "x"}, exitUsage, "--wait must not be negative"},
		{"call bad params", []string{"call", "--params", "5", "add"}, exitUsage, "--params must be a JSON array or object"},
		{"call zero timeout", []string{"call", "--timeout", "0s", "add"}, exitUsage, "--timeout must be positive"},
		{"broker extra args", []string{"broker", "x"}, exitUsage, "unexpected arguments"},
		{"broker bad limit", []string{"broker", "--max-queued", "0"}, exitUsage, "--max-queued must be positive"},
		{"broker bad per-address limit", []string{"broker", "--max-conns-per-addr", "0"}, exitUsage, "--max-conns-per-addr must be positive or -1"},
		{"bench endless", []string{"bench", "--duration", "0"}, exitUsage, "--duration 0 needs --tasks"},
		{"bench bad concurrency", []string{"bench", "--concurrency", "0"}, exitUsage, "--concurrency must be positive"},
		{"bad log level", []string{"node", "--log-level", "loud"}, exitUsage, "log-level"},
		{"help unknown", []string{"help", "nope"}, exitUsage, `unknown command "nope"`},
		{"unknown flag after the args", []string{"call", "add", "1", "--nope"}, exitUsage, "flag provided but not defined: -nope"},
		{"flag without its value", []string{"call", "add", "1", "--timeout"}, exitUsage, "flag needs an argument"},
		{"bad eta", []string{"submit", "add", "--eta", "tomorrow"}, exitUsage, "--eta must be an RFC 3339 time"},
		{"options on a broker method", []string{"call", "broker.ping", "--queue", "q"}, exitUsage, "task options apply to task methods"},
		{"revoke without id", []string{"revoke"}, exitUsage, "missing arguments"},
		{"stats with args", []string{"stats", "x"}, exitUsage, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runArgs(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, tc.code, tc.wantErr)
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runArgs(t, args...)
		if code != exitOK || !strings.HasPrefix(out, "zerotask dev (go") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
	// The stamp of scripts/release.sh.
	version, commit, date = "v1.2.3", "0123abc", "2026-12-07T05:00:00Z"
	code, out, _ := runArgs(t, "version")
	version, commit, date = "dev", "", ""
	if code != exitOK || !strings.HasPrefix(out, "zerotask v1.2.3 (go") || !strings.HasSuffix(out, "\ncommit 0123abc, built 2026-12-07T05:00:00Z\n") {
		t.Errorf("stamped version: exit %d, stdout %q", code, out)
	}
	code, out, _ = runArgs(t, "help")
	if code != exitOK {
		t.Fatalf("help: exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("help does not list %s:\n%s", c.name, out)
		}
	}
}
