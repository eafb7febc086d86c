package signer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// bundleHeads returns, for the packages, the distinct checkpoint notes and
// tree sizes their published bundles carry (each bundle verified).
func (e *env) bundleHeads(pkgs []repodb.Package) (notes map[string]bool, sizes map[int64]bool) {
	e.t.Helper()
	notes, sizes = map[string]bool{}, map[int64]bool{}
	for _, p := range pkgs {
		tb, err := os.ReadFile(filepath.Join(e.sigDir, p.Filename+verify.SignatureSuffix))
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(e.sigDir, p.Filename+verify.BundleSuffix))
		if err != nil {
			e.t.Fatal(err)
		}
		ent, err := rekorv1.ParseBundle(b)
		if err != nil {
			e.t.Fatal(err)
		}
		cp, err := rekorv1.VerifyEntry(ent, tb, []verify.PublicKey{e.pub}, p.SHA256Sum, p.Filename, e.log.key)
		if err != nil {
			e.t.Fatalf("%s: %v", p.Filename, err)
		}
		notes[string(ent.Proof.Checkpoint)] = true
		sizes[cp.Size] = true
	}
	return notes, sizes
}

// storedSize is the tree size of the checkpoint in the state dir (0: none).
func (e *env) storedSize() int64 {
	e.t.Helper()
	b, err := (&stateDir{dir: filepath.Join(e.state, stateSubdir)}).checkpoints().Load(context.Background())
	if b == nil && err == nil {
		return 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	cp, err := e.log.key.VerifyCheckpoint(b)
	if err != nil {
		e.t.Fatalf("stored checkpoint: %v", err)
	}
	return cp.Size
}

// snapshot reads every file of the signature dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[de.Name()] = b
	}
	return m
}

// Without settling, each bundle carries the tree head of its own upload
// answer (60 uploads, 60 heads). Settled, they all carry one note, the
// log's size at the end of the run, which is stored. The proofs are
// derived from the run's own entries: the settle costs one checkpoint and
// one consistency proof (from the first upload answer's tree head), no
// retrieve.
func TestSettleOneCheckpointPerRun(t *testing.T) {
	e := newEnv(t, 60)
	sum := e.run([]string{"core"})
	if sum.Failed != 0 || sum.Signed != 60 || sum.Settled != 60 || sum.SettleFailed != 0 || sum.BundleCheckpoints != 1 || sum.SettleError != "" || sum.SettleMode != "derived" {
		t.Fatalf("summary: %+v", sum)
	}
	notes, sizes := e.bundleHeads(e.pkgs)
	if len(notes) != 1 || !sizes[60] {
		t.Fatalf("bundles carry %d notes, sizes %v; want one note of size 60", len(notes), sizes)
	}
	if e.log.retrieves != 0 || e.log.checkpoints != 1 || e.log.proofs != 1 {
		t.Errorf("settle cost %d retrieves, %d checkpoints, %d proofs; want 0, 1, 1 (from the oldest upload answer)", e.log.retrieves, e.log.checkpoints, e.log.proofs)
	}
	if got := e.storedSize(); got != 60 || sum.Checkpoint == nil || sum.Checkpoint.Size != 60 {
		t.Errorf("stored checkpoint size %d, summary %+v", got, sum.Checkpoint)
	}
	e.checkAll(e.pkgs)

	// Nothing new: the log is not asked, nothing is rewritten.
	before := snapshot(t, e.sigDir)
	r, c := e.log.retrieves, e.log.checkpoints
	sum = e.run([]string{"core"})
	if sum.AlreadyPublished != 60 || sum.Settled != 0 || e.log.retrieves != r || e.log.checkpoints != c {
		t.Fatalf("second run: %+v (%d retrieves)", sum, e.log.retrieves-r)
	}
	if after := snapshot(t, e.sigDir); len(after) != len(before) {
		t.Fatalf("files changed")
	}
}

