package verify

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

	"github.com/jedisct1/go-minisign"
)

// repo is a signed, logged test repository: packages, their `.t` and
// bundles in a memSource, the log, a checkpoint store.
type repo struct {
	log   *testLog
	src   *memSource
	store *memStore
	sk    *minisign.PrivateKey
	pk    PublicKey
	pkgs  []*pkg
}

func newRepo(t testing.TB, n int, bundles bool) *repo {
	t.Helper()
	r := &repo{log: newTestLog(t), src: newMemSource(), store: &memStore{}}
	r.sk, r.pk = testKey(t, 1)
	for i := 0; i < n; i++ {
		p := newPkg(t, r.sk, i)
		r.log.addSigned(t, p.t, r.pk, p.sha)
		r.pkgs = append(r.pkgs, p)
		r.src.sigs[p.filename] = p.t
	}
	for i, p := range r.pkgs {
		p.entry = r.log.entryAt(int64(i), int64(n))
		if bundles {
			b, err := MarshalBundle(p.entry)
			if err != nil {
				t.Fatal(err)
			}
			r.src.bundles[p.filename] = b
		}
	}
	return r
}

func (r *repo) arts(open bool) []Artifact {
	a := make([]Artifact, len(r.pkgs))
	for i, p := range r.pkgs {
		a[i] = p.artifact(open)
	}
	return a
}

