package signer

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/verify"
)

// Repository statements (docs/STATEMENTS.md). After its packages, every
// database of the run that was read and released gets a statement when it
// has none, when the published one is not the newest statement about its
// repository and architecture (the repository went back to an older
// database), when the .files database changed, or when the published one
// is StatementInterval old (the heartbeat). A statement goes through the
// packages' pipeline (intent, upload, verify, audit record, publish,
// settle), as the artifact "statements/<db sha256>.stmt":
//
//	statements/<db sha256>.stmt.t.bundle   its proof, first
//	statements/<db sha256>.stmt.t          its signature (trusted comment: its path)
//	statements/<db sha256>.stmt            the statement
//	statements/<files sha256>.stmt         the same statement again, for a client
//	                                       holding the .files database (its .t and
//	                                       proof are the db-named ones)
//
// The counter of every statement is stored, fsync'ed, in
// <state-dir>/sign/statements.jsonl before the statement is signed: a crash
// can skip a counter, never give one to two statements. A new counter is
// one above the highest of that file, the audit log's statement records
// and the published statement, so that losing the state dir (or the audit
// log) cannot reuse one.

// countersName is the file of the last counter per (repository,
// architecture) in the signer's state dir (a freshness.AcceptedSet).
const countersName = "statements.jsonl"

// StatementSummary is what the run did about one database's statement.
type StatementSummary struct {
	Repo string `json:"repo"`
	Arch string `json:"arch"`
	// Action is "issued" (signed, logged and published now), "current"
	// (the published statement stands), "withheld" (a package of the
	// database was refused: no statement for it) or "failed" (see the
	// Failure).
	Action string `json:"action"`
	// Reason says why a statement was issued: "first statement", "new
	// database", "new files database", "heartbeat", "newer statement of
	// another database"; for a failure, the error.
	Reason      string `json:"reason,omitempty"`
	Path        string `json:"path,omitempty"`
	Counter     uint64 `json:"counter,omitempty"`
	Issued      string `json:"issued,omitempty"`
	DBSHA256    string `json:"db_sha256"`
	FilesSHA256 string `json:"files_sha256,omitempty"`
	LogIndex    *int64 `json:"log_index,omitempty"`
}

// StageStatement: a statement could not be built (the .files database
// could not be read, two databases with one hash, a clock behind the last
// statement's time, the counter could not be stored).
const StageStatement Stage = "statement"

