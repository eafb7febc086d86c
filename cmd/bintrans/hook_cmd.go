package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/pacman"
	"github.com/bintrans/bintrans/internal/progress"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/verify"
)

// HookCmd is `bintrans hook`, run by alpm as hooks/bintrans.hook: a
// PreTransaction hook with NeedsTargets and AbortOnFail. alpm runs it after
// the downloads, chrooted into pacman's RootDir with the working directory
// "/", with the target package names on stdin; its parent is the process
// that called libalpm. It establishes which files libalpm installs (from
// pacman's command line and file system, read through /proc) and verifies
// each; any non-zero exit aborts the transaction before a file is
// installed.
type HookCmd struct {
	PolicyFlags

	PacmanConf       string `name:"pacman-conf" help:"pacman's configuration as seen inside RootDir. Used only in strict mode (the front-end's request cannot be read); otherwise pacman's own --config and paths are used." default:"/etc/pacman.conf" placeholder:"FILE"`
	UnsafeAllowLocal bool   `name:"unsafe-allow-local" help:"UNSAFE: install pacman -U files and downloads that do not verify, and packages in no sync database, with a warning naming each (repository packages are never let through)."`
	RequireFrontend  bool   `name:"require-frontend" help:"Refuse transactions whose front-end bintrans cannot read (a libalpm program other than pacman, or /proc not mounted in the root) instead of checking them in strict mode."`
}

// procDir is where the hook reads its parent; a variable for tests.
var procDir = "/proc"

// Help is shown by 'bintrans hook --help'.
func (HookCmd) Help() string {
	return `Run by alpm (hooks/bintrans.hook, When = PreTransaction, NeedsTargets,
AbortOnFail) after pacman downloaded a transaction and before it installs
anything. The target package names come on stdin. The hook verifies the
exact files libalpm is about to install; any non-zero exit aborts the
transaction.

What it needs: /proc mounted inside pacman's RootDir. A normal system has it
(RootDir /), and so do pacstrap and arch-chroot. Through /proc the hook reads
its parent (the process that called libalpm): for pacman, also when paru or
yay run it, its command line and its view of the file system. Then:
  - every 'pacman -U FILE' and every file pacman downloaded for 'pacman -U URL'
    is verified as itself: the genuine logged file installs (e.g. from an
    archive), an unlogged rebuild or downgrade is refused;
  - every other target comes from the sync databases: each repository's entry
    for that name whose file is in a cache directory must verify (its sha256
    is the database's, its .t verifies, it is logged), and at least one must
    be there; 'pacman -S repo/name' needs that repository's file;
  - a name in no sync database is refused (not-in-repository);
  - pacman's --config, --dbpath/-b, --cachedir, --root/-r and --sysroot are
    honoured: the files are read as pacman reads them.

Strict mode: when the front-end is not pacman (pamac, another libalpm
program) or /proc is not mounted in the root, the hook says so in one line
and checks every cached candidate of each name from --pacman-conf (read
inside the root). Such a front-end installing a local file whose name has a
cached, logged repository file cannot be told apart: mount /proc in the root
(mount --bind /proc ROOT/proc) and install with pacman for the full check, or
set require-frontend to refuse instead.

Exit codes: 0 every file verified; 1 at least one refused (each named, with
its reason); 2 configuration error; 3 could not verify (e.g. the log is
unreachable online, or pacman's command line is not one bintrans reads).

Testing it by hand (strict mode, the parent is your shell):
  printf 'linux\nglibc\n' | bintrans hook --pacman-conf /etc/pacman.conf

` + logKindsHelp
}

