package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/protocol"
)

// listed is the part of a broker.list record the table shows.
type listed struct {
	ID       string          `json:"id"`
	Method   string          `json:"method"`
	Queue    string          `json:"queue"`
	State    string          `json:"state"`
	Attempts int             `json:"attempts"`
	Node     string          `json:"node"`
	Error    json.RawMessage `json:"error"`
	Params   json.RawMessage `json:"params"`
}

func runLs(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("ls", "", "List tasks the broker knows: queued, running and retrying ones, finished ones still in its\n"+
		"result store (SUCCESS), and the archive of final failures (FAILURE, EXPIRED, REVOKED)\n"+
		"with their params and every attempt's error (--json prints each record whole).\n"+
		"Prints at most --limit tasks; when more match, says on stderr how to go on (--cursor).")
	state := fs.String("state", "", "only tasks in this `state` (QUEUED, RUNNING, RETRY, SUCCESS, FAILURE, REVOKED, EXPIRED)")
	queue := fs.String("queue", "", "only tasks of this `queue` (\"default\" for the default one)")
	method := fs.String("method", "", "only tasks of this `method`")
	limit := fs.Int("limit", protocol.DefaultListLimit, "print at most `N` tasks")
	newest := fs.Bool("newest", false, "newest first (default oldest first)")
	cursor := fs.String("cursor", "", "start where an earlier listing stopped (the `cursor` it printed)")
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 {
		return usagef("--limit must be at least 1")
	}
	ctx, c, hangUp, err := cf.connect(ctx, io, fs, 0)
	if err != nil {
		return err
	}
	defer hangUp()
	o := client.ListOptions{State: client.State(*state), Queue: *queue, Method: *method, Newest: *newest, Cursor: *cursor}
	var raws [][]byte
	for len(raws) < *limit {
		o.Limit = min(*limit-len(raws), protocol.MaxListLimit)
		pg, err := c.List(ctx, o)
		if err != nil {
			return classify(io, err)
		}
		raws = append(raws, pg.Raw...)
		o.Cursor = pg.Cursor
		if o.Cursor == "" {
			break
		}
	}
	if cf.tables(io) {
		tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tMETHOD\tQUEUE\tATTEMPTS\tNODE\tPARAMS\tERROR")
		for _, raw := range raws {
			var r listed
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("unexpected task record %s: %w", raw, err)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.State, r.Method, dash(r.Queue), r.Attempts,
				dash(r.Node), dash(clipCell(string(r.Params))), dash(clipCell(string(r.Error))))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(io.out, "%d task(s)\n", len(raws))
	} else {
		for _, raw := range raws {
			printJSON(io, raw)
		}
	}
	if o.Cursor != "" {
		fmt.Fprintf(io.err, "more tasks may match: add --cursor %s\n", o.Cursor)
	}
	return nil
}

// clipCell shortens a table cell to 60 characters.
func clipCell(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func runRequeue(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("requeue", "[ID...]", "Run archived tasks (FAILURE, EXPIRED, REVOKED) again under their ids, with their params\n"+
		"and options, as new attempts: the given IDs, or every archived task matching --state,\n"+
		"--queue and --method. Prints how many. Exit status 3 when an ID is not in the archive.")
	state := fs.String("state", "", "requeue the archived tasks in this `state` (FAILURE, EXPIRED or REVOKED)")
	queue := fs.String("queue", "", "requeue the archived tasks of this `queue`")
	method := fs.String("method", "", "requeue the archived tasks of this `method`")
	if err := parse(fs, io, args, 0, -1); err != nil {
		return err
	}
	filter := *state != "" || *queue != "" || *method != ""
	switch {
	case fs.NArg() == 0 && !filter:
		return usagef("requeue needs IDs, or --state, --queue or --method")
	case fs.NArg() > 0 && filter:
		return usagef("requeue takes IDs or a filter (--state, --queue, --method), not both")
	case fs.NArg() > protocol.MaxListLimit:
		return usagef("at most %d IDs at once", protocol.MaxListLimit)
	}
	ctx, c, hangUp, err := cf.connect(ctx, io, fs, 0)
	if err != nil {
		return err
	}
	defer hangUp()
	n := 0
	if filter {
		o := client.ListOptions{State: client.State(*state), Queue: *queue, Method: *method}
		for {
			k, cur, err := c.RequeueMatching(ctx, o)
			if err != nil {
				return classify(io, err)
			}
			n += k
			if cur == "" {
				break
			}
			o.Cursor = cur
		}
	} else if n, err = c.Requeue(ctx, fs.Args()...); err != nil {
		return classify(io, err)
	}
	if cf.tables(io) {
		fmt.Fprintf(io.out, "%d task(s) requeued\n", n)
	} else {
		fmt.Fprintf(io.out, "{%q:%d}\n", protocol.MemberRequeued, n)
	}
	if !filter && n < fs.NArg() {
		fmt.Fprintf(io.err, "%d of %d task(s) were not in the archive\n", fs.NArg()-n, fs.NArg())
		return &exitError{code: exitUnknown}
	}
	return nil
}
