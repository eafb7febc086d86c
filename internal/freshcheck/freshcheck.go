// Package freshcheck is the client's check of the sync databases it holds
// against their repository statements (docs/STATEMENTS.md), shared by
// every command that reads a database: the pacman hook, fetch (pacman's
// XferCommand), check-dbs, verify and scan.
//
// For each database: its sha256 (of the exact bytes pacman stores) names
// its statement, statements/<sha256>.stmt under the repository's
// transparency URL; the statement is verified by the engine as an
// artifact with that path as its file name (signed by the transparency
// key, provably in the log); then freshness.Check judges it against the
// database held, the newest statement this client accepted before for the
// repository and architecture, the time and the policy. A database without
// a statement is judged by the repository's mode (freshness.Mode).
//
// Nothing is kept by Check: the caller keeps the Accepted records of a run
// that succeeded as a whole (Commit), so that a refused run never moves
// the client's state.
package freshcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/sigsource"
	"github.com/bintrans/bintrans/verify"
)

// DB is one sync database to check.
type DB struct {
	// Repo is the repository's name as the client knows it (pacman.conf's
	// section; the database's file name without .db/.files).
	Repo string
	// Path names the database in messages (a path or URL).
	Path string
	// Files is set for the .files database (else the .db).
	Files bool
	// Open reads the database's bytes, to hash them; nil when Digest is
	// already known.
	Open   func() (io.ReadCloser, error)
	Digest freshness.Digest
	// Architectures, when set, replace Options.Architectures for this
	// database.
	Architectures []string
}

// Outcome is the verdict on one database.
type Outcome string

// The outcomes. The values appear in reports: never rename one.
const (
	// OK: the statement verifies, names this database and is fresh, and is
	// not older than one accepted before. Verdict.Accepted is the record
	// to keep.
	OK Outcome = "ok"
	// Unstated: no statement, and the repository's mode allows that (a
	// repository never seen with statements, mode optional): a warning.
	Unstated Outcome = "unstated"
	// Off: the repository's statements are not checked (mode off): a
	// warning.
	Off Outcome = "off"
	// Refused: stale, rolled back, two histories, another repository's or
	// architecture's, forged, not logged, or missing while required.
	Refused Outcome = "refused"
	// Unavailable: could not be checked (the statement could not be
	// fetched, the log could not be asked): not a verdict, never accepted.
	Unavailable Outcome = "unavailable"
)

// Verdict is the outcome for one DB.
type Verdict struct {
	DB      DB
	Digest  freshness.Digest
	Outcome Outcome
	// Statement is the statement found (nil when none), verified when
	// Outcome is OK or the refusal is about its content.
	Statement *freshness.Statement
	// Accepted is the record to keep (Outcome OK).
	Accepted *freshness.Accepted
	// Result is the engine's verdict on the statement (nil when none was
	// found).
	Result *verify.Result
	// Err says why (Refused, Unavailable, Unstated, Off).
	Err error
}

// Options are the check's policy and means.
type Options struct {
	// Verifier verifies statements as artifacts. It must require no
	// rebuilder confirmations (a statement is not rebuilt).
	Verifier *verify.Verifier
	// Source finds the statements (per repository).
	Source sigsource.StatementSource
	// Architectures are those the client installs for (pacman.conf's
	// Architecture, "auto" resolved). Nil: whatever the statement says
	// (a pacman.conf without Architecture; a database given by path).
	Architectures []string
	// Policy: the maximum age (0: not checked) and the clock skew.
	Policy freshness.Policy
	// Modes are the per-repository modes; a repository not named has
	// freshness.DefaultMode.
	Modes map[string]freshness.Mode
	// Accepted is what this client accepted before (nil: nothing kept, as
	// in CI: no rollback check, and "optional" stays a warning).
	Accepted *freshness.AcceptedSet
	// Now is the time of the check (zero: time.Now()).
	Now time.Time
}

