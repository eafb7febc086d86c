package monitor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// key is a fresh minisign key pair.
type key struct {
	sk  *minisign.PrivateKey
	pub verify.PublicKey
}

func newKey(t testing.TB) key {
	t.Helper()
	_, edsk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	rand.Read(sk.KeyId[:])
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return key{sk, pk}
}

// randSHA is a random package sha256 (hex).
func randSHA() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// signed is one signature and the canonical body the log stores for it.
type signed struct {
	msg  string
	t    []byte
	sig  *verify.Signature
	body []byte
}

func (k key) sign(t testing.TB, msg string) signed {
	t.Helper()
	tb, err := verify.SignPackage(k.sk, msg, "pkg-"+msg[:8]+".pkg.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.ParseSignature(tb)
	if err != nil {
		t.Fatal(err)
	}
	return signed{msg: msg, t: tb, sig: s, body: rekorv1.CanonicalBody(s, k.pub, []byte(msg))}
}

// withKeyID is s's body with the key id in the signature line replaced:
// the variant anyone can log.
func (s signed) withKeyID(pub verify.PublicKey, id [8]byte) []byte {
	line := bytes.Clone(s.sig.Line())
	copy(line[2:10], id[:])
	t := fmt.Sprintf("untrusted comment: x\n%s\ntrusted comment: y\n%s\n", base64.StdEncoding.EncodeToString(line),
		base64.StdEncoding.EncodeToString(make([]byte, 64)))
	v, err := verify.ParseSignature([]byte(t))
	if err != nil {
		panic(err)
	}
	return rekorv1.CanonicalBody(v, pub, []byte(s.msg))
}

type fixture struct {
	t    *testing.T
	log  *fakelog.Log
	lk   *rekorv1.LogKey
	c    *rekorv1.Client
	dir  *state.Dir
	key  key
	sigs []signed
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	l := fakelog.New(t)
	lk, err := rekorv1.ParseLogKey(l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rekorv1.New(l.URL, nil, rekorv1.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, log: l, lk: lk, c: c, dir: dir, key: newKey(t)}
	// Entries of other keys around ours.
	other := newKey(t)
	for range 3 {
		l.Add(other.sign(t, randSHA()).body)
	}
	f.add(n)
	return f
}

func (f *fixture) add(n int) []signed {
	var out []signed
	for range n {
		s := f.key.sign(f.t, randSHA())
		f.log.Add(s.body)
		out = append(out, s)
	}
	f.sigs = append(f.sigs, out...)
	return out
}

func (f *fixture) opts() Options {
	return Options{Keys: []verify.PublicKey{f.key.pub}, LogKey: f.lk, Log: f.c, LogURL: f.log.URL, State: f.dir}
}

func (f *fixture) run(o Options) *Report {
	f.t.Helper()
	rep, err := Run(context.Background(), o)
	if err != nil {
		f.t.Fatalf("monitor run: %v", err)
	}
	return rep
}

func leafSet(t *testing.T, sigs []signed) map[string]string {
	m := map[string]string{}
	for _, s := range sigs {
		sum := sha256.Sum256([]byte(s.msg))
		m[rekorv1.LeafHash(s.body)] = hex.EncodeToString(sum[:])
	}
	return m
}

// checkEntries asserts that got is exactly want (by leaf hash, with the
// right message hash), sorted by log index, each once.
func checkEntries(t *testing.T, got []Entry, want []signed) {
	t.Helper()
	w := leafSet(t, want)
	if len(got) != len(w) {
		t.Errorf("%d entries reported, want %d", len(got), len(w))
	}
	seen := map[string]bool{}
	for i, e := range got {
		leaf := e.UUID[len(e.UUID)-64:]
		if seen[leaf] {
			t.Errorf("entry %s reported twice", e.UUID)
		}
		seen[leaf] = true
		if msg, ok := w[leaf]; !ok {
			t.Errorf("entry %s (index %d) reported but not expected", e.UUID, e.LogIndex)
		} else if msg != e.MessageSHA256 {
			t.Errorf("entry %d: message hash %s, want %s", e.LogIndex, e.MessageSHA256, msg)
		}
		if i > 0 && got[i-1].LogIndex >= e.LogIndex {
			t.Errorf("entries not sorted by index: %d then %d", got[i-1].LogIndex, e.LogIndex)
		}
		if e.KeyID != e.SigKeyID || !e.Indexed {
			t.Errorf("entry %d: %+v", e.LogIndex, e)
		}
	}
}

// Batch boundaries: 9, 10, 11, 20, 21 entries (Rekor retrieves 10 at a time).
func TestMonitorBatchBoundaries(t *testing.T) {
	for _, n := range []int{1, 9, 10, 11, 20, 21} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := newFixture(t, n)
			rep := f.run(f.opts())
			checkEntries(t, rep.Entries, f.sigs)
			if rep.New != n || rep.Total != n || len(rep.Findings) != 0 || rep.Previous != nil || rep.Current.Size != int64(n+3) {
				t.Errorf("report: new %d total %d findings %v previous %v size %d", rep.New, rep.Total, rep.Findings, rep.Previous, rep.Current.Size)
			}
			if got, want := f.log.Requests(fakelog.EndpointRetrieve), (n+9)/10; got != want {
				t.Errorf("%d retrieve requests, want %d", got, want)
			}
		})
	}
}

