package rekorv2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/bintrans/bintrans/internal/testkit/tilelog"
)

// fakeLog is a tilelog with n entries appended and published, the same
// entries in a reference RFC 6962 tree (transparency-dev/merkle), and a
// Reader for it.
type fakeLog struct {
	*tilelog.Log
	ref     *testonly.Tree
	entries [][]byte
	r       *Reader
	lv      *LogVerifier
}

func newFakeLog(t testing.TB, n int) *fakeLog {
	t.Helper()
	l := tilelog.New(t, "reader.test/log")
	lv, err := ParseLogKey(l.PublicKeyPEM, l.Origin)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(l.URL, nil, lv, WithReadRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLog{Log: l, ref: testonly.New(rfc6962.DefaultHasher), r: r, lv: lv}
	f.add(n)
	l.Publish()
	return f
}

func (f *fakeLog) add(n int) {
	for range n {
		e := []byte(fmt.Sprintf(`{"entry":%d}`, len(f.entries)))
		f.entries = append(f.entries, e)
		f.ref.AppendData(e)
		f.Append(e)
	}
}

func (f *fakeLog) checkpoint(t testing.TB, size uint64) *Checkpoint {
	t.Helper()
	cp, err := f.lv.VerifyCheckpoint(f.Checkpoint(size))
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func (f *fakeLog) tree(t testing.TB) *Tree {
	t.Helper()
	cp, err := f.r.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := f.r.At(cp)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func leafOf(e []byte) [32]byte { return [32]byte(rfc6962.DefaultHasher.HashLeaf(e)) }

func sameHashes(a [][32]byte, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i][:], b[i]) {
			return false
		}
	}
	return true
}

// Proofs built from tiles are exactly RFC 6962's (transparency-dev/merkle's
// reference tree), across tile boundaries and partial tiles.
func TestTreeProofs(t *testing.T) {
	ctx := context.Background()
	f := newFakeLog(t, 70000) // three levels of tiles, partial at each
	tr := f.tree(t)
	if tr.Checkpoint().Size != 70000 || tr.Checkpoint().Root != [32]byte(f.ref.Hash()) {
		t.Fatalf("checkpoint %s", tr.Checkpoint())
	}
	for _, i := range []uint64{0, 1, 255, 256, 65535, 65536, 69999} {
		p, err := tr.InclusionProof(ctx, i, leafOf(f.entries[i]))
		if err != nil {
			t.Fatalf("inclusion %d: %v", i, err)
		}
		want, _ := f.ref.InclusionProof(i, 70000)
		if !sameHashes(p, want) {
			t.Fatalf("inclusion %d: not the RFC 6962 proof", i)
		}
	}
	for _, old := range []uint64{1, 2, 255, 256, 257, 65536, 69998} {
		p, err := tr.ConsistencyProof(ctx, f.checkpoint(t, old))
		if err != nil {
			t.Fatalf("consistency %d: %v", old, err)
		}
		want, _ := f.ref.ConsistencyProof(old, 70000)
		if !sameHashes(p, want) {
			t.Fatalf("consistency %d: not the RFC 6962 proof", old)
		}
	}
	// The same size and root, and the empty tree, are trivially consistent.
	if p, err := tr.ConsistencyProof(ctx, tr.Checkpoint()); err != nil || p != nil {
		t.Fatalf("same checkpoint: %v", err)
	}
	if _, err := tr.ConsistencyProof(ctx, f.checkpoint(t, 0)); err != nil {
		t.Fatalf("from empty: %v", err)
	}
	// Another leaf at an index is evidence, not a proof.
	var lm *LeafMismatchError
	if _, err := tr.InclusionProof(ctx, 7, leafOf(f.entries[8])); !errors.As(err, &lm) || lm.Index != 7 || lm.Got != leafOf(f.entries[7]) {
		t.Fatalf("wrong leaf: %v", err)
	}
	if _, err := tr.InclusionProof(ctx, 70000, leafOf(f.entries[0])); err == nil {
		t.Fatal("proof beyond the tree")
	}
	// Verified tiles are cached: a second proof in the same tiles reads nothing.
	before := f.Requests("/tile/")
	if _, err := tr.InclusionProof(ctx, 3, leafOf(f.entries[3])); err != nil {
		t.Fatal(err)
	}
	if n := f.Requests("/tile/") - before; n != 0 {
		t.Fatalf("%d tile requests for a proof in cached tiles", n)
	}
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	f := newFakeLog(t, 300)
	old, err := f.r.Update(ctx, nil)
	if err != nil || old.Size != 300 {
		t.Fatalf("%v %v", old, err)
	}
	f.add(500)
	f.Publish()
	cp, err := f.r.Update(ctx, old)
	if err != nil || cp.Size != 800 {
		t.Fatalf("%v %v", cp, err)
	}
}