func (r *repo) verifier(t testing.TB, p Policy, rb Rebuilders) *Verifier {
	t.Helper()
	p.Keys = append(p.Keys, r.pk)
	p.LogKey = r.log.key
	v, err := NewVerifier(p, r.src, r.log, r.store, rb)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantStatuses(t *testing.T, res []Result, want map[string]Status) {
	t.Helper()
	for _, r := range res {
		w, ok := want[r.Artifact.Filename]
		if !ok {
			w = StatusOK
		}
		if r.Status != w {
			t.Errorf("%s: status %s (%v), want %s", r.Artifact.Filename, r.Status, r.Err, w)
		}
		if r.Status != StatusOK && r.Err == nil {
			t.Errorf("%s: status %s without an error", r.Artifact.Filename, r.Status)
		}
		if r.Status == StatusOK && (r.Entry == nil || r.KeyID == "" || r.SHA256 == "") {
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
	delete(r.src.sigs, ps[0].filename)                                          // missing signature
	r.src.sigs[ps[1].filename] = []byte("garbage")                              // malformed
	r.src.sigs[ps[2].filename] = r.pkgs[3].t                                    // bad signature (other message)
	r.src.sigs[ps[4].filename], _ = SignPackage(osk, ps[4].sha, ps[4].filename) // wrong key
	r.src.sigs[ps[5].filename], _ = SignPackage(r.sk, ps[5].sha, "renamed.pkg.tar.zst")
	delete(r.src.bundles, ps[6].filename)                         // missing bundle
	r.src.bundles[ps[7].filename] = r.src.bundles[ps[8].filename] // bundle of another package
	r.src.bundles[ps[9].filename] = []byte("<html>502</html>")    // invalid bundle
	arts := r.arts(true)
	arts[10].SHA256 = hexOf("what the db says") // hash mismatch with the file
	arts[11].Open = func() (io.ReadCloser, error) { return nil, errors.New("EIO") }

	var progress []int
	v := r.verifier(t, Policy{Offline: true, Concurrency: 3}, nil)
	v.Progress = func(done, total int, _ Result) { progress = append(progress, done) }
	res, err := v.VerifyAll(context.Background(), arts)
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]Status{
		ps[0].filename:  StatusMissingSignature,
		ps[1].filename:  StatusMalformedSignature,
		ps[2].filename:  StatusBadSignature,
		ps[4].filename:  StatusWrongKey,
		ps[5].filename:  StatusCommentMismatch,
		ps[6].filename:  StatusMissingBundle,
		ps[7].filename:  StatusBundleInvalid,
		ps[9].filename:  StatusBundleInvalid,
		ps[10].filename: StatusHashMismatch,
		ps[11].filename: StatusUnavailable,
	})
	var hm *HashMismatchError
	if !errors.As(res[10].Err, &hm) || hm.Expected != arts[10].SHA256 || hm.Got != ps[10].sha {
		t.Fatalf("hash mismatch evidence: %v", res[10].Err)
	}
	var ee *EntryError
	if !errors.As(res[7].Err, &ee) || ee.Step != StepBody {
		t.Fatalf("swapped bundle: %v", res[7].Err)
	}
	if len(progress) != len(arts) || progress[len(progress)-1] != len(arts) {
		t.Fatalf("progress calls %v", progress)
	}
	for op, n := range r.log.calls {
		t.Fatalf("offline run asked the log (%s ×%d)", op, n)
	}
	if r.store.stores != 0 {
		t.Fatal("offline run stored a checkpoint")
	}
}

func TestVerifyAllOnlineBundles(t *testing.T) {
	r := newRepo(t, 25, true)
	v := r.verifier(t, Policy{IndexBatch: 10}, nil)
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if got := r.log.count("index"); got != 3 {
		t.Fatalf("%d EntriesByIndex calls for 25 entries in batches of 10", got)
	}
	if r.log.count("uuid")+r.log.count("search") != 0 {
		t.Fatal("bundled entries were looked up one by one")
	}
	if r.store.stores != 1 || string(r.store.cp) != string(r.log.checkpointAt(25))[:0]+string(r.store.cp) {
		t.Fatalf("stores %d", r.store.stores)
	}
	cp, err := r.log.key.VerifyCheckpoint(r.store.cp)
	if err != nil || cp.Size != 25 {
		t.Fatalf("stored %v %v", cp, err)
	}

	// The log grows; the next run proves consistency from the stored 25.
	sk := r.sk
	for i := 25; i < 30; i++ {
		p := newPkg(t, sk, i)
		r.log.addSigned(t, p.t, r.pk, p.sha)
	}
	res, err = v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if r.log.count("consistency") == 0 {
		t.Fatal("no consistency proof asked")
	}
	cp, _ = r.log.key.VerifyCheckpoint(r.store.cp)
	if cp.Size != 30 {
		t.Fatalf("stored size %d, want 30", cp.Size)
	}
	// Fresh entries were fetched again (25 in batches of 10) and proven
	// against the current tree.
	if got := r.log.count("index"); got != 6 {
		t.Fatalf("%d EntriesByIndex calls after two runs, want 6", got)
	}
	wantIdentity(t, res[0].Entry, r.pkgs[0].entry)
}

// wantIdentity: a Result keeps only the identity of its verified entry.
func wantIdentity(t *testing.T, got, want *LogEntry) {
	t.Helper()
	if got == nil {
		t.Fatal("no entry")
	}
	if got.UUID != want.UUID || got.LogIndex != want.LogIndex || got.LogID != want.LogID || got.IntegratedTime != want.IntegratedTime {
		t.Fatalf("entry identity %+v, want %s/%d/%s/%d", got, want.UUID, want.LogIndex, want.LogID, want.IntegratedTime)
	}
	if got.Body != nil || got.Verification != nil {
		t.Fatal("the Result keeps the entry's body and proofs")
	}
}

// TestVerifyAllKeepsEntryIdentityOnly: offline (from the bundle) and
// online (the fresh entry, and a bundle-less lookup), a Result holds the
// entry's identity only, and the Progress callback offline already does.
func TestVerifyAllKeepsEntryIdentityOnly(t *testing.T) {
	for _, offline := range []bool{true, false} {
		t.Run(fmt.Sprint("offline=", offline), func(t *testing.T) {
			r := newRepo(t, 4, true)
			if !offline {
				delete(r.src.bundles, r.pkgs[3].filename)
			}
			v := r.verifier(t, Policy{Offline: offline}, nil)
			var mu sync.Mutex
			v.Progress = func(_, _ int, x Result) {
				mu.Lock()
				defer mu.Unlock()
				if offline && x.Entry != nil && (x.Entry.Body != nil || x.Entry.Verification != nil) {
					t.Errorf("%s: progress sees the whole entry", x.Artifact.Filename)
				}
			}
			res, err := v.VerifyAll(context.Background(), r.arts(false))
			if err != nil {
				t.Fatal(err)
			}
			wantStatuses(t, res, nil)
			for i, x := range res {
				wantIdentity(t, x.Entry, r.pkgs[i].entry)
			}
		})
	}
}

func TestVerifyAllOnlineWithoutBundles(t *testing.T) {
	r := newRepo(t, 8, false)
	// A seed-signed `.t` that was never logged.
	lone := newPkg(t, r.sk, 100)
	r.src.sigs[lone.filename] = lone.t
	r.pkgs = append(r.pkgs, lone)

	v := r.verifier(t, Policy{}, nil)
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]Status{lone.filename: StatusNotInLog})
	var nl *NotInLogError
	if !errors.As(res[8].Err, &nl) || nl.LeafHash == "" || nl.SearchHash != hexOf(lone.sha) {
		t.Fatalf("not-in-log evidence: %v", res[8].Err)
	}
	if r.log.count("search") != 1 {
		t.Fatalf("%d index searches; the leaf hash should find the 8 logged entries directly", r.log.count("search"))
	}

	// Fallback: the leaf-hash lookup finds nothing (older server), the
	// index search does.
	r.log.hideLeafLookups = true
	r.pkgs = r.pkgs[:8]
	res, err = v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if r.log.count("search") != 9 {
		t.Fatalf("%d searches", r.log.count("search"))
	}
}