func TestMonitorIncremental(t *testing.T) {
	f := newFixture(t, 12)
	first := f.run(f.opts())
	checkEntries(t, first.Entries, f.sigs)

	// Nothing new: nothing reported, nothing fetched, consistency checked.
	before := f.log.Requests(fakelog.EndpointRetrieve)
	again := f.run(f.opts())
	if len(again.Entries) != 0 || again.New != 0 || again.Total != 12 || again.Previous == nil || again.Previous.Size != first.Current.Size {
		t.Fatalf("second run: %+v", again)
	}
	if f.log.Requests(fakelog.EndpointRetrieve) != before {
		t.Errorf("a run with nothing new fetched entries")
	}

	// New entries (and an entry of another key): only ours, only the new.
	newer := f.add(13)
	f.log.Add(newKey(t).sign(t, randSHA()).body)
	third := f.run(f.opts())
	checkEntries(t, third.Entries, newer)
	if third.New != 13 || third.Total != 25 || third.Previous.Size != again.Current.Size || third.Current.Size != f.log.Size() {
		t.Errorf("third run: new %d total %d previous %d current %d", third.New, third.Total, third.Previous.Size, third.Current.Size)
	}
	if proofs := f.log.Requests(fakelog.EndpointProof); proofs == 0 {
		t.Errorf("no consistency proof was asked for")
	}
	// --all: everything again, verified again.
	o := f.opts()
	o.All = true
	all := f.run(o)
	checkEntries(t, all.Entries, f.sigs)
	if all.New != 0 || all.Total != 25 {
		t.Errorf("--all: new %d total %d", all.New, all.Total)
	}
	checkEntries(t, all.AllEntries(), f.sigs)

	// Without state, every run is a first run.
	o = f.opts()
	o.State = nil
	if rep := f.run(o); rep.New != 25 || rep.Previous != nil {
		t.Errorf("stateless run: new %d previous %v", rep.New, rep.Previous)
	}
}

func TestMonitorKeyIDVariant(t *testing.T) {
	f := newFixture(t, 3)
	var id [8]byte
	rand.Read(id[:])
	variant := f.sigs[0].withKeyID(f.key.pub, id)
	f.log.Add(variant)
	rep := f.run(f.opts())
	if len(rep.Entries) != 4 || len(rep.Findings) != 1 || rep.Findings[0].Kind != FindingKeyIDMismatch {
		t.Fatalf("entries %d findings %+v", len(rep.Entries), rep.Findings)
	}
	if rep.Findings[0].UUID != f.log.UUID(variant) {
		t.Errorf("finding names %s, want %s", rep.Findings[0].UUID, f.log.UUID(variant))
	}
	// The variant is listed with both key ids.
	for _, e := range rep.Entries {
		if e.UUID == f.log.UUID(variant) && (e.SigKeyID == e.KeyID || e.KeyID != f.key.pub.KeyID()) {
			t.Errorf("variant entry %+v", e)
		}
	}
}

