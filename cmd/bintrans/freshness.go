package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/freshcheck"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/pacman"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/internal/sigsource"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// FreshnessFlags are the client's policy for repository statements
// (docs/STATEMENTS.md): hook, fetch, check-dbs, verify, scan and doctor.
type FreshnessFlags struct {
	MaxDBAge       time.Duration `name:"max-db-age" default:"168h" placeholder:"DURATION" help:"Refuse a sync database whose repository statement is older than this (a frozen mirror, or an operator who stopped signing). 0 disables the check (a warning on every run)."`
	RepoStatements []string      `name:"repo-statements" placeholder:"REPO=MODE" sep:"none" help:"Per-repository statement policy (in the config: 'statements = MODE' in a [repo NAME] section): required (a database without a statement is refused), optional (the default: a repository never seen with a statement is a warning; once one was accepted, a database without one is refused), off (not checked, a warning). Repeatable."`
}

// stmtModes parses --repo-statements.
func (f *FreshnessFlags) stmtModes() (map[string]freshness.Mode, error) {
	m := map[string]freshness.Mode{}
	for _, spec := range f.RepoStatements {
		repo, v, ok := strings.Cut(spec, "=")
		mode, err := freshness.ParseMode(v)
		if !ok || repo == "" || err != nil {
			return nil, usageErrorf("use --repo-statements core=required (or 'statements = required' in a [repo core] section of the config); modes: required, optional, off",
				"--repo-statements %q: want REPO=required|optional|off", spec)
		}
		m[repo] = mode
	}
	return m, nil
}

// stmtPolicy is the age policy, with the loud warning of a disabled check.
func (f *FreshnessFlags) stmtPolicy(stderr io.Writer) (freshness.Policy, error) {
	switch {
	case f.MaxDBAge < 0:
		return freshness.Policy{}, usageErrorf("give a duration such as 168h, or 0 to disable the check", "--max-db-age %s is negative", f.MaxDBAge)
	case f.MaxDBAge == 0:
		fmt.Fprintln(stderr, "bintrans: WARNING: max-db-age is 0: the age of sync databases is not checked, a frozen mirror withholds every update unnoticed")
	}
	return freshness.Policy{MaxAge: f.MaxDBAge}, nil
}

// stmtParts is what the statements' verifier shares with the engine's.
type stmtParts struct {
	src   verify.SignatureSource
	log   verify.LogClient
	store verify.CheckpointStore
}

// statementVerifier verifies statements as artifacts with the engine's
// keys, log and checkpoint store, without the rebuilder policy (a
// statement is not rebuilt).
func (e *engine) statementVerifier() (*verify.Verifier, sigsource.StatementSource, error) {
	ss, ok := e.stmt.src.(sigsource.StatementSource)
	if !ok {
		return nil, nil, errors.New("the signature source cannot serve repository statements")
	}
	p := e.policy
	p.RequiredRebuildConfirms = 0
	v, err := verify.NewVerifier(p, e.stmt.src, e.stmt.log, e.stmt.store, nil)
	if err != nil {
		return nil, nil, usageErrorf("", "%v", err)
	}
	return v, ss, nil
}

// stmtRun is one check of a run's sync databases.
type stmtRun struct {
	verdicts []freshcheck.Verdict
	err      error // the engine's run error (log unavailable, security error)
}

// checkStatements checks dbs against their statements with the engine's
// policy. With keep, the state directory's accepted records are the
// rollback baseline (and the run may later keep its own, stmtRun.keep);
// without, nothing is compared or kept (scan, in CI).
func (e *engine) checkStatements(ctx context.Context, g *Globals, f *PolicyFlags, dbs []freshcheck.DB, archs []string, keep bool) (*stmtRun, error) {
	modes, err := f.stmtModes()
	if err != nil {
		return nil, err
	}
	pol, err := f.stmtPolicy(g.Stderr)
	if err != nil {
		return nil, err
	}
	v, src, err := e.statementVerifier()
	if err != nil {
		return nil, err
	}
	o := freshcheck.Options{Verifier: v, Source: src, Architectures: archs, Policy: pol, Modes: modes}
	if keep && e.state != nil {
		acc, err := freshcheck.Load(e.state)
		if err != nil {
			return nil, runErrorf(err, "", "the repository statements this client accepted: %v", err)
		}
		o.Accepted = acc
	}
	vs, runErr := freshcheck.Check(ctx, o, dbs)
	return &stmtRun{verdicts: vs, err: runErr}, nil
}

