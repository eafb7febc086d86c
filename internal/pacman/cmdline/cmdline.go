// Package cmdline models how Debian's pacman 6.0.2 reads its command line,
// so that an alpm hook can tell from /proc/<ppid>/cmdline what pacman was
// asked to do: the operation, the targets (`-U` files and URLs, `repo/pkg`
// sync targets) and the paths that decide which files libalpm installs
// (--config, --dbpath/-b, --root/-r, --sysroot, --cachedir).
//
// It reproduces glibc getopt_long as pacman calls it (P = pacman 6.0.2's
// src/pacman/pacman.c, parseargs): the optstring
// "DFQRSTUVb:cdefghiklmnopqr:stuvwxy", the long option table with its
// argument kinds, unique-prefix abbreviations (an ambiguous prefix is an
// error), "--opt=value" and "--opt value", clustered short options with
// attached arguments (-rR/, -Qvr R/), argument permutation unless
// POSIXLY_CORRECT is in the environment, "--", and "-" (targets read from
// stdin, which the command line cannot show). Every behaviour here was
// measured against pacman 6.0.2 (/work/notes/pacman-libarchive.md, §A).
//
// Parse never guesses: a command line pacman 6.0.2 would refuse (unknown or
// ambiguous option, missing argument, two operations) is an error, because
// a hook that runs under a pacman whose command line the model refuses is
// running under a pacman the model does not describe. One check is left
// out: whether an option is valid for the operation (pacman -Q --needed);
// pacman refuses such a line before any transaction, and the option
// cannot change which files are installed.
package cmdline

import (
	"fmt"
	"strings"
)

// Op is pacman's operation.
type Op string

// The operations (pacman -D, -F, -Q, -R, -S, -T, -U). OpNone: no operation
// was given (pacman prints usage and exits; no transaction runs).
const (
	OpNone     Op = ""
	OpDatabase Op = "database"
	OpFiles    Op = "files"
	OpQuery    Op = "query"
	OpRemove   Op = "remove"
	OpSync     Op = "sync"
	OpDeptest  Op = "deptest"
	OpUpgrade  Op = "upgrade"
)

// Bounds of Parse. A real command line of a 2 000-package transaction is a
// few tens of kilobytes; the kernel's own limit on argv is about 2 MiB.
const (
	MaxArgs  = 1 << 17
	MaxBytes = 8 << 20
)

// Invocation is what pacman 6.0.2 makes of a command line.
type Invocation struct {
	Op Op
	// Targets are the non-option arguments in pacman's order (GNU
	// permutation keeps their relative order; with POSIXLY_CORRECT
	// everything from the first non-option on is a target).
	Targets []string
	// Config is --config ("" when not given: pacman reads DefaultConfig).
	Config string
	// Root (--root, -r), DBPath (--dbpath, -b) and Sysroot (--sysroot):
	// "" when not given. The last occurrence wins, as in pacman.
	Root, DBPath, Sysroot string
	// CacheDirs are the --cachedir values in order; pacman tries them
	// before the configuration's CacheDir values.
	CacheDirs []string
	// Help and Version: -h/--help or -V/--version; pacman prints and exits.
	Help, Version bool
	// PosixlyCorrect is set when POSIXLY_CORRECT was in the environment
	// (no argument permutation).
	PosixlyCorrect bool
}

// DefaultConfig is the configuration file of Debian's pacman build.
const DefaultConfig = "/etc/pacman.conf"

// Error is a command line pacman 6.0.2 refuses.
type Error struct {
	Arg string // the offending argument, as given
	Msg string
}

func (e *Error) Error() string {
	if e.Arg == "" {
		return "pacman command line: " + e.Msg
	}
	return fmt.Sprintf("pacman command line: %q: %s", e.Arg, e.Msg)
}

type argKind int

const (
	noArg argKind = iota
	requiredArg
	optionalArg // only --debug, and only in the attached form --debug=N
)

