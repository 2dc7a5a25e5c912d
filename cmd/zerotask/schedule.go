package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // cron schedules name IANA zones; the binary carries them, whatever the host has

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/protocol"
)

// planFlags are the broker's --schedules and --limits: JSON files read at start.
type planFlags struct {
	schedules, limits *string
}

func addPlanFlags(fs *flagSet) *planFlags {
	return &planFlags{
		schedules: fs.String("schedules", "", "periodic tasks to run, from `FILE`: a JSON array of schedules (docs/workflows.md); with --store redis://... they join those the store keeps"),
		limits:    fs.String("limits", "", "hand-out limits, from `FILE`: a JSON array of limits per method, queue or key group (docs/workflows.md)"),
	}
}

// apply reads the files into cfg (the broker checks what they hold when it starts).
func (f *planFlags) apply(cfg *broker.Config) error {
	if *f.schedules != "" {
		if err := readJSONFile(*f.schedules, &cfg.Schedules); err != nil {
			return fmt.Errorf("--schedules: %w", err)
		}
	}
	if *f.limits != "" {
		if err := readJSONFile(*f.limits, &cfg.Limits); err != nil {
			return fmt.Errorf("--limits: %w", err)
		}
	}
	return nil
}

// maxPlanFile bounds a --schedules or --limits file.
const maxPlanFile = 16 << 20

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) > maxPlanFile {
		return fmt.Errorf("%s: larger than %d bytes", path, maxPlanFile)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func runSchedule(ctx context.Context, io *stdio, args []string) error {
	return runSubcommand(ctx, io, args, "schedule", "list | set NAME METHOD [ARG...] | remove NAME  (-h after each for its flags)",
		subcommand{"list", runScheduleList}, subcommand{"set", runScheduleSet}, subcommand{"remove", runScheduleRemove})
}

func runScheduleSet(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("schedule-set", "NAME METHOD [ARG...]", "Add (or replace) the periodic task NAME: METHOD with ARGs (as for `zerotask call`), run on\n"+
		"a cron expression (--cron, 5 fields or 6 with seconds first, in --tz) or every --every.")
	cronExpr := fs.String("cron", "", "cron `expression`: \"0 9 * * MON-FRI\", \"*/10 * * * * *\" (seconds first), @hourly; CRON_TZ=Zone may lead")
	tz := fs.String("tz", "", "IANA time `zone` of --cron (default UTC)")
	every := fs.Duration("every", 0, "run every `interval` (at least 1s; ticks fall on multiples of it since the Unix epoch)")
	misfire := fs.String("misfire", protocol.MisfireSkip, "ticks missed while no broker ran: "+protocol.MisfireSkip+" (drop them) or "+protocol.MisfireOnce+" (run one task for them)")
	options := fs.String("options", "", `task options as a JSON object, e.g. '{"queue":"reports","priority":5,"timeout_ms":60000}'`)
	rawParams := fs.String("params", "", "raw JSON params (an array or an object) instead of ARGs")
	if err := parse(fs, io, args, 2, -1); err != nil {
		return err
	}
	params, err := paramsOf(fs.Args()[2:], *rawParams)
	if err != nil {
		return err
	}
	sp := protocol.Schedule{Name: fs.Arg(0), Method: fs.Arg(1), Cron: *cronExpr, TZ: *tz, EveryMS: every.Milliseconds(), Misfire: *misfire, Params: params}
	if *options != "" {
		sp.Options = json.RawMessage(*options)
	}
	body, err := json.Marshal(sp)
	if err != nil {
		return usagef("%v", err)
	}
	if _, err := callOnce(ctx, io, fs, cf, protocol.MethodScheduleSet, body); err != nil {
		return err
	}
	fmt.Fprintf(io.out, "schedule %s set\n", sp.Name)
	return nil
}

func runScheduleRemove(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("schedule-remove", "NAME", "Remove the periodic task NAME (exit status 3 when there was none).")
	if err := parse(fs, io, args, 1, 1); err != nil {
		return err
	}
	res, err := callOnce(ctx, io, fs, cf, protocol.MethodScheduleRemove, stringParam("name", fs.Arg(0)))
	if err != nil {
		return err
	}
	if string(res) != "true" {
		fmt.Fprintf(io.err, "no schedule %s\n", fs.Arg(0))
		return &exitError{code: exitUnknown}
	}
	fmt.Fprintf(io.out, "schedule %s removed\n", fs.Arg(0))
	return nil
}

func runScheduleList(ctx context.Context, io *stdio, args []string) error {
	return showCall(ctx, io, args, "schedule-list", "List the periodic tasks: when each runs next and last ran.",
		protocol.MethodScheduleList, func(io *stdio, list []protocol.Schedule) error {
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tWHEN\tMETHOD\tNEXT\tLAST")
			for _, s := range list {
				when := s.Cron
				if s.TZ != "" {
					when += " (" + s.TZ + ")"
				}
				if s.EveryMS > 0 {
					when = "every " + (time.Duration(s.EveryMS) * time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, when, s.Method, msTime(s.NextMS), msTime(s.LastMS))
			}
			return tw.Flush()
		})
}

// msTime formats unix milliseconds in UTC, "-" for none.
func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func runLimit(ctx context.Context, io *stdio, args []string) error {
	return runSubcommand(ctx, io, args, "limit", "list | set (--method M | --queue Q | --group G) [--rate R] [--burst B] [--max-running N]",
		subcommand{"list", runLimitList}, subcommand{"set", runLimitSet})
}

func runLimitSet(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("limit-set", "", "Set the hand-out limit of one method, queue or key group: a rate (tasks per second, with a\n"+
		"burst) and a cap on its tasks running at once over all nodes. Neither --rate nor --max-running\n"+
		"removes the limit. Limited tasks wait in their queue; none fails for it.")
	method := fs.String("method", "", "limit the tasks of this `method`")
	queue := fs.String("queue", "", "limit the tasks of this `queue` (\"default\" for the default one)")
	group := fs.String("group", "", "limit the tasks whose "+protocol.MemberKeyGroup+" option is this `group`")
	rate := fs.Float64("rate", 0, "tasks handed out per second at most (0: no rate)")
	burst := fs.Int("burst", 0, "tasks that may go at once after an idle spell (0: "+protocol.DefaultBurstSpan.String()+" of the rate, at least 1)")
	maxRunning := fs.Int("max-running", 0, "tasks running at once at most, over all nodes (0: no cap)")
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	lm := protocol.Limit{Rate: *rate, Burst: *burst, MaxRunning: *maxRunning}
	n := 0
	for scope, name := range map[string]string{protocol.LimitMethod: *method, protocol.LimitQueue: *queue, protocol.LimitGroup: *group} {
		if name != "" {
			lm.Scope, lm.Name = scope, name
			n++
		}
	}
	if n != 1 {
		return usagef("limit set needs one of --method, --queue and --group")
	}
	body, err := json.Marshal(lm)
	if err != nil {
		return usagef("%v", err)
	}
	if _, err := callOnce(ctx, io, fs, cf, protocol.MethodLimitSet, body); err != nil {
		return err
	}
	fmt.Fprintf(io.out, "limit on %s %s set\n", lm.Scope, lm.Name)
	return nil
}

func runLimitList(ctx context.Context, io *stdio, args []string) error {
	return showCall(ctx, io, args, "limit-list", "List the hand-out limits, with the tasks running under each and any pause a node asked for.",
		protocol.MethodLimitList, func(io *stdio, list []protocol.Limit) error {
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCOPE\tNAME\tRATE\tBURST\tMAX-RUNNING\tRUNNING\tPAUSED")
			for _, l := range list {
				paused := "-"
				if l.PausedMS > 0 {
					paused = (time.Duration(l.PausedMS) * time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", l.Scope, l.Name, strconv.FormatFloat(l.Rate, 'g', -1, 64), l.Burst, l.MaxRunning, l.Running, paused)
			}
			return tw.Flush()
		})
}
