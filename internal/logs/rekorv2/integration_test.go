package rekorv2

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// realStack connects to the local Rekor v2 (scripts/rekor-v2-stack).
type realStack struct {
	lv *LogVerifier
	r  *Reader
	w  *Writer
}

func newRealStack(t testing.TB, inflight int) *realStack {
	t.Helper()
	s := testenv.RekorV2(t)
	pemKey, err := os.ReadFile(s.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := ParseLogKey(pemKey, s.Origin)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := httpclient.New(httpclient.Options{MaxIdleConnsPerHost: max(inflight, 16)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(s.ReadURL, hc, lv)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(s.URL, hc, lv, WithReader(r))
	if err != nil {
		t.Fatal(err)
	}
	return &realStack{lv: lv, r: r, w: w}
}

// A fresh transparency key per run: the log keeps every entry (and answers
// 409 for a repeat), so new entries need new signatures.
func freshKey(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// The key as the stack prints it in both forms names the same log, and the
// served checkpoint verifies under it.
func TestIntegrationLogKey(t *testing.T) {
	s := testenv.RekorV2(t)
	st := newRealStack(t, 1)
	if s.VKey != "" {
		lv, err := ParseLogKey([]byte(s.VKey), s.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if lv.KeyID() != st.lv.KeyID() || lv.VerifierKey() != st.lv.VerifierKey() {
			t.Fatalf("vkey %s and PEM key %s differ", lv.VerifierKey(), st.lv.VerifierKey())
		}
	}
	cp, err := st.r.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewLogVerifier(s.Origin+"-other", st.lv.PublicKey())
	if _, err := other.VerifyCheckpoint(cp.Raw); err == nil {
		t.Fatal("the checkpoint verifies for another origin")
	}
}

// sign → add → verify offline from the bundle; the same entry again is a
// 409 proven from the tiles; a run's entries, logged under several
// checkpoints, are re-proven at one; the tiles between two checkpoints are
// consistent and hold exactly the entries logged.
func TestIntegrationLogAndRead(t *testing.T) {
	ctx := context.Background()
	st := newRealStack(t, 64)
	priv := freshKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	keys := []ed25519.PublicKey{pub}

	before, err := st.r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([][]byte, 64)
	entries := make([]*HashedRekord, len(msgs))
	for i := range msgs {
		msgs[i] = msgOf(fmt.Sprintf("%x-pkg%d", pub[:8], i))
		if entries[i], err = Sign(priv, msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	res := st.w.AddAll(ctx, entries, 64)
	t.Logf("64 adds, 64 in flight: %v", time.Since(t0).Round(time.Millisecond))
	sizes := map[uint64]bool{}
	var logged []*Logged
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("add %d: %v", i, r.Err)
		}
		if r.Logged.Duplicate || r.Logged.Index < before.Size {
			t.Fatalf("add %d: index %d (log was at %d), duplicate %v", i, r.Logged.Index, before.Size, r.Logged.Duplicate)
		}
		sizes[r.Logged.Checkpoint.Size] = true
		logged = append(logged, r.Logged)
		b, err := r.Logged.Bundle().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		v, err := VerifyBundle(b, st.lv, keys, msgs[i])
		if err != nil {
			t.Fatalf("bundle %d: %v", i, err)
		}
		if v.Index != r.Logged.Index {
			t.Fatalf("bundle %d: index %d", i, v.Index)
		}
		if _, err := VerifyBundle(b, st.lv, keys, msgs[(i+1)%len(msgs)]); err == nil {
			t.Fatalf("bundle %d verifies for another package", i)
		}
	}
	t.Logf("64 entries under %d distinct checkpoints", len(sizes))

	// The same entry again: 409, proven from the tiles at the newest checkpoint.
	dup, err := st.w.Add(ctx, entries[5])
	if err != nil {
		t.Fatal(err)
	}
	if !dup.Duplicate || dup.Index != logged[5].Index {
		t.Fatalf("re-add: duplicate %v index %d, want %d", dup.Duplicate, dup.Index, logged[5].Index)
	}
	b, _ := dup.Bundle().Marshal()
	if _, err := VerifyBundle(b, st.lv, keys, msgs[5]); err != nil {
		t.Fatalf("409 bundle: %v", err)
	}

	// Settle: every entry re-proven at one checkpoint.
	after, err := st.r.Update(ctx, before)
	if err != nil {
		t.Fatalf("consistency %d -> newest: %v", before.Size, err)
	}
	tr, err := st.r.At(after)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range logged {
		n, err := tr.Reprove(ctx, l)
		if err != nil {
			t.Fatalf("reprove %d: %v", i, err)
		}
		b, _ := n.Bundle().Marshal()
		if v, err := VerifyBundle(b, st.lv, keys, msgs[i]); err != nil || v.Checkpoint.Size != after.Size {
			t.Fatalf("settled bundle %d: %v", i, err)
		}
	}
	if p, err := tr.ConsistencyProof(ctx, before); err != nil || (before.Size > 0 && before.Size < after.Size && len(p) == 0) {
		t.Fatalf("consistency proof: %v", err)
	}

	// The entries between the two checkpoints: ours are exactly at their
	// indexes, with the bodies we rebuild, signed by our key.
	want := map[uint64]int{}
	for i, l := range logged {
		want[l.Index] = i
	}
	found := 0
	for e, err := range tr.Entries(ctx, before.Size, after.Size, 4) {
		if err != nil {
			t.Fatalf("entries: %v", err)
		}
		i, ours := want[e.Index]
		if !ours {
			if MentionsKey(e.Body, pub) {
				t.Fatalf("entry %d mentions our key but is none of ours", e.Index)
			}
			continue
		}
		found++
		if !bytes.Equal(e.Body, entries[i].Body()) {
			t.Fatalf("entry %d: body differs", e.Index)
		}
		body, err := ParseBody(e.Body)
		if err != nil || !body.SignedBy(pub) {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
		if d := sha512.Sum512(msgs[i]); !bytes.Equal(body.Digest, d[:]) {
			t.Fatalf("entry %d: digest", e.Index)
		}
	}
	if found != len(logged) {
		t.Fatalf("found %d of our %d entries", found, len(logged))
	}
}
