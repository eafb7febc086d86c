package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/verify"
)

// CheckpointStore is bintrans's one store of a verified log checkpoint:
// the hook's and verify's (checkpoint-<log id>.json), doctor reads that
// one, sign's (<state-dir>/sign/checkpoint.json) and the monitor's
// (monitor-<log id>.json, with the entries it verified as data). One file
// per store, in one format (fileFormat), written atomically and durably.
//
// Guarantees: the stored checkpoint never moves backwards (Store keeps a
// larger tree written meanwhile; a tree of the same size with another
// root is a *ForkError); a file that does not parse is a *CorruptError and
// is never replaced; a file in a format an older bintrans wrote (Legacy)
// is read, and rewritten in the current format by the first Load that may
// write, so that no stored checkpoint is ever lost by an upgrade.
//
// The store does not verify: the caller checks a loaded checkpoint
// (signature, consistency) before trusting it and a new one before
// storing it.
type CheckpointStore struct {
	path     string
	limit    int64 // of the file
	maxData  int64
	legacy   []Legacy
	readOnly bool
}

// Legacy is a format an older bintrans kept a checkpoint in.
type Legacy struct {
	// File is that older file; "" means the store's own file, in an
	// older format. A legacy File is read only while the store's file does
	// not exist, and removed once the store's file is written.
	File string
	// Decode returns the checkpoint note of b (and the data the caller
	// keeps with it, in the current format), or an error when b is not in
	// that format.
	Decode func(b []byte) (checkpoint, data []byte, err error)
}

// RawNote is the Legacy Decode of a file that is just the checkpoint note
// (bintrans sign's <state-dir>/sign/checkpoint before the one store).
func RawNote(b []byte) (checkpoint, data []byte, err error) {
	if len(b) > verify.MaxCheckpointSize {
		return nil, nil, fmt.Errorf("checkpoint longer than %d bytes", verify.MaxCheckpointSize)
	}
	return b, nil, nil
}

// StoreOptions shape a store made by NewCheckpointStore or
// Dir.CheckpointFile.
type StoreOptions struct {
	// MaxData bounds the data kept with the checkpoint (StoreData); zero
	// for a store of the checkpoint alone.
	MaxData int64
	// Legacy lists the older formats, tried in order.
	Legacy []Legacy
}

// NewCheckpointStore returns the store kept in the file at path, in a
// directory that its caller owns and guards (bintrans sign's state
// directory, locked by the signer). A state directory's stores come from
// Dir.
func NewCheckpointStore(path string, o StoreOptions) *CheckpointStore {
	return &CheckpointStore{path: path, limit: maxStateFile + o.MaxData, maxData: o.MaxData, legacy: o.Legacy}
}

// Checkpoints returns the checkpoint store of the directory's default log
// (file "checkpoint.json"). A client that may talk to several logs uses
// CheckpointsFor with the log's id, so that switching logs never compares
// checkpoints of different logs.
func (d *Dir) Checkpoints() *CheckpointStore {
	return d.CheckpointFile("checkpoint.json", StoreOptions{})
}

// CheckpointsFor returns the checkpoint store of the log identified by
// logID (e.g. the hex sha256 of its public key, Rekor's logID): file
// "checkpoint-<logID>.json". logID must be 1-100 characters of
// [A-Za-z0-9._-]; anything else panics.
func (d *Dir) CheckpointsFor(logID string) *CheckpointStore {
	if len(logID) > 100 {
		panic(fmt.Sprintf("state: log id %q too long", logID))
	}
	return d.CheckpointFile("checkpoint-"+logID+".json", StoreOptions{})
}

// CheckpointFile returns the store kept in the directory's file name (a
// plain file name, see Path).
func (d *Dir) CheckpointFile(name string, o StoreOptions) *CheckpointStore {
	s := NewCheckpointStore(d.Path(name), o)
	s.readOnly = d.readOnly
	return s
}

// Path returns the store's file.
func (s *CheckpointStore) Path() string { return s.path }

// fileFormat is the on-disk checkpoint file.
type fileFormat struct {
	SchemaVersion int    `json:"schema_version"`
	Checkpoint    string `json:"checkpoint"`
	// SHA256 is the hex sha256 of Checkpoint: catches edits and bit rot
	// that still parse as JSON.
	SHA256 string `json:"sha256"`
	// StoredAt is informational (when this run stored it).
	StoredAt time.Time `json:"stored_at"`
	// Data is what the store's user keeps with the checkpoint, written
	// together with it (the monitor's entries).
	Data json.RawMessage `json:"data,omitempty"`
}

