package testenv

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var demo = Pkg{
	Name: "demo", Version: "1:1.2-3", Arch: "x86_64", Desc: "A demo   package",
	URL: "https://example.org", License: []string{"MIT"},
	Depends: []string{"glibc>=2.0", "bash"}, OptDepends: []string{"python: for scripts"},
	Files: map[string]string{"usr/share/demo/hello.txt": "hello\n", "usr/bin/demo": "#!/bin/sh\necho demo\n"},
}

const demoPKGBUILD = `pkgname=demo
pkgver=1.2
pkgrel=3
epoch=1
pkgdesc="A demo   package"
arch=('x86_64')
url="https://example.org"
license=('MIT')
depends=('glibc>=2.0' 'bash')
optdepends=('python: for scripts')
package() {
  mkdir -p "$pkgdir/usr/share/demo" "$pkgdir/usr/bin"
  printf 'hello\n' > "$pkgdir/usr/share/demo/hello.txt"
  printf '#!/bin/sh\necho demo\n' > "$pkgdir/usr/bin/demo"
}
`

// member returns one file of a package, read with bsdtar.
func member(t *testing.T, pkg, name string) string {
	t.Helper()
	out, err := exec.Command(Tool(t, "bsdtar"), "-xOqf", pkg, name).Output()
	if err != nil {
		t.Fatalf("bsdtar -xOf %s %s: %v", pkg, name, err)
	}
	return string(out)
}

func listing(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command(Tool(t, "bsdtar"), "-tvf", pkg).Output()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch f := strings.Fields(l); {
		case strings.HasSuffix(l, " .BUILDINFO"):
		case strings.HasSuffix(l, " .PKGINFO"), strings.HasSuffix(l, " .MTREE"):
			lines = append(lines, strings.Join(append(f[:4:4], f[5:]...), " ")) // without the size
		default:
			lines = append(lines, l)
		}
	}
	return lines
}

func withoutComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func gunzipString(t *testing.T, s string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "./.BUILDINFO "):
		case strings.HasPrefix(l, "./.PKGINFO "):
			out = append(out, strings.Fields(l)[0]) // without size and digests
		default:
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestBuildPackageMatchesMakepkg builds the same package with Debian's
// makepkg (as user nobody when run as root) and with BuildPackage, and
// compares .PKGINFO, .MTREE and the tar listing (owners, modes, mtimes,
// order). makepkg's .BUILDINFO, which BuildPackage leaves out, is ignored,
// and so are the sizes and digests of .PKGINFO, whose comment line names
// its generator. makepkg takes 2 s on an idle machine and over 30 s on a
// busy one, so this test runs only with BINTRANS_TEST_MAKEPKG=1 (the layout
// changes only with this file); TestBuildPackageInstalls always runs.
func TestBuildPackageMatchesMakepkg(t *testing.T) {
	if os.Getenv("BINTRANS_TEST_MAKEPKG") == "" {
		t.Skip("set BINTRANS_TEST_MAKEPKG=1 to compare with a makepkg build")
	}
	makepkg := Tool(t, "makepkg")
	Tool(t, "fakeroot")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "PKGBUILD"), []byte(demoPKGBUILD), 0o644); err != nil {
		t.Fatal(err)
	}
	env := "PKGDEST=" + dir + " SOURCE_DATE_EPOCH=1700000000 PKGEXT=.pkg.tar.zst PACKAGER='bintrans tests <tests@bintrans.invalid>'"
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		// t.TempDir's parent is 0700: let nobody through.
		if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chown", "-R", "nobody", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
		cmd = exec.Command("su", "nobody", "-s", "/bin/sh", "-c", "cd "+dir+" && env "+env+" "+makepkg+" --nodeps --noconfirm -f")
	} else {
		cmd = exec.Command("sh", "-c", "env "+env+" "+makepkg+" --nodeps --noconfirm -f")
		cmd.Dir = dir
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("makepkg: %v\n%s", err, out)
	}
	ref := filepath.Join(dir, "demo-1:1.2-3-x86_64.pkg.tar.zst")

	p := demo
	p.Packager = "bintrans tests <tests@bintrans.invalid>"
	ours := BuildPackage(t, t.TempDir(), p)
	if filepath.Base(ours) != filepath.Base(ref) {
		t.Fatalf("file name %s, makepkg %s", filepath.Base(ours), filepath.Base(ref))
	}
	if a, b := withoutComments(member(t, ours, ".PKGINFO")), withoutComments(member(t, ref, ".PKGINFO")); a != b {
		t.Errorf(".PKGINFO differs:\nours\n%s\nmakepkg\n%s", a, b)
	}
	if a, b := gunzipString(t, member(t, ours, ".MTREE")), gunzipString(t, member(t, ref, ".MTREE")); a != b {
		t.Errorf(".MTREE differs:\nours\n%s\nmakepkg\n%s", a, b)
	}
	if a, b := listing(t, ours), listing(t, ref); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("listing differs:\nours\n%s\nmakepkg\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	// Same input, same bytes.
	again := BuildPackage(t, t.TempDir(), p)
	x, _ := os.ReadFile(ours)
	y, _ := os.ReadFile(again)
	if !bytes.Equal(x, y) {
		t.Error("BuildPackage is not deterministic")
	}
}

// TestBuildPackageInstalls installs a built package with Debian's pacman
// 6.0.2 into a throw-away root and checks it against its .MTREE (-Qkk).
func TestBuildPackageInstalls(t *testing.T) {
	pacman := Tool(t, "pacman")
	var prefix []string
	if os.Geteuid() != 0 {
		prefix = []string{Tool(t, "fakeroot")}
	}
	dir := t.TempDir()
	p := demo
	p.Size = 100_000
	pkg := BuildPackage(t, dir, p)
	for _, d := range []string{"root", "db", "cache", "gpg", "hooks"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := "[options]\nRootDir = " + dir + "/root\nDBPath = " + dir + "/db/\nCacheDir = " + dir + "/cache/\nLogFile = " + dir +
		"/pacman.log\nGPGDir = " + dir + "/gpg/\nHookDir = " + dir + "/hooks/\nArchitecture = auto\nSigLevel = Never\n"
	if err := os.WriteFile(filepath.Join(dir, "pacman.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		argv := append(append(prefix, pacman, "--config", filepath.Join(dir, "pacman.conf"), "--noconfirm"), args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("pacman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("-U", "--nodeps", "--nodeps", pkg)
	if out := run("-Qkk", "demo"); !strings.Contains(out, "0 altered files") {
		t.Fatalf("pacman -Qkk: %s", out)
	}
	if out := run("-Qi", "demo"); !strings.Contains(out, "1:1.2-3") || !strings.Contains(out, "python: for scripts") {
		t.Fatalf("pacman -Qi: %s", out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "root/usr/share/demo/payload.bin"))
	if err != nil || len(got) != 100_000 {
		t.Fatalf("payload: %d bytes, %v", len(got), err)
	}
}
