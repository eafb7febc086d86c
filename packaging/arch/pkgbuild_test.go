// Package arch holds the Arch Linux packaging of bintrans (PKGBUILD) and
// its test: build with Debian's makepkg, install with pacman.
package arch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// goCacheEnv names a Go build cache for the nobody build; default: a
// directory under os.TempDir() kept between runs (a cold build of bintrans
// takes minutes).
const goCacheEnv = "BINTRANS_PKGBUILD_GOCACHE"

// TestPKGBUILD builds packaging/arch/PKGBUILD with Debian's makepkg as user
// nobody (--nodeps, offline: the source tarball is `git archive HEAD` plus
// `go mod vendor`), then installs the package into a pacman sandbox and
// checks that the binary runs inside the root, the hook lands where alpm
// reads it and runs there: with the shipped configuration (nothing
// configured yet) it refuses the next transaction — fail closed.
func TestPKGBUILD(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bintrans with makepkg (minutes when the Go cache is cold)")
	}
	makepkg := testenv.Tool(t, "makepkg")
	testenv.Tool(t, "fakeroot")
	runuser := testenv.Tool(t, "runuser")
	git := testenv.Tool(t, "git")
	goTool := testenv.Tool(t, "go")
	sb := testenv.NewSandbox(t, "core") // needs root, as runuser does

	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// A build directory nobody can reach (t.TempDir's parent is 0700).
	build, err := os.MkdirTemp("", "bintrans-pkgbuild-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(build) })
	src := filepath.Join(build, "bintrans-0.1.0")
	run(t, repo, nil, "sh", "-c", `"$0" archive --format=tar --prefix=bintrans-0.1.0/ HEAD | tar -x -C "$1"`, git, build)
	run(t, src, []string{"GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local"}, goTool, "mod", "vendor")
	run(t, build, nil, "tar", "-czf", "bintrans-0.1.0.tar.gz", "bintrans-0.1.0")
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	pkgbuild, err := os.ReadFile("PKGBUILD")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(build, "PKGBUILD"), pkgbuild, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv(goCacheEnv)
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "bintrans-pkgbuild-gocache")
	}
	if err := os.MkdirAll(filepath.Join(build, "home"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{build, cache} {
		run(t, "/", nil, "chown", "-R", "nobody:nogroup", d)
	}
	if err := os.Chmod(build, 0o755); err != nil {
		t.Fatal(err)
	}
	out := run(t, build, nil, runuser, "-u", "nobody", "--", "env", "-i",
		"PATH="+filepath.Dir(goTool)+":/usr/bin:/bin",
		"HOME="+filepath.Join(build, "home"),
		"GOCACHE="+cache,
		"GOPATH="+filepath.Join(build, "home", "go"),
		"GOPROXY=off", "GOTOOLCHAIN=local", "LC_ALL=C",
		makepkg, "--nodeps", "--noconfirm")
	pkgs, _ := filepath.Glob(filepath.Join(build, "bintrans-0.1.0-1-*.pkg.tar*"))
	if len(pkgs) != 1 {
		t.Fatalf("makepkg made %v\n%s", pkgs, out)
	}
	pkg := pkgs[0]

	// The package's metadata: the configuration is a backup file.
	pkginfo := run(t, build, nil, "bsdtar", "-xOf", pkg, ".PKGINFO")
	for _, want := range []string{"pkgname = bintrans\n", "pkgver = 0.1.0-1\n", "backup = etc/bintrans.conf\n"} {
		if !strings.Contains(pkginfo, want) {
			t.Errorf(".PKGINFO lacks %q:\n%s", want, pkginfo)
		}
	}

	// Install it with pacman from a repository.
	name := filepath.Base(pkg)
	if err := os.Rename(pkg, filepath.Join(sb.RepoDir("core"), name)); err != nil {
		t.Fatal(err)
	}
	testenv.RepoAdd(t, sb.RepoDB("core"), filepath.Join(sb.RepoDir("core"), name))
	if res := sb.Sync(t, nil, "bintrans"); res.Code != 0 {
		t.Fatalf("installing bintrans: %s", res)
	}
	for inRoot, want := range map[string]string{
		"usr/share/libalpm/hooks/bintrans.hook":             "../../hooks/bintrans.hook",
		"etc/bintrans.conf":                                 "../bintrans.conf.example",
		"usr/lib/systemd/system/bintrans-monitor.service":   "../../hooks/bintrans-monitor.service",
		"usr/lib/systemd/system/bintrans-monitor.timer":     "../../hooks/bintrans-monitor.timer",
		"usr/lib/systemd/system/bintrans-check-dbs.service": "../../hooks/bintrans-check-dbs.service",
		"usr/lib/systemd/system/bintrans-check-dbs.timer":   "../../hooks/bintrans-check-dbs.timer",
		"usr/lib/systemd/system/bintrans-sign.service":      "../../hooks/bintrans-sign.service",
		"usr/lib/systemd/system/bintrans-sign.timer":        "../../hooks/bintrans-sign.timer",
	} {
		got, err := os.ReadFile(filepath.Join(sb.Root, inRoot))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if w, err := os.ReadFile(want); err != nil || !bytes.Equal(got, w) {
			t.Errorf("/%s differs from %s (%v)", inRoot, want, err)
		}
	}
	for _, inRoot := range []string{
		"usr/share/man/man1/bintrans.1.gz", "usr/share/man/man1/bintrans-hook.1.gz", "usr/share/man/man1/bintrans-doctor.1.gz",
		"usr/share/bash-completion/completions/bintrans", "usr/share/zsh/site-functions/_bintrans",
		"usr/share/fish/vendor_completions.d/bintrans.fish",
	} {
		if _, err := os.Stat(filepath.Join(sb.Root, inRoot)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(sb.Root, "var/lib/bintrans")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/bintrans: %v %v, want a 0700 directory", fi, err)
	}
	// The binary runs inside the root (static: no libraries needed).
	if got := run(t, "/", nil, "chroot", sb.Root, "/usr/bin/bintrans", "version"); got != "bintrans 0.1.0-1\n" {
		t.Errorf("chroot bintrans version: %q", got)
	}

	// The installed hook runs on the next transaction: alpm reads
	// RootDir/usr/share/libalpm/hooks/, chroots, runs /usr/bin/bintrans
	// hook, which refuses (nothing configured yet), and nothing is installed.
	other := testenv.BuildPackage(t, sb.RepoDir("core"), testenv.Pkg{Name: "hello", Version: "1.0-1",
		Files: map[string]string{"usr/share/hello/README": "hello\n"}})
	testenv.RepoAdd(t, sb.RepoDB("core"), other)
	// -Syy: the db may have changed within the second of the last sync,
	// and the mirror's Last-Modified has one-second resolution (304).
	res := sb.Pacman(t, nil, "-Syy", "hello")
	if res.Code == 0 || !strings.Contains(res.Stdout+res.Stderr, "Verifying packages against the transparency log (bintrans)") ||
		!strings.Contains(res.Stdout+res.Stderr, "no transparency key configured") {
		t.Errorf("the installed hook did not refuse an unconfigured transaction: %s", res)
	}
	if _, ok := sb.Installed(t)["hello"]; ok {
		t.Error("hello installed although the hook refused")
	}
}

// run runs a command in dir and returns its stdout; any failure fails the
// test with the output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
