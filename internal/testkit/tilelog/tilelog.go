// Package tilelog is a tile-serving transparency log for tests only: an
// httptest server speaking the C2SP tlog-tiles read API (GET /checkpoint,
// /tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>]) of a Rekor v2, backed
// by an in-memory RFC 6962 tree, that tells the truth until told to lie.
//
// Honest answers are real: the tree and its tiles come from
// golang.org/x/mod/sumdb/tlog (the Go checksum database's implementation),
// whose roots are RFC 6962 roots (tested against transparency-dev/merkle),
// and checkpoints are C2SP signed notes with an Ed25519 key, as Rekor v2
// signs them. Lies (SetLie) are what a compromised log or tile server could
// serve: a fork and a rollback come with correctly signed checkpoints and
// tiles that are consistent with them; the tile lies alter bytes.
//
// Like the real server, the entries are appended (Append) and become
// visible in tiles at once, while the checkpoint moves only on Publish.
// POST /api/v2/log/entries is delegated to Log.Write when set.
package tilelog

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Lie is how the log misbehaves.
type Lie int

// The lies. Each is refused by a correct client with its own error.
const (
	Honest Lie = iota
	// LieFork serves another tree, signed by the log key: the honest tree's
	// first Arg entries, then different ones, up to the honest published
	// size (at least Arg+1 entries): a split view.
	LieFork
	// LieRollback serves the signed checkpoint of the earlier size Arg.
	LieRollback
	// LieBadTile alters one byte of every level-0 hash tile served: tiles
	// that do not hash to the checkpoint's root.
	LieBadTile
	// LiePartialBeyond answers partial tiles and entry bundles with the
	// content the tree has there now, beyond the published checkpoint
	// (append without publishing to make a difference).
	LiePartialBeyond
	// LieBadEntryBundle alters one byte of the last entry of every entry
	// bundle served (the length prefixes stay valid): entries that do not
	// match the hash tiles.
	LieBadEntryBundle
	// LieOtherKey serves checkpoints signed by another key under the same
	// origin.
	LieOtherKey
)

func (l Lie) String() string {
	return [...]string{"honest", "fork", "rollback", "bad-tile", "partial-beyond", "bad-entry-bundle", "other-key"}[l]
}

// Log is a fake tile log. Its exported fields are fixed at New.
type Log struct {
	// URL is the server's base URL (http://127.0.0.1:port); tiles are
	// served under it (the read URL) and writes go to it too.
	URL string
	// Origin is the checkpoint origin (and the note key name).
	Origin string
	// VKey is the log's signed-note verifier key.
	VKey string
	// PublicKey is the log's Ed25519 key, PublicKeyPEM its PEM (PKIX).
	PublicKey    ed25519.PublicKey
	PublicKeyPEM []byte
	// Write, when set, serves POST /api/v2/log/entries.
	Write http.HandlerFunc

	srv         *httptest.Server
	signer      note.Signer
	otherSigner note.Signer

	mu        sync.Mutex
	honest    *tree
	published uint64
	fork      *tree
	lie       Lie
	arg       uint64
	requests  map[string]int
	gc        bool
}

// tree is an append-only RFC 6962 tree with its entries and the stored
// hashes tlog keeps (every interior node, in tlog's storage order).
type tree struct {
	entries [][]byte
	hashes  []tlog.Hash
}

func (t *tree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("tilelog: hash %d not stored (have %d)", x, len(t.hashes))
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

func (t *tree) append(entry []byte) {
	h, err := tlog.StoredHashes(int64(len(t.entries)), entry, t)
	if err != nil {
		panic(err)
	}
	t.hashes = append(t.hashes, h...)
	t.entries = append(t.entries, append([]byte(nil), entry...))
}

func (t *tree) root(size uint64) tlog.Hash {
	h, err := tlog.TreeHash(int64(size), t)
	if err != nil {
		panic(err)
	}
	return h
}

// New starts a fake log with this origin for the duration of the test.
func New(t testing.TB, origin string) *Log {
	t.Helper()
	l, err := newLog(origin)
	if err != nil {
		t.Fatal(err)
	}
	l.srv = httptest.NewServer(http.HandlerFunc(l.serve))
	l.URL = l.srv.URL
	t.Cleanup(l.srv.Close)
	return l
}

func newLog(origin string) (*Log, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	oskey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, err
	}
	other, err := note.NewSigner(oskey)
	if err != nil {
		return nil, err
	}
	parts := strings.SplitN(vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	pub := ed25519.PublicKey(raw[1:])
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &Log{
		Origin: origin, VKey: vkey, PublicKey: pub,
		PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		signer:       signer, otherSigner: other,
		honest: &tree{}, requests: map[string]int{},
	}, nil
}

// Append adds entries to the honest tree (visible in tiles at once, in the
// checkpoint after Publish) and returns the index of the first.
func (l *Log) Append(entries ...[]byte) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := uint64(len(l.honest.entries))
	for _, e := range entries {
		l.honest.append(e)
	}
	return first
}

// Publish makes the checkpoint cover every appended entry and returns it.
func (l *Log) Publish() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.published = uint64(len(l.honest.entries))
	return l.sign(l.signer, l.honest, l.published)
}

// Size is the published size; Appended the number of entries appended.
func (l *Log) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.published
}

