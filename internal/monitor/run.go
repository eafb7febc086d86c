package monitor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

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
	r, err := newRun(o)
	if err != nil {
		return nil, err
	}
	unlock, err := r.loadState(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := r.search(ctx); err != nil {
		return nil, err
	}
	r.planFetch()
	if o.Tail {
		if err := r.runTail(ctx); err != nil {
			return nil, err
		}
	}
	if len(r.seen)+len(r.fetch) > MaxEntries {
		return nil, fmt.Errorf("monitor: %d entries, more than the %d this version handles", len(r.seen)+len(r.fetch), MaxEntries)
	}
	outs, order, fetchErr := r.fetchAndVerify(ctx)
	if fetchErr != nil && outs == nil {
		return nil, fetchErr
	}
	cps := r.collect(outs, order)
	// After a fetch error, the verified prefix is kept only if the
	// checkpoint checks hold; otherwise the fetch error is the run's error.
	if err := r.proveCurrent(ctx, cps); err != nil {
		return r.fail(err, fetchErr)
	}
	if err := r.finish(); err != nil {
		return r.fail(err, fetchErr)
	}
	if fetchErr != nil {
		r.rep.Incomplete, r.rep.Remaining = true, len(r.fetch)-len(order)
		return r.rep, fetchErr
	}
	return r.rep, nil
}

// run is one monitor run: the options, the state it started from and what
// each step found, owned by the run.
type run struct {
	o     Options
	lk    *rekorv1.LogKey
	conc  int
	now   func() time.Time
	start time.Time
	rep   *Report

	// The state.
	st     *stateFile
	path   string
	stored *verify.Checkpoint
	seen   map[string]Entry // leaf → entry, every entry verified so far

	// The search and what to fetch.
	listed map[string]string // leaf → uuid as the key search lists it
	extra  map[string]bool   // leaves of Options.Extra to fetch
	fetch  []string          // uuids, sorted

	// The tail (Options.Tail).
	tailed       map[string]*rekorv1.Entry // leaf → entry read by index
	tailFindings []Finding
	tailCP       *verify.Checkpoint
	tailedSize   int64
	tailHashes   []string

	// The entries reported, the new ones among them, the current
	// checkpoint.
	reported []Entry
	newCount int
	cur      *verify.Checkpoint
}

func newRun(o Options) (*run, error) {
	switch {
	case len(o.Keys) == 0:
		return nil, errors.New("monitor: no transparency key")
	case o.LogKey == nil:
		return nil, errors.New("monitor: no pinned log key")
	case o.Log == nil:
		return nil, errors.New("monitor: no log")
	}
	r := &run{o: o, lk: o.LogKey, conc: o.Concurrency, now: time.Now, tailed: map[string]*rekorv1.Entry{}}
	if o.Now != nil {
		r.now = o.Now
	}
	if r.conc <= 0 {
		r.conc = DefaultConcurrency
	}
	r.start = r.now()
	r.rep = &Report{SchemaVersion: SchemaVersion, LogURL: o.LogURL, LogID: r.lk.ID(),
		Entries: []Entry{}, Findings: []Finding{}, Vanished: []string{}, NotFound: []string{}}
	for _, k := range o.Keys {
		r.rep.KeyIDs = append(r.rep.KeyIDs, k.KeyID())
	}
	return r, nil
}

// monitored reports whether k is a monitored key.
func (r *run) monitored(k verify.PublicKey) bool {
	return slices.Contains(r.o.Keys, k)
}