// A log whose answers do not verify: each entry is a finding, nothing is
// remembered as seen, and the next (honest) run reports them.
func TestMonitorInvalidEntries(t *testing.T) {
	for _, lie := range []fakelog.Lie{fakelog.LieSETForOtherBody, fakelog.LieProofForOtherLeaf, fakelog.LieOtherSigner, fakelog.LieProofTreeSize, fakelog.LieWrongRoot} {
		t.Run(lie.String(), func(t *testing.T) {
			f := newFixture(t, 11)
			f.log.SetLie(lie, fakelog.EndpointRetrieve)
			rep := f.run(f.opts())
			if len(rep.Entries) != 0 || len(rep.Findings) != 11 {
				t.Fatalf("entries %d findings %d", len(rep.Entries), len(rep.Findings))
			}
			for _, fi := range rep.Findings {
				var ee *rekorv1.EntryError
				if fi.Kind != FindingInvalidEntry || !errors.As(fi.Err, &ee) {
					t.Errorf("finding %+v", fi)
				}
			}
			f.log.SetLie(fakelog.Honest)
			rep = f.run(f.opts())
			checkEntries(t, rep.Entries, f.sigs)
		})
	}
}

func TestMonitorMissingAndForeign(t *testing.T) {
	f := newFixture(t, 2)
	// The log serves the entries with another key (search still lists them
	// for ours).
	f.log.SetLie(fakelog.LieOtherKey, fakelog.EndpointRetrieve)
	rep := f.run(f.opts())
	if len(rep.Findings) != 2 {
		t.Fatalf("findings %+v", rep.Findings)
	}
	for _, fi := range rep.Findings {
		// other-key bodies have other leaf hashes: the log does not return
		// what the search listed, or returns a foreign entry.
		if fi.Kind != FindingMissingEntry && fi.Kind != FindingForeignKey && fi.Kind != FindingInvalidEntry {
			t.Errorf("finding %+v", fi)
		}
	}
}

// The lying log (5): a fork or a rollback after a verified run is a
// SECURITY ERROR with both tree heads, and the stored state is kept.
func TestMonitorLyingLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  func(l *fakelog.Log)
	}{
		{"fork", func(l *fakelog.Log) { l.Fork(l.Size() - 5) }}, // before the stored checkpoint (size-2)
		{"rollback", func(l *fakelog.Log) { l.RollbackTo(l.Size() - 3) }},
		{"bad-consistency-proof", func(l *fakelog.Log) { l.SetLie(fakelog.LieBadConsistencyProof) }},
		{"wrong-root", func(l *fakelog.Log) { l.SetLie(fakelog.LieWrongRoot, fakelog.EndpointLogInfo) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 10)
			first := f.run(f.opts())
			f.add(2)
			path := f.dir.Path(stateName(f.lk.ID()))
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.lie(f.log)
			rep, err := Run(context.Background(), f.opts())
			var sec *verify.SecurityError
			if !errors.As(err, &sec) {
				t.Fatalf("run against a lying log: %v", err)
			}
			if !bytes.Equal(sec.Old, []byte(first.Current.Note)) && !strings.Contains(sec.Reason, "inclusion proof") {
				t.Errorf("the evidence is not the stored checkpoint:\n%s", sec.Old)
			}
			if len(sec.New) == 0 || !strings.Contains(sec.Error(), "SECURITY ERROR") {
				t.Errorf("no current tree head in %v", sec)
			}
			if rep == nil {
				t.Fatal("no report with the security error")
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Errorf("the state was changed by a run that found the log inconsistent")
			}
		})
	}
}

func TestMonitorExtraUUIDs(t *testing.T) {
	f := newFixture(t, 2)
	// An entry of our key that the index does not hold: the search does
	// not list it, a UUID lookup finds it.
	hidden := f.key.sign(t, randSHA())
	f.log.Add(hidden.body)
	other := newKey(t).sign(t, randSHA())
	f.log.Add(other.body)
	never := strings.Repeat("ab", 32)
	o := f.opts()
	o.Extra = []string{f.log.UUID(hidden.body), f.log.UUID(other.body), never, f.log.UUID(f.sigs[0].body)}
	rep := f.run(o)
	// The fake indexes everything, so hidden is listed: check Extra does
	// not duplicate it, the foreign one and the missing one are NotFound.
	if rep.New != 3 || len(rep.Entries) != 3 || len(rep.Findings) != 0 {
		t.Fatalf("new %d entries %d findings %v", rep.New, len(rep.Entries), rep.Findings)
	}
	if len(rep.NotFound) != 2 {
		t.Errorf("not found %v, want the foreign and the unknown uuid", rep.NotFound)
	}
}