// Run verifies the transaction.
func (c *HookCmd) Run(g *Globals) error {
	ctx := g.Context()
	names, err := pacman.ParseTargets(io.LimitReader(g.Stdin, int64(pacman.MaxTargets)*(pacman.MaxNameLen+2)))
	if err != nil {
		return runErrorf(err, "bintrans hook reads the target names alpm writes (NeedsTargets)", "%v", err)
	}
	if len(names) == 0 {
		return nil
	}
	req, closeFS, err := c.request(g, names)
	if err != nil {
		return err
	}
	defer closeFS()
	plan, err := pacman.BuildPlan(req)
	if err != nil {
		return runErrorf(err, "", "%v", err)
	}

	pol, err := c.build(ctx)
	if err != nil {
		return err
	}
	defer pol.Close()
	// The sync databases first: a stale or rolled-back one aborts.
	dbs, err := c.checkDBs(ctx, g, pol, req)
	if err != nil {
		return err
	}

	arts, _ := plan.Artifacts()
	bar := progress.New(g.Stderr, len(arts), "bintrans: verifying")
	pol.Verifier.Progress = func(int, int, verify.Result) { bar.Add(1) }
	engine, verr := pol.Verifier.VerifyAll(ctx, arts)
	bar.Done()
	if engine == nil { // the batch has no verdicts: every file is unverified
		engine = make([]verify.Result, len(arts))
		for i, a := range arts {
			engine[i] = verify.Result{Artifact: a, Status: verify.StatusUnavailable, Err: verr}
		}
	}
	results, err := plan.Results(engine)
	if err != nil {
		return runErrorf(err, "", "%v", err)
	}

	verified, failed, skipped, localFailed := 0, 0, 0, false
	for i, r := range results {
		chk := &plan.Checks[i]
		switch {
		case r.OK():
			verified++
		case chk.Local() && c.UnsafeAllowLocal:
			skipped++
			if r.Status == verify.StatusNotInRepository {
				fmt.Fprintf(g.Stderr, "bintrans: UNVERIFIED %s: in no sync database, allowed by --unsafe-allow-local\n", safetext.Line(chk.Describe()))
			} else {
				fmt.Fprintf(g.Stderr, "bintrans: UNVERIFIED %s: %s: installed anyway because of --unsafe-allow-local\n", safetext.Line(chk.Describe()), failureReason(r))
			}
		default:
			failed++
			localFailed = localFailed || chk.Local()
			fmt.Fprintf(g.Stderr, "bintrans: REFUSED %s: %s\n", safetext.Line(chk.Describe()), failureReason(r))
		}
	}
	var sec *verify.SecurityError
	var unavailable *verify.LogUnavailableError
	switch {
	case errors.As(verr, &sec):
		fmt.Fprintln(g.Stderr, safetext.Text(verr.Error()))
		return verificationFailed("keep both tree heads above and report them; do not install until the log is explained",
			"%d of %d packages could not be verified against a consistent log: transaction aborted", failed, len(results))
	case errors.As(verr, &unavailable):
		return runErrorf(verr, logUnavailableHint(verr, "retry when the log is reachable, or set offline = true to verify from proof bundles only"),
			"%v: %d of %d packages unverified: transaction aborted", verr, failed, len(results))
	case verr != nil:
		return runErrorf(verr, "", "verification did not complete: %v: transaction aborted", verr)
	case failed > 0 && localFailed:
		return verificationFailed("install only packages that are provably in the transparency log: check a file with 'bintrans verify FILE' and install it with 'pacman -U /path/FILE'; --unsafe-allow-local installs unlogged local files anyway",
			"%d of %d packages failed verification: transaction aborted", failed, len(results))
	case failed > 0:
		return verificationFailed("do not install packages that are not provably in the transparency log; the refused files stay in pacman's cache for inspection",
			"%d of %d packages failed verification: transaction aborted", failed, len(results))
	}
	what := fmt.Sprintf("%d packages verified", verified)
	if verified != len(names)-skipped {
		what = fmt.Sprintf("%d files verified for %d packages", verified, len(names))
	}
	dbs.keep(ctx, g, pol, &c.PolicyFlags) // the whole run passed
	if skipped > 0 {
		fmt.Fprintf(g.Stderr, "bintrans: %s (%s), %d let through unverified\n", what, c.mode(), skipped)
		return nil
	}
	fmt.Fprintf(g.Stderr, "bintrans: %s (%s)\n", what, c.mode())
	return nil
}