// longOpt is one entry of pacman's `struct option opts[]`, in its order.
type longOpt struct {
	name string
	kind argKind
	// short is the equivalent short option letter (0: none); ops are
	// D F Q R S T U, help h, version V.
	short byte
}

// longOpts is P/pacman.c:883-951, in the same order.
var longOpts = []longOpt{
	{"database", noArg, 'D'}, {"files", noArg, 'F'}, {"query", noArg, 'Q'},
	{"remove", noArg, 'R'}, {"sync", noArg, 'S'}, {"deptest", noArg, 'T'},
	{"upgrade", noArg, 'U'}, {"version", noArg, 'V'}, {"help", noArg, 'h'},
	{"dbpath", requiredArg, 'b'}, {"cascade", noArg, 0}, {"changelog", noArg, 0},
	{"clean", noArg, 0}, {"nodeps", noArg, 0}, {"deps", noArg, 0},
	{"explicit", noArg, 0}, {"groups", noArg, 0}, {"info", noArg, 0},
	{"check", noArg, 0}, {"list", noArg, 0}, {"foreign", noArg, 0},
	{"native", noArg, 0}, {"nosave", noArg, 0}, {"owns", noArg, 0},
	{"file", noArg, 0}, {"print", noArg, 0}, {"quiet", noArg, 0},
	{"root", requiredArg, 'r'}, {"sysroot", requiredArg, 0}, {"recursive", noArg, 0},
	{"search", noArg, 0}, {"regex", noArg, 0}, {"machinereadable", noArg, 0},
	{"unrequired", noArg, 0}, {"upgrades", noArg, 0}, {"sysupgrade", noArg, 0},
	{"unneeded", noArg, 0}, {"verbose", noArg, 0}, {"downloadonly", noArg, 0},
	{"refresh", noArg, 0}, {"noconfirm", noArg, 0}, {"confirm", noArg, 0},
	{"config", requiredArg, 0}, {"ignore", requiredArg, 0}, {"assume-installed", requiredArg, 0},
	{"debug", optionalArg, 0}, {"force", noArg, 0}, {"overwrite", requiredArg, 0},
	{"noprogressbar", noArg, 0}, {"noscriptlet", noArg, 0}, {"ask", requiredArg, 0},
	{"cachedir", requiredArg, 0}, {"hookdir", requiredArg, 0}, {"asdeps", noArg, 0},
	{"logfile", requiredArg, 0}, {"ignoregroup", requiredArg, 0}, {"needed", noArg, 0},
	{"asexplicit", noArg, 0}, {"arch", requiredArg, 0}, {"print-format", requiredArg, 0},
	{"gpgdir", requiredArg, 0}, {"dbonly", noArg, 0}, {"color", requiredArg, 0},
	{"disable-download-timeout", noArg, 0},
}

// shortOpts is pacman's optstring without the ':' markers; shortArg are
// the letters that take an argument (b: and r:).
const (
	shortOpts = "DFQRSTUVbcdefghiklmnopqrstuvwxy"
	shortArg  = "br"
)

var opOf = map[byte]Op{'D': OpDatabase, 'F': OpFiles, 'Q': OpQuery, 'R': OpRemove, 'S': OpSync, 'T': OpDeptest, 'U': OpUpgrade}

// option is one parsed option occurrence.
type option struct {
	long  string // long name, or "" for a short option
	short byte   // short letter (or the long option's equivalent)
	arg   string
	raw   string // the argument it came from
}

