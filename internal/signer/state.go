package signer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// The signer's part of the state dir: <state-dir>/sign/.
const (
	stateSubdir = "sign"
	journalName = "intents.jsonl"
	lockName    = "lock"
	// maxJournalLine bounds one journal line (an intent is about 1.5 KiB).
	maxJournalLine = 64 << 10
	// maxJournalLines bounds the journal read at start.
	maxJournalLines = 4 << 20
	maxHeadSize     = 4 << 10
)

// ErrStateLocked is returned (wrapped) when another signer uses the state dir.
var ErrStateLocked = errors.New("the state dir is in use by another bintrans sign")

// intent is the journal record written, and fsync'ed, before a signature is
// uploaded: everything needed to finish the job after a crash without the
// repository database. Record carries the package fields of the audit record
// (the log fields are filled in when the entry is known).
type intent struct {
	SchemaVersion int          `json:"schema_version"`
	LeafHash      string       `json:"leaf_hash"`
	Signature     []byte       `json:"signature"` // the .t bytes
	Record        audit.Record `json:"record"`
	// Statement is a repository statement's file (Record.Kind statement),
	// published after its .t and bundle.
	Statement []byte `json:"statement,omitempty"`
	// LogKind is the NoteLog kind the leaf hash is of (empty: Rekor v1).
	LogKind string `json:"log_kind,omitempty"`
}

// journalLine is one line of the intent journal: an intent ("intent"), or
// the note that the intent with that leaf hash is finished ("done").
type journalLine struct {
	Op     string  `json:"op"`
	Leaf   string  `json:"leaf"`
	Intent *intent `json:"intent,omitempty"`
}

var leafRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// stateDir is the signer's locked state directory. The intent journal is an
// append-only JSON Lines file: an intent is appended and fsync'ed before
// its upload (concurrent intents share fsyncs), its "done" is appended
// without fsync (finishing an intent twice is harmless). At open the
// journal is replayed and rewritten with only the unfinished intents.
type stateDir struct {
	dir     string // <state-dir>/sign
	lock    *durable.Locked
	mu      sync.Mutex
	journal *os.File
	jsync   *durable.GroupSync
	pending []*intent // unfinished intents found at open
}

