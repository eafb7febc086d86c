package rekorv2

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/singleflight"

	"github.com/bintrans/bintrans/internal/httpclient"
)

// Limits and defaults of a Reader.
const (
	// TileHeight is the height of C2SP tiles: 256 hashes or entries per tile.
	TileHeight = 8
	tileWidth  = 1 << TileHeight
	// DefaultMaxEntryBundleSize bounds one entry bundle (256 entries). A
	// hashedrekord entry with an Ed25519 key is about 450 bytes, one with
	// a certificate a few KiB.
	DefaultMaxEntryBundleSize = 4 << 20
	// DefaultReadRetries is how often an idempotent read is retried after a
	// refused/reset connection or a 429/502/503/504.
	DefaultReadRetries = 2
	// maxCachedTiles bounds the verified hash tiles a Tree keeps (8 KiB each).
	maxCachedTiles = 4096
	// tileFetchParallel bounds the tile fetches of one proof.
	tileFetchParallel = 8
	// maxJobs bounds the entry bundles Entries reads at once.
	maxJobs = 64
)

// Reader reads a Rekor v2 log's checkpoint and tiles (C2SP tlog-tiles:
// <url>/checkpoint, <url>/tile/<L>/<N>[.p/<W>], <url>/tile/entries/<N>[.p/<W>]).
// Every checkpoint is verified against the pinned log key, and every tile
// through a Tree, against a verified checkpoint. It is safe for concurrent use.
type Reader struct {
	base           string
	hc             *http.Client
	log            *LogVerifier
	retries        int
	backoff        time.Duration
	maxEntryBundle int64
}

// ReaderOption changes a Reader's defaults.
type ReaderOption func(*Reader)

// WithReadRetries sets how many times a read is retried (0: never).
func WithReadRetries(n int) ReaderOption { return func(r *Reader) { r.retries = max(n, 0) } }

// WithMaxEntryBundleSize changes the size limit of one entry bundle.
func WithMaxEntryBundleSize(n int64) ReaderOption {
	return func(r *Reader) { r.maxEntryBundle = n }
}

// NewReader returns a Reader of the tiles served at readURL (http or https,
// optionally with a path prefix), for the log identified by log. Requests
// go through hc (nil: httpclient.New(httpclient.Options{})).
func NewReader(readURL string, hc *http.Client, log *LogVerifier, opts ...ReaderOption) (*Reader, error) {
	u, err := parseBaseURL(readURL)
	if err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("rekor v2: a Reader needs the pinned log verifier")
	}
	if hc == nil {
		if hc, err = httpclient.New(httpclient.Options{}); err != nil {
			return nil, err
		}
	}
	r := &Reader{base: strings.TrimSuffix(u.String(), "/") + "/", hc: hc, log: log,
		retries: DefaultReadRetries, backoff: 100 * time.Millisecond, maxEntryBundle: DefaultMaxEntryBundleSize}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// get fetches base+path (at most max bytes) with bounded retries. Errors
// are *CallError.
func (r *Reader) get(ctx context.Context, path string, max int64) ([]byte, error) {
	delay := r.backoff
	for attempt := 1; ; attempt++ {
		b, err := httpclient.Get(ctx, r.hc, r.base+path, max)
		if err == nil {
			return b, nil
		}
		if attempt > r.retries || ctx.Err() != nil || !httpclient.Temporary(err) {
			return nil, &CallError{Op: "read " + path, URL: r.base + path, Attempts: attempt, Err: err}
		}
		select {
		case <-ctx.Done():
			return nil, &CallError{Op: "read " + path, URL: r.base + path, Attempts: attempt, Err: ctx.Err()}
		case <-time.After(delay/2 + rand.N(delay+1)):
		}
		delay *= 2
	}
}

func isNotFound(err error) bool {
	var se *httpclient.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// Checkpoint fetches the log's newest checkpoint and verifies it. Errors:
// *CallError, *CheckpointError.
func (r *Reader) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	b, err := r.get(ctx, "checkpoint", MaxCheckpointSize)
	if err != nil {
		return nil, err
	}
	return r.log.VerifyCheckpoint(b)
}

