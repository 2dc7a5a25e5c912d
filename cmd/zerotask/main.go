// Command zerotask is ZeroTask's one binary: a broker, a node, both in one process, client calls
// from the shell, and the end-to-end benchmark.
//
//	zerotask broker [flags]                 bind the ROUTER and PUB sockets and route tasks
//	zerotask node [flags]                   serve add, subtract, echo, sleep and sum for a broker
//	zerotask up [flags]                     a broker and a node in one process
//	zerotask call [flags] METHOD [ARG...]   call a task and print its result as JSON
//	zerotask submit [flags] METHOD [ARG...] queue a task and print its id (--workflow FILE: a graph of tasks)
//	zerotask status [flags] ID              print a task's record
//	zerotask result [flags] ID              print a task's record, waiting for it to finish
//	zerotask revoke [flags] ID...           revoke tasks
//	zerotask stats [flags]                  print the broker's counters
//	zerotask nodes [flags]                  list the connected nodes
//	zerotask pause|resume [flags] QUEUE     pause or resume a queue
//	zerotask purge [flags]                  drop the queued tasks of a queue or a method
//	zerotask bench [flags]                  measure round trips and tasks/s
//	zerotask version                        print the version
//
// Every subcommand takes -h. ARGs are JSON values; a bare word that is not valid JSON is taken as
// a string (`zerotask call echo hello` sends ["hello"]). Flags may come before or after the
// positional arguments; after `--` every word is positional. Client commands print tables on a
// terminal and JSON otherwise (or with --json); every output ends in a newline.
//
// Exit status: 0 success; 1 the task failed (FAILURE, REVOKED, EXPIRED) or a JSON-RPC error
// answered (printed on stderr as its JSON error object); 2 a usage error; 3 an unknown task
// (UNKNOWN); 4 the broker is unreachable or did not answer in time, or no node serves the
// method called.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/zerotask/zerotask/bench"
)

// The build's stamp, set by scripts/release.sh with -ldflags "-X main.version=... -X
// main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// Exit statuses.
// Exit statuses (README.md, "Exit status").
const (
	exitOK      = 0 // success
	exitFailure = 1 // the task failed (FAILURE, REVOKED, EXPIRED), or a JSON-RPC error answered the call
	exitUsage   = 2 // a command line mistake
	exitUnknown = 3 // the broker does not know the task (UNKNOWN)
	exitBroker  = 4 // the broker is unreachable, did not answer in time, or no node serves the method
)

func main() {
	// SIGINT and SIGTERM end ctx: the servers stop gracefully, client commands give up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &stdio{outTTY: bench.IsTerminal(os.Stdout), out: os.Stdout, err: os.Stderr, errFile: os.Stderr})
	stop()
	os.Exit(code)
}

// stdio is where a command writes. errFile is the real stderr when there is one (the progress
// bar is drawn only when it is a terminal); tests leave it nil.
type stdio struct {
	outTTY  bool // stdout is a terminal: client commands print tables unless --json
	out     io.Writer
	err     io.Writer
	errFile *os.File
}

// command is one subcommand: its name, the synopsis of its positional arguments, a one-line
// summary and the function that parses its flags and runs it.
type command struct {
	name    string
	args    string
	summary string
	run     func(ctx context.Context, io *stdio, args []string) error
}

