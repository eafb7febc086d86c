package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/enginetest"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// These tests run the engine through the real Rekor client against
// internal/fakelog (real RFC 6962 proofs, signed checkpoints and SETs) when
// it lies: rolled back, forked, hiding entries, slow or failing proofs.

// fakeRepo is n packages signed, logged one by one (package i's bundle
// proves it in the tree of size i+1) and published with their bundles.
type fakeRepo struct {
	log   *fakelog.Log
	lk    *rekorv1.LogKey
	sk    *minisign.PrivateKey
	pk    verify.PublicKey
	src   *dirSource
	store *store
	arts  []verify.Artifact
	ents  []*rekorv1.Entry
}

func newFakeRepo(t *testing.T, n int) *fakeRepo {
	t.Helper()
	r := &fakeRepo{log: fakelog.New(t), src: enginetest.NewSource(), store: &store{}}
	var err error
	if r.lk, err = rekorv1.ParseLogKey(r.log.KeyPEM); err != nil {
		t.Fatal(err)
	}
	r.sk, r.pk = newMinisignKey(t)
	for range n {
		r.add(t, true)
	}
	return r
}

// add signs the next package and publishes its `.t`; logIt: logs it and
// publishes its bundle too (otherwise the `.t` is never logged).
func (r *fakeRepo) add(t *testing.T, logIt bool) {
	t.Helper()
	filename := fmt.Sprintf("pkg%03d-1.0-1-x86_64.pkg.tar.zst", len(r.arts))
	h := sha256.Sum256([]byte(filename + " payload"))
	sha := hex.EncodeToString(h[:])
	tf, err := verify.SignPackage(r.sk, sha, filename)
	if err != nil {
		t.Fatal(err)
	}
	r.src.Sigs[filename] = tf
	r.arts = append(r.arts, verify.Artifact{Filename: filename, Repo: "core", Arch: "x86_64", SHA256: sha})
	if !logIt {
		r.ents = append(r.ents, nil)
		return
	}
	s, err := verify.ParseSignature(tf)
	if err != nil {
		t.Fatal(err)
	}
	e := r.log.Add(rekorv1.CanonicalBody(s, r.pk, []byte(sha)))
	b, err := rekorv1.MarshalBundle(e)
	if err != nil {
		t.Fatal(err)
	}
	r.src.Bundles[filename] = b
	r.ents = append(r.ents, e)
}

func (r *fakeRepo) client(t *testing.T) *rekorv1.Client {
	t.Helper()
	hc, err := httpclient.New(httpclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := rekorv1.New(r.log.URL, hc, rekorv1.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *fakeRepo) run(t *testing.T, lg rekorv1.API, concurrency int) ([]verify.Result, error) {
	t.Helper()
	v, err := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{r.pk}, Log: r.lk, Concurrency: concurrency}, r.src, rekorv1.NewOnline(lg, r.lk), r.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return v.VerifyAll(ctx, r.arts)
}

// baseline runs the engine on the honest log: everything ok, the log's
// checkpoint stored.
func (r *fakeRepo) baseline(t *testing.T) {
	t.Helper()
	res, err := r.run(t, r.client(t), 4)
	if err != nil {
		t.Fatalf("honest run: %v", err)
	}
	for _, x := range res {
		if !x.OK() {
			t.Fatalf("honest run: %s: %s: %v", x.Artifact.Filename, x.Status, x.Err)
		}
	}
	if len(r.store.CP) == 0 {
		t.Fatal("honest run stored no checkpoint")
	}
}

// mustSecurity checks a run that must end in a SECURITY ERROR whose reason
// holds reason, with every result log-inconsistent and the store untouched.
func (r *fakeRepo) mustSecurity(t *testing.T, res []verify.Result, err error, before []byte, reason string) *verify.SecurityError {
	t.Helper()
	var se *verify.SecurityError
	if !errors.As(err, &se) {
		t.Fatalf("err %v, want *verify.SecurityError", err)
	}
	if !strings.Contains(se.Reason, reason) {
		t.Fatalf("reason %q, want %q", se.Reason, reason)
	}
	if len(se.Old) == 0 || len(se.New) == 0 {
		t.Fatal("security error without both tree heads")
	}
	for _, x := range res {
		if x.Status != verify.StatusLogInconsistent || verify.StatusOf(x.Err) != x.Status {
			t.Errorf("%s: %s (%v), want log-inconsistent", x.Artifact.Filename, x.Status, x.Err)
		}
	}
	if string(r.store.CP) != string(before) {
		t.Error("the stored checkpoint changed after a security error")
	}
	return se
}

// TestVerifyAllRollbackBelowBundledEntries: the log rolls back to a tree
// that lacks the last entries. Those packages share the run's ROLLBACK
// verdict; they are not "not in log". With a stored checkpoint and
// without one (a first run: the bundles' checkpoints alone show it).
func TestVerifyAllRollbackBelowBundledEntries(t *testing.T) {
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprint("stored=", stored), func(t *testing.T) {
			r := newFakeRepo(t, 5)
			if stored {
				r.baseline(t)
			}
			before := append([]byte(nil), r.store.CP...)
			r.log.RollbackTo(3)
			res, err := r.run(t, r.client(t), 4)
			se := r.mustSecurity(t, res, err, before, "ROLLBACK")
			if !strings.Contains(string(se.New), "\n3\n") {
				t.Errorf("current head %q, want the rolled-back size 3", se.New)
			}
			for _, i := range []int{3, 4} {
				var nl *verify.NotInLogError
				if errors.As(res[i].Err, &nl) {
					t.Errorf("package %d beyond the rolled-back tree judged alone: %v", i, res[i].Err)
				}
			}
		})
	}
}

