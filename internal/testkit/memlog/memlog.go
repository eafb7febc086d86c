// Package memlog is an in-memory Rekor v1 transparency log for tests of the
// engine and of the Rekor v1 kind: a real RFC 6962 tree, real ECDSA P-256
// checkpoints and signed entry timestamps, minisign rekord bodies, and
// knobs that inject faults (a log that is down, rewrites its checkpoint,
// its entries or its consistency proofs, hides leaf lookups). It implements
// rekorv1.API without HTTP; internal/testkit/fakelog is the same over HTTP,
// with lie modes.
package memlog

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/jedisct1/go-minisign"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/verify"
)

// TreeIDPrefix is the 16 hex digits every UUID of the log starts with.
const TreeIDPrefix = "24296fb24b8ad77a"

// Log is an in-memory Rekor v1 log. Its exported knobs may be set between
// calls; the methods are safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	tree   *testonly.Tree
	bodies [][]byte
	times  []int64
	byLeaf map[string]int64
	byHash map[string][]int64
	calls  map[string]int

	// Signer signs checkpoints and SETs; Key is its pinned LogKey.
	Signer *ecdsa.PrivateKey
	Key    *rekorv1.LogKey
	// Origin is the checkpoint origin ("rekor.test - 1234").
	Origin string
	// Witness, when set, cosigns every checkpoint (its line comes first).
	Witness *ecdsa.PrivateKey

	// Fault knobs.
	Down            error                                 // every call fails with it
	CheckpointHook  func(text []byte) []byte              // rewrites Checkpoint()
	EntryHook       func(e *rekorv1.Entry) *rekorv1.Entry // rewrites entries returned
	ConsistencyHook func(p [][]byte) [][]byte             // rewrites consistency proofs
	HideLeafLookups bool                                  // EntryByUUID(64-hex) → not found: forces the index search
}

// New returns an empty log with a fresh ECDSA key.
func New(t testing.TB) *Log {
	t.Helper()
	sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewWithKey(t, sk)
}

// NewWithKey returns an empty log signing with sk (a fork of another log
// shares its key).
func NewWithKey(t testing.TB, sk *ecdsa.PrivateKey) *Log {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&sk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := rekorv1.ParseLogKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return &Log{
		tree: testonly.New(rfc6962.DefaultHasher), Signer: sk, Key: lk,
		Origin: "rekor.test - 1234", byLeaf: map[string]int64{}, byHash: map[string][]int64{},
		calls: map[string]int{},
	}
}

// Size is the tree size.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(l.tree.Size())
}

// Body returns leaf i's body.
func (l *Log) Body(i int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bodies[i]
}

// RootAt is the tree's root hash at size.
func (l *Log) RootAt(size int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.tree.HashAt(uint64(size)))
}

// Add logs a body and returns its entry with a proof at the new size.
func (l *Log) Add(body []byte) *rekorv1.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := int64(l.tree.Size())
	l.tree.AppendData(body)
	l.bodies = append(l.bodies, body)
	l.times = append(l.times, 1700000000+i)
	l.byLeaf[rekorv1.LeafHash(body)] = i
	if b, err := rekorv1.DecodeBody(body); err == nil {
		l.byHash[b.DataSHA256] = append(l.byHash[b.DataSHA256], i)
	}
	return l.entryLocked(i, int64(l.tree.Size()))
}

// AddSigned logs the canonical body of a `.t` and returns the entry.
func (l *Log) AddSigned(t testing.TB, tfile []byte, key verify.PublicKey, msg string) *rekorv1.Entry {
	t.Helper()
	s, err := verify.ParseSignature(tfile)
	if err != nil {
		t.Fatal(err)
	}
	return l.Add(rekorv1.CanonicalBody(s, key, []byte(msg)))
}

func (l *Log) signNote(body string, sk *ecdsa.PrivateKey, name string) string {
	d := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, sk, d[:])
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&sk.PublicKey)
	h := sha256.Sum256(der)
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(append(h[:4:4], sig...)) + "\n"
}

func (l *Log) checkpointLocked(size int64) []byte {
	root := l.tree.HashAt(uint64(size))
	body := fmt.Sprintf("%s\n%d\n%s\n", l.Origin, size, base64.StdEncoding.EncodeToString(root))
	sigs := l.signNote(body, l.Signer, "rekor.test")
	if l.Witness != nil {
		sigs = l.signNote(body, l.Witness, "witness.example") + sigs
	}
	return []byte(body + "\n" + sigs)
}

// CheckpointAt is the log's signed checkpoint at size.
func (l *Log) CheckpointAt(size int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkpointLocked(size)
}

func (l *Log) entryLocked(i, size int64) *rekorv1.Entry {
	p, err := l.tree.InclusionProof(uint64(i), uint64(size))
	if err != nil {
		panic(err)
	}
	e := &rekorv1.Entry{
		UUID:           TreeIDPrefix + rekorv1.LeafHash(l.bodies[i]),
		LogIndex:       i,
		LogID:          l.Key.ID(),
		IntegratedTime: l.times[i],
		Body:           l.bodies[i],
		Proof: &rekorv1.InclusionProof{
			LogIndex: i, TreeSize: size, RootHash: bytes.Clone(l.tree.HashAt(uint64(size))),
			Hashes: cloneHashes(p), Checkpoint: l.checkpointLocked(size),
		},
	}
	e.SET = l.Sign(SETPayload(e))
	return e
}

// EntryAt is entry i with its proof at size.
func (l *Log) EntryAt(i, size int64) *rekorv1.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entryLocked(i, size)
}

