package rekorv2_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/testkit/enginetest"
	"github.com/bintrans/bintrans/internal/testkit/memlog"
	"github.com/bintrans/bintrans/internal/testkit/tilelog"
	"github.com/bintrans/bintrans/verify"
)

func shardOf(t *testing.T, origin string, from, to time.Time) (rekorv2.Shard, note.Signer) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := rekorv2.ParseLogKey([]byte(vkey), origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return rekorv2.Shard{Log: lv, NotBefore: from, NotAfter: to}, s
}

func checkpointBy(t *testing.T, s note.Signer, origin string) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: origin + "\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShardedVerifier: each shard's checkpoints verify under its own key;
// a shard whose window ended still verifies, one whose window has not begun
// is refused, an origin not listed is refused, and one shard's key does
// not vouch for another's origin. Current picks the shard of the time.
func TestShardedVerifier(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	jan, jul, next := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	old, so := shardOf(t, "log2025-2.example", time.Time{}, jan)
	cur, sc := shardOf(t, "log2026-1.example", jan, jul)
	fut, sf := shardOf(t, "log2026-2.example", jul, next)
	v, err := rekorv2.NewShardedVerifier([]rekorv2.Shard{old, cur, fut}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s      note.Signer
		origin string
		ok     bool
		want   string
	}{
		{so, "log2025-2.example", true, ""},
		{sc, "log2026-1.example", true, ""},
		{sf, "log2026-2.example", false, "window begins"},
		{so, "log2026-1.example", false, ""}, // the old shard's key, the current origin
		{sc, "other.example", false, "none of the configured shards"},
	} {
		cp, err := v.VerifyCheckpoint(checkpointBy(t, c.s, c.origin))
		var ce *verify.CheckpointError
		switch {
		case c.ok && (err != nil || cp.Origin != c.origin):
			t.Errorf("%s: %v", c.origin, err)
		case !c.ok && (err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want a checkpoint error saying %q", c.origin, err, c.want)
		}
	}
	shards := []rekorv2.Shard{old, cur, fut}
	if c := rekorv2.Current(shards, now); c == nil || c.Log.Origin() != "log2026-1.example" {
		t.Errorf("current in March: %v", c)
	}
	if c := rekorv2.Current(shards, jul); c == nil || c.Log.Origin() != "log2026-2.example" {
		t.Errorf("current on July 1st: %v", c)
	}
	if c := rekorv2.Current(shards, next); c != nil {
		t.Errorf("current in 2027: %v", c.Log.Origin())
	}
	dup, _ := shardOf(t, "log2026-1.example", jul, next)
	for _, bad := range [][]rekorv2.Shard{nil, {cur, dup}, {cur, cur}, {{Log: cur.Log, NotBefore: jul, NotAfter: jan}}} {
		if err := rekorv2.CheckShards(bad); err == nil {
			t.Errorf("CheckShards accepted %v", bad)
		}
	}
}

// shardsClient is the online side of two tile logs as shards (verify.Shards).
type shardsClient struct {
	verify.LogClient // the current shard
	by               map[string]shardPart
}

type shardPart struct {
	log   verify.LogClient
	store *enginetest.Store
}

func (s shardsClient) Shard(origin string) (verify.LogClient, verify.CheckpointStore, bool) {
	p, ok := s.by[origin]
	return p.log, p.store, ok
}

// TestEngineShards: the engine online over a log with two shards (two tile
// logs, two origins and keys): bundles of both verify, each shard's
// current checkpoint is stored in its own store (no SECURITY ERROR for the
// origin change); without Shards the same batch is a SECURITY ERROR; a
// fork of the old shard is caught against that shard's checkpoint.
func TestEngineShards(t *testing.T) {
	a := newV2Repo(t, 2)
	b := &v2Repo{log: tilelog.New(t, "rekor-v2.test/shard-b"), src: a.src, store: &enginetest.Store{}, sk: a.sk, pk: a.pk}
	var err error
	if b.lv, err = rekorv2.ParseLogKey([]byte(b.log.VKey), ""); err != nil {
		t.Fatal(err)
	}
	b.pkgs = make([]*memlog.Package, 50) // other packages than a's
	b.add(t, 3)
	b.pkgs = b.pkgs[50:]
	arts := append(a.arts(), b.arts()...)
	sv, err := rekorv2.NewShardedVerifier([]rekorv2.Shard{{Log: a.lv}, {Log: b.lv}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := shardsClient{LogClient: b.online(t), by: map[string]shardPart{
		a.lv.Origin(): {a.online(t), a.store}, b.lv.Origin(): {b.online(t), b.store}}}
	pol := verify.Policy{Keys: []verify.PublicKey{a.pk}, Log: sv}
	v, err := verify.NewVerifier(pol, a.src, client, &enginetest.Store{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyAll(ctx, arts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != verify.StatusOK {
			t.Fatalf("%s: %s %v", r.Artifact.Filename, r.Status, r.Err)
		}
	}
	for _, r := range []*v2Repo{a, b} {
		cp, _ := r.store.Load(ctx)
		if !strings.HasPrefix(string(cp), r.lv.Origin()+"\n") {
			t.Fatalf("store of %s: %q", r.lv.Origin(), cp)
		}
	}
	// One log client for both origins: the old shard's checkpoints are
	// another origin than the current one's.
	v, _ = verify.NewVerifier(pol, a.src, b.online(t), &enginetest.Store{}, nil)
	if _, err := v.VerifyAll(ctx, arts); verify.OutcomeOf(err) != verify.Inconsistent {
		t.Fatalf("without Shards: %v", err)
	}
	// The old shard forks below its bundles' tree: caught against its own
	// checkpoint.
	a.log.SetLie(tilelog.LieFork, 1)
	client.by[a.lv.Origin()] = shardPart{a.online(t), a.store}
	v, _ = verify.NewVerifier(pol, a.src, client, &enginetest.Store{}, nil)
	var sec *verify.SecurityError
	if _, err := v.VerifyAll(ctx, arts); !errors.As(err, &sec) {
		t.Fatalf("fork of the old shard: %v", err)
	}
}
