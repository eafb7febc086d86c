package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/memlog"
	"github.com/bintrans/bintrans/verify"
)

func wantStatuses(t *testing.T, res []verify.Result, want map[string]verify.Status) {
	t.Helper()
	for _, r := range res {
		w, ok := want[r.Artifact.Filename]
		if !ok {
			w = verify.StatusOK
		}
		if r.Status != w {
			t.Errorf("%s: status %s (%v), want %s", r.Artifact.Filename, r.Status, r.Err, w)
		}
		if r.Status != verify.StatusOK && r.Err == nil {
			t.Errorf("%s: status %s without an error", r.Artifact.Filename, r.Status)
		}
		if r.Status == verify.StatusOK && (r.Entry == nil || r.KeyID == "" || r.SHA256 == "") {
			t.Errorf("%s: ok without evidence: %+v", r.Artifact.Filename, r)
		}
	}
}

func TestVerifyAllOfflineStatuses(t *testing.T) {
	r := newRepo(t, 12, true)
	_, otherPK := testKey(t, 7)
	osk, _ := testKey(t, 7)
	_ = otherPK
	ps := r.pkgs
	delete(r.src.Sigs, ps[0].Filename)                                                 // missing signature
	r.src.Sigs[ps[1].Filename] = []byte("garbage")                                     // malformed
	r.src.Sigs[ps[2].Filename] = r.pkgs[3].T                                           // bad signature (other message)
	r.src.Sigs[ps[4].Filename], _ = verify.SignPackage(osk, ps[4].SHA, ps[4].Filename) // wrong key
	r.src.Sigs[ps[5].Filename], _ = verify.SignPackage(r.sk, ps[5].SHA, "renamed.pkg.tar.zst")
	delete(r.src.Bundles, ps[6].Filename)                         // missing bundle
	r.src.Bundles[ps[7].Filename] = r.src.Bundles[ps[8].Filename] // bundle of another package
	r.src.Bundles[ps[9].Filename] = []byte("<html>502</html>")    // invalid bundle
	arts := r.arts(true)
	arts[10].SHA256 = hexOf("what the db says") // hash mismatch with the file
	arts[11].Open = func() (io.ReadCloser, error) { return nil, errors.New("EIO") }

	var progress []int
	v := r.verifier(t, verify.Policy{Offline: true, Concurrency: 3}, nil)
	v.Progress = func(done, total int, _ verify.Result) { progress = append(progress, done) }
	res, err := v.VerifyAll(context.Background(), arts)
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]verify.Status{
		ps[0].Filename:  verify.StatusMissingSignature,
		ps[1].Filename:  verify.StatusMalformedSignature,
		ps[2].Filename:  verify.StatusBadSignature,
		ps[4].Filename:  verify.StatusWrongKey,
		ps[5].Filename:  verify.StatusCommentMismatch,
		ps[6].Filename:  verify.StatusMissingBundle,
		ps[7].Filename:  verify.StatusBundleInvalid,
		ps[9].Filename:  verify.StatusBundleInvalid,
		ps[10].Filename: verify.StatusHashMismatch,
		ps[11].Filename: verify.StatusUnavailable,
	})
	var hm *verify.HashMismatchError
	if !errors.As(res[10].Err, &hm) || hm.Expected != arts[10].SHA256 || hm.Got != ps[10].SHA {
		t.Fatalf("hash mismatch evidence: %v", res[10].Err)
	}
	var ee *rekorv1.EntryError
	if !errors.As(res[7].Err, &ee) || ee.Step != rekorv1.StepBody {
		t.Fatalf("swapped bundle: %v", res[7].Err)
	}
	if len(progress) != len(arts) || progress[len(progress)-1] != len(arts) {
		t.Fatalf("progress calls %v", progress)
	}
	for op, n := range r.log.Calls() {
		t.Fatalf("offline run asked the log (%s ×%d)", op, n)
	}
	if r.store.Stores != 0 {
		t.Fatal("offline run stored a checkpoint")
	}
}

