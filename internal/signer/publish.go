package signer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jedisct1/go-minisign"
	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// Log is what the signer needs from the transparency log.
// (*rekor.Client) satisfies it.
type Log interface {
	// Upload logs a rekord minisign entry of the `.t` t by the key in
	// pubKeyFile over message, returning the new entry or, when the log
	// answers 409 (already logged), the existing one.
	Upload(ctx context.Context, t, pubKeyFile, message []byte) (*rekorv1.Entry, error)
	// EntryByUUID fetches an entry by UUID or leaf hash; a missing entry is
	// an error wrapping verify.ErrNotFound.
	EntryByUUID(ctx context.Context, uuid string) (*rekorv1.Entry, error)
	// EntriesByIndex fetches entries by global log index, each with an
	// inclusion proof against the log's tree at the time of the request;
	// indexes the log does not return are absent from the map (settle).
	EntriesByIndex(ctx context.Context, indexes []int64) (map[int64]*rekorv1.Entry, error)
	// Checkpoint returns the log's current signed checkpoint (note text).
	Checkpoint(ctx context.Context) ([]byte, error)
	// ConsistencyProof returns the RFC 6962 consistency proof between two
	// tree sizes (0 < first <= last).
	ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error)
}

// DefaultJobs is the default number of packages in flight.
const DefaultJobs = 8

// Options configure a Signer.
type Options struct {
	// Key signs (decrypted); PublicKey is its pair (checked by New).
	// Instead of Key, LoadKey can supply it: it is called at most once, and
	// only when a package needs a new signature, so a run with nothing new
	// never decrypts the key (scrypt: seconds and 1 GB). Its error (and a
	// key that is not PublicKey's pair) is Run's error, returned before
	// anything is uploaded. A key from LoadKey is wiped by Close.
	Key       *minisign.PrivateKey
	LoadKey   func() (*minisign.PrivateKey, error)
	PublicKey verify.PublicKey
	// Log receives the signatures; LogKey is the log's pinned key: every
	// entry is verified under it before anything is published. LogURL is
	// written into audit records.
	Log    Log
	LogKey *rekorv1.LogKey
	LogURL string
	// Note, when set, is the log instead of Log and LogKey: a Rekor v2 or
	// a Sigsum log (see NoteLog). LogURL is still written into audit
	// records, with the kind and origin.
	Note NoteLog
	// SignatureDir receives <filename>.t and <filename>.t.bundle.
	SignatureDir string
	// AuditLog is the audit log's path; StateDir holds the intent journal
	// (in <StateDir>/sign/).
	AuditLog string
	StateDir string
	// Jobs bounds the packages in flight (default DefaultJobs).
	Jobs int
	// VerifyDownloads downloads and hashes every package before signing it,
	// refusing a package whose hash differs from the database's (implied
	// when each package's own signature is checked).
	VerifyDownloads bool
	// Release is how a package is established as released by the
	// repository's packagers before its sha256 is signed (default
	// ReleaseAuto). Keyring verifies the packagers' signatures; it is
	// required unless Release is ReleaseUnsafeTrustDB, which also lets
	// plain http:// sources through.
	Release ReleaseMode
	Keyring *Keyring
	// HTTP fetches databases and packages over http(s). Requests are bounded
	// in time by the signer's own contexts.
	HTTP *http.Client
	// MaxDBSize bounds a database (default repodb.DefaultMaxDBSize).
	MaxDBSize int64
	// Version is the bintrans version written into audit records.
	Version string
	// RefreshBundles re-proves every published bundle of the databases at
	// the settle, not only those written by this run (see Signer.Run).
	RefreshBundles bool
	// Progress, when set, is called after each package (from any goroutine,
	// serialized) with the number done and the total of the current phase.
	Progress func(done, total int)
	// Statements: after the packages, issue, log and publish a repository
	// statement (docs/STATEMENTS.md) for every database of the run that was
	// read and released, when its database changed or the last one is
	// StatementInterval old (default freshness.DefaultInterval). Now is the
	// clock of their issue times (default time.Now).
	Statements        bool
	StatementInterval time.Duration
	Now               func() time.Time
}

// Stage names where a package failed. The values appear in the JSON
// summary: never rename one.
type Stage string

// The stages of the pipeline, in order.
const (
	StageDB       Stage = "db"        // the database could not be fetched or parsed
	StageRelease  Stage = "release"   // no packager signature releases the package (or the database): refused
	StageRecord   Stage = "record"    // the database's entry holds text the audit log refuses (controls, bidi)
	StageConflict Stage = "conflict"  // the same filename with two different sha256s
	StageDownload Stage = "download"  // --verify-downloads: fetch or hash mismatch
	StageSign     Stage = "sign"      // signing failed
	StageIntent   Stage = "intent"    // the intent could not be recorded
	StageUpload   Stage = "upload"    // the log refused or could not be reached
	StageVerify   Stage = "verify"    // the log's entry does not verify: nothing published
	StageAudit    Stage = "audit"     // the audit record could not be written
	StagePublish  Stage = "publish"   // the .t or bundle could not be written
	StageCanceled Stage = "cancelled" // not attempted: the run stopped
)

// StageSettle: the package IS published (its bundle from the upload
// verified and stays), but its entry re-fetched from the log at the settle
// differs from the published one or does not verify: the log contradicts
// itself. Investigate.
const StageSettle Stage = "settle"