// Update fetches the newest checkpoint and proves from its tiles that it
// extends old (a checkpoint verified before, e.g. the persisted one; nil
// skips the check). Errors: those of Checkpoint, *RollbackError, *ForkError,
// *TileError, *CallError.
func (r *Reader) Update(ctx context.Context, old *Checkpoint) (*Checkpoint, error) {
	cp, err := r.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return cp, nil
	}
	t, err := r.At(cp)
	if err != nil {
		return nil, err
	}
	if _, err := t.ConsistencyProof(ctx, old); err != nil {
		return nil, err
	}
	return cp, nil
}

// Tree reads the tiles of the tree of one verified checkpoint: every hash
// it returns comes from tiles that hash to the checkpoint's root
// (x/mod/sumdb/tlog's TileHashReader authenticates each tile before use),
// and verified tiles are cached. It is safe for concurrent use.
type Tree struct {
	r  *Reader
	cp *Checkpoint
	tt tlog.Tree

	mu    sync.Mutex
	cache map[tlog.Tile][]byte
	sf    singleflight.Group

	// hashes are stored hashes already authenticated against tt
	// (readHashes): a settle builds thousands of proofs that share most
	// of their hashes, and tlog re-authenticates every tile on each call.
	hmu    sync.Mutex
	hashes map[int64]tlog.Hash

	consistent sync.Map // "size/root" of checkpoints proven to be prefixes
}

// At returns the Tree of cp, which must be a checkpoint of this log (its
// signature is checked again: a Tree trusts nothing else).
func (r *Reader) At(cp *Checkpoint) (*Tree, error) {
	if cp == nil {
		return nil, errors.New("rekor v2: no checkpoint")
	}
	v, err := r.log.VerifyCheckpoint(cp.Raw)
	if err != nil {
		return nil, err
	}
	if v.Size != cp.Size || v.Root != cp.Root || v.Origin != cp.Origin {
		return nil, &CheckpointError{Reason: "fields do not match the signed text", Head: headOf(cp.Raw)}
	}
	if v.Size > 1<<62 {
		return nil, &CheckpointError{Reason: fmt.Sprintf("tree size %d out of range", v.Size), Head: headOf(cp.Raw)}
	}
	return &Tree{r: r, cp: v, tt: tlog.Tree{N: int64(v.Size), Hash: tlog.Hash(v.Root)}, cache: map[tlog.Tile][]byte{}}, nil
}

// Checkpoint is the tree's verified checkpoint.
func (t *Tree) Checkpoint() *Checkpoint { return t.cp }

// tilePath maps a tlog tile to its C2SP path: sumdb's tile/8/L/N[.p/W]
// without the height, and tile/8/data/… as tile/entries/….
func tilePath(tile tlog.Tile) string {
	p := tile.Path() // "tile/8/0/x001/234.p/5", "tile/8/data/000"
	p = strings.TrimPrefix(p, "tile/8/")
	if rest, ok := strings.CutPrefix(p, "data/"); ok {
		return "tile/entries/" + rest
	}
	return "tile/" + p
}

// hashReader is a tlog.TileReader over this tree's tiles for one call:
// ReadTiles serves verified tiles from the cache and fetches the others
// (unverified until tlog calls SaveTiles).
type hashReader struct {
	t   *Tree
	ctx context.Context
	// fetchErr is set when ReadTiles itself failed (so that a tlog error
	// after a successful ReadTiles is an authentication failure).
	fetchErr error
	paths    []string
}

func (h *hashReader) Height() int { return TileHeight }

func (h *hashReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	h.paths = h.paths[:0]
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, tileFetchParallel)
	)
	for i, tile := range tiles {
		h.paths = append(h.paths, tilePath(tile))
		h.t.mu.Lock()
		data, ok := h.t.cache[tile]
		h.t.mu.Unlock()
		if ok {
			out[i] = data
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			data, err := h.t.fetchTile(h.ctx, tile)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[i] = data
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		h.fetchErr = errs[0]
		return nil, errs[0]
	}
	return out, nil
}