// MissingError is a database without a statement where one is needed.
type MissingError struct {
	Repo   string
	Path   string
	SHA256 string
	// Required: the repository's mode is required; otherwise a statement
	// was accepted for it before (Prev, one of them).
	Required bool
	Prev     *freshness.Accepted
}

func (e *MissingError) Error() string {
	why := "statements are required for it (statements = required)"
	if !e.Required && e.Prev != nil {
		why = fmt.Sprintf("this client accepted its statement %d (issued %s) before: a database without one is a downgrade of protection",
			e.Prev.Counter, e.Prev.Issued.Format(time.RFC3339))
	}
	return fmt.Sprintf("NO STATEMENT: [%s] %s (sha256 %s) has no repository statement, and %s", e.Repo, e.Path, e.SHA256, why)
}

// UnverifiedError is a statement the engine refused: not signed by the
// transparency key, not logged, malformed.
type UnverifiedError struct {
	Repo   string
	Result verify.Result
}

func (e *UnverifiedError) Error() string {
	reason := string(e.Result.Status)
	if e.Result.Err != nil {
		reason += ": " + e.Result.Err.Error()
	}
	return fmt.Sprintf("the statement of [%s] does not verify (%s): a forged or unlogged statement", e.Repo, reason)
}

func (e *UnverifiedError) Unwrap() error { return e.Result.Err }

// Unstated is the warning of a repository without statements.
type UnstatedError struct {
	Repo string
	Path string
}

func (e *UnstatedError) Error() string {
	return fmt.Sprintf("[%s] has no repository statement for %s: a frozen or rolled-back mirror of it cannot be detected (statements = optional; required refuses such a database)", e.Repo, e.Path)
}

// OffError is the warning of a repository whose statements are not
// checked.
type OffError struct{ Repo string }

func (e *OffError) Error() string {
	return fmt.Sprintf("[%s]: statements = off: its databases are not checked for freshness", e.Repo)
}

// Check judges every database. It returns one Verdict per DB, in order,
// and a non-nil error only when the statements as a batch have no
// trustworthy verdict: the engine's *verify.LogUnavailableError or
// *verify.SecurityError, or the context's cause (every verdict not decided
// before is then Unavailable, or Refused for a SecurityError).
func Check(ctx context.Context, o Options, dbs []DB) ([]Verdict, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	vs := make([]Verdict, len(dbs))
	texts := make([][]byte, len(dbs))
	var g errgroup.Group
	g.SetLimit(8)
	for i := range dbs {
		vs[i].DB = dbs[i]
		if mode(o, dbs[i].Repo) == freshness.ModeOff {
			vs[i].Outcome, vs[i].Err = Off, &OffError{Repo: dbs[i].Repo}
			continue
		}
		g.Go(func() error {
			texts[i] = fetch(ctx, o, &vs[i])
			return nil
		})
	}
	g.Wait()

	// The statements found, verified in one batch.
	var arts []verify.Artifact
	var idx []int
	for i := range vs {
		if vs[i].Outcome != "" {
			continue
		}
		text := texts[i]
		name := freshness.Path(vs[i].Digest.SHA256)
		if vs[i].DB.Files {
			// The copy named by the .files database's hash is signed
			// under its database's name, which the statement gives.
			st, err := freshness.Parse(text)
			if err != nil {
				vs[i].Outcome, vs[i].Err = Refused, fmt.Errorf("the statement of [%s] %s: %w", vs[i].DB.Repo, vs[i].DB.Path, err)
				continue
			}
			name = freshness.Path(st.DB.SHA256)
		}
		arts = append(arts, verify.Artifact{Filename: name, Repo: vs[i].DB.Repo,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(text)), nil }})
		idx = append(idx, i)
	}
	var runErr error
	if len(arts) > 0 {
		var results []verify.Result
		results, runErr = o.Verifier.VerifyAll(ctx, arts)
		for j, i := range idx {
			r := verify.Result{Artifact: arts[j], Status: verify.StatusUnavailable, Err: runErr}
			if j < len(results) {
				r = results[j]
			}
			vs[i].Result = &r
			judge(o, now, &vs[i], texts[i], r)
		}
	}
	return vs, runErr
}

