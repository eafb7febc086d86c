package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Sandbox is Debian's pacman 6.0.2 confined to a temporary directory: every
// path pacman uses (RootDir, DBPath, CacheDir, LogFile, GPGDir, HookDir) is
// inside Dir, signature checking is off (SigLevel = Never: bintrans, not
// pacman's keyring, is what the tests exercise), and every repository is
// served over HTTP by an httptest server on 127.0.0.1.
//
// DBPath and CacheDir live inside Root, and the configuration file is
// Root/etc/pacman.conf, because alpm runs hooks chrooted into RootDir with
// the working directory "/": a hook sees the configuration as
// /etc/pacman.conf, the sync databases under /var/lib/pacman and the
// packages under /var/cache/pacman/pkg, exactly as on a real system.
// (Measured: a hook's Exec outside RootDir fails with "call to execv
// failed"; a PreTransaction hook with AbortOnFail that exits non-zero
// aborts with "failed to run transaction hooks" and installs nothing.)
//
// /proc: a real root has /proc mounted (pacstrap and arch-chroot mount it
// too), and the bintrans hook reads its parent, pacman, through it. Every
// program the sandbox runs (Pacman, Run) therefore runs in a private mount
// namespace (unshare --mount --propagation private) in which /proc is
// bind-mounted into Root (and into every directory of ProcRoots): the mount
// exists only in that namespace and disappears with its last process, so
// nothing leaks into the host's mount table, whatever happens to the test.
// NoProc runs them without it (a chroot without /proc).
//
// pacman needs uid 0 (it chroots); without it the test is skipped, or
// fails under CI.
type Sandbox struct {
	Dir      string // the temporary directory holding everything
	Root     string // RootDir
	Conf     string // host path of pacman.conf (Root/etc/pacman.conf)
	DBPath   string // host path of DBPath (Root/var/lib/pacman)
	CacheDir string // host path of CacheDir (Root/var/cache/pacman/pkg)
	LogFile  string
	GPGDir   string
	HookDir  string
	// WWW is the directory the HTTP server serves at URL; repository name
	// lives in WWW/<name> (RepoDir). Tests may put anything else there
	// (`.t` files, bundles) and reach it at URL/<path>.
	WWW string
	URL string
	// Repos are the repository names, in pacman.conf order.
	Repos []string
	// NoProc runs programs without /proc in the root (default: with).
	NoProc bool
	// ProcRoots are further directories that get /proc (e.g. another
	// RootDir given with pacman --root).
	ProcRoots []string

	pacman string
	server *httptest.Server
	mux    *http.ServeMux
}

// ConfInRoot is where a hook running inside the sandbox finds pacman.conf.
const ConfInRoot = "/etc/pacman.conf"