// TestVerifyAllOnlineBundles: online with bundles, a run costs the
// current checkpoint and one consistency proof per distinct older tree
// head (the bundles' and the stored one): no entry is fetched.
func TestVerifyAllOnlineBundles(t *testing.T) {
	r := newRepo(t, 25, true)
	v := r.verifier(t, verify.Policy{}, nil)
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if got := r.log.Calls(); got["checkpoint"] != 1 || len(got) != 1 {
		t.Fatalf("calls %v, want one checkpoint (the bundles' tree head is the current one)", got)
	}
	cp, err := r.log.Key.VerifyCheckpoint(r.store.CP)
	if r.store.Stores != 1 || err != nil || cp.Size != 25 {
		t.Fatalf("stores %d, stored %v %v", r.store.Stores, cp, err)
	}

	// The log grows; the next run proves the bundles' (and the stored)
	// tree head of 25 consistent with 30: one proof for both.
	for i := 25; i < 30; i++ {
		p := memlog.NewPackage(t, r.sk, i)
		r.log.AddSigned(t, p.T, r.pk, p.SHA)
	}
	res, err = v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if got := r.log.Calls(); got["checkpoint"] != 2 || got["consistency"] != 1 || len(got) != 2 {
		t.Fatalf("calls after two runs %v, want 2 checkpoints and 1 consistency proof", got)
	}
	cp, _ = r.log.Key.VerifyCheckpoint(r.store.CP)
	if cp.Size != 30 {
		t.Fatalf("stored size %d, want 30", cp.Size)
	}
	wantIdentity(t, res[0].Entry, r.pkgs[0].Entry)
}

// wantIdentity: a Result identifies its verified entry.
func wantIdentity(t *testing.T, got *verify.EntryID, want *rekorv1.Entry) {
	t.Helper()
	if got == nil {
		t.Fatal("no entry")
	}
	if *got != want.Identity() {
		t.Fatalf("entry identity %+v, want %+v", *got, want.Identity())
	}
}

// TestVerifyAllKeepsEntryIdentityOnly: offline (from the bundle) and
// online (the bundle, and a bundle-less lookup), a Result identifies the
// entry, and the Progress callback already sees it.
func TestVerifyAllKeepsEntryIdentityOnly(t *testing.T) {
	for _, offline := range []bool{true, false} {
		t.Run(fmt.Sprint("offline=", offline), func(t *testing.T) {
			r := newRepo(t, 4, true)
			if !offline {
				delete(r.src.Bundles, r.pkgs[3].Filename)
			}
			v := r.verifier(t, verify.Policy{Offline: offline}, nil)
			var mu sync.Mutex
			v.Progress = func(_, _ int, x verify.Result) {
				mu.Lock()
				defer mu.Unlock()
				if x.Status == "" && x.Entry == nil {
					t.Errorf("%s: progress without the entry", x.Artifact.Filename)
				}
			}
			res, err := v.VerifyAll(context.Background(), r.arts(false))
			if err != nil {
				t.Fatal(err)
			}
			wantStatuses(t, res, nil)
			for i, x := range res {
				wantIdentity(t, x.Entry, r.pkgs[i].Entry)
			}
		})
	}
}

func TestVerifyAllOnlineWithoutBundles(t *testing.T) {
	r := newRepo(t, 8, false)
	// A seed-signed `.t` that was never logged.
	lone := memlog.NewPackage(t, r.sk, 100)
	r.src.Sigs[lone.Filename] = lone.T
	r.pkgs = append(r.pkgs, lone)

	v := r.verifier(t, verify.Policy{}, nil)
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]verify.Status{lone.Filename: verify.StatusNotInLog})
	var nl *verify.NotInLogError
	if !errors.As(res[8].Err, &nl) || nl.LeafHash == "" || nl.SearchHash != hexOf(lone.SHA) {
		t.Fatalf("not-in-log evidence: %v", res[8].Err)
	}
	if r.log.Count("search") != 1 {
		t.Fatalf("%d index searches; the leaf hash should find the 8 logged entries directly", r.log.Count("search"))
	}

	// Fallback: the leaf-hash lookup finds nothing (older server), the
	// index search does.
	r.log.HideLeafLookups = true
	r.pkgs = r.pkgs[:8]
	res, err = v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if r.log.Count("search") != 9 {
		t.Fatalf("%d searches", r.log.Count("search"))
	}
}

