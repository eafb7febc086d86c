package monitor

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/types"

	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// Monitoring a Sigsum log: every leaf the log appended since the last run
// is read (get-leaves, each batch proven included in the current tree
// head), and the leaves signed by a monitored key are reported. The tree
// head must verify under the policy (log signature and witness quorum) and
// be consistent with the one the previous run stored.

// SigsumOptions configure RunSigsum.
type SigsumOptions struct {
	Keys []verify.PublicKey
	// Config names the policy (the log must have a URL there) and the
	// HTTP client.
	Config sigsum.Config
	// State keeps, per log, the last verified tree head and the leaves
	// seen (file monitor-sigsum-<log key hash>.json); nil: nothing kept.
	State *state.Dir
	All   bool
	Now   func() time.Time
}

type sigsumState struct {
	SchemaVersion int     `json:"schema_version"`
	LogKeyHash    string  `json:"log_key_hash"`
	Size          uint64  `json:"tree_size"`
	RootHash      string  `json:"root_hash"`
	NextIndex     uint64  `json:"next_index"`
	Entries       []Entry `json:"entries"`
}

// RunSigsum runs the monitor once over the first log of the policy that
// has a URL. A rollback or fork is a *verify.SecurityError.
func RunSigsum(ctx context.Context, o SigsumOptions) (*Report, error) {
	if len(o.Keys) == 0 || o.Config.Policy == nil {
		return nil, errors.New("monitor: no transparency key or no policy")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	lg := -1
	for i, l := range o.Config.Policy.Logs {
		if l.URL != "" && l.Ed25519() != nil {
			lg = i
			break
		}
	}
	if lg < 0 {
		return nil, errors.New("monitor: the Sigsum policy names no log with a URL")
	}
	l := &o.Config.Policy.Logs[lg]
	kh := hex.EncodeToString(l.KeyHash[:])
	rep := &Report{SchemaVersion: SchemaVersion, LogURL: l.URL, LogID: kh,
		Entries: []Entry{}, Findings: []Finding{}, Vanished: []string{}, NotFound: []string{}}
	var keys []ed25519.PublicKey
	for _, k := range o.Keys {
		rep.KeyIDs = append(rep.KeyIDs, k.KeyID())
		keys = append(keys, k.Ed25519())
	}
	st := &sigsumState{SchemaVersion: 1, LogKeyHash: kh}
	var path string
	if o.State != nil {
		unlock, err := o.State.Lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
		path = o.State.Path("monitor-sigsum-" + kh[:16] + ".json")
		if st, err = loadSigsumState(path, kh); err != nil {
			return nil, err
		}
	}
	prev := sigsum.LogState{NextIndex: st.NextIndex}
	if st.Size > 0 || st.NextIndex > 0 {
		root, err := hex.DecodeString(st.RootHash)
		if err != nil || len(root) != 32 {
			return nil, &state.CorruptError{Path: path, Reason: "root_hash is not 32 bytes of hex"}
		}
		prev.LogKeyHash, prev.TreeHead = l.KeyHash, sigsum.TreeHead{Size: st.Size, RootHash: [32]byte(root)}
		rep.Previous = &TreeHead{Origin: l.Name, Size: int64(st.Size), RootHash: st.RootHash}
	}
	list, err := sigsum.ListLeaves(ctx, o.Config, l, keys, prev, 0)
	if err != nil {
		var sv *sigsum.SplitViewError
		if errors.As(err, &sv) {
			return rep, &verify.SecurityError{Reason: sv.Reason, Err: err,
				Old: fmt.Appendf(nil, "size %d root %x", sv.Old.Size, sv.Old.RootHash[:]), New: fmt.Appendf(nil, "size %d root %x", sv.New.Size, sv.New.RootHash[:]),
				OldLabel: "tree head stored by the previous run", NewLabel: "the log's current tree head"}
		}
		var le *sigsum.LogError
		if errors.As(err, &le) {
			return nil, &verify.LogUnavailableError{Op: le.Op, Err: err}
		}
		return nil, err
	}
	rep.Current = &TreeHead{Origin: l.Name, Size: int64(list.TreeHead.Size), RootHash: hex.EncodeToString(list.TreeHead.RootHash[:])}
	byHash := map[string]verify.PublicKey{}
	for _, k := range o.Keys {
		h := scrypto.HashBytes(k.Ed25519())
		byHash[string(h[:])] = k
	}
	seen := map[string]bool{}
	for _, e := range st.Entries {
		seen[e.UUID] = true
	}
	first := now().UTC().Format(time.RFC3339)
	var fresh []Entry
	for _, lf := range list.Leaves {
		k := byHash[string(lf.KeyHash[:])]
		leaf := types.Leaf{Checksum: scrypto.Hash(lf.Checksum), Signature: scrypto.Signature(lf.Signature), KeyHash: scrypto.Hash(lf.KeyHash)}
		h := leaf.ToHash()
		e := Entry{UUID: hex.EncodeToString(h[:]), LogIndex: int64(lf.Index), SigsumChecksum: hex.EncodeToString(lf.Checksum[:]),
			Key: k.Base64(), KeyID: k.KeyID(), SigKeyID: k.KeyID(), Signature: base64.StdEncoding.EncodeToString(lf.Signature[:]),
			Indexed: true, FirstSeen: first}
		if !lf.SignatureValid {
			rep.Findings = append(rep.Findings, Finding{Kind: FindingBadSignature, UUID: e.UUID, LogIndex: e.LogIndex,
				Detail: "a leaf of the transparency key " + k.KeyID() + " whose signature does not verify over its checksum"})
		}
		if !seen[e.UUID] {
			seen[e.UUID] = true
			fresh = append(fresh, e)
		}
	}
	st.Entries = append(st.Entries, fresh...)
	sort.Slice(st.Entries, func(a, b int) bool { return st.Entries[a].LogIndex < st.Entries[b].LogIndex })
	rep.New, rep.Total, rep.Entries, rep.all = len(fresh), len(st.Entries), fresh, st.Entries
	if o.All {
		rep.Entries = st.Entries
	}
	if rep.Entries == nil {
		rep.Entries = []Entry{}
	}
	if o.State != nil {
		st.Size, st.RootHash, st.NextIndex = list.State.TreeHead.Size, hex.EncodeToString(list.State.TreeHead.RootHash[:]), list.State.NextIndex
		if err := storeJSONState(path, st); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func loadSigsumState(path, kh string) (*sigsumState, error) {
	b, err := readStateFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &sigsumState{SchemaVersion: 1, LogKeyHash: kh}, nil
	}
	if err != nil {
		return nil, err
	}
	var st sigsumState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, &state.CorruptError{Path: path, Reason: err.Error()}
	}
	if st.SchemaVersion != 1 || st.LogKeyHash != kh || st.NextIndex > st.Size {
		return nil, &state.CorruptError{Path: path, Reason: "not a Sigsum monitor state of this log"}
	}
	return &st, nil
}
