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
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

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
	// MessageSHA512 is, for a Rekor v2 entry (hashedrekord v0.0.2,
	// Ed25519ph), the entry's digest: the hex SHA-512 of the signed
	// message (MessageSHA256 is then empty).
	MessageSHA512 string `json:"message_sha512,omitempty"`
	// SigsumChecksum is, for a Sigsum leaf, its checksum: the hex SHA-256
	// of the package's SHA-256 (32 bytes, not hex).
	SigsumChecksum string `json:"sigsum_checksum,omitempty"`
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
	// Log is, in a run over several logs (Sigsum: every log of the
	// policy), the origin of the log the entry was read from (as audit
	// records name it).
	Log string `json:"log,omitempty"`
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
	// Log is the entry's log in a run over several logs (Entry.Log).
	Log    string `json:"log,omitempty"`
	Detail string `json:"detail"`
	Err    error  `json:"-"`
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
	// Logs are, in a run over several logs (Sigsum: every log of the
	// policy with a URL), each log's part: LogURL, LogID, Previous and
	// Current are then the first log's.
	Logs []LogRun `json:"logs,omitempty"`

	all []Entry
}

// LogRun is one log's part of a run over several logs.
type LogRun struct {
	URL    string `json:"url"`
	Origin string `json:"origin"`
	// Previous is the tree head the last run stored for this log (nil: a
	// first run); Current the log's now, proven consistent with it.
	Previous *TreeHead `json:"previous_checkpoint"`
	Current  *TreeHead `json:"checkpoint"`
	New      int       `json:"new"`
	Total    int       `json:"total"`
	// Error is why the log was not read this run (its stored state is
	// kept as it was; the report is Incomplete).
	Error string `json:"error,omitempty"`
}

// AllEntries returns every entry known for the monitored keys (this run's
// and earlier runs'), sorted by log index.
func (r *Report) AllEntries() []Entry { return r.all }

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
// Entries of a monitored key that are not known yet go into r.tailed,
// keyed by leaf hash (they are verified with the others). A failed request
// ends it with an error (nothing kept); a log that answers but lies is a
// finding and leaves the tailed prefix where it was.
func (r *run) tail(ctx context.Context) (*tailResult, error) {
	cur, err := r.fetchCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	from := r.st.TailedSize
	res := &tailResult{cp: cur, span: TailSpan{From: from, To: max(from, cur.Size)}}
	if cur.Size < from {
		// A smaller tree than one already proven: the consistency check
		// with the stored checkpoint reports the rollback.
		return res, nil
	}
	rng, err := tailRange(r.st.TailedSize, r.st.TailRange)
	if err != nil {
		return nil, err // decodeState checked it
	}
	t := &tailer{r: r, cur: cur, from: from, rng: rng, res: res, complete: true}
	for _, k := range r.o.Keys {
		t.keyLines = append(t.keyLines, []byte(base64.StdEncoding.EncodeToString([]byte(k.Base64()))))
	}
	batches := int((cur.Size - from + MaxBatch - 1) / MaxBatch)
	if _, err := inOrder(ctx, batches, r.conc, t.read, t.commit); err != nil {
		return nil, err
	}
	return t.judge(ctx)
}

// fetchCheckpoint fetches and verifies the log's current checkpoint.
func (r *run) fetchCheckpoint(ctx context.Context) (*verify.Checkpoint, error) {
	text, err := r.o.Log.Checkpoint(ctx)
	if err != nil {
		return nil, &verify.LogUnavailableError{Op: "current checkpoint", Err: err}
	}
	cur, err := r.lk.VerifyCheckpoint(text)
	if err != nil {
		return nil, &verify.LogUnavailableError{Op: "current checkpoint", Err: err}
	}
	return cur, nil
}

// tailer is one tail: the span being read and what it found.
type tailer struct {
	r        *run
	cur      *verify.Checkpoint
	from     int64
	rng      *compact.Range
	res      *tailResult
	keyLines [][]byte // the monitored keys as a rekord body holds them
	complete bool     // every index of the span was answered so far
}

// tailItem is a finding or an entry of a monitored key not seen yet.
type tailItem struct {
	finding *Finding
	entry   *rekorv1.Entry
}

// tailBatch is what one request of the span gave.
type tailBatch struct {
	leaves [][]byte // in index order; nil where the log returned nothing
	items  []tailItem
}

