package signer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/verify"
)

// memLog is an in-memory Rekor for unit tests: a real RFC 6962 tree, real
// ECDSA P-256 checkpoints and SETs (entries verify with rekorv1.VerifyEntry),
// 409 semantics by leaf hash, and fault knobs. It logs the canonical body of
// the uploaded .t exactly as Rekor would.
type memLog struct {
	mu     sync.Mutex
	tree   *testonly.Tree
	bodies [][]byte
	byLeaf map[string]int64
	signer *ecdsa.PrivateKey
	key    *rekorv1.LogKey
	pem    []byte

	uploads, conflicts, lookups int
	// retrieves counts EntriesByIndex calls, checkpoints Checkpoint calls.
	retrieves, checkpoints, proofs int
	// failRetrieve makes EntriesByIndex, Checkpoint and ConsistencyProof
	// fail (the log goes down before the settle).
	failRetrieve bool
	// lieRetrieve rewrites entries returned by EntriesByIndex only.
	lieRetrieve func(*rekorv1.Entry)
	// beforeRetrieve runs at the start of each EntriesByIndex call
	// (another writer logging during the settle).
	beforeRetrieve func()
	// failAfter > 0: uploads after that many new entries fail (log down).
	failAfter int
	// failLookups makes EntryByUUID fail (log unreachable).
	failLookups bool
	// lie rewrites returned entries.
	lie func(*rekorv1.Entry)
	// afterAdd runs after a new entry is in the tree, before Upload returns
	// (a crash point: the log has it, the signer has not heard back).
	afterAdd func(n int) error
}

func newMemLog(t testing.TB) *memLog {
	t.Helper()
	sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&sk.PublicKey)
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	lk, err := rekorv1.ParseLogKey(p)
	if err != nil {
		t.Fatal(err)
	}
	return &memLog{tree: testonly.New(rfc6962.DefaultHasher), byLeaf: map[string]int64{}, signer: sk, key: lk, pem: p}
}

var errLogDown = errors.New("connection refused (test log down)")

func (l *memLog) Upload(ctx context.Context, t, pubKeyFile, message []byte) (*rekorv1.Entry, error) {
	s, err := verify.ParseSignature(t)
	if err != nil {
		return nil, err
	}
	pk, err := verify.ParsePublicKey(string(pubKeyFile))
	if err != nil {
		return nil, err
	}
	// Rekor verifies the signature over the message before logging.
	if _, err := s.Verify([]verify.PublicKey{pk}, message, s.TrustedComment()); err != nil {
		return nil, fmt.Errorf("400: %w", err)
	}
	body := rekorv1.CanonicalBody(s, pk, message)
	leaf := rekorv1.LeafHash(body)
	l.mu.Lock()
	if i, ok := l.byLeaf[leaf]; ok {
		l.conflicts++
		e := l.entryLocked(i)
		l.mu.Unlock()
		return e, nil
	}
	if l.failAfter > 0 && l.uploads >= l.failAfter {
		l.mu.Unlock()
		return nil, errLogDown
	}
	l.uploads++
	i := int64(l.tree.Size())
	l.tree.AppendData(body)
	l.bodies = append(l.bodies, body)
	l.byLeaf[leaf] = i
	e := l.entryLocked(i)
	n := l.uploads
	hook := l.afterAdd
	l.mu.Unlock()
	if hook != nil {
		if err := hook(n); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (l *memLog) EntryByUUID(ctx context.Context, uuid string) (*rekorv1.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lookups++
	if l.failLookups {
		return nil, errLogDown
	}
	i, ok := l.byLeaf[leafOfUUID(uuid)]
	if !ok {
		return nil, fmt.Errorf("entry %s: %w", uuid, verify.ErrNotFound)
	}
	return l.entryLocked(i), nil
}

func (l *memLog) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.tree.Size())
}

func (l *memLog) entryLocked(i int64) *rekorv1.Entry {
	size := l.tree.Size()
	p, err := l.tree.InclusionProof(uint64(i), size)
	if err != nil {
		panic(err)
	}
	root := l.tree.HashAt(size)
	cp := l.noteLocked(size)
	e := &rekorv1.Entry{
		UUID: "24296fb24b8ad77a" + rekorv1.LeafHash(l.bodies[i]), LogIndex: i, LogID: l.key.ID(),
		IntegratedTime: 1700000000 + i, Body: l.bodies[i],
		Proof: &rekorv1.InclusionProof{
			LogIndex: i, TreeSize: int64(size), RootHash: bytes.Clone(root), Hashes: cloneHashes(p), Checkpoint: []byte(cp),
		},
	}
	set, _ := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{base64.StdEncoding.EncodeToString(e.Body), e.IntegratedTime, e.LogID, e.LogIndex})
	e.SET = l.sign(set)
	if l.lie != nil {
		l.lie(e)
	}
	return e
}

// noteLocked is the signed checkpoint at size (re-signed on every call, as
// Rekor does).
func (l *memLog) noteLocked(size uint64) string {
	root := l.tree.HashAt(size)
	note := fmt.Sprintf("memlog - 1\n%d\n%s\n", size, base64.StdEncoding.EncodeToString(root))
	der, _ := x509.MarshalPKIXPublicKey(&l.signer.PublicKey)
	kh := sha256.Sum256(der)
	return note + "\n\u2014 memlog " + base64.StdEncoding.EncodeToString(append(kh[:4:4], l.sign([]byte(note))...)) + "\n"
}

func (l *memLog) EntriesByIndex(ctx context.Context, indexes []int64) (map[int64]*rekorv1.Entry, error) {
	if f := l.beforeRetrieveHook(); f != nil {
		f()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retrieves++
	if l.failRetrieve {
		return nil, errLogDown
	}
	m := map[int64]*rekorv1.Entry{}
	for _, i := range indexes {
		if i >= 0 && i < int64(len(l.bodies)) {
			e := l.entryLocked(i)
			if l.lieRetrieve != nil {
				l.lieRetrieve(e)
			}
			m[i] = e
		}
	}
	return m, nil
}

func (l *memLog) beforeRetrieveHook() func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.beforeRetrieve
}

func (l *memLog) Checkpoint(ctx context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checkpoints++
	if l.failRetrieve {
		return nil, errLogDown
	}
	return []byte(l.noteLocked(l.tree.Size())), nil
}

func (l *memLog) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.proofs++
	if l.failRetrieve {
		return nil, errLogDown
	}
	if first <= 0 || first > last || last > int64(l.tree.Size()) {
		return nil, fmt.Errorf("400: bad sizes %d..%d", first, last)
	}
	return l.tree.ConsistencyProof(uint64(first), uint64(last))
}

func (l *memLog) sign(msg []byte) []byte {
	d := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, l.signer, d[:])
	if err != nil {
		panic(err)
	}
	return sig
}

// cloneHashes copies proof hashes: testonly's slices are the tree's own.
func cloneHashes(hs [][]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = bytes.Clone(h)
	}
	return out
}