// TestVerifyAllForkBelowBundledEntries: the log forks before the last
// entries (another entry at their index, a larger tree, valid proofs for
// the fork): every package is log-inconsistent.
func TestVerifyAllForkBelowBundledEntries(t *testing.T) {
	r := newFakeRepo(t, 5)
	r.baseline(t)
	before := append([]byte(nil), r.store.CP...)
	r.log.Fork(3)
	res, err := r.run(t, r.client(t), 4)
	r.mustSecurity(t, res, err, before, "not consistent")
}

// TestVerifyAllFetchesNoBundledEntry: online with bundles, the engine asks
// the log for its checkpoint and consistency proofs only: a bundle's
// inclusion proof at its checkpoint plus the consistency of that
// checkpoint with the current one prove the entry is in the current tree.
// A log that would hide the bundled entries, or serve others in their
// place (lie on every entry endpoint), cannot change the verdict; a `.t`
// that was never logged (no bundle) is looked up, and is not-in-log.
func TestVerifyAllFetchesNoBundledEntry(t *testing.T) {
	for _, grown := range []bool{false, true} {
		t.Run(fmt.Sprint("grown=", grown), func(t *testing.T) {
			r := newFakeRepo(t, 6)
			r.baseline(t)
			// A never-logged signature by the same key.
			r.add(t, false)
			if grown {
				r.log.Add([]byte(`{"kind":"another entry"}`))
			}
			r.log.SetLie(fakelog.LieProofForOtherLeaf, fakelog.EndpointRetrieve, fakelog.EndpointEntry)
			retrieves := r.log.Requests(fakelog.EndpointRetrieve)
			proofs := r.log.Requests(fakelog.EndpointProof)
			res, err := r.run(t, r.client(t), 3)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range res {
				want := verify.StatusOK
				if i == 6 {
					want = verify.StatusNotInLog
				}
				if x.Status != want {
					t.Errorf("%s: %s (%v), want %s", x.Artifact.Filename, x.Status, x.Err, want)
				}
			}
			if got := r.log.Requests(fakelog.EndpointRetrieve) - retrieves; got != 0 {
				t.Errorf("%d entry retrievals for bundled packages, want none", got)
			}
			// The bundles' checkpoints (sizes 1..6) proven consistent with
			// the current tree (6, or 7 grown); the stored 6 shares a proof.
			want := 5
			if grown {
				want = 6
			}
			if got := r.log.Requests(fakelog.EndpointProof) - proofs; got != want {
				t.Errorf("%d consistency proofs fetched, want %d", got, want)
			}
		})
	}
}

// proofGate holds the first `want` ConsistencyProof calls until all of
// them are in flight (a sequential engine would wait out the safety
// timeout and never have two in flight), and records the most in flight.
type proofGate struct {
	rekorv1.API
	want    int
	release chan struct{}

	mu                        sync.Mutex
	started, inFlight, maxFly int
}

func newProofGate(lg rekorv1.API, want int) *proofGate {
	return &proofGate{API: lg, want: want, release: make(chan struct{})}
}

func (g *proofGate) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	g.mu.Lock()
	g.started++
	g.inFlight++
	g.maxFly = max(g.maxFly, g.inFlight)
	if g.started == g.want {
		close(g.release)
	}
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
	case <-time.After(10 * time.Second): // safety only: the assertion is on maxFly
	}
	p, err := g.API.ConsistencyProof(ctx, first, last)
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
	return p, err
}