func openState(root string) (*stateDir, error) {
	dir := filepath.Join(root, stateSubdir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l, err := durable.TryLock(filepath.Join(dir, lockName))
	if errors.Is(err, durable.ErrLocked) {
		return nil, fmt.Errorf("%s: %w", dir, ErrStateLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	s := &stateDir{dir: dir, lock: l}
	if err := s.openJournal(); err != nil {
		l.Unlock()
		return nil, err
	}
	return s, nil
}

func (s *stateDir) journalPath() string { return filepath.Join(s.dir, journalName) }

// openJournal replays the journal into s.pending, rewrites it atomically
// with only those intents, and opens it for appending.
func (s *stateDir) openJournal() error {
	pending, err := readJournal(s.journalPath())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, in := range pending {
		b, err := json.Marshal(journalLine{Op: "intent", Leaf: in.LeafHash, Intent: in})
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	if err := durable.WriteFile(s.journalPath(), buf.Bytes(), 0o600); err != nil {
		return err
	}
	j, err := os.OpenFile(s.journalPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	s.journal, s.jsync, s.pending = j, durable.NewGroupSync(j), pending
	return nil
}

// readJournal returns the unfinished intents of the journal at path, in
// order. A last line without newline is a torn append whose fsync never
// returned, so its upload never started: it is ignored. Any other bad line
// is an error naming it (a human must look: it may be the only trace of a
// logged signature).
func readJournal(path string) ([]*intent, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, maxJournalLine+1)
	byLeaf := map[string]*intent{}
	var order []string
	for n := 1; ; n++ {
		if n > maxJournalLines {
			return nil, fmt.Errorf("%s: more than %d lines", path, maxJournalLines)
		}
		line, err := br.ReadSlice('\n')
		if err == io.EOF {
			break // empty, or a torn last line
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", path, n, maxJournalLine)
		}
		if err != nil {
			return nil, err
		}
		var jl journalLine
		if err := json.Unmarshal(line, &jl); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if !leafRE.MatchString(jl.Leaf) {
			return nil, fmt.Errorf("%s:%d: malformed leaf hash", path, n)
		}
		switch jl.Op {
		case "intent":
			in := jl.Intent
			if in == nil || in.SchemaVersion != 1 || in.LeafHash != jl.Leaf || len(in.Signature) == 0 {
				return nil, fmt.Errorf("%s:%d: malformed intent", path, n)
			}
			if _, ok := byLeaf[jl.Leaf]; !ok {
				order = append(order, jl.Leaf)
			}
			byLeaf[jl.Leaf] = in
		case "done":
			delete(byLeaf, jl.Leaf)
		default:
			return nil, fmt.Errorf("%s:%d: unknown op %q", path, n, jl.Op)
		}
	}
	var out []*intent
	seen := map[string]bool{}
	for _, l := range order {
		if in, ok := byLeaf[l]; ok && !seen[l] {
			seen[l] = true
			out = append(out, in)
		}
	}
	return out, nil
}

func (s *stateDir) close() error {
	var errs []error
	if s.journal != nil {
		errs = append(errs, s.journal.Close())
	}
	// Unlock excludes a concurrent fork: a child being started (gpg, by
	// this process) would otherwise keep the lock, and a signer opened
	// right after this one would find the state dir "in use".
	return errors.Join(append(errs, s.lock.Unlock())...)
}

// appendJournal writes one journal line with a single write.
func (s *stateDir) appendJournal(jl journalLine) error {
	b, err := json.Marshal(jl)
	if err != nil {
		return err
	}
	if len(b) > maxJournalLine {
		return fmt.Errorf("journal line of %d bytes", len(b))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.journal.Write(append(b, '\n'))
	return err
}

// writeIntent records in durably before the upload.
func (s *stateDir) writeIntent(in *intent) error {
	if err := s.appendIntent(in); err != nil {
		return err
	}
	return s.syncJournal()
}

// appendIntent records in, durable after the next syncJournal: a caller
// that writes many intents before uploading any syncs once.
func (s *stateDir) appendIntent(in *intent) error {
	return s.appendJournal(journalLine{Op: "intent", Leaf: in.LeafHash, Intent: in})
}

// syncJournal makes every journal line written so far durable.
func (s *stateDir) syncJournal() error { return s.jsync.Sync() }

// removeIntent notes that an intent is finished. Not being durable is
// harmless: finishing an intent twice is idempotent.
func (s *stateDir) removeIntent(leaf string) error {
	return s.appendJournal(journalLine{Op: "done", Leaf: leaf})
}

// removeIntents is removeIntent for many intents, in one write.
func (s *stateDir) removeIntents(leaves []string) error {
	var buf []byte
	for _, l := range leaves {
		b, err := json.Marshal(journalLine{Op: "done", Leaf: l})
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	if len(buf) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.journal.Write(buf)
	return err
}

// intents returns the unfinished intents found when the state dir was opened.
func (s *stateDir) intents() ([]*intent, error) { return s.pending, nil }

// savedHead is the audit log head this signer wrote last, kept in the state
// dir to detect records removed from (or rewritten at) the end of the audit
// log between runs.
type savedHead struct {
	AuditLog string `json:"audit_log"`
	audit.Head
}

func (s *stateDir) headPath() string { return filepath.Join(s.dir, "audit-head.json") }

func (s *stateDir) loadHead() (*savedHead, error) {
	b, err := durable.ReadFile(s.headPath(), maxHeadSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h savedHead
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", s.headPath(), err)
	}
	return &h, nil
}

func (s *stateDir) storeHead(h savedHead) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return durable.WriteFile(s.headPath(), b, 0o600)
}

// checkpointName is the file of the log checkpoint this signer verified
// last and proved consistent with the one before (a signed note, as the
// log served it), in the one checkpoint store's format (state.
// CheckpointStore); legacyCheckpointName is the bare note an older
// bintrans kept, read and migrated.
const (
	checkpointName       = "checkpoint.json"
	legacyCheckpointName = "checkpoint"
)

func (s *stateDir) checkpoints() *state.CheckpointStore {
	return state.NewCheckpointStore(filepath.Join(s.dir, checkpointName), state.StoreOptions{
		Legacy: []state.Legacy{{File: filepath.Join(s.dir, legacyCheckpointName), Decode: state.RawNote}},
	})
}

func (s *stateDir) checkpointPath() string { return s.checkpoints().Path() }

// loadCheckpoint returns the stored checkpoint verified under lk, or nil
// when there is none. A stored note that does not verify is an error: the
// state was damaged, or the signer now points at another log.
func (s *stateDir) loadCheckpoint(lk *rekorv1.LogKey) (*verify.Checkpoint, error) {
	b, err := s.checkpoints().Load(context.Background())
	if err != nil || b == nil {
		return nil, err
	}
	cp, err := lk.VerifyCheckpoint(b)
	if err != nil {
		return nil, &StoredCheckpointError{Path: s.checkpointPath(), Err: err}
	}
	return cp, nil
}

// storeCheckpoint replaces the stored checkpoint atomically and durably
// (never with a smaller tree).
func (s *stateDir) storeCheckpoint(note []byte) error {
	return s.checkpoints().Store(context.Background(), note)
}

// StoredCheckpointError: the checkpoint kept in the state dir does not
// verify under the pinned log key.
type StoredCheckpointError struct {
	Path string
	Err  error
}

func (e *StoredCheckpointError) Error() string {
	return fmt.Sprintf("the log checkpoint stored in %s does not verify under the pinned log key: %v", e.Path, e.Err)
}

func (e *StoredCheckpointError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *StoredCheckpointError) Hint() string {
	return "if this signer was moved to another log on purpose (new --log-url and --log-key), remove " + e.Path + "; otherwise the state dir was damaged: find out why"
}
