package verify_test

import (
	"context"
	"testing"

	"github.com/bintrans/bintrans/verify"
)

func BenchmarkVerifySignature(b *testing.B) {
	sk, pk := testKey(b, 1)
	msg := hexOf("bench")
	t, _ := verify.SignPackage(sk, msg, "bench-1-1-any.pkg.tar.zst")
	keys := []verify.PublicKey{pk}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := verify.VerifySignature(t, keys, msg, "bench-1-1-any.pkg.tar.zst"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerifyAll(b *testing.B, offline bool) {
	r := newRepo(b, 500, true)
	arts := r.arts(false)
	v := r.verifier(b, verify.Policy{Offline: offline}, nil)
	b.ReportAllocs()
	for b.Loop() {
		r.store.CP = nil
		res, err := v.VerifyAll(context.Background(), arts)
		if err != nil {
			b.Fatal(err)
		}
		for _, x := range res {
			if !x.OK() {
				b.Fatal(x.Err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/pkg")
}

// BenchmarkVerifyAllOffline500: a hook batch of 500 packages from bundles,
// no hashing (the db's sha256 is the message).
func BenchmarkVerifyAllOffline500(b *testing.B) { benchVerifyAll(b, true) }

// BenchmarkVerifyAllOnline500: the same batch online against the in-memory
// log (the current checkpoint and the consistency of the bundles' one with
// it): engine cost, no network.
func BenchmarkVerifyAllOnline500(b *testing.B) { benchVerifyAll(b, false) }