// lookupLong resolves a (possibly abbreviated) long option name the way
// glibc's process_long_option does: an exact match wins, otherwise a
// unique prefix; several prefix matches are ambiguous (pacman's options
// all differ in value, so glibc never merges them).
func lookupLong(name string) (longOpt, error) {
	var found []longOpt
	for _, o := range longOpts {
		if o.name == name {
			return o, nil
		}
		if strings.HasPrefix(o.name, name) {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		return longOpt{}, fmt.Errorf("unrecognized option")
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, o := range found {
		names[i] = "--" + o.name
	}
	return longOpt{}, fmt.Errorf("ambiguous option; possibilities: %s", strings.Join(names, " "))
}

// EnvPosixlyCorrect reports whether env (KEY=VALUE entries, as in
// /proc/<pid>/environ) holds POSIXLY_CORRECT; glibc only asks whether it is
// set, so an empty value counts.
func EnvPosixlyCorrect(env []string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == "POSIXLY_CORRECT" {
			return true
		}
	}
	return false
}

// Parse reads argv (argv[0] is the program name) as pacman 6.0.2 does, with
// POSIXLY_CORRECT set when posixlyCorrect is true.
func Parse(argv []string, posixlyCorrect bool) (*Invocation, error) {
	if len(argv) == 0 {
		return nil, &Error{Msg: "empty command line"}
	}
	if len(argv) > MaxArgs {
		return nil, &Error{Msg: fmt.Sprintf("more than %d arguments", MaxArgs)}
	}
	total := 0
	for _, a := range argv {
		total += len(a) + 1
	}
	if total > MaxBytes {
		return nil, &Error{Msg: fmt.Sprintf("longer than %d bytes", MaxBytes)}
	}
	opts, targets, err := scan(argv, posixlyCorrect)
	if err != nil {
		return nil, err
	}
	inv := &Invocation{Targets: targets, PosixlyCorrect: posixlyCorrect}
	// First pass (parsearg_op): exactly one operation; a second one, even
	// the same letter again, is "only one operation may be used at a time".
	opSeen := false
	for _, o := range opts {
		if op, ok := opOf[o.short]; ok {
			if opSeen {
				return nil, &Error{Arg: o.raw, Msg: "only one operation may be used at a time"}
			}
			inv.Op, opSeen = op, true
		}
		switch o.short {
		case 'h':
			inv.Help = true
		case 'V':
			inv.Version = true
		}
	}
	// Second pass (parsearg_global): the options that decide which files
	// libalpm reads. Scalars keep their last value; --cachedir stacks.
	set := map[string]string{}
	for _, o := range opts {
		name := o.long
		switch o.short {
		case 'b':
			name = "dbpath"
		case 'r':
			name = "root"
		}
		switch name {
		case "dbpath", "root", "sysroot", "config":
			set[name] = o.raw
		default:
			continue
		}
		switch name {
		case "dbpath":
			inv.DBPath = o.arg
		case "root":
			inv.Root = o.arg
		case "sysroot":
			inv.Sysroot = o.arg
		case "config":
			inv.Config = o.arg
		}
	}
	for _, o := range opts {
		if o.long != "cachedir" {
			continue
		}
		if o.arg == "" {
			// canonicalize_path("") reads path[-1]: undefined behaviour in
			// pacman (measured: it becomes "/"). Not a line to reason about.
			return nil, &Error{Arg: o.raw, Msg: "empty --cachedir"}
		}
		inv.CacheDirs = append(inv.CacheDirs, o.arg)
	}
	// pacman cannot initialise with an empty root, dbpath, sysroot or
	// configuration file (stat, chroot or fopen of ""): it exits before
	// any transaction.
	for name, v := range map[string]string{"dbpath": inv.DBPath, "root": inv.Root, "sysroot": inv.Sysroot, "config": inv.Config} {
		if raw, ok := set[name]; ok && v == "" {
			return nil, &Error{Arg: raw, Msg: "empty --" + name}
		}
	}
	return inv, nil
}

// scan is getopt_long over argv: the options in order and the targets.
func scan(argv []string, posix bool) ([]option, []string, error) {
	var opts []option
	var targets []string
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			return opts, append(targets, argv[i+1:]...), nil
		case a == "-" || !strings.HasPrefix(a, "-"):
			if posix {
				return opts, append(targets, argv[i:]...), nil
			}
			targets = append(targets, a)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			lo, err := lookupLong(name)
			if err != nil {
				return nil, nil, &Error{Arg: a, Msg: err.Error()}
			}
			o := option{long: lo.name, short: lo.short, raw: a}
			switch lo.kind {
			case noArg:
				if hasVal {
					return nil, nil, &Error{Arg: a, Msg: "option '--" + lo.name + "' doesn't allow an argument"}
				}
			case requiredArg:
				switch {
				case hasVal:
					o.arg = val
				case i+1 < len(argv):
					i++
					o.arg = argv[i]
				default:
					return nil, nil, &Error{Arg: a, Msg: "option '--" + lo.name + "' requires an argument"}
				}
			case optionalArg:
				o.arg = val
			}
			opts = append(opts, o)
		default: // a cluster of short options
			for j := 1; j < len(a); j++ {
				c := a[j]
				if strings.IndexByte(shortOpts, c) < 0 {
					return nil, nil, &Error{Arg: a, Msg: fmt.Sprintf("invalid option -- '%c'", c)}
				}
				o := option{short: c, raw: a}
				if strings.IndexByte(shortArg, c) >= 0 {
					switch {
					case j+1 < len(a):
						o.arg = a[j+1:]
					case i+1 < len(argv):
						i++
						o.arg = argv[i]
					default:
						return nil, nil, &Error{Arg: a, Msg: fmt.Sprintf("option requires an argument -- '%c'", c)}
					}
					opts = append(opts, o)
					break
				}
				opts = append(opts, o)
			}
		}
	}
	return opts, targets, nil
}

