package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// Rekor v2 shards (--log-shard, repeatable; 'log-shard = …' lines in
// /etc/bintrans.conf): a log that rotates (a new origin, key and URL about
// every six months) is configured as the list of its shards, each
//
//	ORIGIN URL READ_URL KEYFILE NOT_BEFORE NOT_AFTER
//
// (READ_URL "-": URL; NOT_BEFORE/NOT_AFTER "-": unbounded, else a date
// 2026-01-02 (00:00 UTC) or an RFC 3339 time). It replaces --log-url,
// --log-read-url, --log-key and --log-origin. sign writes to the shard
// whose window [NOT_BEFORE, NOT_AFTER) holds the time of signing; verify,
// hook, fetch and scan accept a bundle of any shard whose window has begun,
// each verified under its own key and proven consistent, online, with its
// own shard's checkpoint (stored per origin, as for one log); monitor and
// audit tail every shard, each with its own state.

// shardSpec is one parsed --log-shard.
type shardSpec struct {
	Origin, URL, ReadURL, KeyFile string
	NotBefore, NotAfter           time.Time
}

func parseShardTime(s string) (time.Time, error) {
	if s == "-" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2026-07-01), an RFC 3339 time or '-'", s)
	}
	return t, nil
}

func parseShard(s string) (shardSpec, error) {
	f := strings.Fields(s)
	if len(f) != 6 {
		return shardSpec{}, fmt.Errorf("%d fields, want 6: ORIGIN URL READ_URL KEYFILE NOT_BEFORE NOT_AFTER", len(f))
	}
	sp := shardSpec{Origin: f[0], URL: f[1], ReadURL: f[2], KeyFile: f[3]}
	if sp.ReadURL == "-" {
		sp.ReadURL = sp.URL
	}
	for _, u := range []string{sp.URL, sp.ReadURL} {
		if _, err := checkHTTPURL(u); err != nil {
			return shardSpec{}, fmt.Errorf("URL %q: %v", u, err)
		}
	}
	var err error
	if sp.NotBefore, err = parseShardTime(f[4]); err != nil {
		return shardSpec{}, fmt.Errorf("NOT_BEFORE: %v", err)
	}
	if sp.NotAfter, err = parseShardTime(f[5]); err != nil {
		return shardSpec{}, fmt.Errorf("NOT_AFTER: %v", err)
	}
	return sp, nil
}

const shardHint = "give each shard as --log-shard 'ORIGIN URL READ_URL KEYFILE NOT_BEFORE NOT_AFTER' (or a 'log-shard = …' line in /etc/bintrans.conf), e.g. 'log2026-1.rekor.example https://log2026-1.rekor.example - /etc/bintrans/log2026-1.pub 2026-01-01 2026-07-01'"

// logShards parses --log-shard: nil without one. Each shard's key is read
// and pinned with its origin as --log-key/--log-origin are.
func (f *LogFlags) logShards() ([]shardSpec, []rekorv2.Shard, error) {
	if len(f.LogShard) == 0 {
		return nil, nil, nil
	}
	switch {
	case f.LogKind != kindRekorV2:
		return nil, nil, usageErrorf("add --log-kind rekor-v2, or drop --log-shard", "--log-shard is for --log-kind rekor-v2 (a log that rotates shards)")
	case strings.TrimRight(f.LogURL, "/") != DefaultLogURL || f.LogKey != "" || f.LogOrigin != "" || f.LogReadURL != "":
		return nil, nil, usageErrorf("name every shard, the current one too, with --log-shard, and drop --log-url, --log-read-url, --log-key and --log-origin",
			"--log-shard replaces --log-url, --log-read-url, --log-key and --log-origin")
	}
	var specs []shardSpec
	var shards []rekorv2.Shard
	for i, s := range f.LogShard {
		sp, err := parseShard(s)
		if err != nil {
			return nil, nil, usageErrorf(shardHint, "--log-shard #%d %q: %v", i+1, short(s), err)
		}
		b, err := readSmallFile(sp.KeyFile, rekorv2.MaxLogKeySize)
		if err != nil {
			return nil, nil, usageErrorf(fileHint(err, "check the KEYFILE of --log-shard "+sp.Origin), "--log-shard %s: key: %v", sp.Origin, err)
		}
		lv, err := rekorv2.ParseLogKey(b, sp.Origin)
		if err != nil {
			return nil, nil, usageErrorf("KEYFILE must hold the shard's Ed25519 key as PEM, or its verifier key line whose name is ORIGIN", "--log-shard %s: %s: %v", sp.Origin, sp.KeyFile, err)
		}
		specs = append(specs, sp)
		shards = append(shards, rekorv2.Shard{Log: lv, NotBefore: sp.NotBefore, NotAfter: sp.NotAfter})
	}
	if err := rekorv2.CheckShards(shards); err != nil {
		return nil, nil, usageErrorf(shardHint, "--log-shard: %v", err)
	}
	return specs, shards, nil
}

// forShard is f naming one shard as a single log (--log-url, --log-read-url,
// --log-key, --log-origin), for the code that works on one log.
func (f *LogFlags) forShard(sp shardSpec) LogFlags {
	g := *f
	g.LogShard = nil
	g.LogURL, g.LogReadURL, g.LogKey, g.LogOrigin = sp.URL, sp.ReadURL, sp.KeyFile, sp.Origin
	return g
}

