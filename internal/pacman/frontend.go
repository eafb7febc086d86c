package pacman

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/pacman/cmdline"
)

// Bounds on what InspectParent reads from /proc.
const (
	maxCmdline = cmdline.MaxBytes
	maxEnviron = 8 << 20
	maxFDs     = 1 << 16
)

// Frontend is the process that called libalpm and runs the hook (the hook's
// parent), as seen through /proc: for pacman (also when paru or yay run
// it), its command line and its view of the file system.
type Frontend struct {
	PID int
	// Exe is where /proc/<pid>/exe points (as the hook sees it).
	Exe string
	// Inv is pacman's command line as pacman 6.0.2 reads it.
	Inv *cmdline.Invocation
	// Root is pacman's file system: /proc/<pid>/root (its sysroot, if any).
	Root *RootFS
	// Cwd is pacman's working directory when it loaded the -U files,
	// inside Root: the directory libalpm keeps open while hooks run
	// (_alpm_run_chroot chdirs to RootDir). "" when it cannot be found;
	// CwdErr says why.
	Cwd    string
	CwdErr error
}

// Close releases Root.
func (f *Frontend) Close() {
	if f.Root != nil {
		f.Root.Close()
	}
}

// FrontendErrorKind says why the front-end's request cannot be read.
type FrontendErrorKind int

// The kinds of FrontendError.
const (
	// NoProc: /proc is not mounted inside RootDir (or belongs to another
	// PID namespace): nothing of the parent is visible.
	NoProc FrontendErrorKind = iota + 1
	// NotPacman: the parent is another libalpm front-end (pamac, a
	// custom program): it has no pacman command line to read.
	NotPacman
	// Unreadable: the parent is pacman but its command line, environment
	// or root directory cannot be read.
	Unreadable
	// BadCommandLine: pacman's command line is one the pacman 6.0.2 model
	// refuses, although pacman accepted it: this pacman is not the one
	// bintrans models. Never a reason to guess.
	BadCommandLine
)

// FrontendError is why InspectParent could not describe the front-end.
type FrontendError struct {
	Kind FrontendErrorKind
	PID  int
	Exe  string // the parent's program, when known
	Err  error
}

func (e *FrontendError) Error() string {
	switch e.Kind {
	case NoProc:
		return fmt.Sprintf("/proc is not mounted inside RootDir: %v", e.Err)
	case NotPacman:
		return fmt.Sprintf("the transaction was started by %s (pid %d), not by pacman", e.Exe, e.PID)
	case BadCommandLine:
		return fmt.Sprintf("cannot read the command line of pacman (pid %d): %v", e.PID, e.Err)
	default:
		return fmt.Sprintf("cannot read pacman's request (pid %d, %s): %v", e.PID, e.Exe, e.Err)
	}
}

func (e *FrontendError) Unwrap() error { return e.Err }

// pacmanNames are the program names taken for pacman 6.0.2.
var pacmanNames = map[string]bool{"pacman": true, "pacman-static": true}