// TestVerifyAllEntryWithAnotherKey: the log's index answers with an entry
// for the same message signed by another key: rejected, not-in-log.
func TestVerifyAllEntryWithAnotherKey(t *testing.T) {
	r := newRepo(t, 2, false)
	osk, opk := testKey(t, 5)
	p := memlog.NewPackage(t, r.sk, 50)
	ot, _ := verify.SignPackage(osk, p.SHA, p.Filename)
	r.log.AddSigned(t, ot, opk, p.SHA) // logged under the other key only
	r.src.Sigs[p.Filename] = p.T
	r.pkgs = append(r.pkgs, p)
	v := r.verifier(t, verify.Policy{}, nil)
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]verify.Status{p.Filename: verify.StatusNotInLog})
	var nl *verify.NotInLogError
	var ee *rekorv1.EntryError
	if !errors.As(res[2].Err, &nl) || len(nl.Candidates) != 1 || !errors.As(nl.Candidates[0], &ee) || ee.Step != rekorv1.StepBody {
		t.Fatalf("evidence: %v", res[2].Err)
	}
}

func TestVerifyAllLogUnavailable(t *testing.T) {
	for _, bundles := range []bool{true, false} {
		t.Run(fmt.Sprint("bundles=", bundles), func(t *testing.T) {
			r := newRepo(t, 4, bundles)
			r.log.Down = errors.New("dial tcp 127.0.0.1:3000: connection refused")
			delete(r.src.Sigs, r.pkgs[3].Filename)
			v := r.verifier(t, verify.Policy{}, nil)
			res, err := v.VerifyAll(context.Background(), r.arts(false))
			var lu *verify.LogUnavailableError
			if !errors.As(err, &lu) {
				t.Fatalf("err %v, want *verify.LogUnavailableError", err)
			}
			// The package without a .t is missing-signature when it was
			// judged before the first log failure cancelled the batch,
			// and unverified with that failure as the cause otherwise.
			want := map[string]verify.Status{
				r.pkgs[0].Filename: verify.StatusUnavailable, r.pkgs[1].Filename: verify.StatusUnavailable,
				r.pkgs[2].Filename: verify.StatusUnavailable, r.pkgs[3].Filename: verify.StatusMissingSignature,
			}
			if res[3].Status == verify.StatusUnavailable && strings.HasPrefix(res[3].Err.Error(), "not verified: ") && errors.Is(res[3].Err, lu) {
				want[r.pkgs[3].Filename] = verify.StatusUnavailable
			}
			wantStatuses(t, res, want)
			if r.store.Stores != 0 {
				t.Fatal("stored a checkpoint")
			}
		})
	}
}

func TestVerifyAllCurrentCheckpointByAnotherKey(t *testing.T) {
	r := newRepo(t, 3, true)
	impostor := memlog.New(t)
	for i := range 3 {
		impostor.Add([]byte(fmt.Sprintf("impostor entry %d", i)))
	}
	r.log.CheckpointHook = func([]byte) []byte { return impostor.CheckpointAt(3) }
	res, err := r.verifier(t, verify.Policy{}, nil).VerifyAll(context.Background(), r.arts(false))
	var lu *verify.LogUnavailableError
	var ce *verify.CheckpointError
	if !errors.As(err, &lu) || !errors.As(err, &ce) {
		t.Fatalf("err %v", err)
	}
	wantStatuses(t, res, map[string]verify.Status{r.pkgs[0].Filename: verify.StatusUnavailable, r.pkgs[1].Filename: verify.StatusUnavailable, r.pkgs[2].Filename: verify.StatusUnavailable})
	if r.store.Stores != 0 {
		t.Fatal("stored")
	}
}

