package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// Monitoring a Rekor v2 (tile-based) log. There is no search: the monitor
// reads every entry the log appended since its last run from the entry
// tiles (C2SP tlog-tiles), each entry bundle checked against the hash tiles
// authenticated by the log's signed checkpoint, and the leaves read hashed
// into that checkpoint's root; it keeps the entries whose verifier is a
// monitored key. So it sees every entry of the key, not only those an index
// lists, and a log that serves another entry at an index, or leaves one
// out, is caught by the root. The checkpoint is proven consistent (from the
// tiles) with the one the previous run stored, and with a witness policy it
// must carry the quorum of cosignatures first.

// TilesOptions configure RunTiles.
type TilesOptions struct {
	// Keys are the transparency keys whose entries are monitored.
	Keys []verify.PublicKey
	// Log is the log's pinned key and origin; Reader reads its checkpoint
	// and tiles.
	Log    *rekorv2.LogVerifier
	Reader *rekorv2.Reader
	// LogURL is written into the report.
	LogURL string
	// Witnesses, when set, is the witness quorum the log's current
	// checkpoint must carry (its cosignature lines as served, checked as
	// the online verifier checks them: verify.CurrentCheckpoint). The
	// monitor tails only to a checkpoint that meets it.
	Witnesses verify.Witnesses
	// State keeps the last verified checkpoint and the entries seen (file
	// monitor-rekor-v2-<origin hash>.json); nil: nothing is remembered.
	State *state.Dir
	// All reports every entry known, not only the new ones.
	All bool
	// Jobs is how many entry bundles are read at once (0: 8).
	Jobs int
	// Now is the clock (tests).
	Now func() time.Time
}

// FindingBadSignature: an entry whose verifier is a monitored key but whose
// Ed25519ph signature does not verify over its digest, or that is not an
// entry bintrans makes (another digest algorithm or key type): no client
// would accept it, but it is logged under the key.
const FindingBadSignature FindingKind = "bad-signature"

// tilesState is the monitor's state for a tile log.
type tilesState struct {
	SchemaVersion int     `json:"schema_version"`
	Origin        string  `json:"origin"`
	Checkpoint    string  `json:"checkpoint"`
	Entries       []Entry `json:"entries"`
}

const tilesStateVersion = 1

func tilesStateName(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return "monitor-rekor-v2-" + hex.EncodeToString(h[:8]) + ".json"
}