// request establishes what the transaction installs: from pacman's own
// request when the front-end is pacman and /proc is readable, else in
// strict mode from --pacman-conf inside the root (with a notice), or not
// at all (--require-frontend). The returned func releases pacman's root.
func (c *HookCmd) request(g *Globals, names []string) (pacman.Request, func(), error) {
	none := func() {}
	fe, err := pacman.InspectParent(procDir, os.Getppid())
	if err == nil {
		req, err := fe.Request(names, pacman.Limits{})
		var ce *pacman.ConfError
		if errors.As(err, &ce) {
			fe.Close()
			return req, none, usageErrorf(ce.Hint(), "cannot read pacman's configuration as pacman does: %v: transaction aborted", err)
		}
		if err != nil {
			fe.Close()
			return req, none, runErrorf(err, "bintrans reads pacman's configuration, databases and cache as pacman itself does; check that pacman's paths exist",
				"cannot establish what pacman (pid %d) installs: %v: transaction aborted", fe.PID, err)
		}
		return req, fe.Close, nil
	}
	var fe2 *pacman.FrontendError
	if !errors.As(err, &fe2) {
		return pacman.Request{}, none, runErrorf(err, "", "%v", err)
	}
	if fe2.Kind == pacman.BadCommandLine {
		return pacman.Request{}, none, runErrorf(err, "bintrans reads pacman 6.0.2's options; run pacman with plain options (pacman -S NAME, pacman -U /path/FILE), and report the command line if pacman accepted it",
			"%v: what pacman installs is unknown: transaction aborted", err)
	}
	var how string
	switch fe2.Kind {
	case pacman.NoProc:
		how = "mount /proc in the root for the full check: mount --bind /proc ROOT/proc (pacstrap and arch-chroot do)"
	case pacman.NotPacman:
		how = "install with pacman for the full check"
	default:
		how = "the full check needs pacman's /proc entries"
	}
	if c.RequireFrontend {
		return pacman.Request{}, none, verificationFailed(how+", or drop require-frontend to check such transactions in strict mode",
			"%v: bintrans cannot establish which files are installed, and require-frontend is set: transaction aborted", err)
	}
	conf, err := pacman.ParseFile(c.PacmanConf, pacman.Limits{})
	if err != nil {
		return pacman.Request{}, none, usageErrorf("in strict mode bintrans hook reads --pacman-conf inside pacman's RootDir", "%v", err)
	}
	// alpm chroots every hook into RootDir: the paths of pacman.conf are
	// host paths, seen here relative to the root.
	inRoot, err := conf.InRoot()
	if err != nil {
		return pacman.Request{}, none, usageErrorf("keep DBPath inside RootDir so that hooks can read the sync databases", "%v", err)
	}
	if len(inRoot.CacheDirs) < len(conf.CacheDirs) {
		return pacman.Request{}, none, verificationFailed(how,
			"strict mode: a CacheDir of %s is outside RootDir, so the hook cannot see the files pacman may install from it: transaction aborted", c.PacmanConf)
	}
	fmt.Fprintf(g.Stderr, "bintrans: notice: strict mode: %s; every cached candidate of each package must verify, but a local file installed under the name of a cached repository package cannot be told apart (%s)\n",
		safetext.Line(err2line(fe2)), how)
	return pacman.Request{Names: names, Config: inRoot, FS: pacman.HostFS{}}, none, nil
}

// err2line is the notice's reason: what the hook could not see.
func err2line(e *pacman.FrontendError) string {
	switch e.Kind {
	case pacman.NoProc:
		return "/proc is not mounted inside RootDir, so bintrans cannot see what was asked of libalpm"
	case pacman.NotPacman:
		return fmt.Sprintf("the transaction was started by %s, not pacman, so bintrans cannot read what it asked of libalpm", e.Exe)
	}
	return e.Error()
}

// failureReason is "<status>: <evidence>", on one safe line.
func failureReason(r verify.Result) string {
	if r.Err == nil {
		return string(r.Status)
	}
	return string(r.Status) + ": " + ci.Reason(r)
}

// mode describes the policy's mode for summaries.
func (f *PolicyFlags) mode() string {
	switch {
	case f.LogKind == kindSigsum:
		return "offline, from Sigsum proofs (policy " + safetext.Line(f.SigsumPolicy) + ")"
	case f.Offline:
		return "offline, from proof bundles"
	case f.LogKind == kindRekorV2:
		read := f.LogReadURL
		if read == "" {
			read = f.LogURL
		}
		return "online, Rekor v2 log " + safetext.Line(read)
	}
	return "online, log " + safetext.Line(f.LogURL)
}

// describeArtifact names a package as the user knows it, repo/filename,
// made safe for a terminal (the names come from a repository database).
func describeArtifact(a verify.Artifact) string {
	if a.Repo == "" {
		return safetext.Line(a.Filename)
	}
	return safetext.Line(a.Repo + "/" + a.Filename)
}