func TestMonitorCorruptState(t *testing.T) {
	f := newFixture(t, 1)
	f.run(f.opts())
	path := f.dir.Path(stateName(f.lk.ID()))
	b, _ := os.ReadFile(path)
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)/2],
		"edited":    bytes.Replace(b, []byte(`"log_index":3`), []byte(`"log_index":-3`), 1),
		"empty":     {},
	} {
		os.WriteFile(path, bad, 0o600)
		_, err := Run(context.Background(), f.opts())
		var ce *state.CorruptError
		if !errors.As(err, &ce) {
			t.Errorf("%s state: %v", name, err)
		}
	}
	// A stored checkpoint by another log key.
	other := fakelog.New(t)
	var st stateFile
	st.SchemaVersion, st.LogID, st.Checkpoint = StateSchemaVersion, f.lk.ID(), string(other.Checkpoint())
	os.Remove(path) // the store never replaces a larger tree
	if err := saveState(path, &st); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), f.opts()); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("foreign stored checkpoint: %v", err)
	}
}

func TestMonitorLogDown(t *testing.T) {
	f := newFixture(t, 1)
	f.log.SetLie(fakelog.LieHTML502)
	_, err := Run(context.Background(), f.opts())
	var lu *verify.LogUnavailableError
	if !errors.As(err, &lu) {
		t.Fatalf("log down: %v", err)
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"log_id":"x","checkpoint":"","entries":[]}`))
	f.Add([]byte(`{"schema_version":1,"log_id":"x","checkpoint":"c","entries":[{"uuid":"` + strings.Repeat("a", 64) + `","log_index":1,"integrated_time":2,"message_sha256":"` + strings.Repeat("b", 64) + `","key":"RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3","key_id":"x","sig_key_id":"y","signature":"","indexed":true,"first_seen":""}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, reason := decodeState(b, "x")
		if (s == nil) == (reason == "") {
			t.Fatalf("state %v reason %q", s, reason)
		}
		if s != nil {
			for i := range s.Entries {
				if _, err := s.Entries[i].Body(); err != nil {
					t.Fatalf("accepted entry without a body: %v", err)
				}
			}
		}
	})
}

// hidingIndex is the log whose key search misses some entries (as Rekor's
// does for an uploader killed mid-request).
type hidingIndex struct {
	*rekorv1.Client
	hide map[string]bool // leaf hashes
}

func (h *hidingIndex) SearchByPublicKey(ctx context.Context, pub []byte) ([]string, error) {
	all, err := h.Client.SearchByPublicKey(ctx, pub)
	var out []string
	for _, u := range all {
		if !h.hide[u[len(u)-64:]] {
			out = append(out, u)
		}
	}
	return out, err
}

func TestMonitorTail(t *testing.T) {
	f := newFixture(t, 14)
	hidden := f.sigs[4]
	log := &hidingIndex{Client: f.c, hide: map[string]bool{rekorv1.LeafHash(hidden.body): true}}
	o := f.opts()
	o.Log = log
	// Without --tail the unindexed entry is invisible.
	o.State = nil
	rep := f.run(o)
	if rep.New != 13 || len(rep.Findings) != 0 {
		t.Fatalf("without tail: new %d findings %v", rep.New, rep.Findings)
	}
	// With --tail it is found, verified and reported.
	o = f.opts()
	o.Log, o.Tail = log, true
	rep = f.run(o)
	checkEntriesTail(t, rep, f.sigs, hidden)
	if rep.Stats.Tailed != f.log.Size() {
		t.Errorf("tailed %d of %d", rep.Stats.Tailed, f.log.Size())
	}
	// The next run tails only what was appended since.
	newer := f.add(2)
	before := f.log.Requests(fakelog.EndpointRetrieve)
	rep = f.run(o)
	if rep.Stats.Tailed != 2 || rep.New != 2 || len(rep.Findings) != 0 {
		t.Errorf("incremental tail: tailed %d new %d findings %v", rep.Stats.Tailed, rep.New, rep.Findings)
	}
	checkEntries(t, rep.Entries, newer)
	if got := f.log.Requests(fakelog.EndpointRetrieve) - before; got != 1 {
		t.Errorf("%d retrieve requests for 2 new entries (tail finds them: no UUID fetch needed)", got)
	}
	// A log that drops an index from its answers.
	f.add(1)
	f.log.SetLie(fakelog.LieStaleCheckpoint, fakelog.EndpointRetrieve)
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[FindingKind]int64{}
	for _, fi := range rep.Findings {
		kinds[fi.Kind] = fi.LogIndex
	}
	if i, ok := kinds[FindingMissingIndex]; !ok || i != f.log.Size()-1 {
		t.Errorf("a log that withholds an index: findings %+v", rep.Findings)
	}
}

