package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/jedisct1/go-minisign"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// testKey returns a minisign key pair derived from seed (deterministic).
func testKey(t testing.TB, seed byte) (*minisign.PrivateKey, PublicKey) {
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
	pk, err := ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return sk, pk
}

func hexOf(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// testLog is an in-memory transparency log: a real RFC 6962 tree, real
// ECDSA P-256 checkpoints and SETs. Knobs inject faults.
type testLog struct {
	mu      sync.Mutex
	tree    *testonly.Tree
	bodies  [][]byte
	times   []int64
	signer  *ecdsa.PrivateKey
	key     *LogKey
	origin  string
	byLeaf  map[string]int64
	byHash  map[string][]int64
	witness *ecdsa.PrivateKey // when set, checkpoints carry a second, witness signature line first

	// fault knobs
	down            error                       // every call fails with it
	checkpointHook  func(text []byte) []byte    // rewrites Checkpoint()
	entryHook       func(e *LogEntry) *LogEntry // rewrites entries returned
	consistencyHook func(p [][]byte) [][]byte   // rewrites consistency proofs
	hideLeafLookups bool                        // EntryByUUID(64-hex) → not found: forces the index search
	calls           map[string]int
}

func newTestLog(t testing.TB) *testLog {
	t.Helper()
	sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newTestLogWithKey(t, sk)
}

func newTestLogWithKey(t testing.TB, sk *ecdsa.PrivateKey) *testLog {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&sk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := ParseLogKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{
		tree: testonly.New(rfc6962.DefaultHasher), signer: sk, key: lk,
		origin: "rekor.test - 1234", byLeaf: map[string]int64{}, byHash: map[string][]int64{},
		calls: map[string]int{},
	}
}

// add logs a body and returns its entry with a proof at the new size.
func (l *testLog) add(body []byte) *LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := int64(l.tree.Size())
	l.tree.AppendData(body)
	l.bodies = append(l.bodies, body)
	l.times = append(l.times, 1700000000+i)
	l.byLeaf[LeafHash(body)] = i
	if b, err := DecodeBody(body); err == nil {
		l.byHash[b.DataSHA256] = append(l.byHash[b.DataSHA256], i)
	}
	return l.entryLocked(i, int64(l.tree.Size()))
}

// addSigned logs the canonical body of a `.t` and returns the entry.
func (l *testLog) addSigned(t testing.TB, tfile []byte, key PublicKey, msg string) *LogEntry {
	t.Helper()
	s, err := ParseSignature(tfile)
	if err != nil {
		t.Fatal(err)
	}
	return l.add(CanonicalBody(s, key, []byte(msg)))
}

func (l *testLog) signNote(body string, sk *ecdsa.PrivateKey, name string) string {
	d := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, sk, d[:])
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&sk.PublicKey)
	h := sha256.Sum256(der)
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(append(h[:4:4], sig...)) + "\n"
}

func (l *testLog) checkpointLocked(size int64) []byte {
	root := l.tree.HashAt(uint64(size))
	body := fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(root))
	sigs := l.signNote(body, l.signer, "rekor.test")
	if l.witness != nil {
		sigs = l.signNote(body, l.witness, "witness.example") + sigs
	}
	return []byte(body + "\n" + sigs)
}

func (l *testLog) checkpointAt(size int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkpointLocked(size)
}

func (l *testLog) entryLocked(i, size int64) *LogEntry {
	p, err := l.tree.InclusionProof(uint64(i), uint64(size))
	if err != nil {
		panic(err)
	}
	hs := make([]string, len(p))
	for j, h := range p {
		hs[j] = hex.EncodeToString(h)
	}
	e := &LogEntry{
		UUID:           "24296fb24b8ad77a" + LeafHash(l.bodies[i]),
		LogIndex:       i,
		LogID:          l.key.ID(),
		IntegratedTime: l.times[i],
		Body:           l.bodies[i],
		Verification: &Verification{InclusionProof: &InclusionProof{
			LogIndex: i, TreeSize: size, RootHash: hex.EncodeToString(l.tree.HashAt(uint64(size))),
			Hashes: hs, Checkpoint: string(l.checkpointLocked(size)),
		}},
	}
	e.Verification.SignedEntryTimestamp = l.sign(setPayload(e))
	return e
}

func (l *testLog) sign(msg []byte) []byte {
	d := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, l.signer, d[:])
	if err != nil {
		panic(err)
	}
	return sig
}

