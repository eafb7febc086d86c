package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/progress"
	"github.com/bintrans/bintrans/internal/pacman"
	"github.com/bintrans/bintrans/verify"
	"github.com/bintrans/bintrans/internal/safetext"
)

// HookCmd is `bintrans hook`, run by alpm as hooks/bintrans.hook: a
// PreTransaction hook with NeedsTargets and AbortOnFail. alpm runs it after
// the downloads, chrooted into pacman's RootDir with the working directory
// "/", with the target package names on stdin. It verifies the whole
// transaction in one batch; any non-zero exit aborts it before a file is
// installed. It relies on nothing of pacman's process, so it guards every
// libalpm front-end (paru, yay, pamac) the same way.
type HookCmd struct {
	PolicyFlags

	PacmanConf       string `name:"pacman-conf" help:"pacman's configuration, as seen inside RootDir." default:"/etc/pacman.conf" placeholder:"FILE"`
	UnsafeAllowLocal bool   `name:"unsafe-allow-local" help:"UNSAFE: let packages that are in no sync database (pacman -U FILE) through unverified."`
}

// Run verifies the transaction. Exit 0: every package verified; 1: at
// least one failed (each is named with its reason); 2: configuration
// error; 3: could not verify (e.g. the log is unreachable online).
// Every non-zero exit aborts the transaction.
func (c *HookCmd) Run(g *Globals) error {
	ctx := g.Context()
	names, err := pacman.ParseTargets(io.LimitReader(g.Stdin, int64(pacman.MaxTargets)*(pacman.MaxNameLen+2)))
	if err != nil {
		return runErrorf(err, "bintrans hook reads the target names alpm writes (NeedsTargets)", "%v", err)
	}
	if len(names) == 0 {
		return nil
	}
	conf, err := pacman.ParseFile(c.PacmanConf, pacman.Limits{})
	if err != nil {
		return usageErrorf("bintrans hook runs chrooted into pacman's RootDir: --pacman-conf is read inside it", "%v", err)
	}
	// alpm chroots every hook into RootDir: the paths of pacman.conf are
	// host paths, seen here relative to the root.
	inRoot, err := conf.InRoot()
	if err != nil {
		return usageErrorf("keep DBPath inside RootDir so that hooks can read the sync databases", "%v", err)
	}
	targets, err := pacman.Resolve(inRoot, names)
	if err != nil {
		return runErrorf(err, "", "%v", err)
	}
	batch := pacman.NewBatch(targets, pacman.BatchOptions{UnsafeAllowLocal: c.UnsafeAllowLocal, CacheDirs: inRoot.CacheDirs})

	pol, err := c.build(ctx)
	if err != nil {
		return err
	}
	defer pol.Close()

	bar := progress.New(g.Stderr, len(batch.Artifacts), "bintrans: verifying")
	pol.Verifier.Progress = func(int, int, verify.Result) { bar.Add(1) }
	engine, verr := pol.Verifier.VerifyAll(ctx, batch.Artifacts)
	bar.Done()
	if engine == nil { // the batch has no verdicts: every package is unverified
		engine = make([]verify.Result, len(batch.Artifacts))
		for i, a := range batch.Artifacts {
			engine[i] = verify.Result{Artifact: a, Status: verify.StatusUnavailable, Err: verr}
		}
	}
	results, err := batch.Results(engine)
	if err != nil {
		return runErrorf(err, "", "%v", err)
	}

	failed, skipped := 0, 0
	for i, r := range results {
		switch {
		case batch.Skipped(i):
			skipped++
			fmt.Fprintf(g.Stderr, "bintrans: UNVERIFIED %s: in no sync database, allowed by --unsafe-allow-local\n", safetext.Line(r.Artifact.Name))
		case !r.OK():
			failed++
			fmt.Fprintf(g.Stderr, "bintrans: REFUSED %s: %s\n", describeArtifact(r.Artifact), failureReason(r))
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
		return runErrorf(verr, "retry when the log is reachable, or set offline = true to verify from proof bundles only",
			"%v: %d of %d packages unverified: transaction aborted", verr, failed, len(results))
	case verr != nil:
		return runErrorf(verr, "", "verification did not complete: %v: transaction aborted", verr)
	case failed > 0:
		return verificationFailed("do not install packages that are not provably in the transparency log; the refused files stay in pacman's cache for inspection",
			"%d of %d packages failed verification: transaction aborted", failed, len(results))
	}
	if skipped > 0 {
		fmt.Fprintf(g.Stderr, "bintrans: %d packages verified (%s), %d let through unverified\n", len(results)-skipped, c.mode(), skipped)
		return nil
	}
	fmt.Fprintf(g.Stderr, "bintrans: %d packages verified (%s)\n", len(results), c.mode())
	return nil
}

// describeArtifact names a package as the user knows it, repo/filename,
// made safe for a terminal (the names come from a repository database).
func describeArtifact(a verify.Artifact) string {
	if a.Repo == "" {
		return safetext.Line(a.Filename)
	}
	return safetext.Line(a.Repo + "/" + a.Filename)
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
	if f.Offline {
		return "offline, from proof bundles"
	}
	return "online, log " + safetext.Line(f.LogURL)
}
