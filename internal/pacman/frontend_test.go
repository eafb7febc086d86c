package pacman

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain doubles as a stand-in pacman for TestInspectRealProc: with
// BINTRANS_TEST_FAKE_PACMAN_CWD set it holds that directory open as
// libalpm's _alpm_run_chroot does (O_RDONLY|O_CLOEXEC), moves
// its own working directory to "/" and waits for stdin to close.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BINTRANS_TEST_FAKE_PACMAN_CWD"); dir != "" {
		if _, err := unix.Open(dir, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			os.Exit(2)
		}
		if err := os.Chdir("/"); err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString("ready\n")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	code := m.Run()
	if planBuild.dir != "" {
		os.RemoveAll(planBuild.dir)
	}
	os.Exit(code)
}

// fakeProc lays out a proc tree for a parent pid: self, exe, cmdline,
// environ, root, fd and fdinfo.
type fakeProc struct {
	dir, root string
	pid       int
}

func newFakeProc(t *testing.T, exe string, argv, env []string) *fakeProc {
	t.Helper()
	fp := &fakeProc{dir: t.TempDir(), root: t.TempDir(), pid: 4242}
	pd := filepath.Join(fp.dir, strconv.Itoa(fp.pid))
	for _, d := range []string{"fd", "fdinfo"} {
		if err := os.MkdirAll(filepath.Join(pd, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(strconv.Itoa(os.Getpid()), filepath.Join(fp.dir, "self")))
	must(os.Symlink(exe, filepath.Join(pd, "exe")))
	must(os.Symlink(fp.root, filepath.Join(pd, "root")))
	must(os.WriteFile(filepath.Join(pd, "cmdline"), []byte(strings.Join(argv, "\x00")+"\x00"), 0o644))
	must(os.WriteFile(filepath.Join(pd, "environ"), []byte(strings.Join(env, "\x00")+"\x00"), 0o644))
	return fp
}

// fd adds an open file: fd n pointing at target with the given flags.
func (fp *fakeProc) fd(t *testing.T, n int, target string, flags int) {
	t.Helper()
	pd := filepath.Join(fp.dir, strconv.Itoa(fp.pid))
	if err := os.Symlink(target, filepath.Join(pd, "fd", strconv.Itoa(n))); err != nil {
		t.Fatal(err)
	}
	info := "pos:\t0\nflags:\t0" + strconv.FormatInt(int64(flags), 8) + "\nmnt_id:\t26\n"
	if err := os.WriteFile(filepath.Join(pd, "fdinfo", strconv.Itoa(n)), []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dirFlags are the flags of libalpm's saved working directory, from
// open(".", O_RDONLY|O_CLOEXEC).
const dirFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_LARGEFILE

func TestInspectParentKinds(t *testing.T) {
	kind := func(err error) FrontendErrorKind {
		var fe *FrontendError
		if !errors.As(err, &fe) {
			t.Fatalf("%v is not a *FrontendError", err)
		}
		return fe.Kind
	}
	// No /proc at all.
	if _, err := InspectParent(filepath.Join(t.TempDir(), "proc"), 1); kind(err) != NoProc {
		t.Errorf("no /proc: %v", err)
	}
	// A /proc of another PID namespace: /proc/self is someone else.
	other := t.TempDir()
	if err := os.Symlink("1", filepath.Join(other, "self")); err != nil {
		t.Fatal(err)
	}
	if _, err := InspectParent(other, 1); kind(err) != NoProc || !strings.Contains(err.Error(), "another PID namespace") {
		t.Errorf("foreign /proc: %v", err)
	}
	// pamac, or a custom libalpm program.
	fp := newFakeProc(t, "/usr/bin/pamac-daemon", []string{"pamac-daemon"}, nil)
	_, err := InspectParent(fp.dir, fp.pid)
	if kind(err) != NotPacman || !strings.Contains(err.Error(), "/usr/bin/pamac-daemon") {
		t.Errorf("pamac: %v", err)
	}
	// pacman with a line the model refuses.
	fp = newFakeProc(t, "/usr/bin/pacman", []string{"pacman", "-S", "--frobnicate", "foo"}, nil)
	if _, err := InspectParent(fp.dir, fp.pid); kind(err) != BadCommandLine {
		t.Errorf("bad command line: %v", err)
	}
	// pacman whose command line is gone.
	fp = newFakeProc(t, "/usr/bin/pacman (deleted)", []string{"pacman"}, nil)
	os.Remove(filepath.Join(fp.dir, strconv.Itoa(fp.pid), "cmdline"))
	if _, err := InspectParent(fp.dir, fp.pid); kind(err) != Unreadable {
		t.Errorf("no cmdline: %v", err)
	}
}

func TestInspectParentPacman(t *testing.T) {
	fp := newFakeProc(t, "/usr/bin/pacman", []string{"pacman", "-U", "x.pkg", "--cachedir", "c"}, []string{"PATH=/bin", "POSIXLY_CORRECT=1"})
	cwd := filepath.Join(fp.root, "home/u")
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	fp.fd(t, 5, "/dev/null", unix.O_WRONLY|unix.O_CLOEXEC)
	fp.fd(t, 6, fp.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC) // an O_PATH fd is not the saved cwd
	fp.fd(t, 7, cwd, dirFlags)
	fp.fd(t, 8, fp.root, unix.O_RDONLY|unix.O_DIRECTORY)    // inherited (no CLOEXEC): not libalpm's
	fp.fd(t, 10, "/dev/null", unix.O_RDONLY|unix.O_CLOEXEC) // not a directory
	f, err := InspectParent(fp.dir, fp.pid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Cwd != "/home/u" || f.CwdErr != nil {
		t.Errorf("cwd %q %v", f.Cwd, f.CwdErr)
	}
	// POSIXLY_CORRECT: "--cachedir c" after the target are targets.
	if f.Inv.Op != "upgrade" || !reflect.DeepEqual(f.Inv.Targets, []string{"x.pkg", "--cachedir", "c"}) || !f.Inv.PosixlyCorrect {
		t.Errorf("invocation %+v", f.Inv)
	}

	// Two candidate directories: the working directory is unknown.
	fp.fd(t, 9, fp.root, dirFlags)
	f2, err := InspectParent(fp.dir, fp.pid)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if f2.Cwd != "" || f2.CwdErr == nil || !strings.Contains(f2.CwdErr.Error(), "2 open directories") {
		t.Errorf("two dir fds: cwd %q, %v", f2.Cwd, f2.CwdErr)
	}
}

func TestEffectiveConfig(t *testing.T) {
	type want struct {
		root, db string
		cache    []string
		conf     string
	}
	cases := []struct {
		name string
		argv string
		conf string // /etc/pacman.conf in the root
		want want
		err  string
	}{
		{name: "defaults", argv: "-S foo", conf: "[options]\n",
			want: want{"/", "/var/lib/pacman/", []string{"/var/cache/pacman/pkg/"}, "/etc/pacman.conf"}},
		{name: "cachedir stacks before the file's", argv: "--cachedir /X/ --cach=/Y -S foo", conf: "[options]\nCacheDir = /c1/ /c2/\n",
			want: want{"/", "/var/lib/pacman/", []string{"/X/", "/Y", "/c1/", "/c2/"}, "/etc/pacman.conf"}},
		{name: "relative cachedir is against the cwd", argv: "-S --cachedir cache foo", conf: "[options]\n",
			want: want{"/", "/var/lib/pacman/", []string{"/home/u/cache"}, "/etc/pacman.conf"}},
		{name: "root gives the dbpath default", argv: "-r R -S foo", conf: "[options]\n",
			want: want{"/home/u/R", "/home/u/R/var/lib/pacman/", []string{"/var/cache/pacman/pkg/"}, "/etc/pacman.conf"}},
		{name: "the file's DBPath beats the root default", argv: "--ro /home/u/R -S foo", conf: "[options]\nDBPath = /db/\n",
			want: want{"/home/u/R", "/db/", []string{"/var/cache/pacman/pkg/"}, "/etc/pacman.conf"}},
		{name: "command line beats the file", argv: "-bB -r/home/u/R -S foo", conf: "[options]\nRootDir = /nowhere\nDBPath = /nowhere/\n",
			want: want{"/home/u/R", "/home/u/B", []string{"/var/cache/pacman/pkg/"}, "/etc/pacman.conf"}},
		{name: "file RootDir gives its dbpath", argv: "-S foo", conf: "[options]\nRootDir = /home/u/R\n",
			want: want{"/home/u/R", "/home/u/R/var/lib/pacman/", []string{"/var/cache/pacman/pkg/"}, "/etc/pacman.conf"}},
		{name: "relative config and include", argv: "--config c2.conf -S foo", conf: "",
			want: want{"/", "/db", []string{"/inc/"}, "/home/u/c2.conf"}},
		{name: "symlinked dbpath is kept, resolved when opened", argv: "-b /dblink -S foo", conf: "[options]\n",
			want: want{"/", "/dblink", []string{"/var/cache/pacman/pkg/"}, "/etc/pacman.conf"}},
		{name: "missing dbpath", argv: "-b /nonexistent -S foo", conf: "[options]\n", err: "DBPath"},
		{name: "missing config", argv: "--config /none.conf -S foo", conf: "[options]\n", err: "none.conf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProc(t, "/usr/bin/pacman", append([]string{"pacman"}, strings.Fields(tc.argv)...), nil)
			r := fp.root
			for _, d := range []string{"var/lib/pacman", "home/u/R/var/lib/pacman", "home/u/B", "db"} {
				if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("/db", filepath.Join(r, "dblink")); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(r, "etc/pacman.conf"), tc.conf)
			write(t, filepath.Join(r, "home/u/c2.conf"), "[options]\nDBPath = /db\nInclude = inc.conf\n")
			write(t, filepath.Join(r, "home/u/inc.conf"), "CacheDir = /inc/\n")
			fp.fd(t, 7, filepath.Join(r, "home/u"), dirFlags)
			f, err := InspectParent(fp.dir, fp.pid)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c, err := f.EffectiveConfig(Limits{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{c.RootDir, c.DBPath, c.CacheDirs, c.Path}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestInspectRealProc runs a stand-in pacman (this test binary, copied as
// "pacman") that holds its former working directory open the way libalpm
// does while hooks run, and reads it through the real /proc.
func TestInspectRealProc(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "pacman")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fake, b, 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work dir")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(work, "pacman.conf"), "[options]\nDBPath = "+dir+"\n[core]\n")
	cmd := exec.Command(fake, "--config", "pacman.conf", "-U", "./foo-1.0-1-any.pkg.tar.zst", "--cachedir", dir)
	cmd.Env = append(os.Environ(), "BINTRANS_TEST_FAKE_PACMAN_CWD="+work)
	cmd.Dir = work
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("stand-in pacman: %q %v", line, err)
	}
	f, err := InspectParent("/proc", cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	realWork, _ := filepath.EvalSymlinks(work)
	if f.Exe != fake || f.Cwd != realWork {
		t.Errorf("exe %q cwd %q (%v); want %q %q", f.Exe, f.Cwd, f.CwdErr, fake, realWork)
	}
	files, _ := f.Inv.Upgrade()
	if !reflect.DeepEqual(files, []string{"./foo-1.0-1-any.pkg.tar.zst"}) {
		t.Errorf("-U files %q", files)
	}
	c, err := f.EffectiveConfig(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != realWork+"/pacman.conf" || c.DBPath != dir || !reflect.DeepEqual(c.CacheDirs, []string{dir}) || len(c.Repos) != 1 {
		t.Errorf("effective config %+v", c)
	}

	// This process is not pacman.
	_, err = InspectParent("/proc", os.Getpid())
	var fe *FrontendError
	if !errors.As(err, &fe) || fe.Kind != NotPacman {
		t.Errorf("test binary as parent: %v", err)
	}
}

// BenchmarkInspectParent: what the hook adds before verifying: reading the
// stand-in pacman through the real /proc (identity, command line, root,
// working directory) and its effective configuration.
func BenchmarkInspectParent(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	fake := filepath.Join(dir, "pacman")
	bin, err := os.ReadFile(self)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(fake, bin, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pacman.conf"), []byte("[options]\nDBPath = "+dir+"\n[core]\n[extra]\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(fake, "--config", "pacman.conf", "-U", "./foo-1.0-1-any.pkg.tar.zst", "--cachedir", dir)
	cmd.Env = append(os.Environ(), "BINTRANS_TEST_FAKE_PACMAN_CWD="+dir)
	cmd.Dir = dir
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		f, err := InspectParent("/proc", cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Request([]string{"foo"}, Limits{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