// TestVerifyAllEntryWithAnotherKey: the log's index answers with an entry
// for the same message signed by another key: rejected, not-in-log.
func TestVerifyAllEntryWithAnotherKey(t *testing.T) {
	r := newRepo(t, 2, false)
	osk, opk := testKey(t, 5)
	p := newPkg(t, r.sk, 50)
	ot, _ := SignPackage(osk, p.sha, p.filename)
	r.log.addSigned(t, ot, opk, p.sha) // logged under the other key only
	r.src.sigs[p.filename] = p.t
	r.pkgs = append(r.pkgs, p)
	v := r.verifier(t, Policy{}, nil)
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]Status{p.filename: StatusNotInLog})
	var nl *NotInLogError
	var ee *EntryError
	if !errors.As(res[2].Err, &nl) || len(nl.Candidates) != 1 || !errors.As(nl.Candidates[0], &ee) || ee.Step != StepBody {
		t.Fatalf("evidence: %v", res[2].Err)
	}
}

func TestVerifyAllLogUnavailable(t *testing.T) {
	for _, bundles := range []bool{true, false} {
		t.Run(fmt.Sprint("bundles=", bundles), func(t *testing.T) {
			r := newRepo(t, 4, bundles)
			r.log.down = errors.New("dial tcp 127.0.0.1:3000: connection refused")
			delete(r.src.sigs, r.pkgs[3].filename)
			v := r.verifier(t, Policy{}, nil)
			res, err := v.VerifyAll(context.Background(), r.arts(false))
			var lu *LogUnavailableError
			if !errors.As(err, &lu) {
				t.Fatalf("err %v, want *LogUnavailableError", err)
			}
			// The package without a .t is missing-signature when it was
			// judged before the first log failure cancelled the batch,
			// and unverified with that failure as the cause otherwise.
			want := map[string]Status{
				r.pkgs[0].filename: StatusUnavailable, r.pkgs[1].filename: StatusUnavailable,
				r.pkgs[2].filename: StatusUnavailable, r.pkgs[3].filename: StatusMissingSignature,
			}
			if res[3].Status == StatusUnavailable && strings.HasPrefix(res[3].Err.Error(), "not verified: ") && errors.Is(res[3].Err, lu) {
				want[r.pkgs[3].filename] = StatusUnavailable
			}
			wantStatuses(t, res, want)
			if r.store.stores != 0 {
				t.Fatal("stored a checkpoint")
			}
		})
	}
}

func TestVerifyAllCurrentCheckpointByAnotherKey(t *testing.T) {
	r := newRepo(t, 3, true)
	impostor := newTestLog(t)
	logged(t, impostor, 3)
	r.log.checkpointHook = func([]byte) []byte { return impostor.checkpointAt(3) }
	res, err := r.verifier(t, Policy{}, nil).VerifyAll(context.Background(), r.arts(false))
	var lu *LogUnavailableError
	var ce *CheckpointError
	if !errors.As(err, &lu) || !errors.As(err, &ce) {
		t.Fatalf("err %v", err)
	}
	wantStatuses(t, res, map[string]Status{r.pkgs[0].filename: StatusUnavailable, r.pkgs[1].filename: StatusUnavailable, r.pkgs[2].filename: StatusUnavailable})
	if r.store.stores != 0 {
		t.Fatal("stored")
	}
}