// commands returns the subcommand table, in the order `zerotask help` lists it.
func commands() []command {
	return []command{
		{"broker", "", "run a broker: bind the ROUTER and PUB sockets, queue tasks and hand them to nodes", runBroker},
		{"node", "", "run a node serving add, subtract, echo, sleep and sum for a broker", runNode},
		{"up", "", "run a broker and a node in one process (stops on SIGINT/SIGTERM)", runUp},
		{"call", "METHOD [ARG...]", "call a task, wait for it and print its result as JSON", runCall},
		{"submit", "METHOD [ARG...]", "queue a task (or, with --workflow FILE, a graph of tasks) and print its id at once", runSubmit},
		{"revoke", "ID...", "revoke tasks: queued ones will not run, running ones are cancelled", runRevoke},
		{"stats", "", "print the broker's counters", runStats},
		{"nodes", "", "list the connected nodes and what they serve", runNodes},
		{"pause", "QUEUE", "pause a queue: it keeps accepting, hands nothing out", runPause(true)},
		{"resume", "QUEUE", "hand a paused queue's tasks out again", runPause(false)},
		{"purge", "", "drop the queued tasks of a queue (--queue) or a method (--method)", runPurge},
		{"ls", "", "list tasks by --state, --queue and --method, the archive of failures included", runLs},
		{"requeue", "[ID...]", "run archived failed, expired or revoked tasks again (IDs, or --state/--queue/--method)", runRequeue},
		{"status", "ID", "print a task's record as JSON", runStatus},
		{"schedule", "list|set|remove", "list, set or remove periodic tasks (cron expressions or intervals)", runSchedule},
		{"limit", "list|set", "list or set hand-out limits: rate and running cap per method, queue or key group", runLimit},
		{"events", "", "tail the broker's task state changes as JSON lines (--method, --queue, --state)", runEvents},
		{"top", "", "a live terminal view of the broker's nodes, queues and rates (q to quit)", runTop},
		{"result", "ID", "print a task's record as JSON, waiting up to --wait for it to finish", runResult},
		{"bench", "", "measure sequential round trips, pipelined tasks/s and notifications/s", runBench},
		{"keygen", "BASE", "write a new CURVE key pair: BASE (public) and BASE_secret (mode 0600)", runKeygen},
		{"passwd", "NAME ROLES", "print a --plain-users line: NAME, ROLES and the argon2id hash of the password on stdin", runPasswd},
		{"version", "", "print the version", runVersion},
		{"help", "[COMMAND]", "print this help, or a command's", nil},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usageError is a command line mistake: reported with the command's usage, exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitError carries an exit status for an error the command already reported (e.g. a JSON-RPC
// error object printed on stderr).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run runs the command line args (without the program name) and returns the exit status.
func run(ctx context.Context, args []string, io *stdio) int {
	if len(args) == 0 {
		printUsage(io.err)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			c, ok := lookup(args[1])
			if !ok || c.run == nil {
				fmt.Fprintf(io.err, "zerotask help: unknown command %q\n", args[1])
				return exitUsage
			}
			return run(ctx, []string{c.name, "-h"}, io)
		}
		printUsage(io.out)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	c, ok := lookup(name)
	if !ok || c.run == nil {
		fmt.Fprintf(io.err, "zerotask: unknown command %q\n\n", name)
		printUsage(io.err)
		return exitUsage
	}
	err := c.run(ctx, io, args[1:])
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(io.err, "zerotask %s: %v\n", c.name, ue.msg)
		fmt.Fprintf(io.err, "run 'zerotask %s -h' for usage\n", c.name)
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	case isBrokerTrouble(err):
		fmt.Fprintf(io.err, "zerotask %s: %v\n", c.name, err)
		return exitBroker
	default:
		fmt.Fprintf(io.err, "zerotask %s: %v\n", c.name, err)
		return exitFailure
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "zerotask: a distributed task system (JSON-RPC 2.0 over ZeroMQ)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: zerotask COMMAND [flags] [ARG...]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	cmds := commands()
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name)+1+len(c.args))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name+" "+c.args, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'zerotask COMMAND -h' for a command's flags. Default endpoints: ROUTER "+defaultBroker+", PUB "+defaultPub+".")
}

func runVersion(_ context.Context, io *stdio, args []string) error {
	fs := newFlagSet("version", "", "print the version and the Go toolchain that built it")
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	fmt.Fprintf(io.out, "zerotask %s (%s)\n", version, goVersion())
	if commit != "" || date != "" {
		fmt.Fprintf(io.out, "commit %s, built %s\n", cmp.Or(commit, "unknown"), cmp.Or(date, "unknown"))
	}
	return nil
}
