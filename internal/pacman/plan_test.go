package pacman

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/bintrans/bintrans/internal/pacman/cmdline"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// planWorld is a root with two repositories built by repo-add from real
// packages, two cache directories and an archive of local files.
type planWorld struct {
	root    string
	fs      *RootFS
	conf    *Config
	pkgs    map[string]string // "repo/name" → built package path (host)
	archive string            // in-root directory of local packages
}

// planBuild holds the packages and databases of every planWorld, built
// once per test binary (makepkg-style builds and repo-add are slow).
var planBuild struct {
	once sync.Once
	dir  string
	pkgs map[string]string
	err  error
}

func newPlanWorld(t *testing.T) *planWorld {
	t.Helper()
	planBuild.once.Do(func() {
		planBuild.pkgs = map[string]string{}
		planBuild.dir, planBuild.err = os.MkdirTemp("", "bintrans-plan-")
		if planBuild.err != nil {
			return
		}
		repos := map[string][]testenv.Pkg{
			"core":  {{Name: "foo", Version: "1.0-1"}, {Name: "base", Version: "1-1", Arch: "x86_64"}, {Name: "uncached", Version: "3-1"}},
			"extra": {{Name: "foo", Version: "2.0-1"}, {Name: "bar", Version: "1-1"}},
		}
		for _, repo := range []string{"core", "extra"} {
			dir := filepath.Join(planBuild.dir, repo)
			if planBuild.err = os.MkdirAll(dir, 0o755); planBuild.err != nil {
				return
			}
			var all []string
			for _, p := range repos[repo] {
				path := testenv.BuildPackage(t, dir, p)
				planBuild.pkgs[repo+"/"+p.Name] = path
				all = append(all, path)
			}
			testenv.RepoAdd(t, filepath.Join(dir, repo+".db.tar.gz"), all...)
		}
	})
	if planBuild.err != nil {
		t.Fatal(planBuild.err)
	}
	w := &planWorld{root: t.TempDir(), pkgs: planBuild.pkgs}
	for _, repo := range []string{"core", "extra"} {
		copyFile(t, filepath.Join(planBuild.dir, repo, repo+".db.tar.gz"), filepath.Join(w.root, "var/lib/pacman/sync", repo+".db"))
	}
	for _, d := range []string{"var/cache/pacman/pkg", "cache2", "archive"} {
		if err := os.MkdirAll(filepath.Join(w.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.archive = "/archive"
	var err error
	if w.fs, err = OpenRootFS(w.root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.fs.Close() })
	w.conf = &Config{DBPath: "/var/lib/pacman", CacheDirs: []string{"/cache2/", "/var/cache/pacman/pkg/"},
		Repos: []Repo{{Name: "core"}, {Name: "extra"}, {Name: "gone"}}}
	return w
}

// cache copies repo/name's package into the in-root cache directory dir.
func (w *planWorld) cache(t *testing.T, key, dir string) string {
	t.Helper()
	src := w.pkgs[key]
	dst := filepath.Join(w.root, dir, filepath.Base(src))
	copyFile(t, src, dst)
	return filepath.Join("/", dir, filepath.Base(src))
}

func (w *planWorld) plan(t *testing.T, req Request) *Plan {
	t.Helper()
	req.Config, req.FS = w.conf, w.fs
	p, err := BuildPlan(req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// summary is one line per check: kind, names, what, verdict.
func summary(p *Plan) []string {
	var out []string
	for _, c := range p.Checks {
		v := "verify"
		if c.Verdict != nil {
			v = string(c.Verdict.Status)
		}
		kind := map[CheckKind]string{CheckSync: "sync", CheckLocal: "local", CheckURL: "url", CheckName: "name", CheckUnknown: "unknown"}[c.Kind]
		out = append(out, kind+" "+strings.Join(c.Names, ",")+" "+c.Describe()+" "+v)
	}
	return out
}

func same(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestPlanSyncCandidates(t *testing.T) {
	w := newPlanWorld(t)
	w.cache(t, "core/foo", "var/cache/pacman/pkg")
	w.cache(t, "extra/foo", "cache2")
	w.cache(t, "extra/bar", "var/cache/pacman/pkg")
	p := w.plan(t, Request{Names: []string{"foo", "bar", "uncached", "homemade"}})
	// Every cached candidate of foo (core's and extra's), bar's one, no
	// cached file for uncached, homemade in no sync database.
	same(t, summary(p), []string{
		"sync foo core/foo-1.0-1-any.pkg.tar.zst verify",
		"sync foo extra/foo-2.0-1-any.pkg.tar.zst verify",
		"sync bar extra/bar-1-1-any.pkg.tar.zst verify",
		"name uncached core/uncached-3-1-any.pkg.tar.zst unavailable",
		"name homemade homemade not-in-repository",
	})
	// The artifacts hash the first cache directory's file, and carry the
	// database's sha256 for the engine to compare.
	arts, _ := p.Artifacts()
	if len(arts) != 3 || arts[1].SHA256 != sha256File(t, w.pkgs["extra/foo"]) || arts[0].SHA256 != sha256File(t, w.pkgs["core/foo"]) {
		t.Fatalf("artifacts %+v", arts)
	}
	rc, err := arts[1].Open()
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := verify.HashReader(rc)
	rc.Close()
	if h != arts[1].SHA256 {
		t.Error("extra/foo's artifact opens another file")
	}
	if p.Checks[1].Path != "/cache2/foo-2.0-1-any.pkg.tar.zst" {
		t.Errorf("path %q", p.Checks[1].Path)
	}
	var nc *NotCachedError
	if !errors.As(p.Checks[3].Verdict.Err, &nc) || nc.Filename != "uncached-3-1-any.pkg.tar.zst" {
		t.Errorf("uncached: %v", p.Checks[3].Verdict.Err)
	}
	if !p.Checks[4].Local() || p.Checks[0].Local() || p.Checks[3].Local() {
		t.Error("Local(): only the name in no sync database may be let through")
	}

	// Results puts engine verdicts in place of the artifacts.
	eng := make([]verify.Result, 3)
	for i := range eng {
		eng[i] = verify.Result{Artifact: arts[i], Status: verify.StatusOK}
	}
	res, err := p.Results(eng)
	if err != nil || len(res) != 5 || res[0].Status != verify.StatusOK || res[4].Status != verify.StatusNotInRepository {
		t.Errorf("results %+v %v", res, err)
	}
	if _, err := p.Results(eng[:2]); err == nil {
		t.Error("short engine results accepted")
	}
}

func TestPlanCacheOrderAndSymlinks(t *testing.T) {
	w := newPlanWorld(t)
	// The first cache directory holds a symlink to the archive's copy:
	// libalpm stats through it, so does the plan (in pacman's root).
	inArchive := w.cache(t, "core/foo", "archive")
	if err := os.Symlink(inArchive, filepath.Join(w.root, "cache2", "foo-1.0-1-any.pkg.tar.zst")); err != nil {
		t.Fatal(err)
	}
	// A directory named like a package is not a candidate.
	if err := os.Mkdir(filepath.Join(w.root, "cache2", "bar-1-1-any.pkg.tar.zst"), 0o755); err != nil {
		t.Fatal(err)
	}
	w.cache(t, "extra/bar", "var/cache/pacman/pkg")
	// A symlink loop is an error, not absence.
	if err := os.Symlink("base-1-1-x86_64.pkg.tar.zst", filepath.Join(w.root, "cache2", "base-1-1-x86_64.pkg.tar.zst")); err != nil {
		t.Fatal(err)
	}
	p := w.plan(t, Request{Names: []string{"foo", "bar", "base"}})
	same(t, summary(p), []string{
		"sync foo core/foo-1.0-1-any.pkg.tar.zst verify",
		"sync bar extra/bar-1-1-any.pkg.tar.zst verify",
		"sync base core/base-1-1-x86_64.pkg.tar.zst unavailable",
	})
	if p.Checks[0].Path != "/cache2/foo-1.0-1-any.pkg.tar.zst" || p.Checks[1].Path != "/var/cache/pacman/pkg/bar-1-1-any.pkg.tar.zst" {
		t.Errorf("paths %q %q", p.Checks[0].Path, p.Checks[1].Path)
	}
	if !strings.Contains(p.Checks[2].Verdict.Err.Error(), "too many levels of symbolic links") {
		t.Errorf("loop: %v", p.Checks[2].Verdict.Err)
	}
}

func TestPlanLocalFiles(t *testing.T) {
	w := newPlanWorld(t)
	w.cache(t, "core/foo", "var/cache/pacman/pkg") // the repository file is cached
	// A rebuild of foo and a package of a name in no repository, in the
	// archive; a file that is no package.
	rebuild := testenv.BuildPackage(t, filepath.Join(w.root, "archive"), testenv.Pkg{Name: "foo", Version: "1.0-1", Desc: "rebuilt"})
	homemade := testenv.BuildPackage(t, filepath.Join(w.root, "archive"), testenv.Pkg{Name: "homemade", Version: "1-1"})
	write(t, filepath.Join(w.root, "archive", "junk.pkg.tar.zst"), "not a package")
	if err := os.Symlink("foo-1.0-1-any.pkg.tar.zst", filepath.Join(w.root, "archive", "link.pkg")); err != nil {
		t.Fatal(err)
	}
	p := w.plan(t, Request{
		Names: []string{"foo", "homemade", "bar", "junkname"},
		Local: []LocalTarget{
			{Arg: "./foo-1.0-1-any.pkg.tar.zst", Path: "/archive/./foo-1.0-1-any.pkg.tar.zst"},
			{Arg: "/archive/" + filepath.Base(homemade), Path: "/archive/" + filepath.Base(homemade)},
			{Arg: "junk.pkg.tar.zst", Path: "/archive/junk.pkg.tar.zst"},
			{Arg: "link.pkg", Path: "/archive/link.pkg"},
			{Arg: "missing.pkg", Path: "/archive/missing.pkg"},
			{Arg: "rel.pkg", Err: errors.New("pacman's working directory is unknown")},
		},
	})
	// foo is the -U file's name: the file is verified as itself, and the
	// cached repository file of foo is verified as well (a -U file never
	// removes a check); homemade, in no sync database, needs nothing
	// else. The junk file is verified as itself (no name); junkname and
	// bar come from the sync databases.
	same(t, summary(p), []string{
		"local foo /archive/./foo-1.0-1-any.pkg.tar.zst (pacman -U) verify",
		"local homemade /archive/homemade-1-1-any.pkg.tar.zst (pacman -U) verify",
		"local  /archive/junk.pkg.tar.zst (pacman -U) verify",
		"local foo /archive/link.pkg (pacman -U) verify",
		"local  /archive/missing.pkg (pacman -U) unavailable",
		"unknown  rel.pkg unavailable",
		"sync foo core/foo-1.0-1-any.pkg.tar.zst verify",
		"name bar extra/bar-1-1-any.pkg.tar.zst unavailable",
		"name junkname junkname not-in-repository",
	})
	if p.Checks[6].Local() {
		t.Error("the repository file of a -U file's name is local")
	}
	a := p.Checks[0].Artifact
	if a.Filename != "foo-1.0-1-any.pkg.tar.zst" || a.Name != "foo" || a.Version != "1.0-1" || a.SHA256 != "" || a.Repo != "" {
		t.Errorf("local artifact %+v", a)
	}
	// A symlinked -U file is verified under its target's name.
	if got := p.Checks[3].Artifact.Filename; got != "foo-1.0-1-any.pkg.tar.zst" {
		t.Errorf("symlinked -U file named %q", got)
	}
	rc, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := verify.HashReader(rc)
	rc.Close()
	if h != sha256File(t, rebuild) {
		t.Error("the -U artifact does not read the -U file")
	}
	for _, i := range []int{0, 4, 5, 8} {
		if !p.Checks[i].Local() {
			t.Errorf("check %d is local", i)
		}
	}
	var ue *UnknownFilesError
	if !errors.As(p.Checks[5].Verdict.Err, &ue) || ue.Hint() == "" {
		t.Errorf("unknown: %v", p.Checks[5].Verdict.Err)
	}
	var le *LocalFileError
	if !errors.As(p.Checks[4].Verdict.Err, &le) || !IsAbsent(le.Err) {
		t.Errorf("missing: %v", p.Checks[4].Verdict.Err)
	}
}

func TestPlanURLs(t *testing.T) {
	w := newPlanWorld(t)
	w.cache(t, "extra/bar", "var/cache/pacman/pkg")
	w.cache(t, "core/foo", "cache2")
	p := w.plan(t, Request{
		Names: []string{"foo", "bar"},
		URLs: []string{
			"https://example.org/pool/bar-1-1-any.pkg.tar.zst",
			"file:///srv/foo-1.0-1-any.pkg.tar.zst",
			"https://example.org/download?id=3",
			"https://example.org/",
			"https://a.example/x/base-1-1-x86_64.pkg.tar.zst",
			"https://b.example/y/base-1-1-x86_64.pkg.tar.zst",
		},
	})
	same(t, summary(p), []string{
		"url bar /var/cache/pacman/pkg/bar-1-1-any.pkg.tar.zst (pacman -U https://example.org/pool/bar-1-1-any.pkg.tar.zst) verify",
		"url foo /cache2/foo-1.0-1-any.pkg.tar.zst (pacman -U file:///srv/foo-1.0-1-any.pkg.tar.zst) verify",
		"unknown  https://example.org/download?id=3 unavailable",
		"unknown  https://example.org/ unavailable",
		"unknown  https://a.example/x/base-1-1-x86_64.pkg.tar.zst unavailable",
		"unknown  https://b.example/y/base-1-1-x86_64.pkg.tar.zst unavailable",
		"sync foo core/foo-1.0-1-any.pkg.tar.zst verify",
		"sync bar extra/bar-1-1-any.pkg.tar.zst verify",
	})
	if !strings.Contains(p.Checks[2].Verdict.Err.Error(), "Content-Disposition") || !strings.Contains(p.Checks[4].Verdict.Err.Error(), "2 URLs end in") {
		t.Errorf("reasons: %v / %v", p.Checks[2].Verdict.Err, p.Checks[4].Verdict.Err)
	}
}

func TestPlanRepoTargetsAndStdin(t *testing.T) {
	w := newPlanWorld(t)
	w.cache(t, "core/foo", "var/cache/pacman/pkg")
	w.cache(t, "extra/bar", "var/cache/pacman/pkg")
	rts := []cmdline.RepoTarget{{Arg: "extra/foo", Repo: "extra", Name: "foo"}, {Arg: "extra/bar>=1", Repo: "extra", Name: "bar"},
		{Arg: "core/bar", Repo: "core", Name: "bar"}, {Arg: "extra/somegroup", Repo: "extra", Name: "somegroup"}}
	p := w.plan(t, Request{Names: []string{"foo", "bar"}, RepoTargets: rts, Unknown: "pacman -U - (targets read from stdin)"})
	same(t, summary(p), []string{
		"unknown  pacman -U - (targets read from stdin) unavailable",
		"sync foo core/foo-1.0-1-any.pkg.tar.zst verify",
		"sync bar extra/bar-1-1-any.pkg.tar.zst verify",
		"name foo extra/foo unavailable",
		"name bar core/bar unavailable",
	})
	var we *WrongRepoError
	if !errors.As(p.Checks[3].Verdict.Err, &we) || we.Filename != "foo-2.0-1-any.pkg.tar.zst" {
		t.Errorf("extra/foo: %v", p.Checks[3].Verdict.Err)
	}
	if !errors.As(p.Checks[4].Verdict.Err, &we) || we.Filename != "" || !strings.Contains(we.Error(), "has no package bar") {
		t.Errorf("core/bar: %v", p.Checks[4].Verdict.Err)
	}
}

func TestPlanDBErrors(t *testing.T) {
	w := newPlanWorld(t)
	write(t, filepath.Join(w.root, "var/lib/pacman/sync/extra.db"), "garbage, not a database")
	_, err := BuildPlan(Request{Names: []string{"foo"}, Config: w.conf, FS: w.fs})
	var de *DBError
	if !errors.As(err, &de) || de.Repo != "extra" {
		t.Errorf("corrupt db: %v", err)
	}
	// No names: no database is read.
	if p, err := BuildPlan(Request{Config: w.conf, FS: w.fs}); err != nil || len(p.Checks) != 0 {
		t.Errorf("empty request: %v %v", p, err)
	}
}

func TestPlanHostFSMatchesRootFS(t *testing.T) {
	// The strict mode's HostFS over the real path gives the same plan as
	// RootFS over the root (no symlinks involved).
	w := newPlanWorld(t)
	w.cache(t, "core/foo", "var/cache/pacman/pkg")
	conf := &Config{DBPath: filepath.Join(w.root, "var/lib/pacman"), CacheDirs: []string{filepath.Join(w.root, "var/cache/pacman/pkg")}, Repos: w.conf.Repos}
	p, err := BuildPlan(Request{Names: []string{"foo"}, Config: conf, FS: HostFS{}})
	if err != nil || len(p.Checks) != 1 || p.Checks[0].Verdict != nil {
		t.Fatalf("%v %v", summary(p), err)
	}
	rc, err := p.Checks[0].Artifact.Open()
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	var nr *NotRegularError
	if _, err := (HostFS{}).OpenRegular(w.root); !errors.As(err, &nr) {
		t.Errorf("HostFS opened a directory: %v", err)
	}
	names := []string{}
	for _, c := range p.Checks {
		names = append(names, c.Names...)
	}
	sort.Strings(names)
}

// TestCacheFindPathMax: libalpm builds a cache path with
// snprintf(path, PATH_MAX, "%s%s", cachedir, filename) and looks at the
// truncated path when it is longer; bintrans refuses such a path.
func TestCacheFindPathMax(t *testing.T) {
	dir := "/" + strings.Repeat(strings.Repeat("c", 200)+"/", 20) // absent
	fn := strings.Repeat("f", PacmanMaxLine-len(dir))
	if _, err := cacheFind(HostFS{}, []string{dir}, fn); err != nil {
		t.Errorf("%d bytes: %v", len(dir+fn), err)
	}
	if _, err := cacheFind(HostFS{}, []string{dir}, fn+"x"); err == nil || !strings.Contains(err.Error(), "longer than libalpm's PATH_MAX buffer") {
		t.Errorf("%d bytes: err = %v", len(dir+fn)+1, err)
	}
}

// TestPlanLocalFileNeverHidesARepositoryFile: the red team's
// TestRedTeamPkgInfoFirstVersusLast at the plan's level. A -U file whose
// .PKGINFO names bar, then foo (libalpm: foo) stands for no name; one that
// plainly names bar stands for bar; either way, bar's cached repository
// file (what libalpm installs when it pulls bar as a dependency) is
// checked, and is never a local check that --unsafe-allow-local could let
// through. A -U name needs no cached repository file.
func TestPlanLocalFileNeverHidesARepositoryFile(t *testing.T) {
	w := newPlanWorld(t)
	w.cache(t, "extra/bar", "var/cache/pacman/pkg")
	pkg := func(name, pkginfo string) LocalTarget {
		write(t, filepath.Join(w.root, "archive", name), string(pkgTar(t, [2]string{".PKGINFO", pkginfo}, [2]string{"usr/", ""})))
		return LocalTarget{Arg: "/archive/" + name, Path: "/archive/" + name}
	}
	twoNames := pkg("two.pkg.tar", "pkgname = bar\npkgname = foo\npkgver = 1.0-2\ndepend = bar\n")
	plainBar := pkg("bar.pkg.tar", "pkgname = bar\npkgver = 1-1\n")
	p := w.plan(t, Request{Names: []string{"foo", "bar"}, Local: []LocalTarget{twoNames}})
	same(t, summary(p), []string{
		"local  /archive/two.pkg.tar (pacman -U) verify",
		"name foo core/foo-1.0-1-any.pkg.tar.zst unavailable",
		"sync bar extra/bar-1-1-any.pkg.tar.zst verify",
	})
	p = w.plan(t, Request{Names: []string{"bar", "foo"}, Local: []LocalTarget{plainBar}})
	same(t, summary(p), []string{
		"local bar /archive/bar.pkg.tar (pacman -U) verify",
		"sync bar extra/bar-1-1-any.pkg.tar.zst verify",
		"name foo core/foo-1.0-1-any.pkg.tar.zst unavailable",
	})
	if p.Checks[1].Local() {
		t.Error("a repository file is a local check")
	}
	// foo's repository file is not cached: the -U file of foo is enough.
	p = w.plan(t, Request{Names: []string{"foo"}, Local: []LocalTarget{pkg("foo.pkg.tar", "pkgname = foo\npkgver = 0.9-1\n")}})
	same(t, summary(p), []string{"local foo /archive/foo.pkg.tar (pacman -U) verify"})
}
