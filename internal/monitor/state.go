package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/bintrans/bintrans/internal/state"
)

// Bounds of the persisted state.
const (
	// MaxStateSize bounds the state file (about 500 bytes per entry).
	MaxStateSize = 128 << 20
	// MaxEntries bounds the entries the state remembers (and a run reports).
	MaxEntries = 250_000
)

// StateSchemaVersion is the version of the state file format.
const StateSchemaVersion = 1

// stateFile is <state dir>/monitor-<log id>.json: the last checkpoint the
// monitor verified (and proved consistent with the one before) and every
// entry it verified, for all keys it was run with. Both are written
// together, atomically: an entry is "seen" only with the checkpoint that
// was current when it was verified.
type stateFile struct {
	SchemaVersion int    `json:"schema_version"`
	LogID         string `json:"log_id"`
	Checkpoint    string `json:"checkpoint"`
	// TailedTo is the tree size up to which a --tail run read every index,
	// when it is less than the checkpoint's (the log grew between the
	// tail's checkpoint and the stored one); the next --tail run starts
	// there. 0: at the checkpoint's size.
	TailedTo int64   `json:"tailed_to,omitempty"`
	Entries  []Entry `json:"entries"`
}

// stateName is the state file's name for a log (state.Dir.Path checks it).
func stateName(logID string) string { return "monitor-" + logID + ".json" }

// loadState reads the state file; a missing file is an empty state. A file
// that exists but is unusable is a *state.CorruptError and is never reset
// silently: forgetting the checkpoint would let the log roll back unseen.
func loadState(path, logID string) (*stateFile, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &stateFile{SchemaVersion: StateSchemaVersion, LogID: logID}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("monitor state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("monitor state: reading %s: %w", path, err)
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
	case s.SchemaVersion != StateSchemaVersion:
		return nil, fmt.Sprintf("schema_version %d, want %d", s.SchemaVersion, StateSchemaVersion)
	case s.LogID != logID:
		return nil, fmt.Sprintf("state of log %q, not of %q", s.LogID, logID)
	case len(s.Entries) > MaxEntries:
		return nil, fmt.Sprintf("%d entries, at most %d", len(s.Entries), MaxEntries)
	case s.Checkpoint == "" && len(s.Entries) > 0:
		return nil, "entries without a checkpoint"
	case s.TailedTo < 0 || (s.Checkpoint == "" && s.TailedTo != 0):
		return nil, fmt.Sprintf("tailed_to %d", s.TailedTo)
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

// saveState writes s atomically and durably (state.WriteFileAtomic).
func saveState(path string, s *stateFile) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(path, append(b, '\n'), 0o600)
}