// The stored checkpoint advances run by run, each time proven consistent
// with the previous one.
func TestSettleStoredCheckpointAdvances(t *testing.T) {
	e := newEnv(t, 10)
	e.run([]string{"core"})
	if got := e.storedSize(); got != 10 {
		t.Fatalf("stored size %d after the first run", got)
	}
	e.writeDB("extra", "x86_64", repodbtest.Packages(7, repodbtest.Options{Seed: 99}))
	proofs := e.log.proofs
	sum := e.run([]string{"core", "extra"})
	if sum.Signed != 7 || sum.Settled != 7 || sum.Failed != 0 {
		t.Fatalf("second run: %+v", sum)
	}
	if got := e.storedSize(); got != 17 {
		t.Fatalf("stored size %d after the second run, want 17", got)
	}
	if e.log.proofs == proofs {
		t.Errorf("no consistency proof fetched from the stored checkpoint")
	}
}

// The log grows during a fetching settle (--refresh-bundles; another
// writer logs 3 entries while the first retrieves are answered): the
// entries proven at older sizes are re-fetched in a second round, and all
// end on one tree head, the newest, which is stored.
func TestSettleWhileTheLogGrows(t *testing.T) {
	e := newEnv(t, 100)
	e.run([]string{"core"})
	other := newEnv(t, 0)
	var n atomic.Int64
	e.log.beforeRetrieve = func() {
		// Another signer's upload lands before each of the first 3 calls.
		k := n.Add(1)
		if k > 3 {
			return
		}
		p := repodbtest.Packages(1, repodbtest.Options{Seed: uint64(1000 + k)})[0]
		tf, err := verify.SignPackage(other.sk, p.SHA256Sum, p.Filename)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := e.log.Upload(context.Background(), tf, other.pub.File(), []byte(p.SHA256Sum)); err != nil {
			t.Error(err)
		}
	}
	sum := e.run([]string{"core"}, func(o *Options) { o.RefreshBundles = true })
	if sum.Failed != 0 || sum.Settled != 100 || sum.BundleCheckpoints != 1 || sum.SettleMode != "fetched" {
		t.Fatalf("summary: %+v", sum)
	}
	_, sizes := e.bundleHeads(e.pkgs)
	if len(sizes) != sum.BundleCheckpoints {
		t.Errorf("bundles carry sizes %v, summary says %d heads", sizes, sum.BundleCheckpoints)
	}
	if got := e.storedSize(); got != int64(e.log.size()) {
		t.Errorf("stored size %d, log size %d", got, e.log.size())
	}
	t.Logf("%d retrieve calls, tree heads %v", e.log.retrieves, sizes)
}

// The log is unreachable at the settle: a warning; the bundles of the
// upload answers stay (valid), nothing is stored, the run succeeds.
func TestSettleLogDownIsAWarning(t *testing.T) {
	e := newEnv(t, 12)
	e.log.afterAdd = func(n int) error {
		if n == 12 { // the last upload: then the log goes down
			e.log.mu.Lock()
			e.log.failRetrieve = true
			e.log.mu.Unlock()
		}
		return nil
	}
	sum := e.run([]string{"core"})
	if sum.Failed != 0 || sum.Signed != 12 || sum.Settled != 0 || sum.SettleFailed != 12 || !strings.Contains(sum.SettleError, "unavailable") {
		t.Fatalf("summary: %+v", sum)
	}
	if e.storedSize() != 0 {
		t.Errorf("a checkpoint was stored without a settle")
	}
	e.checkAll(e.pkgs)
}

// The log answers a fetching settle with entries that are not the
// published ones (another integrated time, a broken proof): each is a
// StageSettle failure and its bundle stays as published.
func TestSettleContradictionIsAFailure(t *testing.T) {
	for name, lie := range map[string]func(*rekorv1.Entry){
		"integrated-time": func(le *rekorv1.Entry) { le.IntegratedTime++ },
		"proof": func(le *rekorv1.Entry) {
			le.Proof.Hashes[0] = make([]byte, 32)
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, 8)
			e.run([]string{"core"})
			before := snapshot(t, e.sigDir)
			e.log.lieRetrieve = lie
			sum := e.run([]string{"core"}, func(o *Options) { o.RefreshBundles = true })
			if sum.Failed != 8 || sum.AlreadyPublished != 8 || sum.SettleFailed != 8 || sum.Settled != 0 {
				t.Fatalf("summary: %+v", sum)
			}
			for _, f := range sum.Failures {
				if f.Stage != StageSettle || f.Filename == "" {
					t.Errorf("failure %+v", f)
				}
			}
			after := snapshot(t, e.sigDir)
			for name, b := range before {
				if !bytes.Equal(after[name], b) {
					t.Errorf("%s changed", name)
				}
			}
			e.checkAll(e.pkgs)
			if got := e.storedSize(); got != 8 {
				t.Errorf("stored size %d: the tree itself was consistent, want 8", got)
			}
		})
	}
}

