package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// nodeEntry is one node of a broker.nodes answer.
type nodeEntry struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Methods     []string `json:"methods"`
	Queues      []string `json:"queues"`
	Concurrency int      `json:"concurrency"`
	Credit      int      `json:"credit"`
	Running     int      `json:"running"`
}

// taskRecord is a task record as broker.status, broker.result and broker.revoke answer it.
type taskRecord struct {
	ID       string          `json:"id"`
	Method   string          `json:"method"`
	State    string          `json:"state"`
	Attempts int             `json:"attempts"`
	Node     string          `json:"node"`
	Result   json.RawMessage `json:"result"`
	Error    *codec.Error    `json:"error"`
	Progress json.RawMessage `json:"progress"`
}

// progressText shows a running task's last progress report in a table: "progress 7/10 (70%)
// NOTE" for a dispatch.Progress report, "progress JSON" for any other value.
func progressText(raw json.RawMessage) string {
	var p struct {
		Done  *int64 `json:"done"`
		Total *int64 `json:"total"`
		Note  string `json:"note"`
	}
	if json.Unmarshal(raw, &p) != nil || p.Done == nil || p.Total == nil {
		return "progress " + string(raw)
	}
	s := fmt.Sprintf("progress %d/%d", *p.Done, *p.Total)
	if *p.Total > 0 {
		s += fmt.Sprintf(" (%d%%)", *p.Done*100 / *p.Total)
	}
	if p.Note != "" {
		s += " " + p.Note
	}
	return s
}

// recordsFor says what a record's state means for a command's exit status.
type recordsFor int

const (
	forStatus recordsFor = iota // the state as it is: failed 1, unknown 3
	forResult                   // as forStatus, and not finished yet 4
	forRevoke                   // unknown 3; revoked or already finished 0
)

// exitFor returns the exit status a record's state gives a command.
func (k recordsFor) exitFor(state string) int {
	switch state {
	case protocol.StateUnknown:
		return exitUnknown
	case protocol.StateFailure, protocol.StateRevoked, protocol.StateExpired:
		if k != forRevoke {
			return exitFailure
		}
	case protocol.StateSuccess:
	default: // QUEUED, RUNNING, RETRY
		if k == forResult {
			return exitBroker
		}
	}
	return exitOK
}

// printRecords prints task records, as JSON (one per line) or as a table, and returns the
// exit status their states give (the most severe: unknown, then not finished, then failed).
func printRecords(io *stdio, cf *clientFlags, raws [][]byte, k recordsFor) error {
	code := exitOK
	recs := make([]taskRecord, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &recs[i]); err != nil {
			return fmt.Errorf("unexpected task record %s: %w", raw, err)
		}
		code = worse(code, k.exitFor(recs[i].State))
	}
	if cf.tables(io) {
		tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tMETHOD\tATTEMPTS\tNODE\tRESULT")
		for _, r := range recs {
			out := string(r.Result)
			if r.Error != nil {
				out = string(errorJSON(r.Error))
			} else if len(r.Progress) > 0 && out == "" {
				out = progressText(r.Progress)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.State, r.Method, r.Attempts, dash(r.Node), dash(out))
		}
		_ = tw.Flush()
	} else {
		for _, raw := range raws {
			printJSON(io, raw)
		}
	}
	if code != exitOK {
		return &exitError{code: code}
	}
	return nil
}

// worse returns the more severe of two exit statuses: unknown task, then broker trouble (not
// finished), then failure.
func worse(a, b int) int {
	rank := func(c int) int {
		switch c {
		case exitUnknown:
			return 3
		case exitBroker:
			return 2
		case exitFailure:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// dash returns s, or "-" for an empty s (an empty table cell).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runRevoke(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("revoke", "ID...", "Revoke tasks: a queued one will not run, a running one has its context cancelled on\n"+
		"its node. Prints each task's record after the revoke. Exit status 3 when an ID is UNKNOWN.")
	if err := parse(fs, io, args, 1, -1); err != nil {
		return err
	}
	ctx, c, hangUp, err := cf.connect(ctx, io, fs, 0)
	if err != nil {
		return err
	}
	defer hangUp()
	raws := make([][]byte, 0, fs.NArg())
	for _, id := range fs.Args() {
		req := codec.AppendString([]byte(`{"`+protocol.ParamID+`":`), id)
		res, err := callRaw(ctx, io, c, protocol.MethodRevoke, append(req, '}'))
		if err != nil {
			return err
		}
		raws = append(raws, res)
	}
	return printRecords(io, cf, raws, forRevoke)
}

func runStats(ctx context.Context, io *stdio, args []string) error {
	return showCall(ctx, io, args, "stats", "Print the broker's counters (broker.stats; docs/protocol.md says what each counts).",
		protocol.MethodStats, func(io *stdio, m map[string]json.RawMessage) error {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\n", k, m[k])
			}
			return tw.Flush()
		})
}