func (l *testLog) entryAt(i, size int64) *LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entryLocked(i, size)
}

func (l *testLog) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[op]
}

func (l *testLog) enter(op string) error {
	l.calls[op]++
	return l.down
}

func (l *testLog) hook(e *LogEntry) *LogEntry {
	if l.entryHook != nil {
		return l.entryHook(e)
	}
	return e
}

func (l *testLog) EntryByUUID(ctx context.Context, uuid string) (*LogEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enter("uuid"); err != nil {
		return nil, err
	}
	if len(uuid) < 64 || (l.hideLeafLookups && len(uuid) == 64) {
		return nil, fmt.Errorf("entry %s: %w", uuid, ErrNotFound)
	}
	i, ok := l.byLeaf[uuid[len(uuid)-64:]]
	if !ok {
		return nil, fmt.Errorf("entry %s: %w", uuid, ErrNotFound)
	}
	return l.hook(l.entryLocked(i, int64(l.tree.Size()))), nil
}

func (l *testLog) EntriesByIndex(ctx context.Context, idx []int64) (map[int64]*LogEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enter("index"); err != nil {
		return nil, err
	}
	m := map[int64]*LogEntry{}
	for _, i := range idx {
		if i >= 0 && i < int64(l.tree.Size()) {
			m[i] = l.hook(l.entryLocked(i, int64(l.tree.Size())))
		}
	}
	return m, nil
}

func (l *testLog) SearchByHash(ctx context.Context, h string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enter("search"); err != nil {
		return nil, err
	}
	var out []string
	for _, i := range l.byHash[h] {
		out = append(out, "24296fb24b8ad77a"+LeafHash(l.bodies[i]))
	}
	return out, nil
}

func (l *testLog) Checkpoint(ctx context.Context) ([]byte, error) {
	l.mu.Lock()
	if err := l.enter("checkpoint"); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	c := l.checkpointLocked(int64(l.tree.Size()))
	hook := l.checkpointHook
	l.mu.Unlock()
	if hook != nil {
		c = hook(c) // outside the lock: hooks call checkpointAt
	}
	return c, nil
}

func (l *testLog) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enter("consistency"); err != nil {
		return nil, err
	}
	p, err := l.tree.ConsistencyProof(uint64(first), uint64(last))
	if err != nil {
		return nil, err
	}
	if l.consistencyHook != nil {
		p = l.consistencyHook(p)
	}
	return p, nil
}

// memSource is an in-memory SignatureSource.
type memSource struct {
	mu      sync.Mutex
	sigs    map[string][]byte
	bundles map[string][]byte
	err     error
}

func newMemSource() *memSource {
	return &memSource{sigs: map[string][]byte{}, bundles: map[string][]byte{}}
}

func (s *memSource) Signature(ctx context.Context, a Artifact) ([]byte, error) {
	return s.get(s.sigs, a.Filename+SignatureSuffix)
}

func (s *memSource) Bundle(ctx context.Context, a Artifact) ([]byte, error) {
	return s.get(s.bundles, a.Filename+BundleSuffix)
}

func (s *memSource) get(m map[string][]byte, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	b, ok := m[strings.TrimSuffix(strings.TrimSuffix(name, BundleSuffix), SignatureSuffix)]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return b, nil
}

// memStore is an in-memory CheckpointStore.
type memStore struct {
	mu     sync.Mutex
	cp     []byte
	stores int
}

func (s *memStore) Load(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cp, nil
}

func (s *memStore) Store(ctx context.Context, cp []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cp = append([]byte(nil), cp...)
	s.stores++
	return nil
}

// pkg is one signed package of a test repository.
type pkg struct {
	filename string
	content  []byte
	sha      string
	t        []byte
	entry    *LogEntry
}

func newPkg(t testing.TB, sk *minisign.PrivateKey, i int) *pkg {
	t.Helper()
	p := &pkg{filename: fmt.Sprintf("pkg%03d-1.0-1-x86_64.pkg.tar.zst", i)}
	p.content = []byte(fmt.Sprintf("package %d contents\n", i))
	p.sha = hexOf(string(p.content))
	var err error
	if p.t, err = SignPackage(sk, p.sha, p.filename); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pkg) artifact(open bool) Artifact {
	a := Artifact{Filename: p.filename, SHA256: p.sha, Name: strings.SplitN(p.filename, "-", 2)[0], Version: "1.0-1"}
	if open {
		c := p.content
		a.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(c))), nil }
	}
	return a
}