// securityCase runs a batch that must end in a SECURITY ERROR.
func securityCase(t *testing.T, r *repo, wantReason string) *verify.SecurityError {
	t.Helper()
	before := append([]byte(nil), r.store.CP...)
	stores := r.store.Stores
	res, err := r.verifier(t, verify.Policy{}, nil).VerifyAll(context.Background(), r.arts(false))
	var se *verify.SecurityError
	if !errors.As(err, &se) {
		t.Fatalf("err %v, want *verify.SecurityError", err)
	}
	if !strings.Contains(se.Reason, wantReason) {
		t.Fatalf("reason %q, want %q", se.Reason, wantReason)
	}
	msg := se.Error()
	if !strings.HasPrefix(msg, "SECURITY ERROR") || len(se.Old) == 0 || len(se.New) == 0 {
		t.Fatalf("message:\n%s", msg)
	}
	for _, head := range [][]byte{se.Old, se.New} {
		first := strings.SplitN(string(head), "\n", 3)
		if !strings.Contains(msg, first[0]+"\n\t"+first[1]) {
			t.Fatalf("message lacks tree head %q:\n%s", first[:2], msg)
		}
	}
	for _, x := range res {
		if x.Status != verify.StatusLogInconsistent {
			t.Fatalf("%s: %s, want log-inconsistent", x.Artifact.Filename, x.Status)
		}
	}
	if r.store.Stores != stores || string(r.store.CP) != string(before) {
		t.Fatal("checkpoint store changed after a security error")
	}
	return se
}

func TestVerifyAllRollback(t *testing.T) {
	r := newRepo(t, 6, true)
	// The client saw size 6 before; now the log serves its size-4 head.
	r.store.CP = r.log.CheckpointAt(6)
	r.log.CheckpointHook = func([]byte) []byte { return r.log.CheckpointAt(4) }
	se := securityCase(t, r, "ROLLBACK")
	if !strings.Contains(string(se.New), "\n4\n") {
		t.Fatalf("new head %q", se.New)
	}
}

func TestVerifyAllStaleCheckpoint(t *testing.T) {
	// Entries are proven at size 6, then the "current" checkpoint is older.
	r := newRepo(t, 6, false)
	r.log.CheckpointHook = func([]byte) []byte { return r.log.CheckpointAt(5) }
	securityCase(t, r, "ROLLBACK")
}

// fork builds a second log with the same key and origin whose first n
// entries equal r's and whose later history differs.
func fork(t *testing.T, r *repo, n int, extra ...string) *memlog.Log {
	f := r.log.Fork(t, n)
	for _, x := range extra {
		p := memlog.NewPackage(t, r.sk, 1000+len(x))
		p.SHA = hexOf(x)
		p.T, _ = verify.SignPackage(r.sk, p.SHA, p.Filename)
		f.AddSigned(t, p.T, r.pk, p.SHA)
	}
	return f
}

func TestVerifyAllSplitViewStored(t *testing.T) {
	r := newRepo(t, 5, true)
	// Extend the honest log, remember its head; the log then shows another
	// history of the same size to this client.
	for i := 5; i < 7; i++ {
		p := memlog.NewPackage(t, r.sk, i)
		r.log.AddSigned(t, p.T, r.pk, p.SHA)
	}
	r.store.CP = r.log.CheckpointAt(7)
	// The log now serves, consistently in itself, another history.
	r.log = fork(t, r, 5, "evil-a", "evil-b")
	securityCase(t, r, "same tree size 7 but different roots")
}

func TestVerifyAllForkedBundleCheckpoint(t *testing.T) {
	// Bundles were made by the honest log at size 6; the log now serves a
	// fork (same first 5 entries) at size 8: the bundles' checkpoint is not
	// consistent with the current tree.
	r := newRepo(t, 5, false)
	p := memlog.NewPackage(t, r.sk, 5)
	r.log.AddSigned(t, p.T, r.pk, p.SHA)
	for i, q := range r.pkgs {
		r.src.Bundles[q.Filename] = bundleOf(t, r.log.EntryAt(int64(i), 6))
	}
	f := fork(t, r, 5, "x", "yy", "zzz")
	r.log = f
	se := securityCase(t, r, "not consistent")
	if se.Err == nil {
		t.Fatal("no proof error attached")
	}
}

