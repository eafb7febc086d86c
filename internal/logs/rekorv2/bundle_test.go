package rekorv2

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/tilelog"
)

// logged appends entries to a fake log, publishes, and returns the bundle of
// entry i (of entries) at the published size.
func logged(t testing.TB, l *tilelog.Log, entries []*HashedRekord, i int) *Bundle {
	t.Helper()
	first := l.Appended()
	for _, h := range entries {
		l.Append(h.Body())
	}
	cp := l.Publish()
	idx := first + uint64(i)
	return &Bundle{Index: idx, Hashes: l.InclusionProof(idx, l.Size()), Checkpoint: cp, Signature: entries[i].Signature}
}

func marshal(t testing.TB, b *Bundle) []byte {
	t.Helper()
	out, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBundleRoundTrip(t *testing.T) {
	l := tilelog.New(t, "bundle.test/log")
	priv := testKey(1)
	var es []*HashedRekord
	for i := range 11 {
		es = append(es, mustSign(t, priv, fmt.Sprint("pkg", i)))
	}
	b := logged(t, l, es, 6)
	data := marshal(t, b)
	if !bytes.HasPrefix(data, []byte(BundleHeader+"\nextra ")) || !bytes.Contains(data, []byte("\nindex 6\n")) {
		t.Fatalf("not a tlog-proof with extra:\n%s", data)
	}
	back, err := ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Index != 6 || len(back.Hashes) != len(b.Hashes) || !bytes.Equal(back.Checkpoint, b.Checkpoint) || back.Signature != b.Signature {
		t.Fatalf("round trip: %+v", back)
	}
	if again := marshal(t, back); !bytes.Equal(again, data) {
		t.Fatal("re-marshal differs")
	}
	t.Logf("bundle of entry 6 of 11: %d bytes", len(data))
}

func TestParseBundleRefuses(t *testing.T) {
	l := tilelog.New(t, "bundle.test/log")
	es := []*HashedRekord{mustSign(t, testKey(1), "a"), mustSign(t, testKey(1), "b"), mustSign(t, testKey(1), "c")}
	good := marshal(t, logged(t, l, es, 1))
	rep := func(old, new string) []byte { return bytes.Replace(good, []byte(old), []byte(new), 1) }
	many := &Bundle{Index: 1, Checkpoint: []byte("x\n"), Hashes: make([][32]byte, MaxProofHashes+1)}
	cases := map[string][]byte{
		"JSON (Rekor v1)":      []byte(`{"schema_version":1}`),
		"empty":                nil,
		"other header":         rep(BundleHeader, "c2sp.org/tlog-proof@v2"),
		"CRLF":                 bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")),
		"leading zero index":   rep("index 1\n", "index 01\n"),
		"signed index":         rep("index 1\n", "index +1\n"),
		"no index":             rep("index 1\n", ""),
		"no extra":             good[bytes.Index(good, []byte("index")):],
		"short extra":          rep("extra ", "extra AAAA"),
		"bad base64 hash":      rep("\nindex 1\n", "\nindex 1\n!!!!\n"),
		"short hash":           rep("\nindex 1\n", "\nindex 1\nAAAA\n"),
		"no final newline":     bytes.TrimSuffix(good, []byte("\n")),
		"no checkpoint":        good[:bytes.Index(good, []byte("\n\n"))+2],
		"too large":            append(bytes.Clone(good), bytes.Repeat([]byte("x"), MaxBundleSize)...),
		"too many hashes":      marshalUnchecked(many),
		"non-canonical base64": rep("=\n", "B\n"),
	}
	for name, in := range cases {
		if _, err := ParseBundle(in); !isStep(err, StepBundle) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := many.Marshal(); !isStep(err, StepBundle) {
		t.Fatalf("Marshal of 65 hashes: %v", err)
	}
	if _, err := (&Bundle{Checkpoint: []byte("no newline")}).Marshal(); !isStep(err, StepBundle) {
		t.Fatalf("Marshal of a checkpoint without newline: %v", err)
	}
}

func marshalUnchecked(b *Bundle) []byte { return b.tlogProof().Marshal() }

// Every way a bundle can fail to prove this package's entry is refused,
// and the error names the check.
func TestVerifyBundle(t *testing.T) {
	l := tilelog.New(t, "verify.test/log")
	lv, err := ParseLogKey([]byte(l.VKey), "verify.test/log")
	if err != nil {
		t.Fatal(err)
	}
	priv, other := testKey(1), testKey(2)
	pub, otherPub := priv.Public().(ed25519.PublicKey), other.Public().(ed25519.PublicKey)
	keys := []ed25519.PublicKey{otherPub, pub}
	var es []*HashedRekord
	for i := range 20 {
		es = append(es, mustSign(t, priv, fmt.Sprint("pkg", i)))
	}
	es = append(es, mustSign(t, other, "by-other"))
	b := logged(t, l, es, 5)
	msg := msgOf("pkg5")

	v, err := VerifyBundle(marshal(t, b), lv, keys, msg)
	if err != nil {
		t.Fatal(err)
	}
	if v.Index != 5 || v.LeafHash != es[5].LeafHash() || v.Checkpoint.Size != 21 || v.Checkpoint.Root != l.Root(21) ||
		!bytes.Equal(v.Entry.PublicKey, pub) || !bytes.Equal(v.Entry.Body(), es[5].Body()) {
		t.Fatalf("verified: %+v", v)
	}
	// The other transparency key's entry verifies with its own message.
	if _, err := VerifyBundle(marshal(t, bundleAt(t, l, 20, es[20])), lv, keys, msgOf("by-other")); err != nil {
		t.Fatalf("second key: %v", err)
	}

	mod := func(f func(c *Bundle)) []byte {
		c := *b
		c.Hashes = append([][32]byte(nil), b.Hashes...)
		f(&c)
		return marshalUnchecked(&c)
	}
	otherLog := tilelog.New(t, "verify.test/log") // same origin, another key
	otherLog.Append(es[5].Body())
	lvOtherOrigin, _ := NewLogVerifier("verify.test/other", l.PublicKey)
	notLogged := mustSign(t, other, "pkg5") // a valid signature of this package by a key, never logged
	cases := []struct {
		name  string
		data  []byte
		lv    *LogVerifier
		keys  []ed25519.PublicKey
		msg   []byte
		step  Step
		field string
	}{
		{"another package's message", marshal(t, b), lv, keys, msgOf("pkg6"), StepSignature, ""},
		{"signer not a transparency key", marshal(t, b), lv, []ed25519.PublicKey{otherPub}, msg, StepSignature, ""},
		{"no transparency keys", marshal(t, b), lv, nil, msg, StepSignature, ""},
		{"signature of another package", mod(func(c *Bundle) { c.Signature = es[6].Signature }), lv, keys, msg, StepSignature, ""},
		{"valid signature, entry never logged", mod(func(c *Bundle) { c.Signature = notLogged.Signature }), lv, keys, msg, StepInclusion, ""},
		{"index + 1", mod(func(c *Bundle) { c.Index++ }), lv, keys, msg, StepInclusion, ""},
		{"index beyond the tree", mod(func(c *Bundle) { c.Index = 21 }), lv, keys, msg, StepInclusion, "index"},
		{"proof hash flipped", mod(func(c *Bundle) { c.Hashes[0][0] ^= 1 }), lv, keys, msg, StepInclusion, ""},
		{"proof hash dropped", mod(func(c *Bundle) { c.Hashes = c.Hashes[1:] }), lv, keys, msg, StepInclusion, ""},
		{"proof hash added", mod(func(c *Bundle) { c.Hashes = append(c.Hashes, [32]byte{}) }), lv, keys, msg, StepInclusion, ""},
		{"checkpoint of another tree size", mod(func(c *Bundle) { c.Checkpoint = l.Checkpoint(20) }), lv, keys, msg, StepInclusion, ""},
		{"checkpoint by another key", mod(func(c *Bundle) { c.Checkpoint = otherLog.Publish() }), lv, keys, msg, StepCheckpoint, ""},
		{"pinned origin differs", marshal(t, b), lvOtherOrigin, keys, msg, StepCheckpoint, ""},
		{"checkpoint text altered", mod(func(c *Bundle) { c.Checkpoint = bytes.Replace(c.Checkpoint, []byte("\n21\n"), []byte("\n22\n"), 1) }), lv, keys, msg, StepCheckpoint, ""},
		{"uppercase message", marshal(t, b), lv, keys, bytes.ToUpper(msg), StepMessage, ""},
		{"garbage", []byte("garbage"), lv, keys, msg, StepBundle, ""},
	}
	for _, c := range cases {
		_, err := VerifyBundle(c.data, c.lv, c.keys, c.msg)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Step != c.step || (c.field != "" && ve.Field != c.field) {
			t.Errorf("%s: %v (want step %s)", c.name, err, c.step)
			continue
		}
		t.Logf("%-38s %v", c.name, err)
	}
	// The evidence of a root mismatch carries both roots.
	_, err = VerifyBundle(cases[7].data, lv, keys, msg)
	var ve *VerifyError
	if !errors.As(err, &ve) || len(ve.Expected) != 64 || len(ve.Got) != 64 || ve.Expected == ve.Got {
		t.Fatalf("root mismatch evidence: %v", err)
	}
	if _, err := VerifyBundle(marshal(t, b), nil, keys, msg); err == nil {
		t.Fatal("no log verifier")
	}
}

// bundleAt returns a bundle for the entry already at index idx.
func bundleAt(t testing.TB, l *tilelog.Log, idx uint64, h *HashedRekord) *Bundle {
	t.Helper()
	return &Bundle{Index: idx, Hashes: l.InclusionProof(idx, l.Size()), Checkpoint: l.Checkpoint(l.Size()), Signature: h.Signature}
}