// StdinTargets reports whether pacman reads (more) targets from stdin: a
// target "-" (P/pacman.c:1140). Those targets are not on the command line.
func (inv *Invocation) StdinTargets() bool {
	for _, t := range inv.Targets {
		if t == "-" {
			return true
		}
	}
	return false
}

// Upgrade splits the targets of `pacman -U` as pacman_upgrade does
// (P/upgrade.c:79): a target containing "://" is a URL, anything else a
// path handed unchanged to alpm_pkg_load (relative to pacman's working
// directory, or to the sysroot's "/"). A "-" is left out (stdin). Both are
// nil for other operations.
func (inv *Invocation) Upgrade() (files, urls []string) {
	if inv.Op != OpUpgrade {
		return nil, nil
	}
	for _, t := range inv.Targets {
		switch {
		case t == "-":
		case strings.Contains(t, "://"):
			urls = append(urls, t)
		default:
			files = append(files, t)
		}
	}
	return files, urls
}

// RepoTarget is a `pacman -S repo/target` argument.
type RepoTarget struct {
	Arg  string // as given
	Repo string
	// Name is the package name the target asks for: the part after the
	// first '/', up to a version constraint (foo>=2 → foo). It may also
	// be a group or a provided name, which no package carries.
	Name string
}

// RepoTargets returns the `repo/target` arguments of `pacman -S`, split as
// process_target does (P/sync.c:640): at the first '/', unless the target
// starts with '/' (then it is a plain name). Nil for other operations.
func (inv *Invocation) RepoTargets() []RepoTarget {
	if inv.Op != OpSync {
		return nil
	}
	var out []RepoTarget
	for _, t := range inv.Targets {
		repo, rest, ok := strings.Cut(t, "/")
		if !ok || repo == "" {
			continue
		}
		out = append(out, RepoTarget{Arg: t, Repo: repo, Name: DepName(rest)})
	}
	return out
}

// DepName is the package name of a dependency string as
// alpm_dep_from_string reads it: up to ": " (a description), then up to the
// first '<', '>' or '='.
func DepName(dep string) string {
	if i := strings.Index(dep, ": "); i >= 0 {
		dep = dep[:i]
	}
	if i := strings.IndexAny(dep, "<>="); i >= 0 {
		dep = dep[:i]
	}
	return dep
}