// read fetches batch bi of the span and decodes it.
func (t *tailer) read(ctx context.Context, bi int) (tailBatch, error) {
	lo := t.from + int64(bi)*MaxBatch
	idx := make([]int64, 0, MaxBatch)
	for i := lo; i < min(lo+MaxBatch, t.cur.Size); i++ {
		idx = append(idx, i)
	}
	m, err := t.r.o.Log.EntriesByIndex(ctx, idx)
	if err != nil {
		return tailBatch{}, &verify.LogUnavailableError{Op: fmt.Sprintf("entries %d..%d", idx[0], idx[len(idx)-1]), Err: err}
	}
	var b tailBatch
	for _, i := range idx {
		e := m[i]
		if e == nil {
			b.leaves = append(b.leaves, nil)
			b.items = append(b.items, tailItem{finding: &Finding{Kind: FindingMissingIndex, LogIndex: i,
				Detail: fmt.Sprintf("the log returned no entry for index %d of a tree of %d", i, t.cur.Size)}})
			continue
		}
		b.leaves = append(b.leaves, rfc6962.DefaultHasher.HashLeaf(e.Body))
		b.items = append(b.items, t.decode(e, i)...)
	}
	return b, nil
}

// decode keeps an entry read at index i when it is of a monitored key and
// not seen yet, and names it when it is one but is malformed.
func (t *tailer) decode(e *rekorv1.Entry, i int64) []tailItem {
	body, err := rekorv1.DecodeBody(e.Body)
	if err != nil {
		var out []tailItem
		for _, kl := range t.keyLines {
			if bytes.Contains(e.Body, kl) {
				out = append(out, tailItem{finding: &Finding{Kind: FindingInvalidEntry, UUID: e.UUID, LogIndex: i, Detail: err.Error(), Err: err}})
			}
		}
		return out
	}
	if !t.r.monitored(body.Key) {
		return nil
	}
	leaf := rekorv1.LeafHash(e.Body)
	if _, ok := t.r.seen[leaf]; ok && !t.r.o.All {
		return nil
	}
	if len(e.UUID) < 64 || e.UUID[len(e.UUID)-64:] != leaf {
		return []tailItem{{finding: &Finding{Kind: FindingInvalidEntry, UUID: e.UUID, LogIndex: i, Detail: "entry id is not the body's leaf hash"}}}
	}
	return []tailItem{{entry: e}}
}

// commit takes batch bi in index order: its leaves extend the compact
// range (until an index is missing), its items the findings and entries.
func (t *tailer) commit(_ int, b tailBatch) error {
	t.r.rep.Stats.Tailed += int64(len(b.leaves))
	for _, leaf := range b.leaves {
		if leaf == nil {
			t.complete = false
			continue
		}
		if t.complete {
			if err := t.rng.Append(leaf, nil); err != nil {
				return err
			}
		}
	}
	for _, it := range b.items {
		if it.finding != nil {
			t.res.findings = append(t.res.findings, *it.finding)
		} else {
			t.r.tailed[it.entry.UUID[len(it.entry.UUID)-64:]] = it.entry
		}
	}
	return nil
}

// judge proves the span: the compact range's root must be the checkpoint's.
// A span the log lied about is a finding, with each misplaced entry named,
// and its entries are not reported as found.
func (t *tailer) judge(ctx context.Context) (*tailResult, error) {
	res, cur, from := t.res, t.cur, t.from
	if !t.complete {
		return res, nil // missing-index findings; nothing proven
	}
	if cur.Size == from {
		res.span.Proven = true
	} else if root, err := t.rng.GetRootHash(nil); err == nil && bytes.Equal(root, cur.Root) {
		res.span.Proven = true
	}
	if !res.span.Proven {
		res.findings = append(res.findings, Finding{Kind: FindingTailMismatch, LogIndex: from,
			Detail: fmt.Sprintf("the entries the log served for indexes %d to %d, with the %d entries proven before, do not hash to the root %x of its own checkpoint of size %d: it served entries that are not at the indexes it claimed; nothing of this span counts as read",
				from, cur.Size-1, from, cur.Root, cur.Size)})
		mis, err := misplaced(ctx, t.r.o, t.r.conc, t.r.lk, from, cur.Size)
		if err != nil {
			return nil, err
		}
		res.findings = append(res.findings, mis...)
		// Entries taken from a span the log lied about are not reported as
		// found: they may not be where the log says.
		clear(t.r.tailed)
		return res, nil
	}
	for _, h := range t.rng.Hashes() {
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