// InspectParent describes the front-end with process id pid through the
// proc file system mounted at proc ("/proc"). The caller must Close the
// result. A *FrontendError says why it cannot: the hook then falls back to
// its strict mode (NoProc, NotPacman, Unreadable) or refuses
// (BadCommandLine).
func InspectParent(proc string, pid int) (*Frontend, error) {
	// /proc must be ours: /proc/self is this process (a /proc of another
	// PID namespace would show an unrelated process as <pid>).
	self, err := os.Readlink(filepath.Join(proc, "self"))
	if err != nil {
		return nil, &FrontendError{Kind: NoProc, PID: pid, Err: err}
	}
	if self != strconv.Itoa(os.Getpid()) {
		return nil, &FrontendError{Kind: NoProc, PID: pid, Err: fmt.Errorf("%s/self is pid %s, not this process (%d): a /proc of another PID namespace", proc, self, os.Getpid())}
	}
	dir := filepath.Join(proc, strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		return nil, &FrontendError{Kind: Unreadable, PID: pid, Err: err}
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if !pacmanNames[path.Base(exe)] {
		return nil, &FrontendError{Kind: NotPacman, PID: pid, Exe: exe}
	}
	fail := func(kind FrontendErrorKind, err error) (*Frontend, error) {
		return nil, &FrontendError{Kind: kind, PID: pid, Exe: exe, Err: err}
	}
	argv, err := readNulList(filepath.Join(dir, "cmdline"), maxCmdline)
	if err != nil {
		return fail(Unreadable, err)
	}
	env, err := readNulList(filepath.Join(dir, "environ"), maxEnviron)
	if err != nil {
		return fail(Unreadable, err)
	}
	inv, err := cmdline.Parse(argv, cmdline.EnvPosixlyCorrect(env))
	if err != nil {
		return fail(BadCommandLine, err)
	}
	root, err := OpenRootFS(filepath.Join(dir, "root"))
	if err != nil {
		return fail(Unreadable, err)
	}
	f := &Frontend{PID: pid, Exe: exe, Inv: inv, Root: root}
	d, err := savedCwd(dir)
	if err != nil {
		f.CwdErr = err
		return f, nil
	}
	defer d.Close()
	f.Cwd, f.CwdErr = root.PathOf(d, f.rootAlias())
	return f, nil
}

// readNulList reads a NUL-separated /proc list (cmdline, environ) of at
// most max bytes.
func readNulList(p string, max int) ([]string, error) {
	b, err := durable.ReadFile(p, int64(max))
	var tl *durable.TooLargeError
	if errors.As(err, &tl) {
		return nil, fmt.Errorf("%s: longer than %d bytes", p, max)
	}
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty (a kernel thread, or the process exited)", p)
	}
	b = bytes.TrimSuffix(b, []byte{0})
	return strings.Split(string(b), "\x00"), nil
}

// rootAlias is pacman's RootDir as an absolute path when it is known
// without pacman's working directory (--root, or RootDir of a
// configuration file named by an absolute path); "" otherwise. The hook is
// chrooted into that directory; PathOf checks the claim.
func (f *Frontend) rootAlias() string {
	if f.Inv.Root != "" {
		if path.IsAbs(f.Inv.Root) {
			return f.Inv.Root
		}
		return ""
	}
	conf := f.Inv.Config
	if conf == "" {
		conf = cmdline.DefaultConfig
	}
	if !path.IsAbs(conf) {
		return ""
	}
	_, raw, err := parseFS(f.Root, conf, "/", Limits{})
	if err != nil || !path.IsAbs(raw.root) {
		return ""
	}
	return raw.root
}

// savedCwd opens pacman's working directory as it was before
// _alpm_run_chroot changed it to RootDir: libalpm keeps it open, from
// open(".", O_RDONLY|O_CLOEXEC) (L/util.c:598), while the hook runs.
// Exactly one such descriptor (read-only, close-on-exec, a directory) must
// exist.
func savedCwd(dir string) (*os.File, error) {
	fdDir := filepath.Join(dir, "fd")
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	if len(ents) > maxFDs {
		return nil, fmt.Errorf("more than %d open files", maxFDs)
	}
	var found []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		flags, err := fdFlags(filepath.Join(dir, "fdinfo", e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_CLOEXEC == 0 || flags&unix.O_PATH != 0 {
			continue
		}
		if st, err := os.Stat(filepath.Join(fdDir, e.Name())); err != nil || !st.IsDir() {
			continue
		}
		found = append(found, e.Name())
	}
	switch len(found) {
	case 0:
		return nil, errors.New("pacman holds no open directory: its working directory is unknown")
	case 1:
	default:
		return nil, fmt.Errorf("pacman holds %d open directories (fds %s): which one is its working directory is unknown", len(found), strings.Join(found, ", "))
	}
	return os.Open(filepath.Join(fdDir, found[0]))
}

// fdFlags reads the "flags:" line (octal) of /proc/<pid>/fdinfo/<fd>.
func fdFlags(p string) (int, error) {
	fh, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(io.LimitReader(fh, 64<<10))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "flags:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			return int(n), err
		}
	}
	return 0, fmt.Errorf("%s: no flags line", p)
}

