package rootfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const nobody = 65534

// tree is a root-owned directory tree under a fresh temporary directory
// (whose parents, /tmp included, pass the rule: /tmp is sticky and the
// temporary directory is root's).
func tree(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the rule is about root's files and chown")
	}
	d := t.TempDir()
	if err := CheckAlways(d); err != nil {
		t.Skipf("the test's temporary directory itself fails the rule: %v", err)
	}
	return d
}

func write(t *testing.T, p string, mode fs.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("pubkey = RW...\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustChmod(t *testing.T, p string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mustChown(t *testing.T, p string, uid int) {
	t.Helper()
	if err := os.Lchown(p, uid, -1); err != nil {
		t.Fatal(err)
	}
}

// insecure asserts that err is an *InsecureError blaming culprit for why,
// with a message that names the file, the culprit, the owner and the mode,
// and a hint that says how to fix it.
func insecure(t *testing.T, err error, path, culprit, why, hint string) {
	t.Helper()
	var ie *InsecureError
	if !errors.As(err, &ie) {
		t.Fatalf("err %v, want *InsecureError", err)
	}
	if ie.Culprit != culprit || !strings.Contains(ie.Reason, why) {
		t.Errorf("culprit %q (%s), want %q (%s)", ie.Culprit, ie.Reason, culprit, why)
	}
	msg := err.Error()
	for _, want := range []string{path, "refusing to use it as root", "owner uid", "mode "} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if !strings.Contains(ie.Hint(), hint) || !strings.Contains(ie.Hint(), culprit) {
		t.Errorf("hint %q, want %q about %s", ie.Hint(), hint, culprit)
	}
}

func TestSecureFile(t *testing.T) {
	d := tree(t)
	for _, mode := range []fs.FileMode{0o600, 0o644, 0o444, 0o755} {
		p := write(t, filepath.Join(d, "etc", "bintrans.conf"), mode)
		if err := CheckAlways(p); err != nil {
			t.Errorf("mode %v: %v", mode, err)
		}
	}
	if err := CheckAlways(filepath.Join(d, "etc", "missing.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := CheckAlways("/dev/null"); err != nil {
		t.Errorf("/dev/null: %v", err)
	}
	if err := CheckAlways("/dev/zero"); err == nil {
		t.Error("/dev/zero (a device anyone can write, that reads something) accepted")
	}
}

func TestInsecureFile(t *testing.T) {
	d := tree(t)
	p := write(t, filepath.Join(d, "etc", "bintrans.conf"), 0o666)
	insecure(t, CheckAlways(p), p, p, "writable by its group and others", "chmod go-w")
	mustChmod(t, p, 0o620)
	insecure(t, CheckAlways(p), p, p, "writable by its group", "chmod go-w")
	mustChmod(t, p, 0o644)
	mustChown(t, p, nobody)
	insecure(t, CheckAlways(p), p, p, "not owned by root", "chown root:root")
	if Enforced() && Check(p) == nil {
		t.Error("Check (as root) accepted a file nobody owns")
	}
}

func TestInsecureDirectoryAbove(t *testing.T) {
	d := tree(t)
	p := write(t, filepath.Join(d, "a", "b", "key.pem"), 0o644)
	b := filepath.Dir(p)
	a := filepath.Dir(b)
	mustChmod(t, a, 0o777)
	insecure(t, CheckAlways(p), p, a, "writable by its group and others", "chmod go-w")
	mustChmod(t, a, 0o775)
	insecure(t, CheckAlways(p), p, a, "writable by its group", "chmod go-w")
	mustChmod(t, a, 0o755)
	mustChown(t, b, nobody)
	insecure(t, CheckAlways(p), p, b, "not owned by root", "chown root:root")
	mustChown(t, b, 0)
	if err := CheckAlways(p); err != nil {
		t.Errorf("fixed: %v", err)
	}
}

// TestStickyDirectory: a sticky directory others can write (like /tmp) is
// accepted when the entry below it is root's: nobody else can rename it.
func TestStickyDirectory(t *testing.T) {
	d := tree(t)
	tmp := filepath.Join(d, "tmp")
	p := write(t, filepath.Join(tmp, "work", "bintrans.conf"), 0o644)
	mustChmod(t, tmp, 0o777|fs.ModeSticky)
	if err := CheckAlways(p); err != nil {
		t.Errorf("root's directory in a sticky one: %v", err)
	}
	work := filepath.Join(tmp, "work")
	mustChown(t, work, nobody)
	insecure(t, CheckAlways(p), p, work, "in a directory others can write", "chown root:root")
	mustChown(t, work, 0)
	// A file directly in the sticky directory, someone else's.
	q := write(t, filepath.Join(tmp, "conf"), 0o644)
	mustChown(t, q, nobody)
	insecure(t, CheckAlways(q), q, q, "not owned by root", "chown root:root")
	// Not sticky: refused whoever owns the entry.
	mustChmod(t, tmp, 0o777)
	insecure(t, CheckAlways(p), p, tmp, "writable by its group and others", "chmod go-w")
}

// TestSymlinks: links are followed; the directories of their targets are
// held to the rule, and a link in a sticky directory must be root's.
func TestSymlinks(t *testing.T) {
	d := tree(t)
	real := write(t, filepath.Join(d, "srv", "keys", "rekor.pem"), 0o644)
	link := filepath.Join(d, "etc", "rekor.pem")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../srv/keys/rekor.pem", link); err != nil {
		t.Fatal(err)
	}
	if err := CheckAlways(link); err != nil {
		t.Fatalf("a link into a root-only directory: %v", err)
	}
	keys := filepath.Dir(real)
	mustChmod(t, keys, 0o757)
	insecure(t, CheckAlways(link), link, keys, "writable by others", "chmod go-w")
	mustChmod(t, keys, 0o755)

	// An absolute link through a link to a directory.
	dirLink := filepath.Join(d, "keys")
	if err := os.Symlink(keys, dirLink); err != nil {
		t.Fatal(err)
	}
	if err := CheckAlways(filepath.Join(dirLink, "rekor.pem")); err != nil {
		t.Errorf("through a link to a directory: %v", err)
	}

	// A link in a sticky directory, owned by someone else: refused.
	sticky := filepath.Join(d, "tmp")
	if err := os.MkdirAll(sticky, 0o777); err != nil {
		t.Fatal(err)
	}
	mustChmod(t, sticky, 0o777|fs.ModeSticky)
	planted := filepath.Join(sticky, "bintrans.conf")
	if err := os.Symlink(real, planted); err != nil {
		t.Fatal(err)
	}
	mustChown(t, planted, nobody)
	insecure(t, CheckAlways(planted), planted, planted, "in a directory others can write", "chown root:root")

	// A loop.
	loop := filepath.Join(d, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	if err := CheckAlways(loop); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("loop: %v", err)
	}
}

// TestNotRoot: an unprivileged run checks nothing.
func TestNotRoot(t *testing.T) {
	if Enforced() {
		t.Skip("runs as root")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := Check(p); err != nil {
		t.Errorf("Check as an unprivileged user: %v", err)
	}
}
