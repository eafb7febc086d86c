package signer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// NoteLog is a transparency log whose tree heads are C2SP signed notes and
// whose proofs the signer keeps as `.t.bundle` files: Rekor v2 and Sigsum
// (Options.Note). Rekor v1 is Options.Log. Every method but LogAll and
// Settle is pure.
//
// With a NoteLog the pipeline is the same as with Rekor v1 (release check,
// `.t`, intent, log, verify, audit, publish, settle) except that the
// packages of a run are logged together (LogAll: many adds in flight), and
// the log entry is a second signature by the transparency key that the
// log's own format requires (Rekor v2: Ed25519ph over SHA-512 of the
// message the `.t` signs; Sigsum: Ed25519 over the Sigsum leaf of the
// package's sha256). Both are deterministic, so an entry's leaf hash is
// known before it is logged (the intent) and a re-run logs the same entry
// (the log answers "already logged").
type NoteLog interface {
	// Kind is audit.LogKindRekorV2 or audit.LogKindSigsum.
	Kind() string
	// Origin is the log's checkpoint origin (its identity).
	Origin() string
	// Leaf is the RFC 6962 leaf hash of the entry that logs priv's
	// signature of the package whose hex sha256 is sha.
	Leaf(priv ed25519.PrivateKey, sha string) ([32]byte, error)
	// LogAll logs the entries of the packages shas (signed with priv) and
	// returns, in the order of shas, each entry's bundle (verified: the
	// same checks as Verify) or why it could not be logged. each, when
	// not nil, is also given every outcome as soon as it is known
	// (shas[i]'s as each(i, …), possibly from many goroutines at once),
	// before LogAll returns.
	LogAll(ctx context.Context, priv ed25519.PrivateKey, shas []string, each func(int, NoteResult)) []NoteResult
	// Verify checks a bundle offline: it proves that pub's entry for sha
	// is in a tree whose checkpoint the pinned log signed.
	Verify(bundle []byte, pub ed25519.PublicKey, sha string) (*NoteProof, error)
	// VerifyCheckpoint checks a checkpoint note of the pinned log.
	VerifyCheckpoint(note []byte) (*NoteCheckpoint, error)
	// Settle re-proves bundles at the log's current checkpoint, which must
	// extend stored (nil: nothing stored) and every bundle's checkpoint,
	// requests witness cosignatures for it where configured, and returns
	// the new bundles. A log that contradicts itself is a
	// *verify.SecurityError; a log that cannot be asked is another error,
	// and the bundles stay as they are. A kind whose proofs need no
	// settling returns (nil, nil).
	Settle(ctx context.Context, stored *NoteCheckpoint, pub ed25519.PublicKey, items []NoteBundle, jobs int) (*NoteSettled, error)
}

// NoteCheckpoint is a verified checkpoint of a NoteLog.
type NoteCheckpoint struct {
	Origin string
	Size   uint64
	Root   [32]byte
	// Note is the signed note (with any cosignature lines).
	Note []byte
}

// NoteProof is what a verified bundle proves: the entry with leaf hash Leaf
// is at Index in the tree of Checkpoint.
type NoteProof struct {
	Index      uint64
	Leaf       [32]byte
	Checkpoint NoteCheckpoint
}

// NoteResult is one entry's outcome in LogAll.
type NoteResult struct {
	Bundle []byte
	Proof  *NoteProof
	Err    error
	// Rejected: the log refused the entry itself (not a transport error):
	// StageVerify rather than StageUpload.
	Rejected bool
}

// NoteBundle is a published bundle to settle.
type NoteBundle struct {
	Bundle []byte
	SHA    string
}

// NoteSettled is the outcome of Settle.
type NoteSettled struct {
	// Checkpoint is the tree head every settled bundle carries (with the
	// witness cosignatures obtained).
	Checkpoint *NoteCheckpoint
	// Bundles are the new bundles, in the order of the items; nil where
	// Errs says why the item could not be re-proven (it keeps its bundle).
	Bundles [][]byte
	Errs    []error
	// Cosignatures are the witnesses whose cosignature the checkpoint
	// carries; WitnessErrors why the others gave none (warnings).
	Cosignatures  []string
	WitnessErrors []string
}