// securityCase runs a batch that must end in a SECURITY ERROR.
func securityCase(t *testing.T, r *repo, wantReason string) *SecurityError {
	t.Helper()
	before := append([]byte(nil), r.store.cp...)
	stores := r.store.stores
	res, err := r.verifier(t, Policy{}, nil).VerifyAll(context.Background(), r.arts(false))
	var se *SecurityError
	if !errors.As(err, &se) {
		t.Fatalf("err %v, want *SecurityError", err)
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
		if x.Status != StatusLogInconsistent {
			t.Fatalf("%s: %s, want log-inconsistent", x.Artifact.Filename, x.Status)
		}
	}
	if r.store.stores != stores || string(r.store.cp) != string(before) {
		t.Fatal("checkpoint store changed after a security error")
	}
	return se
}

func TestVerifyAllRollback(t *testing.T) {
	r := newRepo(t, 6, true)
	// The client saw size 6 before; now the log serves its size-4 head.
	r.store.cp = r.log.checkpointAt(6)
	r.log.checkpointHook = func([]byte) []byte { return r.log.checkpointAt(4) }
	se := securityCase(t, r, "ROLLBACK")
	if !strings.Contains(string(se.New), "\n4\n") {
		t.Fatalf("new head %q", se.New)
	}
}

func TestVerifyAllStaleCheckpoint(t *testing.T) {
	// Entries are proven at size 6, then the "current" checkpoint is older.
	r := newRepo(t, 6, false)
	r.log.checkpointHook = func([]byte) []byte { return r.log.checkpointAt(5) }
	securityCase(t, r, "ROLLBACK")
}

// fork builds a second log with the same key and origin whose first n
// entries equal r's and whose later history differs.
func fork(t *testing.T, r *repo, n int, extra ...string) *testLog {
	f := newTestLogWithKey(t, r.log.signer)
	for i := 0; i < n; i++ {
		f.add(r.log.bodies[i])
	}
	for _, x := range extra {
		p := newPkg(t, r.sk, 1000+len(x))
		p.sha = hexOf(x)
		p.t, _ = SignPackage(r.sk, p.sha, p.filename)
		f.addSigned(t, p.t, r.pk, p.sha)
	}
	return f
}

func TestVerifyAllSplitViewStored(t *testing.T) {
	r := newRepo(t, 5, true)
	// Extend the honest log, remember its head; the log then shows another
	// history of the same size to this client.
	for i := 5; i < 7; i++ {
		p := newPkg(t, r.sk, i)
		r.log.addSigned(t, p.t, r.pk, p.sha)
	}
	r.store.cp = r.log.checkpointAt(7)
	// The log now serves, consistently in itself, another history.
	r.log = fork(t, r, 5, "evil-a", "evil-b")
	securityCase(t, r, "same tree size 7 but different roots")
}