func checkEntriesTail(t *testing.T, rep *Report, all []signed, hidden signed) {
	t.Helper()
	if rep.New != len(all) || len(rep.Findings) != 1 || rep.Findings[0].Kind != FindingUnindexed {
		t.Fatalf("tail: new %d findings %+v", rep.New, rep.Findings)
	}
	leaf := rekorv1.LeafHash(hidden.body)
	for _, e := range rep.Entries {
		if (e.UUID[len(e.UUID)-64:] == leaf) == e.Indexed {
			t.Errorf("entry %d indexed=%v", e.LogIndex, e.Indexed)
		}
	}
}

// tailedSize is the stored tailed prefix.
func (f *fixture) tailedSize() int64 {
	f.t.Helper()
	st, err := loadState(f.dir.Path(stateName(f.lk.ID())), f.lk.ID())
	if err != nil {
		f.t.Fatal(err)
	}
	return st.TailedSize
}

// A run without --tail never counts as reading by index: the case
// of a rogue entry, left out of the search index, appended between a
// --tail run and a run without it. The next --tail run reads from where
// the last one stopped and finds it.
func TestMonitorTailAfterRunWithoutTail(t *testing.T) {
	f := newFixture(t, 5)
	o := f.opts()
	o.Tail = true
	rep := f.run(o)
	n := f.log.Size()
	if rep.TailedSize != n || f.tailedSize() != n || rep.Tail == nil || !rep.Tail.Proven {
		t.Fatalf("first --tail: %+v, tailed size %d", rep.Tail, rep.TailedSize)
	}
	rogue := f.key.sign(t, randSHA())
	ri := f.log.AddUnindexed(rogue.body)
	f.add(2)
	plain := f.run(f.opts())
	if plain.New != 2 || len(plain.Findings) != 0 || plain.Tail != nil || plain.TailedSize != n || f.tailedSize() != n {
		t.Fatalf("run without --tail: new %d findings %v tail %+v tailed size %d (stored %d), want %d", plain.New, plain.Findings, plain.Tail, plain.TailedSize, f.tailedSize(), n)
	}
	rep = f.run(o)
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != FindingUnindexed || rep.Findings[0].LogIndex != ri {
		t.Fatalf("--tail after a run without: findings %+v", rep.Findings)
	}
	if rep.Tail == nil || *rep.Tail != (TailSpan{From: n, To: f.log.Size(), Proven: true}) || f.tailedSize() != f.log.Size() {
		t.Errorf("span %+v, tailed size %d, log size %d", rep.Tail, f.tailedSize(), f.log.Size())
	}
}

// A log that leaves a rogue entry out of the search index and, asked by
// index, serves another key's entry in its place: the span's leaves do not
// hash to the checkpoint's root (tail-mismatch), the index it lied about
// is named (misplaced-entry), and nothing of the span counts as read, so
// the next --tail run, against an honest log, reads it again and finds the
// rogue.
func TestMonitorTailLyingLog(t *testing.T) {
	f := newFixture(t, 4)
	o := f.opts()
	o.Tail = true
	f.run(o)
	n := f.log.Size()
	rogue := f.key.sign(t, randSHA())
	ri := f.log.AddUnindexed(rogue.body)
	other := newKey(t)
	f.log.Add(other.sign(t, randSHA()).body)
	oi := f.log.Size() - 1
	f.add(1)
	f.log.Substitute(ri, oi)
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[FindingKind][]int64{}
	for _, fi := range rep.Findings {
		kinds[fi.Kind] = append(kinds[fi.Kind], fi.LogIndex)
	}
	if len(kinds[FindingTailMismatch]) != 1 || fmt.Sprint(kinds[FindingMisplacedEntry]) != fmt.Sprint([]int64{ri}) || len(kinds[FindingUnindexed]) != 0 {
		t.Fatalf("lying log: findings %+v", rep.Findings)
	}
	if rep.Tail == nil || rep.Tail.Proven || rep.TailedSize != n || f.tailedSize() != n {
		t.Errorf("span %+v, tailed size %d (stored %d), want %d", rep.Tail, rep.TailedSize, f.tailedSize(), n)
	}
	if rep.New != 1 {
		t.Errorf("the indexed entry appended after the rogue: new %d", rep.New)
	}
	// The log stops lying: the span is read again and the rogue found.
	f.log.ClearSubstitutions()
	rep = f.run(o)
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != FindingUnindexed || rep.Findings[0].LogIndex != ri || f.tailedSize() != f.log.Size() {
		t.Fatalf("honest again: findings %+v, tailed size %d", rep.Findings, f.tailedSize())
	}
}