// loadState locks and reads the state (none without Options.State) and
// verifies the stored checkpoint.
func (r *run) loadState(ctx context.Context) (unlock func(), err error) {
	unlock = func() {}
	r.st = &stateFile{SchemaVersion: StateSchemaVersion, LogID: r.lk.ID()}
	if r.o.State != nil {
		if unlock, err = r.o.State.Lock(ctx); err != nil {
			return nil, err
		}
		r.path = r.o.State.Path(stateName(r.lk.ID()))
		if r.st, err = loadState(r.path, r.lk.ID()); err != nil {
			unlock()
			return nil, err
		}
	}
	if r.st.Checkpoint != "" {
		c, err := r.lk.VerifyCheckpoint([]byte(r.st.Checkpoint))
		if err != nil {
			unlock()
			return nil, fmt.Errorf("monitor: the stored checkpoint in %s does not verify under the pinned log key (state corrupted or log key changed): %w", r.path, err)
		}
		r.stored = c
		r.rep.Previous = treeHead(c)
		if r.st.TailedSize > c.Size {
			unlock()
			return nil, &state.CorruptError{Path: r.path, Reason: fmt.Sprintf("tailed_size %d beyond the stored checkpoint's size %d", r.st.TailedSize, c.Size)}
		}
	}
	r.rep.TailedSize = r.st.TailedSize
	r.tailedSize, r.tailHashes = r.st.TailedSize, r.st.TailRange
	r.seen = make(map[string]Entry, len(r.st.Entries))
	for _, e := range r.st.Entries {
		r.seen[e.leaf()] = e
	}
	return unlock, nil
}

// search asks the key search for every monitored key, one request per key,
// Concurrency at a time, and lists the entries an earlier run verified
// that it no longer lists (Vanished).
func (r *run) search(ctx context.Context) error {
	found := make([][]string, len(r.o.Keys))
	sg, sctx := errgroup.WithContext(ctx)
	sg.SetLimit(r.conc)
	for i, k := range r.o.Keys {
		sg.Go(func() error {
			uuids, err := r.o.Log.SearchByPublicKey(sctx, k.File())
			if err != nil {
				return &verify.LogUnavailableError{Op: "search by public key " + k.KeyID(), Err: err}
			}
			found[i] = uuids
			return nil
		})
	}
	if err := sg.Wait(); err != nil {
		return err
	}
	r.listed = map[string]string{}
	for _, uuids := range found {
		for _, u := range uuids {
			u = strings.ToLower(u)
			if len(u) < 64 {
				continue // the client checks the shape; be safe anyway
			}
			r.listed[u[len(u)-64:]] = u
		}
	}
	r.rep.Stats.SearchResults = len(r.listed)
	for leaf, e := range r.seen {
		if _, ok := r.listed[leaf]; !ok && e.Indexed {
			if k, _ := verify.ParsePublicKey(e.Key); r.monitored(k) {
				r.rep.Vanished = append(r.rep.Vanished, e.UUID)
			}
		}
	}
	sort.Strings(r.rep.Vanished)
	return nil
}

// planFetch lists what is new (or everything, with All) and the
// Options.Extra UUIDs the search does not list.
func (r *run) planFetch() {
	r.extra = map[string]bool{}
	for leaf, u := range r.listed {
		if _, ok := r.seen[leaf]; !ok || r.o.All {
			r.fetch = append(r.fetch, u)
		}
	}
	for _, u := range r.o.Extra {
		u = strings.ToLower(u)
		if len(u) < 64 {
			continue
		}
		leaf := u[len(u)-64:]
		if _, ok := r.listed[leaf]; ok {
			continue
		}
		if _, ok := r.seen[leaf]; ok && !r.o.All {
			continue
		}
		if !r.extra[leaf] {
			r.extra[leaf] = true
			r.fetch = append(r.fetch, u)
		}
	}
	sort.Strings(r.fetch)
}

// runTail reads the log by index (tail) and adds the entries it found that
// the search did not list to what is verified. The tailed prefix moves
// only when the span is proven.
func (r *run) runTail(ctx context.Context) error {
	res, err := r.tail(ctx)
	if err != nil {
		return err
	}
	r.tailFindings, r.tailCP, r.rep.Tail = res.findings, res.cp, &res.span
	if res.span.Proven {
		r.tailedSize, r.tailHashes = res.span.To, res.hashes
	}
	for leaf, e := range r.tailed {
		if _, dup := r.listed[leaf]; !dup && !r.extra[leaf] {
			r.fetch = append(r.fetch, e.UUID)
		}
	}
	sort.Strings(r.fetch)
	return nil
}