// ContradictionError is a published entry the log's later data contradicts
// (its tiles do not hold the entry where its bundle says): a StageSettle
// failure.
type ContradictionError struct{ Err error }

func (e *ContradictionError) Error() string { return e.Err.Error() }
func (e *ContradictionError) Unwrap() error { return e.Err }

// noteCheckpointName is the state file of a NoteLog's checkpoint (in the
// one checkpoint store's format): one per kind and origin, so that a shard
// rotation (a new origin) starts a new file and is never compared with the
// old shard's checkpoint.
func noteCheckpointName(kind, origin string) string {
	h := sha256.Sum256([]byte(origin))
	return "checkpoint-" + kind + "-" + hex.EncodeToString(h[:8]) + ".json"
}

func isNoteCheckpointName(name string) bool {
	for _, k := range []string{audit.LogKindRekorV2, audit.LogKindSigsum} {
		rest, ok := strings.CutPrefix(name, "checkpoint-"+k+"-")
		rest, json := strings.CutSuffix(rest, ".json")
		if ok && json && len(rest) == 16 && leafRE.MatchString(rest+strings.Repeat("0", 48)) {
			return true
		}
	}
	return false
}

// noteCheckpoints is the NoteLog's checkpoint store.
func (s *Signer) noteCheckpoints() *state.CheckpointStore {
	return state.NewCheckpointStore(filepath.Join(s.state.dir, noteCheckpointName(s.o.Note.Kind(), s.o.Note.Origin())), state.StoreOptions{})
}

// loadNoteCheckpoint returns the stored checkpoint of the NoteLog, verified,
// or nil when none is stored.
func (s *Signer) loadNoteCheckpoint() (*NoteCheckpoint, error) {
	st := s.noteCheckpoints()
	b, err := st.Load(context.Background())
	if err != nil || b == nil {
		return nil, err
	}
	cp, err := s.o.Note.VerifyCheckpoint(b)
	if err != nil {
		return nil, &StoredCheckpointError{Path: st.Path(), Err: err}
	}
	return cp, nil
}

// notePending is one entry to log in this run: a new package's or an
// interrupted run's intent.
type notePending struct {
	in        *intent
	recovered bool
	res       NoteResult
	proof     *NoteProof // the verified bundle's (noteAudit)
	fail      *Failure
	// audited: noteAudit ran as soon as the log answered (auditErr its
	// failure), while the other adds were still in flight.
	audited  bool
	auditErr *stageError
}

// runNote is Run's phases 2a to 3 for a NoteLog: it finishes the intents
// of an interrupted run together with the packages not yet published,
// logging all their entries at once, issues the statements of the released
// databases, then settles the run's bundles. It returns the
// *verify.SecurityError of the settle, if any.
func (r *run) runNote(ctx context.Context) error {
	s, jobs := r.s, r.jobs
	// Phase 2a, offline: what is already published (and audited) is done.
	todo := make([]bool, len(jobs))
	s.parallel(ctx, len(jobs), func(i int) {
		todo[i], jobs[i].fail = s.noteCheckPublished(ctx, r.stop, jobs[i], &r.c)
	})
	work := unpublished(jobs, todo)
	// Phase 2b: the entries to log: the interrupted run's, then new ones
	// (each with its intent written first).
	var pend []*notePending
	for _, in := range r.intents {
		pend = append(pend, &notePending{in: in, recovered: true})
	}
	var priv ed25519.PrivateKey
	if (len(work) > 0 || len(pend) > 0) && ctx.Err() == nil {
		sk, err := s.key()
		if err != nil {
			return err
		}
		priv = ed25519.PrivateKey(sk.SecretKey[:])
	}
	if len(work) > 0 && ctx.Err() == nil {
		pend = append(pend, r.notePrepare(ctx, work, priv)...)
	}
	r.noteLog(ctx, r.noteToLog(pend, priv), priv)
	for _, p := range pend {
		if p.fail != nil {
			r.sum.Failures = append(r.sum.Failures, *p.fail)
		}
	}
	r.jobFailures()
	// Phase 2e: the databases' statements, after their packages.
	if s.o.Statements && ctx.Err() == nil {
		if err := s.statements(ctx, r.stop, r.released, withheld(r.sum.Failures), r.sum, &r.c); err != nil {
			return err
		}
	}
	if err := s.saveHead(); err != nil {
		return err
	}
	// Phase 3: settle.
	s.settleMu.Lock()
	items := s.toNoteSettle
	s.settleMu.Unlock()
	if ctx.Err() != nil {
		r.sum.SettleFailed = len(items)
		return nil
	}
	start := time.Now()
	defer func() { r.sum.SettleSeconds = time.Since(start).Seconds() }()
	return s.noteSettle(ctx, items, r.sum)
}