func TestVerifyAllBadConsistencyProof(t *testing.T) {
	r := newRepo(t, 6, true)
	r.store.CP = r.log.CheckpointAt(3)
	r.log.ConsistencyHook = func(p [][]byte) [][]byte { p[0][0] ^= 1; return p }
	securityCase(t, r, "stored checkpoint (tree size 3) is not consistent")
}

func TestVerifyAllOriginChange(t *testing.T) {
	r := newRepo(t, 4, true)
	r.store.CP = r.log.CheckpointAt(4)
	r.log.Origin = "rekor.test - 5678" // the log restarted with another tree
	r.store.CP = append([]byte(nil), r.store.CP...)
	securityCase(t, r, "origin")
}

// TestVerifyAllMixedTreeSizes: one batch whose bundles prove their
// entries at different tree sizes (sign runs that were not settled, or
// several runs): each bundle verified against its own checkpoint and each
// size proven consistent with the current tree, once.
func TestVerifyAllMixedTreeSizes(t *testing.T) {
	r := newRepo(t, 12, true)
	for i, p := range r.pkgs {
		size := int64(12 - i%3) // sizes 10, 11, 12
		if int64(i) < size {
			r.src.Bundles[p.Filename] = bundleOf(t, r.log.EntryAt(int64(i), size))
		}
	}
	r.store.CP = r.log.CheckpointAt(2)
	res, err := r.verifier(t, verify.Policy{}, nil).VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	// 10 and 11 from the bundles, 2 from the store (12 is current).
	if got := r.log.Count("consistency"); got != 3 {
		t.Fatalf("%d consistency proofs, want 3", got)
	}
	// A lie in one of them is caught.
	r.log.ConsistencyHook = func(p [][]byte) [][]byte { p[len(p)-1][3] ^= 1; return p }
	r.store.CP = r.log.CheckpointAt(2)
	securityCase(t, r, "not consistent")
}

// TestVerifyAllEntryAnswersNotConsulted: the log would serve other entries
// (another integrated time with a genuine SET, another body) at the
// bundled entries' indexes: online, nothing asks it for them (a bundle's
// inclusion proof and the consistency of its checkpoint with the current
// tree prove the entry in that tree), so nothing changes. Before the online
// floor (issue 17) this was a SECURITY ERROR found by re-fetching every
// bundled entry; a log that hides an entry its signed tree holds now goes
// unseen by clients, and remains the monitor's to find.
func TestVerifyAllEntryAnswersNotConsulted(t *testing.T) {
	r := newRepo(t, 4, true)
	r.log.EntryHook = func(e *rekorv1.Entry) *rekorv1.Entry {
		c := e.Clone()
		c.IntegratedTime++
		c.SET = r.log.Sign(memlog.SETPayload(c))
		return c
	}
	res, err := r.verifier(t, verify.Policy{}, nil).VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if n := r.log.Count("index") + r.log.Count("uuid") + r.log.Count("search"); n != 0 {
		t.Fatalf("%d entry lookups for bundled packages", n)
	}
}

type fakeRebuilders struct {
	calls   int
	confirm map[string]int
}

func (f *fakeRebuilders) Verdicts(ctx context.Context, arts []verify.Artifact, sums []string) []verify.RebuildVerdict {
	f.calls++
	out := make([]verify.RebuildVerdict, len(arts))
	for i, a := range arts {
		for j := 0; j < f.confirm[a.Filename]; j++ {
			out[i].Confirmed = append(out[i].Confirmed, fmt.Sprintf("https://r%d.example", j))
		}
	}
	return out
}