// Failure is one package (or database) the run could not finish.
type Failure struct {
	Repo     string `json:"repo,omitempty"`
	Arch     string `json:"arch,omitempty"`
	Filename string `json:"filename,omitempty"`
	URL      string `json:"url,omitempty"` // the database, for StageDB
	Stage    Stage  `json:"stage"`
	Error    string `json:"error"`
	Err      error  `json:"-"`
}

// Summary is what a run did. Counts are of distinct package files.
type Summary struct {
	SchemaVersion int `json:"schema_version"`
	// Databases read, in the order given.
	Databases []DBSummary `json:"databases"`
	// Packages is the number of distinct package files in the databases.
	Packages int `json:"packages"`
	// AlreadyPublished were skipped: their .t and bundle verified offline.
	AlreadyPublished int `json:"already_published"`
	// Signed were signed, logged (new entry or 409), verified and published.
	Signed int `json:"signed"`
	// ReleaseMode is how packages were established as released (Options.Release).
	ReleaseMode ReleaseMode `json:"release_mode"`
	// Refused packages have no packager signature that releases them
	// (StageRelease failures, each with a refusal record in the audit log).
	Refused int `json:"refused"`
	// Recovered are intents of an earlier, interrupted run finished now.
	Recovered int `json:"recovered"`
	// AuditRecords is the number of records appended to the audit log.
	AuditRecords int `json:"audit_records"`
	// Failed is the number of failures (len(Failures)).
	Failed   int       `json:"failed"`
	Failures []Failure `json:"failures"`
	// AuditHead is the audit log's head after the run.
	AuditHead audit.Head `json:"audit_head"`
	Seconds   float64    `json:"seconds"`

	// The settle (see Signer.Run). Settled bundles were re-proven against
	// the log's newest tree (and rewritten with that proof where needed);
	// SettleFailed bundles keep the valid proof of their upload answer.
	// BundleCheckpoints is the number of distinct tree heads the settled
	// bundles carry (1 unless the log grew during the settle).
	// SettleError is the first log or I/O error that left bundles
	// unsettled (a warning: those bundles are valid).
	Settled           int     `json:"settled"`
	SettleFailed      int     `json:"settle_failed"`
	SettleError       string  `json:"settle_error,omitempty"`
	BundleCheckpoints int     `json:"bundle_checkpoints"`
	SettleSeconds     float64 `json:"settle_seconds"`
	// SettleMode is how the fresh proofs were obtained: "derived" (computed
	// from the run's own entries up to the newest tree head of its upload
	// answers, plus other writers' entries in between), or "fetched" (every
	// entry re-fetched from the log; --refresh-bundles, or when deriving
	// would cost more).
	SettleMode string `json:"settle_mode,omitempty"`
	// Cosignatures names the witnesses whose cosignature the settled
	// checkpoint carries (sign --witness); WitnessErrors says why the
	// others gave none.
	Cosignatures  []string `json:"cosignatures,omitempty"`
	WitnessErrors []string `json:"witness_errors,omitempty"`
	// Checkpoint is the log's tree head this run verified, proved
	// consistent with the one stored by the previous run, and stored.
	Checkpoint *CheckpointSummary `json:"checkpoint,omitempty"`
	// SecurityError is set (the full evidence) when the log was not
	// consistent with what this signer saw before; Run then also returns
	// the *verify.SecurityError.
	SecurityError string `json:"security_error,omitempty"`
	// RemovedTempFiles counts temp files of an interrupted run removed at
	// start (from the signature dir and the state dir).
	RemovedTempFiles int `json:"removed_temp_files"`
	// TempFilesError is why some could not be removed (a warning).
	TempFilesError string `json:"temp_files_error,omitempty"`

	// Statements are the repository statements of the run's databases
	// (Options.Statements): issued now, or current (the published one is
	// this database's and younger than the interval). A statement that
	// could not be issued is also a Failure (its Filename the statement's
	// path).
	Statements        []StatementSummary `json:"statements,omitempty"`
	StatementsIssued  int                `json:"statements_issued"`
	StatementsCurrent int                `json:"statements_current"`
}

// CheckpointSummary is a verified tree head of the log.
type CheckpointSummary struct {
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	Root   string `json:"root"` // hex
}

// DBSummary describes one database of the run.
type DBSummary struct {
	Repo     string `json:"repo"`
	Arch     string `json:"arch"`
	URL      string `json:"url"`
	SHA256   string `json:"sha256,omitempty"`
	Packages int    `json:"packages"`
	// ReleaseCheck is what releases its packages: "db" (its signature,
	// Release), "package" (each package's signature) or "none"
	// (--unsafe-trust-db).
	ReleaseCheck string   `json:"release_check,omitempty"`
	Release      *Release `json:"release,omitempty"`
}

// Signer runs the signing pipeline. It holds the audit log's and the state
// dir's locks from New to Close.
type Signer struct {
	o       Options
	pubFile []byte
	keyID   string
	state   *stateDir
	audit   *audit.Writer
	// sigDir is the signature dir, open for group-committed fsyncs of the
	// renames into it.
	sigDir *durable.Dir
	// auditing holds, by leaf hash, the entries the audit log records or is
	// recording (done closes when the record is durable).
	auditedMu sync.Mutex
	auditing  map[string]*auditState
	// refusedRecs holds the refusals the audit log records (refusalKey).
	refusedRecs map[string]bool
	// The signing key, loaded on first need.
	keyOnce sync.Once
	sk      *minisign.PrivateKey
	keyErr  error
	loaded  bool
	// The bundles of this run, re-proven at its end.
	settleMu sync.Mutex
	toSettle []*settleItem
	// stmtDir is <signature dir>/statements, open for group-committed
	// fsyncs of the renames into it; auditCounters the highest statement
	// counter the audit log records per (repository, architecture).
	stmtMu        sync.Mutex
	stmtDir       *durable.Dir
	auditCounters map[[2]string]uint64
	// toNoteSettle are the bundles of a NoteLog run.
	toNoteSettle []*noteSettleItem
}