// statementDir creates (the first time) and opens the statements
// subdirectory of the signature dir.
func (s *Signer) statementDir() (*durable.Dir, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.stmtDir != nil {
		return s.stmtDir, nil
	}
	dir := filepath.Join(s.o.SignatureDir, freshness.Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d, err := durable.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	s.stmtDir = d
	return d, nil
}

func (st *stateDir) loadCounters() (*freshness.AcceptedSet, error) {
	b, err := durable.ReadFile(filepath.Join(st.dir, countersName), freshness.MaxAcceptedRecords*freshness.MaxAcceptedSize)
	if errors.Is(err, os.ErrNotExist) {
		return freshness.NewAcceptedSet(), nil
	}
	if err != nil {
		return nil, err
	}
	set, err := freshness.ParseAcceptedSet(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (the last statement counters: a human must look; the audit log's statement records hold them too)", filepath.Join(st.dir, countersName), err)
	}
	return set, nil
}

func (st *stateDir) storeCounters(set *freshness.AcceptedSet) error {
	b, err := set.Marshal()
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(st.dir, countersName), b, 0o600)
}

// withheld names the databases that get no statement, and why: a package
// of theirs was refused (no packager signature releases it), cannot be
// recorded, or conflicts with another database's. A statement says "this
// database is current"; the operator must not vouch for one that holds
// what its packagers did not release. (Failures that a re-run fixes, such
// as an upload, do not withhold it: the packages that failed are refused
// by clients until they are published.)
func withheld(fails []Failure) map[[2]string]string {
	out := map[[2]string]string{}
	for _, f := range fails {
		switch f.Stage {
		case StageRelease, StageRecord, StageConflict:
			k := [2]string{f.Repo, f.Arch}
			if out[k] == "" {
				what := f.Filename
				if what == "" {
					what = f.URL
				}
				out[k] = fmt.Sprintf("%s: %s", what, f.Stage)
			}
		}
	}
	return out
}

// statements issues the statements of dbs that are due. An error stops the
// run (the counters cannot be read); a database whose statement fails is a
// Failure; one in hold (withheld) gets none.
func (s *Signer) statements(ctx context.Context, stop context.CancelCauseFunc, dbs []*DB, hold map[[2]string]string, sum *Summary, c *counters) error {
	interval := s.o.StatementInterval
	if interval <= 0 {
		interval = freshness.DefaultInterval
	}
	now := time.Now
	if s.o.Now != nil {
		now = s.o.Now
	}
	set, err := s.state.loadCounters()
	if err != nil {
		return err
	}
	byHash := map[string]Source{}
	for _, db := range dbs {
		src := db.Source
		ss := StatementSummary{Repo: src.Repo, Arch: src.Arch, DBSHA256: db.SHA256, Path: freshness.Path(db.SHA256)}
		failed := func(stage Stage, err error) {
			ss.Action, ss.Reason = "failed", err.Error()
			sum.Statements = append(sum.Statements, ss)
			sum.Failures = append(sum.Failures, Failure{Repo: src.Repo, Arch: src.Arch, Filename: ss.Path, URL: db.URL, Stage: stage, Error: err.Error(), Err: err})
		}
		if ctx.Err() != nil {
			failed(StageCanceled, context.Cause(ctx))
			continue
		}
		if why := hold[[2]string{src.Repo, src.Arch}]; why != "" {
			// The packages' failures already fail the run.
			ss.Action, ss.Reason = "withheld", "the database holds a package that was not signed ("+why+"): no statement vouches for it"
			sum.Statements = append(sum.Statements, ss)
			continue
		}
		if other, ok := byHash[db.SHA256]; ok {
			failed(StageStatement, fmt.Errorf("the database is byte for byte %s/%s's: a statement names one repository and architecture, and is found by the database's hash", other.Repo, other.Arch))
			continue
		}
		byHash[db.SHA256] = src
		files, err := s.filesDigest(ctx, src)
		if err != nil {
			failed(StageStatement, err)
			continue
		}
		ss.FilesSHA256 = files.SHA256
		pub, pubP := s.publishedStatement(db.SHA256)
		if pub != nil && (pub.Repository != src.Repo || pub.Architecture != src.Arch) {
			failed(StageStatement, fmt.Errorf("%s is a statement for %s/%s: the two databases are byte for byte the same, and a statement names one repository and architecture", ss.Path, pub.Repository, pub.Architecture))
			continue
		}
		last := set.Get(src.Repo, src.Arch)
		top := s.auditCounters[[2]string{src.Repo, src.Arch}]
		if last != nil {
			top = max(top, last.Counter)
		}
		reason := ""
		switch {
		case pub == nil && top == 0:
			reason = "first statement"
		case pub == nil:
			reason = "new database"
		case pub.Files != files:
			reason = "new files database"
		case pub.Counter < top:
			reason = "newer statement of another database"
		case now().Sub(pub.Issued) >= interval:
			reason = "heartbeat"
		}
		if pub != nil {
			top = max(top, pub.Counter)
		}
		if reason == "" {
			// Current. A new audit log gets its record (the audit log
			// explains every entry of the key).
			ss.Action, ss.Counter, ss.Issued, ss.LogIndex = "current", pub.Counter, pub.Issued.Format(time.RFC3339), &pubP.index
			b, _ := pub.Marshal()
			sha := freshness.DigestOf(b).SHA256
			if err := s.auditPublished(pubP, audit.StatementRecord(pub, sha, db.URL), c); err != nil {
				stop(err)
				failed(StageAudit, err)
				continue
			}
			if s.o.RefreshBundles {
				s.settlePublished(pubP, src, ss.Path, sha)
			}
			sum.StatementsCurrent++
			sum.Statements = append(sum.Statements, ss)
			continue
		}
		issued := now().UTC().Truncate(time.Second)
		if last != nil && issued.Before(last.Issued) {
			failed(StageStatement, fmt.Errorf("this machine's clock (%s) is behind the last statement's time (%s, counter %d): clients would refuse a statement dated before it; fix the clock",
				issued.Format(time.RFC3339), last.Issued.Format(time.RFC3339), last.Counter))
			continue
		}
		st := &freshness.Statement{Repository: src.Repo, Architecture: src.Arch, DB: freshness.Digest{SHA256: db.SHA256, Size: db.Size},
			Files: files, Counter: top + 1, Issued: issued, Interval: interval.Truncate(time.Second)}
		index, stage, err := s.issue(ctx, stop, st, db.URL, set, c)
		if err != nil {
			failed(stage, err)
			continue
		}
		ss.Action, ss.Reason, ss.Counter, ss.Issued, ss.LogIndex = "issued", reason, st.Counter, issued.Format(time.RFC3339), &index
		sum.StatementsIssued++
		sum.Statements = append(sum.Statements, ss)
	}
	return nil
}

// issue stores st's counter, then signs st and takes it through the
// pipeline (the log's kind decides which). It returns the statement's log
// index.
func (s *Signer) issue(ctx context.Context, stop context.CancelCauseFunc, st *freshness.Statement, dbURL string, set *freshness.AcceptedSet, c *counters) (int64, Stage, error) {
	text, err := st.Marshal()
	if err != nil {
		return 0, StageStatement, err
	}
	sha := freshness.DigestOf(text).SHA256
	path := freshness.Path(st.DB.SHA256)
	if _, err := set.Put(&freshness.Accepted{Repository: st.Repository, Architecture: st.Architecture, Counter: st.Counter,
		Issued: st.Issued, DBSHA256: st.DB.SHA256, StatementSHA256: sha}); err != nil {
		return 0, StageStatement, err
	}
	// Durable before anything is signed: a counter is never given twice.
	if err := s.state.storeCounters(set); err != nil {
		return 0, StageStatement, fmt.Errorf("storing the statement counter: %w", err)
	}
	sk, err := s.key()
	if err != nil {
		return 0, StageSign, err
	}
	t, err := signStatement(sk, sha, path)
	if err != nil {
		return 0, StageSign, err
	}
	in := &intent{SchemaVersion: 1, Signature: t, Record: audit.StatementRecord(st, sha, dbURL), Statement: text}
	log := s.logRekorV1
	if s.o.Note != nil {
		log = s.logNote
	}
	if stage, err := log(ctx, stop, in, sk, c); err != nil {
		return 0, stage, err
	}
	p, ok := s.publishedStatementProof(path, sha)
	if !ok {
		return 0, StagePublish, fmt.Errorf("%s: published, but does not verify when read back", path)
	}
	return p.index, "", nil
}

// logRekorV1 is issue's pipeline on Rekor v1: intent, upload, verify,
// audit, publish (finish).
func (s *Signer) logRekorV1(ctx context.Context, stop context.CancelCauseFunc, in *intent, _ *minisign.PrivateKey, c *counters) (Stage, error) {
	sig, err := verify.ParseSignature(in.Signature)
	if err != nil {
		return StageSign, err
	}
	in.LeafHash = rekorv1.LeafHash(rekorv1.CanonicalBody(sig, s.o.PublicKey, []byte(in.Record.SHA256)))
	if err := s.state.writeIntent(in); err != nil {
		return StageIntent, err
	}
	return s.finish(ctx, stop, in, false, c)
}

// logNote is issue's pipeline on a NoteLog (Rekor v2, Sigsum): the
// statement's own entry (the log's second signature by the transparency
// key sk, as for a package), intent, log, verify, audit, publish; it is
// settled with the run's packages.
func (s *Signer) logNote(ctx context.Context, stop context.CancelCauseFunc, in *intent, sk *minisign.PrivateKey, c *counters) (Stage, error) {
	priv := ed25519.PrivateKey(sk.SecretKey[:])
	leaf, err := s.o.Note.Leaf(priv, in.Record.SHA256)
	if err != nil {
		return StageSign, err
	}
	in.LeafHash, in.LogKind = hex.EncodeToString(leaf[:]), s.o.Note.Kind()
	if err := s.state.writeIntent(in); err != nil {
		return StageIntent, err
	}
	p := &notePending{in: in, res: s.o.Note.LogAll(ctx, priv, []string{in.Record.SHA256}, nil)[0]}
	return s.noteFinish(ctx, stop, p, c)
}

// signStatement is verify.SignPackage for a statement: the same message
// (the hex sha256 of the file, prehashed), the trusted comment its path.
func signStatement(sk *minisign.PrivateKey, sha256Hex, path string) ([]byte, error) {
	if _, ok := freshness.IsPath(path); !ok {
		return nil, fmt.Errorf("sign: %q is not a statement path", path)
	}
	sig, err := sk.Sign([]byte(sha256Hex), minisign.SignOptions{TrustedComment: path, Hashed: true})
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", path, err)
	}
	return sig.Encode(), nil
}

