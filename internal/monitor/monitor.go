// Package monitor is the auditor's view of a transparency log: every entry
// signed by the transparency key(s), found by the log's key search, fetched
// in batches, each verified under the pinned log key, and the log's tree
// proven consistent from one run to the next.
//
// # What a run proves
//
// For every entry it reports: the RFC 6962 inclusion proof of the entry's
// body verifies against a checkpoint signed by the pinned log key (whose
// size and root the proof states), the signed entry timestamp verifies, the
// body is a canonical minisign rekord by a monitored key, and whether the
// signature line's key id is the key's (Rekor does not check it, so anyone
// can log a variant of a published signature with an edited key id: such
// entries are findings). The log's current checkpoint is proven consistent
// with every checkpoint those proofs used and with the one the previous run
// stored: a log that forked or rolled back is a *verify.SecurityError with
// both tree heads.
//
// # What it cannot prove
//
// The log stores sha256(message), not the message (the package's hex
// sha256) and not the `.t`'s trusted comment (the file name): the monitor
// prints what the log holds. Binding an entry to a package, and checking the
// signature over it, is the cross-check's job (package audit). The key
// search is Rekor's asynchronous index: an entry that was logged but never
// indexed (an uploader killed mid-request) is invisible to the search; the
// cross-check asks for the entries the audit log names by UUID (Options.Extra).
//
// # Reading by index (--tail), against a log that lies
//
// Tail reads every index the previous --tail runs have not, from the
// tailed prefix [0, TailedSize) kept in the state to the size of a
// checkpoint fetched now, and builds the RFC 6962 compact range of those
// leaves on the stored compact range of the prefix. Its root must be the
// checkpoint's root: that proves, with one hash comparison, that every leaf
// read is the leaf at its index (a log cannot serve another entry at an
// index, or leave one out, without forging a tree with the same root), and
// that the prefix read by earlier runs is part of this tree. Only then does
// the tailed prefix move. A root that does not match is a finding
// (tail-mismatch), and each entry of the span whose own inclusion proof
// does not prove it at its index is named (misplaced-entry). A run
// without --tail never moves the tailed prefix, so a later --tail run
// reads what it skipped.
package monitor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// SchemaVersion is the version of Report's JSON form.
const SchemaVersion = 1

const (
	// MaxBatch is the most entries one retrieve request asks for (Rekor's
	// limit).
	MaxBatch = 10
	// DefaultConcurrency is how many retrieve requests are in flight when
	// Options.Concurrency is 0. On a busy two-core machine the local Rekor
	// (Rekor, Trillian, MariaDB) is the limit: one at a time took 1.5-2x
	// as long as 8, and 4, 8 and 16 were within the noise of each other.
	// A log with idle cores gains from more.
	DefaultConcurrency = 8
)

// Log is what the monitor needs from a transparency log; *rekor.Client
// implements it. The monitor verifies everything it returns.
type Log interface {
	// SearchByPublicKey returns the UUIDs of every entry signed by the key
	// in pubKeyFile (all of them: Rekor v1 does not page).
	SearchByPublicKey(ctx context.Context, pubKeyFile []byte) ([]string, error)
	// EntriesByUUID fetches entries in batches, keyed by leaf hash;
	// missing ones are absent.
	EntriesByUUID(ctx context.Context, uuids []string) (map[string]*rekorv1.Entry, error)
	// EntriesByIndex fetches entries by log index in batches (Tail).
	EntriesByIndex(ctx context.Context, indexes []int64) (map[int64]*rekorv1.Entry, error)
	// Checkpoint returns the current signed checkpoint.
	Checkpoint(ctx context.Context) ([]byte, error)
	// ConsistencyProof returns the proof between two tree sizes.
	ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error)
}

// Options configure a run.
type Options struct {
	// Keys are the transparency keys whose entries are monitored. Required.
	Keys []verify.PublicKey
	// LogKey is the log's pinned key. Required.
	LogKey *rekorv1.LogKey
	// Log is the log. Required. LogURL is written into the report.
	Log    Log
	LogURL string
	// State keeps the last verified checkpoint and the entries seen
	// (file monitor-<log id>.json); Run holds its lock. Nil: nothing is
	// remembered, every entry is new, no rollback detection across runs.
	State *state.Dir
	// All reports (and re-fetches and re-verifies) every entry, not only
	// the new ones.
	All bool
	// Extra are UUIDs to fetch and verify even if the key search does not
	// list them (the audit log's records: Rekor's index can miss entries).
	// Those found for a monitored key are reported with Indexed false;
	// those not found, or for another key, are listed in Report.NotFound.
	Extra []string
	// Tail also reads every entry of the log appended since the stored
	// checkpoint (the whole log on a first run), by index, and keeps those
	// of a monitored key: entries the key search does not list (Rekor
	// indexes asynchronously, and not at all when the uploader disconnects
	// mid-request) are found too, as FindingUnindexed. It costs one
	// request per 10 entries of the whole log: for a log dedicated to one
	// repository, not for the public Rekor. Single-shard logs only (the
	// checkpoint's size must be the global index range).
	Tail bool
	// Concurrency bounds the retrieve requests in flight, each a batch of
	// MaxBatch entries verified as it arrives (0: DefaultConcurrency).
	Concurrency int
	// Now is the clock (reports); nil means time.Now.
	Now func() time.Time
}

