package sigsum

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/requests"

	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/witness"
)

func BenchmarkVerifyProof(b *testing.B) {
	f := newFixture(b, 1000, uint64(time.Now().Unix()))
	v, err := NewVerifier(f.policy, f.pub(), witness.Options{MaxAge: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(f.proofs[500])), "proof-bytes")
	for b.Loop() {
		if _, err := v.Verify(f.proofs[500], f.pkgs[500]); err != nil {
			b.Fatal(err)
		}
	}
}

// ListLeaves over HTTP from an in-process log of 10 000 leaves (no
// witnesses: quorum none), all verified by batch inclusion proofs.
func BenchmarkListLeaves10000(b *testing.B) {
	l, err := sigsumlog.New(key("log"), nil)
	if err != nil {
		b.Fatal(err)
	}
	k := key("transparency")
	var seed scrypto.PrivateKey
	copy(seed[:], k.Seed())
	s := scrypto.NewEd25519Signer(&seed)
	for i := 0; i < 10000; i++ {
		var m [32]byte
		binary.BigEndian.PutUint64(m[:], uint64(i))
		m = sha256.Sum256(m[:])
		sig, _ := SignLeaf(k, m)
		if _, err := l.AddLeaf(context.Background(), requests.Leaf{Message: m, Signature: sig, PublicKey: s.Public()}, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sequence(context.Background(), false); err != nil {
		b.Fatal(err)
	}
	srv := sigsumlog.Serve(b, l, 0)
	pol, err := witness.Parse([]byte(srv.PolicyLine() + "\nquorum none\n"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		got, err := ListLeaves(context.Background(), Config{Policy: pol}, &pol.Logs[0], []ed25519.PublicKey{k.Public().(ed25519.PublicKey)}, LogState{}, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Leaves) != 10000 {
			b.Fatal(fmt.Sprint(len(got.Leaves)))
		}
	}
}
