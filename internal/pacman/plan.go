package pacman

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/bintrans/bintrans/internal/pacman/cmdline"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// The hook's resolution rule (docs/SECURITY.md, "What libalpm installs"):
//
//   - every `pacman -U` file, and every file pacman downloaded for a
//     `pacman -U` URL, is verified as itself (its own bytes, its own
//     `.t`); it stands for the target name its .PKGINFO gives, read as
//     libalpm reads it (ReadPkgInfo; none when that reading is ambiguous);
//   - every target name, whether a -U file stands for it or not, is
//     checked against the sync databases: every entry of that name in
//     every sync database whose %FILENAME% is in a cache directory (the
//     first one holding it, as libalpm looks) must verify (the file's
//     sha256 equals that database's %SHA256SUM%, its `.t` verifies, it is
//     logged); a name no -U file stands for needs at least one such entry;
//   - a `pacman -S repo/name` target needs a present entry in that repo;
//   - a name in no sync database and no -U file is refused
//     (not-in-repository), as is any -U file bintrans cannot locate.
//
// So a -U file never removes a check: how bintrans reads its .PKGINFO
// only decides whether its name needs a cached repository file as well
// (libalpm downloads every repository file it installs before the hook
// runs, so a repository file it installs is always among the checked).
//
// --unsafe-allow-local lets local files (-U files, URL downloads, names in
// no sync database) through when they do not verify, loudly; never a sync
// database candidate.

// CheckKind is what a Check is about.
type CheckKind int

// The kinds of Check.
const (
	// CheckSync is a sync database entry whose file is in a cache directory.
	CheckSync CheckKind = iota + 1
	// CheckLocal is a `pacman -U FILE` file.
	CheckLocal
	// CheckURL is the file pacman downloaded for a `pacman -U URL`.
	CheckURL
	// CheckName is a verdict about a target name with no file to verify
	// (in no sync database; no cached candidate; a repo/name target
	// whose repo has no cached candidate).
	CheckName
	// CheckUnknown is a file pacman installs that bintrans cannot locate
	// (targets read from stdin, a relative path without a known working
	// directory, a download named by the server).
	CheckUnknown
)

// Check is one thing the transaction depends on: a file to verify, or a
// verdict already reached.
type Check struct {
	Kind CheckKind
	// Names are the target names (alpm's) the check is about; empty when
	// the name of a local file is unknown.
	Names []string
	// Arg is the -U argument, the URL, or the repo/name target, as given.
	Arg string
	// Path is the file, in the front-end's view ("" for CheckName and
	// CheckUnknown).
	Path string
	// Artifact is what the engine verifies when Verdict is nil; otherwise
	// it describes the check for messages.
	Artifact verify.Artifact
	// Verdict is set when no verification is needed to decide.
	Verdict *verify.Result
}

// Local reports whether --unsafe-allow-local may let a failure of this
// check through: local files and names in no sync database, never a sync
// database candidate.
func (c *Check) Local() bool {
	switch c.Kind {
	case CheckLocal, CheckURL, CheckUnknown:
		return true
	case CheckName:
		return c.Verdict != nil && c.Verdict.Status == verify.StatusNotInRepository
	}
	return false
}

// Describe names the checked thing for a message, safe for a terminal is
// the caller's job: repo/filename for a sync file, the path and how pacman
// got it for a local file.
func (c *Check) Describe() string {
	switch c.Kind {
	case CheckSync:
		return c.Artifact.Repo + "/" + c.Artifact.Filename
	case CheckLocal:
		return c.Path + " (pacman -U)"
	case CheckURL:
		return c.Path + " (pacman -U " + c.Arg + ")"
	case CheckUnknown:
		return c.Arg
	}
	switch {
	case c.Arg != "":
		return c.Arg
	case c.Artifact.Repo != "" && c.Artifact.Filename != "":
		return c.Artifact.Repo + "/" + c.Artifact.Filename
	}
	return strings.Join(c.Names, " ")
}