// Entry is one verified log entry for a monitored key, as the log shows
// it. Field names are part of the JSON report and the state file.
type Entry struct {
	UUID           string `json:"uuid"`
	LogIndex       int64  `json:"log_index"`
	IntegratedTime int64  `json:"integrated_time"`
	// MessageSHA256 is the entry's data.hash: the hex sha256 of the signed
	// message. The message itself (the package's hex sha256) is not in the
	// log; the cross-check recovers it from the audit log or the dbs.
	MessageSHA256 string `json:"message_sha256"`
	// Key is the public key line (`RW…`) the log verified the signature
	// with; KeyID its id; SigKeyID the key id written in the signature line
	// (different: a key-id-mismatch finding).
	Key      string `json:"key"`
	KeyID    string `json:"key_id"`
	SigKeyID string `json:"sig_key_id"`
	// Signature is the base64 signature line (algorithm ‖ key id ‖ Ed25519
	// signature), as the log stores it.
	Signature string `json:"signature"`
	// Indexed is false for an entry found only by UUID (Options.Extra).
	Indexed bool `json:"indexed"`
	// FirstSeen is when a run first verified the entry (RFC 3339).
	FirstSeen string `json:"first_seen"`
}

func (e *Entry) leaf() string { return e.UUID[len(e.UUID)-64:] }

// Body rebuilds the decoded entry body (signature line, key, data hash),
// e.g. to check the signature over a message (rekorv1.Body.VerifyMessage).
func (e *Entry) Body() (*rekorv1.Body, error) {
	k, err := verify.ParsePublicKey(e.Key)
	if err != nil {
		return nil, err
	}
	line, err := base64.StdEncoding.Strict().DecodeString(e.Signature)
	if err != nil || len(line) != 74 {
		return nil, fmt.Errorf("signature %q is not base64 of 74 bytes", e.Signature)
	}
	return &rekorv1.Body{SigLine: line, Key: k, DataSHA256: e.MessageSHA256}, nil
}

func (e *Entry) validate() error {
	u := e.UUID
	if (len(u) != 64 && len(u) != 80) || strings.ToLower(u) != u {
		return fmt.Errorf("uuid %q", u)
	}
	if _, err := hex.DecodeString(u); err != nil {
		return fmt.Errorf("uuid %q", u)
	}
	if e.LogIndex < 0 {
		return fmt.Errorf("log index %d", e.LogIndex)
	}
	if b, err := hex.DecodeString(e.MessageSHA256); err != nil || len(b) != 32 || strings.ToLower(e.MessageSHA256) != e.MessageSHA256 {
		return fmt.Errorf("message_sha256 %q", e.MessageSHA256)
	}
	b, err := e.Body()
	if err != nil {
		return err
	}
	if b.Key.KeyID() != e.KeyID || b.SigKeyID() != e.SigKeyID {
		return fmt.Errorf("key ids %s/%s do not match the key and signature", e.KeyID, e.SigKeyID)
	}
	return nil
}

// FindingKind names a problem the monitor found. The values appear in
// reports: never rename one.
type FindingKind string