// notePrepare signs the new packages and writes their intents, in
// parallel: the entries to log, in the order of work.
func (r *run) notePrepare(ctx context.Context, work []*job, priv ed25519.PrivateKey) []*notePending {
	news := make([]*notePending, len(work))
	r.s.parallel(ctx, len(work), func(i int) {
		in, f := r.s.notePrepare(ctx, r.stop, work[i], priv, &r.c)
		work[i].fail = f
		if in != nil {
			news[i] = &notePending{in: in}
		}
	})
	// One journal sync makes every new intent durable before any entry
	// is logged (not an fsync per intent).
	err := r.s.state.syncJournal()
	var pend []*notePending
	for i, p := range news {
		switch {
		case p == nil:
		case err != nil:
			work[i].fail = fail(work[i], StageIntent, err)
		default:
			pend = append(pend, p)
		}
	}
	return pend
}

// noteToLog are the pending entries to log. A recovered intent's entry is
// recomputed, and its leaf must be the one the intent recorded (the same
// key and log kind); otherwise the intent fails.
func (r *run) noteToLog(pend []*notePending, priv ed25519.PrivateKey) []*notePending {
	note := r.s.o.Note
	var toLog []*notePending
	for _, p := range pend {
		if !p.recovered {
			toLog = append(toLog, p)
			continue
		}
		rec := p.in.Record
		leaf, err := note.Leaf(priv, rec.SHA256)
		switch {
		case err != nil:
			p.fail = recoverFail(rec, StageSign, err)
		case p.in.LogKind != note.Kind() || hex.EncodeToString(leaf[:]) != p.in.LeafHash:
			p.fail = recoverFail(rec, StageIntent, fmt.Errorf("the intent (leaf %s) was written for another log (kind %q): run bintrans sign with that log to finish it", p.in.LeafHash, p.in.LogKind))
		default:
			toLog = append(toLog, p)
		}
	}
	return toLog
}

// noteLog is phases 2c and 2d: log every entry of toLog, many in flight,
// then verify, audit and publish each. When the run was stopped, the
// recovered intents among them fail as canceled.
func (r *run) noteLog(ctx context.Context, toLog []*notePending, priv ed25519.PrivateKey) {
	if ctx.Err() != nil {
		for _, p := range toLog {
			if p.recovered {
				p.fail = recoverFail(p.in.Record, StageCanceled, context.Cause(ctx))
			}
		}
		return
	}
	if len(toLog) == 0 {
		return
	}
	shas := make([]string, len(toLog))
	for i, p := range toLog {
		shas[i] = p.in.Record.SHA256
	}
	// Each package's entry is verified and audited as soon as the log
	// answers it, while the other adds wait for their checkpoint.
	r.s.o.Note.LogAll(ctx, priv, shas, func(i int, res NoteResult) {
		p := toLog[i]
		p.res = res
		if p.in.Record.IsStatement() {
			return // noteFinish, in notePublish
		}
		if stage, err := r.s.noteAudit(r.stop, p, &r.c); err != nil {
			p.auditErr = &stageError{stage, err}
		}
		p.audited = true
	})
	// Verify and audit each, publish them in one batch, then drop their
	// intents.
	for i, err := range r.s.notePublish(ctx, r.stop, toLog, &r.c) {
		p := toLog[i]
		if err != nil {
			if p.recovered {
				p.fail = recoverFail(p.in.Record, err.stage, err.err)
			} else {
				p.fail = &Failure{Repo: p.in.Record.Repo, Arch: p.in.Record.Arch, Filename: p.in.Record.Filename, Stage: err.stage, Error: err.err.Error(), Err: err.err}
			}
			continue
		}
		if p.recovered {
			r.c.recovered.Add(1)
		} else {
			r.c.signed.Add(1)
		}
	}
}