// TestVerifyAllConsistencyProofsConcurrent: one consistency proof per
// distinct old size, Policy.Concurrency of them in flight, never more.
func TestVerifyAllConsistencyProofsConcurrent(t *testing.T) {
	r := newFakeRepo(t, 12)
	// First run: the bundles' checkpoints have sizes 1..12, the current
	// tree is 12: eleven proofs.
	proofs := r.log.Requests(fakelog.EndpointProof)
	gate := newProofGate(r.client(t), 4)
	res, err := r.run(t, gate, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if !x.OK() {
			t.Fatalf("%s: %s: %v", x.Artifact.Filename, x.Status, x.Err)
		}
	}
	if got := r.log.Requests(fakelog.EndpointProof) - proofs; got != 11 {
		t.Errorf("%d consistency proof requests, want 11 (one per distinct size)", got)
	}
	if gate.maxFly != 4 {
		t.Errorf("at most %d consistency proofs in flight, want 4 (Policy.Concurrency)", gate.maxFly)
	}
	cp, err := r.lk.VerifyCheckpoint(r.store.CP)
	if err != nil || cp.Size != 12 {
		t.Fatalf("stored %v %v", cp, err)
	}

	// The log grows: sizes 1..12 again, the stored 12 among them.
	r.log.Add([]byte(`{"kind":"another entry"}`))
	r.log.Add([]byte(`{"kind":"yet another entry"}`))
	proofs = r.log.Requests(fakelog.EndpointProof)
	gate = newProofGate(r.client(t), 3)
	if _, err := r.run(t, gate, 3); err != nil {
		t.Fatal(err)
	}
	if got := r.log.Requests(fakelog.EndpointProof) - proofs; got != 12 {
		t.Errorf("%d consistency proof requests, want 12", got)
	}
	if gate.maxFly != 3 {
		t.Errorf("at most %d in flight, want 3", gate.maxFly)
	}
	if cp, _ := r.lk.VerifyCheckpoint(r.store.CP); cp == nil || cp.Size != 14 {
		t.Fatalf("stored %v", cp)
	}
}

// jitterLog answers consistency proofs after a random pause, so that they
// complete in a different order on every run.
type jitterLog struct{ rekorv1.API }

func (j jitterLog) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	return j.API.ConsistencyProof(ctx, first, last)
}

// TestVerifyAllConsistencyVerdictDeterministic: every proof is bad; the
// verdict is always the first check in size order (the bundle checkpoint
// of size 1), whatever order the proofs arrive in.
func TestVerifyAllConsistencyVerdictDeterministic(t *testing.T) {
	r := newFakeRepo(t, 10)
	r.baseline(t)
	r.log.Add([]byte(`{"kind":"another entry"}`))
	r.log.SetLie(fakelog.LieBadConsistencyProof, fakelog.EndpointProof)
	before := append([]byte(nil), r.store.CP...)
	for range 5 {
		res, err := r.run(t, jitterLog{r.client(t)}, 8)
		se := r.mustSecurity(t, res, err, before, "a checkpoint of an entry's inclusion proof (tree size 1) is not consistent with the current checkpoint (tree size 11)")
		if se.Err == nil {
			t.Fatal("no proof error attached")
		}
	}
}

// failingProofLog fails the proof from size bad at once; every other proof
// waits for its context (a cancelled run returns at once).
type failingProofLog struct {
	rekorv1.API
	bad   int64
	calls atomic.Int32
}

func (f *failingProofLog) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	f.calls.Add(1)
	if first == f.bad {
		return nil, errors.New("502 Bad Gateway")
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(20 * time.Second):
		return nil, errors.New("not cancelled")
	}
}

// TestVerifyAllConsistencyProofFailureCancels: the first failing proof
// cancels the others; the run is a *LogUnavailableError naming it, and
// nothing is stored.
func TestVerifyAllConsistencyProofFailureCancels(t *testing.T) {
	r := newFakeRepo(t, 8)
	lg := &failingProofLog{API: r.client(t), bad: 2}
	res, err := r.run(t, lg, 4)
	var lu *verify.LogUnavailableError
	if !errors.As(err, &lu) || lu.Op != "consistency proof 2→8" {
		t.Fatalf("err %v, want the *LogUnavailableError of proof 2→8", err)
	}
	if strings.Contains(err.Error(), "not cancelled") {
		t.Fatalf("a proof was not cancelled: %v", err)
	}
	for _, x := range res {
		if x.Status != verify.StatusUnavailable {
			t.Errorf("%s: %s (%v), want unavailable", x.Artifact.Filename, x.Status, x.Err)
		}
	}
	if n := lg.calls.Load(); n > 4 {
		t.Errorf("%d proofs asked after the failure (at most the 4 in flight)", n)
	}
	if len(r.store.CP) != 0 {
		t.Error("stored a checkpoint")
	}
}
