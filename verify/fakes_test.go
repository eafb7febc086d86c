package verify_test

import (
	"testing"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/enginetest"
	"github.com/bintrans/bintrans/internal/testkit/memlog"
	"github.com/bintrans/bintrans/verify"
)

// The engine's tests run it over the Rekor v1 kind (internal/logs/rekorv1)
// against an in-memory log (internal/testkit/memlog: real RFC 6962 proofs,
// real ECDSA checkpoints and SETs, fault knobs); kinds_test.go runs the same
// batch over Rekor v2 and Sigsum.

var hexOf = memlog.HexOf

func testKey(t testing.TB, seed byte) (*minisign.PrivateKey, verify.PublicKey) {
	return memlog.Key(t, seed)
}

// memSource and memStore are the in-memory edges of the engine.
type (
	memSource = enginetest.Source
	memStore  = enginetest.Store
)

func newMemSource() *memSource { return enginetest.NewSource() }

// repo is a signed, logged test repository: packages, their `.t` and
// bundles in a memSource, the log, a checkpoint store.
type repo struct {
	log   *memlog.Log
	src   *memSource
	store *memStore
	sk    *minisign.PrivateKey
	pk    verify.PublicKey
	pkgs  []*memlog.Package
}

func newRepo(t testing.TB, n int, bundles bool) *repo {
	t.Helper()
	r := &repo{log: memlog.New(t), src: newMemSource(), store: &memStore{}}
	r.sk, r.pk = testKey(t, 1)
	for i := 0; i < n; i++ {
		p := memlog.NewPackage(t, r.sk, i)
		r.log.AddSigned(t, p.T, r.pk, p.SHA)
		r.pkgs = append(r.pkgs, p)
		r.src.Sigs[p.Filename] = p.T
	}
	for i, p := range r.pkgs {
		p.Entry = r.log.EntryAt(int64(i), int64(n))
		if bundles {
			r.src.Bundles[p.Filename] = bundleOf(t, p.Entry)
		}
	}
	return r
}

func bundleOf(t testing.TB, e *rekorv1.Entry) []byte {
	t.Helper()
	b, err := rekorv1.MarshalBundle(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *repo) arts(open bool) []verify.Artifact {
	a := make([]verify.Artifact, len(r.pkgs))
	for i, p := range r.pkgs {
		a[i] = p.Artifact(open)
	}
	return a
}

// online is the engine's online side on the repository's log.
func (r *repo) online() verify.LogClient { return rekorv1.NewOnline(r.log, r.log.Key) }

func (r *repo) verifier(t testing.TB, p verify.Policy, rb verify.Rebuilders) *verify.Verifier {
	t.Helper()
	p.Keys = append(p.Keys, r.pk)
	p.Log = r.log.Key
	v, err := verify.NewVerifier(p, r.src, r.online(), r.store, rb)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