func recoverFail(r audit.Record, stage Stage, err error) *Failure {
	return &Failure{Repo: r.Repo, Arch: r.Arch, Filename: r.Filename, Stage: stage, Error: "finishing an interrupted run: " + err.Error(), Err: err}
}

// notePublished reports whether filename's .t and bundle are in the
// signature dir and verify offline for this key and hash, returning the
// proof and the files.
func (s *Signer) notePublished(filename, sha string) (*NoteProof, []byte, []byte, bool) {
	t, err := durable.ReadFile(filepath.Join(s.o.SignatureDir, filename+verify.SignatureSuffix), verify.MaxSignatureSize)
	if err != nil {
		return nil, nil, nil, false
	}
	b, err := durable.ReadFile(filepath.Join(s.o.SignatureDir, filename+verify.BundleSuffix), verify.MaxBundleSize)
	if err != nil {
		return nil, nil, nil, false
	}
	if _, _, err := verify.VerifySignature(t, []verify.PublicKey{s.o.PublicKey}, sha, filename); err != nil {
		return nil, nil, nil, false
	}
	verifyFn := s.o.Note.Verify
	if pv, ok := s.o.Note.(publishedVerifier); ok {
		verifyFn = pv.VerifyPublished
	}
	p, err := verifyFn(b, s.o.PublicKey.Ed25519(), sha)
	if err != nil {
		return nil, nil, nil, false
	}
	return p, t, b, true
}

// publishedVerifier is a NoteLog that also accepts, as published, bundles
// of the log's earlier shards (RekorV2 with Earlier).
type publishedVerifier interface {
	VerifyPublished(bundle []byte, pub ed25519.PublicKey, sha string) (*NoteProof, error)
}

// noteCheckPublished is checkPublished for a NoteLog.
func (s *Signer) noteCheckPublished(ctx context.Context, stop context.CancelCauseFunc, j *job, c *counters) (bool, *Failure) {
	if ctx.Err() != nil {
		return false, fail(j, StageCanceled, context.Cause(ctx))
	}
	p, _, b, ok := s.notePublished(j.pkg.Filename, j.pkg.SHA256Sum)
	if !ok {
		return true, nil
	}
	c.published.Add(1)
	// --refresh-bundles re-proves bundles of the current shard only (an
	// earlier shard's tree is not the one settled on).
	if s.o.RefreshBundles && p.Checkpoint.Origin == s.o.Note.Origin() {
		s.addNoteSettle(&noteSettleItem{filename: j.pkg.Filename, sha: j.pkg.SHA256Sum, bundle: b, proof: p})
	}
	leaf := hex.EncodeToString(p.Leaf[:])
	if s.isAuditedLeaf(leaf) {
		return false, nil
	}
	rel, relErr := s.release(ctx, j)
	var re *ReleaseError
	if relErr != nil && !errors.As(relErr, &re) {
		return false, fail(j, StageDownload, relErr)
	}
	j.release = rel
	if err := s.ensureAuditedLeaf(leaf, s.noteRecord(s.record(j), p), c); err != nil {
		stop(err)
		return false, fail(j, StageAudit, err)
	}
	if re != nil {
		return false, fail(j, StageRelease, fmt.Errorf("already published (log index %d), but its new audit record names no release signature: %w", p.Index, re))
	}
	return false, nil
}

// noteRecord fills in the log fields of an audit record for an entry of
// the NoteLog.
func (s *Signer) noteRecord(r audit.Record, p *NoteProof) audit.Record {
	r.LogIndex, r.UUID, r.IntegratedTime = int64(p.Index), hex.EncodeToString(p.Leaf[:]), 0
	r.LogKind, r.LogOrigin = s.o.Note.Kind(), p.Checkpoint.Origin
	return r
}

