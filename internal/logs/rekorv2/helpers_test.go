package rekorv2

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/tilelog"
)

// testKey is a deterministic Ed25519 key (n selects it).
func testKey(n int) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("rekorv2 test key %d", n)))
	return ed25519.NewKeyFromSeed(seed[:])
}

// msgOf is the message of a package with these contents: its hex SHA-256.
func msgOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return []byte(hex.EncodeToString(h[:]))
}

func mustSign(t testing.TB, priv ed25519.PrivateKey, s string) *HashedRekord {
	t.Helper()
	h, err := Sign(priv, msgOf(s))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// answer is what the fake log answers to an add (the real server's field
// names; int64s as strings like protojson).
type answer struct {
	LogIndex    string `json:"logIndex"`
	LogID       any    `json:"logId"`
	KindVersion any    `json:"kindVersion"`
	Proof       *struct {
		LogIndex   string   `json:"logIndex"`
		RootHash   []byte   `json:"rootHash"`
		TreeSize   string   `json:"treeSize"`
		Hashes     [][]byte `json:"hashes"`
		Checkpoint struct {
			Envelope string `json:"envelope"`
		} `json:"checkpoint"`
	} `json:"inclusionProof"`
	Body []byte `json:"canonicalizedBody"`
}

// fakeRekor is a Rekor v2 write API over a tilelog: it verifies and logs
// hashedrekord requests, answers 409 + X-Log-Index for duplicates, and can
// be told to fail (before) or lie (mutate).
type fakeRekor struct {
	*tilelog.Log
	lv *LogVerifier

	mu     sync.Mutex
	byLeaf map[[32]byte]uint64
	posts  atomic.Int64
	// before runs first; returning true means it answered.
	before func(n int64, w http.ResponseWriter) bool
	// mutate may alter an honest answer.
	mutate func(a *answer)
}

func newFakeRekor(t testing.TB) *fakeRekor {
	t.Helper()
	l := tilelog.New(t, "fake.rekor.test/v2")
	lv, err := ParseLogKey([]byte(l.VKey), "")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRekor{Log: l, lv: lv, byLeaf: map[[32]byte]uint64{}}
	l.Publish()
	l.Write = f.write
	return f
}

func (f *fakeRekor) write(w http.ResponseWriter, r *http.Request) {
	n := f.posts.Add(1)
	f.mu.Lock()
	before, mutate := f.before, f.mutate
	f.mu.Unlock()
	if before != nil && before(n, w) {
		return
	}
	var req struct {
		R struct {
			Digest    []byte `json:"digest"`
			Signature struct {
				Content  []byte `json:"content"`
				Verifier struct {
					PublicKey struct {
						RawBytes []byte `json:"rawBytes"`
					} `json:"publicKey"`
					KeyDetails string `json:"keyDetails"`
				} `json:"verifier"`
			} `json:"signature"`
		} `json:"hashedRekordRequestV002"`
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(b, &req); err != nil || len(req.R.Digest) != 64 || len(req.R.Signature.Content) != 64 ||
		req.R.Signature.Verifier.KeyDetails != KeyDetails {
		http.Error(w, `{"code":3,"message":"invalid hashedrekord request"}`, http.StatusBadRequest)
		return
	}
	k, err := x509.ParsePKIXPublicKey(req.R.Signature.Verifier.PublicKey.RawBytes)
	pub, ok := k.(ed25519.PublicKey)
	if err != nil || !ok {
		http.Error(w, `{"code":3,"message":"invalid public key"}`, http.StatusBadRequest)
		return
	}
	h := &HashedRekord{Digest: [64]byte(req.R.Digest), Signature: [64]byte(req.R.Signature.Content), PublicKey: pub}
	if !h.Verify() {
		http.Error(w, `{"code":3,"message":"invalid signature"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	leaf := h.LeafHash()
	if idx, dup := f.byLeaf[leaf]; dup {
		f.mu.Unlock()
		w.Header().Set("X-Log-Index", strconv.FormatUint(idx, 10))
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, `{"code":6, "message":"an equivalent entry already exists in the transparency log with index %d", "details":[]}`, idx)
		return
	}
	idx := f.Append(h.Body())
	f.byLeaf[leaf] = idx
	cp := f.Publish()
	f.mu.Unlock()
	size := idx + 1
	root := f.Root(size)
	a := &answer{
		LogIndex:    strconv.FormatUint(idx, 10),
		LogID:       map[string][]byte{"keyId": func() []byte { k := f.lv.KeyID(); return k[:] }()},
		KindVersion: map[string]string{"kind": Kind, "version": APIVersion},
		Body:        h.Body(),
	}
	a.Proof = &struct {
		LogIndex   string   `json:"logIndex"`
		RootHash   []byte   `json:"rootHash"`
		TreeSize   string   `json:"treeSize"`
		Hashes     [][]byte `json:"hashes"`
		Checkpoint struct {
			Envelope string `json:"envelope"`
		} `json:"checkpoint"`
	}{LogIndex: a.LogIndex, RootHash: root[:], TreeSize: strconv.FormatUint(size, 10)}
	a.Proof.Checkpoint.Envelope = string(cp)
	for _, p := range f.InclusionProof(idx, size) {
		a.Proof.Hashes = append(a.Proof.Hashes, append([]byte(nil), p[:]...))
	}
	if mutate != nil {
		mutate(a)
	}
	out, _ := json.Marshal(a)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(out)
}

func (f *fakeRekor) set(before func(n int64, w http.ResponseWriter) bool, mutate func(*answer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before, f.mutate = before, mutate
}