func TestVerifyAllForkedBundleCheckpoint(t *testing.T) {
	// Bundles were made by the honest log at size 6; the log now serves a
	// fork (same first 5 entries) at size 8: fresh proofs verify, but the
	// bundles' checkpoint is not consistent with the current tree.
	r := newRepo(t, 5, false)
	p := newPkg(t, r.sk, 5)
	r.log.addSigned(t, p.t, r.pk, p.sha)
	for i, q := range r.pkgs {
		b, _ := MarshalBundle(r.log.entryAt(int64(i), 6))
		r.src.bundles[q.filename] = b
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
	r.store.cp = r.log.checkpointAt(3)
	r.log.consistencyHook = func(p [][]byte) [][]byte { p[0][0] ^= 1; return p }
	securityCase(t, r, "stored checkpoint (tree size 3) is not consistent")
}

func TestVerifyAllOriginChange(t *testing.T) {
	r := newRepo(t, 4, true)
	r.store.cp = r.log.checkpointAt(4)
	r.log.origin = "rekor.test - 5678" // the log restarted with another tree
	r.store.cp = append([]byte(nil), r.store.cp...)
	securityCase(t, r, "origin")
}

// TestVerifyAllMixedTreeSizes: one batch whose fresh proofs are against
// different tree sizes (as Rekor does under concurrent uploads): each is
// verified against its own checkpoint and each size proven consistent.
func TestVerifyAllMixedTreeSizes(t *testing.T) {
	r := newRepo(t, 12, true)
	r.store.cp = r.log.checkpointAt(2)
	var mu sync.Mutex
	r.log.entryHook = func(e *LogEntry) *LogEntry {
		mu.Lock()
		defer mu.Unlock()
		size := int64(12 - e.LogIndex%3) // sizes 10, 11, 12
		if e.LogIndex >= size {
			return e
		}
		return r.log.entryLocked(e.LogIndex, size)
	}
	res, err := r.verifier(t, Policy{IndexBatch: 5}, nil).VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	// 10 and 11 from the fresh entries, 2 from the store (12 is current).
	if got := r.log.count("consistency"); got != 3 {
		t.Fatalf("%d consistency proofs, want 3", got)
	}
	// A lie in one of them is caught.
	r.log.consistencyHook = func(p [][]byte) [][]byte { p[len(p)-1][3] ^= 1; return p }
	r.store.cp = r.log.checkpointAt(2)
	securityCase(t, r, "not consistent")
}

func TestVerifyAllFreshEntryLies(t *testing.T) {
	r := newRepo(t, 4, true)
	r.log.entryHook = func(e *LogEntry) *LogEntry {
		if e.LogIndex == 1 {
			c := clone(e)
			c.IntegratedTime++ // and a genuine SET for it: not the entry the bundle proved
			c.Verification.SignedEntryTimestamp = r.log.sign(setPayload(c))
			return c
		}
		if e.LogIndex == 2 {
			return r.log.entryLocked(3, 4) // a genuine entry, for another body
		}
		return e
	}
	// The bundles' checkpoint (size 4) is the current tree: the log itself
	// proves entries 1 and 2 are in it, so serving other ones is a
	// contradiction of its signed tree, not a missing signature.
	stores := r.store.stores
	res, err := r.verifier(t, Policy{}, nil).VerifyAll(context.Background(), r.arts(false))
	var se *SecurityError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "log index 1 ") {
		t.Fatalf("err %v, want the *SecurityError of log index 1 (the lowest)", err)
	}
	wantStatuses(t, res, map[string]Status{r.pkgs[0].filename: StatusLogInconsistent, r.pkgs[1].filename: StatusLogInconsistent,
		r.pkgs[2].filename: StatusLogInconsistent, r.pkgs[3].filename: StatusLogInconsistent})
	// Each unserved entry carries its own evidence; the others the run's.
	var ee *EntryError
	var nl *NotInLogError
	if !errors.As(res[1].Err, &se) || !strings.Contains(se.Reason, "log index 1 ") || !errors.As(res[1].Err, &nl) ||
		!errors.As(res[1].Err, &ee) || ee.Field != "logIndex/logID/integratedTime" {
		t.Fatalf("other integrated time: %v", res[1].Err)
	}
	if !errors.As(res[2].Err, &se) || !strings.Contains(se.Reason, "log index 2 ") || !errors.As(res[2].Err, &ee) || ee.Step != StepBody {
		t.Fatalf("another body: %v", res[2].Err)
	}
	for _, i := range []int{0, 3} {
		if !errors.As(res[i].Err, &se) || !strings.Contains(se.Reason, "log index 1 ") {
			t.Fatalf("package %d: %v, want the run's security error", i, res[i].Err)
		}
	}
	if len(se.Old) == 0 || len(se.New) == 0 {
		t.Fatal("security error without both tree heads")
	}
	if r.store.stores != stores {
		t.Fatal("stored a checkpoint of a log that contradicts itself")
	}
}

type fakeRebuilders struct {
	calls   int
	confirm map[string]int
}