// NewSandbox creates a sandbox with the given repositories (at least one),
// each with an empty directory RepoDir(name) served over HTTP. Fill a
// repository with BuildPackage into RepoDir and RepoAdd on RepoDB.
func NewSandbox(t testing.TB, repos ...string) *Sandbox {
	t.Helper()
	pacman := Tool(t, "pacman")
	Tool(t, "repo-add")
	if os.Geteuid() != 0 {
		missing(t, "root (pacman installs and chroots into RootDir only as uid 0)")
	}
	if len(repos) == 0 {
		t.Fatal("testenv.NewSandbox: need at least one repository")
	}
	dir := t.TempDir()
	s := &Sandbox{
		Dir:     dir,
		Root:    filepath.Join(dir, "root"),
		LogFile: filepath.Join(dir, "pacman.log"),
		GPGDir:  filepath.Join(dir, "gnupg"),
		HookDir: filepath.Join(dir, "hooks"),
		WWW:     filepath.Join(dir, "www"),
		Repos:   repos,
		pacman:  pacman,
	}
	s.Conf = filepath.Join(s.Root, "etc", "pacman.conf")
	s.DBPath = filepath.Join(s.Root, "var", "lib", "pacman")
	s.CacheDir = filepath.Join(s.Root, "var", "cache", "pacman", "pkg")
	for _, d := range []string{filepath.Dir(s.Conf), s.DBPath, s.CacheDir, s.GPGDir, s.HookDir, s.WWW, filepath.Join(s.Root, "proc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.mux = http.NewServeMux()
	s.mux.Handle("/", http.FileServer(http.Dir(s.WWW)))
	s.server = httptest.NewServer(s.mux)
	t.Cleanup(s.server.Close)
	s.URL = s.server.URL

	var conf strings.Builder
	fmt.Fprintf(&conf, `# bintrans test sandbox
[options]
RootDir = %s
DBPath = %s/
CacheDir = %s/
LogFile = %s
GPGDir = %s/
HookDir = %s/
Architecture = auto
SigLevel = Never
`, s.Root, s.DBPath, s.CacheDir, s.LogFile, s.GPGDir, s.HookDir)
	for _, r := range repos {
		if err := os.MkdirAll(s.RepoDir(r), 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "\n[%s]\nServer = %s/$repo\n", r, s.URL)
	}
	if err := os.WriteFile(s.Conf, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// Handle serves h at pattern (http.ServeMux syntax) on the sandbox's
// server, next to the files of WWW: e.g. a download with a
// Content-Disposition header.
func (s *Sandbox) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// RepoDir is the served directory of repository name (packages and db).
func (s *Sandbox) RepoDir(name string) string { return filepath.Join(s.WWW, name) }

// RepoDB is the path to pass to RepoAdd for repository name.
func (s *Sandbox) RepoDB(name string) string {
	return filepath.Join(s.RepoDir(name), name+".db.tar.gz")
}

// PacmanResult is the outcome of one pacman run.
type PacmanResult struct {
	Args   []string
	Code   int
	Stdout string
	Stderr string
}

func (r PacmanResult) String() string {
	return fmt.Sprintf("pacman %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Pacman runs pacman with the sandbox's configuration and args, in the C
// locale, without colour or questions, and returns what it did. env
// entries (KEY=VALUE) are added to the environment, which alpm passes on
// to hooks. Only a failure to start pacman fails the test.
func (s *Sandbox) Pacman(t testing.TB, env []string, args ...string) PacmanResult {
	t.Helper()
	return s.PacmanWith(t, RunOptions{Env: env}, args...)
}

// RunOptions vary how a program runs in the sandbox.
type RunOptions struct {
	Env   []string  // KEY=VALUE added to the environment
	Dir   string    // working directory ("" : the test's)
	Stdin io.Reader // nil: empty
}

// PacmanWith is Pacman with a working directory or stdin.
func (s *Sandbox) PacmanWith(t testing.TB, o RunOptions, args ...string) PacmanResult {
	t.Helper()
	full := append([]string{"--config", s.Conf, "--noconfirm", "--color", "never"}, args...)
	res := s.Run(t, o, s.pacman, full...)
	res.Args = args
	return res
}

// Run runs program with args the way Pacman runs pacman: in the C locale,
// in a private mount namespace with /proc in the root (unless NoProc).
// Only a failure to start it fails the test.
func (s *Sandbox) Run(t testing.TB, o RunOptions, program string, args ...string) PacmanResult {
	t.Helper()
	argv := append([]string{program}, args...)
	if !s.NoProc {
		// mount(8) inside the new namespace, then exec: the program is the
		// direct child of this test, as pacman is of a shell.
		pre := []string{Tool(t, "unshare"), "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
			`for r; do shift; [ "$r" = -- ] && break; mkdir -p "$r/proc" && mount --bind /proc "$r/proc" || exit 125; done; exec "$@"`,
			"sh", s.Root}
		Tool(t, "mount")
		pre = append(append(pre, s.ProcRoots...), "--")
		argv = append(pre, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "LANG=C"), o.Env...)
	cmd.Dir = o.Dir
	cmd.Stdin = o.Stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := PacmanResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
		if res.Code == 125 && !s.NoProc && strings.Contains(res.Stderr, "mount") {
			t.Fatalf("testenv: cannot mount /proc in the sandbox root: %s", res.Stderr)
		}
	default:
		t.Fatalf("running %s: %v", program, err)
	}
	return res
}

// Sync runs `pacman -Syy pkgs…` (refresh, then install). The refresh is
// forced: a test that rewrites a db within the second of the last sync would
// otherwise get a 304 from the mirror (Last-Modified has one-second
// resolution) and install from the stale db.
func (s *Sandbox) Sync(t testing.TB, env []string, pkgs ...string) PacmanResult {
	t.Helper()
	return s.Pacman(t, env, append([]string{"-Syy"}, pkgs...)...)
}

// Installed returns the installed packages (`pacman -Q`) as name → version.
func (s *Sandbox) Installed(t testing.TB) map[string]string {
	t.Helper()
	res := s.Pacman(t, nil, "-Q")
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		if name, ver, ok := strings.Cut(line, " "); ok {
			got[name] = ver
		}
	}
	if res.Code != 0 && (len(got) > 0 || strings.Contains(res.Stderr, "error:")) {
		t.Fatalf("pacman -Q: %s", res)
	}
	return got
}

// InstallHook writes an alpm hook file HookDir/<name>.hook.
func (s *Sandbox) InstallHook(t testing.TB, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.HookDir, name+".hook"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// InstallFile writes b as Root/<inRoot> with mode perm, creating
// directories: how a hook's program (a static binary, a script) gets to
// where the chrooted hook can execute it.
func (s *Sandbox) InstallFile(t testing.TB, inRoot string, b []byte, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(s.Root, filepath.FromSlash(strings.TrimPrefix(inRoot, "/")))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
}

// CopyIntoRoot copies the host file src to Root/<inRoot>, executable.
// src must be statically linked (CGO_ENABLED=0 for Go); for a dynamically
// linked host program use InstallHostProgram.
func (s *Sandbox) CopyIntoRoot(t testing.TB, src, inRoot string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s.InstallFile(t, inRoot, b, 0o755)
}

var lddPath = regexp.MustCompile(`(?m)(/\S+)\s+\(0x`)

// InstallHostProgram copies the host program at path into Root at the same
// path, with the shared libraries `ldd` lists, so that a chrooted hook can
// run it (e.g. /bin/sh for a shell-script hook).
func (s *Sandbox) InstallHostProgram(t testing.TB, path string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	s.CopyIntoRoot(t, real, path)
	out, err := exec.Command(Tool(t, "ldd"), real).Output()
	if err != nil { // "not a dynamic executable"
		return
	}
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		lib := m[1]
		b, err := os.ReadFile(lib)
		if err != nil {
			t.Fatal(err)
		}
		s.InstallFile(t, lib, b, 0o755)
	}
}

// Log returns pacman's log file (empty if pacman wrote none yet).
func (s *Sandbox) Log(t testing.TB) string {
	t.Helper()
	f, err := os.Open(s.LogFile)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