// report prints one line per database that is not simply fine (all of
// them with verbose) and returns the verdict of the run: nil when none was
// refused or unchecked, else the error in the one voice (exit 1 for a
// refusal, 3 when a database could not be checked). what ends the message
// (": transaction aborted").
func (r *stmtRun) report(g *Globals, verbose bool, what string) error {
	r.print(g, verbose)
	return r.verdict(g, what)
}

// print writes one line per database that is not simply fine (all of them
// with verbose) on stderr.
func (r *stmtRun) print(g *Globals, verbose bool) {
	for _, v := range r.verdicts {
		name := safetext.Line("[" + v.DB.Repo + "] " + v.DB.Path)
		switch v.Outcome {
		case freshcheck.OK:
			if verbose {
				st := v.Statement
				fmt.Fprintf(g.Stderr, "bintrans: %s: statement %d for %s/%s, issued %s ago\n", name, st.Counter, safetext.Line(st.Repository), safetext.Line(st.Architecture), freshness.Human(time.Since(st.Issued)))
			}
		case freshcheck.Unstated, freshcheck.Off:
			fmt.Fprintf(g.Stderr, "bintrans: warning: %s\n", safetext.Message(v.Err.Error()))
		case freshcheck.Refused:
			fmt.Fprintf(g.Stderr, "bintrans: REFUSED %s: %s\n", name, safetext.Message(v.Err.Error()))
		default:
			fmt.Fprintf(g.Stderr, "bintrans: %s: not checked: %s\n", name, safetext.Message(v.Err.Error()))
		}
	}
}

// verdict is the run's verdict (see report), printing only the evidence
// of a log that contradicts itself.
func (r *stmtRun) verdict(g *Globals, what string) error {
	refused, unavailable := 0, 0
	var first error
	for _, v := range r.verdicts {
		switch v.Outcome {
		case freshcheck.Refused:
			refused++
		case freshcheck.Unavailable:
			unavailable++
		default:
			continue
		}
		if first == nil {
			first = v.Err
		}
	}
	var sec *verify.SecurityError
	var lu *verify.LogUnavailableError
	switch {
	case errors.As(r.err, &sec):
		fmt.Fprintln(g.Stderr, safetext.Text(r.err.Error()))
		return verificationFailed("keep both tree heads above and report them; do not install until the log is explained",
			"the repository statements could not be verified against a consistent log%s", what)
	case refused > 0:
		return verificationFailed(stmtHint(first), "%d sync database(s) refused%s", refused, what)
	case errors.As(r.err, &lu):
		return runErrorf(r.err, logUnavailableHint(r.err, "retry when the log is reachable, or set offline = true to verify from proof bundles only"),
			"%v: the repository statements could not be verified%s", r.err, what)
	case r.err != nil:
		return runErrorf(r.err, "", "the repository statements could not be verified: %v%s", r.err, what)
	case unavailable > 0:
		return runErrorf(first, "check the transparency URL and the network; a database is used only once its statement was checked",
			"%d sync database(s) could not be checked%s", unavailable, what)
	}
	return nil
}

// results are the verdicts as report entries.
func (r *stmtRun) results() []ci.DBResult {
	out := make([]ci.DBResult, 0, len(r.verdicts))
	for _, v := range r.verdicts {
		d := ci.DBResult{Repo: v.DB.Repo, Path: v.DB.Path, SHA256: v.Digest.SHA256, Outcome: string(v.Outcome)}
		if st := v.Statement; st != nil {
			d.Arch, d.Counter, d.Issued = st.Architecture, st.Counter, st.Issued
		}
		if res := v.Result; res != nil && res.Entry != nil {
			i := res.Entry.LogIndex
			d.LogIndex, d.UUID = &i, res.Entry.UUID
		}
		if v.Err != nil {
			d.Reason = v.Err.Error()
		}
		out = append(out, d)
	}
	return out
}