func TestVerifyAllRebuilders(t *testing.T) {
	r := newRepo(t, 4, true)
	delete(r.src.Sigs, r.pkgs[3].Filename)
	rb := &fakeRebuilders{confirm: map[string]int{r.pkgs[0].Filename: 2, r.pkgs[1].Filename: 1}}
	res, err := r.verifier(t, verify.Policy{Offline: true, RequiredRebuildConfirms: 2}, rb).VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]verify.Status{
		r.pkgs[1].Filename: verify.StatusRebuildUnconfirmed, r.pkgs[2].Filename: verify.StatusRebuildUnconfirmed,
		r.pkgs[3].Filename: verify.StatusMissingSignature,
	})
	if rb.calls != 1 {
		t.Fatalf("%d Verdicts calls", rb.calls)
	}
	var re *verify.RebuildError
	if !errors.As(res[1].Err, &re) || len(re.Confirmed) != 1 || re.Required != 2 || res[1].Rebuild == nil {
		t.Fatalf("evidence: %v %+v", res[1].Err, res[1].Rebuild)
	}
	if res[0].Rebuild == nil || len(res[0].Rebuild.Confirmed) != 2 {
		t.Fatal("verdict not attached to the ok result")
	}
	if res[3].Rebuild != nil {
		t.Fatal("rebuilders asked about a package whose signature failed")
	}
	if _, err := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{r.pk}, Log: r.log.Key, Offline: true, RequiredRebuildConfirms: 1}, r.src, nil, nil, nil); err == nil {
		t.Fatal("threshold without rebuilders accepted")
	}
}

func TestVerifyAllCancelled(t *testing.T) {
	r := newRepo(t, 5, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := r.verifier(t, verify.Policy{}, nil).VerifyAll(ctx, r.arts(false))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	for _, x := range res {
		if x.OK() || x.Artifact.Filename == "" {
			t.Fatalf("%+v", x)
		}
	}
}

func TestNewVerifierRejects(t *testing.T) {
	r := newRepo(t, 1, true)
	for name, p := range map[string]verify.Policy{
		"no keys":    {Log: r.log.Key, Offline: true},
		"no log key": {Keys: []verify.PublicKey{r.pk}, Offline: true},
		"zero key":   {Keys: []verify.PublicKey{{}}, Log: r.log.Key, Offline: true},
	} {
		if _, err := verify.NewVerifier(p, r.src, nil, nil, nil); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{r.pk}, Log: r.log.Key}, r.src, nil, nil, nil); err == nil {
		t.Error("online without a log accepted")
	}
}

// TestVerifyAllOfflineStoredFork: offline, a bundle checkpoint of the same
// size as the stored one but another root is a split view too.
func TestVerifyAllOfflineStoredFork(t *testing.T) {
	r := newRepo(t, 5, true)
	f := fork(t, r, 4, "other")
	r.store.CP = f.CheckpointAt(5)
	res, err := r.verifier(t, verify.Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false))
	var se *verify.SecurityError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "same tree size 5") {
		t.Fatalf("err %v", err)
	}
	for _, x := range res {
		if x.Status != verify.StatusLogInconsistent {
			t.Fatalf("%s: %s", x.Artifact.Filename, x.Status)
		}
	}
	// The same stored head as the bundles': fine, and nothing is written offline.
	r.store.CP = r.log.CheckpointAt(5)
	if _, err := r.verifier(t, verify.Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false)); err != nil || r.store.Stores != 0 {
		t.Fatalf("err %v, stores %d", err, r.store.Stores)
	}
}

// TestVerifyAllOfflineBatchFork: offline, with nothing stored, two bundles
// of one batch whose checkpoints have the same size and different roots
// are a split view: every package fails, the evidence names both bundles.
func TestVerifyAllOfflineBatchFork(t *testing.T) {
	r := newRepo(t, 5, true)
	f := fork(t, r, 4, "other")
	b, err := rekorv1.MarshalBundle(f.EntryAt(0, 5)) // the same entry, proven in the fork
	if err != nil {
		t.Fatal(err)
	}
	r.src.Bundles[r.pkgs[0].Filename] = b
	res, err := r.verifier(t, verify.Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false))
	var se *verify.SecurityError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "two proof bundles' checkpoints have the same tree size 5 but different roots") {
		t.Fatalf("err %v", err)
	}
	msg := se.Error()
	if strings.Count(msg, "signed tree head in the proof bundle of pkg") != 2 || bytes.Equal(se.Old, se.New) {
		t.Fatalf("evidence does not name both bundles:\n%s", msg)
	}
	for _, x := range res {
		if x.Status != verify.StatusLogInconsistent {
			t.Fatalf("%s: %s", x.Artifact.Filename, x.Status)
		}
	}
	if len(r.log.Calls())+len(f.Calls()) != 0 || r.store.Stores != 0 {
		t.Fatalf("offline run asked the log (%v %v) or stored (%d)", r.log.Calls(), f.Calls(), r.store.Stores)
	}
}