// Plan is the transaction's checks, in a stable order: local files, URL
// downloads, then the sync names in target order.
type Plan struct {
	Checks []Check
}

// Artifacts returns what the engine must verify and, for each, the index
// of its check.
func (p *Plan) Artifacts() ([]verify.Artifact, []int) {
	var arts []verify.Artifact
	var idx []int
	for i, c := range p.Checks {
		if c.Verdict == nil {
			arts = append(arts, c.Artifact)
			idx = append(idx, i)
		}
	}
	return arts, idx
}

// Results merges the engine's results (one per Artifacts entry, in order)
// with the ready verdicts: one Result per check.
func (p *Plan) Results(engine []verify.Result) ([]verify.Result, error) {
	_, idx := p.Artifacts()
	if len(engine) != len(idx) {
		return nil, fmt.Errorf("pacman: %d engine results for %d artifacts", len(engine), len(idx))
	}
	out := make([]verify.Result, len(p.Checks))
	for i, c := range p.Checks {
		if c.Verdict != nil {
			out[i] = *c.Verdict
		}
	}
	for j, i := range idx {
		out[i] = engine[j]
	}
	return out, nil
}

// LocalTarget is one `pacman -U` file argument.
type LocalTarget struct {
	Arg  string // as given to pacman
	Path string // absolute in the front-end's view; "" when Err is set
	Err  error  // why the file cannot be located
}

// Request is what BuildPlan needs to know about a transaction.
type Request struct {
	// Names are alpm's target names (the hook's stdin).
	Names []string
	// Config is the effective configuration: DBPath, CacheDirs (in
	// libalpm's order) and Repos, as paths in FS.
	Config *Config
	FS     FileSystem
	// Local and URLs are pacman -U's targets; RepoTargets pacman -S's
	// repo/name targets.
	Local       []LocalTarget
	URLs        []string
	RepoTargets []cmdline.RepoTarget
	// Unknown, when set, says why pacman installs files bintrans cannot
	// see (e.g. `pacman -U -`): it becomes a CheckUnknown.
	Unknown string
	// Limits bound the sync databases (zero: repodb's defaults).
	Limits repodb.Limits
}

// UnknownFilesError is a file pacman installs that bintrans cannot
// establish.
type UnknownFilesError struct {
	Arg    string
	Reason string
}

// Error is the reason; the hook names Arg in front of it.
func (e *UnknownFilesError) Error() string { return e.Reason }

// Hint says how to install such a file verifiably.
func (e *UnknownFilesError) Hint() string {
	return "download the package, check it with 'bintrans verify FILE', and install it with 'pacman -U /absolute/path/FILE'"
}

// LocalFileError is a -U file that could not be read.
type LocalFileError struct {
	Path string
	Err  error
}

func (e *LocalFileError) Error() string {
	return fmt.Sprintf("cannot read %s, the file pacman installs: %v", e.Path, e.Err)
}

func (e *LocalFileError) Unwrap() error { return e.Err }

// WrongRepoError is a `pacman -S repo/name` target whose repository has no
// cached file for name, while the transaction installs name.
type WrongRepoError struct {
	Target   string
	Repo     string
	Name     string
	Filename string // repo's %FILENAME% for name; "" when repo has none
}

func (e *WrongRepoError) Error() string {
	if e.Filename == "" {
		return fmt.Sprintf("pacman was asked for %s, but [%s] has no package %s in its sync database as bintrans reads it", e.Target, e.Repo, e.Name)
	}
	return fmt.Sprintf("pacman was asked for %s, but %s is in no cache directory: which file pacman installs is unknown", e.Target, e.Filename)
}

func unavailable(a verify.Artifact, err error) *verify.Result {
	return &verify.Result{Artifact: a, Status: verify.StatusUnavailable, Err: err}
}

