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
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// Monitoring Sigsum logs: every log of the policy that has a URL is read
// (a package's leaf is in whichever log accepted it: sign submits to the
// policy's logs in random order). In each, every leaf the log appended
// since the last run is read (get-leaves, each batch proven included in
// the current tree head), and the leaves signed by a monitored key are
// reported with the log they came from. Each tree head must verify under
// the policy (log signature and witness quorum) and be consistent with the
// one the previous run stored for that log (a state file per log).

// SigsumOptions configure RunSigsum.
type SigsumOptions struct {
	Keys []verify.PublicKey
	// Config names the policy (its logs with a URL are read) and the HTTP
	// client.
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

// sigsumLogRun is one log's part of a run, stored only when every log
// was read or none lied.
type sigsumLogRun struct {
	log   *witness.Log
	path  string
	st    *sigsumState
	list  *sigsum.Listing
	fresh []Entry
	err   error
}

// sigsumMonitor is one RunSigsum: the logs read, the report built.
type sigsumMonitor struct {
	o      SigsumOptions
	runs   []*sigsumLogRun
	rep    *Report
	keys   []ed25519.PublicKey
	byHash map[string]verify.PublicKey // the monitored keys by Sigsum key hash
	first  string                      // FirstSeen of this run's new entries
}

// RunSigsum runs the monitor once over every log of the policy that has a
// URL. A rollback or fork of any log is a *verify.SecurityError (nothing
// is stored). A log that cannot be read (unreachable, or a tree head
// without the policy's quorum) does not stop the others: their leaves are
// reported and stored, the report is marked Incomplete, that log's
// LogRun carries the error, and the first such error is returned (a
// *verify.LogUnavailableError).
func RunSigsum(ctx context.Context, o SigsumOptions) (*Report, error) {
	m, err := newSigsumMonitor(o)
	if err != nil {
		return nil, err
	}
	if o.State != nil {
		unlock, err := o.State.Lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	var firstErr error
	for _, r := range m.runs {
		lr, err := m.readLog(ctx, r)
		var sec *verify.SecurityError
		switch {
		case errors.As(err, &sec):
			return m.rep, err
		case err != nil:
			return nil, err
		case r.err != nil && firstErr == nil:
			firstErr = r.err
		}
		m.rep.Logs = append(m.rep.Logs, lr)
	}
	if lr := m.rep.Logs[0]; lr.Error == "" {
		m.rep.Previous, m.rep.Current = lr.Previous, lr.Current
	}
	m.entries()
	if err := m.store(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		m.rep.Incomplete = true
		return m.rep, firstErr
	}
	return m.rep, nil
}

// newSigsumMonitor checks the options and lists the logs to read.
func newSigsumMonitor(o SigsumOptions) (*sigsumMonitor, error) {
	if len(o.Keys) == 0 || o.Config.Policy == nil {
		return nil, errors.New("monitor: no transparency key or no policy")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	m := &sigsumMonitor{o: o, byHash: map[string]verify.PublicKey{}, first: now().UTC().Format(time.RFC3339)}
	for i := range o.Config.Policy.Logs {
		if l := &o.Config.Policy.Logs[i]; l.URL != "" && l.Ed25519() != nil {
			m.runs = append(m.runs, &sigsumLogRun{log: l})
		}
	}
	if len(m.runs) == 0 {
		return nil, errors.New("monitor: the Sigsum policy names no log with a URL")
	}
	l0 := m.runs[0].log
	m.rep = &Report{SchemaVersion: SchemaVersion, LogURL: l0.URL, LogID: hex.EncodeToString(l0.KeyHash[:]),
		Entries: []Entry{}, Findings: []Finding{}, Vanished: []string{}, NotFound: []string{}, Logs: []LogRun{}}
	for _, k := range o.Keys {
		m.rep.KeyIDs = append(m.rep.KeyIDs, k.KeyID())
		m.keys = append(m.keys, k.Ed25519())
		h := scrypto.HashBytes(k.Ed25519())
		m.byHash[string(h[:])] = k
	}
	return m, nil
}

// readLog reads one log's new leaves since its stored state. A fork or
// rollback is the returned *verify.SecurityError; a log that cannot be
// read sets r.err (the LogRun says why) and returns nil; any other error
// stops the run.
func (m *sigsumMonitor) readLog(ctx context.Context, r *sigsumLogRun) (LogRun, error) {
	l := r.log
	kh := hex.EncodeToString(l.KeyHash[:])
	origin := witness.SigsumOrigin(l.Ed25519())
	lr := LogRun{URL: l.URL, Origin: origin}
	prev, err := m.loadLog(r, kh, origin, &lr)
	if err != nil {
		return lr, err
	}
	list, err := sigsum.ListLeaves(ctx, m.o.Config, l, m.keys, prev, 0)
	if err != nil {
		var sv *sigsum.SplitViewError
		var le *sigsum.LogError
		var te *sigsum.TreeHeadError
		switch {
		case errors.As(err, &sv):
			m.rep.LogURL, m.rep.LogID, m.rep.Previous = l.URL, kh, lr.Previous
			m.rep.Current = &TreeHead{Origin: origin, Size: int64(sv.New.Size), RootHash: hex.EncodeToString(sv.New.RootHash[:])}
			return lr, &verify.SecurityError{Reason: sv.Reason, Err: err,
				Old: fmt.Appendf(nil, "size %d root %x", sv.Old.Size, sv.Old.RootHash[:]), New: fmt.Appendf(nil, "size %d root %x", sv.New.Size, sv.New.RootHash[:]),
				OldLabel: "tree head stored by the previous run", NewLabel: "the log's current tree head"}
		case errors.As(err, &le):
			r.err = &verify.LogUnavailableError{Op: le.Op, Err: err}
		case errors.As(err, &te):
			r.err = &verify.LogUnavailableError{Op: "tree head", Err: err}
		default:
			return lr, err
		}
		lr.Error, lr.Total = err.Error(), len(r.st.Entries)
		return lr, nil
	}
	r.list = list
	lr.Current = &TreeHead{Origin: origin, Size: int64(list.TreeHead.Size), RootHash: hex.EncodeToString(list.TreeHead.RootHash[:])}
	m.collect(r, origin)
	lr.New, lr.Total = len(r.fresh), len(r.st.Entries)
	return lr, nil
}

// loadLog reads one log's stored state (a fresh one without a state dir)
// and returns where its listing resumes.
func (m *sigsumMonitor) loadLog(r *sigsumLogRun, kh, origin string, lr *LogRun) (sigsum.LogState, error) {
	r.st = &sigsumState{SchemaVersion: 1, LogKeyHash: kh}
	if m.o.State != nil {
		r.path = m.o.State.Path("monitor-sigsum-" + kh[:16] + ".json")
		var err error
		if r.st, err = loadSigsumState(r.path, kh); err != nil {
			return sigsum.LogState{}, err
		}
	}
	st := r.st
	for i := range st.Entries {
		st.Entries[i].Log = origin // states written before entries named their log
	}
	prev := sigsum.LogState{NextIndex: st.NextIndex}
	if st.Size > 0 || st.NextIndex > 0 {
		root, err := hex.DecodeString(st.RootHash)
		if err != nil || len(root) != 32 {
			return prev, &state.CorruptError{Path: r.path, Reason: "root_hash is not 32 bytes of hex"}
		}
		prev.LogKeyHash, prev.TreeHead = r.log.KeyHash, sigsum.TreeHead{Size: st.Size, RootHash: [32]byte(root)}
		lr.Previous = &TreeHead{Origin: origin, Size: int64(st.Size), RootHash: st.RootHash}
	}
	return prev, nil
}

// collect turns one log's listed leaves into entries (new ones in
// r.fresh, added to its state) and findings.
func (m *sigsumMonitor) collect(r *sigsumLogRun, origin string) {
	st := r.st
	seen := map[string]bool{}
	for _, e := range st.Entries {
		seen[e.UUID] = true
	}
	for _, lf := range r.list.Leaves {
		k := m.byHash[string(lf.KeyHash[:])]
		leaf := types.Leaf{Checksum: scrypto.Hash(lf.Checksum), Signature: scrypto.Signature(lf.Signature), KeyHash: scrypto.Hash(lf.KeyHash)}
		h := leaf.ToHash()
		e := Entry{UUID: hex.EncodeToString(h[:]), LogIndex: int64(lf.Index), SigsumChecksum: hex.EncodeToString(lf.Checksum[:]),
			Key: k.Base64(), KeyID: k.KeyID(), SigKeyID: k.KeyID(), Signature: base64.StdEncoding.EncodeToString(lf.Signature[:]),
			Indexed: true, FirstSeen: m.first, Log: origin}
		if !lf.SignatureValid {
			m.rep.Findings = append(m.rep.Findings, Finding{Kind: FindingBadSignature, UUID: e.UUID, LogIndex: e.LogIndex, Log: origin,
				Detail: "a leaf of the transparency key " + k.KeyID() + " whose signature does not verify over its checksum (log " + r.log.URL + ")"})
		}
		if !seen[e.UUID] {
			seen[e.UUID] = true
			r.fresh = append(r.fresh, e)
		}
	}
	st.Entries = append(st.Entries, r.fresh...)
	sort.Slice(st.Entries, func(a, b int) bool { return st.Entries[a].LogIndex < st.Entries[b].LogIndex })
}

// entries fills the report's entries: this run's new ones (every one with
// --all), over every log, by index then log.
func (m *sigsumMonitor) entries() {
	var fresh, all []Entry
	for _, r := range m.runs {
		fresh = append(fresh, r.fresh...)
		if r.list != nil || r.err != nil {
			all = append(all, r.st.Entries...)
		}
	}
	byIndex := func(es []Entry) {
		sort.SliceStable(es, func(a, b int) bool {
			if es[a].LogIndex != es[b].LogIndex {
				return es[a].LogIndex < es[b].LogIndex
			}
			return es[a].Log < es[b].Log
		})
	}
	byIndex(fresh)
	byIndex(all)
	rep := m.rep
	rep.New, rep.Total, rep.Entries, rep.all = len(fresh), len(all), fresh, all
	if m.o.All {
		rep.Entries = all
	}
	if rep.Entries == nil {
		rep.Entries = []Entry{}
	}
}

// store writes the state of every log that was read.
func (m *sigsumMonitor) store() error {
	if m.o.State == nil {
		return nil
	}
	for _, r := range m.runs {
		if r.list == nil {
			continue
		}
		st := r.st
		st.Size, st.RootHash, st.NextIndex = r.list.State.TreeHead.Size, hex.EncodeToString(r.list.State.TreeHead.RootHash[:]), r.list.State.NextIndex
		if err := storeJSONState(r.path, st); err != nil {
			return err
		}
	}
	return nil
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