// TestVerifyAllOfflineOtherSizes: offline cannot compare checkpoints of
// different sizes. A bundle older than the stored checkpoint is normal and
// passes; so does one from a fork larger than anything stored — the
// documented limit of offline mode — and the same batch online is a
// SECURITY ERROR.
func TestVerifyAllOfflineOtherSizes(t *testing.T) {
	r := newRepo(t, 5, true)
	for i := 5; i < 7; i++ {
		p := memlog.NewPackage(t, r.sk, i)
		r.log.AddSigned(t, p.T, r.pk, p.SHA)
	}
	r.store.CP = r.log.CheckpointAt(7)
	if res, err := r.verifier(t, verify.Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false)); err != nil {
		t.Fatalf("bundles (size 5) older than the stored checkpoint (size 7): %v", err)
	} else {
		wantStatuses(t, res, nil)
	}

	f := fork(t, r, 4, "x", "yy", "zzz", "wwww") // size 8, beyond the stored 7
	b, err := rekorv1.MarshalBundle(f.EntryAt(0, 8))
	if err != nil {
		t.Fatal(err)
	}
	r.src.Bundles[r.pkgs[0].Filename] = b
	if _, err := r.verifier(t, verify.Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false)); err != nil {
		t.Fatalf("offline compared checkpoints of different sizes: %v", err)
	}
	var se *verify.SecurityError
	if _, err := r.verifier(t, verify.Policy{}, nil).VerifyAll(context.Background(), r.arts(false)); !errors.As(err, &se) {
		t.Fatalf("online: err %v, want *verify.SecurityError", err)
	}
}

// failingStore is a verify.CheckpointStore whose Load fails.
type failingStore struct{ err error }

func (s failingStore) Load(context.Context) ([]byte, error) { return nil, s.err }
func (s failingStore) Store(context.Context, []byte) error  { return errors.New("not expected") }

// TestVerifyAllOfflineUnusableStore: a stored checkpoint that cannot be
// read, or does not verify under the pinned log key, fails the offline run
// (as online): it is not skipped.
func TestVerifyAllOfflineUnusableStore(t *testing.T) {
	r := newRepo(t, 3, true)
	pol := verify.Policy{Keys: []verify.PublicKey{r.pk}, Log: r.log.Key, Offline: true}
	v, err := verify.NewVerifier(pol, r.src, nil, failingStore{errors.New("disk on fire")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err %v", err)
	}
	for _, x := range res {
		if x.OK() {
			t.Fatalf("%s accepted with an unreadable store", x.Artifact.Filename)
		}
	}

	other := memlog.New(t)
	other.Add([]byte("another log"))
	r.store.CP = other.CheckpointAt(1)
	res, err = r.verifier(t, verify.Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false))
	var ce *verify.CheckpointError
	if !errors.As(err, &ce) {
		t.Fatalf("stored checkpoint of another log: err %v", err)
	}
	for _, x := range res {
		if x.OK() {
			t.Fatalf("%s accepted with a stored checkpoint of another log", x.Artifact.Filename)
		}
	}
}

// trickleLog answers every entry lookup after delay with an error, as a
// log that never answers within the client's per-request timeout does;
// it counts the lookups and notes when one ended because ctx did.
type trickleLog struct {
	rekorv1.API
	delay     time.Duration
	mu        sync.Mutex
	lookups   int
	cancelled int
}

