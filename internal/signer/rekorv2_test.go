package signer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/testkit/tilelog"
	"github.com/bintrans/bintrans/verify"
)

// The Rekor v2 settle over a tile log (real RFC 6962 tiles, signed
// checkpoints): bundles made at several checkpoints are re-proven at the
// newest from its tiles; a log that forked or rolled back since a bundle's
// (or the stored) checkpoint is a SECURITY ERROR with both notes.

type v2Settle struct {
	log   *tilelog.Log
	nl    *RekorV2
	priv  ed25519.PrivateKey
	items []NoteBundle
}

func newV2Settle(t *testing.T, n int) *v2Settle {
	t.Helper()
	l := tilelog.New(t, "settle.test/v2")
	lv, err := rekorv2.ParseLogKey([]byte(l.VKey), "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := rekorv2.NewReader(l.URL, nil, lv)
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("settle test key"))
	v := &v2Settle{log: l, nl: &RekorV2{Log: lv, Reader: r}, priv: ed25519.NewKeyFromSeed(seed[:])}
	// Other writers' entries around ours, and a checkpoint after each of
	// ours: the bundles carry n different checkpoints.
	l.Append([]byte("other writer 0"))
	for i := range n {
		sha := hex.EncodeToString(func() []byte { h := sha256.Sum256(fmt.Appendf(nil, "pkg %d", i)); return h[:] }())
		h, err := rekorv2.Sign(v.priv, []byte(sha))
		if err != nil {
			t.Fatal(err)
		}
		idx := l.Append(h.Body())
		l.Append(fmt.Appendf(nil, "other writer %d", i+1))
		cp := l.Publish()
		b, err := (&rekorv2.Bundle{Index: idx, Hashes: l.InclusionProof(idx, l.Size()), Checkpoint: cp, Signature: h.Signature}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		v.items = append(v.items, NoteBundle{Bundle: b, SHA: sha})
	}
	return v
}

func TestRekorV2Settle(t *testing.T) {
	v := newV2Settle(t, 5)
	pub := v.priv.Public().(ed25519.PublicKey)
	v.log.Append([]byte("after the run"))
	v.log.Publish()
	stored, err := v.nl.VerifyCheckpoint(v.log.Checkpoint(1))
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.nl.Settle(context.Background(), stored, pub, v.items, 4)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checkpoint.Size != v.log.Size() {
		t.Fatalf("settled at size %d, the log is at %d", res.Checkpoint.Size, v.log.Size())
	}
	for i, b := range res.Bundles {
		if res.Errs[i] != nil {
			t.Fatalf("item %d: %v", i, res.Errs[i])
		}
		p, err := v.nl.Verify(b, pub, v.items[i].SHA)
		if err != nil {
			t.Fatalf("item %d: settled bundle does not verify: %v", i, err)
		}
		old, _ := v.nl.Verify(v.items[i].Bundle, pub, v.items[i].SHA)
		if p.Checkpoint.Size != res.Checkpoint.Size || p.Index != old.Index || p.Leaf != old.Leaf {
			t.Fatalf("item %d: %+v, was %+v", i, p, old)
		}
	}
}

func TestRekorV2SettleRefusesInconsistentLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  func(v *v2Settle)
		// storedSize: the stored checkpoint's size (0: none stored).
		storedSize func(v *v2Settle) uint64
	}{
		// The log serves a tree that shares only its first entry with the
		// one our bundles were proven in.
		{"fork", func(v *v2Settle) { v.log.SetLie(tilelog.LieFork, 1) }, nil},
		// The log serves an older checkpoint than one a bundle carries.
		{"rollback", func(v *v2Settle) { v.log.SetLie(tilelog.LieRollback, 3) }, nil},
		// The log is honest but smaller than what the previous run stored.
		{"rollback below the stored checkpoint", func(v *v2Settle) {}, func(v *v2Settle) uint64 {
			v.log.Append([]byte("seen by the previous run"))
			v.log.Publish()
			v.log.SetLie(tilelog.LieRollback, v.log.Size()-1)
			return v.log.Size()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newV2Settle(t, 4)
			var stored *NoteCheckpoint
			if tc.storedSize != nil {
				var err error
				if stored, err = v.nl.VerifyCheckpoint(v.log.Checkpoint(tc.storedSize(v))); err != nil {
					t.Fatal(err)
				}
			}
			tc.lie(v)
			_, err := v.nl.Settle(context.Background(), stored, v.priv.Public().(ed25519.PublicKey), v.items, 4)
			var sec *verify.SecurityError
			if !errors.As(err, &sec) || len(sec.Old) == 0 || len(sec.New) == 0 {
				t.Fatalf("got %v, want a SECURITY ERROR with both checkpoints", err)
			}
		})
	}
}
