package witness_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/internal/witness"
	"sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/requests"
	"sigsum.org/sigsum-go/pkg/types"
)

// world is a Sigsum test log with three real witness processes: two
// sigsum-witness and one omniwitness, and a 2-of-3 policy over them.
type world struct {
	log       *sigsumlog.Log
	logKey    ed25519.PrivateKey
	witnesses []*witnesstest.Witness // w1, w2 (sigsum-witness), w3 (omniwitness)
	policy    *witness.Policy
	text      string // the policy file
}

func newWorld(t *testing.T) *world {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	origin := witness.SigsumOrigin(pub)
	vkey, err := witness.Ed25519VKey(origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	ws := []*witnesstest.Witness{
		witnesstest.StartSigsum(t, pub),
		witnesstest.StartSigsum(t, pub),
		witnesstest.StartOmni(t, witnesstest.Log{Origin: origin, VKey: vkey}),
	}
	text := "# 2 of 3 real witnesses\nlog " + vkey + "\n"
	for i, w := range ws {
		text += w.PolicyLine(fmt.Sprintf("w%d", i+1)) + "\n"
	}
	text += "group g 2 w1 w2 w3\nquorum g\n"
	p, err := witness.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	l, err := sigsumlog.New(priv, p.Witnesses)
	if err != nil {
		t.Fatal(err)
	}
	return &world{log: l, logKey: priv, witnesses: ws, policy: p, text: text}
}

// addLeaves queues n leaves signed by a fresh submitter key and sequences.
func (w *world) addLeaves(t *testing.T, l *sigsumlog.Log, tag string, n int) {
	t.Helper()
	_, s, err := crypto.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		msg := crypto.HashBytes([]byte(fmt.Sprintf("%s-%d", tag, i)))
		sig, err := types.SignLeafMessage(s, msg[:])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AddLeaf(context.Background(), requests.Leaf{Message: msg, Signature: sig, PublicKey: s.Public()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sequence(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}

func TestQuorumMetRealWitnesses(t *testing.T) {
	w := newWorld(t)
	w.addLeaves(t, w.log, "a", 3)
	w.addLeaves(t, w.log, "b", 2) // the second round needs consistency proofs
	if errs := w.log.WitnessErrors(); len(errs) > 0 {
		t.Fatalf("witness refusals: %v", errs)
	}
	cp := w.log.Checkpoint()
	got, err := w.policy.VerifyCheckpoint(cp, witness.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatalf("%v\n%s", err, cp)
	}
	if got.Size != 5 || got.Origin != w.log.Origin() || len(got.Cosignatures) != 3 {
		t.Fatalf("got size %d origin %q cosignatures %v", got.Size, got.Origin, got.Cosignatures)
	}
	for i, c := range got.Cosignatures {
		if want := fmt.Sprintf("w%d", i+1); c.Witness != want || time.Since(c.Time) > time.Minute {
			t.Errorf("cosignature %d: %+v", i, c)
		}
	}
	// the same with the Sigsum-syntax policy (hex keys)
	hexText := fmt.Sprintf("log %x\n", w.logKey.Public())
	for i, x := range w.witnesses {
		hexText += x.SigsumPolicyLine(fmt.Sprintf("w%d", i+1)) + "\n"
	}
	hexText += "group g 2 w1 w2 w3\nquorum g\n"
	hp, err := witness.Parse([]byte(hexText))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := hp.VerifyCheckpoint(cp, witness.Options{}); err != nil || len(got.Cosignatures) != 3 {
		t.Fatalf("hex policy: %v %+v", err, got)
	}
}

func TestQuorumMissedOneWitnessDown(t *testing.T) {
	w := newWorld(t)
	w.addLeaves(t, w.log, "a", 2)
	w.witnesses[1].Stop()
	w.addLeaves(t, w.log, "b", 2)
	if errs := w.log.WitnessErrors(); len(errs) != 1 {
		t.Fatalf("want 1 refusal (w2 down), got %v", errs)
	}
	cp := w.log.Checkpoint()
	// 2 of 3 tolerates one witness down ...
	got, err := w.policy.VerifyCheckpoint(cp, witness.Options{})
	if err != nil || len(got.Cosignatures) != 2 {
		t.Fatalf("2 of 3 with w2 down: %v %+v", err, got)
	}
	// ... "all" does not
	all, err := witness.Parse([]byte(strings.Replace(w.text, "group g 2 ", "group g all ", 1)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = all.VerifyCheckpoint(cp, witness.Options{})
	qe := quorumError(t, err)
	if len(qe.Groups) != 1 || qe.Groups[0] != (witness.GroupResult{Group: "g", Have: 2, Need: 3}) {
		t.Errorf("groups %+v", qe.Groups)
	}
	want := []witness.Status{witness.OK, witness.Missing, witness.OK}
	for i, r := range qe.Witnesses {
		if r.Status != want[i] {
			t.Errorf("%s: %v, want %v", r.Witness, r.Status, want[i])
		}
	}
	t.Log(err)
	// a second witness down misses 2 of 3 as well
	w.witnesses[2].Stop()
	w.addLeaves(t, w.log, "c", 1)
	_, err = w.policy.VerifyCheckpoint(w.log.Checkpoint(), witness.Options{})
	if qe := quorumError(t, err); qe.Groups[0].Have != 1 {
		t.Errorf("two down: %v", err)
	}
}

func quorumError(t *testing.T, err error) *witness.QuorumError {
	t.Helper()
	var qe *witness.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("want a *QuorumError, got %v", err)
	}
	return qe
}

// A cosignature by a witness the policy does not name is ignored; a
// cosignature of another checkpoint does not count.
func TestQuorumMissedUnknownAndMovedCosignatures(t *testing.T) {
	w := newWorld(t)
	w.addLeaves(t, w.log, "a", 2)
	cpA := w.log.Checkpoint()
	w.addLeaves(t, w.log, "b", 1)
	cpB := w.log.Checkpoint()

	// a policy naming only w1 and a fresh key: w2 and w3 are unknown
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	ov, _ := witness.CosignatureVKey("other", other)
	lines := strings.Split(w.text, "\n")
	p, err := witness.Parse([]byte(lines[1] + "\n" + lines[2] + "\nwitness x " + ov + "\ngroup g 2 w1 x\nquorum g\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.VerifyCheckpoint(cpB, witness.Options{})
	qe := quorumError(t, err)
	if qe.Unknown != 2 || qe.Groups[0].Have != 1 {
		t.Errorf("unknown %d, groups %+v", qe.Unknown, qe.Groups)
	}

	// B's log signature with A's cosignature lines
	bodyB, sigsB := splitNote(t, cpB)
	_, sigsA := splitNote(t, cpA)
	moved := bodyB + "\n" + sigsB[0] + "\n" + strings.Join(sigsA[1:], "\n") + "\n"
	_, err = w.policy.VerifyCheckpoint([]byte(moved), witness.Options{})
	qe = quorumError(t, err)
	for _, r := range qe.Witnesses {
		if r.Status != witness.BadSignature {
			t.Errorf("%s: %v, want bad signature", r.Witness, r.Status)
		}
	}
	t.Log(err)
}

func splitNote(t *testing.T, n []byte) (string, []string) {
	t.Helper()
	body, sigs, ok := strings.Cut(string(n), "\n\n")
	if !ok {
		t.Fatalf("not a note: %q", n)
	}
	return body + "\n", strings.Split(strings.TrimSuffix(sigs, "\n"), "\n")
}

func TestQuorumMissedStaleCosignature(t *testing.T) {
	w := newWorld(t)
	w.addLeaves(t, w.log, "a", 2)
	cp := w.log.Checkpoint()
	later := time.Now().Add(2 * time.Hour)
	_, err := w.policy.VerifyCheckpoint(cp, witness.Options{MaxAge: time.Hour, Now: later})
	qe := quorumError(t, err)
	for _, r := range qe.Witnesses {
		if r.Status != witness.Stale {
			t.Errorf("%s: %v, want stale", r.Witness, r.Status)
		}
	}
	if !strings.Contains(err.Error(), "stale") {
		t.Errorf("message: %v", err)
	}
	// without an age limit, the same checkpoint verifies
	if _, err := w.policy.VerifyCheckpoint(cp, witness.Options{Now: later}); err != nil {
		t.Fatal(err)
	}
	// a clock far behind the witnesses: cosignatures from the future
	_, err = w.policy.VerifyCheckpoint(cp, witness.Options{MaxAge: time.Hour, Now: time.Now().Add(-time.Hour)})
	if qe := quorumError(t, err); qe.Witnesses[0].Status != witness.Future {
		t.Errorf("want future, got %+v", qe.Witnesses)
	}
}

// A log that forks: the key holder shows a second branch to some client.
// The witnesses have cosigned the first branch and refuse the second, so
// a client with no state and a 2-of-3 policy refuses it.
func TestForkRefusedByFreshClient(t *testing.T) {
	w := newWorld(t)
	w.addLeaves(t, w.log, "a", 4)
	if _, err := w.policy.VerifyCheckpoint(w.log.Checkpoint(), witness.Options{}); err != nil {
		t.Fatal(err)
	}
	fork, err := w.log.Fork(2)
	if err != nil {
		t.Fatal(err)
	}
	w.addLeaves(t, fork, "evil", 3)
	errs := fork.WitnessErrors()
	if len(errs) != 3 {
		t.Fatalf("want all 3 witnesses to refuse the fork, got %v", errs)
	}
	for _, e := range errs {
		var we *witness.WitnessError
		if !errors.As(e, &we) || (we.Status != 422 && we.Status != 409) {
			t.Errorf("refusal %v", e)
		}
		t.Log(e)
	}
	_, err = w.policy.VerifyCheckpoint(fork.Checkpoint(), witness.Options{})
	qe := quorumError(t, err)
	if qe.Groups[0].Have != 0 {
		t.Errorf("fork has cosignatures: %+v", qe)
	}
	// with "quorum none" (no witnesses) the same fork would pass
	none, _ := witness.Parse([]byte(strings.SplitN(w.text, "\n", 3)[1] + "\nquorum none\n"))
	if _, err := none.VerifyCheckpoint(fork.Checkpoint(), witness.Options{}); err != nil {
		t.Fatalf("quorum none: %v", err)
	}
	// the honest branch keeps growing, still witnessed
	w.addLeaves(t, w.log, "c", 1)
	if _, err := w.policy.VerifyCheckpoint(w.log.Checkpoint(), witness.Options{}); err != nil {
		t.Fatal(err)
	}
}

// The client against both real witness implementations: first contact,
// then a stale old size (409) resolved by one retry with a fresh
// consistency proof, then a fork (422).
func TestClientAgainstRealWitnesses(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	origin := witness.SigsumOrigin(pub)
	vkey, _ := witness.Ed25519VKey(origin, pub)
	procs := []*witnesstest.Witness{witnesstest.StartSigsum(t, pub), witnesstest.StartOmni(t, witnesstest.Log{Origin: origin, VKey: vkey})}
	text := "log " + vkey + "\n" + procs[0].PolicyLine("sw") + "\n" + procs[1].PolicyLine("omni") + "\ngroup g all sw omni\nquorum g\n"
	p, err := witness.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	l, err := sigsumlog.New(priv, nil) // pushes to nobody: the test does
	if err != nil {
		t.Fatal(err)
	}
	w := &world{}
	var proofs atomic.Int32 // AddCheckpointAll calls it concurrently
	proof := func(ctx context.Context, old uint64) ([][32]byte, error) {
		proofs.Add(1)
		cp, err := l.GetConsistencyProof(ctx, requests.ConsistencyProof{OldSize: old, NewSize: l.Size()})
		out := make([][32]byte, len(cp.Path))
		for i, h := range cp.Path {
			out[i] = h
		}
		return out, err
	}
	var c witness.Client
	push := func(old uint64) ([]byte, []error) {
		cp := l.Checkpoint()
		var lines [][]byte
		var errs []error
		for _, r := range c.AddCheckpointAll(context.Background(), p.Witnesses, cp, func(*witness.Witness) uint64 { return old }, proof) {
			if r.Err != nil {
				errs = append(errs, r.Err)
				continue
			}
			lines = append(lines, r.Lines)
		}
		m, err := witness.MergeCosignatures(cp, lines...)
		if err != nil {
			t.Fatal(err)
		}
		return m, errs
	}
	w.addLeaves(t, l, "a", 3)
	cp3, errs := push(0)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := p.VerifyCheckpoint(cp3, witness.Options{MaxAge: time.Minute}); err != nil {
		t.Fatal(err)
	}
	w.addLeaves(t, l, "b", 4)
	cp7, errs := push(0) // stale old size: each witness answers 409 "3"
	if len(errs) > 0 || proofs.Load() != 2 {
		t.Fatalf("errors %v, %d proofs fetched (want one per witness)", errs, proofs.Load())
	}
	if c, err := p.VerifyCheckpoint(cp7, witness.Options{MaxAge: time.Minute}); err != nil || c.Size != 7 {
		t.Fatal(err)
	}
	fork, _ := l.Fork(5)
	w.addLeaves(t, fork, "evil", 3)
	l = fork
	_, errs = push(7)
	for _, e := range errs {
		var we *witness.WitnessError
		if !errors.As(e, &we) || we.Status != 422 {
			t.Errorf("fork: %v", e)
		}
	}
	if len(errs) != 2 {
		t.Fatalf("fork cosigned: %v", errs)
	}
}

// A Rekor v1 checkpoint (ECDSA P-256, origin "<host> - <tree ID>") from the
// shared local Rekor stack, cosigned by a fresh omniwitness and verified
// by policy code that pins the Rekor key (read-only use of the stack).
func TestRekorV1CheckpointCosignedByOmniwitness(t *testing.T) {
	url, keyPath := testenv.Rekor(t)
	pemKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	type logInfo struct {
		SignedTreeHead string `json:"signedTreeHead"`
		TreeID         string `json:"treeID"`
		TreeSize       uint64 `json:"treeSize"`
	}
	read := func() logInfo {
		var info logInfo
		resp, err := http.Get(url + "/api/v1/log")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil {
			t.Fatal(err)
		}
		return info
	}
	info := read()
	cp := []byte(info.SignedTreeHead)
	origin, _, _ := strings.Cut(info.SignedTreeHead, "\n")
	_, sig, _ := strings.Cut(info.SignedTreeHead, "\n\n— ")
	host, _, _ := strings.Cut(sig, " ") // the key name: the Rekor server's host name
	vkey, err := witness.RekorV1VKey(host, pemKey)
	if err != nil {
		t.Fatal(err)
	}
	omni := witnesstest.StartOmni(t, witnesstest.Log{Origin: origin, VKey: vkey})
	p, err := witness.Parse([]byte("log " + vkey + " " + url + "\n" + omni.PolicyLine("omni") + "\nquorum omni\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.VerifyCheckpoint(cp, witness.Options{}); err == nil {
		t.Fatal("an uncosigned checkpoint met the quorum")
	}
	var c witness.Client
	lines, err := c.AddCheckpoint(context.Background(), &p.Witnesses[0], cp, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := witness.MergeCosignatures(cp, lines)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.VerifyCheckpoint(cosigned, witness.Options{Origin: host + " - " + info.TreeID, MaxAge: time.Minute})
	if err != nil {
		t.Fatalf("%v\n%s", err, cosigned)
	}
	if got.Size != info.TreeSize || got.Log.URL != url || len(got.Cosignatures) != 1 {
		t.Fatalf("%+v", got)
	}
	// Rekor re-signs its checkpoint (a fresh ECDSA signature) on every read;
	// the cosignature covers only the body, so it still counts on a copy
	// read later, as long as nobody added an entry meanwhile.
	if again := read(); again.TreeSize == info.TreeSize {
		if again.SignedTreeHead == info.SignedTreeHead {
			t.Log("Rekor returned a byte-identical checkpoint")
		}
		recopy, err := witness.MergeCosignatures([]byte(again.SignedTreeHead), lines)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.VerifyCheckpoint(recopy, witness.Options{}); err != nil {
			t.Fatalf("cosignature on the re-signed copy: %v", err)
		}
	} else {
		t.Logf("the shared log grew (%d -> %d): re-signed copy not checked", info.TreeSize, again.TreeSize)
	}
	t.Logf("Rekor v1 %q size %d cosigned by %s", origin, got.Size, omni.KeyName)
}