// Load returns the stored checkpoint, or (nil, nil) when none was stored
// yet. A file that exists but is unusable is a *CorruptError.
func (s *CheckpointStore) Load(ctx context.Context) ([]byte, error) {
	cp, _, err := s.LoadData(ctx)
	return cp, err
}

// LoadData is Load, also returning the data stored with the checkpoint
// (nil when none).
func (s *CheckpointStore) LoadData(ctx context.Context) (checkpoint, data []byte, err error) {
	cp, data, current, err := s.read()
	if err != nil || cp == nil || current || s.readOnly {
		return cp, data, err
	}
	// An older format: rewrite it now, under the store's lock (another run
	// may be doing the same).
	unlock, err := flock(ctx, s.path+".lock")
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	if cp, data, current, err = s.read(); err != nil || cp == nil || current {
		return cp, data, err
	}
	if err := s.write(cp, data); err != nil {
		return nil, nil, err
	}
	return cp, data, nil
}

// read returns the stored checkpoint and data, and whether they were in
// the current format.
func (s *CheckpointStore) read() (cp, data []byte, current bool, err error) {
	b, err := s.readFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		for _, l := range s.legacy {
			if l.File == "" {
				continue
			}
			b, err := s.readFile(l.File)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, nil, false, err
			}
			cp, data, err := l.Decode(b)
			if err == nil {
				err = s.check(cp, data)
			}
			if err != nil {
				return nil, nil, false, &CorruptError{Path: l.File, Reason: err.Error()}
			}
			return cp, data, false, nil
		}
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	cp, data, reason := decode(b)
	if reason == "" {
		if err := s.check(cp, data); err != nil {
			return nil, nil, false, &CorruptError{Path: s.path, Reason: err.Error()}
		}
		return cp, data, true, nil
	}
	for _, l := range s.legacy {
		if l.File != "" {
			continue
		}
		if lcp, ldata, err := l.Decode(b); err == nil && s.check(lcp, ldata) == nil {
			return lcp, ldata, false, nil
		}
	}
	return nil, nil, false, &CorruptError{Path: s.path, Reason: reason}
}

// readFile reads a state file, at most the store's limit.
func (s *CheckpointStore) readFile(path string) ([]byte, error) {
	b, err := durable.ReadFile(path, s.limit)
	var tl *durable.TooLargeError
	if errors.As(err, &tl) {
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("larger than %d bytes", s.limit)}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state: %w", err)
	}
	return b, err
}

// check is what every stored checkpoint must be, whatever its format: a
// tree head note, and data only where the store keeps some.
func (s *CheckpointStore) check(cp, data []byte) error {
	if len(cp) == 0 {
		return errors.New("no checkpoint")
	}
	if len(cp) > verify.MaxCheckpointSize {
		return fmt.Errorf("checkpoint longer than %d bytes", verify.MaxCheckpointSize)
	}
	if _, _, err := treeHead(cp); err != nil {
		return err
	}
	if int64(len(data)) > s.maxData {
		return fmt.Errorf("%d bytes of data, at most %d", len(data), s.maxData)
	}
	return nil
}

// decode parses a checkpoint file; a non-empty reason says why it is unusable.
func decode(b []byte) (cp, data []byte, reason string) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil, "empty file"
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ff fileFormat
	if err := dec.Decode(&ff); err != nil {
		return nil, nil, "not a checkpoint file: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, "trailing data after the JSON object"
	}
	if ff.SchemaVersion != SchemaVersion {
		return nil, nil, fmt.Sprintf("schema_version %d, want %d", ff.SchemaVersion, SchemaVersion)
	}
	if ff.Checkpoint == "" {
		return nil, nil, "no checkpoint"
	}
	if len(ff.Checkpoint) > verify.MaxCheckpointSize {
		return nil, nil, fmt.Sprintf("checkpoint longer than %d bytes", verify.MaxCheckpointSize)
	}
	sum := sha256.Sum256([]byte(ff.Checkpoint))
	if got := hex.EncodeToString(sum[:]); got != ff.SHA256 {
		return nil, nil, fmt.Sprintf("sha256 mismatch: file says %q, checkpoint hashes to %s", ff.SHA256, got)
	}
	if _, _, err := treeHead([]byte(ff.Checkpoint)); err != nil {
		return nil, nil, err.Error()
	}
	if ff.Data != nil && bytes.Equal(ff.Data, []byte("null")) {
		ff.Data = nil
	}
	return []byte(ff.Checkpoint), ff.Data, ""
}

