package sigsum_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/internal/witness"
)

// world: a Sigsum log served over HTTP, sequencing every 50 ms and pushing
// to two sigsum-witness and one omniwitness; a Sigsum-syntax 2-of-3 policy.
type world struct {
	log       *sigsumlog.Log
	srv       *sigsumlog.Server
	witnesses []*witnesstest.Witness
	text      string
	policy    *witness.Policy
	key       ed25519.PrivateKey // the transparency key
}

func newWorld(t *testing.T) *world {
	t.Helper()
	logPub, logPriv, _ := ed25519.GenerateKey(rand.Reader)
	origin := witness.SigsumOrigin(logPub)
	vkey, _ := witness.Ed25519VKey(origin, logPub)
	w := &world{witnesses: []*witnesstest.Witness{
		witnesstest.StartSigsum(t, logPub),
		witnesstest.StartSigsum(t, logPub),
		witnesstest.StartOmni(t, witnesstest.Log{Origin: origin, VKey: vkey}),
	}}
	var wl string
	for i, x := range w.witnesses {
		wl += x.SigsumPolicyLine(fmt.Sprintf("w%d", i+1)) + "\n"
	}
	withURLs, err := witness.Parse([]byte(wl + "quorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w.log, err = sigsumlog.New(logPriv, withURLs.Witnesses); err != nil {
		t.Fatal(err)
	}
	w.srv = sigsumlog.Serve(t, w.log, 50*time.Millisecond)
	w.text = w.srv.PolicyLine() + "\n" + wl + "group g 2 w1 w2 w3\nquorum g\n"
	w.policy = mustParse(t, w.text)
	_, w.key, _ = ed25519.GenerateKey(rand.Reader)
	return w
}

func mustParse(t *testing.T, text string) *witness.Policy {
	t.Helper()
	p, err := witness.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return p
}

func (w *world) cfg() sigsum.Config {
	return sigsum.Config{Policy: w.policy, PollDelay: 20 * time.Millisecond, Timeout: 20 * time.Second, Witness: witness.Options{MaxAge: time.Hour}}
}

func pkgs(tag string, n int) [][32]byte {
	out := make([][32]byte, n)
	for i := range out {
		out[i] = sha256.Sum256([]byte(fmt.Sprintf("%s-%d.pkg.tar.zst", tag, i)))
	}
	return out
}

func (w *world) pub() ed25519.PublicKey { return w.key.Public().(ed25519.PublicKey) }

// Submit → proof files on disk → offline verification → the key's leaves
// listed by a monitor, then listed again incrementally.
func TestRoundTrip(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	shas := pkgs("foo", 3)
	start := time.Now()
	proofs, err := sigsum.Submit(ctx, w.cfg(), w.key, shas)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("submitted %d leaves in %v", len(shas), time.Since(start))
	dir := t.TempDir()
	for i, p := range proofs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.proof", i)), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// offline: a fresh verifier, the policy file without URLs
	offline := mustParse(t, strings.NewReplacer(" "+w.srv.URL, "").Replace(stripURLs(w.text)))
	v, err := sigsum.NewVerifier(offline, []ed25519.PublicKey{w.pub()}, witness.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for i, sha := range shas {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d.proof", i)))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r, err := v.Verify(b, sha)
		if err != nil {
			t.Fatalf("package %d: %v\n%s", i, err, b)
		}
		t.Logf("proof %d: %d bytes, verified in %v: index %d of %d, %d cosignatures", i, len(b), time.Since(start), r.LeafIndex, r.TreeSize, len(r.Cosignatures))
		if r.KeyHash != sha256.Sum256(w.pub()) || r.LeafIndex >= r.TreeSize || len(r.Cosignatures) < 2 || seen[r.LeafIndex] ||
			r.LogKeyHash != sha256.Sum256(w.log.PublicKey()) {
			t.Fatalf("result %+v", r)
		}
		seen[r.LeafIndex] = true
		// the proof of one package does not prove another
		if _, err := v.Verify(b, shas[(i+1)%len(shas)]); !errors.Is(err, sigsum.ErrOtherPackage) {
			t.Errorf("other package: %v", err)
		}
	}
	// another transparency key, another log
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := sigsum.VerifyProof(proofs[0], shas[0], []ed25519.PublicKey{other}, offline, witness.Options{}); !errors.Is(err, sigsum.ErrOtherPackage) {
		t.Errorf("other key: %v", err)
	}
	otherLog := mustParse(t, fmt.Sprintf("log %x\nquorum none\n", other))
	if _, err := sigsum.VerifyProof(proofs[0], shas[0], []ed25519.PublicKey{w.pub()}, otherLog, witness.Options{}); err == nil || !strings.Contains(err.Error(), "not a Sigsum log of the policy") {
		t.Errorf("other log: %v", err)
	}
	// stale: the same proof, verified two hours later with a one-hour limit
	late := witness.Options{MaxAge: time.Hour, Now: time.Now().Add(2 * time.Hour)}
	var qe *witness.QuorumError
	if _, err := sigsum.VerifyProof(proofs[0], shas[0], []ed25519.PublicKey{w.pub()}, offline, late); !errors.As(err, &qe) {
		t.Errorf("stale: %v", err)
	}

	// monitor: a leaf by another key is not listed
	if _, err := sigsum.Submit(ctx, w.cfg(), other2(t), pkgs("someone-else", 1)); err != nil {
		t.Fatal(err)
	}
	lg := &w.policy.Logs[0]
	l1, err := sigsum.ListLeaves(ctx, w.cfg(), lg, []ed25519.PublicKey{w.pub()}, sigsum.LogState{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l1.Leaves) != 3 || l1.Read != l1.TreeHead.Size || l1.State.NextIndex != l1.TreeHead.Size || len(l1.Cosignatures) < 2 {
		t.Fatalf("listing %+v", l1)
	}
	for _, lf := range l1.Leaves {
		if !lf.SignatureValid || !seen[lf.Index] {
			t.Errorf("leaf %+v", lf)
		}
		found := false
		for _, s := range shas {
			found = found || lf.Checksum == sigsum.Checksum(s)
		}
		if !found {
			t.Errorf("leaf %d matches no package", lf.Index)
		}
	}
	// more packages; the next run reads only the new leaves, in two steps
	if _, err := sigsum.Submit(ctx, w.cfg(), w.key, pkgs("bar", 4)); err != nil {
		t.Fatal(err)
	}
	l2, err := sigsum.ListLeaves(ctx, w.cfg(), lg, []ed25519.PublicKey{w.pub()}, l1.State, 2)
	if err != nil {
		t.Fatal(err)
	}
	l3, err := sigsum.ListLeaves(ctx, w.cfg(), lg, []ed25519.PublicKey{w.pub()}, l2.State, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Read != 2 || l2.State.NextIndex != l1.State.NextIndex+2 || len(l2.Leaves)+len(l3.Leaves) != 4 ||
		l3.State.NextIndex != l3.TreeHead.Size || l3.TreeHead.Size != l1.TreeHead.Size+4 {
		t.Fatalf("incremental: %+v\n%+v", l2, l3)
	}

	// the log rolls back: the monitor's state catches it
	h := w.log.History()
	w.log.Publish(h[len(h)-2]) // an earlier, properly cosigned head
	_, err = sigsum.ListLeaves(ctx, w.cfg(), lg, []ed25519.PublicKey{w.pub()}, l3.State, 0)
	var sv *sigsum.SplitViewError
	if !errors.As(err, &sv) || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("rollback: %v", err)
	}
	t.Log(err)
}

func other2(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// stripURLs drops the URL of every witness line (client-side policies need none).
func stripURLs(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "witness" {
			l = strings.Join(f[:3], " ")
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// A log that forks: the key holder serves a second branch. The witnesses
// refuse to cosign it, so a fresh client (no state) refuses a proof from
// it and a fresh monitor refuses its tree head; with "quorum none" the
// proof would pass, and only a monitor with state would notice.
func TestForkRefused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := sigsum.Submit(ctx, w.cfg(), w.key, pkgs("honest", 3)); err != nil {
		t.Fatal(err)
	}
	honest, err := sigsum.ListLeaves(ctx, w.cfg(), &w.policy.Logs[0], []ed25519.PublicKey{w.pub()}, sigsum.LogState{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	fork, err := w.log.Fork(1)
	if err != nil {
		t.Fatal(err)
	}
	fsrv := sigsumlog.Serve(t, fork, 50*time.Millisecond)
	evil := pkgs("evil", 3) // the fork outgrows the honest tree: witnesses get a proof (and answer 422)
	// The operator submits to the fork with a policy that needs no witness.
	forkText := strings.Replace(w.text, w.srv.URL, fsrv.URL, 1)
	forkNone := mustParse(t, strings.Replace(forkText, "quorum g", "quorum none", 1))
	cfg := w.cfg()
	cfg.Policy = forkNone
	proofs, err := sigsum.Submit(ctx, cfg, w.key, evil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fork.WitnessErrors() {
		t.Log("witness refused the fork:", e)
	}
	forkPolicy := mustParse(t, forkText)
	_, err = sigsum.VerifyProof(proofs[0], evil[0], []ed25519.PublicKey{w.pub()}, forkPolicy, witness.Options{})
	var qe *witness.QuorumError
	if !errors.As(err, &qe) || qe.Groups[0].Have != 0 {
		t.Fatalf("fresh client with 2 of 3: %v", err)
	}
	t.Log(err)
	// a fresh monitor refuses the fork's tree head for the same reason
	_, err = sigsum.ListLeaves(ctx, w.cfg(), &forkPolicy.Logs[0], []ed25519.PublicKey{w.pub()}, sigsum.LogState{}, 0)
	var the *sigsum.TreeHeadError
	if !errors.As(err, &the) || !errors.As(err, &qe) {
		t.Fatalf("fresh monitor: %v", err)
	}
	// without witnesses only the state notices
	_, err = sigsum.ListLeaves(ctx, cfg, &forkNone.Logs[0], []ed25519.PublicKey{w.pub()}, honest.State, 0)
	var sv *sigsum.SplitViewError
	if !errors.As(err, &sv) {
		t.Fatalf("monitor with state, quorum none: %v", err)
	}
	t.Log(err)
}

// Witnesses down: the quorum cannot be met, Submit gives up at its
// timeout and says why.
func TestSubmitWithoutQuorum(t *testing.T) {
	w := newWorld(t)
	w.witnesses[0].Stop()
	w.witnesses[2].Stop()
	cfg := w.cfg()
	cfg.Timeout = 2 * time.Second
	_, err := sigsum.Submit(context.Background(), cfg, w.key, pkgs("x", 1))
	var se *sigsum.SubmitError
	var qe *witness.QuorumError
	if !errors.As(err, &se) || len(se.Diagnosis) != 1 || !errors.As(se.Diagnosis[0], &qe) {
		t.Fatalf("%v", err)
	}
	t.Log(err)
}