// RunTiles runs the monitor once over a Rekor v2 log: the entries appended
// since the stored checkpoint (all of them on a first run) are read from
// the tiles and those of a monitored key reported; the current checkpoint
// is proven consistent with the stored one, then stored with the entries.
// A rollback or fork is a *verify.SecurityError (nothing stored); tiles
// that do not hash to the checkpoint are an error (nothing stored).
func RunTiles(ctx context.Context, o TilesOptions) (*Report, error) {
	if len(o.Keys) == 0 || o.Reader == nil || o.Log == nil {
		return nil, errors.New("monitor: no transparency key or no log")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	cp, err := o.Reader.Checkpoint(ctx)
	if err != nil {
		return nil, &verify.LogUnavailableError{Op: "checkpoint", Err: err}
	}
	if o.Witnesses != nil {
		// Nothing is read or stored from a view no quorum of witnesses saw.
		if _, err := verify.CurrentCheckpoint(rekorv2.NewKindVerifier(o.Log), o.Witnesses, cp.Raw); err != nil {
			return nil, err
		}
	}
	rep := &Report{SchemaVersion: SchemaVersion, LogURL: o.LogURL, LogID: cp.Origin,
		Entries: []Entry{}, Findings: []Finding{}, Vanished: []string{}, NotFound: []string{}}
	for _, k := range o.Keys {
		rep.KeyIDs = append(rep.KeyIDs, k.KeyID())
	}
	st := &tilesState{SchemaVersion: tilesStateVersion, Origin: cp.Origin}
	var path string
	if o.State != nil {
		unlock, err := o.State.Lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
		path = o.State.Path(tilesStateName(cp.Origin))
		if st, err = loadTilesState(path, cp.Origin); err != nil {
			return nil, err
		}
	}
	tree, err := o.Reader.At(cp)
	if err != nil {
		return nil, err
	}
	var from uint64
	if st.Checkpoint != "" {
		// The stored checkpoint verifies under the pinned key, or the
		// state is not this log's.
		old, err := o.Log.VerifyCheckpoint([]byte(st.Checkpoint))
		if err != nil {
			return nil, &state.CorruptError{Path: path, Reason: "the stored checkpoint does not verify under the pinned log key: " + err.Error()}
		}
		rep.Previous = tilesHead(old)
		if _, err := tree.ConsistencyProof(ctx, old); err != nil {
			var re *rekorv2.RollbackError
			var fe *rekorv2.ForkError
			if errors.As(err, &re) || errors.As(err, &fe) {
				return rep, &verify.SecurityError{Reason: "the log's current checkpoint does not extend the one this monitor stored",
					Old: old.Raw, New: cp.Raw, OldLabel: "stored by the previous run", NewLabel: "the log's current checkpoint", Err: err}
			}
			return nil, &verify.LogUnavailableError{Op: "consistency proof", Err: err}
		}
		from = old.Size
	}
	rep.Current = tilesHead(cp)

	keys := map[string]verify.PublicKey{}
	for _, k := range o.Keys {
		keys[string(k.Ed25519())] = k
	}
	seen := map[string]bool{}
	for _, e := range st.Entries {
		seen[e.UUID] = true
	}
	first := now().UTC().Format(time.RFC3339)
	var fresh []Entry
	for e, err := range tree.Entries(ctx, from, cp.Size, o.Jobs) {
		if err != nil {
			var te *rekorv2.TileError
			if errors.As(err, &te) {
				return nil, fmt.Errorf("monitor: the log's tiles do not match its checkpoint (%s): %w", cp, err)
			}
			return nil, &verify.LogUnavailableError{Op: "entry tiles", Err: err}
		}
		ent, finding, ok := tilesEntry(e, keys, first)
		if finding != nil {
			rep.Findings = append(rep.Findings, *finding)
		}
		if ok && !seen[ent.UUID] {
			seen[ent.UUID] = true
			fresh = append(fresh, ent)
		}
	}
	st.Entries = append(st.Entries, fresh...)
	sort.Slice(st.Entries, func(a, b int) bool { return st.Entries[a].LogIndex < st.Entries[b].LogIndex })
	rep.New, rep.Total = len(fresh), len(st.Entries)
	rep.Entries = fresh
	if o.All {
		rep.Entries = st.Entries
	}
	if rep.Entries == nil {
		rep.Entries = []Entry{}
	}
	rep.all = st.Entries
	if o.State != nil {
		st.Checkpoint = string(cp.Raw)
		if err := storeJSONState(path, st); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// tilesEntry turns a log entry into a report Entry when its verifier is a
// monitored key (ok), with a finding when it is not an entry a client
// would accept.
func tilesEntry(e rekorv2.Entry, keys map[string]verify.PublicKey, first string) (Entry, *Finding, bool) {
	uuid := hex.EncodeToString(e.LeafHash[:])
	b, err := rekorv2.ParseBody(e.Body)
	if err != nil {
		// Another entry type: a finding only if it names a monitored key.
		for _, k := range keys {
			if rekorv2.MentionsKey(e.Body, k.Ed25519()) {
				return Entry{}, &Finding{Kind: FindingBadSignature, UUID: uuid, LogIndex: int64(e.Index),
					Detail: "an entry that is not a hashedrekord bintrans makes names the transparency key " + k.KeyID() + ": " + err.Error()}, false
			}
		}
		return Entry{}, nil, false
	}
	for _, k := range keys {
		if !b.HasKey(k.Ed25519()) {
			continue
		}
		ent := Entry{UUID: uuid, LogIndex: int64(e.Index), MessageSHA512: hex.EncodeToString(b.Digest),
			Key: k.Base64(), KeyID: k.KeyID(), SigKeyID: k.KeyID(), Signature: base64.StdEncoding.EncodeToString(b.Signature),
			Indexed: true, FirstSeen: first}
		if !b.SignedBy(k.Ed25519()) {
			return ent, &Finding{Kind: FindingBadSignature, UUID: uuid, LogIndex: int64(e.Index),
				Detail: fmt.Sprintf("an entry of the transparency key %s whose signature is not a valid Ed25519ph signature over its SHA-512 digest (algorithm %s, key details %s)", k.KeyID(), b.Algorithm, b.KeyDetails)}, true
		}
		return ent, nil, true
	}
	return Entry{}, nil, false
}

func tilesHead(c *rekorv2.Checkpoint) *TreeHead {
	return &TreeHead{Origin: c.Origin, Size: int64(c.Size), RootHash: hex.EncodeToString(c.Root[:]), Note: string(c.Raw)}
}

func loadTilesState(path, origin string) (*tilesState, error) {
	b, err := readStateFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &tilesState{SchemaVersion: tilesStateVersion, Origin: origin}, nil
	}
	if err != nil {
		return nil, err
	}
	var st tilesState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, &state.CorruptError{Path: path, Reason: err.Error()}
	}
	if st.SchemaVersion != tilesStateVersion || st.Origin != origin {
		return nil, &state.CorruptError{Path: path, Reason: fmt.Sprintf("schema %d for origin %q, want schema %d for %q", st.SchemaVersion, st.Origin, tilesStateVersion, origin)}
	}
	return &st, nil
}

// readStateFile reads a monitor state file through durable (bounded,
// regular files only); a file over MaxStateSize is a *state.CorruptError.
func readStateFile(path string) ([]byte, error) {
	b, err := durable.ReadRegularFile(path, MaxStateSize)
	var tl *durable.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, &state.CorruptError{Path: path, Reason: fmt.Sprintf("larger than %d bytes", MaxStateSize)}
	case errors.Is(err, os.ErrNotExist):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("monitor state: reading %s: %w", path, err)
	}
	return b, nil
}