// Every finding kind.
const (
	// FindingKeyIDMismatch: an entry whose signature line names another key
	// id than the key it was logged with. No minisign client accepts it;
	// anyone can log one from a published `.t`.
	FindingKeyIDMismatch FindingKind = "key-id-mismatch"
	// FindingInvalidEntry: the log returned an entry that does not verify
	// (proof, checkpoint, SET, body).
	FindingInvalidEntry FindingKind = "invalid-entry"
	// FindingMissingEntry: the key search lists an entry the log does not
	// return.
	FindingMissingEntry FindingKind = "missing-entry"
	// FindingForeignKey: the key search returned an entry logged with a key
	// that is not monitored.
	FindingForeignKey FindingKind = "foreign-key"
	// FindingUnindexed (Tail): an entry of a monitored key that the key
	// search does not list: invisible to every monitor that relies on the
	// index. A killed uploader leaves these; so can someone who wants an
	// entry to go unnoticed.
	FindingUnindexed FindingKind = "unindexed-entry"
	// FindingMissingIndex (Tail): the log returned no entry for an index
	// below its checkpoint's size.
	FindingMissingIndex FindingKind = "missing-index"
	// FindingTailMismatch (Tail): the leaves the log served for the span
	// read by index do not hash (with the proven prefix) to the root of
	// its own signed checkpoint: it served entries that are not at the
	// indexes it claimed. Nothing of the span counts as tailed.
	FindingTailMismatch FindingKind = "tail-mismatch"
	// FindingMisplacedEntry (Tail): an entry served for an index whose own
	// inclusion proof does not prove it at that index (another entry shown
	// in its place).
	FindingMisplacedEntry FindingKind = "misplaced-entry"
)

// Finding is one problem, with the evidence.
type Finding struct {
	Kind     FindingKind `json:"kind"`
	UUID     string      `json:"uuid"`
	LogIndex int64       `json:"log_index,omitempty"`
	Detail   string      `json:"detail"`
	Err      error       `json:"-"`
}

// TreeHead is a verified checkpoint.
type TreeHead struct {
	Origin   string `json:"origin"`
	Size     int64  `json:"tree_size"`
	RootHash string `json:"root_hash"`
	// Note is the whole signed note: the evidence to keep.
	Note string `json:"note"`
}

func treeHead(c *verify.Checkpoint) *TreeHead {
	if c == nil {
		return nil
	}
	return &TreeHead{Origin: c.Origin, Size: c.Size, RootHash: hex.EncodeToString(c.Root), Note: string(c.Text)}
}

// TailSpan is the range of indexes a --tail run read, [From, To), and
// whether it was proven (Proven: the compact range of the tailed prefix
// and the span's leaves has the root of the log's checkpoint of size To).
type TailSpan struct {
	From   int64 `json:"from"`
	To     int64 `json:"to"`
	Proven bool  `json:"proven"`
}

// Stats describe the work of a run.
type Stats struct {
	SearchResults int     `json:"search_results"`
	Tailed        int64   `json:"tailed"`
	Fetched       int     `json:"fetched"`
	Seconds       float64 `json:"seconds"`
}

// Report is what a run found. Entries are sorted by log index.
type Report struct {
	SchemaVersion int      `json:"schema_version"`
	LogURL        string   `json:"log_url"`
	LogID         string   `json:"log_id"`
	KeyIDs        []string `json:"key_ids"`
	// Previous is the checkpoint the last run stored (nil on a first run);
	// Current the log's checkpoint now, proven consistent with Previous.
	Previous *TreeHead `json:"previous_checkpoint"`
	Current  *TreeHead `json:"checkpoint"`
	// Entries are the entries reported: the new ones, or all with
	// Options.All. New counts the new ones, Total every entry known.
	Entries []Entry `json:"entries"`
	New     int     `json:"new"`
	Total   int     `json:"total"`
	// Findings make the run fail (exit 1).
	Findings []Finding `json:"findings"`
	// Vanished are entries verified by an earlier run that the key search
	// no longer lists (still in the tree: consistency proves it).
	Vanished []string `json:"vanished"`
	// NotFound are Options.Extra UUIDs that are not in the log for a
	// monitored key.
	NotFound []string `json:"not_found"`
	// Incomplete marks a run that stopped at an error (returned with this
	// report) after verifying a prefix of the batches it had to fetch:
	// those entries are reported and, with the checkpoint proven
	// consistent, remembered; Remaining entries are left for the next run.
	Incomplete bool `json:"incomplete,omitempty"`
	Remaining  int  `json:"remaining,omitempty"`
	// Tail is the span this run read by index (nil without --tail).
	Tail *TailSpan `json:"tail,omitempty"`
	// TailedSize is the prefix of the log read by index and proven by
	// this and earlier --tail runs: every index below it (0: none).
	TailedSize int64 `json:"tailed_size"`
	Stats      Stats `json:"stats"`

	all []Entry
}

// AllEntries returns every entry known for the monitored keys (this run's
// and earlier runs'), sorted by log index.
func (r *Report) AllEntries() []Entry { return r.all }

