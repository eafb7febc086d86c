package monitor

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/memlog"
	"github.com/bintrans/bintrans/internal/testkit/tilelog"
	"github.com/bintrans/bintrans/verify"
)

// RunTiles over a tile log that tells the truth, then lies: the key's
// entries among others' are listed once each, incrementally; a fork or a
// rollback is a SECURITY ERROR, an entry bundle that does not match the hash
// tiles an error; neither is stored.

type tilesFixture struct {
	log  *tilelog.Log
	opts TilesOptions
	priv ed25519.PrivateKey
	n    int
}

func newTilesFixture(t *testing.T) *tilesFixture {
	t.Helper()
	l := tilelog.New(t, "monitor.test/v2")
	lv, err := rekorv2.ParseLogKey([]byte(l.VKey), "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := rekorv2.NewReader(l.URL, nil, lv)
	if err != nil {
		t.Fatal(err)
	}
	sk, pk := memlog.Key(t, 7)
	sd, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &tilesFixture{log: l, priv: ed25519.PrivateKey(sk.SecretKey[:]),
		opts: TilesOptions{Keys: []verify.PublicKey{pk}, Log: lv, Reader: r, LogURL: l.URL, State: sd}}
}

// add logs n entries of the key, each between two entries of another key.
func (f *tilesFixture) add(t *testing.T, n int) []string {
	t.Helper()
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	var leaves []string
	for range n {
		f.n++
		sha := sha256.Sum256(fmt.Appendf(nil, "package %d", f.n))
		mine, err := rekorv2.Sign(f.priv, []byte(hex.EncodeToString(sha[:])))
		if err != nil {
			t.Fatal(err)
		}
		theirs, _ := rekorv2.Sign(other, []byte(hex.EncodeToString(sha[:])))
		f.log.Append(theirs.Body(), mine.Body())
		leaf := mine.LeafHash()
		leaves = append(leaves, hex.EncodeToString(leaf[:]))
	}
	f.log.Append([]byte("not an entry at all"))
	f.log.Publish()
	return leaves
}

func TestRunTiles(t *testing.T) {
	f := newTilesFixture(t)
	ctx := context.Background()
	want := f.add(t, 300) // more than one entry bundle
	rep, err := RunTiles(ctx, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.New != 300 || rep.Total != 300 || len(rep.Findings) != 0 || rep.Previous != nil {
		t.Fatalf("first run: new %d total %d findings %v", rep.New, rep.Total, rep.Findings)
	}
	for i, e := range rep.Entries {
		if e.UUID != want[i] || e.MessageSHA512 == "" {
			t.Fatalf("entry %d: %+v, want leaf %s", i, e, want[i])
		}
	}
	more := f.add(t, 3)
	rep, err = RunTiles(ctx, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.New != 3 || rep.Total != 303 || rep.Previous == nil || len(rep.Entries) != 3 || rep.Entries[2].UUID != more[2] {
		t.Fatalf("second run: new %d total %d entries %v", rep.New, rep.Total, rep.Entries)
	}

	stored, _ := os.ReadFile(f.opts.State.Path(tilesStateName(f.log.Origin)))
	for _, tc := range []struct {
		lie  tilelog.Lie
		arg  uint64
		sec  bool
		what string
	}{
		{tilelog.LieFork, 10, true, "fork"},
		{tilelog.LieRollback, 20, true, "rollback"},
		{tilelog.LieBadEntryBundle, 0, false, "bad entry bundle"},
		{tilelog.LieBadTile, 0, false, "bad hash tile"},
	} {
		f.add(t, 1)
		f.log.SetLie(tc.lie, tc.arg)
		_, err := RunTiles(ctx, f.opts)
		var sec *verify.SecurityError
		if err == nil || errors.As(err, &sec) != tc.sec {
			t.Errorf("%s: %v", tc.what, err)
		}
		f.log.SetLie(tilelog.Honest, 0)
		if now, _ := os.ReadFile(f.opts.State.Path(tilesStateName(f.log.Origin))); string(now) != string(stored) {
			t.Errorf("%s: the state changed", tc.what)
		}
	}
	// Honest again: everything since the stored checkpoint is read.
	rep, err = RunTiles(ctx, f.opts)
	if err != nil || rep.New != 4 || rep.Total != 307 {
		t.Fatalf("after the lies: %v, new %d total %d", err, rep.New, rep.Total)
	}
}