// BuildPlan applies the resolution rule to a transaction. Reading a sync
// database that exists but cannot be read is an error (*DBError): a name it
// would have resolved must not turn into "in no sync database".
func BuildPlan(req Request) (*Plan, error) {
	lim := req.Limits
	if lim == (repodb.Limits{}) {
		lim = repodb.DefaultLimits()
	}
	b := &planBuilder{req: req, plan: &Plan{}, covered: map[string]bool{}, present: map[[2]string]bool{}}
	b.localFiles()
	b.urlFiles()
	if req.Unknown != "" {
		b.add(Check{Kind: CheckUnknown, Arg: req.Unknown,
			Verdict: unavailable(verify.Artifact{Filename: req.Unknown}, &UnknownFilesError{Reason: req.Unknown + ": bintrans cannot see which files pacman installs"})})
	}

	// Every name is checked against the sync databases, also one a -U
	// file stands for: whatever bintrans reads in a .PKGINFO, libalpm may
	// install a repository file of that name too (as a dependency of a -U
	// file it reads as another name).
	var syncNames []string
	want := map[string]bool{}
	for _, n := range req.Names {
		if !want[n] {
			want[n] = true
			syncNames = append(syncNames, n)
		}
	}
	found, err := syncEntries(req.FS, req.Config, want, lim)
	if err != nil {
		return nil, err
	}
	for _, name := range syncNames {
		b.syncName(name, found[name])
	}
	b.repoTargets(want, found)
	return b.plan, nil
}

// planBuilder is one BuildPlan: the request, the plan being built, and
// what the checks so far establish for the later ones.
type planBuilder struct {
	req     Request
	plan    *Plan
	covered map[string]bool    // names a -U file stands for
	present map[[2]string]bool // {repo, name} with a cached candidate
}

func (b *planBuilder) add(c Check) { b.plan.Checks = append(b.plan.Checks, c) }

// localFiles checks the pacman -U files as themselves.
func (b *planBuilder) localFiles() {
	for _, lt := range b.req.Local {
		c := Check{Kind: CheckLocal, Arg: lt.Arg, Path: lt.Path}
		c.Artifact = verify.Artifact{Filename: path.Base(lt.Arg)}
		if lt.Err != nil {
			c.Kind = CheckUnknown
			c.Verdict = unavailable(c.Artifact, &UnknownFilesError{Arg: lt.Arg, Reason: lt.Err.Error()})
			b.add(c)
			continue
		}
		b.add(fileCheck(b.req.FS, c, b.covered))
	}
}

// urlFiles checks the pacman -U URLs: the file alpm_fetch_pkgurl left in
// the cache, found by the URL's last path element. Where that name does
// not say which file pacman installs (no name, two URLs with one name, no
// cached file of that name), which files pacman installs is unknown.
func (b *planBuilder) urlFiles() {
	req := b.req
	base := map[string]int{}
	for _, u := range req.URLs {
		base[urlBase(u)]++
	}
	for _, u := range req.URLs {
		name := urlBase(u)
		c := Check{Kind: CheckURL, Arg: u, Artifact: verify.Artifact{Filename: name}}
		fail := func(reason string) {
			c.Kind = CheckUnknown
			c.Verdict = unavailable(c.Artifact, &UnknownFilesError{Arg: u, Reason: reason})
			b.add(c)
		}
		switch {
		case name == "":
			fail("the URL has no file name: pacman saves the download under a name the server chooses")
			continue
		case base[name] > 1:
			fail(fmt.Sprintf("%d URLs end in %q: which download is which file is unknown", base[name], name))
			continue
		}
		found, err := cacheFind(req.FS, req.Config.CacheDirs, name)
		switch {
		case err != nil:
			c.Verdict = unavailable(c.Artifact, err)
			b.add(c)
			continue
		case found == "":
			fail(fmt.Sprintf("no cache directory holds %q: the server named the download (Content-Disposition or a redirect), so which file pacman installs is unknown", name))
			continue
		}
		c.Path = found
		b.add(fileCheck(req.FS, c, b.covered))
	}
}