func collect(t testing.TB, tr *Tree, from, to uint64, jobs int) ([]Entry, error) {
	t.Helper()
	var out []Entry
	for e, err := range tr.Entries(context.Background(), from, to, jobs) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Entries yields exactly the log's entries, in order, over any range, with
// any concurrency, and reading can resume where it stopped.
func TestEntries(t *testing.T) {
	f := newFakeLog(t, 1000)
	tr := f.tree(t)
	for _, c := range []struct {
		from, to uint64
		jobs     int
	}{{0, 1000, 1}, {0, 1000, 8}, {0, 1, 4}, {255, 257, 2}, {300, 1000, 3}, {0, 256, 1}, {257, 700, 16}, {999, 1000, 1}, {5, 5, 1}} {
		got, err := collect(t, tr, c.from, c.to, c.jobs)
		if err != nil {
			t.Fatalf("[%d, %d) jobs %d: %v", c.from, c.to, c.jobs, err)
		}
		if uint64(len(got)) != c.to-c.from {
			t.Fatalf("[%d, %d): %d entries", c.from, c.to, len(got))
		}
		for i, e := range got {
			idx := c.from + uint64(i)
			if e.Index != idx || !bytes.Equal(e.Body, f.entries[idx]) || e.LeafHash != leafOf(f.entries[idx]) {
				t.Fatalf("[%d, %d): entry %d is %d %q", c.from, c.to, idx, e.Index, e.Body)
			}
		}
	}
	// Resume: what a monitor does across runs (another tree, later).
	f.add(300)
	f.Publish()
	tr2 := f.tree(t)
	if _, err := tr2.ConsistencyProof(context.Background(), tr.Checkpoint()); err != nil {
		t.Fatal(err)
	}
	rest, err := collect(t, tr2, 1000, 1300, 4)
	if err != nil || len(rest) != 300 || rest[0].Index != 1000 || !bytes.Equal(rest[299].Body, f.entries[1299]) {
		t.Fatalf("resume: %d entries, %v", len(rest), err)
	}
	// Stopping early is fine.
	n := 0
	for range tr2.Entries(context.Background(), 0, 1300, 8) {
		if n++; n == 3 {
			break
		}
	}
	if _, err := collect(t, tr2, 0, 1301, 1); err == nil {
		t.Fatal("a range beyond the tree")
	}
}

// After a tile server's garbage collection the partial tiles of an older
// checkpoint are gone: they are read from the full tiles.
func TestPartialsCollected(t *testing.T) {
	ctx := context.Background()
	f := newFakeLog(t, 300)
	tr := f.tree(t) // size 300: tile 0/001.p/44, entries/001.p/44
	f.add(212)      // now 512: tiles 0/001 and entries/001 are full
	f.Publish()
	f.CollectPartials(true)
	if _, err := tr.InclusionProof(ctx, 299, leafOf(f.entries[299])); err != nil {
		t.Fatalf("inclusion: %v", err)
	}
	got, err := collect(t, tr, 250, 300, 2)
	if err != nil || len(got) != 50 || !bytes.Equal(got[49].Body, f.entries[299]) {
		t.Fatalf("entries: %d %v", len(got), err)
	}
}

// Every lie of the tile server is refused, with an error that names it.
func TestReaderRefusesLies(t *testing.T) {
	ctx := context.Background()
	asTile := func(err error, kind TileErrorKind) bool {
		var te *TileError
		return errors.As(err, &te) && te.Kind == kind
	}

	t.Run("fork", func(t *testing.T) {
		f := newFakeLog(t, 600)
		old := f.checkpoint(t, 600)
		f.SetLie(tilelog.LieFork, 500) // same size, different entries after 500
		var fe *ForkError
		if _, err := f.r.Update(ctx, old); !errors.As(err, &fe) || fe.Old.Size != 600 || fe.New.Size != 600 {
			t.Fatalf("same-size fork: %v", err)
		}
		old = f.checkpoint(t, 550)
		if _, err := f.r.Update(ctx, old); !errors.As(err, &fe) || fe.Old.Size != 550 {
			t.Fatalf("fork below: %v", err)
		}
		t.Log(fe)
		// A consistent older checkpoint (before the fork point) is fine: the
		// fork is only seen by those who saw the other branch.
		if _, err := f.r.Update(ctx, f.checkpoint(t, 400)); err != nil {
			t.Fatalf("before the fork: %v", err)
		}
	})
	t.Run("rollback", func(t *testing.T) {
		f := newFakeLog(t, 600)
		old := f.checkpoint(t, 600)
		f.SetLie(tilelog.LieRollback, 300)
		var re *RollbackError
		if _, err := f.r.Update(ctx, old); !errors.As(err, &re) || re.Old.Size != 600 || re.New.Size != 300 {
			t.Fatalf("rollback: %v", err)
		}
		t.Log(re)
	})
	t.Run("tile that does not hash to the checkpoint", func(t *testing.T) {
		f := newFakeLog(t, 600)
		tr := f.tree(t)
		f.SetLie(tilelog.LieBadTile, 0)
		_, err := tr.InclusionProof(ctx, 10, leafOf(f.entries[10]))
		if !asTile(err, TileInconsistent) {
			t.Fatalf("inclusion: %v", err)
		}
		t.Log(err)
		if _, err := tr.ConsistencyProof(ctx, f.checkpoint(t, 100)); !asTile(err, TileInconsistent) {
			t.Fatalf("consistency: %v", err)
		}
		if _, err := collect(t, tr, 0, 600, 4); !asTile(err, TileInconsistent) {
			t.Fatalf("entries: %v", err)
		}
	})
	t.Run("partial tile beyond the checkpoint", func(t *testing.T) {
		f := newFakeLog(t, 300)
		tr := f.tree(t)
		f.add(100) // appended, not published: the tiles grow, the checkpoint does not
		f.SetLie(tilelog.LiePartialBeyond, 0)
		_, err := tr.InclusionProof(ctx, 299, leafOf(f.entries[299]))
		if !asTile(err, TileWrongSize) {
			t.Fatalf("inclusion: %v", err)
		}
		t.Log(err)
		if _, err := collect(t, tr, 256, 300, 1); !asTile(err, TileWrongSize) {
			t.Fatalf("entries: %v", err)
		}
	})
	t.Run("entry bundle that does not match the hash tiles", func(t *testing.T) {
		f := newFakeLog(t, 600)
		tr := f.tree(t)
		f.SetLie(tilelog.LieBadEntryBundle, 0)
		got, err := collect(t, tr, 0, 600, 4)
		var te *TileError
		if !errors.As(err, &te) || te.Kind != EntryBundleMismatch || te.Index != 255 {
			t.Fatalf("entries: %v", err)
		}
		if len(got) != 0 {
			t.Fatalf("%d entries of a bad bundle were yielded", len(got))
		}
		t.Log(err)
	})
	t.Run("checkpoint by another key", func(t *testing.T) {
		f := newFakeLog(t, 10)
		f.SetLie(tilelog.LieOtherKey, 0)
		var ce *CheckpointError
		if _, err := f.r.Checkpoint(ctx); !errors.As(err, &ce) {
			t.Fatalf("checkpoint: %v", err)
		}
	})
	t.Run("a checkpoint the reader did not verify", func(t *testing.T) {
		f := newFakeLog(t, 10)
		cp := f.checkpoint(t, 10)
		forged := *cp
		forged.Size = 11
		if _, err := f.r.At(&forged); err == nil {
			t.Fatal("At accepted fields that are not the signed text's")
		}
	})
}

// A tree keeps the hashes it authenticated: thousands of proofs in one
// tree (a settle) are still exactly RFC 6962's, and a leaf that is not
// the tiles' is still caught after its neighbours were proven.
func TestTreeHashCache(t *testing.T) {
	ctx := context.Background()
	f := newFakeLog(t, 3000)
	tr := f.tree(t)
	for round := range 2 {
		for i := uint64(round); i < 3000; i += 5 {
			p, err := tr.InclusionProof(ctx, i, leafOf(f.entries[i]))
			if err != nil {
				t.Fatalf("inclusion %d: %v", i, err)
			}
			want, _ := f.ref.InclusionProof(i, 3000)
			if !sameHashes(p, want) {
				t.Fatalf("inclusion %d (round %d): not the RFC 6962 proof", i, round)
			}
		}
	}
	if n := len(tr.hashes); n == 0 {
		t.Fatal("no hash cached")
	}
	var lm *LeafMismatchError
	if _, err := tr.InclusionProof(ctx, 10, leafOf(f.entries[11])); !errors.As(err, &lm) {
		t.Fatalf("wrong leaf after caching: %v", err)
	}
}