func (f *fakeRebuilders) Verdicts(ctx context.Context, arts []Artifact, sums []string) []RebuildVerdict {
	f.calls++
	out := make([]RebuildVerdict, len(arts))
	for i, a := range arts {
		for j := 0; j < f.confirm[a.Filename]; j++ {
			out[i].Confirmed = append(out[i].Confirmed, fmt.Sprintf("https://r%d.example", j))
		}
	}
	return out
}

func TestVerifyAllRebuilders(t *testing.T) {
	r := newRepo(t, 4, true)
	delete(r.src.sigs, r.pkgs[3].filename)
	rb := &fakeRebuilders{confirm: map[string]int{r.pkgs[0].filename: 2, r.pkgs[1].filename: 1}}
	res, err := r.verifier(t, Policy{Offline: true, RequiredRebuildConfirms: 2}, rb).VerifyAll(context.Background(), r.arts(false))
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]Status{
		r.pkgs[1].filename: StatusRebuildUnconfirmed, r.pkgs[2].filename: StatusRebuildUnconfirmed,
		r.pkgs[3].filename: StatusMissingSignature,
	})
	if rb.calls != 1 {
		t.Fatalf("%d Verdicts calls", rb.calls)
	}
	var re *RebuildError
	if !errors.As(res[1].Err, &re) || len(re.Confirmed) != 1 || re.Required != 2 || res[1].Rebuild == nil {
		t.Fatalf("evidence: %v %+v", res[1].Err, res[1].Rebuild)
	}
	if res[0].Rebuild == nil || len(res[0].Rebuild.Confirmed) != 2 {
		t.Fatal("verdict not attached to the ok result")
	}
	if res[3].Rebuild != nil {
		t.Fatal("rebuilders asked about a package whose signature failed")
	}
	if _, err := NewVerifier(Policy{Keys: []PublicKey{r.pk}, LogKey: r.log.key, Offline: true, RequiredRebuildConfirms: 1}, r.src, nil, nil, nil); err == nil {
		t.Fatal("threshold without rebuilders accepted")
	}
}

func TestVerifyAllCancelled(t *testing.T) {
	r := newRepo(t, 5, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := r.verifier(t, Policy{}, nil).VerifyAll(ctx, r.arts(false))
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
	for name, p := range map[string]Policy{
		"no keys":    {LogKey: r.log.key, Offline: true},
		"no log key": {Keys: []PublicKey{r.pk}, Offline: true},
		"zero key":   {Keys: []PublicKey{{}}, LogKey: r.log.key, Offline: true},
	} {
		if _, err := NewVerifier(p, r.src, nil, nil, nil); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := NewVerifier(Policy{Keys: []PublicKey{r.pk}, LogKey: r.log.key}, r.src, nil, nil, nil); err == nil {
		t.Error("online without a log accepted")
	}
}

// TestVerifyAllOfflineStoredFork: offline, a bundle checkpoint of the same
// size as the stored one but another root is a split view too.
func TestVerifyAllOfflineStoredFork(t *testing.T) {
	r := newRepo(t, 5, true)
	f := fork(t, r, 4, "other")
	r.store.cp = f.checkpointAt(5)
	res, err := r.verifier(t, Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false))
	var se *SecurityError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "same tree size 5") {
		t.Fatalf("err %v", err)
	}
	for _, x := range res {
		if x.Status != StatusLogInconsistent {
			t.Fatalf("%s: %s", x.Artifact.Filename, x.Status)
		}
	}
	// The same stored head as the bundles': fine, and nothing is written offline.
	r.store.cp = r.log.checkpointAt(5)
	if _, err := r.verifier(t, Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false)); err != nil || r.store.stores != 0 {
		t.Fatalf("err %v, stores %d", err, r.store.stores)
	}
}