// SETPayload is what Rekor signs as an entry's signed entry timestamp (the
// JCS form of body, integratedTime, logID, logIndex).
func SETPayload(e *rekorv1.Entry) []byte {
	b, _ := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{base64.StdEncoding.EncodeToString(e.Body), e.IntegratedTime, e.LogID, e.LogIndex})
	return b
}

// Sign signs msg with the log key (ECDSA over SHA-256), as Rekor signs SETs.
func (l *Log) Sign(msg []byte) []byte {
	d := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, l.Signer, d[:])
	if err != nil {
		panic(err)
	}
	return sig
}

// Count is how many calls of op ("uuid", "index", "search", "checkpoint",
// "consistency") the log answered.
func (l *Log) Count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[op]
}

// Calls is a copy of the call counts.
func (l *Log) Calls() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]int{}
	for k, v := range l.calls {
		m[k] = v
	}
	return m
}

func (l *Log) enter(op string) error {
	l.calls[op]++
	return l.Down
}

func (l *Log) hook(e *rekorv1.Entry) *rekorv1.Entry {
	if l.EntryHook != nil {
		return l.EntryHook(e)
	}
	return e
}

// EntryByUUID implements rekorv1.API.
func (l *Log) EntryByUUID(ctx context.Context, uuid string) (*rekorv1.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enter("uuid"); err != nil {
		return nil, err
	}
	if len(uuid) < 64 || (l.HideLeafLookups && len(uuid) == 64) {
		return nil, fmt.Errorf("entry %s: %w", uuid, verify.ErrNotFound)
	}
	i, ok := l.byLeaf[uuid[len(uuid)-64:]]
	if !ok {
		return nil, fmt.Errorf("entry %s: %w", uuid, verify.ErrNotFound)
	}
	return l.hook(l.entryLocked(i, int64(l.tree.Size()))), nil
}

// EntriesByIndex returns entries by index with proofs at the current size.
func (l *Log) EntriesByIndex(ctx context.Context, idx []int64) (map[int64]*rekorv1.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enter("index"); err != nil {
		return nil, err
	}
	m := map[int64]*rekorv1.Entry{}
	for _, i := range idx {
		if i >= 0 && i < int64(l.tree.Size()) {
			m[i] = l.hook(l.entryLocked(i, int64(l.tree.Size())))
		}
	}
	return m, nil
}

// SearchByHash implements rekorv1.API.
func (l *Log) SearchByHash(ctx context.Context, h string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enter("search"); err != nil {
		return nil, err
	}
	var out []string
	for _, i := range l.byHash[h] {
		out = append(out, TreeIDPrefix+rekorv1.LeafHash(l.bodies[i]))
	}
	return out, nil
}

// Checkpoint implements verify.LogClient.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	l.mu.Lock()
	if err := l.enter("checkpoint"); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	c := l.checkpointLocked(int64(l.tree.Size()))
	hook := l.CheckpointHook
	l.mu.Unlock()
	if hook != nil {
		c = hook(c) // outside the lock: hooks call CheckpointAt
	}
	return c, nil
}

// ConsistencyProof implements verify.LogClient.
func (l *Log) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enter("consistency"); err != nil {
		return nil, err
	}
	p, err := l.tree.ConsistencyProof(uint64(first), uint64(last))
	if err != nil {
		return nil, err
	}
	p = cloneHashes(p) // testonly's slices are the tree's own
	if l.ConsistencyHook != nil {
		p = l.ConsistencyHook(p)
	}
	return p, nil
}

func cloneHashes(hs [][]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = bytes.Clone(h)
	}
	return out
}

// Fork returns a log with the same key and origin whose first n entries
// are l's.
func (l *Log) Fork(t testing.TB, n int) *Log {
	f := NewWithKey(t, l.Signer)
	f.Origin = l.Origin
	for i := 0; i < n; i++ {
		f.Add(l.Body(int64(i)))
	}
	return f
}

// Key returns a minisign key pair derived from seed (deterministic).
func Key(t testing.TB, seed byte) (*minisign.PrivateKey, verify.PublicKey) {
	t.Helper()
	var s [32]byte
	for i := range s {
		s[i] = seed
	}
	edsk := ed25519.NewKeyFromSeed(s[:])
	sk := &minisign.PrivateKey{
		SignatureAlgorithm: [2]byte{'E', 'd'},
		ChecksumAlgorithm:  [2]byte{'B', '2'},
	}
	copy(sk.SecretKey[:], edsk)
	sum := sha256.Sum256(append([]byte("keyid"), seed))
	copy(sk.KeyId[:], sum[:8])
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return sk, pk
}

// HexOf is the hex sha256 of s.
func HexOf(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// Package is one signed package of a test repository.
type Package struct {
	Filename string
	Content  []byte
	SHA      string
	T        []byte
	Entry    *rekorv1.Entry
}

// NewPackage signs package number i with sk.
func NewPackage(t testing.TB, sk *minisign.PrivateKey, i int) *Package {
	t.Helper()
	p := &Package{Filename: fmt.Sprintf("pkg%03d-1.0-1-x86_64.pkg.tar.zst", i)}
	p.Content = []byte(fmt.Sprintf("package %d contents\n", i))
	p.SHA = HexOf(string(p.Content))
	var err error
	if p.T, err = verify.SignPackage(sk, p.SHA, p.Filename); err != nil {
		t.Fatal(err)
	}
	return p
}

// Artifact is the package as the engine sees it; open: with its file.
func (p *Package) Artifact(open bool) verify.Artifact {
	a := verify.Artifact{Filename: p.Filename, SHA256: p.SHA, Name: strings.SplitN(p.Filename, "-", 2)[0], Version: "1.0-1"}
	if open {
		c := p.Content
		a.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(c))), nil }
	}
	return a
}