// currentShard is f naming the shard whose window holds now (sign writes
// there); f itself without --log-shard. No current shard is a usage error.
func (f *LogFlags) currentShard(now time.Time) (LogFlags, error) {
	specs, shards, err := f.logShards()
	if err != nil || specs == nil {
		return *f, err
	}
	cur := rekorv2.Current(shards, now)
	if cur == nil {
		return *f, usageErrorf("add the shard the log writes to now with --log-shard (its window must hold the current time), or fix the windows",
			"--log-shard: no shard's window holds %s", now.UTC().Format(time.RFC3339))
	}
	for i := range shards {
		if &shards[i] == cur {
			return f.forShard(specs[i]), nil
		}
	}
	return *f, nil
}

// rekorV2ShardsSetup is logSetup for --log-shard: the sharded verifier,
// each shard's witness quorum, and an online side with Shards.
func (f *LogFlags) rekorV2ShardsSetup(specs []shardSpec, shards []rekorv2.Shard) (*logSetup, error) {
	v, err := rekorv2.NewShardedVerifier(shards, nil)
	if err != nil {
		return nil, usageErrorf(shardHint, "--log-shard: %v", err)
	}
	sw := shardWitnesses{}
	on := &shardedOnline{byOrigin: map[string]*shardOnline{}}
	var where []string
	for i, sp := range specs {
		lv := shards[i].Log
		w, err := f.rekorV2Witnesses(lv)
		if err != nil {
			return nil, err
		}
		if w != nil {
			sw[lv.Origin()] = w
		}
		id := lv.KeyID()
		on.byOrigin[lv.Origin()] = &shardOnline{spec: sp, lv: lv, stateID: hex.EncodeToString(id[:])}
		on.order = append(on.order, lv.Origin())
		where = append(where, sp.ReadURL)
	}
	cur := on.current()
	s := &logSetup{Verifier: v, StateID: cur.stateID, where: strings.Join(where, ", ")}
	if len(sw) > 0 {
		s.Witnesses = sw
	}
	s.online = func(hc *http.Client) (verify.LogClient, error) {
		for _, o := range on.order {
			sh := on.byOrigin[o]
			r, err := rekorv2.NewReader(sh.spec.ReadURL, hc, sh.lv)
			if err != nil {
				return nil, usageErrorf("check the READ_URL of --log-shard "+o, "--log-shard %s: %v", o, err)
			}
			sh.log = rekorv2.NewOnline(r)
		}
		return on, nil
	}
	s.shards = on
	return s, nil
}

// shardWitnesses is the witness quorum of each shard, by origin.
type shardWitnesses map[string]verify.Witnesses

// CheckCosignatures checks the quorum of the note's shard (its origin
// line); a shard without one passes.
func (s shardWitnesses) CheckCosignatures(note []byte) error {
	origin, _, _ := strings.Cut(string(note), "\n")
	if w := s[origin]; w != nil {
		return w.CheckCosignatures(note)
	}
	return nil
}

// shardOnline is one shard's online side.
type shardOnline struct {
	spec    shardSpec
	lv      *rekorv2.LogVerifier
	stateID string
	log     verify.LogClient
}

// shardedOnline is the online side of a log with shards (verify.Shards):
// as a LogClient it is the current shard; Shard gives each shard's log
// and checkpoint store (in the state directory bound with bindState).
type shardedOnline struct {
	byOrigin map[string]*shardOnline
	order    []string
	state    *state.Dir
	readOnly bool // the stores keep nothing (doctor)
	now      func() time.Time
}

var _ verify.Shards = (*shardedOnline)(nil)

// current is the shard whose window holds now, else the last listed.
func (s *shardedOnline) current() *shardOnline {
	now := time.Now()
	if s.now != nil {
		now = s.now()
	}
	var shards []rekorv2.Shard
	for _, o := range s.order {
		sh := s.byOrigin[o]
		shards = append(shards, rekorv2.Shard{Log: sh.lv, NotBefore: sh.spec.NotBefore, NotAfter: sh.spec.NotAfter})
	}
	if c := rekorv2.Current(shards, now); c != nil {
		return s.byOrigin[c.Log.Origin()]
	}
	return s.byOrigin[s.order[len(s.order)-1]]
}

func (s *shardedOnline) bindState(sd *state.Dir, readOnly bool) { s.state, s.readOnly = sd, readOnly }

// Checkpoint is the current shard's checkpoint.
func (s *shardedOnline) Checkpoint(ctx context.Context) ([]byte, error) {
	return s.current().log.Checkpoint(ctx)
}

// ConsistencyProof is the current shard's.
func (s *shardedOnline) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	return s.current().log.ConsistencyProof(ctx, first, last)
}

// Shard returns the shard of origin: its log (nil offline: not built)
// and stored checkpoint.
func (s *shardedOnline) Shard(origin string) (verify.LogClient, verify.CheckpointStore, bool) {
	sh := s.byOrigin[origin]
	if sh == nil {
		return nil, nil, false
	}
	var st verify.CheckpointStore
	if s.state != nil {
		st = s.state.CheckpointsFor(sh.stateID)
		if s.readOnly {
			st = readOnlyStore{st}
		}
	}
	return sh.log, st, true
}
