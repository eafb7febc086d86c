package testenv

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sandboxWithRepo(t *testing.T) *Sandbox {
	t.Helper()
	s := NewSandbox(t, "test")
	foo := BuildPackage(t, s.RepoDir("test"), Pkg{Name: "foo", Version: "1.0-1", Files: map[string]string{"usr/share/foo/hello": "hello\n"}})
	bar := BuildPackage(t, s.RepoDir("test"), Pkg{Name: "bar", Version: "2:3.1-2", Arch: "any", Depends: []string{"foo"}})
	RepoAdd(t, s.RepoDB("test"), foo, bar)
	return s
}

func TestSandboxInstalls(t *testing.T) {
	s := sandboxWithRepo(t)
	res := s.Sync(t, nil, "bar")
	if res.Code != 0 {
		t.Fatalf("install failed: %s", res)
	}
	if got, want := s.Installed(t), map[string]string{"foo": "1.0-1", "bar": "2:3.1-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("installed %v, want %v", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(s.Root, "usr/share/foo/hello")); err != nil || string(b) != "hello\n" {
		t.Errorf("installed file: %q, %v", b, err)
	}
	for _, f := range []string{"foo-1.0-1-any.pkg.tar.zst", "bar-2:3.1-2-any.pkg.tar.zst"} {
		if _, err := os.Stat(filepath.Join(s.CacheDir, f)); err != nil {
			t.Errorf("not cached: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.DBPath, "sync", "test.db")); err != nil {
		t.Errorf("sync db: %v", err)
	}
	if !strings.Contains(s.Log(t), "installed bar (2:3.1-2)") {
		t.Errorf("pacman.log lacks the install:\n%s", s.Log(t))
	}
}

// TestSandboxHookAborts proves the facts the bintrans hook is built on: a
// PreTransaction NeedsTargets hook runs chrooted into RootDir with cwd "/",
// after the downloads, gets the sorted target names (dependencies included)
// on stdin, and exit 1 with AbortOnFail installs nothing.
func TestSandboxHookAborts(t *testing.T) {
	s := sandboxWithRepo(t)
	s.InstallHostProgram(t, "/bin/sh")
	s.InstallFile(t, "/usr/bin/refuse", []byte(`#!/bin/sh
echo "cwd=$(pwd) args=$*" > /hook.out
for f in /var/cache/pacman/pkg/*.pkg.tar.zst; do echo "cached=$f" >> /hook.out; done
while read -r name; do echo "target=$name" >> /hook.out; done
echo "refused by test hook" >&2
exit 1
`), 0o755)
	s.InstallHook(t, "refuse", `[Trigger]
Operation = Install
Operation = Upgrade
Type = Package
Target = *

[Action]
Description = Refusing everything (test)
When = PreTransaction
Exec = /usr/bin/refuse one two
NeedsTargets
AbortOnFail
`)
	res := s.Sync(t, nil, "bar")
	if res.Code == 0 {
		t.Fatalf("transaction not aborted: %s", res)
	}
	if !strings.Contains(res.Stderr, "failed to run transaction hooks") || !strings.Contains(res.Stdout+res.Stderr, "refused by test hook") {
		t.Errorf("unexpected output: %s", res)
	}
	if got := s.Installed(t); len(got) != 0 {
		t.Errorf("installed %v after an aborted transaction", got)
	}
	out, err := os.ReadFile(filepath.Join(s.Root, "hook.out"))
	if err != nil {
		t.Fatal(err)
	}
	want := `cwd=/ args=one two
cached=/var/cache/pacman/pkg/bar-2:3.1-2-any.pkg.tar.zst
cached=/var/cache/pacman/pkg/foo-1.0-1-any.pkg.tar.zst
target=bar
target=foo
`
	if string(out) != want {
		t.Errorf("hook saw:\n%s\nwant:\n%s", out, want)
	}

	// A hook whose program exists only on the host cannot run.
	s.InstallHook(t, "refuse", "[Trigger]\nOperation = Install\nType = Package\nTarget = *\n[Action]\nWhen = PreTransaction\nExec = "+s.pacman+"\nAbortOnFail\n")
	os.Remove(filepath.Join(s.Root, s.pacman))
	res = s.Sync(t, nil, "bar")
	if res.Code == 0 || !strings.Contains(res.Stdout+res.Stderr, "execv failed") || len(s.Installed(t)) != 0 {
		t.Errorf("Exec outside the root: %s", res)
	}
}

// TestSandboxProc: a hook sees /proc in the root, its parent is pacman and
// its command line is pacman's; the mount is private to the transaction
// (the host's mount table never shows it). With NoProc there is no /proc.
func TestSandboxProc(t *testing.T) {
	s := sandboxWithRepo(t)
	s.InstallHostProgram(t, "/bin/sh")
	s.InstallHostProgram(t, "/bin/cat")
	s.InstallFile(t, "/usr/bin/probe", []byte(`#!/bin/sh
if [ -r /proc/$PPID/cmdline ]; then cat /proc/$PPID/cmdline > /hook.cmdline; else echo none > /hook.cmdline; fi
`), 0o755)
	s.InstallHook(t, "probe", "[Trigger]\nOperation = Install\nType = Package\nTarget = *\n[Action]\nWhen = PreTransaction\nExec = /usr/bin/probe\n")
	if res := s.Sync(t, nil, "foo"); res.Code != 0 {
		t.Fatal(res)
	}
	b, err := os.ReadFile(filepath.Join(s.Root, "hook.cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.ReplaceAll(string(b), "\x00", " "), "pacman --config "+s.Conf+" --noconfirm --color never -Syy foo "; !strings.HasSuffix(got, want) {
		t.Errorf("the hook read %q from its parent's cmdline, want …%q", got, want)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), s.Root) {
		t.Errorf("the sandbox's /proc mount leaked into the test's mount namespace:\n%s", mounts)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root, "proc")); len(ents) != 0 {
		t.Errorf("%s/proc is not empty outside the transaction", s.Root)
	}

	s.NoProc = true
	if res := s.Pacman(t, nil, "-S", "bar"); res.Code != 0 {
		t.Fatal(res)
	}
	if b, _ := os.ReadFile(filepath.Join(s.Root, "hook.cmdline")); string(b) != "none\n" {
		t.Errorf("NoProc: the hook saw %q", b)
	}
}
