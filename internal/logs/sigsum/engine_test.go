package sigsum_test

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/testkit/enginetest"
	"github.com/bintrans/bintrans/internal/testkit/memlog"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// TestEngineSigsumOffline: the engine (verify.VerifyAll) verifies a batch
// from Sigsum proofs alone, against the 2-of-3 policy (real witnesses);
// the checkpoints it compares are the tree heads as signed notes with
// their cosignatures, which the C2SP witness code also accepts.
func TestEngineSigsumOffline(t *testing.T) {
	w := newWorld(t)
	sk, pk := memlog.Key(t, 4)
	var ps []*memlog.Package
	var sums [][32]byte
	for i := range 5 {
		p := memlog.NewPackage(t, sk, i)
		var s [32]byte
		if _, err := hex.Decode(s[:], []byte(p.SHA)); err != nil {
			t.Fatal(err)
		}
		ps, sums = append(ps, p), append(sums, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	proofs, err := sigsum.Submit(ctx, w.cfg(), enginetest.Ed25519(sk), sums)
	if err != nil {
		t.Fatal(err)
	}
	src := enginetest.NewSource()
	arts := make([]verify.Artifact, len(ps))
	for i, p := range ps {
		src.Set(p.Filename, p.T, proofs[i])
		arts[i] = p.Artifact(true)
	}
	kind, err := sigsum.NewKindVerifier(w.policy, witness.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	run := func(pol verify.Policy) []verify.Result {
		t.Helper()
		pol.Keys, pol.Log, pol.Offline = []verify.PublicKey{pk}, kind, true
		v, err := verify.NewVerifier(pol, src, nil, &enginetest.Store{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.VerifyAll(ctx, arts)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, x := range run(verify.Policy{}) {
		if !x.OK() || x.Entry == nil || len(x.Entry.UUID) != 64 {
			t.Fatalf("%s: %s (%v) %+v", x.Artifact.Filename, x.Status, x.Err, x.Entry)
		}
	}
	// The same proofs with the policy's quorum applied by the engine too
	// (cosignature lines of the tree head's note).
	for _, x := range run(verify.Policy{Witnesses: witness.Quorum{Policy: w.policy}}) {
		if !x.OK() {
			t.Fatalf("%s with the engine's quorum: %s (%v)", x.Artifact.Filename, x.Status, x.Err)
		}
	}
	// Another package's proof, and a proof of another key.
	src.Bundles[ps[1].Filename] = proofs[2]
	osk, _ := memlog.Key(t, 5)
	other, err := sigsum.Submit(ctx, w.cfg(), enginetest.Ed25519(osk), sums[3:4])
	if err != nil {
		t.Fatal(err)
	}
	src.Bundles[ps[3].Filename] = other[0]
	res := run(verify.Policy{})
	for i, x := range res {
		want := verify.StatusOK
		if i == 1 || i == 3 {
			want = verify.StatusBundleInvalid
		}
		if x.Status != want {
			t.Errorf("%s: %s (%v), want %s", x.Artifact.Filename, x.Status, x.Err, want)
		}
	}
	var pe *sigsum.ProofError
	if !errors.As(res[1].Err, &pe) || !errors.Is(res[1].Err, sigsum.ErrOtherPackage) {
		t.Fatalf("another package's proof: %v", res[1].Err)
	}
	// The stored checkpoint a later run compares with: the kind verifies
	// the notes it made.
	cp, err := kind.VerifyCheckpoint(proofCheckpoint(t, kind, proofs[0], ps[0], pk))
	if err != nil || cp.Origin != witness.SigsumOrigin(w.log.PublicKey()) {
		t.Fatalf("checkpoint note: %v %v", cp, err)
	}
}

func proofCheckpoint(t *testing.T, k *sigsum.KindVerifier, proof []byte, p *memlog.Package, pk verify.PublicKey) []byte {
	t.Helper()
	s, err := verify.ParseSignature(p.T)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := k.VerifyBundle(proof, s, []verify.PublicKey{pk}, []byte(p.SHA))
	if err != nil {
		t.Fatal(err)
	}
	return pr.Checkpoint.Text
}
