package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/bintrans/bintrans/internal/rootfile"
)

// The configuration file (/etc/bintrans.conf) holds the same settings as the
// flags, in pacman.conf's shape so that Arch users read it at a glance:
//
//	# comment
//	pubkey = RWS…                  (a flag name without "--"; repeat a line
//	rebuilder = https://a.example/  for a repeatable flag)
//	offline = true
//
//	[repo core]                    (per-repository settings)
//	transparency-url = https://example.org/core/
//
// A key inside "[repo NAME]" becomes the flag "repo-KEY" with the value
// "NAME=VALUE" (so `[repo core] transparency-url = U` is
// `--repo-transparency-url core=U`). Flags on the command line win over the
// file. An unknown key is an error that names the file and line: a typo in a
// security policy must never be ignored silently.

const (
	defaultConfigPath = "/etc/bintrans.conf"
	maxConfigSize     = 1 << 20
	maxConfigLines    = 10000
)

// configLine is one "key = value" of the file, remembered with its line
// number for error messages.
type configLine struct {
	key, value string
	line       int
}

// configResolver resolves flags from a parsed configuration file.
type configResolver struct {
	path   string
	values map[string][]configLine // flag name → values in file order
}

// configPath finds the configuration file: --config on the command line, then
// $BINTRANS_CONFIG, then /etc/bintrans.conf. explicit is true when the user
// named it (then a missing file is an error).
//
// `bintrans hook` ignores $BINTRANS_CONFIG (ignoredEnv is then its value,
// for a warning): the hook runs as root in pacman's environment, which
// `sudo -E`, env_keep, `su` or a wrapper script hand down from a user, and
// the policy of the pacman hook must be the one root chose, in
// /etc/bintrans.conf or with --config in the root-owned hook file.
func configPath(args []string) (path string, explicit bool, ignoredEnv string) {
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1], true, ""
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v, true, ""
		}
	}
	if p := os.Getenv("BINTRANS_CONFIG"); p != "" {
		if commandOf(args) == "hook" {
			return defaultConfigPath, false, p
		}
		return p, true, ""
	}
	return defaultConfigPath, false, ""
}

// commandOf is the command args select: the first argument that is neither
// a flag nor the value of --config (the only global flag with a value).
func commandOf(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--config":
			i++
		case a == "--":
			if i+1 < len(args) {
				return args[i+1]
			}
			return ""
		case !strings.HasPrefix(a, "-"):
			return a
		}
	}
	return ""
}

// loadConfig reads path into a kong resolver. A missing default file is not
// an error (nil resolver); a missing explicit file is. As root, a file (or
// a directory above it) that someone other than root could have written is
// refused (rootfile): the configuration decides what the pacman hook
// accepts.
func loadConfig(path string, explicit bool) (kong.Resolver, error) {
	if err := rootfile.Check(path); rootfile.IsInsecure(err) {
		return nil, usageErrorf(fileHint(err, ""), "configuration %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) && !explicit {
			return nil, nil
		}
		return nil, usageErrorf("check the path, or omit --config to use "+defaultConfigPath, "cannot read configuration: %v", err)
	}
	defer f.Close()
	return parseConfig(path, f)
}

// parseConfig parses the configuration format described above. It is strict:
// lines it does not understand are errors, never ignored.
func parseConfig(path string, r io.Reader) (*configResolver, error) {
	cr := &configResolver{path: path, values: map[string][]configLine{}}
	sc := bufio.NewScanner(io.LimitReader(r, maxConfigSize+1))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	section, sectionName := "", ""
	n, size := 0, 0
	for sc.Scan() {
		n++
		size += len(sc.Bytes()) + 1
		if n > maxConfigLines || size > maxConfigSize {
			return nil, cr.errorf(n, "file too large (limit %d lines, %d bytes)", maxConfigLines, maxConfigSize)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, cr.errorf(n, "malformed section header %q", line)
			}
			fields := strings.Fields(strings.TrimSpace(line[1 : len(line)-1]))
			switch {
			case len(fields) == 1 && fields[0] == "options":
				section, sectionName = "", ""
			case len(fields) == 2 && fields[0] == "repo":
				section, sectionName = "repo", fields[1]
			default:
				return nil, cr.errorf(n, "unknown section %q (want [options] or [repo NAME])", line)
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok {
			// A bare key is a boolean set to true, as in pacman.conf.
			value = "true"
		}
		if key == "" || strings.ContainsAny(key, " \t") {
			return nil, cr.errorf(n, "malformed line %q (want \"key = value\")", line)
		}
		if section == "repo" {
			key = "repo-" + key
			value = sectionName + "=" + value
		}
		cr.values[key] = append(cr.values[key], configLine{key: key, value: value, line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, cr.errorf(n+1, "%v", err)
	}
	return cr, nil
}

func (c *configResolver) errorf(line int, format string, args ...any) error {
	return usageErrorf("see bintrans.conf.example for the format; every key is a flag name without \"--\"",
		"%s:%d: %s", c.path, line, fmt.Sprintf(format, args...))
}

// Validate rejects keys that are no flag of any command.
func (c *configResolver) Validate(app *kong.Application) error {
	known := map[string]bool{}
	_ = kong.Visit(app, func(node kong.Visitable, next kong.Next) error {
		if f, ok := node.(*kong.Flag); ok {
			known[f.Name] = true
		}
		return next(nil)
	})
	var keys []string
	for k := range c.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if known[k] && k != "config" && k != "help" {
			continue
		}
		first := c.values[k][0]
		msg := fmt.Sprintf("unknown key %q", k)
		if s := closest(k, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return c.errorf(first.line, "%s", msg)
	}
	return nil
}

// Resolve gives a flag its value(s) from the file.
func (c *configResolver) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	lines, ok := c.values[flag.Name]
	if !ok {
		return nil, nil
	}
	if flag.IsSlice() || flag.IsMap() {
		vals := make([]any, len(lines))
		for i, l := range lines {
			vals[i] = l.value
		}
		return vals, nil
	}
	if len(lines) > 1 {
		return nil, c.errorf(lines[1].line, "%q given twice (first on line %d); it takes one value", flag.Name, lines[0].line)
	}
	return lines[0].value, nil
}

// closest returns the known name nearest to s (edit distance ≤ 2), if any.
func closest(s string, known map[string]bool) string {
	best, bestD := "", 3
	for k := range known {
		if d := editDistance(s, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
