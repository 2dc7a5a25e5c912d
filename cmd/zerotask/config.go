package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Every flag of every command also comes from the environment and from an optional TOML
// config file. The flag set itself is the one table: a flag's name gives its environment
// variables and its key in the file, so nothing is listed twice. Precedence: the command
// line, then ZEROTASK_<COMMAND>_<FLAG>, then ZEROTASK_<FLAG>, then the file's [command]
// table, then its top level, then the flag's default (docs/operations.md, "Configuration").

// envPrefix starts every environment variable the binary reads.
const envPrefix = "ZEROTASK_"

// configEnv names the config file when --config is not given.
const configEnv = envPrefix + "CONFIG"

// maxConfigSize bounds a config file: a larger one is refused before it is parsed.
const maxConfigSize = 1 << 20

// envName returns the environment variable of flag name, scoped to command cmd when cmd is
// not "": ZEROTASK_MAX_QUEUED, ZEROTASK_BROKER_MAX_QUEUED.
func envName(cmd, name string) string {
	n := envPrefix
	if cmd != "" {
		n += strings.ToUpper(strings.ReplaceAll(cmd, "-", "_")) + "_"
	}
	return n + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// addConfigFlag adds --config to fs.
func (fs *flagSet) addConfigFlag() {
	fs.config = fs.String("config", "", "read flag values from this TOML `file`: top-level keys and a ["+fs.Name()+"] table, named as the flags (max-queued = 5000); the command line and ZEROTASK_* variables win ($"+configEnv+")")
}

// applyEnvAndFile sets every flag not given on the command line from the environment
// (lookup), then from the config file. A value the flag refuses is a usage error naming where
// it came from.
func (fs *flagSet) applyEnvAndFile(lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	path := ""
	if fs.config != nil {
		path = *fs.config
	}
	if path == "" {
		path, _ = lookup(configEnv)
	}
	var file map[string]string
	if path != "" {
		var err error
		if file, err = readConfig(path, fs.Name(), fs.FlagSet); err != nil {
			return usagef("%v", err)
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "config" {
			return
		}
		for _, env := range []string{envName(fs.Name(), f.Name), envName("", f.Name)} {
			if v, ok := lookup(env); ok {
				if e := fs.Set(f.Name, v); e != nil {
					err = usagef("$%s: %v", env, e)
				}
				return
			}
		}
		if v, ok := file[f.Name]; ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("%s: %s: %v", path, f.Name, e)
			}
		}
	})
	return err
}

// readConfig reads a TOML config file for command cmd: its top-level keys, then its [cmd]
// table over them, each value as a flag takes it (arrays joined with commas). A key of the
// [cmd] table that is no flag of fs is an error; top-level keys that are not are ignored (they
// are for other commands).
func readConfig(path, cmd string, fset *flag.FlagSet) (map[string]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if st.Size() > maxConfigSize {
		return nil, fmt.Errorf("config file %s: %d bytes, more than %d", path, st.Size(), maxConfigSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return parseConfig(string(b), path, cmd, fset)
}

// parseConfig is readConfig on the file's text.
func parseConfig(text, path, cmd string, fset *flag.FlagSet) (map[string]string, error) {
	var doc map[string]any
	if _, err := toml.Decode(text, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]string{}
	var table map[string]any
	for k, v := range doc {
		if t, ok := v.(map[string]any); ok {
			if k == cmd {
				table = t
			}
			continue
		}
		if fset.Lookup(k) == nil {
			continue
		}
		s, err := configValue(v)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %s: %w", path, k, err)
		}
		out[k] = s
	}
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if fset.Lookup(k) == nil || k == "config" {
			return nil, fmt.Errorf("config file %s: [%s] %s: zerotask %s has no such flag", path, cmd, k, cmd)
		}
		s, err := configValue(table[k])
		if err != nil {
			return nil, fmt.Errorf("config file %s: [%s] %s: %w", path, cmd, k, err)
		}
		out[k] = s
	}
	return out, nil
}

// configValue returns a TOML value as a flag's text.
func configValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := configValue(e)
			if err != nil {
				return "", err
			}
			if strings.Contains(s, ",") {
				return "", errors.New("a list element holds a comma")
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("a %T is not a flag value (use a string, number, boolean or list)", v)
}

// envUsage returns flag f's usage with its environment variables appended.
func envUsage(cmd string, f *flag.Flag) string {
	if f.Name == "config" {
		return f.Usage
	}
	global := envName("", f.Name)
	if strings.Contains(f.Usage, "$"+global) {
		return f.Usage
	}
	return f.Usage + " ($" + envName(cmd, f.Name) + " or $" + global + ")"
}