// treeHead returns the tree size and root hash of a checkpoint note
// ("<origin>\n<size>\n<base64 root>\n…").
func treeHead(note []byte) (uint64, []byte, error) {
	lines := strings.SplitN(string(note), "\n", 4)
	if len(lines) < 4 {
		return 0, nil, errors.New("checkpoint: fewer than three lines")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || lines[1] != strconv.FormatUint(size, 10) {
		return 0, nil, fmt.Errorf("checkpoint: bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		return 0, nil, fmt.Errorf("checkpoint: bad root hash %q", lines[2])
	}
	return size, root, nil
}

// Store replaces the stored checkpoint with cp, atomically and durably,
// keeping the data stored with the one it replaces. The caller must have
// verified cp (signature, and consistency with what Load returned). Store
// never moves backwards: when the stored checkpoint (written meanwhile by
// a concurrent run) has a larger tree, it is kept and Store returns nil;
// one of the same size with another root hash is a *ForkError. A corrupt
// stored file is a *CorruptError and is not replaced.
func (s *CheckpointStore) Store(ctx context.Context, cp []byte) error {
	return s.store(ctx, cp, nil, true)
}

// StoreData is Store, replacing the stored data with data (at most the
// store's MaxData bytes of JSON) in the same atomic write. It does not
// keep a larger stored tree silently: that would drop data; it is an
// error instead (the caller's lock should have excluded a concurrent
// writer).
func (s *CheckpointStore) StoreData(ctx context.Context, cp, data []byte) error {
	if int64(len(data)) > s.maxData {
		return fmt.Errorf("state: refusing to store %d bytes of data in %s (at most %d)", len(data), s.path, s.maxData)
	}
	if data != nil && !json.Valid(data) {
		return fmt.Errorf("state: refusing to store data that is not JSON in %s", s.path)
	}
	return s.store(ctx, cp, data, false)
}

func (s *CheckpointStore) store(ctx context.Context, cp, data []byte, keepData bool) error {
	if s.readOnly {
		return fmt.Errorf("state: %s: %w", s.path, ErrReadOnly)
	}
	if len(cp) == 0 || len(cp) > verify.MaxCheckpointSize {
		return fmt.Errorf("state: refusing to store a checkpoint of %d bytes", len(cp))
	}
	size, root, err := treeHead(cp)
	if err != nil {
		return fmt.Errorf("state: refusing to store: %w", err)
	}
	// A short-lived lock of its own (not Dir.Lock, which the caller may
	// hold: flock locks of one process on two descriptors conflict).
	unlock, err := flock(ctx, s.path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	old, oldData, _, err := s.read()
	if err != nil {
		return err
	}
	if old != nil {
		oldSize, oldRoot, _ := treeHead(old) // read checked it
		switch {
		case oldSize == size && !bytes.Equal(oldRoot, root):
			return &ForkError{Path: s.path, Size: size, Stored: old, Given: bytes.Clone(cp)}
		case oldSize > size && keepData:
			return nil
		case oldSize > size:
			return fmt.Errorf("state: %s holds a larger tree (size %d) than the one to store (%d): not replaced", s.path, oldSize, size)
		}
	}
	if keepData {
		data = oldData
	}
	return s.write(cp, data)
}

// write replaces the file with cp and data in the current format, then
// removes the legacy files.
func (s *CheckpointStore) write(cp, data []byte) error {
	sum := sha256.Sum256(cp)
	ff := fileFormat{
		SchemaVersion: SchemaVersion,
		Checkpoint:    string(cp),
		SHA256:        hex.EncodeToString(sum[:]),
		StoredAt:      time.Now().UTC().Truncate(time.Second),
		Data:          data,
	}
	var b []byte
	var err error
	if data == nil {
		b, err = json.MarshalIndent(ff, "", "  ")
	} else {
		b, err = json.Marshal(ff) // the data can be large: compact
	}
	if err != nil {
		return err
	}
	if err := durable.WriteFile(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, l := range s.legacy {
		if l.File != "" {
			if err := os.Remove(l.File); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("state: removing the migrated %s: %w", l.File, err)
			}
		}
	}
	return nil
}