// Appended is the number of entries appended (published or not).
func (l *Log) Appended() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.honest.entries))
}

// Checkpoint returns the honest signed checkpoint at size (any size up to
// the number of entries appended).
func (l *Log) Checkpoint(size uint64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sign(l.signer, l.honest, size)
}

// Root is the honest tree's RFC 6962 root at size.
func (l *Log) Root(size uint64) [32]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.honest.root(size)
}

// InclusionProof is the honest RFC 6962 inclusion proof of index at size.
func (l *Log) InclusionProof(index, size uint64) [][32]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := tlog.ProveRecord(int64(size), int64(index), l.honest)
	if err != nil {
		panic(err)
	}
	out := make([][32]byte, len(p))
	for i := range p {
		out[i] = p[i]
	}
	return out
}

func (l *Log) sign(s note.Signer, t *tree, size uint64) []byte {
	if size > uint64(len(t.entries)) {
		panic(fmt.Sprintf("tilelog: checkpoint at %d of a tree of %d", size, len(t.entries)))
	}
	r := t.root(size)
	text := flog.Checkpoint{Origin: l.Origin, Size: size, Hash: r[:]}.Marshal()
	b, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		panic(err)
	}
	return b
}

// SetLie makes the log lie from now on (Honest: stop lying). arg is the
// fork point (LieFork) or the size rolled back to (LieRollback).
func (l *Log) SetLie(lie Lie, arg uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lie, l.arg = lie, arg
	l.fork = nil
	if lie == LieFork {
		f := &tree{}
		size := max(l.published, arg+1)
		for i := uint64(0); i < size; i++ {
			if i < arg && i < uint64(len(l.honest.entries)) {
				f.append(l.honest.entries[i])
			} else {
				f.append([]byte(fmt.Sprintf(`{"forked":%d}`, i)))
			}
		}
		l.fork = f
	}
}

// CollectPartials makes the log answer 404 for a partial tile or entry
// bundle once the full one exists, as a real tile server does after its
// garbage collection: a client must then read the full tile.
func (l *Log) CollectPartials(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gc = on
}

// Requests counts the GET requests whose path starts with prefix
// ("/tile/entries/", "/tile/0/", "/checkpoint").
func (l *Log) Requests(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for p, c := range l.requests {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// served returns the tree served, the size of its checkpoint, and the
// signer of its checkpoint. The caller holds l.mu.
func (l *Log) served() (*tree, uint64, note.Signer) {
	switch l.lie {
	case LieFork:
		return l.fork, uint64(len(l.fork.entries)), l.signer
	case LieRollback:
		return l.honest, min(l.arg, l.published), l.signer
	case LieOtherKey:
		return l.honest, l.published, l.otherSigner
	}
	return l.honest, l.published, l.signer
}

func (l *Log) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/api/v2/log/entries" && l.Write != nil {
		l.Write(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests[r.URL.Path]++
	t, size, signer := l.served()
	if r.URL.Path == "/checkpoint" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(l.sign(signer, t, size))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/tile/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	isEntries := strings.HasPrefix(rest, "entries/")
	sumdbPath := "tile/8/" + rest
	if isEntries {
		sumdbPath = "tile/8/data/" + strings.TrimPrefix(rest, "entries/")
	}
	tile, err := tlog.ParseTilePath(sumdbPath)
	if err != nil || tile.H != 8 {
		http.NotFound(w, r)
		return
	}
	var data []byte
	if isEntries {
		data, ok = l.entryBundle(t, tile)
	} else {
		data, ok = l.hashTile(t, tile)
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

// available is the number of hashes (level L) or entries (L = -1) the tree
// has now; a tile exists when its W items are all there (a real tile
// server keeps older partial tiles for a while, and full tiles forever).
func available(t *tree, level int) int64 {
	n := int64(len(t.entries))
	if level > 0 {
		n >>= uint(8 * level)
	}
	return n
}

func (l *Log) hashTile(t *tree, tile tlog.Tile) ([]byte, bool) {
	have := available(t, tile.L)
	if tile.N*256+int64(tile.W) > have || (l.gc && tile.W < 256 && tile.N*256+256 <= have) {
		return nil, false
	}
	if l.lie == LiePartialBeyond && tile.W < 256 {
		tile.W = int(min(256, have-tile.N*256))
	}
	data, err := tlog.ReadTileData(tile, t)
	if err != nil {
		panic(err)
	}
	if l.lie == LieBadTile && tile.L == 0 {
		data[0] ^= 1
	}
	return data, true
}

func (l *Log) entryBundle(t *tree, tile tlog.Tile) ([]byte, bool) {
	have := available(t, -1)
	if tile.N*256+int64(tile.W) > have || (l.gc && tile.W < 256 && tile.N*256+256 <= have) {
		return nil, false
	}
	if l.lie == LiePartialBeyond && tile.W < 256 {
		tile.W = int(min(256, have-tile.N*256))
	}
	var out []byte
	for i := tile.N * 256; i < tile.N*256+int64(tile.W); i++ {
		e := t.entries[i]
		out = append(out, byte(len(e)>>8), byte(len(e)))
		out = append(out, e...)
	}
	if l.lie == LieBadEntryBundle && len(t.entries[tile.N*256+int64(tile.W)-1]) > 0 {
		out[len(out)-1] ^= 1
	}
	return out, true
}
