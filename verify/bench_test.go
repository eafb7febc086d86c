package verify

import (
	"context"
	"testing"
)

func BenchmarkVerifySignature(b *testing.B) {
	sk, pk := testKey(b, 1)
	msg := hexOf("bench")
	t, _ := SignPackage(sk, msg, "bench-1-1-any.pkg.tar.zst")
	keys := []PublicKey{pk}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := VerifySignature(t, keys, msg, "bench-1-1-any.pkg.tar.zst"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEntry: the offline bundle verification of one package
// (parse bundle + `.t` + the four steps), hashing excluded, in a tree of
// 1000 entries (10-hash proof).
func BenchmarkVerifyEntry(b *testing.B) {
	r := newRepo(b, 1000, true)
	p := r.pkgs[500]
	bundle := r.src.bundles[p.filename]
	keys := []PublicKey{r.pk}
	b.ReportAllocs()
	for b.Loop() {
		e, err := ParseBundle(bundle)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := VerifyEntry(e, p.t, keys, p.sha, p.filename, r.log.key); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerifyAll(b *testing.B, offline bool) {
	r := newRepo(b, 500, true)
	arts := r.arts(false)
	v := r.verifier(b, Policy{Offline: offline}, nil)
	b.ReportAllocs()
	for b.Loop() {
		r.store.cp = nil
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
// log (re-proving in batches + consistency): engine cost, no network.
func BenchmarkVerifyAllOnline500(b *testing.B) { benchVerifyAll(b, false) }