func mode(o Options, repo string) freshness.Mode {
	if m, ok := o.Modes[repo]; ok {
		return m
	}
	return freshness.DefaultMode
}

// fetch hashes the database and fetches its statement, deciding the
// verdict when there is none.
func fetch(ctx context.Context, o Options, v *Verdict) []byte {
	db := v.DB
	v.Digest = db.Digest
	if db.Open != nil {
		d, err := digest(db.Open)
		if err != nil {
			v.Outcome, v.Err = Unavailable, fmt.Errorf("reading [%s] %s: %w", db.Repo, db.Path, err)
			return nil
		}
		v.Digest = d
	}
	text, err := o.Source.Statement(ctx, verify.Artifact{Filename: freshness.Path(v.Digest.SHA256), Repo: db.Repo})
	switch {
	case err == nil:
		return text
	case errors.Is(err, verify.ErrNotFound):
		var prev *freshness.Accepted
		if o.Accepted != nil {
			for _, a := range o.Accepted.All() {
				if a.Repository == db.Repo && (prev == nil || a.Counter > prev.Counter) {
					prev = a
				}
			}
		}
		switch {
		case mode(o, db.Repo) == freshness.ModeRequired:
			v.Outcome, v.Err = Refused, &MissingError{Repo: db.Repo, Path: db.Path, SHA256: v.Digest.SHA256, Required: true}
		case prev != nil:
			v.Outcome, v.Err = Refused, &MissingError{Repo: db.Repo, Path: db.Path, SHA256: v.Digest.SHA256, Prev: prev}
		default:
			v.Outcome, v.Err = Unstated, &UnstatedError{Repo: db.Repo, Path: db.Path}
		}
	case errors.Is(err, verify.ErrTooLarge):
		v.Outcome, v.Err = Refused, fmt.Errorf("the statement of [%s] %s: %w", db.Repo, db.Path, err)
	default:
		v.Outcome, v.Err = Unavailable, fmt.Errorf("fetching the statement of [%s] %s: %w", db.Repo, db.Path, err)
	}
	return nil
}

// judge decides a verdict from the engine's result on the statement.
func judge(o Options, now time.Time, v *Verdict, text []byte, r verify.Result) {
	repo := v.DB.Repo
	switch {
	case r.Status == verify.StatusUnavailable:
		v.Outcome, v.Err = Unavailable, fmt.Errorf("the statement of [%s] could not be verified: %w", repo, r.Err)
		return
	case !r.OK():
		v.Outcome, v.Err = Refused, &UnverifiedError{Repo: repo, Result: r}
		return
	}
	st, err := freshness.Parse(text)
	if err != nil {
		v.Outcome, v.Err = Refused, fmt.Errorf("the statement of [%s] %s: %w", repo, v.DB.Path, err)
		return
	}
	v.Statement = st
	archs := o.Architectures
	if v.DB.Architectures != nil {
		archs = v.DB.Architectures
	}
	if len(archs) == 0 {
		archs = []string{st.Architecture}
	}
	held := freshness.Held{Repository: repo, Architectures: archs, File: v.Digest, Files: v.DB.Files}
	var prev *freshness.Accepted
	if o.Accepted != nil {
		prev = o.Accepted.Get(repo, st.Architecture)
	}
	acc, err := freshness.Check(st, freshness.DigestOf(text).SHA256, held, prev, now, o.Policy)
	if err != nil {
		v.Outcome, v.Err = Refused, err
		return
	}
	v.Outcome, v.Accepted = OK, acc
}

// digest hashes a database, streaming.
func digest(open func() (io.ReadCloser, error)) (freshness.Digest, error) {
	f, err := open()
	if err != nil {
		return freshness.Digest{}, err
	}
	defer f.Close()
	sum, n, err := verify.HashReader(f)
	if err != nil {
		return freshness.Digest{}, err
	}
	return freshness.Digest{SHA256: sum, Size: n}, nil
}
