package rekorv2

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/testkit/tilelog"
	"github.com/bintrans/bintrans/verify"
)

// The fuzz targets check that parsers and verifiers never panic, stay
// within their bounds, fail with their typed errors, and that what they
// accept round-trips.

// fuzzFixture is a small log with one of our entries, for seeds.
type fuzzFixture struct {
	lv     *LogVerifier
	bundle []byte
	msg    []byte
	keys   []ed25519.PublicKey
	entry  *HashedRekord
}

func newFuzzFixture(t testing.TB) *fuzzFixture {
	l := tilelog.New(t, "fuzz.test/log")
	lv, err := ParseLogKey([]byte(l.VKey), "")
	if err != nil {
		t.Fatal(err)
	}
	var es []*HashedRekord
	for i := range 9 {
		es = append(es, mustSign(t, testKey(1), fmt.Sprint("pkg", i)))
	}
	b := logged(t, l, es, 4)
	return &fuzzFixture{lv: lv, bundle: marshal(t, b), msg: msgOf("pkg4"),
		keys: []ed25519.PublicKey{testKey(1).Public().(ed25519.PublicKey)}, entry: es[4]}
}

func FuzzParseBundle(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Add(fx.bundle)
	f.Add([]byte(BundleHeader + "\nindex 0\n\nx\n"))
	f.Add([]byte(`{"schema_version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			if !isStep(err, StepBundle) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(data) > MaxBundleSize || len(b.Hashes) > MaxProofHashes || len(b.Checkpoint) > MaxCheckpointSize {
			t.Fatalf("accepted beyond the bounds: %d bytes, %d hashes", len(data), len(b.Hashes))
		}
		out, err := b.Marshal()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("accepted bundle does not round-trip: %v", err)
		}
	})
}

func FuzzVerifyBundle(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Add(fx.bundle, fx.msg)
	f.Add(bytes.Replace(fx.bundle, []byte("index 4"), []byte("index 5"), 1), fx.msg)
	f.Add(fx.bundle, msgOf("pkg5"))
	f.Fuzz(func(t *testing.T, data, msg []byte) {
		v, err := VerifyBundle(data, fx.lv, fx.keys, msg)
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Only the one entry of the fixture can verify.
		if v.LeafHash != fx.entry.LeafHash() || !bytes.Equal(msg, fx.msg) || v.Index != 4 {
			t.Fatalf("verified something else: index %d for %q", v.Index, msg)
		}
	})
}

func FuzzParseBody(f *testing.F) {
	h := mustSign(f, testKey(1), "a")
	f.Add(h.Body())
	f.Add([]byte(`{"apiVersion":"0.0.2","kind":"dsse","spec":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBody(data)
		if err != nil {
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(canonicalBody(b), data) {
			t.Fatal("accepted a body that is not canonical")
		}
		_ = b.SignedBy(h.PublicKey)
	})
}

func FuzzParseEntryBundle(f *testing.F) {
	f.Add([]byte("\x00\x01a\x00\x02bc"), 4)
	f.Add([]byte("\x00"), 1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 0 || max > 1024 {
			return
		}
		es, err := ParseEntryBundle(data, max)
		if err != nil {
			return
		}
		if len(es) > max {
			t.Fatalf("%d entries, max %d", len(es), max)
		}
		var re []byte
		for _, e := range es {
			re = append(re, byte(len(e)>>8), byte(len(e)))
			re = append(re, e...)
		}
		if !bytes.Equal(re, data) {
			t.Fatal("entries do not re-encode to the bundle")
		}
	})
}

func FuzzParseLogKey(f *testing.F) {
	pemKey, _ := os.ReadFile("testdata/log.pub")
	vkey, _ := os.ReadFile("testdata/log.vkey")
	f.Add(pemKey, "rekor-v2.local")
	f.Add(vkey, "")
	f.Add(vkey, "x")
	f.Fuzz(func(t *testing.T, data []byte, origin string) {
		lv, err := ParseLogKey(data, origin)
		if err != nil {
			var le *LogKeyError
			if !errors.As(err, &le) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if origin != "" && lv.Origin() != origin {
			t.Fatalf("origin %q pinned, %q kept", origin, lv.Origin())
		}
		again, err := ParseLogKey([]byte(lv.VerifierKey()), lv.Origin())
		if err != nil || again.KeyID() != lv.KeyID() {
			t.Fatalf("vkey does not round-trip: %v", err)
		}
	})
}

func FuzzVerifyCheckpoint(f *testing.F) {
	fx := newFuzzFixture(f)
	b, _ := ParseBundle(fx.bundle)
	f.Add(b.Checkpoint)
	f.Add([]byte("fuzz.test/log\n1\nAAAA\n\n— fuzz.test/log AAAAAAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := fx.lv.VerifyCheckpoint(data)
		if err != nil {
			var ce *CheckpointError
			if !errors.As(err, &ce) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if cp.Origin != fx.lv.Origin() {
			t.Fatalf("origin %q", cp.Origin)
		}
	})
}

// FuzzShardedVerifyCheckpoint feeds the sharded verifier (the origin line
// picks the shard): a note it accepts is one shard's, verified under that
// shard's key; a shard whose window has not begun accepts nothing.
func FuzzShardedVerifyCheckpoint(f *testing.F) {
	fx := newFuzzFixture(f)
	other := tilelog.New(f, "fuzz.test/later-shard")
	later, err := ParseLogKey([]byte(other.VKey), "")
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewShardedVerifier([]Shard{{Log: fx.lv}, {Log: later, NotBefore: time.Now().Add(time.Hour)}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := ParseBundle(fx.bundle)
	f.Add(b.Checkpoint)
	f.Add(other.Publish())
	f.Add([]byte("fuzz.test/later-shard\n1\nAAAA\n\n— fuzz.test/later-shard AAAAAAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := v.VerifyCheckpoint(data)
		if err != nil {
			var ce *verify.CheckpointError
			if !errors.As(err, &ce) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if cp.Origin != fx.lv.Origin() {
			t.Fatalf("accepted origin %q", cp.Origin)
		}
		if _, err := fx.lv.VerifyCheckpoint(data); err != nil {
			t.Fatalf("accepted a note its shard's key refuses: %v", err)
		}
	})
}

// FuzzCheckAnswer feeds the Writer's answer check (the log's JSON).
func FuzzCheckAnswer(f *testing.F) {
	vkey, _ := os.ReadFile("testdata/log.vkey")
	lv, err := ParseLogKey(vkey, "")
	if err != nil {
		f.Fatal(err)
	}
	w, err := NewWriter("http://127.0.0.1:1", nil, lv)
	if err != nil {
		f.Fatal(err)
	}
	real, _ := os.ReadFile("testdata/add-201-index2.json")
	f.Add(real)
	f.Add([]byte(`{"logIndex":1}`))
	f.Add([]byte(`{"inclusionProof":{"hashes":["AA=="]}}`))
	h := mustSign(f, testKey(1), "x")
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := w.checkAnswer(h, data)
		if err != nil {
			var (
				me *MalformedResponseError
				ve *VerifyError
			)
			if !errors.As(err, &me) && !errors.As(err, &ve) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		t.Fatalf("an answer for an entry never logged verified: index %d", l.Index)
	})
}