func runNodes(ctx context.Context, io *stdio, args []string) error {
	return showCall(ctx, io, args, "nodes", "List the connected nodes: their methods, queues, concurrency, credit and running tasks.",
		protocol.MethodNodes, func(io *stdio, nodes []nodeEntry) error {
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tCONCURRENCY\tCREDIT\tRUNNING\tQUEUES\tMETHODS")
			for _, n := range nodes {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", dash(n.Name), n.ID, n.Concurrency, n.Credit, n.Running,
					dash(strings.Join(n.Queues, ",")), dash(strings.Join(n.Methods, ",")))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(io.out, strconv.Itoa(len(nodes))+" node(s)")
			return nil
		})
}

// showCall is a command that takes no arguments, makes one call of method without params and
// prints its answer: as JSON, or on a terminal (no --json) decoded into T and shown by table.
func showCall[T any](ctx context.Context, io *stdio, args []string, name, summary, method string, table func(*stdio, T) error) error {
	fs, cf := newClientCommand(name, "", summary)
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	res, err := callOnce(ctx, io, fs, cf, method, nil)
	if err != nil {
		return err
	}
	if !cf.tables(io) {
		printJSON(io, res)
		return nil
	}
	var v T
	if err := json.Unmarshal(res, &v); err != nil {
		return fmt.Errorf("unexpected %s answer %s: %w", method, res, err)
	}
	return table(io, v)
}

// runPause is `zerotask pause Q` (pause true) and `zerotask resume Q`.
func runPause(pause bool) func(ctx context.Context, io *stdio, args []string) error {
	name, method, summary := "resume", protocol.MethodResume, "Hand the tasks of a paused queue out again."
	if pause {
		name, method, summary = "pause", protocol.MethodPause, "Pause a queue (\"default\" for the default one): it keeps accepting tasks, none is\n"+
			"handed to a node until `zerotask resume`."
	}
	return func(ctx context.Context, io *stdio, args []string) error {
		fs, cf := newClientCommand(name, "QUEUE", summary)
		if err := parse(fs, io, args, 1, 1); err != nil {
			return err
		}
		res, err := callOnce(ctx, io, fs, cf, method, stringParam(protocol.ParamQueue, fs.Arg(0)))
		if err != nil {
			return err
		}
		if cf.tables(io) {
			state := "running"
			if pause {
				state = "paused"
			}
			fmt.Fprintf(io.out, "queue %s %s\n", fs.Arg(0), state)
			return nil
		}
		printJSON(io, res)
		return nil
	}
}

func runPurge(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("purge", "", "Drop the tasks waiting in a queue, of a method, or of a method in a queue; prints how\n"+
		"many. They end REVOKED; delayed tasks and tasks at nodes are not touched. With --archived,\n"+
		"forget the archived tasks of the queue or method instead.")
	queue := fs.String("queue", "", "the `queue` to purge (\"default\" for the default one)")
	method := fs.String("method", "", "the `method` whose queued tasks to drop")
	archived := fs.Bool("archived", false, "forget the archived tasks (FAILURE, EXPIRED, REVOKED) of the queue or method instead")
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	if *queue == "" && *method == "" {
		return usagef("purge needs --queue, --method, or both")
	}
	ctx, c, hangUp, err := cf.connect(ctx, io, fs, 0)
	if err != nil {
		return err
	}
	defer hangUp()
	purge := c.Purge
	if *archived {
		purge = c.PurgeArchived
	}
	n, err := purge(ctx, *queue, *method)
	if err != nil {
		return classify(io, err)
	}
	if cf.tables(io) {
		fmt.Fprintf(io.out, "%d task(s) purged\n", n)
		return nil
	}
	fmt.Fprintf(io.out, "{%q:%d}\n", protocol.MemberPurged, n)
	return nil
}