// Run runs the monitor once: search every monitored key, fetch and verify
// the entries not seen before (all with Options.All), fetch the current
// checkpoint and prove it consistent with every checkpoint seen and the
// stored one, then store it with the entries. A log that contradicts itself
// is a *verify.SecurityError (nothing is stored; the report holds what was
// found); a log that cannot be asked is an error wrapping
// *verify.LogUnavailableError. Findings are not errors.
//
// Entries are fetched MaxBatch per request, Options.Concurrency requests in
// flight; the first failed request cancels the others. The batches
// verified before the failed one (a prefix in UUID order; never a later
// batch, even one that was answered) are then kept as a complete run keeps
// them, provided the current checkpoint is still proven consistent: the
// report (Incomplete, Remaining) comes back with the fetch error. If that
// cannot be done, or ctx was cancelled, nothing is stored and the fetch
// error is returned with no report, or one not marked Incomplete (a
// *verify.SecurityError found on the way still wins).
func Run(ctx context.Context, o Options) (*Report, error) {
	switch {
	case len(o.Keys) == 0:
		return nil, errors.New("monitor: no transparency key")
	case o.LogKey == nil:
		return nil, errors.New("monitor: no pinned log key")
	case o.Log == nil:
		return nil, errors.New("monitor: no log")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	start := now()
	lk := o.LogKey
	rep := &Report{SchemaVersion: SchemaVersion, LogURL: o.LogURL, LogID: lk.ID(),
		Entries: []Entry{}, Findings: []Finding{}, Vanished: []string{}, NotFound: []string{}}
	for _, k := range o.Keys {
		rep.KeyIDs = append(rep.KeyIDs, k.KeyID())
	}

	// State.
	st := &stateFile{SchemaVersion: StateSchemaVersion, LogID: lk.ID()}
	var path string
	if o.State != nil {
		unlock, err := o.State.Lock(ctx)
		if err != nil {
			return nil, err
		}
		defer unlock()
		path = o.State.Path(stateName(lk.ID()))
		if st, err = loadState(path, lk.ID()); err != nil {
			return nil, err
		}
	}
	var stored *verify.Checkpoint
	if st.Checkpoint != "" {
		c, err := lk.VerifyCheckpoint([]byte(st.Checkpoint))
		if err != nil {
			return nil, fmt.Errorf("monitor: the stored checkpoint in %s does not verify under the pinned log key (state corrupted or log key changed): %w", path, err)
		}
		stored = c
		rep.Previous = treeHead(c)
		if st.TailedSize > c.Size {
			return nil, &state.CorruptError{Path: path, Reason: fmt.Sprintf("tailed_size %d beyond the stored checkpoint's size %d", st.TailedSize, c.Size)}
		}
	}
	rep.TailedSize = st.TailedSize
	seen := make(map[string]Entry, len(st.Entries))
	for _, e := range st.Entries {
		seen[e.leaf()] = e
	}
	monitored := func(k verify.PublicKey) bool {
		for _, m := range o.Keys {
			if m == k {
				return true
			}
		}
		return false
	}

	conc := o.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	// Search, one request per key, Concurrency at a time.
	found := make([][]string, len(o.Keys))
	sg, sctx := errgroup.WithContext(ctx)
	sg.SetLimit(conc)
	for i, k := range o.Keys {
		sg.Go(func() error {
			uuids, err := o.Log.SearchByPublicKey(sctx, k.File())
			if err != nil {
				return &verify.LogUnavailableError{Op: "search by public key " + k.KeyID(), Err: err}
			}
			found[i] = uuids
			return nil
		})
	}
	if err := sg.Wait(); err != nil {
		return nil, err
	}
	listed := map[string]string{} // leaf -> uuid as listed
	for _, uuids := range found {
		for _, u := range uuids {
			u = strings.ToLower(u)
			if len(u) < 64 {
				continue // the client checks the shape; be safe anyway
			}
			listed[u[len(u)-64:]] = u
		}
	}
	rep.Stats.SearchResults = len(listed)
	for leaf, e := range seen {
		if _, ok := listed[leaf]; !ok && e.Indexed {
			k, _ := verify.ParsePublicKey(e.Key)
			if monitored(k) {
				rep.Vanished = append(rep.Vanished, e.UUID)
			}
		}
	}
	sort.Strings(rep.Vanished)

	// Fetch what is new (or everything).
	var fetch []string
	extra := map[string]bool{}
	for leaf, u := range listed {
		if _, ok := seen[leaf]; !ok || o.All {
			fetch = append(fetch, u)
		}
	}
	for _, u := range o.Extra {
		u = strings.ToLower(u)
		if len(u) < 64 {
			continue
		}
		leaf := u[len(u)-64:]
		if _, ok := listed[leaf]; ok {
			continue
		}
		if _, ok := seen[leaf]; ok && !o.All {
			continue
		}
		if !extra[leaf] {
			extra[leaf] = true
			fetch = append(fetch, u)
		}
	}
	var tailFindings []Finding
	tailed := map[string]*rekorv1.Entry{}
	// The tailed prefix: moved only by a --tail run that proves its span.
	tailedSize, tailHashes := st.TailedSize, st.TailRange
	var tailCP *verify.Checkpoint
	if o.Tail {
		res, err := tail(ctx, o, conc, lk, st, seen, monitored, tailed, &rep.Stats)
		if err != nil {
			return nil, err
		}
		tailFindings, tailCP, rep.Tail = res.findings, res.cp, &res.span
		if res.span.Proven {
			tailedSize, tailHashes = res.span.To, res.hashes
		}
		for leaf, e := range tailed {
			if _, dup := listed[leaf]; !dup && !extra[leaf] {
				fetch = append(fetch, e.UUID)
			}
		}
	}
	sort.Strings(fetch)
	if len(seen)+len(fetch) > MaxEntries {
		return nil, fmt.Errorf("monitor: %d entries, more than the %d this version handles", len(seen)+len(fetch), MaxEntries)
	}

	// Fetch and verify in batches of MaxBatch (one retrieve request
	// each): first the entries tail already holds (nothing to fetch), then
	// the others by UUID. At most Concurrency batches are in flight; each
	// is verified as it arrives and only its small outcomes are kept, so
	// memory does not grow with full log entries. Outcomes are taken in
	// batch order: on an error the verified batches form a prefix.
	var inHand, byUUID []string
	for _, u := range fetch {
		if tailed[u[len(u)-64:]] != nil {
			inHand = append(inHand, u)
		} else {
			byUUID = append(byUUID, u)
		}
	}
	batches := slices.Collect(slices.Chunk(inHand, MaxBatch))
	inHandBatches := len(batches)
	for b := range slices.Chunk(byUUID, MaxBatch) {
		batches = append(batches, b)
	}
	stamp := start.UTC().Format(time.RFC3339)
	check := func(u string, le *rekorv1.Entry) outcome {
		leaf := u[len(u)-64:]
		_, isListed := listed[leaf]
		isExtra := extra[leaf] || (tailed[leaf] != nil && !isListed)
		if le == nil {
			if isExtra {
				return outcome{absent: true}
			}
			return outcome{finding: &Finding{Kind: FindingMissingEntry, UUID: u,
				Detail: "the key search lists this entry but the log does not return it"}}
		}
		body, cp, err := rekorv1.VerifyLogged(le, lk)
		if err != nil {
			return outcome{finding: &Finding{Kind: FindingInvalidEntry, UUID: u, LogIndex: le.LogIndex, Detail: err.Error(), Err: err}}
		}
		if !monitored(body.Key) {
			if isExtra {
				return outcome{absent: true}
			}
			return outcome{finding: &Finding{Kind: FindingForeignKey, UUID: u, LogIndex: le.LogIndex,
				Detail: fmt.Sprintf("the key search returned an entry logged with key %s %s, which is not monitored", body.Key.KeyID(), body.Key.Base64())}}
		}
		e := &Entry{UUID: le.UUID, LogIndex: le.LogIndex, IntegratedTime: le.IntegratedTime,
			MessageSHA256: body.DataSHA256, Key: body.Key.Base64(), KeyID: body.Key.KeyID(), SigKeyID: body.SigKeyID(),
			Signature: base64.StdEncoding.EncodeToString(body.SigLine), Indexed: isListed, FirstSeen: stamp}
		if old, ok := seen[leaf]; ok && old.FirstSeen != "" {
			e.FirstSeen = old.FirstSeen
		}
		return outcome{entry: e, cp: cp}
	}
	var outs []outcome // in the order of order
	var order []string
	done, fetchErr := inOrder(ctx, len(batches), conc, func(ctx context.Context, bi int) ([]outcome, error) {
		b := batches[bi]
		var got map[string]*rekorv1.Entry
		if bi >= inHandBatches {
			var err error
			if got, err = o.Log.EntriesByUUID(ctx, b); err != nil {
				return nil, &verify.LogUnavailableError{Op: fmt.Sprintf("retrieve entries (batch %d of %d, %d entries)", bi+1, len(batches), len(b)), Err: err}
			}
		}
		res := make([]outcome, len(b))
		for i, u := range b {
			leaf := u[len(u)-64:]
			le, fetched := tailed[leaf], false
			if le == nil {
				le = got[leaf]
				fetched = le != nil
			}
			res[i] = check(u, le)
			res[i].fetched = fetched
		}
		return res, nil
	}, func(bi int, res []outcome) error {
		outs = append(outs, res...)
		order = append(order, batches[bi]...)
		return nil
	})
	if fetchErr != nil && (ctx.Err() != nil || done < inHandBatches) {
		// Interrupted, or entries only tail found would be skipped by the
		// next run's tail: keep nothing.
		return nil, fetchErr
	}
	remaining := len(fetch) - len(order)
	for _, out := range outs {
		if out.fetched {
			rep.Stats.Fetched++
		}
	}
	rep.Findings = append(rep.Findings, tailFindings...)

	// Checkpoints the entries were proven against, smallest first.
	cps := map[string]*verify.Checkpoint{}
	var reported []Entry
	newCount := 0
	for i, out := range outs {
		switch {
		case out.absent:
			rep.NotFound = append(rep.NotFound, order[i])
		case out.finding != nil:
			rep.Findings = append(rep.Findings, *out.finding)
		default:
			e := *out.entry
			cps[fmt.Sprintf("%d/%x", out.cp.Size, out.cp.Root)] = out.cp
			_, wasSeen := seen[e.leaf()]
			if !wasSeen {
				newCount++
			}
			seen[e.leaf()] = e
			reported = append(reported, e)
			if tailed[e.leaf()] != nil && !e.Indexed && !wasSeen {
				rep.Findings = append(rep.Findings, Finding{Kind: FindingUnindexed, UUID: e.UUID, LogIndex: e.LogIndex,
					Detail: "an entry of the transparency key that the log's key search does not list: monitors relying on the index do not see it"})
			}
			if e.SigKeyID != e.KeyID {
				rep.Findings = append(rep.Findings, Finding{Kind: FindingKeyIDMismatch, UUID: e.UUID, LogIndex: e.LogIndex,
					Detail: fmt.Sprintf("the signature line names key id %s but the entry was logged with key %s: no minisign client accepts it, and anyone can log such a variant of a published signature", e.SigKeyID, e.KeyID)})
			}
		}
	}

	// The current checkpoint, fetched after every entry, and consistency.
	// After a fetch error, the verified prefix is kept only if all of this
	// holds; otherwise the fetch error is the run's error.
	fail := func(err error) (*Report, error) {
		if fetchErr != nil && !isSecurityError(err) {
			return rep, fetchErr
		}
		return rep, err
	}
	curText, err := o.Log.Checkpoint(ctx)
	if err != nil {
		return fail(&verify.LogUnavailableError{Op: "current checkpoint", Err: err})
	}
	cur, err := lk.VerifyCheckpoint(curText)
	if err != nil {
		return fail(&verify.LogUnavailableError{Op: "current checkpoint", Err: err})
	}
	rep.Current = treeHead(cur)
	olds := make([]*verify.Checkpoint, 0, len(cps)+1)
	for _, c := range cps {
		olds = append(olds, c)
	}
	if tailCP != nil {
		olds = append(olds, tailCP) // the tree the tail proved its span in
	}
	sort.Slice(olds, func(a, b int) bool { return olds[a].Size < olds[b].Size })
	if stored != nil {
		if err := verify.ProveConsistent(ctx, o.Log, stored, cur, "the checkpoint stored by the previous monitor run"); err != nil {
			return fail(err)
		}
	}
	for _, c := range olds {
		if err := verify.ProveConsistent(ctx, o.Log, c, cur, "the checkpoint of an entry's inclusion proof"); err != nil {
			return fail(err)
		}
	}

	// Report and remember.
	all := make([]Entry, 0, len(seen))
	for _, e := range seen {
		all = append(all, e)
	}
	byIndex := func(s []Entry) {
		sort.Slice(s, func(a, b int) bool {
			if s[a].LogIndex != s[b].LogIndex {
				return s[a].LogIndex < s[b].LogIndex
			}
			return s[a].UUID < s[b].UUID
		})
	}
	byIndex(all)
	byIndex(reported)
	sort.Slice(rep.Findings, func(a, b int) bool {
		if rep.Findings[a].LogIndex != rep.Findings[b].LogIndex {
			return rep.Findings[a].LogIndex < rep.Findings[b].LogIndex
		}
		return rep.Findings[a].UUID < rep.Findings[b].UUID
	})
	sort.Strings(rep.NotFound)
	if reported != nil {
		rep.Entries = reported
	}
	rep.New = newCount
	for _, e := range all {
		if k, _ := verify.ParsePublicKey(e.Key); monitored(k) {
			rep.all = append(rep.all, e)
		}
	}
	rep.Total = len(rep.all)
	if o.State != nil {
		next := &stateFile{SchemaVersion: StateSchemaVersion, LogID: lk.ID(), Checkpoint: string(cur.Text), Entries: all,
			TailedSize: tailedSize, TailRange: append([]string{}, tailHashes...)}
		if err := saveState(path, next); err != nil {
			return fail(fmt.Errorf("monitor: saving state: %w", err))
		}
	}
	rep.TailedSize = tailedSize
	rep.Stats.Seconds = now().Sub(start).Seconds()
	if fetchErr != nil {
		rep.Incomplete, rep.Remaining = true, remaining
		return rep, fetchErr
	}
	return rep, nil
}

func isSecurityError(err error) bool {
	var sec *verify.SecurityError
	return errors.As(err, &sec)
}

// outcome is what verifying one fetched UUID gave.
type outcome struct {
	entry   *Entry
	cp      *verify.Checkpoint
	finding *Finding
	absent  bool // an Extra uuid that is not a monitored entry
	fetched bool // returned by the UUID retrieve (not by tail)
}

// tailResult is what tail found.
type tailResult struct {
	findings []Finding
	span     TailSpan
	cp       *verify.Checkpoint // the checkpoint the span was read up to
	hashes   []string           // the compact range [0, span.To), when proven
}

// maxMisplaced bounds the misplaced-entry findings of one run (a log that
// lies about every index would otherwise make a finding per entry).
const maxMisplaced = 100

// tail reads, by index, the span from the tailed prefix st.TailedSize to
// the size of a checkpoint fetched now: MaxBatch indexes per request, conc
// requests in flight, taken in index order. Every leaf is appended to the
// compact range of the prefix, whose root must then be the checkpoint's
// (the span is proven: every entry sits at the index it was read at).
// Entries of a monitored key that are not known yet go into found, keyed
// by leaf hash (they are verified with the others). A failed request ends
// it with an error (nothing kept); a log that answers but lies is a
// finding and leaves the tailed prefix where it was.
func tail(ctx context.Context, o Options, conc int, lk *rekorv1.LogKey, st *stateFile, seen map[string]Entry,
	monitored func(verify.PublicKey) bool, found map[string]*rekorv1.Entry, stats *Stats) (*tailResult, error) {
	text, err := o.Log.Checkpoint(ctx)
	if err != nil {
		return nil, &verify.LogUnavailableError{Op: "current checkpoint", Err: err}
	}
	cur, err := lk.VerifyCheckpoint(text)
	if err != nil {
		return nil, &verify.LogUnavailableError{Op: "current checkpoint", Err: err}
	}
	from := st.TailedSize
	res := &tailResult{cp: cur, span: TailSpan{From: from, To: max(from, cur.Size)}}
	if cur.Size < from {
		// A smaller tree than one already proven: the consistency check
		// with the stored checkpoint reports the rollback.
		return res, nil
	}
	rng, err := tailRange(st.TailedSize, st.TailRange)
	if err != nil {
		return nil, err // decodeState checked it
	}
	var keyLines [][]byte
	for _, k := range o.Keys {
		keyLines = append(keyLines, []byte(base64.StdEncoding.EncodeToString([]byte(k.Base64()))))
	}
	complete := true // every index of the span was answered
	// Batches of MaxBatch indexes, conc requests in flight, decoded as
	// they arrive and taken in index order.
	type item struct {
		finding *Finding
		entry   *rekorv1.Entry // of a monitored key, not seen yet
	}
	type batch struct {
		leaves [][]byte // in index order; nil where the log returned nothing
		items  []item
	}
	batches := int((cur.Size - from + MaxBatch - 1) / MaxBatch)
	_, err = inOrder(ctx, batches, conc, func(ctx context.Context, bi int) (batch, error) {
		lo := from + int64(bi)*MaxBatch
		idx := make([]int64, 0, MaxBatch)
		for i := lo; i < min(lo+MaxBatch, cur.Size); i++ {
			idx = append(idx, i)
		}
		m, err := o.Log.EntriesByIndex(ctx, idx)
		if err != nil {
			return batch{}, &verify.LogUnavailableError{Op: fmt.Sprintf("entries %d..%d", idx[0], idx[len(idx)-1]), Err: err}
		}
		var b batch
		for _, i := range idx {
			e := m[i]
			if e == nil {
				b.leaves = append(b.leaves, nil)
				b.items = append(b.items, item{finding: &Finding{Kind: FindingMissingIndex, LogIndex: i,
					Detail: fmt.Sprintf("the log returned no entry for index %d of a tree of %d", i, cur.Size)}})
				continue
			}
			b.leaves = append(b.leaves, rfc6962.DefaultHasher.HashLeaf(e.Body))
			body, err := rekorv1.DecodeBody(e.Body)
			if err != nil {
				for _, kl := range keyLines {
					if bytes.Contains(e.Body, kl) {
						b.items = append(b.items, item{finding: &Finding{Kind: FindingInvalidEntry, UUID: e.UUID, LogIndex: i, Detail: err.Error(), Err: err}})
					}
				}
				continue
			}
			if !monitored(body.Key) {
				continue
			}
			leaf := rekorv1.LeafHash(e.Body)
			if _, ok := seen[leaf]; ok && !o.All {
				continue
			}
			if len(e.UUID) < 64 || e.UUID[len(e.UUID)-64:] != leaf {
				b.items = append(b.items, item{finding: &Finding{Kind: FindingInvalidEntry, UUID: e.UUID, LogIndex: i, Detail: "entry id is not the body's leaf hash"}})
				continue
			}
			b.items = append(b.items, item{entry: e})
		}
		return b, nil
	}, func(bi int, b batch) error {
		stats.Tailed += int64(len(b.leaves))
		for _, leaf := range b.leaves {
			if leaf == nil {
				complete = false
				continue
			}
			if complete {
				if err := rng.Append(leaf, nil); err != nil {
					return err
				}
			}
		}
		for _, it := range b.items {
			if it.finding != nil {
				res.findings = append(res.findings, *it.finding)
			} else {
				found[it.entry.UUID[len(it.entry.UUID)-64:]] = it.entry
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !complete {
		return res, nil // missing-index findings; nothing proven
	}
	if cur.Size == from {
		res.span.Proven = true
	} else if root, err := rng.GetRootHash(nil); err == nil && bytes.Equal(root, cur.Root) {
		res.span.Proven = true
	}
	if !res.span.Proven {
		res.findings = append(res.findings, Finding{Kind: FindingTailMismatch, LogIndex: from,
			Detail: fmt.Sprintf("the entries the log served for indexes %d to %d, with the %d entries proven before, do not hash to the root %x of its own checkpoint of size %d: it served entries that are not at the indexes it claimed; nothing of this span counts as read",
				from, cur.Size-1, from, cur.Root, cur.Size)})
		mis, err := misplaced(ctx, o, conc, lk, from, cur.Size)
		if err != nil {
			return nil, err
		}
		res.findings = append(res.findings, mis...)
		// Entries taken from a span the log lied about are not reported as
		// found: they may not be where the log says.
		clear(found)
		return res, nil
	}
	for _, h := range rng.Hashes() {
		res.hashes = append(res.hashes, hex.EncodeToString(h))
	}
	return res, nil
}

// misplaced reads [from, to) by index again and names each entry whose own
// inclusion proof (checkpoint, SET) does not prove it at the index it was
// served for: after the span's leaves failed to hash to the checkpoint's
// root, the entries the log put where they are not. At most maxMisplaced.
func misplaced(ctx context.Context, o Options, conc int, lk *rekorv1.LogKey, from, to int64) ([]Finding, error) {
	var out []Finding
	batches := int((to - from + MaxBatch - 1) / MaxBatch)
	_, err := inOrder(ctx, batches, conc, func(ctx context.Context, bi int) ([]Finding, error) {
		lo := from + int64(bi)*MaxBatch
		idx := make([]int64, 0, MaxBatch)
		for i := lo; i < min(lo+MaxBatch, to); i++ {
			idx = append(idx, i)
		}
		m, err := o.Log.EntriesByIndex(ctx, idx)
		if err != nil {
			return nil, &verify.LogUnavailableError{Op: fmt.Sprintf("entries %d..%d", idx[0], idx[len(idx)-1]), Err: err}
		}
		var fs []Finding
		for _, i := range idx {
			e := m[i]
			if e == nil {
				continue // reported as missing-index already
			}
			detail := ""
			switch _, _, err := rekorv1.VerifyLogged(e, lk); {
			case err != nil:
				detail = "its inclusion proof does not prove it at that index: " + err.Error()
			case e.Proof == nil || e.Proof.LogIndex != i:
				detail = "its inclusion proof is for another index"
			default:
				continue
			}
			desc := ""
			if b, err := rekorv1.DecodeBody(e.Body); err == nil {
				desc = fmt.Sprintf(" (an entry of key %s)", b.Key.KeyID())
			}
			fs = append(fs, Finding{Kind: FindingMisplacedEntry, UUID: e.UUID, LogIndex: i,
				Detail: fmt.Sprintf("the log served entry %s%s for index %d; %s", e.UUID, desc, i, detail)})
		}
		return fs, nil
	}, func(_ int, fs []Finding) error {
		for _, f := range fs {
			if len(out) < maxMisplaced {
				out = append(out, f)
			}
		}
		return nil
	})
	return out, err
}
