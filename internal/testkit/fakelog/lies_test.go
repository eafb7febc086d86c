package fakelog_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	rekorverify "github.com/sigstore/rekor/pkg/verify"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// lyingLog is a log of 12 real entries whose client has synced (stored)
// the honest checkpoint at size 12.
type lyingLog struct {
	l      *fakelog.Log
	c      *rekorv1.Client
	ents   []*rekorv1.Entry
	stored []byte
}

func newLyingLog(t *testing.T, opts ...rekorv1.Option) *lyingLog {
	l := fakelog.New(t)
	c := client(t, l.URL, opts...)
	ents := populate(t, c, newSigner(t), 12)
	return &lyingLog{l: l, c: c, ents: ents, stored: l.Checkpoint()}
}

// consistent checks the served checkpoint against the stored one with a
// consistency proof fetched from the log.
func (ll *lyingLog) consistent(t *testing.T) error {
	cp, err := ll.c.Checkpoint(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	n1, r1 := note(t, ll.stored)
	n2, r2 := note(t, cp)
	if n2 < n1 {
		return errors.New("rollback")
	}
	if n1 == n2 {
		if !bytes.Equal(r1, r2) {
			return errors.New("same size, other root")
		}
		return nil
	}
	p, err := ll.c.ConsistencyProof(ctx(t), int64(n1), int64(n2))
	if err != nil {
		return err
	}
	return proof.VerifyConsistency(rfc6962.DefaultHasher, n1, n2, p, r1, r2)
}

func TestEachLie(t *testing.T) {
	cases := map[fakelog.Lie]func(t *testing.T, ll *lyingLog){
		fakelog.LieWrongRoot: func(t *testing.T, ll *lyingLog) {
			e := fetch(t, ll, 4)
			v := verifier(t, ll.l.KeyPEM)
			if err := rekorverify.VerifyCheckpointSignature(anon(e), v); err != nil {
				t.Errorf("the wrong root must still be correctly signed: %v", err)
			}
			if rekorverify.VerifyInclusion(ctx(t), anon(e)) == nil {
				t.Error("inclusion verified against the wrong root")
			}
			if ll.consistent(t) == nil {
				t.Error("wrong root consistent with the stored checkpoint")
			}
		},
		fakelog.LieForkedTree: func(t *testing.T, ll *lyingLog) {
			e := fetch(t, ll, 11)
			if err := rekorverify.VerifyLogEntry(ctx(t), anon(e), verifier(t, ll.l.KeyPEM)); err != nil {
				t.Errorf("a fork's entries verify on their own: %v", err)
			}
			if bytes.Equal(e.Body, ll.ents[11].Body) {
				t.Error("entry 11 not forked")
			}
			if err := ll.consistent(t); err == nil {
				t.Error("forked tree consistent with the stored checkpoint")
			}
		},
		fakelog.LieStaleCheckpoint: func(t *testing.T, ll *lyingLog) {
			if n, _ := note(t, must(ll.c.Checkpoint(ctx(t)))); n != 11 {
				t.Errorf("stale size %d, want 11", n)
			}
			if err := ll.consistent(t); err == nil || err.Error() != "rollback" {
				t.Errorf("rollback not visible: %v", err)
			}
			if _, err := ll.c.EntryByUUID(ctx(t), ll.ents[11].UUID); !errors.Is(err, verify.ErrNotFound) {
				t.Errorf("entry past the rollback: %v, want not found", err)
			}
		},
		fakelog.LieOtherKey: func(t *testing.T, ll *lyingLog) {
			e, err := ll.c.EntryByUUID(ctx(t), ll.ents[2].UUID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(e.Body, []byte(base64.StdEncoding.EncodeToString([]byte(fakelog.OtherMinisignKey)))) {
				t.Errorf("body without the other key: %s", e.Body)
			}
			if err := rekorverify.VerifyLogEntry(ctx(t), anon(e), verifier(t, ll.l.KeyPEM)); err != nil {
				t.Errorf("other-key entries are validly logged: %v", err)
			}
			if e.UUID != ll.ents[2].UUID || strings.HasSuffix(e.UUID, hex.EncodeToString(rfc6962.DefaultHasher.HashLeaf(e.Body))) {
				t.Error("want the requested UUID over a body that does not hash to it")
			}
		},
		fakelog.LieSETForOtherBody: func(t *testing.T, ll *lyingLog) {
			e := fetch(t, ll, 5)
			v := verifier(t, ll.l.KeyPEM)
			if rekorverify.VerifySignedEntryTimestamp(ctx(t), anon(e), v) == nil {
				t.Error("SET verified")
			}
			if err := rekorverify.VerifyInclusion(ctx(t), anon(e)); err != nil {
				t.Errorf("inclusion should be honest: %v", err)
			}
		},
		fakelog.LieProofForOtherLeaf: func(t *testing.T, ll *lyingLog) {
			e := fetch(t, ll, 6)
			if rekorverify.VerifyInclusion(ctx(t), anon(e)) == nil {
				t.Error("inclusion verified with another leaf's proof")
			}
			if err := rekorverify.VerifyCheckpointSignature(anon(e), verifier(t, ll.l.KeyPEM)); err != nil {
				t.Errorf("checkpoint should be honest: %v", err)
			}
		},
		fakelog.LieOtherSigner: func(t *testing.T, ll *lyingLog) {
			e := fetch(t, ll, 0)
			if rekorverify.VerifyCheckpointSignature(anon(e), verifier(t, ll.l.KeyPEM)) == nil {
				t.Error("checkpoint verified under the pinned key")
			}
			if err := rekorverify.VerifyLogEntry(ctx(t), anon(e), verifier(t, ll.l.OtherKeyPEM)); err != nil {
				t.Errorf("signed by OtherKey: %v", err)
			}
			if pem := must(ll.c.PublicKey(ctx(t))); !bytes.Equal(pem, ll.l.OtherKeyPEM) {
				t.Error("the lying log should hand out its other key")
			}
		},
		fakelog.LieProofTreeSize: func(t *testing.T, ll *lyingLog) {
			e := fetch(t, ll, 0)
			// Rekor's verifier does not bind treeSize to the checkpoint.
			if err := rekorverify.VerifyLogEntry(ctx(t), anon(e), verifier(t, ll.l.KeyPEM)); err != nil {
				t.Errorf("this lie passes rekor's VerifyLogEntry by design: %v", err)
			}
			n, _ := note(t, e.Proof.Checkpoint)
			if int64(n) == e.Proof.TreeSize {
				t.Error("proof tree size equals the checkpoint's")
			}
		},
		fakelog.LieBadConsistencyProof: func(t *testing.T, ll *lyingLog) {
			ll.l.Add([]byte("one more"))
			if ll.consistent(t) == nil {
				t.Error("tampered consistency proof verified")
			}
		},
		fakelog.LieTruncatedJSON: func(t *testing.T, ll *lyingLog) {
			wantMalformed(t, ll)
		},
		fakelog.LieGarbageJSON: func(t *testing.T, ll *lyingLog) {
			wantMalformed(t, ll)
		},
		fakelog.LieEmptyBody: func(t *testing.T, ll *lyingLog) {
			wantMalformed(t, ll)
			_, err := ll.c.Checkpoint(ctx(t))
			var me *rekorv1.MalformedResponseError
			if !errors.As(err, &me) {
				t.Errorf("checkpoint from an empty 200: %v", err)
			}
		},
		fakelog.LieOversizedJSON: func(t *testing.T, ll *lyingLog) {
			_, err := ll.c.EntriesByIndex(ctx(t), []int64{0, 1})
			var tl *httpclient.TooLargeError
			if !errors.As(err, &tl) || tl.Limit != rekorv1.MaxResponseSize {
				t.Errorf("100 MiB answer: %v, want *TooLargeError", err)
			}
		},
		fakelog.LieHTML502: func(t *testing.T, ll *lyingLog) {
			before := ll.l.Requests(fakelog.EndpointEntry)
			_, err := ll.c.EntryByUUID(ctx(t), ll.ents[0].UUID)
			var se *httpclient.StatusError
			if !errors.As(err, &se) || se.Code != 502 || se.Snippet != "502 Bad Gateway" {
				t.Errorf("HTML 502: %v", err)
			}
			if n := ll.l.Requests(fakelog.EndpointEntry) - before; n != 1+rekorv1.DefaultRetries {
				t.Errorf("%d attempts, want %d (a 502 is retried)", n, 1+rekorv1.DefaultRetries)
			}
		},
		fakelog.LieHang: func(t *testing.T, ll *lyingLog) {
			before := ll.l.Requests(fakelog.EndpointLogInfo)
			c := clientWithTimeout(t, ll.l.URL, 500*time.Millisecond)
			_, err := c.Checkpoint(ctx(t))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("hang: %v, want a timeout", err)
			}
			if n := ll.l.Requests(fakelog.EndpointLogInfo) - before; n != 1 {
				t.Errorf("%d attempts: a timeout must not be retried", n)
			}
		},
	}
	for _, lie := range fakelog.Lies() {
		check, ok := cases[lie]
		if !ok {
			t.Errorf("no test for %v", lie)
			continue
		}
		t.Run(lie.String(), func(t *testing.T) {
			t.Parallel()
			ll := newLyingLog(t)
			ll.l.SetLie(lie)
			check(t, ll)
			// Lies never change the honest state, and Honest ends them.
			ll.l.SetLie(fakelog.Honest)
			if err := ll.consistent(t); err != nil {
				t.Errorf("honest again: %v", err)
			}
			e := fetch(t, ll, 3)
			if !bytes.Equal(e.Body, ll.ents[3].Body) {
				t.Error("honest again: entry 3 changed")
			}
		})
	}
}

func TestLieOnOneEndpoint(t *testing.T) {
	ll := newLyingLog(t)
	ll.l.SetLie(fakelog.LieHTML502, fakelog.EndpointLogInfo)
	if _, err := ll.c.EntryByUUID(ctx(t), ll.ents[1].UUID); err != nil {
		t.Errorf("entries should be honest: %v", err)
	}
	var se *httpclient.StatusError
	if _, err := ll.c.Checkpoint(ctx(t)); !errors.As(err, &se) || se.Code != 502 {
		t.Errorf("checkpoint: %v, want 502", err)
	}
}

func TestForkWithChosenBodies(t *testing.T) {
	ll := newLyingLog(t)
	evil := []byte(`{"apiVersion":"0.0.1","kind":"rekord","spec":{}}`)
	ll.l.Fork(12, evil) // same history, one extra entry only the victim sees
	if err := ll.consistent(t); err != nil {
		t.Errorf("an append-only extension must be consistent: %v", err)
	}
	got, err := ll.c.EntriesByIndex(ctx(t), []int64{12})
	if err != nil || got[12] == nil || !bytes.Equal(got[12].Body, evil) {
		t.Fatalf("fork entry: %v, %v", got, err)
	}
	if e, err := ll.c.EntryByUUID(ctx(t), ll.l.UUID(evil)); err != nil || !bytes.Equal(e.Body, evil) {
		t.Errorf("fork entry by UUID: %v", err)
	}
	if ll.l.Size() != 12 {
		t.Error("Fork changed the honest log")
	}
	ll.l.Fork(6) // rewrites history from entry 6
	if ll.consistent(t) == nil {
		t.Error("rewritten history consistent")
	}
}

func fetch(t *testing.T, ll *lyingLog, i int64) *rekorv1.Entry {
	t.Helper()
	got, err := ll.c.EntriesByIndex(ctx(t), []int64{i})
	if err != nil || got[i] == nil {
		t.Fatalf("entry %d: %v, %v", i, got, err)
	}
	return got[i]
}

func wantMalformed(t *testing.T, ll *lyingLog) {
	t.Helper()
	_, err := ll.c.EntryByUUID(ctx(t), ll.ents[0].UUID)
	var me *rekorv1.MalformedResponseError
	if !errors.As(err, &me) {
		t.Errorf("EntryByUUID: %v, want *MalformedResponseError", err)
	}
	_, err = ll.c.EntriesByIndex(ctx(t), []int64{0})
	if !errors.As(err, &me) {
		t.Errorf("EntriesByIndex: %v, want *MalformedResponseError", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestUploadAnswerLies(t *testing.T) {
	l := fakelog.New(t)
	c := client(t, l.URL)
	s := newSigner(t)
	l.SetLie(fakelog.LieProofForOtherLeaf, fakelog.EndpointUpload)
	ents := populate(t, c, s, 3)
	if rekorverify.VerifyInclusion(ctx(t), anon(ents[2])) == nil {
		t.Error("the upload answer should carry another leaf's proof")
	}
	if err := rekorverify.VerifyInclusion(ctx(t), anon(l.Entry(2))); err != nil {
		t.Errorf("the entry itself is logged honestly: %v", err)
	}
}

// AddUnindexed: in the tree, found by UUID and by index, not by search.
func TestAddUnindexed(t *testing.T) {
	ll := newLyingLog(t)
	s := newSigner(t)
	m := message(99)
	tb := s.sign(t, m)
	sig, err := verify.ParseSignature(tb)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verify.ParsePublicKey(string(s.pubFile))
	if err != nil {
		t.Fatal(err)
	}
	body := rekorv1.CanonicalBody(sig, pub, m)
	i := ll.l.AddUnindexed(body)
	if i != 12 || ll.l.Size() != 13 {
		t.Fatalf("index %d, size %d", i, ll.l.Size())
	}
	if e := fetch(t, ll, 12); !bytes.Equal(e.Body, body) {
		t.Error("by index: another body")
	}
	if e, err := ll.c.EntryByUUID(ctx(t), ll.l.UUID(body)); err != nil || !bytes.Equal(e.Body, body) {
		t.Errorf("by UUID: %v", err)
	}
	if uuids, err := ll.c.SearchByPublicKey(ctx(t), s.pubFile); err != nil || len(uuids) != 0 {
		t.Errorf("the key search lists %v (%v), want nothing", uuids, err)
	}
}

// Substitute: a read by index gets another entry's body, presented (index,
// proof index, SET) as the entry asked for; its inclusion proof cannot
// prove it there, and the tree and reads by UUID are unchanged.
func TestSubstitute(t *testing.T) {
	ll := newLyingLog(t)
	ll.l.Substitute(3, 7)
	e := fetch(t, ll, 3)
	if !bytes.Equal(e.Body, ll.ents[7].Body) || e.LogIndex != 3 || e.Proof.LogIndex != 3 {
		t.Fatalf("substituted entry: index %d proof index %d", e.LogIndex, e.Proof.LogIndex)
	}
	lk, err := rekorv1.ParseLogKey(ll.l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rekorv1.VerifyLogged(e, lk); err == nil {
		t.Error("a substituted entry's inclusion proof verifies")
	}
	if got, err := ll.c.EntryByUUID(ctx(t), ll.ents[3].UUID); err != nil || !bytes.Equal(got.Body, ll.ents[3].Body) {
		t.Errorf("by UUID: %v", err)
	}
	if err := ll.consistent(t); err != nil {
		t.Errorf("the tree changed: %v", err)
	}
	ll.l.ClearSubstitutions()
	if e := fetch(t, ll, 3); !bytes.Equal(e.Body, ll.ents[3].Body) {
		t.Error("ClearSubstitutions: still substituted")
	}
}
