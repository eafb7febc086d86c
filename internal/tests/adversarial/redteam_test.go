package adversarial

// Red-team findings (branch redteam, /work/notes/redteam.md): each test is
// an attack through Debian's real pacman 6.0.2 with the hook as shipped,
// SigLevel = Never standing in for an attacker past pacman's own checks.
// Each test asserts the SECURE outcome, so it FAILS while the attack
// works. Severity, root cause and proposed fix are in each comment.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// editPacmanConf rewrites the sandbox's pacman.conf.
func editPacmanConf(t *testing.T, s *testenv.Sandbox, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(s.Conf)
	if err != nil {
		t.Fatal(err)
	}
	out := edit(string(b))
	if out == string(b) {
		t.Fatal("pacman.conf edit changed nothing")
	}
	if err := os.WriteFile(s.Conf, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// attackFailed asserts the secure outcome of an attack whose payload is
// name's build evil: pacman must not have installed it. When it did, the
// test fails and says whether bintrans claimed to have verified the
// transaction (a critical fail-open) or not.
func attackFailed(t *testing.T, s *testenv.Sandbox, res testenv.PacmanResult, name, evil string) {
	t.Helper()
	out := res.Stdout + res.Stderr
	t.Logf("%s", res)
	if got := content(t, s.Root, name); got == evil {
		verified := res.Code == 0 && strings.Contains(out, "Verifying packages against the transparency log") && strings.Contains(out, "verified")
		if verified {
			t.Errorf("ATTACK SUCCEEDED: pacman installed the unlogged %q while bintrans said %q", evil, grepLine(out, "bintrans:"))
		} else {
			t.Errorf("ATTACK SUCCEEDED: pacman installed the unlogged %q (exit %d)", evil, res.Code)
		}
	}
}

func grepLine(out, sub string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, sub) {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return strings.Join(lines, " | ")
}

// lineOf is the 1-based number of the first line of the file that
// contains sub.
func lineOf(t *testing.T, file, sub string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, sub) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", file, sub)
	return 0
}

// TestRedTeamConfIncludeGlobNegation — severity: critical in effect
// (unlogged bytes installed with "1 packages verified"), precondition: a
// pacman.conf whose Include uses glob(3) negation, e.g.
// `Include = /etc/pacman.d/repos/[!_]*.conf` ("every repository file that
// is not a disabled _template"), a legitimate pacman.conf written by the
// administrator; the attacker is only the mirror of a repository included
// that way.
//
// Attack: pacman expands Include with glibc glob(3), where `[!_]` is a
// negated bracket expression. bintrans expanded it with Go's fs.Glob /
// path.Match, where `!` is an ordinary member of the bracket: `[!_]*.conf`
// matched `_template.conf` for bintrans, every other file for pacman. So
// pacman registered [evil] (from 10-evil.conf) and bintrans never saw it.
// The repository comes first in pacman.conf, so `pacman -Syu` took foo
// 6.6-1 from it, while the hook checked the only foo it knew, core's
// logged, cached foo-1.0-1, and printed "verified".
//
// Fixed (internal/pacman/confglob.go, confgroup.go): bintrans expands the
// locale-independent part of glob(3) exactly (`*`, `?`, literal
// components, no wildcard match of a leading '.', GLOB_NOCHECK), checked
// against glibc's glob(3) and pacman-conf; it refuses bracket expressions,
// escapes, '..', non-ASCII names where a wildcard matches, and every
// configuration whose value depends on the (strcoll) order of one
// Include's files. The attack is refused at the Include's line; the same
// configuration with a plain `*` makes the hook see [evil] and refuse its
// unlogged foo; a logged package of a repository included that way
// installs.
func TestRedTeamConfIncludeGlobNegation(t *testing.T) {
	w := newHookWorld(t, "core")
	s := w.s
	coreFoo := w.logged(t, w.build(t, s.RepoDir("core"), "foo", "1.0-1", "core"))
	testenv.RepoAdd(t, s.RepoDB("core"), coreFoo)
	res := s.Sync(t, nil, "foo")
	w.installed(t, res, s.Root, "foo", "foo 1.0-1 core")

	// The mirror of the third-party repository [evil] serves an unlogged
	// foo, and a logged bar.
	evilFoo := w.build(t, s.RepoDir("evil"), "foo", "6.6-1", "evil-unlogged")
	evilBar := w.logged(t, w.build(t, s.RepoDir("evil"), "bar", "1.0-1", "evil"))
	testenv.RepoAdd(t, filepath.Join(s.RepoDir("evil"), "evil.db.tar.gz"), evilFoo, evilBar)

	repos := filepath.Join(s.Root, "etc", "pacman.d", "repos")
	if err := os.MkdirAll(repos, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"10-evil.conf":   "[evil]\nServer = " + s.URL + "/$repo\n",
		"_template.conf": "# copy me to NN-name.conf to enable a repository\n",
	} {
		if err := os.WriteFile(filepath.Join(repos, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stock, err := os.ReadFile(s.Conf)
	if err != nil {
		t.Fatal(err)
	}
	include := func(pattern string) {
		t.Helper()
		if err := os.WriteFile(s.Conf, stock, 0o644); err != nil {
			t.Fatal(err)
		}
		editPacmanConf(t, s, func(c string) string {
			return strings.Replace(c, "\n[core]\n", "\nInclude = "+repos+"/"+pattern+"\n\n[core]\n", 1)
		})
	}
	state := func() (map[string]string, map[string]string) {
		return s.Installed(t), map[string]string{"foo": content(t, s.Root, "foo"), "bar": content(t, s.Root, "bar")}
	}

	t.Run("bracket-negation-refused", func(t *testing.T) {
		include("[!_]*.conf")
		before, files := state()
		res := s.Pacman(t, nil, "-Syu")
		attackFailed(t, s, res, "foo", "foo 6.6-1 evil-unlogged")
		w.refused(t, res, before, files, fmt.Sprintf("%s:%d", s.Conf, lineOf(t, s.Conf, "Include = "+repos)),
			"a bracket expression")
		if out := res.Stdout + res.Stderr; !strings.Contains(out, "bintrans: cannot read pacman's configuration as pacman does") || !strings.Contains(out, "\nhint: list the files one Include each") {
			t.Errorf("want the configuration refusal:\n%s", res)
		}
	})
	t.Run("star-sees-the-repository", func(t *testing.T) {
		include("*.conf")
		before, files := state()
		res := s.Pacman(t, nil, "-Syu")
		attackFailed(t, s, res, "foo", "foo 6.6-1 evil-unlogged")
		w.refused(t, res, before, files, "REFUSED evil/"+filepath.Base(evilFoo))
	})
	t.Run("star-logged-package-installs", func(t *testing.T) {
		include("*.conf")
		res := s.Pacman(t, nil, "-S", "bar")
		w.installed(t, res, s.Root, "bar", "bar 1.0-1 evil")
	})
}

// TestRedTeamConfLineOf4096Bytes — severity: critical in effect (unlogged
// bytes installed with "verified"), precondition: a pacman.conf line of
// 4096 bytes (odd syntax; whoever writes pacman.conf is root, so this is a
// parser-differential bug more than a practical attack: low).
//
// Attack: pacman reads pacman.conf with fgets(line, PATH_MAX=4096), i.e.
// at most 4095 bytes per read: a longer line is two lines to pacman. A
// line of 4093 spaces + "[x]" was a section header [x] to bintrans
// (trimmed) and two unknown directives "[x" and "]" to pacman, which
// stayed in [options]. So a DBPath that followed was pacman's DBPath (the
// first one wins) and a directive of a repository section to bintrans.
// pacman synced and installed from its own (hidden) DBPath, while the hook
// read the stale databases of the DBPath it believed in.
//
// Fixed (internal/pacman/conf.go): bintrans reads lines as fgets does
// (split at '\n' only, a '\r' counts) and refuses, with the file and line,
// every line longer than 4095 bytes, its end of line included (pacman-conf
// differential: TestLineLengthAgreesWithPacmanConf). A 4095-byte line
// still works.
func TestRedTeamConfLineOf4096Bytes(t *testing.T) {
	w := newHookWorld(t, "core")
	s := w.s
	coreFoo := w.logged(t, w.build(t, s.RepoDir("core"), "foo", "1.0-1", "core"))
	testenv.RepoAdd(t, s.RepoDB("core"), coreFoo)
	res := s.Sync(t, nil, "foo")
	w.installed(t, res, s.Root, "foo", "foo 1.0-1 core")

	// The mirror now serves an unlogged foo 2.0-1, and a logged bar.
	evilFoo := w.build(t, s.RepoDir("core"), "foo", "2.0-1", "evil-unlogged")
	bar := w.logged(t, w.build(t, s.RepoDir("core"), "bar", "1.0-1", "core"))
	testenv.RepoAdd(t, s.RepoDB("core"), evilFoo, bar)

	// pacman's DBPath, hidden from bintrans: same local database.
	hidden := filepath.Join(s.Root, "var", "lib", "pacman-hidden")
	if err := os.MkdirAll(filepath.Join(hidden, "sync"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(s.DBPath, "local"), filepath.Join(hidden, "local")); err != nil {
		t.Fatal(err)
	}
	stock, err := os.ReadFile(s.Conf)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("4096-byte-line-refused", func(t *testing.T) {
		long := strings.Repeat(" ", 4093) + "[x]"
		editPacmanConf(t, s, func(c string) string {
			return strings.Replace(c, "[options]\n", "[options]\n"+long+"\nDBPath = "+hidden+"/\n[options]\n", 1)
		})
		before, files := s.Installed(t), map[string]string{"foo": content(t, s.Root, "foo")}
		res := s.Pacman(t, nil, "-Syu")
		attackFailed(t, s, res, "foo", "foo 2.0-1 evil-unlogged")
		w.refused(t, res, before, files, fmt.Sprintf("%s:%d: line of 4097 bytes", s.Conf, lineOf(t, s.Conf, "[x]")),
			"pacman reads at most 4095 bytes per line")
	})
	t.Run("4095-byte-line-works", func(t *testing.T) {
		if err := os.WriteFile(s.Conf, stock, 0o644); err != nil {
			t.Fatal(err)
		}
		long := "#" + strings.Repeat(" ", 4093) // + "\n": 4095 bytes
		editPacmanConf(t, s, func(c string) string {
			return strings.Replace(c, "[options]\n", "[options]\n"+long+"\n", 1)
		})
		res := s.Pacman(t, nil, "-Sy", "bar")
		w.installed(t, res, s.Root, "bar", "bar 1.0-1 core")
	})
}

// repackWithPkgInfo rewrites the .PKGINFO of package pkg (keeping every
// other member and makepkg's member order) and returns the new file,
// written to dir under the same name.
func repackWithPkgInfo(t *testing.T, pkg, dir string, edit func(string) string) string {
	t.Helper()
	tmp := t.TempDir()
	run := func(dir, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run(tmp, "bsdtar", "-xpf", pkg)
	pi := filepath.Join(tmp, ".PKGINFO")
	b, err := os.ReadFile(pi)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pi, []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	run(tmp, "sh", "-c", `LC_ALL=C bsdtar --no-fflags -cf - --uid 0 --gid 0 --uname root --gname root .MTREE .PKGINFO usr | zstd -c -z -q - > "$0"`, out)
	return out
}

// TestRedTeamPkgInfoFirstVersusLast — severity: medium (unlogged bytes
// installed with "verified"; precondition: a logged package whose
// .PKGINFO carries a second pkgname line, released by a packager and
// logged by the operator, installed with pacman -U, e.g. from an archive).
//
// Attack: for a `pacman -U` file the hook learnt which target name the
// file stands for from its .PKGINFO, read by ReadPkgInfo, which kept the
// FIRST value of each key and split at any '='. libalpm (be_package.c
// parse_descfile) keeps the LAST value and needs " = ". A .PKGINFO
// "pkgname = bar … pkgname = foo … depend = bar" was bar to bintrans and
// foo to libalpm. The hook marked "bar" as covered by the -U file and never
// looked at the sync candidates of bar; libalpm installed the -U file as
// foo and pulled its dependency bar, the mirror's unlogged bar-2.0-1, from
// the sync database: "2 packages verified".
//
// Fixed: (1) a -U file never removes a name from the repository check
// (plan.go): every cached repository candidate of every target name must
// verify, whatever the -U files say; a name a -U file stands for only
// needs no cached candidate; --unsafe-allow-local never applies to a
// repository file. (2) .PKGINFO is read as parse_descfile reads it, and a
// repeated pkgname/pkgver/arch, a line naming one of them that is not
// exactly "key = value", a NUL, two .PKGINFO members or a name makepkg
// cannot write make the file stand for no name (pkginfo.go; checked
// against libalpm's alpm_pkg_load in TestReadPkgInfoAgreesWithLibalpm and
// FuzzReadPkgInfoLibalpm). The attack is refused naming bar's repository
// file, with and without --unsafe-allow-local, nothing installed; a
// genuine -U file whose dependency comes from the repository installs.
func TestRedTeamPkgInfoFirstVersusLast(t *testing.T) {
	w := newHookWorld(t, "core")
	s := w.s
	coreFoo := w.logged(t, w.build(t, s.RepoDir("core"), "foo", "1.0-1", "core"))
	// The mirror's unlogged bar (the payload), in core's database, and a
	// logged baz.
	evilBar := w.build(t, s.RepoDir("core"), "bar", "2.0-1", "evil-unlogged")
	baz := w.logged(t, w.build(t, s.RepoDir("core"), "baz", "1.0-1", "core"))
	testenv.RepoAdd(t, s.RepoDB("core"), coreFoo, evilBar, baz)
	res := s.Sync(t, nil, "foo")
	w.installed(t, res, s.Root, "foo", "foo 1.0-1 core")

	// A logged foo-1.0-2 whose .PKGINFO names bar first and foo last, and
	// depends on bar: an innocent-looking release in an archive.
	archive := filepath.Join(s.Dir, "archive")
	plain := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: "foo", Version: "1.0-2", Desc: "archive",
		Depends: []string{"bar"}, Files: map[string]string{"usr/share/foo/version": "foo 1.0-2 archive\n"}})
	crafted := repackWithPkgInfo(t, plain, archive, func(pi string) string {
		return strings.Replace(pi, "pkgname = foo\n", "pkgname = bar\npkgname = foo\n", 1)
	})
	w.logged(t, crafted)
	state := func() (map[string]string, map[string]string) {
		return s.Installed(t), map[string]string{"foo": content(t, s.Root, "foo"), "bar": content(t, s.Root, "bar")}
	}
	badBar := "REFUSED core/" + filepath.Base(evilBar)

	t.Run("refused", func(t *testing.T) {
		before, files := state()
		res := s.Pacman(t, nil, "-U", crafted)
		attackFailed(t, s, res, "bar", "bar 2.0-1 evil-unlogged")
		w.refused(t, res, before, files, badBar, "missing-signature")
	})
	t.Run("refused-with-unsafe-allow-local", func(t *testing.T) {
		w.setConf(t, "unsafe-allow-local = true")
		defer w.setConf(t)
		before, files := state()
		res := s.Pacman(t, nil, "-U", crafted)
		attackFailed(t, s, res, "bar", "bar 2.0-1 evil-unlogged")
		w.refused(t, res, before, files, badBar, "missing-signature")
	})
	t.Run("genuine-file-with-a-repository-dependency-installs", func(t *testing.T) {
		genuine := w.logged(t, testenv.BuildPackage(t, archive, testenv.Pkg{Name: "foo", Version: "1.0-3", Desc: "archive",
			Depends: []string{"baz"}, Files: map[string]string{"usr/share/foo/version": "foo 1.0-3 archive\n"}}))
		res := s.Pacman(t, nil, "-U", genuine)
		w.installed(t, res, s.Root, "foo", "foo 1.0-3 archive")
		if got := content(t, s.Root, "baz"); got != "baz 1.0-1 core" {
			t.Errorf("baz on disk is %q", got)
		}
	})
}

// TestHookPolicyNotFromEnvironment: the red team's minor finding. The hook
// runs as root in pacman's environment, which `sudo -E`, env_keep, `su` or
// a wrapper hand down from a user; $BINTRANS_CONFIG there named the hook's
// policy file, so a second, weaker root-owned configuration (one written
// for `bintrans verify` with unsafe-allow-local, say) could be switched in
// from outside. The hook now ignores $BINTRANS_CONFIG, says so, and reads
// /etc/bintrans.conf (or the --config of the root-owned hook file).
func TestHookPolicyNotFromEnvironment(t *testing.T) {
	w := newHookWorld(t, "core")
	s := w.s
	unlogged := w.build(t, filepath.Join(s.Dir, "archive"), "foo", "0.9-1", "unlogged")
	// The weaker policy, root-owned like the real one, inside the root the
	// hook is chrooted into.
	policy, err := os.ReadFile(filepath.Join(s.Root, "etc/bintrans.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root, "etc/bintrans-verify.conf"), append(policy, "unsafe-allow-local\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"BINTRANS_CONFIG=/etc/bintrans-verify.conf"}

	before := s.Installed(t)
	res := s.Pacman(t, env, "-U", unlogged)
	w.refused(t, res, before, map[string]string{"foo": ""}, "REFUSED "+unlogged, "missing-signature")
	if !lineWith(res.Stdout+res.Stderr, "bintrans: warning: the pacman hook ignores $BINTRANS_CONFIG (/etc/bintrans-verify.conf) and reads /etc/bintrans.conf") {
		t.Errorf("the hook does not say it ignores $BINTRANS_CONFIG:\n%s", res)
	}

	// Control: the same policy as /etc/bintrans.conf lets the file through,
	// so the environment would have decided the outcome.
	w.setConf(t, "unsafe-allow-local")
	res = s.Pacman(t, env, "-U", unlogged)
	if res.Code != 0 || content(t, s.Root, "foo") != "foo 0.9-1 unlogged" {
		t.Fatalf("the weaker policy in /etc/bintrans.conf did not let the file through:\n%s", res)
	}
}