func (l *trickleLog) EntryByUUID(ctx context.Context, uuid string) (*rekorv1.Entry, error) {
	l.mu.Lock()
	l.lookups++
	l.mu.Unlock()
	t := time.NewTimer(l.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, fmt.Errorf("GET entry %s: timeout awaiting response headers", uuid[:8])
	case <-ctx.Done():
		l.mu.Lock()
		l.cancelled++
		l.mu.Unlock()
		return nil, ctx.Err()
	}
}

// TestVerifyAllCancelsOnFirstLogFailure: per-request timeouts do not add
// up. The first package that finds the log unavailable ends the lookups
// of the batch: 16 packages at 2 at a time take one timeout, not eight,
// and every other package is unverified with that cause.
func TestVerifyAllCancelsOnFirstLogFailure(t *testing.T) {
	r := newRepo(t, 16, false)
	const delay = 400 * time.Millisecond
	lg := &trickleLog{API: r.log, delay: delay}
	v, err := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{r.pk}, Log: r.log.Key, Concurrency: 2}, r.src, rekorv1.NewOnline(lg, r.log.Key), r.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	took := time.Since(start)
	var lu *verify.LogUnavailableError
	if !errors.As(err, &lu) {
		t.Fatalf("err %v, want *verify.LogUnavailableError", err)
	}
	if took > 4*delay {
		t.Errorf("took %v for 16 packages at 2 at a time with a %v log timeout: the first failure did not cancel the batch", took, delay)
	}
	if lg.lookups > 2 {
		t.Errorf("%d lookups started, want at most 2 (the first failure stops the batch)", lg.lookups)
	}
	// The packages whose lookups timed out (the two in flight, when both
	// ran out at once) carry their own failure; every other one is
	// unverified with the first.
	own, cut := 0, 0
	for _, x := range res {
		if x.Status != verify.StatusUnavailable {
			t.Errorf("%s: %s (%v), want unavailable", x.Artifact.Filename, x.Status, x.Err)
		}
		var mine *verify.LogUnavailableError
		switch {
		case errors.As(x.Err, &mine) && mine == lu && !strings.HasPrefix(x.Err.Error(), "not verified"):
			own++
		case errors.As(x.Err, &mine) && strings.Contains(mine.Error(), "timeout awaiting") && !strings.HasPrefix(x.Err.Error(), "not verified"):
			own++ // timed out on its own, at the same moment
		case strings.HasPrefix(x.Err.Error(), "not verified: transparency log unavailable") && errors.Is(x.Err, lu):
			cut++
		default:
			t.Errorf("%s: %v, want its own timeout or \"not verified: <the first failure>\"", x.Artifact.Filename, x.Err)
		}
	}
	if own < 1 || own > 2 || own+cut != len(res) {
		t.Errorf("%d packages with their own failure, %d unverified with the first one", own, cut)
	}
	t.Logf("16 packages, 2 at a time, %v per-request timeout: %v, %d lookups", delay, took.Round(time.Millisecond), lg.lookups)
}

// runDeadline is the cause a command gives its run's context.
type runDeadline struct{}

func (runDeadline) Error() string { return "run deadline exceeded" }

// TestVerifyAllRunDeadline: a run whose context ends with a cause reports
// that cause for every package not judged, never a success.
func TestVerifyAllRunDeadline(t *testing.T) {
	r := newRepo(t, 6, false)
	lg := &trickleLog{API: r.log, delay: time.Hour}
	v, err := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{r.pk}, Log: r.log.Key, Concurrency: 2}, r.src, rekorv1.NewOnline(lg, r.log.Key), r.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, runDeadline{})
	defer cancel()
	start := time.Now()
	res, err := v.VerifyAll(ctx, r.arts(false))
	if !errors.Is(err, runDeadline{}) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v, want the run's cause", err, time.Since(start))
	}
	for _, x := range res {
		if x.OK() || !errors.Is(x.Err, runDeadline{}) || !strings.HasPrefix(x.Err.Error(), "not verified: run deadline exceeded") {
			t.Errorf("%s: %s %v", x.Artifact.Filename, x.Status, x.Err)
		}
	}
	if r.store.Stores != 0 {
		t.Error("a run cut short stored a checkpoint")
	}
}