// storeJSONState replaces the state file at path with v, atomically and
// durably (durable.WriteFile).
func storeJSONState(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("monitor state: writing %s: %w", path, err)
	}
	return nil
}

// RunTilesShards runs RunTiles over each shard of a log that rotates
// (one TilesOptions per shard, each with its own pinned key, reader and
// state file: the state is kept per origin) and merges the reports: each
// entry and finding names its shard's origin (Entry.Log), Logs has each
// shard's part. A shard that cannot be read does not stop the others
// (their state is stored; the report is Incomplete and the first error is
// returned); a SECURITY ERROR in one ends the run with it (what the shards
// before it stored is in the report). One shard: RunTiles.
func RunTilesShards(ctx context.Context, shards []TilesOptions) (*Report, error) {
	if len(shards) == 1 {
		return RunTiles(ctx, shards[0])
	}
	if len(shards) == 0 {
		return nil, errors.New("monitor: no shard")
	}
	rep := &Report{SchemaVersion: SchemaVersion, LogURL: shards[0].LogURL, LogID: shards[0].Log.Origin(),
		Entries: []Entry{}, Findings: []Finding{}, Vanished: []string{}, NotFound: []string{}, Logs: []LogRun{}}
	for _, k := range shards[0].Keys {
		rep.KeyIDs = append(rep.KeyIDs, k.KeyID())
	}
	var firstErr error
	for _, o := range shards {
		origin := o.Log.Origin()
		r, err := RunTiles(ctx, o)
		lr := LogRun{URL: o.LogURL, Origin: origin}
		if r != nil {
			lr.Previous, lr.Current, lr.New, lr.Total = r.Previous, r.Current, r.New, r.Total
			for _, e := range r.Entries {
				e.Log = origin
				rep.Entries = append(rep.Entries, e)
			}
			for _, e := range r.all {
				e.Log = origin
				rep.all = append(rep.all, e)
			}
			for _, f := range r.Findings {
				f.Log = origin
				rep.Findings = append(rep.Findings, f)
			}
			rep.New += r.New
			rep.Total += r.Total
		}
		if err != nil {
			lr.Error = err.Error()
			rep.Logs = append(rep.Logs, lr)
			var sec *verify.SecurityError
			if errors.As(err, &sec) {
				rep.Previous, rep.Current, rep.LogURL, rep.LogID = lr.Previous, lr.Current, o.LogURL, origin
				return rep, err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		rep.Logs = append(rep.Logs, lr)
	}
	for _, lr := range rep.Logs {
		if lr.Error == "" {
			rep.Previous, rep.Current = lr.Previous, lr.Current
		}
	}
	if firstErr != nil {
		rep.Incomplete = true
		return rep, firstErr
	}
	return rep, nil
}