// A schema 1 state (tailed_to) loads with nothing tailed: the format could
// not tell a span a --tail run read from one a run without it skipped.
func TestMonitorStateSchema1(t *testing.T) {
	f := newFixture(t, 3)
	f.run(f.opts())
	path := f.dir.Path(stateName(f.lk.ID()))
	st, err := loadState(path, f.lk.ID())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"schema_version": 1, "log_id": st.LogID, "checkpoint": st.Checkpoint, "tailed_to": 2, "entries": st.Entries})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o := f.opts()
	o.Tail = true
	rep := f.run(o)
	if rep.Tail == nil || rep.Tail.From != 0 || !rep.Tail.Proven {
		t.Errorf("first --tail after a schema 1 state: %+v", rep.Tail)
	}
	for _, bad := range []string{`"tailed_size":1,"tail_range":[]`, `"tailed_size":1,"tail_range":["zz"]`, `"tailed_size":-1,"tail_range":[]`} {
		text := fmt.Sprintf(`{"schema_version":2,"log_id":%q,"checkpoint":%q,%s,"entries":[]}`, st.LogID, st.Checkpoint, bad)
		if _, reason := decodeState([]byte(text), st.LogID); reason == "" {
			t.Errorf("state with %s accepted", bad)
		}
	}
}

// The state files of the previous bintrans (testdata/state-schema2.json
// as its monitor wrote it after a --tail run, state-schema1.json the
// schema before) load as they did, and the first load rewrites them in
// the checkpoint store's format without losing anything: the same
// checkpoint, entries and tailed range.
func TestGoldenStateFilesMigrate(t *testing.T) {
	const logID = "3b36af5373dab2280975f157ca4befcef43f25d097cc9696e49e0cd83027c19a"
	for _, name := range []string{"state-schema1.json", "state-schema2.json"} {
		t.Run(name, func(t *testing.T) {
			old, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			want, reason := decodeState(old, logID) // the old format's reading
			if reason != "" {
				t.Fatal(reason)
			}
			if len(want.Entries) != 3 || want.Checkpoint == "" {
				t.Fatalf("golden file: %+v", want)
			}
			dir, err := state.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			path := dir.Path(stateName(logID))
			os.WriteFile(path, old, 0o600)
			got, err := loadState(path, logID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("loaded %+v\nwant %+v", got, want)
			}
			if name == "state-schema2.json" && (got.TailedSize != 6 || len(got.TailRange) != 2) {
				t.Errorf("tail lost: %d %v", got.TailedSize, got.TailRange)
			}
			now, _ := os.ReadFile(path)
			if bytes.Equal(now, old) || !bytes.HasPrefix(now, []byte(`{"schema_version":1,"checkpoint":`)) {
				t.Fatalf("not rewritten in the store's format:\n%s", now)
			}
			again, err := loadState(path, logID)
			if err != nil || !reflect.DeepEqual(again, want) {
				t.Fatalf("reloaded: %+v, %v", again, err)
			}
			if _, err := loadState(path, "another-log"); err == nil {
				t.Error("the state of another log loaded")
			}
		})
	}
}

func FuzzDecodeData(f *testing.F) {
	f.Add([]byte(`{"schema_version":2,"log_id":"x","tailed_size":0,"tail_range":[],"entries":[]}`), []byte("o\n1\nAAAA\n"))
	f.Add([]byte(`{"schema_version":2,"log_id":"x","checkpoint":"c","entries":[]}`), []byte("c"))
	f.Add([]byte(`{}`), []byte{})
	f.Fuzz(func(t *testing.T, data, cp []byte) {
		s, reason := decodeData(data, cp, "x")
		if (s == nil) == (reason == "") {
			t.Fatalf("state %v reason %q", s, reason)
		}
		if s != nil && (s.SchemaVersion != StateSchemaVersion || s.Checkpoint != string(cp)) {
			t.Fatalf("accepted %+v", s)
		}
	})
}