// dirIn makes p (relative to pacman's working directory) absolute in
// f.Root and checks that it is a directory, as alpm_initialize does for
// RootDir and DBPath. The path is kept as written (not cleaned): opening
// it resolves symlinks and ".." on the file system, as pacman's realpath
// did.
func (f *Frontend) dirIn(what, p string) (string, error) {
	a, ok := join(f.Cwd, p)
	if !ok {
		return "", fmt.Errorf("%s %q is relative and pacman's working directory is unknown: %v", what, p, f.CwdErr)
	}
	fd, err := f.Root.openat2(a, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	unix.Close(fd)
	return a, nil
}

// EffectiveConfig is the configuration pacman runs with: its command line
// over its configuration file (read in its root), as pacman 6.0.2's
// parseconfig and setdefaults combine them (P/conf.c):
//   - --config, else /etc/pacman.conf;
//   - RootDir and DBPath of the file only when the command line has none;
//     DBPath defaults to <root>/var/lib/pacman/ when a root is set, else
//     /var/lib/pacman/;
//   - --cachedir values first, then the file's CacheDir values; the
//     default /var/cache/pacman/pkg/ only when neither exists;
//   - relative paths (and relative Includes) against pacman's working
//     directory (a sysroot's "/" under --sysroot).
//
// The paths of the result are absolute inside f.Root.
func (f *Frontend) EffectiveConfig(lim Limits) (*Config, error) {
	inv := f.Inv
	abs := func(what, p string) (string, error) {
		a, ok := join(f.Cwd, p)
		if !ok {
			return "", fmt.Errorf("%s %q is relative and pacman's working directory is unknown: %v", what, p, f.CwdErr)
		}
		return a, nil
	}
	confPath := inv.Config
	if confPath == "" {
		confPath = cmdline.DefaultConfig
	}
	confPath, err := abs("--config", confPath)
	if err != nil {
		return nil, err
	}
	c, raw, err := parseFS(f.Root, confPath, f.Cwd, lim)
	if err != nil {
		return nil, err
	}
	out := *c
	root := raw.root
	if inv.Root != "" {
		root = inv.Root
	}
	dbpath := raw.dbpath
	switch {
	case inv.DBPath != "":
		dbpath = inv.DBPath
	case dbpath != "":
	case root != "":
		if dbpath, err = rootDBPath(root); err != nil {
			return nil, err
		}
	default:
		dbpath = DefaultDBPath
	}
	if root == "" {
		root = DefaultRootDir
	}
	// alpm_initialize needs both to be directories.
	if out.RootDir, err = f.dirIn("RootDir", root); err != nil {
		return nil, err
	}
	if out.DBPath, err = f.dirIn("DBPath", dbpath); err != nil {
		return nil, err
	}
	dirs := append(append([]string(nil), inv.CacheDirs...), raw.cacheDirs...)
	if len(dirs) == 0 {
		dirs = []string{DefaultCacheDir}
	}
	out.CacheDirs = nil
	for _, d := range dirs {
		a, err := abs("CacheDir", d)
		if err != nil {
			return nil, err
		}
		out.CacheDirs = append(out.CacheDirs, a)
	}
	return &out, nil
}

// Request is the plan request for the transaction pacman runs with the
// target names alpm gave the hook: the effective configuration, pacman's
// file system, its -U files (relative ones against its working directory)
// and URLs, and its -S repo/name targets. Targets read from stdin by
// `pacman -U -` cannot be seen: the request says so (Request.Unknown).
// With `pacman -S -` only the repo/name checks are lost: every sync
// target is checked through its cached candidates anyway.
func (f *Frontend) Request(names []string, lim Limits) (Request, error) {
	conf, err := f.EffectiveConfig(lim)
	if err != nil {
		return Request{}, err
	}
	req := Request{Names: names, Config: conf, FS: f.Root, RepoTargets: f.Inv.RepoTargets()}
	files, urls := f.Inv.Upgrade()
	for _, a := range files {
		if p, ok := join(f.Cwd, a); ok {
			req.Local = append(req.Local, LocalTarget{Arg: a, Path: p})
		} else {
			req.Local = append(req.Local, LocalTarget{Arg: a, Err: fmt.Errorf("a relative path, and pacman's working directory is unknown (%v)", f.CwdErr)})
		}
	}
	req.URLs = urls
	if f.Inv.Op == cmdline.OpUpgrade && f.Inv.StdinTargets() {
		req.Unknown = "pacman -U - (targets read from stdin)"
	}
	return req, nil
}
