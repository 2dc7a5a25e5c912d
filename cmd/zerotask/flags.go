package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/zerotask/zerotask/protocol"
)

// Default endpoints (docs/protocol.md). ZEROTASK_BROKER overrides the ROUTER endpoint that the
// client commands and `zerotask node` connect to.
const (
	defaultBroker = protocol.DefaultEndpoint
	defaultPub    = protocol.DefaultPubEndpoint
)

// errHelp reports that -h was given and the usage printed: exit status 0.
var errHelp = errors.New("help requested")

// flagSet is a flag.FlagSet with the synopsis and summary its usage prints.
type flagSet struct {
	*flag.FlagSet
	synopsis string
	summary  string
	logLevel *slog.Level // nil for commands that do not log
	config   *string     // --config (config.go)
}

// newFlagSet returns an empty flag set for command name. Parse errors are reported by parse, not
// by the flag package, so its output is discarded.
func newFlagSet(name, args, summary string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	syn := "zerotask " + name + " [flags]"
	if args != "" {
		syn += " " + args
	}
	f := &flagSet{FlagSet: fs, synopsis: syn, summary: summary}
	f.addConfigFlag()
	return f
}

// withLogLevel adds --log-level with the given default to fs.
func (fs *flagSet) withLogLevel(def slog.Level) *flagSet {
	lvl := def
	fs.logLevel = &lvl
	fs.TextVar(fs.logLevel, "log-level", def, "`level` of the logs written to stderr: debug, info, warn or error")
	return fs
}

// logger returns the slog logger that writes to w at the parsed --log-level (discarding
// everything for commands without the flag).
func (fs *flagSet) logger(w io.Writer) *slog.Logger {
	if fs.logLevel == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: *fs.logLevel}))
}

// printUsage writes the command's synopsis, summary and every flag with its default.
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", fs.synopsis, fs.summary)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags (each also from the environment variables named, and from --config):")
		fs.VisitAll(func(f *flag.Flag) { f.Usage = envUsage(fs.Name(), f) })
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parse parses args into fs and checks that between minArgs and maxArgs positional arguments
// remain (maxArgs < 0: no upper bound). Flags may come anywhere on the line, before and after
// the positional arguments (see interleave). -h prints the usage on stdout and returns errHelp.
func parse(fs *flagSet, io *stdio, args []string, minArgs, maxArgs int) error {
	err := fs.Parse(interleave(fs.FlagSet, args))
	if errors.Is(err, flag.ErrHelp) {
		fs.printUsage(io.out)
		return errHelp
	}
	if err != nil {
		return usagef("%v", err)
	}
	if err := fs.applyEnvAndFile(os.LookupEnv); err != nil {
		return err
	}
	n := fs.NArg()
	switch {
	case n < minArgs:
		return usagef("missing arguments: %s", fs.synopsis)
	case maxArgs >= 0 && n > maxArgs:
		return usagef("unexpected arguments %q: %s", fs.Args()[maxArgs:], fs.synopsis)
	}
	return nil
}

// interleave reorders args so that the flag package, which stops at the first positional
// argument, sees every flag: the flags (each with its value when it takes one) first, then
// "--", then the positional arguments in their order. "--" on the line ends the flags: what
// follows is positional even if it starts with a dash. A negative number ("-5", "-1.5e3") is a
// positional argument, not a flag. An unknown flag stays among the flags, for Parse to report.
func interleave(fs *flag.FlagSet, args []string) []string {
	flags := make([]string, 0, len(args)+1)
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case len(a) < 2 || a[0] != '-' || isNumber(a):
			pos = append(pos, a)
		default:
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			f := fs.Lookup(name)
			if f == nil {
				continue
			}
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			if i+1 == len(args) { // no value: Parse reports it, with nothing to mistake for one
				return flags
			}
			i++ // the flag's value, whatever it looks like
			flags = append(flags, args[i])
		}
	}
	return append(append(flags, "--"), pos...)
}

// isNumber reports whether s is a JSON number.
func isNumber(s string) bool {
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil
}

// brokerFlag adds --broker (the ROUTER endpoint to connect to) to fs.
func brokerFlag(fs *flagSet) *string {
	def := defaultBroker
	if v := os.Getenv("ZEROTASK_BROKER"); v != "" {
		def = v
	}
	return fs.String("broker", def, "broker ROUTER endpoint to connect to; a comma-separated list connects to several brokers (sharing one Redis store) at once ($ZEROTASK_BROKER overrides the default)")
}

// argValue turns one command-line argument into a JSON value: valid JSON is kept (compacted),
// anything else is taken as a string. So `5` is a number, `true` a boolean, `{"a":1}` an object,
// `hello` and `5x` strings, and `'"5"'` the string "5".
func argValue(arg string) json.RawMessage {
	if json.Valid([]byte(arg)) {
		var b bytes.Buffer
		if json.Compact(&b, []byte(arg)) == nil {
			return b.Bytes()
		}
	}
	s, _ := json.Marshal(arg) // a string always marshals
	return s
}

// paramsOf returns the JSON-RPC params for the positional ARGs: a JSON array of their values, or
// nil (params omitted) when there are none. raw, when set (--params), is used instead: it must be
// a JSON array or object, and no ARGs may be given alongside it.
func paramsOf(args []string, raw string) ([]byte, error) {
	if raw != "" {
		if len(args) > 0 {
			return nil, usagef("--params and positional ARGs are exclusive")
		}
		raw = strings.TrimSpace(raw)
		if raw == "" || !json.Valid([]byte(raw)) || (raw[0] != '[' && raw[0] != '{') {
			return nil, usagef("--params must be a JSON array or object, got %q", raw)
		}
		var b bytes.Buffer
		_ = json.Compact(&b, []byte(raw))
		return b.Bytes(), nil
	}
	if len(args) == 0 {
		return nil, nil
	}
	b := []byte{'['}
	for i, a := range args {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, argValue(a)...)
	}
	return append(b, ']'), nil
}

// goVersion returns the toolchain that built the binary and, when known, its module version.
func goVersion() string {
	v := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version + ", " + v
	}
	return v
}

// set reports whether flag name was given on the command line.
func (fs *flagSet) set(name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// subcommand is one word of a command that has several (zerotask schedule list).
type subcommand struct {
	name string
	run  func(ctx context.Context, io *stdio, args []string) error
}

// runSubcommand runs the subcommand of cmd that args[0] names with the rest of args; with no
// word or -h it prints the usage line (and without a word fails as a usage error).
func runSubcommand(ctx context.Context, io *stdio, args []string, cmd, usage string, subs ...subcommand) error {
	sub := ""
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		if s.name == sub {
			return s.run(ctx, io, args)
		}
		names[i] = s.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	switch sub {
	case "", "-h", "-help", "--help":
		fmt.Fprintln(io.out, "usage: zerotask "+cmd+" "+usage)
		if sub == "" {
			return usagef("%s needs %s", cmd, want)
		}
		return nil
	}
	return usagef("%s %q: want %s", cmd, sub, want)
}
