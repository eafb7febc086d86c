package pacman

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRootFSResolvesInRoot: paths, absolute symlinks and ".." resolve as
// for a process chrooted into the root, not as the caller sees them.
func TestRootFSResolvesInRoot(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "srv/pkgs/foo.pkg"), "inside")
	write(t, filepath.Join(root, "etc/pacman.conf"), "conf")
	// The same absolute path exists on the host with other content only
	// when the test can create it; the symlink must never leave the root.
	if err := os.MkdirAll(filepath.Join(root, "var/cache/pacman/pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("/srv/pkgs/foo.pkg", filepath.Join(root, "var/cache/pacman/pkg/abs.pkg")))
	must(os.Symlink("../../../../srv/pkgs/foo.pkg", filepath.Join(root, "var/cache/pacman/pkg/rel.pkg")))
	must(os.Symlink("../../../../../../../../../srv/pkgs/foo.pkg", filepath.Join(root, "var/cache/pacman/pkg/dotdot.pkg")))
	must(os.Symlink("/proc/self/exe", filepath.Join(root, "var/cache/pacman/pkg/magic.pkg")))
	must(os.Symlink("loop.pkg", filepath.Join(root, "var/cache/pacman/pkg/loop.pkg")))
	must(syscall.Mkfifo(filepath.Join(root, "var/cache/pacman/pkg/fifo.pkg"), 0o644))

	r, err := OpenRootFS(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range []string{"/srv/pkgs/foo.pkg", "/var/cache/pacman/pkg/abs.pkg", "/var/cache/pacman/pkg/rel.pkg", "/var/cache/pacman/pkg/dotdot.pkg", "/../../srv/pkgs/foo.pkg"} {
		f, err := r.OpenRegular(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := readAll(t, f); got != "inside" {
			t.Errorf("%s: read %q", p, got)
		}
		if st, err := r.Stat(p); err != nil || !st.Mode().IsRegular() {
			t.Errorf("Stat %s: %v %v", p, st, err)
		}
	}
	if _, err := r.OpenRegular("/var/cache/pacman/pkg/missing.pkg"); !IsAbsent(err) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := r.OpenRegular("/srv/pkgs/foo.pkg/x"); !IsAbsent(err) {
		t.Errorf("path through a file (ENOTDIR) is absence: %v", err)
	}
	// /proc/self/exe is looked up in the root, which has no /proc.
	if _, err := r.OpenRegular("/var/cache/pacman/pkg/magic.pkg"); !IsAbsent(err) {
		t.Errorf("symlink to /proc/self/exe: %v, want absence inside the root", err)
	}
	// In a root with /proc, magic links are refused (never absent).
	host, err := OpenRootFS("/")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if _, err := host.OpenRegular("/proc/self/exe"); err == nil || IsAbsent(err) {
		t.Errorf("magic link: %v, want a refusal that is not absence", err)
	}
	if _, err := r.OpenRegular("/var/cache/pacman/pkg/loop.pkg"); err == nil || IsAbsent(err) {
		t.Errorf("symlink loop: %v, want an error that is not absence", err)
	}
	var nr *NotRegularError
	if _, err := r.OpenRegular("/var/cache/pacman/pkg/fifo.pkg"); !errors.As(err, &nr) {
		t.Errorf("FIFO: %v, want *NotRegularError", err)
	}
	if _, err := r.OpenRegular("/var/cache/pacman/pkg"); !errors.As(err, &nr) {
		t.Errorf("directory: %v, want *NotRegularError", err)
	}
	// fs.FS view for the configuration parser.
	if b, err := fs.ReadFile(r, "etc/pacman.conf"); err != nil || string(b) != "conf" {
		t.Errorf("fs.ReadFile: %q %v", b, err)
	}
	if m, err := fs.Glob(r, "srv/pkgs/*.pkg"); err != nil || len(m) != 1 {
		t.Errorf("fs.Glob: %v %v", m, err)
	}
	if _, err := r.Open("/etc/pacman.conf"); err == nil {
		t.Error("fs.FS accepted a rooted name")
	}
}

func TestPathOf(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "home/user/build dir")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("home/user", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRootFS(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for dir, want := range map[string]string{deep: "/home/user/build dir", root: "/", filepath.Join(root, "link"): "/home/user"} {
		d, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.PathOf(d, "")
		d.Close()
		if err != nil || got != want {
			t.Errorf("PathOf(%s) = %q, %v; want %q", dir, got, err, want)
		}
	}
	outside, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	if p, err := r.PathOf(outside, ""); err == nil {
		t.Errorf("a directory outside the root got path %q", p)
	}
}

func TestJoin(t *testing.T) {
	for _, tc := range []struct{ cwd, p, want string }{
		{"/home/u", "a.pkg", "/home/u/a.pkg"},
		{"/", "./a.pkg", "/./a.pkg"},
		{"/home/u", "../x/a.pkg", "/home/u/../x/a.pkg"},
		{"", "/abs", "/abs"},
	} {
		if got, ok := join(tc.cwd, tc.p); !ok || got != tc.want {
			t.Errorf("join(%q, %q) = %q %v", tc.cwd, tc.p, got, ok)
		}
	}
	if _, ok := join("", "rel"); ok {
		t.Error("relative path without a working directory")
	}
}