// publishStatement writes a statement's file after its .t and bundle, and
// the copy named by the .files database's hash.
func (s *Signer) publishStatement(r audit.Record, text []byte) error {
	st, err := freshness.Parse(text)
	if err != nil {
		return fmt.Errorf("the statement of %s does not parse: %w", r.Filename, err)
	}
	if freshness.Path(st.DB.SHA256) != r.Filename || freshness.DigestOf(text).SHA256 != r.SHA256 {
		return fmt.Errorf("the statement does not match its record %s", r.Filename)
	}
	d, err := s.statementDir()
	if err != nil {
		return err
	}
	if err := d.WriteFile(st.DB.SHA256+freshness.Suffix, text, 0o644); err != nil {
		return err
	}
	if !st.Files.IsZero() {
		if err := d.WriteFile(st.Files.SHA256+freshness.Suffix, text, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// publishedProof is a published statement's verified `.t` and proof:
// a Rekor v1 entry, or a NoteLog bundle.
type publishedProof struct {
	index  int64
	t      []byte
	e      *rekorv1.Entry // Rekor v1
	note   *NoteProof     // NoteLog
	bundle []byte         // NoteLog
}

// publishedStatementProof reads and verifies, offline, the published `.t`
// and proof of the statement at path with sha256 sha.
func (s *Signer) publishedStatementProof(path, sha string) (*publishedProof, bool) {
	if s.o.Note != nil {
		p, t, b, ok := s.notePublished(path, sha)
		if !ok {
			return nil, false
		}
		return &publishedProof{index: int64(p.Index), t: t, note: p, bundle: b}, true
	}
	e, t, ok := s.publishedT(path, sha)
	if !ok {
		return nil, false
	}
	return &publishedProof{index: e.LogIndex, t: t, e: e}, true
}

// auditPublished makes sure the audit log records a published statement's
// entry (a new audit log gets its record: the audit log explains every
// entry of the key).
func (s *Signer) auditPublished(p *publishedProof, r audit.Record, c *counters) error {
	if p.note != nil {
		leaf := hex.EncodeToString(p.note.Leaf[:])
		if s.isAuditedLeaf(leaf) {
			return nil
		}
		return s.ensureAuditedLeaf(leaf, s.noteRecord(r, p.note), c)
	}
	if s.isAudited(p.e) {
		return nil
	}
	return s.ensureAudited(r, p.e, c)
}

// settlePublished queues a published statement's proof for this run's
// settle (--refresh-bundles).
func (s *Signer) settlePublished(p *publishedProof, src Source, path, sha string) {
	if p.note != nil {
		s.addNoteSettle(&noteSettleItem{filename: path, sha: sha, bundle: p.bundle, proof: p.note})
		return
	}
	s.addSettle(&settleItem{repo: src.Repo, arch: src.Arch, filename: path, sha: sha, t: p.t, e: p.e})
}

// publishedStatement is the statement published for the database with
// sha256 dbSHA256 when its .t and proof verify offline and it names that
// database; nil otherwise.
func (s *Signer) publishedStatement(dbSHA256 string) (*freshness.Statement, *publishedProof) {
	path := freshness.Path(dbSHA256)
	text, err := durable.ReadFile(filepath.Join(s.o.SignatureDir, filepath.FromSlash(path)), freshness.MaxSize)
	if err != nil {
		return nil, nil
	}
	st, err := freshness.Parse(text)
	if err != nil || st.DB.SHA256 != dbSHA256 {
		return nil, nil
	}
	p, ok := s.publishedStatementProof(path, freshness.DigestOf(text).SHA256)
	if !ok {
		return nil, nil
	}
	return st, p
}

// filesDigest is the digest of the source's <repo>.files, streamed; zero
// when the repository has none.
func (s *Signer) filesDigest(ctx context.Context, src Source) (freshness.Digest, error) {
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	name := src.Repo + ".files"
	r, err := openPackage(ctx, s.o.HTTP, src, name)
	if errors.Is(err, verify.ErrNotFound) {
		return freshness.Digest{}, nil
	}
	if err != nil {
		return freshness.Digest{}, fmt.Errorf("%s: %w", strings.TrimSuffix(src.PackageURL(name), ""), err)
	}
	defer r.Close()
	sum, err := r.hashAll()
	if err != nil {
		return freshness.Digest{}, err
	}
	return freshness.Digest{SHA256: sum, Size: r.n}, nil
}