// fetchAndVerify verifies the entries to fetch in batches of MaxBatch (one
// retrieve request each): first the entries tail already holds (nothing
// to fetch), then the others by UUID. At most Concurrency batches are in
// flight; each is verified as it arrives and only its small outcomes are
// kept, so memory does not grow with full log entries. Outcomes are taken
// in batch order: on an error the verified batches form a prefix, returned
// with the error; nil outcomes with it mean nothing can be kept (ctx
// ended, or entries only tail found would be skipped by the next run's
// tail).
func (r *run) fetchAndVerify(ctx context.Context) (outs []outcome, order []string, err error) {
	var inHand, byUUID []string
	for _, u := range r.fetch {
		if r.tailed[u[len(u)-64:]] != nil {
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
	done, fetchErr := inOrder(ctx, len(batches), r.conc, func(ctx context.Context, bi int) ([]outcome, error) {
		b := batches[bi]
		var got map[string]*rekorv1.Entry
		if bi >= inHandBatches {
			var err error
			if got, err = r.o.Log.EntriesByUUID(ctx, b); err != nil {
				return nil, &verify.LogUnavailableError{Op: fmt.Sprintf("retrieve entries (batch %d of %d, %d entries)", bi+1, len(batches), len(b)), Err: err}
			}
		}
		res := make([]outcome, len(b))
		for i, u := range b {
			le, fetched := r.tailed[u[len(u)-64:]], false
			if le == nil {
				le = got[u[len(u)-64:]]
				fetched = le != nil
			}
			res[i] = r.check(u, le)
			res[i].fetched = fetched
		}
		return res, nil
	}, func(bi int, res []outcome) error {
		outs = append(outs, res...)
		order = append(order, batches[bi]...)
		return nil
	})
	if fetchErr != nil && (ctx.Err() != nil || done < inHandBatches) {
		return nil, nil, fetchErr
	}
	if outs == nil {
		outs = []outcome{}
	}
	return outs, order, fetchErr
}

// check verifies one entry the log returned for uuid u (nil: none).
func (r *run) check(u string, le *rekorv1.Entry) outcome {
	leaf := u[len(u)-64:]
	_, isListed := r.listed[leaf]
	isExtra := r.extra[leaf] || (r.tailed[leaf] != nil && !isListed)
	if le == nil {
		if isExtra {
			return outcome{absent: true}
		}
		return outcome{finding: &Finding{Kind: FindingMissingEntry, UUID: u,
			Detail: "the key search lists this entry but the log does not return it"}}
	}
	body, cp, err := rekorv1.VerifyLogged(le, r.lk)
	if err != nil {
		return outcome{finding: &Finding{Kind: FindingInvalidEntry, UUID: u, LogIndex: le.LogIndex, Detail: err.Error(), Err: err}}
	}
	if !r.monitored(body.Key) {
		if isExtra {
			return outcome{absent: true}
		}
		return outcome{finding: &Finding{Kind: FindingForeignKey, UUID: u, LogIndex: le.LogIndex,
			Detail: fmt.Sprintf("the key search returned an entry logged with key %s %s, which is not monitored", body.Key.KeyID(), body.Key.Base64())}}
	}
	e := &Entry{UUID: le.UUID, LogIndex: le.LogIndex, IntegratedTime: le.IntegratedTime,
		MessageSHA256: body.DataSHA256, Key: body.Key.Base64(), KeyID: body.Key.KeyID(), SigKeyID: body.SigKeyID(),
		Signature: base64.StdEncoding.EncodeToString(body.SigLine), Indexed: isListed, FirstSeen: r.start.UTC().Format(time.RFC3339)}
	if old, ok := r.seen[leaf]; ok && old.FirstSeen != "" {
		e.FirstSeen = old.FirstSeen
	}
	return outcome{entry: e, cp: cp}
}

// collect turns the outcomes into the report's entries and findings, and
// returns the checkpoints the entries were proven against.
func (r *run) collect(outs []outcome, order []string) []*verify.Checkpoint {
	var cps []*verify.Checkpoint
	for _, out := range outs {
		if out.fetched {
			r.rep.Stats.Fetched++
		}
	}
	r.rep.Findings = append(r.rep.Findings, r.tailFindings...)
	for i, out := range outs {
		switch {
		case out.absent:
			r.rep.NotFound = append(r.rep.NotFound, order[i])
		case out.finding != nil:
			r.rep.Findings = append(r.rep.Findings, *out.finding)
		default:
			e := *out.entry
			cps = append(cps, out.cp)
			_, wasSeen := r.seen[e.leaf()]
			if !wasSeen {
				r.newCount++
			}
			r.seen[e.leaf()] = e
			r.reported = append(r.reported, e)
			r.entryFindings(e, wasSeen)
		}
	}
	return cps
}

// entryFindings reports what is wrong with a verified entry of a
// monitored key: found only by tail, or a key id mismatch.
func (r *run) entryFindings(e Entry, wasSeen bool) {
	if r.tailed[e.leaf()] != nil && !e.Indexed && !wasSeen {
		r.rep.Findings = append(r.rep.Findings, Finding{Kind: FindingUnindexed, UUID: e.UUID, LogIndex: e.LogIndex,
			Detail: "an entry of the transparency key that the log's key search does not list: monitors relying on the index do not see it"})
	}
	if e.SigKeyID != e.KeyID {
		r.rep.Findings = append(r.rep.Findings, Finding{Kind: FindingKeyIDMismatch, UUID: e.UUID, LogIndex: e.LogIndex,
			Detail: fmt.Sprintf("the signature line names key id %s but the entry was logged with key %s: no minisign client accepts it, and anyone can log such a variant of a published signature", e.SigKeyID, e.KeyID)})
	}
}

// proveCurrent fetches the current checkpoint (after every entry) and
// proves it consistent with the stored one, the checkpoints the entries
// were proven against, and the tree the tail proved its span in.
func (r *run) proveCurrent(ctx context.Context, cps []*verify.Checkpoint) error {
	var err error
	if r.cur, err = r.fetchCheckpoint(ctx); err != nil {
		return err
	}
	r.rep.Current = treeHead(r.cur)
	if r.tailCP != nil {
		cps = append(cps, r.tailCP)
	}
	sort.SliceStable(cps, func(a, b int) bool { return cps[a].Size < cps[b].Size })
	var c verify.Consistency
	c.Add(r.stored, "the checkpoint stored by the previous monitor run")
	for _, cp := range cps {
		c.Add(cp, "the checkpoint of an entry's inclusion proof")
	}
	return c.Prove(ctx, r.o.Log, r.cur, r.conc)
}

// fail is the run's answer to err after the checkpoint checks: a
// *verify.SecurityError is the run's error; otherwise a fetch error that
// came first is.
func (r *run) fail(err, fetchErr error) (*Report, error) {
	if fetchErr != nil && !isSecurityError(err) {
		return r.rep, fetchErr
	}
	return r.rep, err
}

// finish sorts the report and stores the state: the current checkpoint
// with every entry known, and the tailed prefix.
func (r *run) finish() error {
	all := make([]Entry, 0, len(r.seen))
	for _, e := range r.seen {
		all = append(all, e)
	}
	byIndex(all)
	byIndex(r.reported)
	sort.Slice(r.rep.Findings, func(a, b int) bool {
		if r.rep.Findings[a].LogIndex != r.rep.Findings[b].LogIndex {
			return r.rep.Findings[a].LogIndex < r.rep.Findings[b].LogIndex
		}
		return r.rep.Findings[a].UUID < r.rep.Findings[b].UUID
	})
	sort.Strings(r.rep.NotFound)
	if r.reported != nil {
		r.rep.Entries = r.reported
	}
	r.rep.New = r.newCount
	for _, e := range all {
		if k, _ := verify.ParsePublicKey(e.Key); r.monitored(k) {
			r.rep.all = append(r.rep.all, e)
		}
	}
	r.rep.Total = len(r.rep.all)
	if r.o.State != nil {
		next := &stateFile{SchemaVersion: StateSchemaVersion, LogID: r.lk.ID(), Checkpoint: string(r.cur.Text), Entries: all,
			TailedSize: r.tailedSize, TailRange: append([]string{}, r.tailHashes...)}
		if err := saveState(r.path, next); err != nil {
			return fmt.Errorf("monitor: saving state: %w", err)
		}
	}
	r.rep.TailedSize = r.tailedSize
	r.rep.Stats.Seconds = r.now().Sub(r.start).Seconds()
	return nil
}

// byIndex sorts entries by log index, then UUID.
func byIndex(s []Entry) {
	sort.Slice(s, func(a, b int) bool {
		if s[a].LogIndex != s[b].LogIndex {
			return s[a].LogIndex < s[b].LogIndex
		}
		return s[a].UUID < s[b].UUID
	})
}