func (h *hashReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	h.t.mu.Lock()
	defer h.t.mu.Unlock()
	if len(h.t.cache)+len(tiles) > maxCachedTiles {
		for k := range h.t.cache { // level-0 tiles are the many; upper ones are reused
			if k.L == 0 {
				delete(h.t.cache, k)
			}
		}
	}
	for i, tile := range tiles {
		if len(h.t.cache) < maxCachedTiles {
			h.t.cache[tile] = data[i]
		}
	}
}

// fetchTile reads one hash tile: exactly W hashes. A partial tile that is
// gone (404) is read from the full tile, whose first W hashes it is.
func (t *Tree) fetchTile(ctx context.Context, tile tlog.Tile) ([]byte, error) {
	path := tilePath(tile)
	v, err, _ := t.sf.Do(path, func() (any, error) {
		want := tile.W * tlog.HashSize
		b, err := t.r.get(ctx, path, int64(tileWidth*tlog.HashSize))
		if err != nil && tile.W < tileWidth && isNotFound(err) {
			full := tile
			full.W = tileWidth
			fb, ferr := t.r.get(ctx, tilePath(full), int64(tileWidth*tlog.HashSize))
			if ferr != nil {
				return nil, err
			}
			if len(fb) != tileWidth*tlog.HashSize {
				return nil, &TileError{Kind: TileWrongSize, Paths: []string{tilePath(full)}, Checkpoint: t.cp,
					Detail: fmt.Sprintf("%d bytes, a full tile has %d", len(fb), tileWidth*tlog.HashSize)}
			}
			return fb[:want], nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) != want {
			return nil, &TileError{Kind: TileWrongSize, Paths: []string{path}, Checkpoint: t.cp,
				Detail: fmt.Sprintf("%d bytes (%d hashes), the checkpoint's tree has %d hashes there", len(b), len(b)/tlog.HashSize, tile.W)}
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// maxCachedHashes bounds a Tree's cache of authenticated hashes (32 MiB
// of hashes; emptied when full).
const maxCachedHashes = 1 << 20

// readHashes reads stored hashes (tlog.StoredHashIndex) of the tree, from
// authenticated tiles. Errors: *TileError (TileInconsistent, TileWrongSize),
// *CallError.
func (t *Tree) readHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	var at []int // positions in out of missing
	t.hmu.Lock()
	for i, x := range indexes {
		h, ok := t.hashes[x]
		if !ok {
			missing, at = append(missing, x), append(at, i)
		}
		out[i] = h
	}
	t.hmu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	h := &hashReader{t: t, ctx: ctx}
	hs, err := tlog.TileHashReader(t.tt, h).ReadHashes(missing)
	if err == nil {
		t.hmu.Lock()
		if t.hashes == nil || len(t.hashes)+len(missing) > maxCachedHashes {
			t.hashes = make(map[int64]tlog.Hash, len(missing))
		}
		for k, x := range missing {
			t.hashes[x] = hs[k]
			out[at[k]] = hs[k]
		}
		t.hmu.Unlock()
		return out, nil
	}
	if h.fetchErr != nil {
		return nil, h.fetchErr
	}
	if strings.Contains(err.Error(), "inconsistent tile") {
		return nil, &TileError{Kind: TileInconsistent, Paths: append([]string(nil), h.paths...), Checkpoint: t.cp,
			Detail: "one of these tiles was altered or belongs to another tree"}
	}
	return nil, fmt.Errorf("rekor v2 tiles at %s: %w", t.cp, err)
}

// LeafHash returns the leaf hash at index, from authenticated tiles.
func (t *Tree) LeafHash(ctx context.Context, index uint64) ([32]byte, error) {
	if index >= t.cp.Size {
		return [32]byte{}, fmt.Errorf("rekor v2: index %d is beyond the tree (size %d)", index, t.cp.Size)
	}
	hs, err := t.readHashes(ctx, []int64{tlog.StoredHashIndex(0, int64(index))})
	if err != nil {
		return [32]byte{}, err
	}
	return [32]byte(hs[0]), nil
}

// InclusionProof returns the RFC 6962 inclusion proof of the entry with
// leaf hash leaf at index, built from authenticated tiles, after checking
// that the tiles hold leaf there. Errors: *LeafMismatchError, *TileError,
// *CallError.
func (t *Tree) InclusionProof(ctx context.Context, index uint64, leaf [32]byte) ([][32]byte, error) {
	got, err := t.LeafHash(ctx, index)
	if err != nil {
		return nil, err
	}
	if got != leaf {
		return nil, &LeafMismatchError{Index: index, Checkpoint: t.cp, Want: leaf, Got: got}
	}
	rp, err := tlog.ProveRecord(t.tt.N, int64(index), &tlogHashes{t: t, ctx: ctx})
	if err != nil {
		return nil, t.hashErr(err)
	}
	hashes := make([][32]byte, len(rp))
	for i := range rp {
		hashes[i] = [32]byte(rp[i])
	}
	// The proof is RFC 6962's; check it the way a bundle will be checked.
	if err := verifyInclusion(index, t.cp, leaf, hashes); err != nil {
		return nil, err
	}
	return hashes, nil
}

// tlogHashes adapts readHashes to tlog.HashReader (for ProveRecord and
// ProveTree), keeping our typed errors.
type tlogHashes struct {
	t   *Tree
	ctx context.Context
	err error
}

func (h *tlogHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	hs, err := h.t.readHashes(h.ctx, indexes)
	if err != nil {
		h.err = err
	}
	return hs, err
}

func (t *Tree) hashErr(err error) error {
	var te *TileError
	var ce *CallError
	if errors.As(err, &te) || errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("rekor v2 tiles at %s: %w", t.cp, err)
}

// ConsistencyProof proves from the tree's tiles that old (a verified
// checkpoint of the same log) is a prefix of this tree, and returns the
// RFC 6962 consistency proof. Errors: *RollbackError (old is larger),
// *ForkError (the same size with another root, or a proof that does not
// verify: the log signed two diverging trees), *TileError, *CallError.
func (t *Tree) ConsistencyProof(ctx context.Context, old *Checkpoint) ([][32]byte, error) {
	if old == nil {
		return nil, errors.New("rekor v2: no old checkpoint")
	}
	if old.Origin != t.cp.Origin {
		return nil, &CheckpointError{Reason: fmt.Sprintf("checkpoints of two logs (%q, %q): an origin change is a configuration change", old.Origin, t.cp.Origin)}
	}
	switch {
	case old.Size > t.cp.Size:
		return nil, &RollbackError{Old: old, New: t.cp}
	case old.Size == t.cp.Size:
		if old.Root != t.cp.Root {
			return nil, &ForkError{Old: old, New: t.cp, Err: errors.New("same size, different roots")}
		}
		t.consistent.Store(consistencyKey(old), true)
		return nil, nil
	case old.Size == 0:
		return nil, nil
	}
	tp, err := tlog.ProveTree(t.tt.N, int64(old.Size), &tlogHashes{t: t, ctx: ctx})
	if err != nil {
		return nil, t.hashErr(err)
	}
	hashes := make([][32]byte, len(tp))
	hs := make([][]byte, len(tp))
	for i := range tp {
		hashes[i] = [32]byte(tp[i])
		hs[i] = hashes[i][:]
	}
	if err := verifyConsistency(old, t.cp, hs); err != nil {
		return nil, &ForkError{Old: old, New: t.cp, Err: err}
	}
	t.consistent.Store(consistencyKey(old), true)
	return hashes, nil
}

func consistencyKey(c *Checkpoint) string { return fmt.Sprintf("%d/%x", c.Size, c.Root) }

// Reprove returns l proven at this tree's checkpoint: l's checkpoint must
// be a prefix of this tree (checked once per distinct checkpoint) and the
// tiles must hold l's leaf at its index. This is how a run's bundles come
// to share one checkpoint.
func (t *Tree) Reprove(ctx context.Context, l *Logged) (*Logged, error) {
	if l == nil || l.Checkpoint == nil || l.Entry == nil {
		return nil, errors.New("rekor v2: incomplete Logged")
	}
	if _, ok := t.consistent.Load(consistencyKey(l.Checkpoint)); !ok {
		if _, err := t.ConsistencyProof(ctx, l.Checkpoint); err != nil {
			return nil, err
		}
	}
	hashes, err := t.InclusionProof(ctx, l.Index, l.LeafHash)
	if err != nil {
		return nil, err
	}
	n := *l
	n.Checkpoint, n.Hashes = t.cp, hashes
	return &n, nil
}

// ---- entries ---------------------------------------------------------------

// Entry is one log entry read from the entry tiles.
type Entry struct {
	Index uint64
	// Body is the entry (for Rekor v2, the canonicalized body: ParseBody).
	Body     []byte
	LeafHash [32]byte
}

// ParseEntryBundle splits an entry bundle (C2SP tlog-tiles: a sequence of
// big-endian uint16 length-prefixed entries) into at most max entries.
// The entries alias data.
func ParseEntryBundle(data []byte, max int) ([][]byte, error) {
	var out [][]byte
	for i := 0; i < len(data); {
		if len(out) == max {
			return nil, fmt.Errorf("more than %d entries", max)
		}
		if len(data)-i < 2 {
			return nil, fmt.Errorf("truncated length prefix at byte %d", i)
		}
		n := int(data[i])<<8 | int(data[i+1])
		i += 2
		if len(data)-i < n {
			return nil, fmt.Errorf("entry %d: %d bytes announced, %d left", len(out), n, len(data)-i)
		}
		out = append(out, data[i:i+n:i+n])
		i += n
	}
	return out, nil
}

// Entries returns the entries [from, to) of the tree in order, reading
// entry bundles with up to jobs (1..64) requests in flight. Every entry bundle is
// checked before any of its entries is yielded: its leaf hashes must be the
// ones the authenticated hash tiles hold. At the end the root is
// recomputed from the entries read (from the authenticated compact range at
// from) and compared with the checkpoint's (to == size) or with the
// authenticated subtree hashes at to. On error the sequence yields it and
// stops: an entry once yielded was verified, so reading can resume at the
// next index (e.g. after a restart, from a stored position). Errors:
// *TileError (TileWrongSize, EntryBundleMalformed, EntryBundleMismatch,
// RootMismatch, TileInconsistent), *CallError.
func (t *Tree) Entries(ctx context.Context, from, to uint64, jobs int) func(yield func(Entry, error) bool) {
	return func(yield func(Entry, error) bool) {
		if from > to || to > t.cp.Size {
			yield(Entry{}, fmt.Errorf("rekor v2 entries: range [%d, %d) not within the tree (size %d)", from, to, t.cp.Size))
			return
		}
		if from == to {
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rng, err := t.rangeAt(ctx, from)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		type result struct {
			entries []Entry
			err     error
		}
		first, last := from/tileWidth, (to-1)/tileWidth
		// The consumer holds one future and the channel the others: jobs
		// bundles are read at once.
		futures := make(chan chan result, min(max(jobs, 1), maxJobs)-1)
		go func() {
			defer close(futures)
			for n := first; n <= last; n++ {
				ch := make(chan result, 1)
				select {
				case futures <- ch:
				case <-ctx.Done():
					return
				}
				go func() {
					es, err := t.entryBundle(ctx, n)
					ch <- result{es, err}
				}()
			}
		}()
		for ch := range futures {
			res := <-ch
			if res.err != nil {
				yield(Entry{}, res.err)
				return
			}
			for _, e := range res.entries {
				if e.Index < from || e.Index >= to {
					continue
				}
				rng.append(e.LeafHash)
				if !yield(e, nil) {
					return
				}
			}
		}
		if err := t.checkRange(ctx, rng, to); err != nil {
			yield(Entry{}, err)
		}
	}
}

// entryBundle reads entry bundle n (its width set by the checkpoint) and
// checks every entry against the authenticated leaf hashes.
func (t *Tree) entryBundle(ctx context.Context, n uint64) ([]Entry, error) {
	start := n * tileWidth
	w := min(uint64(tileWidth), t.cp.Size-start)
	tile := tlog.Tile{H: TileHeight, L: -1, N: int64(n), W: int(w)}
	path := tilePath(tile)
	data, err := t.r.get(ctx, path, t.r.maxEntryBundle)
	want := w
	if err != nil && w < tileWidth && isNotFound(err) {
		// The partial bundle is gone: the tile is full now, and its first
		// w entries are the ones this tree has.
		full := tile
		full.W = tileWidth
		path, want = tilePath(full), tileWidth
		data, err = t.r.get(ctx, path, t.r.maxEntryBundle)
	}
	if err != nil {
		return nil, err
	}
	raw, err := ParseEntryBundle(data, tileWidth)
	if err != nil {
		return nil, &TileError{Kind: EntryBundleMalformed, Paths: []string{path}, Checkpoint: t.cp, Detail: err.Error()}
	}
	if uint64(len(raw)) != want {
		return nil, &TileError{Kind: TileWrongSize, Paths: []string{path}, Checkpoint: t.cp,
			Detail: fmt.Sprintf("%d entries, the checkpoint's tree has %d there", len(raw), want)}
	}
	raw = raw[:w]
	idx := make([]int64, w)
	for i := range idx {
		idx[i] = tlog.StoredHashIndex(0, int64(start)+int64(i))
	}
	leaves, err := t.readHashes(ctx, idx)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, w)
	for i, body := range raw {
		lh := tlog.RecordHash(body)
		if lh != leaves[i] {
			return nil, &TileError{Kind: EntryBundleMismatch, Paths: []string{path}, Checkpoint: t.cp, Index: start + uint64(i),
				Detail: fmt.Sprintf("entry %d hashes to %x, the hash tiles hold %x", start+uint64(i), lh[:], leaves[i][:])}
		}
		out[i] = Entry{Index: start + uint64(i), Body: body, LeafHash: [32]byte(lh)}
	}
	return out, nil
}

// subtrees returns the stored hash indexes of the perfect subtrees that
// make up [0, n), left to right (the compact range of n).
func subtrees(n uint64) []int64 {
	var out []int64
	var start uint64
	for level := 63; level >= 0; level-- {
		if n&(1<<level) != 0 {
			out = append(out, tlog.StoredHashIndex(level, int64(start>>level)))
			start += 1 << level
		}
	}
	return out
}

// compactRange is the right edge of a tree being rebuilt leaf by leaf.
type compactRange struct {
	size  uint64
	nodes []tlog.Hash // perfect subtrees of [0, size), left to right
}

func (c *compactRange) append(leaf [32]byte) {
	h := tlog.Hash(leaf)
	// Merge with the subtrees of equal size: as many as trailing one bits.
	for s := c.size; s&1 == 1; s >>= 1 {
		h = tlog.NodeHash(c.nodes[len(c.nodes)-1], h)
		c.nodes = c.nodes[:len(c.nodes)-1]
	}
	c.nodes = append(c.nodes, h)
	c.size++
}

func (c *compactRange) root() tlog.Hash {
	if len(c.nodes) == 0 {
		return tlog.Hash{}
	}
	h := c.nodes[len(c.nodes)-1]
	for i := len(c.nodes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(c.nodes[i], h)
	}
	return h
}

// rangeAt reads the compact range at n from authenticated tiles.
func (t *Tree) rangeAt(ctx context.Context, n uint64) (*compactRange, error) {
	if n == 0 {
		return &compactRange{}, nil
	}
	hs, err := t.readHashes(ctx, subtrees(n))
	if err != nil {
		return nil, err
	}
	return &compactRange{size: n, nodes: hs}, nil
}

// checkRange compares the rebuilt range with the checkpoint's root (to ==
// size) or with the authenticated subtree hashes at to.
func (t *Tree) checkRange(ctx context.Context, c *compactRange, to uint64) error {
	if to == t.cp.Size {
		if r := c.root(); r != tlog.Hash(t.cp.Root) {
			return &TileError{Kind: RootMismatch, Checkpoint: t.cp, Detail: fmt.Sprintf("entries hash to %x", r[:])}
		}
		return nil
	}
	want, err := t.rangeAt(ctx, to)
	if err != nil {
		return err
	}
	if len(want.nodes) != len(c.nodes) {
		return &TileError{Kind: RootMismatch, Checkpoint: t.cp, Detail: "compact range of another shape"}
	}
	for i := range want.nodes {
		if want.nodes[i] != c.nodes[i] {
			return &TileError{Kind: RootMismatch, Checkpoint: t.cp, Detail: fmt.Sprintf("entries before %d do not hash to the tree's subtree %d", to, i)}
		}
	}
	return nil
}