// notePrepare runs the pipeline for one package up to its intent: release
// check, optional download, `.t`, the entry's leaf hash, intent.
func (s *Signer) notePrepare(ctx context.Context, stop context.CancelCauseFunc, j *job, priv ed25519.PrivateKey, c *counters) (*intent, *Failure) {
	if ctx.Err() != nil {
		return nil, fail(j, StageCanceled, context.Cause(ctx))
	}
	if f := s.releaseAndCheck(ctx, stop, j, c); f != nil {
		return nil, f
	}
	p := j.pkg
	sk, err := s.key()
	if err != nil {
		return nil, fail(j, StageSign, err)
	}
	t, err := verify.SignPackage(sk, p.SHA256Sum, p.Filename)
	if err != nil {
		return nil, fail(j, StageSign, err)
	}
	leaf, err := s.o.Note.Leaf(priv, p.SHA256Sum)
	if err != nil {
		return nil, fail(j, StageSign, err)
	}
	in := &intent{SchemaVersion: 1, LeafHash: hex.EncodeToString(leaf[:]), Signature: t, Record: s.record(j), LogKind: s.o.Note.Kind()}
	// Durable once runNote syncs the journal, before the entry is logged.
	if err := s.state.appendIntent(in); err != nil {
		return nil, fail(j, StageIntent, err)
	}
	return in, nil
}

// noteFinish takes a logged entry to published: the bundle must prove the
// intent's leaf; audit record; `.t.bundle` then `.t`; intent removed.
func (s *Signer) noteFinish(ctx context.Context, stop context.CancelCauseFunc, p *notePending, c *counters) (Stage, error) {
	if stage, err := s.noteAudit(stop, p, c); err != nil {
		return stage, err
	}
	if err := s.publish(p.in, p.res.Bundle); err != nil {
		return StagePublish, err
	}
	s.addNoteSettle(&noteSettleItem{filename: p.in.Record.Filename, sha: p.in.Record.SHA256, bundle: p.res.Bundle, proof: p.proof})
	if err := s.state.removeIntent(p.in.LeafHash); err != nil {
		return StagePublish, err
	}
	return "", nil
}

// stageError is an entry's failure at a stage of the pipeline.
type stageError struct {
	stage Stage
	err   error
}

// publishJobs is how many logged entries notePublish verifies and audits
// at once: the audit log's appends share their fsyncs (group commit), so
// more at once is fewer fsyncs (3000 packages: 2.4 s at 256, 3.5-4 s at
// 64, load 8-11 on 2 cores).
const publishJobs = 256

// notePublish is noteFinish for many entries: each is verified and
// audited (durably) first, then every package's `.t.bundle` and `.t` are
// published in one batch (temp files, one data sync, the renames in that
// order, one directory sync: two fsyncs per package cost more than the
// rest of a run), and only then are the intents dropped. Statements (an
// interrupted run's) take noteFinish's path. It returns each entry's
// failure (nil: published).
func (s *Signer) notePublish(ctx context.Context, stop context.CancelCauseFunc, ps []*notePending, c *counters) []*stageError {
	errs := make([]*stageError, len(ps))
	files := make([][2]int, len(ps))
	batch := s.sigDir.Batch()
	s.parallelN(ctx, len(ps), max(s.o.Jobs, publishJobs), func(i int) {
		p := ps[i]
		if p.in.Record.IsStatement() {
			if stage, err := s.noteFinish(ctx, stop, p, c); err != nil {
				errs[i] = &stageError{stage, err}
			}
			files[i] = [2]int{-1, -1}
			return
		}
		if p.audited {
			errs[i] = p.auditErr
			return
		}
		if stage, err := s.noteAudit(stop, p, c); err != nil {
			errs[i] = &stageError{stage, err}
		}
	})
	// The temp files one at a time: creating files in one directory from
	// many threads at once contends for its lock and cost several times
	// the CPU.
	for i, p := range ps {
		if errs[i] != nil || files[i][0] < 0 {
			continue
		}
		name := p.in.Record.Filename
		var err error
		if files[i][0], err = batch.Add(name+verify.BundleSuffix, p.res.Bundle, 0o644); err == nil {
			files[i][1], err = batch.Add(name+verify.SignatureSuffix, p.in.Signature, 0o644)
		}
		if err != nil {
			errs[i] = &stageError{StagePublish, err}
		}
	}
	written, dirErr := batch.Commit()
	if dirErr != nil {
		dirErr = fmt.Errorf("syncing %s: %w", s.o.SignatureDir, dirErr)
	}
	var done []int
	var leaves []string
	for i, p := range ps {
		if errs[i] != nil || files[i][0] < 0 {
			continue
		}
		err := errors.Join(written[files[i][0]], written[files[i][1]])
		if err == nil {
			err = dirErr // the renames durable before the intent goes
		}
		if err != nil {
			errs[i] = &stageError{StagePublish, err}
			continue
		}
		s.addNoteSettle(&noteSettleItem{filename: p.in.Record.Filename, sha: p.in.Record.SHA256, bundle: p.res.Bundle, proof: p.proof})
		done, leaves = append(done, i), append(leaves, p.in.LeafHash)
	}
	if err := s.state.removeIntents(leaves); err != nil {
		for _, i := range done {
			errs[i] = &stageError{StagePublish, err}
		}
	}
	return errs
}