// A log that forked since the last run: a SecurityError with both tree
// heads; nothing published is touched, the stored checkpoint is kept.
func TestSettleForkedLogIsASecurityError(t *testing.T) {
	e := newEnv(t, 10)
	e.run([]string{"core"})
	storedBefore, _ := os.ReadFile(filepath.Join(e.state, stateSubdir, checkpointName))
	if len(storedBefore) == 0 {
		t.Fatal("no stored checkpoint")
	}
	published := snapshot(t, e.sigDir)

	e.forkLog(t)
	e.writeDB("extra", "x86_64", repodbtest.Packages(4, repodbtest.Options{Seed: 99}))
	s := e.signer()
	sum, err := s.Run(context.Background(), Sources(e.repoURL, []string{"core", "extra"}, []string{"x86_64"}))
	s.Close()
	var sec *verify.SecurityError
	if !errors.As(err, &sec) || sum == nil || sum.SecurityError == "" || len(sec.Old) == 0 || len(sec.New) == 0 {
		t.Fatalf("Run = %v, summary %+v; want a SecurityError with both tree heads", err, sum)
	}
	if sum.Settled != 0 || sum.Signed != 4 {
		t.Errorf("summary: %+v", sum)
	}
	after := snapshot(t, e.sigDir)
	for name, b := range published {
		if !bytes.Equal(after[name], b) {
			t.Errorf("%s changed", name)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(e.state, stateSubdir, checkpointName)); !bytes.Equal(got, storedBefore) {
		t.Errorf("the stored checkpoint was replaced")
	}
}

// forkLog replaces the log with one of the same key whose history
// differs from index 5 on.
func (e *env) forkLog(t *testing.T) {
	forked := newMemLog(t)
	forked.signer, forked.key, forked.pem = e.log.signer, e.log.key, e.log.pem
	for i := range 5 {
		forked.tree.AppendData(e.log.bodies[i])
		forked.bodies = append(forked.bodies, e.log.bodies[i])
		forked.byLeaf[rekorv1.LeafHash(e.log.bodies[i])] = int64(i)
	}
	// The rest of the first run's entries are in the fork too (a log may
	// reorder history), after other entries.
	other := newEnv(t, 0)
	for _, p := range repodbtest.Packages(3, repodbtest.Options{Seed: 4242}) {
		tf, _ := verify.SignPackage(other.sk, p.SHA256Sum, p.Filename)
		forked.Upload(context.Background(), tf, other.pub.File(), []byte(p.SHA256Sum))
	}
	e.log = forked
}

// toLegacyCheckpoint puts the stored checkpoint back where and how an
// older bintrans sign kept it: the bare note in <state>/sign/checkpoint.
func (e *env) toLegacyCheckpoint(t *testing.T) []byte {
	dir := filepath.Join(e.state, stateSubdir)
	note, err := (&stateDir{dir: dir}).checkpoints().Load(context.Background())
	if err != nil || note == nil {
		t.Fatalf("stored checkpoint: %q %v", note, err)
	}
	os.Remove(filepath.Join(dir, checkpointName))
	if err := os.WriteFile(filepath.Join(dir, legacyCheckpointName), note, 0o600); err != nil {
		t.Fatal(err)
	}
	return note
}

// A checkpoint an older bintrans sign stored (sign/checkpoint, the bare
// note) is what the next run proves the log consistent with: an honest
// log moves on from it and the file is migrated; a forked log is a
// SecurityError.
func TestLegacyStoredCheckpoint(t *testing.T) {
	e := newEnv(t, 10)
	e.run([]string{"core"})
	e.toLegacyCheckpoint(t)
	e.writeDB("extra", "x86_64", repodbtest.Packages(4, repodbtest.Options{Seed: 98}))
	sum := e.run([]string{"core", "extra"})
	if sum.Signed != 4 || sum.Settled != 4 || sum.Failed != 0 || e.storedSize() != 14 {
		t.Fatalf("honest run after the old format: %+v, stored size %d", sum, e.storedSize())
	}
	if _, err := os.Stat(filepath.Join(e.state, stateSubdir, legacyCheckpointName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old file left: %v", err)
	}

	legacy := e.toLegacyCheckpoint(t)
	e.forkLog(t)
	e.writeDB("testing", "x86_64", repodbtest.Packages(2, repodbtest.Options{Seed: 97}))
	s := e.signer()
	_, err := s.Run(context.Background(), Sources(e.repoURL, []string{"testing"}, []string{"x86_64"}))
	s.Close()
	var sec *verify.SecurityError
	if !errors.As(err, &sec) {
		t.Fatalf("forked log after the old format: %v, want a SecurityError", err)
	}
	if !bytes.Equal(sec.Old, legacy) {
		t.Errorf("the SecurityError's old checkpoint is not the one of the old file:\n%s", sec.Old)
	}
}

// A stored checkpoint that does not verify under the pinned key stops New
// (before anything is uploaded), with a hint.
func TestStoredCheckpointOfAnotherLog(t *testing.T) {
	e := newEnv(t, 3)
	e.run([]string{"core"})
	other := newMemLog(t)
	o := e.options()
	o.Log, o.LogKey = other, other.key
	_, err := New(o)
	var sce *StoredCheckpointError
	if !errors.As(err, &sce) || !strings.Contains(sce.Hint(), sce.Path) {
		t.Fatalf("New with another log key = %v", err)
	}
}

// RefreshBundles re-proves every published bundle, not only this run's.
func TestRefreshBundles(t *testing.T) {
	e := newEnv(t, 20)
	e.run([]string{"core"})
	other := newEnv(t, 0)
	for _, p := range repodbtest.Packages(5, repodbtest.Options{Seed: 77}) {
		tf, _ := verify.SignPackage(other.sk, p.SHA256Sum, p.Filename)
		e.log.Upload(context.Background(), tf, other.pub.File(), []byte(p.SHA256Sum))
	}
	sum := e.run([]string{"core"}, func(o *Options) { o.RefreshBundles = true })
	if sum.AlreadyPublished != 20 || sum.Settled != 20 || sum.BundleCheckpoints != 1 || sum.Failed != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	if _, sizes := e.bundleHeads(e.pkgs); len(sizes) != 1 || !sizes[25] {
		t.Fatalf("sizes %v, want only 25", sizes)
	}
	if e.storedSize() != 25 {
		t.Errorf("stored size %d", e.storedSize())
	}
}

// Temp files of a killed run are removed at start: exactly the names
// writeFileAtomic creates for the signer's files, nothing else.
func TestStaleTempFilesRemoved(t *testing.T) {
	e := newEnv(t, 2)
	stateSign := filepath.Join(e.state, stateSubdir)
	os.MkdirAll(stateSign, 0o700)
	stale := []string{
		filepath.Join(e.sigDir, ".foo-1.0-1-x86_64.pkg.tar.zst.t.tmp-12345"),
		filepath.Join(e.sigDir, ".foo-1.0-1-x86_64.pkg.tar.zst.t.bundle.tmp-4294967295"),
		filepath.Join(stateSign, ".checkpoint.tmp-1"),
		filepath.Join(stateSign, ".audit-head.json.tmp-77"),
	}
	kept := []string{
		filepath.Join(e.sigDir, ".hidden"),
		filepath.Join(e.sigDir, ".foo.pkg.tar.zst.tmp-123"),           // not a .t or bundle
		filepath.Join(e.sigDir, "foo.pkg.tar.zst.t.tmp-123"),          // no leading dot
		filepath.Join(e.sigDir, ".foo.pkg.tar.zst.t.tmp-12a"),         // not CreateTemp's digits
		filepath.Join(e.sigDir, ".foo.pkg.tar.zst.t.tmp-"),            // no digits
		filepath.Join(e.sigDir, ".foo.pkg.tar.zst.t.tmp-12345678901"), // 11 digits
		filepath.Join(e.sigDir, "README"),
		filepath.Join(stateSign, ".notes.tmp-5"), // not a file the signer writes
	}
	for _, p := range append(append([]string(nil), stale...), kept...) {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(e.sigDir, ".d.pkg.tar.zst.t.tmp-5") // a directory of that name
	os.MkdirAll(filepath.Join(dir, "x"), 0o755)
	link := filepath.Join(e.sigDir, ".l.pkg.tar.zst.t.tmp-6") // a symlink of that name
	if err := os.Symlink(filepath.Join(e.sigDir, "README"), link); err != nil {
		t.Fatal(err)
	}
	sum := e.run([]string{"core"})
	if sum.RemovedTempFiles != len(stale) || sum.Failed != 0 || sum.TempFilesError != "" {
		t.Fatalf("summary: %+v", sum)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not removed", p)
		}
	}
	for _, p := range append(kept, dir, link) {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.sigDir, "README")); err != nil {
		t.Errorf("symlink target removed: %v", err)
	}
}

// An intent recovered in a --refresh-bundles run is also found published:
// it is settled once.
func TestRefreshBundlesWithRecoveredIntent(t *testing.T) {
	e := newEnv(t, 6)
	ro := filepath.Join(e.root, "ro")
	if err := os.WriteFile(ro, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	s := e.signer()
	s.o.SignatureDir = ro // every publish fails: intents stay
	s.sigDir.Close()
	var err error
	if s.sigDir, err = durable.OpenDir(ro); err != nil { // a file: every write into it fails
		t.Fatal(err)
	}
	sum, err := s.Run(context.Background(), Sources(e.repoURL, []string{"core"}, []string{"x86_64"}))
	s.Close()
	if err != nil || sum.Failed != 6 {
		t.Fatalf("first run: %v %+v", err, sum)
	}
	sum = e.run([]string{"core"}, func(o *Options) { o.RefreshBundles = true })
	if sum.Recovered != 6 || sum.AlreadyPublished != 6 || sum.Settled != 6 || sum.SettleFailed != 0 || sum.Failed != 0 {
		t.Fatalf("refresh run: %+v", sum)
	}
	e.checkAll(e.pkgs)
}

// Other writers' entries between the run's own: their bodies are fetched
// (one retrieve per 10), the proofs still derived; one tree head.
func TestSettleDerivedWithOtherWriters(t *testing.T) {
	e := newEnv(t, 50)
	other := newEnv(t, 0)
	var foreign atomic.Int64
	e.log.afterAdd = func(n int) error {
		if n%10 == 0 {
			k := foreign.Add(1)
			p := repodbtest.Packages(1, repodbtest.Options{Seed: uint64(5000 + k)})[0]
			tf, err := verify.SignPackage(other.sk, p.SHA256Sum, p.Filename)
			if err != nil {
				return err
			}
			_, err = e.log.Upload(context.Background(), tf, other.pub.File(), []byte(p.SHA256Sum))
			return err
		}
		return nil
	}
	sum := e.run([]string{"core"})
	if sum.Failed != 0 || sum.Settled != 50 || sum.BundleCheckpoints != 1 || sum.SettleMode != "derived" {
		t.Fatalf("summary: %+v", sum)
	}
	if want := (int(foreign.Load()) + 9) / 10; e.log.retrieves > want+1 {
		t.Errorf("%d retrieve calls for %d foreign entries", e.log.retrieves, foreign.Load())
	}
	if _, sizes := e.bundleHeads(e.pkgs); len(sizes) != 1 {
		t.Errorf("tree heads %v", sizes)
	}
}

// More foreign entries than the run's own: fetching the run's entries
// costs less than deriving; every bundle is settled either way.
func TestSettleFetchesWhenOthersDominate(t *testing.T) {
	e := newEnv(t, 5)
	other := newEnv(t, 0)
	var k atomic.Int64
	var inside atomic.Bool
	e.log.afterAdd = func(n int) error {
		if inside.Swap(true) {
			return nil // the foreign uploads themselves
		}
		defer inside.Store(false)
		for range 3 {
			p := repodbtest.Packages(1, repodbtest.Options{Seed: uint64(7000 + k.Add(1))})[0]
			tf, _ := verify.SignPackage(other.sk, p.SHA256Sum, p.Filename)
			if _, err := e.log.Upload(context.Background(), tf, other.pub.File(), []byte(p.SHA256Sum)); err != nil {
				return err
			}
		}
		return nil
	}
	// One upload at a time: 3 foreign entries after each of the first 4
	// are inside the run's range (12 > 5).
	sum := e.run([]string{"core"}, func(o *Options) { o.Jobs = 1 })
	if sum.Failed != 0 || sum.Settled != 5 || sum.SettleMode != "fetched" || sum.BundleCheckpoints != 1 {
		t.Fatalf("summary: %+v", sum)
	}
}