// syncName checks a target name against its sync database entries es:
// every cached candidate file is checked; a name in no sync database, or
// with no cached file, fails (unless a -U file stands for it).
func (b *planBuilder) syncName(name string, es []dbEntry) {
	req := b.req
	if len(es) == 0 && b.covered[name] {
		return // the -U file is the check
	}
	if len(es) == 0 {
		a := verify.Artifact{Filename: name, Name: name}
		b.add(Check{Kind: CheckName, Names: []string{name},
			Verdict: &verify.Result{Artifact: a, Status: verify.StatusNotInRepository, Err: &NotInRepositoryError{Name: name}}})
		return
	}
	n := 0
	for _, e := range es {
		t := Target{Name: name, Repo: e.repo, Arch: e.pkg.Arch, Filename: e.pkg.Filename, Version: e.pkg.Version, SHA256: e.pkg.SHA256Sum}
		a := t.Artifact()
		if err := plainFilename(e.pkg.Filename); err != nil {
			b.add(Check{Kind: CheckSync, Names: []string{name}, Artifact: a,
				Verdict: unavailable(a, &DBError{Repo: e.repo, Path: req.Config.SyncDBPath(e.repo), Err: err})})
			n++
			continue
		}
		fp, err := cacheFind(req.FS, req.Config.CacheDirs, e.pkg.Filename)
		if err != nil {
			b.add(Check{Kind: CheckSync, Names: []string{name}, Artifact: a, Verdict: unavailable(a, err)})
			n++
			continue
		}
		if fp == "" {
			continue
		}
		n++
		b.present[[2]string{e.repo, name}] = true
		fsys := req.FS
		a.Open = func() (io.ReadCloser, error) { return fsys.OpenRegular(fp) }
		b.add(Check{Kind: CheckSync, Names: []string{name}, Path: fp, Artifact: a})
	}
	if n == 0 && !b.covered[name] {
		e := es[0]
		a := verify.Artifact{Filename: e.pkg.Filename, Repo: e.repo, Name: name, Version: e.pkg.Version}
		b.add(Check{Kind: CheckName, Names: []string{name}, Artifact: a,
			Verdict: unavailable(a, &NotCachedError{Name: name, Filename: e.pkg.Filename, CacheDirs: req.Config.CacheDirs})})
	}
}

// repoTargets checks each pacman -S repo/name: that repo's file must be
// among the checked.
func (b *planBuilder) repoTargets(want map[string]bool, found map[string][]dbEntry) {
	for _, rt := range b.req.RepoTargets {
		if !want[rt.Name] || b.present[[2]string{rt.Repo, rt.Name}] {
			continue
		}
		werr := &WrongRepoError{Target: rt.Arg, Repo: rt.Repo, Name: rt.Name}
		for _, e := range found[rt.Name] {
			if e.repo == rt.Repo {
				werr.Filename = e.pkg.Filename
			}
		}
		a := verify.Artifact{Filename: rt.Arg, Repo: rt.Repo, Name: rt.Name}
		b.add(Check{Kind: CheckName, Names: []string{rt.Name}, Arg: rt.Arg, Artifact: a, Verdict: unavailable(a, werr)})
	}
}