// noteAudit checks a logged entry (its bundle must prove the intent's
// leaf, its `.t` must verify) and durably writes its audit record.
func (s *Signer) noteAudit(stop context.CancelCauseFunc, p *notePending, c *counters) (Stage, error) {
	r := p.in.Record
	if p.res.Err != nil {
		if p.res.Rejected {
			return StageVerify, fmt.Errorf("the log refused the entry for %s: %w", r.Filename, p.res.Err)
		}
		return StageUpload, p.res.Err
	}
	// The bundle is verified again here, as a client will verify it: the
	// signer publishes nothing it would refuse.
	pr, err := s.o.Note.Verify(p.res.Bundle, s.o.PublicKey.Ed25519(), r.SHA256)
	if err != nil {
		return StageVerify, fmt.Errorf("the log's proof for %s does not verify, nothing published: %w", r.Filename, err)
	}
	if got := hex.EncodeToString(pr.Leaf[:]); got != p.in.LeafHash {
		return StageVerify, fmt.Errorf("the log's entry for %s has leaf hash %s, expected %s", r.Filename, got, p.in.LeafHash)
	}
	if _, _, err := verify.VerifySignature(p.in.Signature, []verify.PublicKey{s.o.PublicKey}, r.SHA256, r.Filename); err != nil {
		return StageSign, fmt.Errorf("the .t of %s does not verify: %w", r.Filename, err)
	}
	if err := s.ensureAuditedLeaf(p.in.LeafHash, s.noteRecord(r, pr), c); err != nil {
		stop(err)
		return StageAudit, err
	}
	p.proof = pr
	return "", nil
}

// noteSettleItem is a bundle of this run to settle.
type noteSettleItem struct {
	filename, sha string
	bundle        []byte
	proof         *NoteProof
}

func (s *Signer) addNoteSettle(it *noteSettleItem) {
	s.settleMu.Lock()
	s.toNoteSettle = append(s.toNoteSettle, it)
	s.settleMu.Unlock()
}

// noteSettle re-proves the run's bundles at the log's current checkpoint
// (proven to extend the stored one and every bundle's), with the
// witnesses' cosignatures, rewrites them and stores the checkpoint. As
// with Rekor v1, a bundle is only ever replaced by one that verifies, an
// unreachable log is a warning, and a log that contradicts itself is a
// returned *verify.SecurityError with nothing rewritten or stored.
func (s *Signer) noteSettle(ctx context.Context, items []*noteSettleItem, sum *Summary) error {
	items = uniqueNoteItems(items)
	if len(items) == 0 {
		return nil
	}
	stored, err := s.loadNoteCheckpoint()
	if err != nil {
		sum.warnSettle(err)
		sum.SettleFailed = len(items)
		return nil
	}
	nb := make([]NoteBundle, len(items))
	for i, it := range items {
		nb[i] = NoteBundle{Bundle: it.bundle, SHA: it.sha}
	}
	res, err := s.o.Note.Settle(ctx, stored, s.o.PublicKey.Ed25519(), nb, s.o.Jobs)
	var sec *verify.SecurityError
	if errors.As(err, &sec) {
		sum.SettleFailed = len(items)
		return err
	}
	if err != nil {
		sum.warnSettle(err)
		sum.SettleFailed = len(items)
		return nil
	}
	if res == nil { // nothing to settle for this kind: the bundles' own heads
		heads := map[string]bool{}
		for _, it := range items {
			heads[string(it.proof.Checkpoint.Note)] = true
		}
		sum.BundleCheckpoints = len(heads)
		return nil
	}
	sum.SettleMode = "tiles"
	sum.Cosignatures, sum.WitnessErrors = res.Cosignatures, res.WitnessErrors
	settled, data := s.verifyNoteBundles(items, res, sum)
	s.writeNoteBundles(settled, data, sum)
	cp := res.Checkpoint
	if stored == nil || cp.Size > stored.Size {
		if err := s.noteCheckpoints().Store(ctx, cp.Note); err != nil {
			sum.warnSettle(fmt.Errorf("storing the log's checkpoint: %w", err))
		}
	}
	sum.Checkpoint = &CheckpointSummary{Origin: cp.Origin, Size: int64(cp.Size), Root: hex.EncodeToString(cp.Root[:])}
	return nil
}

