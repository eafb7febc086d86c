package monitor

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/state"
)

// Bounds of the persisted state.
const (
	// MaxStateSize bounds the state file (about 500 bytes per entry).
	MaxStateSize = 128 << 20
	// MaxEntries bounds the entries the state remembers (and a run reports).
	MaxEntries = 250_000
)

// StateSchemaVersion is the version of the state file format written.
// Schema 1 (tailed_to) is read: it cannot tell a range a --tail run read
// from one a run without --tail skipped, so its tail starts over at 0.
const StateSchemaVersion = 2

// stateFile is <state dir>/monitor-<log id>.json: the last checkpoint the
// monitor verified (and proved consistent with the one before) and every
// entry it verified, for all keys it was run with. Both are written
// together, atomically: an entry is "seen" only with the checkpoint that
// was current when it was verified.
type stateFile struct {
	SchemaVersion int    `json:"schema_version"`
	LogID         string `json:"log_id"`
	Checkpoint    string `json:"checkpoint"`
	// TailedSize: every index below it was read by a --tail run and proven
	// to hold the leaf read there: TailRange, the compact range [0,
	// TailedSize) built from those leaves, hashed to the root of a
	// checkpoint of that size signed by the log. Only a --tail run that
	// proved its whole span moves it; the next one starts there. 0: no
	// index proven.
	TailedSize int64 `json:"tailed_size"`
	// TailRange is the compact range's hashes (the roots of its perfect
	// subtrees, left to right, hex): enough to extend it.
	TailRange []string `json:"tail_range"`
	// TailedTo is schema 1's field (read, never written).
	TailedTo int64   `json:"tailed_to,omitempty"`
	Entries  []Entry `json:"entries"`
}

// stateName is the state file's name for a log (state.Dir.Path checks it).
func stateName(logID string) string { return "monitor-" + logID + ".json" }

// loadState reads the state file; a missing file is an empty state. A file
// that exists but is unusable is a *state.CorruptError and is never reset
// silently: forgetting the checkpoint would let the log roll back unseen.
func loadState(path, logID string) (*stateFile, error) {
	b, err := durable.ReadFile(path, MaxStateSize)
	var tl *durable.TooLargeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &stateFile{SchemaVersion: StateSchemaVersion, LogID: logID}, nil
	case errors.As(err, &tl):
		return nil, &state.CorruptError{Path: path, Reason: fmt.Sprintf("larger than %d bytes", MaxStateSize)}
	case err != nil:
		return nil, fmt.Errorf("monitor state: %w", err)
	}
	s, reason := decodeState(b, logID)
	if reason != "" {
		return nil, &state.CorruptError{Path: path, Reason: reason}
	}
	return s, nil
}

// decodeState parses a state file strictly; a non-empty reason says why
// it is unusable.
func decodeState(b []byte, logID string) (*stateFile, string) {
	if len(b) > MaxStateSize {
		return nil, fmt.Sprintf("larger than %d bytes", MaxStateSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s stateFile
	if err := dec.Decode(&s); err != nil {
		return nil, "not a monitor state file: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "trailing data after the JSON object"
	}
	switch {
	case s.SchemaVersion != 1 && s.SchemaVersion != StateSchemaVersion:
		return nil, fmt.Sprintf("schema_version %d, want 1 or %d", s.SchemaVersion, StateSchemaVersion)
	case s.SchemaVersion == 1 && (s.TailedSize != 0 || s.TailRange != nil):
		return nil, "schema 1 with tailed_size or tail_range"
	case s.SchemaVersion == 2 && s.TailedTo != 0:
		return nil, "schema 2 with tailed_to"
	case s.LogID != logID:
		return nil, fmt.Sprintf("state of log %q, not of %q", s.LogID, logID)
	case len(s.Entries) > MaxEntries:
		return nil, fmt.Sprintf("%d entries, at most %d", len(s.Entries), MaxEntries)
	case s.Checkpoint == "" && len(s.Entries) > 0:
		return nil, "entries without a checkpoint"
	case s.TailedTo < 0 || (s.Checkpoint == "" && s.TailedTo != 0):
		return nil, fmt.Sprintf("tailed_to %d", s.TailedTo)
	case s.TailedSize < 0 || (s.Checkpoint == "" && s.TailedSize != 0):
		return nil, fmt.Sprintf("tailed_size %d", s.TailedSize)
	}
	if s.SchemaVersion == 1 {
		// Whether a run without --tail followed the last --tail run is not
		// recorded: nothing counts as tailed.
		s.SchemaVersion, s.TailedTo = StateSchemaVersion, 0
	}
	if _, err := tailRange(s.TailedSize, s.TailRange); err != nil {
		return nil, err.Error()
	}
	seen := make(map[string]bool, len(s.Entries))
	for i := range s.Entries {
		e := &s.Entries[i]
		if err := e.validate(); err != nil {
			return nil, fmt.Sprintf("entry %d: %v", i, err)
		}
		if seen[e.leaf()] {
			return nil, fmt.Sprintf("entry %s twice", e.UUID)
		}
		seen[e.leaf()] = true
	}
	return &s, ""
}

// saveState writes s atomically and durably.
func saveState(path string, s *stateFile) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return durable.WriteFile(path, append(b, '\n'), 0o600)
}

// tailRange decodes a stored compact range [0, size).
func tailRange(size int64, hexHashes []string) (*compact.Range, error) {
	hashes := make([][]byte, len(hexHashes))
	for i, h := range hexHashes {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("tail_range hash %d is not 64 hex digits", i)
		}
		hashes[i] = b
	}
	r, err := rangeFactory.NewRange(0, uint64(size), hashes)
	if err != nil {
		return nil, fmt.Errorf("tail_range of tailed_size %d: %v", size, err)
	}
	return r, nil
}

// rangeFactory builds RFC 6962 compact ranges.
var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