// fileCheck verifies a local or downloaded file as itself: its own bytes
// and the `.t` of its own file name. Its .PKGINFO, read as libalpm reads
// it, says which target name it stands for (covered): that name then needs
// no cached repository file.
func fileCheck(fsys FileSystem, c Check, covered map[string]bool) Check {
	f, err := fsys.OpenRegular(c.Path)
	if err != nil {
		c.Verdict = unavailable(c.Artifact, &LocalFileError{Path: c.Path, Err: err})
		return c
	}
	if n := fdName(f); n != "" {
		c.Artifact.Filename = n // the file's own name, after symlinks
	} else {
		c.Artifact.Filename = path.Base(c.Path)
	}
	pi, err := ReadPkgInfo(io.LimitReader(f, pkgInfoMaxStream))
	f.Close()
	if err == nil {
		c.Names = []string{pi.Name}
		c.Artifact.Name, c.Artifact.Version, c.Artifact.Arch = pi.Name, pi.Version, pi.Arch
		covered[pi.Name] = true
	}
	p := c.Path
	c.Artifact.Open = func() (io.ReadCloser, error) { return fsys.OpenRegular(p) }
	return c
}

// urlBase is what filecache_find_url looks for: the part of the URL after
// its last '/', query string included (L/dload.c:990).
func urlBase(u string) string {
	i := strings.LastIndexByte(u, '/')
	if i < 0 {
		return ""
	}
	return u[i+1:]
}

// plainFilename is libalpm's check of %FILENAME% (L/be_sync.c:482): not
// starting with '.', no '/', non-empty (an empty one is "not cached" to
// libalpm; bintrans refuses it, nothing legitimate writes it).
func plainFilename(fn string) error {
	if fn == "" || strings.HasPrefix(fn, ".") || strings.ContainsAny(fn, "/\x00") {
		return fmt.Errorf("%%FILENAME%% %q is not a plain file name", fn)
	}
	return nil
}

// cacheFind is _alpm_filecache_find (L/util.c:823): the first cache
// directory, in order, holding a regular file (symlinks followed) named
// filename; "" when none does. An error other than absence is returned,
// never skipped: the file libalpm uses could be behind it.
func cacheFind(fsys FileSystem, dirs []string, filename string) (string, error) {
	for _, d := range dirs {
		p := strings.TrimSuffix(d, "/") + "/" + filename
		if len(p) > PacmanMaxLine {
			// snprintf(path, PATH_MAX, "%s%s", cachedir, filename):
			// libalpm would look at a truncated path.
			return "", fmt.Errorf("cache file %s: %d bytes, longer than libalpm's PATH_MAX buffer (it would look for a truncated name)", p, len(p))
		}
		st, err := fsys.Stat(p)
		switch {
		case err == nil && st.Mode().IsRegular():
			return p, nil
		case err == nil || IsAbsent(err):
		default:
			return "", fmt.Errorf("cache file %s: %w", p, err)
		}
	}
	return "", nil
}

type dbEntry struct {
	repo string
	pkg  repodb.Package
}

// syncEntries reads every sync database of c and returns the entries of
// the wanted names, in configuration order. A missing database is skipped
// (pacman cannot install from it either); an unreadable one is a *DBError.
func syncEntries(fsys FileSystem, c *Config, want map[string]bool, lim repodb.Limits) (map[string][]dbEntry, error) {
	found := map[string][]dbEntry{}
	if len(want) == 0 {
		return found, nil
	}
	for _, r := range c.Repos {
		// Not SyncDBPath: no lexical cleaning, the file system resolves
		// DBPath as libalpm's realpath did.
		p := strings.TrimSuffix(c.DBPath, "/") + "/sync/" + r.Name + ".db"
		f, err := fsys.OpenRegular(p)
		if IsAbsent(err) {
			continue
		}
		if err != nil {
			return nil, &DBError{Repo: r.Name, Path: p, Err: err}
		}
		err = repodb.Walk(f, lim, func(pkg repodb.Package) error {
			if want[pkg.Name] {
				found[pkg.Name] = append(found[pkg.Name], dbEntry{r.Name, pkg})
			}
			return nil
		})
		f.Close()
		if err != nil {
			return nil, &DBError{Repo: r.Name, Path: p, Err: err}
		}
	}
	return found, nil
}

var (
	_ FileSystem = HostFS{}
	_ FileSystem = (*RootFS)(nil)
)