// uniqueNoteItems is items with one per file name (the first), by log
// index.
func uniqueNoteItems(items []*noteSettleItem) []*noteSettleItem {
	seen := map[string]bool{}
	var uniq []*noteSettleItem
	for _, it := range items {
		if !seen[it.filename] {
			seen[it.filename] = true
			uniq = append(uniq, it)
		}
	}
	sort.Slice(uniq, func(a, b int) bool { return uniq[a].proof.Index < uniq[b].proof.Index })
	return uniq
}

// verifyNoteBundles returns the re-proven bundles that verify for their
// published entry, with their bytes. A bundle the log's tiles contradict,
// or one that does not verify, is a StageSettle Failure; one the log
// could not prove is a warning. Neither is rewritten.
func (s *Signer) verifyNoteBundles(items []*noteSettleItem, res *NoteSettled, sum *Summary) ([]*noteSettleItem, [][]byte) {
	var settled []*noteSettleItem
	var data [][]byte
	for i, it := range items {
		var ce *ContradictionError
		switch {
		case errors.As(res.Errs[i], &ce):
			sum.Failures = append(sum.Failures, Failure{Filename: it.filename, Stage: StageSettle,
				Error: "the log's tiles contradict the published bundle: " + ce.Error(), Err: ce})
			sum.SettleFailed++
			continue
		case res.Errs[i] != nil:
			sum.warnSettle(fmt.Errorf("%s: %w", it.filename, res.Errs[i]))
			sum.SettleFailed++
			continue
		case res.Bundles[i] == nil:
			sum.SettleFailed++
			continue
		}
		// Never publish a bundle that does not verify.
		p, err := s.o.Note.Verify(res.Bundles[i], s.o.PublicKey.Ed25519(), it.sha)
		if err != nil || p.Leaf != it.proof.Leaf || p.Index != it.proof.Index {
			sum.Failures = append(sum.Failures, Failure{Filename: it.filename, Stage: StageSettle,
				Error: fmt.Sprintf("the re-proven bundle does not verify for the published entry: %v", err), Err: err})
			sum.SettleFailed++
			continue
		}
		settled = append(settled, it)
		data = append(data, res.Bundles[i])
	}
	return settled, data
}

// writeNoteBundles rewrites the settled bundles in one batch (bundleBatch:
// temp files, one sync, renames, one directory sync, as rewriteBundles).
// It counts sum.Settled and the failed writes in sum.SettleFailed.
func (s *Signer) writeNoteBundles(settled []*noteSettleItem, data [][]byte, sum *Summary) {
	batch := s.bundleBatch()
	refs := make([]bundleRef, len(settled))
	for i, it := range settled {
		var err error
		if refs[i], err = batch.add(it.filename, data[i]); err != nil {
			sum.warnSettle(fmt.Errorf("%s: %w", it.filename, err))
		}
	}
	written := batch.commit(sum)
	for i, it := range settled {
		switch err := written(refs[i]); {
		case refs[i] == noBundle:
			sum.SettleFailed++
		case err != nil:
			sum.warnSettle(fmt.Errorf("%s: %w", it.filename, err))
			sum.SettleFailed++
		default:
			sum.Settled++
		}
	}
	if sum.Settled > 0 {
		sum.BundleCheckpoints = 1
	}
}
