package monitor

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/bintrans/bintrans/internal/state"
)

// Bounds of the persisted state.
const (
	// MaxStateSize bounds the state file (about 500 bytes per entry).
	MaxStateSize = 128 << 20
	// MaxEntries bounds the entries the state remembers (and a run reports).
	MaxEntries = 250_000
)

// StateSchemaVersion is the version of the monitor's data format (the
// data the one checkpoint store keeps with the checkpoint, state.
// CheckpointStore). Files of an older bintrans, the whole state in one
// JSON object (schema 1 and 2, "checkpoint" inside), are read and
// rewritten in the current format. Schema 1 (tailed_to) cannot tell a
// range a --tail run read from one a run without --tail skipped, so its
// tail starts over at 0.
const StateSchemaVersion = 2

// stateFile is the monitor's state of a log, <state dir>/monitor-<log
// id>.json: the last checkpoint the monitor verified (and proved
// consistent with the one before) and every entry it verified, for all
// keys it was run with. Both are written together, atomically, as the
// checkpoint store's checkpoint and data: an entry is "seen" only with
// the checkpoint that was current when it was verified.
type stateFile struct {
	SchemaVersion int    `json:"schema_version"`
	LogID         string `json:"log_id"`
	// Checkpoint is the store's checkpoint; only the files of an older
	// bintrans carry it in this object.
	Checkpoint string `json:"checkpoint,omitempty"`
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

// stateStore is the checkpoint store of the monitor's state file at path.
func stateStore(path, logID string) *state.CheckpointStore {
	return state.NewCheckpointStore(path, state.StoreOptions{
		MaxData: MaxStateSize,
		Legacy: []state.Legacy{{Decode: func(b []byte) ([]byte, []byte, error) {
			s, reason := decodeState(b, logID)
			if reason != "" {
				return nil, nil, errors.New(reason)
			}
			return encodeData(s)
		}}},
	})
}

// loadState reads the state file; a missing file is an empty state. A file
// that exists but is unusable is a *state.CorruptError and is never reset
// silently: forgetting the checkpoint would let the log roll back unseen.
func loadState(path, logID string) (*stateFile, error) {
	cp, data, err := stateStore(path, logID).LoadData(context.Background())
	if err != nil {
		return nil, err
	}
	if cp == nil {
		return &stateFile{SchemaVersion: StateSchemaVersion, LogID: logID}, nil
	}
	s, reason := decodeData(data, cp, logID)
	if reason != "" {
		return nil, &state.CorruptError{Path: path, Reason: reason}
	}
	return s, nil
}

// saveState writes s atomically and durably.
func saveState(path string, s *stateFile) error {
	cp, data, err := encodeData(s)
	if err != nil {
		return err
	}
	return stateStore(path, s.LogID).StoreData(context.Background(), cp, data)
}

// encodeData splits s into the store's checkpoint and the monitor's data.
func encodeData(s *stateFile) (checkpoint, data []byte, err error) {
	d := *s
	d.SchemaVersion, d.Checkpoint, d.TailedTo = StateSchemaVersion, "", 0
	data, err = json.Marshal(&d)
	return []byte(s.Checkpoint), data, err
}

// decodeData parses the monitor's data kept with checkpoint cp strictly;
// a non-empty reason says why it is unusable.
func decodeData(data, cp []byte, logID string) (*stateFile, string) {
	s, reason := parseState(data, "monitor data")
	switch {
	case reason != "":
		return nil, reason
	case s.SchemaVersion != StateSchemaVersion:
		return nil, fmt.Sprintf("data schema_version %d, want %d", s.SchemaVersion, StateSchemaVersion)
	case s.Checkpoint != "":
		return nil, "a checkpoint inside the data"
	}
	s.Checkpoint = string(cp)
	return validateState(s, logID)
}

// decodeState parses a state file of an older bintrans (the whole state in
// one object) strictly; a non-empty reason says why it is unusable.
func decodeState(b []byte, logID string) (*stateFile, string) {
	if len(b) > MaxStateSize {
		return nil, fmt.Sprintf("larger than %d bytes", MaxStateSize)
	}
	s, reason := parseState(b, "monitor state file")
	if reason != "" {
		return nil, reason
	}
	return validateState(s, logID)
}

// parseState decodes one JSON object of the state's fields, nothing else.
func parseState(b []byte, what string) (*stateFile, string) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s stateFile
	if err := dec.Decode(&s); err != nil {
		return nil, "not a " + what + ": " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "trailing data after the JSON object"
	}
	return &s, ""
}

// validateState checks a parsed state (its checkpoint set) and converts
// schema 1 to the current schema.
func validateState(s *stateFile, logID string) (*stateFile, string) {
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
	return s, ""
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