// TestVerifyAllOfflineBatchFork: offline, with nothing stored, two bundles
// of one batch whose checkpoints have the same size and different roots
// are a split view: every package fails, the evidence names both bundles.
func TestVerifyAllOfflineBatchFork(t *testing.T) {
	r := newRepo(t, 5, true)
	f := fork(t, r, 4, "other")
	b, err := MarshalBundle(f.entryAt(0, 5)) // the same entry, proven in the fork
	if err != nil {
		t.Fatal(err)
	}
	r.src.bundles[r.pkgs[0].filename] = b
	res, err := r.verifier(t, Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false))
	var se *SecurityError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "two proof bundles' checkpoints have the same tree size 5 but different roots") {
		t.Fatalf("err %v", err)
	}
	msg := se.Error()
	if strings.Count(msg, "signed tree head in the proof bundle of pkg") != 2 || bytes.Equal(se.Old, se.New) {
		t.Fatalf("evidence does not name both bundles:\n%s", msg)
	}
	for _, x := range res {
		if x.Status != StatusLogInconsistent {
			t.Fatalf("%s: %s", x.Artifact.Filename, x.Status)
		}
	}
	if len(r.log.calls)+len(f.calls) != 0 || r.store.stores != 0 {
		t.Fatalf("offline run asked the log (%v %v) or stored (%d)", r.log.calls, f.calls, r.store.stores)
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
		p := newPkg(t, r.sk, i)
		r.log.addSigned(t, p.t, r.pk, p.sha)
	}
	r.store.cp = r.log.checkpointAt(7)
	if res, err := r.verifier(t, Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false)); err != nil {
		t.Fatalf("bundles (size 5) older than the stored checkpoint (size 7): %v", err)
	} else {
		wantStatuses(t, res, nil)
	}

	f := fork(t, r, 4, "x", "yy", "zzz", "wwww") // size 8, beyond the stored 7
	b, err := MarshalBundle(f.entryAt(0, 8))
	if err != nil {
		t.Fatal(err)
	}
	r.src.bundles[r.pkgs[0].filename] = b
	if _, err := r.verifier(t, Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false)); err != nil {
		t.Fatalf("offline compared checkpoints of different sizes: %v", err)
	}
	var se *SecurityError
	if _, err := r.verifier(t, Policy{}, nil).VerifyAll(context.Background(), r.arts(false)); !errors.As(err, &se) {
		t.Fatalf("online: err %v, want *SecurityError", err)
	}
}

// failingStore is a CheckpointStore whose Load fails.
type failingStore struct{ err error }

func (s failingStore) Load(context.Context) ([]byte, error) { return nil, s.err }
func (s failingStore) Store(context.Context, []byte) error  { return errors.New("not expected") }

// TestVerifyAllOfflineUnusableStore: a stored checkpoint that cannot be
// read, or does not verify under the pinned log key, fails the offline run
// (as online): it is not skipped.
func TestVerifyAllOfflineUnusableStore(t *testing.T) {
	r := newRepo(t, 3, true)
	pol := Policy{Keys: []PublicKey{r.pk}, LogKey: r.log.key, Offline: true}
	v, err := NewVerifier(pol, r.src, nil, failingStore{errors.New("disk on fire")}, nil)
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

	other := newTestLog(t)
	other.add([]byte("another log"))
	r.store.cp = other.checkpointAt(1)
	res, err = r.verifier(t, Policy{Offline: true}, nil).VerifyAll(context.Background(), r.arts(false))
	var ce *CheckpointError
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
	Log
	delay     time.Duration
	mu        sync.Mutex
	lookups   int
	cancelled int
}

func (l *trickleLog) EntryByUUID(ctx context.Context, uuid string) (*LogEntry, error) {
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
	lg := &trickleLog{Log: r.log, delay: delay}
	v, err := NewVerifier(Policy{Keys: []PublicKey{r.pk}, LogKey: r.log.key, Concurrency: 2}, r.src, lg, r.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := v.VerifyAll(context.Background(), r.arts(false))
	took := time.Since(start)
	var lu *LogUnavailableError
	if !errors.As(err, &lu) {
		t.Fatalf("err %v, want *LogUnavailableError", err)
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
		if x.Status != StatusUnavailable {
			t.Errorf("%s: %s (%v), want unavailable", x.Artifact.Filename, x.Status, x.Err)
		}
		var mine *LogUnavailableError
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
	lg := &trickleLog{Log: r.log, delay: time.Hour}
	v, err := NewVerifier(Policy{Keys: []PublicKey{r.pk}, LogKey: r.log.key, Concurrency: 2}, r.src, lg, r.store, nil)
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
	if r.store.stores != 0 {
		t.Error("a run cut short stored a checkpoint")
	}
}