// stmtHint says what to do about the first refusal.
func stmtHint(err error) string {
	var stale *freshness.StaleError
	var rb *freshness.RollbackError
	var conflict *freshness.ConflictError
	var future *freshness.FutureError
	var missing *freshcheck.MissingError
	switch {
	case errors.As(err, &stale):
		return "the mirror serves a database that is no longer current (or the operator stopped signing): use another mirror (/etc/pacman.d/mirrorlist) and refresh with 'pacman -Syy'; 'bintrans check-dbs' checks again"
	case errors.As(err, &rb):
		return "a mirror served a database older than one this machine used before: use another mirror and refresh with 'pacman -Syy'"
	case errors.As(err, &conflict):
		return "keep both statements (the record in the state directory and the statement named above) and report them to the repository's operator and auditors"
	case errors.As(err, &future):
		return "check this machine's clock (timedatectl)"
	case errors.As(err, &missing):
		return "the mirror serves a database its operator never vouched for: use another mirror and refresh with 'pacman -Syy' (or, if the repository stopped publishing statements on purpose, set 'statements = off' in its [repo] section)"
	}
	return "the database's statement is not the operator's, or not logged: use another mirror and refresh with 'pacman -Syy'"
}

// keep stores the accepted records of a run that succeeded as a whole: in
// the engine's state directory when it holds the lock (online), otherwise
// in a writable opening of --state-dir under its lock. A failure is a
// warning: the run's verdict stands, only the rollback baseline did not
// move.
func (r *stmtRun) keep(ctx context.Context, g *Globals, e *engine, f *PolicyFlags) {
	dir, locked := e.state, e.unlock != nil
	if dir == nil || dir.ReadOnly() {
		d, err := state.Open(f.StateDir)
		if err != nil {
			fmt.Fprintf(g.Stderr, "bintrans: warning: the accepted repository statements were not kept: %v\n", safetext.Message(err.Error()))
			return
		}
		dir, locked = d, false
	}
	if _, err := freshcheck.Commit(ctx, dir, locked, r.verdicts); err != nil {
		fmt.Fprintf(g.Stderr, "bintrans: warning: the accepted repository statements were not kept: %v\n", safetext.Message(err.Error()))
	}
}

// syncDBs are the sync databases of a pacman configuration, read through
// fsys: <DBPath>/sync/<repo>.db of every repository whose database exists
// (pacman cannot install from one it does not have).
func syncDBs(fsys pacman.FileSystem, conf *pacman.Config) ([]freshcheck.DB, error) {
	var out []freshcheck.DB
	for _, r := range conf.Repos {
		// As pacman.BuildPlan reads them: no lexical cleaning.
		p := strings.TrimSuffix(conf.DBPath, "/") + "/sync/" + r.Name + ".db"
		st, err := fsys.Stat(p)
		switch {
		case pacman.IsAbsent(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("sync database %s: %w", p, err)
		case !st.Mode().IsRegular():
			return nil, fmt.Errorf("sync database %s is not a regular file", p)
		}
		out = append(out, freshcheck.DB{Repo: r.Name, Path: p, Open: func() (io.ReadCloser, error) { return fsys.OpenRegular(p) }})
	}
	return out, nil
}

// readOnlyStore is a checkpoint store that keeps nothing: doctor proves
// what it sees against the stored checkpoint and writes nothing.
type readOnlyStore struct{ verify.CheckpointStore }

func (readOnlyStore) Store(context.Context, []byte) error { return nil }

// statementsEngine is an engine that checks repository statements only and
// writes nothing (doctor): the state directory opened read-only, a new
// checkpoint not stored, no lock.
func (f *PolicyFlags) statementsEngine(hc *http.Client) (*engine, error) {
	keys, err := f.keys()
	if err != nil {
		return nil, err
	}
	ls, err := f.logSetup()
	if err != nil {
		return nil, err
	}
	src, err := f.signatureSource(hc, "")
	if err != nil {
		return nil, err
	}
	offline := f.Offline || ls.OfflineOnly
	e := &engine{http: hc, log: ls, policy: verify.Policy{Keys: keys, Log: ls.Verifier, Witnesses: ls.Witnesses, Offline: offline, Concurrency: f.Jobs}}
	var log verify.LogClient
	if !offline {
		if log, err = ls.online(hc); err != nil {
			return nil, err
		}
	}
	sd, err := state.OpenReadOnly(f.StateDir)
	if err != nil {
		return nil, runErrorf(err, "check --state-dir (it must be a directory only root can write)", "state directory: %v", err)
	}
	e.state = sd
	ls.bindState(sd, true)
	e.stmt = stmtParts{src: src, log: log, store: readOnlyStore{sd.CheckpointsFor(ls.StateID)}}
	return e, nil
}