// auditState is one entry's audit record: written (done closed, err nil),
// being written, or failed.
type auditState struct {
	done chan struct{}
	err  error
}

var recorded = func() *auditState { st := &auditState{done: make(chan struct{})}; close(st.done); return st }()

// New checks the options, locks the state dir and the audit log, verifies
// the audit chain (and that it still ends at or after the head this signer
// saved last time) and returns a Signer. The caller must Close it.
func New(o Options) (*Signer, error) {
	if err := checkOptions(&o); err != nil {
		return nil, err
	}
	st, err := openState(o.StateDir)
	if err != nil {
		return nil, err
	}
	s := &Signer{o: o, pubFile: o.PublicKey.File(), keyID: o.PublicKey.KeyID(), state: st, auditing: map[string]*auditState{},
		refusedRecs: map[string]bool{}, auditCounters: map[[2]string]uint64{}}
	if o.Note != nil {
		_, err = s.loadNoteCheckpoint()
	} else {
		_, err = st.loadCheckpoint(o.LogKey)
	}
	if err != nil {
		st.close()
		return nil, err
	}
	w, err := s.openAudit()
	if err != nil {
		st.close()
		return nil, err
	}
	d, err := durable.OpenDir(o.SignatureDir)
	if err != nil {
		w.Close()
		st.close()
		return nil, err
	}
	s.audit, s.sigDir = w, d
	if o.Statements {
		if _, err := s.statementDir(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// checkOptions checks what New needs and fills in the defaults (release
// mode auto, DefaultJobs). An unencrypted key must be the public key's
// pair.
func checkOptions(o *Options) error {
	switch {
	case (o.Key == nil && o.LoadKey == nil) || (o.Key != nil && o.Key.IsEncrypted()):
		return errors.New("publish: no decrypted secret key")
	case o.PublicKey.IsZero():
		return errors.New("publish: no public key")
	case o.Note == nil && (o.Log == nil || o.LogKey == nil):
		return errors.New("publish: no log or no pinned log key")
	case o.SignatureDir == "" || o.AuditLog == "" || o.StateDir == "":
		return errors.New("publish: signature dir, audit log and state dir are required")
	}
	if o.Release == "" {
		o.Release = ReleaseAuto
	}
	switch o.Release {
	case ReleaseAuto, ReleaseDBSig, ReleasePackageSig:
		if o.Keyring == nil {
			return errors.New("publish: no keyring to verify the packagers' signatures with")
		}
	case ReleaseUnsafeTrustDB:
	default:
		return fmt.Errorf("publish: unknown release mode %q", o.Release)
	}
	if o.Key != nil {
		if err := checkPair(o.Key, o.PublicKey); err != nil {
			return err
		}
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if fi, err := os.Stat(o.SignatureDir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", o.SignatureDir)
	}
	return nil
}

// openAudit opens the audit log for appending and reads it through:
// which entries it records, its refusals, the statement counters. It must
// still end at or after the head this signer saved in the state dir last
// time (the same audit log only): an audit log cut short or rewritten is
// an error, and it is closed again.
func (s *Signer) openAudit() (*audit.Writer, error) {
	o, st := &s.o, s.state
	saved, err := st.loadHead()
	if err != nil {
		return nil, err
	}
	absAudit, err := filepath.Abs(o.AuditLog)
	if err != nil {
		return nil, err
	}
	if saved != nil && saved.AuditLog != absAudit {
		saved = nil // another audit log: nothing to compare with
	}
	var headErr error
	w, err := audit.OpenScan(o.AuditLog, func(line int, rec audit.Record) error {
		if rec.IsStatement() {
			k := [2]string{rec.Repo, rec.Arch}
			s.auditCounters[k] = max(s.auditCounters[k], rec.Counter)
		}
		if rec.IsRefusal() {
			s.refusedRecs[refusalKey(rec)] = true
		} else {
			s.auditing[leafOfUUID(rec.UUID)] = recorded
		}
		if saved != nil && line == saved.Records+1 && rec.Prev != saved.Hash && headErr == nil {
			headErr = headMismatch(absAudit, *saved, line, rec.Prev)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if headErr == nil && saved != nil {
		h := w.Head()
		switch {
		case h.Records < saved.Records:
			headErr = &audit.ChainError{Line: h.Records, Kind: audit.KindHeadMismatch,
				Expected: fmt.Sprintf("at least %d records", saved.Records), Got: fmt.Sprintf("%d records", h.Records)}
		case h.Records == saved.Records && h.Hash != saved.Hash:
			headErr = headMismatch(absAudit, *saved, h.Records, h.Hash)
		}
	}
	if headErr != nil {
		w.Close()
		return nil, fmt.Errorf("%s: %w (this signer's last run ended at record %d, %s; if the audit log was rotated on purpose, remove %s)",
			o.AuditLog, headErr, saved.Records, saved.Hash, st.headPath())
	}
	return w, nil
}

func headMismatch(path string, saved savedHead, line int, got string) error {
	return &audit.ChainError{Line: line, Kind: audit.KindHeadMismatch, Expected: saved.Hash, Got: got}
}

// leafOfUUID is the 64-hex leaf hash at the end of an entry UUID.
func leafOfUUID(uuid string) string {
	if len(uuid) > 64 {
		return uuid[len(uuid)-64:]
	}
	return uuid
}

func checkPair(sk *minisign.PrivateKey, pk verify.PublicKey) error {
	pub, err := minisign.NewPublicKey(pk.Base64())
	if err != nil {
		return err
	}
	return CheckKeyPair(sk, pub)
}

// key returns the signing key, loading it on first use.
func (s *Signer) key() (*minisign.PrivateKey, error) {
	s.keyOnce.Do(func() {
		if s.o.Key != nil {
			s.sk = s.o.Key
			return
		}
		sk, err := s.o.LoadKey()
		if err == nil && (sk == nil || sk.IsEncrypted()) {
			err = errors.New("publish: LoadKey returned no decrypted key")
		}
		if err == nil {
			if err = checkPair(sk, s.o.PublicKey); err != nil {
				sk.Wipe()
			}
		}
		if err != nil {
			s.keyErr = err
			return
		}
		s.sk, s.loaded = sk, true
	})
	return s.sk, s.keyErr
}

// Close saves the audit head in the state dir and releases the locks.
func (s *Signer) Close() error {
	var errs []error
	if s.audit != nil {
		if err := s.saveHead(); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, s.audit.Close())
	}
	if s.sigDir != nil {
		errs = append(errs, s.sigDir.Close())
	}
	if s.stmtDir != nil {
		errs = append(errs, s.stmtDir.Close())
	}
	errs = append(errs, s.state.close())
	if s.loaded {
		s.sk.Wipe()
	}
	return errors.Join(errs...)
}

func (s *Signer) saveHead() error {
	abs, err := filepath.Abs(s.o.AuditLog)
	if err != nil {
		return err
	}
	return s.state.storeHead(savedHead{AuditLog: abs, Head: s.audit.Head()})
}

// job is one distinct package file to sign.
type job struct {
	src     Source
	db      *DB
	pkg     repodb.Package
	check   string   // what releases it: audit.ReleaseDB, audit.ReleasePackage or "none"
	release *Release // established (nil under --unsafe-trust-db)
	fail    *Failure
}

// counters are updated by workers.
type counters struct {
	published, signed, recovered, audited, refused atomic.Int64
}

// Run finishes the intents of earlier runs, then fetches every source's
// database and signs every package that is not already published. Package
// failures are in the Summary (Run's error is nil for them); an error
// means the run could not proceed at all. Run is safe to repeat: a re-run
// finishes what an earlier one left.
//
// First, temp files that an interrupted run's atomic writes left in the
// signature dir and the state dir are removed (only names of exactly that
// form, for the files the signer writes).
//
// Last, the settle: every bundle written by this run (signed or recovered;
// with Options.RefreshBundles every published one) gets a fresh inclusion
// proof that must verify in full, and is rewritten atomically with it, so
// that the run's bundles share one tree head (verifiers then check one
// checkpoint signature and at most one consistency proof for the whole
// run, instead of one per upload). The proofs are derived at the newest
// tree head of the run's upload answers from the run's own entries (other
// writers' entries in between are fetched by index); with RefreshBundles,
// or when other writers' entries outnumber the run's, every entry is
// re-fetched from the log by index in parallel batches instead and must be
// the same entry (Summary.SettleMode). The log's current checkpoint is
// proven consistent with the one this signer stored last time (and with
// this run's upload answers) before anything is rewritten, then stored in
// <StateDir>/sign/checkpoint.json. A run that wrote nothing does not ask the log.
//
// The settle never removes or invalidates a published bundle. A log that
// cannot be asked leaves the bundles as published (Summary.SettleError,
// SettleFailed); a fresh entry that contradicts its bundle is a StageSettle
// Failure; a log inconsistent with what this signer saw before is a
// *verify.SecurityError returned together with the Summary, with nothing
// rewritten and the stored checkpoint kept.
func (s *Signer) Run(ctx context.Context, sources []Source) (*Summary, error) {
	r := &run{s: s, start: time.Now(), sum: &Summary{SchemaVersion: 1, Failures: []Failure{}}}
	s.settleMu.Lock()
	s.toSettle, s.toNoteSettle = nil, nil
	s.settleMu.Unlock()
	r.removeStaleTemps()
	// A failed audit append stops the run: nothing more is uploaded that
	// the audit log could not explain.
	ctx, r.stop = context.WithCancelCause(ctx)
	defer r.stop(nil)
	if err := r.recoverIntents(ctx); err != nil {
		return nil, err
	}
	if err := r.readDatabases(ctx, sources); err != nil {
		return nil, err
	}
	if s.o.Note != nil {
		// Phases 2a to 3 for a Rekor v2 or Sigsum log.
		secErr := r.runNote(ctx)
		var sec *verify.SecurityError
		if secErr != nil && !errors.As(secErr, &sec) {
			return nil, secErr
		}
		if sec != nil {
			r.sum.SecurityError = sec.Error()
		}
		return s.summarize(r.sum, &r.c, r.start), secErr
	}
	if err := r.signJobs(ctx); err != nil {
		return nil, err
	}
	// Phase 2c: the databases' statements, after their packages.
	if s.o.Statements && ctx.Err() == nil {
		if err := s.statements(ctx, r.stop, r.released, withheld(r.sum.Failures), r.sum, &r.c); err != nil {
			return nil, err
		}
	}
	if err := s.saveHead(); err != nil {
		return nil, err
	}
	secErr := r.settle(ctx)
	return s.summarize(r.sum, &r.c, r.start), secErr
}

// run is one Signer.Run: what its phases hand on to the next, the
// counters its workers update, the summary it fills, and stop, which a
// failed audit append calls to end the run.
type run struct {
	s     *Signer
	stop  context.CancelCauseFunc
	c     counters
	sum   *Summary
	start time.Time

	intents  []*intent // left by an interrupted run, by file name
	jobs     []*job    // the distinct package files of the released databases
	released []*DB     // the databases read and released: their statements
}

// removeStaleTemps is phase 0: the temp files of an interrupted run (the
// state lock is held: no other signer writes into these directories now).
func (r *run) removeStaleTemps() {
	s, sum := r.s, r.sum
	for _, d := range []struct {
		dir  string
		keep func(string) bool
	}{{s.o.SignatureDir, sigDirTarget}, {s.state.dir, stateDirTarget}, {filepath.Join(s.o.SignatureDir, freshness.Dir), stmtDirTarget}} {
		n, err := durable.RemoveStaleTemps(d.dir, d.keep)
		if errors.Is(err, os.ErrNotExist) && d.dir != s.o.SignatureDir {
			continue // no statement yet
		}
		sum.RemovedTempFiles += n
		if err != nil && sum.TempFilesError == "" {
			// Harmless leftovers: the run goes on (a broken directory
			// fails its packages with the cause).
			sum.TempFilesError = err.Error()
		}
	}
}

// recoverIntents is phase 1: the intents left by an interrupted run,
// finished now for Rekor v1 (a NoteLog logs them together with the new
// ones: runNote).
func (r *run) recoverIntents(ctx context.Context) error {
	s := r.s
	intents, err := s.state.intents()
	if err != nil {
		return err
	}
	sort.Slice(intents, func(i, j int) bool { return intents[i].Record.Filename < intents[j].Record.Filename })
	r.intents = intents
	if s.o.Note != nil {
		return nil
	}
	recFails := make([]*Failure, len(intents))
	s.parallel(ctx, len(intents), func(i int) {
		recFails[i] = s.recover(ctx, r.stop, intents[i], &r.c)
	})
	for _, f := range recFails {
		if f != nil {
			r.sum.Failures = append(r.sum.Failures, *f)
		}
	}
	return nil
}

// readDatabases is phase 2: the databases, each established as released
// (its own signature) or marked for a check of each package's signature,
// and their packages as jobs, one per distinct file name.
func (r *run) readDatabases(ctx context.Context, sources []Source) error {
	r.sum.ReleaseMode = r.s.o.Release
	seen := map[string]*job{}
	textFailures := 0
	for _, src := range sources {
		db, check, err := r.readDatabase(ctx, src)
		if err != nil {
			return err
		}
		if db == nil {
			continue
		}
		r.released = append(r.released, db)
		for _, p := range db.Packages {
			if prev, ok := seen[p.Filename]; ok {
				if prev.pkg.SHA256Sum != p.SHA256Sum {
					err := fmt.Errorf("%s is %s in %s/%s but %s in %s/%s", p.Filename, prev.pkg.SHA256Sum, prev.src.Repo, prev.src.Arch, p.SHA256Sum, src.Repo, src.Arch)
					r.sum.Failures = append(r.sum.Failures, Failure{Repo: src.Repo, Arch: src.Arch, Filename: p.Filename, Stage: StageConflict, Error: err.Error(), Err: err})
				}
				continue
			}
			j := &job{src: src, db: db, pkg: p, check: check}
			seen[p.Filename] = j
			if err := r.s.record(j).CheckText(); err != nil {
				// Nothing is signed that the audit log could not record
				// as it is (or a terminal could not show as it is).
				textFailures++
				err = fmt.Errorf("the database's entry for this package cannot be recorded: %w", err)
				r.sum.Failures = append(r.sum.Failures, *fail(j, StageRecord, err))
				continue
			}
			r.jobs = append(r.jobs, j)
		}
	}
	r.sum.Packages = len(r.jobs) + textFailures
	return nil
}

// readDatabase fetches src's database and establishes how it is released.
// A database that cannot be read or is not released is a Failure (and a
// refusal record in the audit log) and comes back nil; the error is one
// the run cannot go on after (the refusal could not be recorded).
func (r *run) readDatabase(ctx context.Context, src Source) (*DB, string, error) {
	s, sum := r.s, r.sum
	dbFail := func(stage Stage, err error) {
		sum.Failures = append(sum.Failures, Failure{Repo: src.Repo, Arch: src.Arch, URL: src.DBURL(), Stage: stage, Error: err.Error(), Err: err})
	}
	if src.PlainHTTP() && s.o.Release != ReleaseUnsafeTrustDB {
		sum.Databases = append(sum.Databases, DBSummary{Repo: src.Repo, Arch: src.Arch, URL: src.DBURL()})
		dbFail(StageDB, fmt.Errorf("%s: plain http:// repository URL refused (use https://, file:// or a directory; --unsafe-trust-db accepts it)", src.DBURL()))
		return nil, "", nil
	}
	db, err := FetchDB(ctx, s.o.HTTP, src, s.o.MaxDBSize)
	if err != nil {
		sum.Databases = append(sum.Databases, DBSummary{Repo: src.Repo, Arch: src.Arch, URL: src.DBURL()})
		dbFail(StageDB, err)
		return nil, "", nil
	}
	ds := DBSummary{Repo: src.Repo, Arch: src.Arch, URL: db.URL, SHA256: db.SHA256, Packages: len(db.Packages)}
	check, err := s.releaseDB(ctx, db)
	db.raw = nil
	if err != nil {
		sum.Databases = append(sum.Databases, ds)
		var re *ReleaseError
		if !errors.As(err, &re) {
			dbFail(StageDB, err)
			return nil, "", nil
		}
		dbFail(StageRelease, err)
		rec := audit.Record{Repo: src.Repo, Arch: src.Arch, Filename: src.Repo + ".db", DBURL: db.URL, DBSHA256: db.SHA256}
		return nil, "", s.refuse(rec, re)
	}
	ds.ReleaseCheck, ds.Release = check, db.Release
	sum.Databases = append(sum.Databases, ds)
	return db, check, nil
}

// signJobs is phases 2a and 2b for Rekor v1: what is already published
// (and audited) is done, offline; the rest is signed, logged, audited and
// published, the key decrypted only now.
func (r *run) signJobs(ctx context.Context) error {
	s, jobs := r.s, r.jobs
	todo := make([]bool, len(jobs))
	s.parallel(ctx, len(jobs), func(i int) {
		todo[i], jobs[i].fail = s.checkPublished(ctx, r.stop, jobs[i], &r.c)
	})
	work := unpublished(jobs, todo)
	if len(work) > 0 && ctx.Err() == nil {
		if _, err := s.key(); err != nil {
			return err
		}
		s.parallel(ctx, len(work), func(i int) {
			work[i].fail = s.signOne(ctx, r.stop, work[i], &r.c)
		})
	}
	r.jobFailures()
	return nil
}

// unpublished are the jobs still to sign (todo[i] for jobs[i]).
func unpublished(jobs []*job, todo []bool) []*job {
	var work []*job
	for i, j := range jobs {
		if todo[i] {
			work = append(work, j)
		}
	}
	return work
}

// jobFailures adds the jobs' failures to the summary.
func (r *run) jobFailures() {
	for _, j := range r.jobs {
		if j.fail != nil {
			r.sum.Failures = append(r.sum.Failures, *j.fail)
		}
	}
}

// settle is phase 3 for Rekor v1 (Signer.settle), unless the run was
// stopped: then its bundles stay as published.
func (r *run) settle(ctx context.Context) error {
	sum := r.sum
	settleStart := time.Now()
	var secErr error
	if items := r.s.toSettle; ctx.Err() == nil {
		secErr = r.s.settle(ctx, items, sum)
		var sec *verify.SecurityError
		if errors.As(secErr, &sec) {
			sum.SecurityError = sec.Error()
		}
	} else {
		sum.SettleFailed = len(items)
	}
	sum.SettleSeconds = time.Since(settleStart).Seconds()
	return secErr
}

// summarize completes a run's Summary.
func (s *Signer) summarize(sum *Summary, c *counters, start time.Time) *Summary {
	sort.SliceStable(sum.Failures, func(i, j int) bool {
		a, b := sum.Failures[i], sum.Failures[j]
		if a.Repo != b.Repo {
			return a.Repo < b.Repo
		}
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		return a.Filename < b.Filename
	})
	sum.AlreadyPublished = int(c.published.Load())
	sum.Signed = int(c.signed.Load())
	sum.Refused = int(c.refused.Load())
	sum.Recovered = int(c.recovered.Load())
	sum.AuditRecords = int(c.audited.Load())
	sum.Failed = len(sum.Failures)
	sum.AuditHead = s.audit.Head()
	sum.Seconds = time.Since(start).Seconds()
	return sum
}

// parallel runs fn(0..n-1) with at most Jobs in flight and reports progress.
func (s *Signer) parallel(ctx context.Context, n int, fn func(i int)) {
	s.parallelN(ctx, n, s.o.Jobs, fn)
}

// parallelN is parallel with at most limit calls at a time.
func (s *Signer) parallelN(ctx context.Context, n, limit int, fn func(i int)) {
	var g errgroup.Group
	g.SetLimit(limit)
	var mu sync.Mutex
	done := 0
	for i := range n {
		g.Go(func() error {
			fn(i)
			if s.o.Progress != nil {
				mu.Lock()
				done++
				s.o.Progress(done, n)
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
}

func fail(j *job, stage Stage, err error) *Failure {
	return &Failure{Repo: j.src.Repo, Arch: j.src.Arch, Filename: j.pkg.Filename, Stage: stage, Error: err.Error(), Err: err}
}

// published reports whether filename's .t and bundle are in the signature
// dir and verify offline for this key, hash and log key. It returns the
// verified entry.
func (s *Signer) published(filename, sha string) (*rekorv1.Entry, bool) {
	e, _, ok := s.publishedT(filename, sha)
	return e, ok
}

// publishedT is published that also returns the .t bytes.
func (s *Signer) publishedT(filename, sha string) (*rekorv1.Entry, []byte, bool) {
	t, err := durable.ReadFile(filepath.Join(s.o.SignatureDir, filename+verify.SignatureSuffix), verify.MaxSignatureSize)
	if err != nil {
		return nil, nil, false
	}
	b, err := durable.ReadFile(filepath.Join(s.o.SignatureDir, filename+verify.BundleSuffix), verify.MaxBundleSize)
	if err != nil {
		return nil, nil, false
	}
	e, err := rekorv1.ParseBundle(b)
	if err != nil {
		return nil, nil, false
	}
	if _, err := rekorv1.VerifyEntry(e, t, []verify.PublicKey{s.o.PublicKey}, sha, filename, s.o.LogKey); err != nil {
		return nil, nil, false
	}
	return e, t, true
}

// record builds the package part of an audit record.
func (s *Signer) record(j *job) audit.Record {
	p := j.pkg
	r := audit.Record{
		Repo: j.src.Repo, Arch: j.src.Arch, Filename: p.Filename, Name: p.Name, Version: p.Version,
		Packager: p.Packager, BuildDate: p.BuildDate, SHA256: p.SHA256Sum,
		DBURL: j.db.URL, DBSHA256: j.db.SHA256, LogURL: s.o.LogURL,
		KeyID: s.keyID, BintransVersion: s.o.Version,
	}
	if rel := j.release; rel != nil {
		r.ReleaseSig, r.ReleaseKey, r.ReleaseSigSHA256 = rel.Kind, rel.Key, rel.SigSHA256
	}
	return r
}

// checkPublished reports whether the package still needs signing; a
// package already published is audited if the audit log lacks it (e.g. a
// new audit log).
func (s *Signer) checkPublished(ctx context.Context, stop context.CancelCauseFunc, j *job, c *counters) (bool, *Failure) {
	if ctx.Err() != nil {
		return false, fail(j, StageCanceled, context.Cause(ctx))
	}
	e, t, ok := s.publishedT(j.pkg.Filename, j.pkg.SHA256Sum)
	if !ok {
		return true, nil
	}
	c.published.Add(1)
	if s.o.RefreshBundles {
		s.addSettle(&settleItem{repo: j.src.Repo, arch: j.src.Arch, filename: j.pkg.Filename, sha: j.pkg.SHA256Sum, t: t, e: e})
	}
	if s.isAudited(e) {
		return false, nil
	}
	// Logged and published, but the audit log lacks it (a new audit log):
	// the record must say what released the package. When nothing does,
	// the entry is recorded anyway (the audit log explains every entry of
	// the key), without release fields, and reported.
	rel, relErr := s.release(ctx, j)
	var re *ReleaseError
	if relErr != nil && !errors.As(relErr, &re) {
		return false, fail(j, StageDownload, relErr)
	}
	j.release = rel
	if err := s.ensureAudited(s.record(j), e, c); err != nil {
		stop(err)
		return false, fail(j, StageAudit, err)
	}
	if re != nil {
		return false, fail(j, StageRelease, fmt.Errorf("already published (log index %d), but its new audit record names no release signature: %w", e.LogIndex, re))
	}
	return false, nil
}

// isAudited reports whether the audit log records (or is recording) e.
func (s *Signer) isAudited(e *rekorv1.Entry) bool { return s.isAuditedLeaf(rekorv1.LeafHash(e.Body)) }

// isAuditedLeaf reports whether the audit log records (or is recording)
// the entry with that hex leaf hash.
func (s *Signer) isAuditedLeaf(leaf string) bool {
	s.auditedMu.Lock()
	defer s.auditedMu.Unlock()
	_, ok := s.auditing[leaf]
	return ok
}

// signOne runs the pipeline for one package that is not published.
func (s *Signer) signOne(ctx context.Context, stop context.CancelCauseFunc, j *job, c *counters) *Failure {
	if ctx.Err() != nil {
		return fail(j, StageCanceled, context.Cause(ctx))
	}
	p := j.pkg
	if f := s.releaseAndCheck(ctx, stop, j, c); f != nil {
		return f
	}
	sk, err := s.key()
	if err != nil {
		return fail(j, StageSign, err)
	}
	t, err := verify.SignPackage(sk, p.SHA256Sum, p.Filename)
	if err != nil {
		return fail(j, StageSign, err)
	}
	sig, err := verify.ParseSignature(t)
	if err != nil {
		return fail(j, StageSign, err)
	}
	in := &intent{
		SchemaVersion: 1,
		LeafHash:      rekorv1.LeafHash(rekorv1.CanonicalBody(sig, s.o.PublicKey, []byte(p.SHA256Sum))),
		Signature:     t,
		Record:        s.record(j),
	}
	if err := s.state.writeIntent(in); err != nil {
		return fail(j, StageIntent, err)
	}
	stage, err := s.finish(ctx, stop, in, false, c)
	if err != nil {
		return fail(j, stage, err)
	}
	c.signed.Add(1)
	return nil
}

// releaseAndCheck establishes that the package was released (a refusal is
// recorded in the audit log) and, with VerifyDownloads, that its file has
// the database's sha256.
func (s *Signer) releaseAndCheck(ctx context.Context, stop context.CancelCauseFunc, j *job, c *counters) *Failure {
	p := j.pkg
	rel, err := s.release(ctx, j)
	if err != nil {
		var re *ReleaseError
		if !errors.As(err, &re) {
			return fail(j, StageDownload, err)
		}
		c.refused.Add(1)
		r := s.record(j)
		if aerr := s.refuse(r, re); aerr != nil {
			stop(aerr)
			return fail(j, StageAudit, aerr)
		}
		return fail(j, StageRelease, err)
	}
	j.release = rel
	if s.o.VerifyDownloads && j.check != audit.ReleasePackage { // a package check hashed it already
		got, err := hashPackage(ctx, s.o.HTTP, j.src, p.Filename)
		if err != nil {
			return fail(j, StageDownload, err)
		}
		if got != p.SHA256Sum {
			return fail(j, StageDownload, &verify.HashMismatchError{Filename: p.Filename, Expected: p.SHA256Sum, Got: got})
		}
	}
	return nil
}

// recover finishes an intent of an earlier run.
func (s *Signer) recover(ctx context.Context, stop context.CancelCauseFunc, in *intent, c *counters) *Failure {
	r := in.Record
	f := func(stage Stage, err error) *Failure {
		return &Failure{Repo: r.Repo, Arch: r.Arch, Filename: r.Filename, Stage: stage, Error: "finishing an interrupted run: " + err.Error(), Err: err}
	}
	if ctx.Err() != nil {
		return f(StageCanceled, context.Cause(ctx))
	}
	if in.LogKind != "" {
		return f(StageIntent, fmt.Errorf("the intent (leaf %s) was written for a %s log: run bintrans sign with that log to finish it", in.LeafHash, in.LogKind))
	}
	stage, err := s.finish(ctx, stop, in, true, c)
	if err != nil {
		return f(stage, err)
	}
	c.recovered.Add(1)
	return nil
}

// finish takes an intent from upload to published. With lookup, the entry is
// first looked up by leaf hash (an earlier run may have logged it), and only
// uploaded when the log does not have it.
func (s *Signer) finish(ctx context.Context, stop context.CancelCauseFunc, in *intent, lookup bool, c *counters) (Stage, error) {
	r := in.Record
	var e *rekorv1.Entry
	var err error
	if lookup {
		e, err = s.o.Log.EntryByUUID(ctx, in.LeafHash)
		if err != nil && !errors.Is(err, verify.ErrNotFound) {
			return StageUpload, fmt.Errorf("looking up entry %s: %w", in.LeafHash, err)
		}
	}
	if e == nil {
		e, err = s.o.Log.Upload(ctx, in.Signature, s.pubFile, []byte(r.SHA256))
		if err != nil {
			return StageUpload, err
		}
	}
	if _, err := rekorv1.VerifyEntry(e, in.Signature, []verify.PublicKey{s.o.PublicKey}, r.SHA256, r.Filename, s.o.LogKey); err != nil {
		return StageVerify, fmt.Errorf("the log's entry for %s does not verify, nothing published: %w", r.Filename, err)
	}
	if got := rekorv1.LeafHash(e.Body); got != in.LeafHash {
		return StageVerify, fmt.Errorf("the log's entry for %s has leaf hash %s, expected %s", r.Filename, got, in.LeafHash)
	}
	if err := s.ensureAudited(r, e, c); err != nil {
		stop(err)
		return StageAudit, err
	}
	bundle, err := rekorv1.MarshalBundle(e)
	if err != nil {
		return StagePublish, err
	}
	if err := s.publish(in, bundle); err != nil {
		return StagePublish, err
	}
	s.addSettle(&settleItem{repo: r.Repo, arch: r.Arch, filename: r.Filename, sha: r.SHA256, t: in.Signature, e: e})
	if err := s.state.removeIntent(in.LeafHash); err != nil {
		return StagePublish, err
	}
	return "", nil
}

// publish writes an entry's proof bundle, then its `.t`, then (for a
// repository statement) the statement itself (docs/STATEMENTS.md), and
// makes the renames durable: what a client finds first is never a file
// whose proof is missing. Statements go to the statements subdirectory.
func (s *Signer) publish(in *intent, bundle []byte) error {
	r := in.Record
	dir, name := s.sigDir, r.Filename
	if r.IsStatement() {
		d, err := s.statementDir()
		if err != nil {
			return err
		}
		dir, name = d, strings.TrimPrefix(r.Filename, freshness.Dir+"/")
	}
	if err := dir.WriteFile(name+verify.BundleSuffix, bundle, 0o644); err != nil {
		return err
	}
	if err := dir.WriteFile(name+verify.SignatureSuffix, in.Signature, 0o644); err != nil {
		return err
	}
	if r.IsStatement() {
		if err := s.publishStatement(r, in.Statement); err != nil {
			return err
		}
	}
	// The renames durable before the intent goes.
	return dir.Sync()
}

// ensureAudited makes sure the audit log durably records entry e (log
// fields from e, package fields from r): it appends the record unless the
// log already has one or another goroutine is writing it, in which case it
// waits for that one. So one entry never gets two records, and no caller
// returns before the record is fsync'ed.
func (s *Signer) ensureAudited(r audit.Record, e *rekorv1.Entry, c *counters) error {
	r.LogIndex, r.UUID, r.IntegratedTime = e.LogIndex, strings.ToLower(e.UUID), e.IntegratedTime
	return s.ensureAuditedLeaf(rekorv1.LeafHash(e.Body), r, c)
}

// ensureAuditedLeaf is ensureAudited for the entry with hex leaf hash leaf,
// whose log fields r already holds.
func (s *Signer) ensureAuditedLeaf(leaf string, r audit.Record, c *counters) error {
	s.auditedMu.Lock()
	if st, ok := s.auditing[leaf]; ok {
		s.auditedMu.Unlock()
		<-st.done
		return st.err
	}
	st := &auditState{done: make(chan struct{})}
	s.auditing[leaf] = st
	s.auditedMu.Unlock()
	defer close(st.done)

	r.KeyID, r.LogURL, r.BintransVersion = s.keyID, s.o.LogURL, s.o.Version
	r.Time = ""
	if _, err := s.audit.Append(r); err != nil {
		st.err = err
		return err
	}
	c.audited.Add(1)
	return nil
}
