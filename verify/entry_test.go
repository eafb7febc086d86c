package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// logged builds a log of n signed packages and returns them (entries with
// proofs at the final size).
func logged(t testing.TB, l *testLog, n int) ([]*pkg, PublicKey) {
	t.Helper()
	sk, pk := testKey(t, 1)
	ps := make([]*pkg, n)
	for i := range ps {
		ps[i] = newPkg(t, sk, i)
		l.addSigned(t, ps[i].t, pk, ps[i].sha)
	}
	for i := range ps {
		ps[i].entry = l.entryAt(int64(i), int64(n))
	}
	return ps, pk
}

func clone(e *LogEntry) *LogEntry {
	b, _ := json.Marshal(e)
	var c LogEntry
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return &c
}

func entryErr(t *testing.T, err error) *EntryError {
	t.Helper()
	var ee *EntryError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v (%T) is not an *EntryError", err, err)
	}
	return ee
}

func TestCanonicalBody(t *testing.T) {
	// The exact shape Rekor v1.5.4 stores (go-api-notes §3), field order included.
	sk, pk := testKey(t, 1)
	msg := hexOf("x")
	tf, _ := SignPackage(sk, msg, "x.pkg.tar.zst")
	s, _ := ParseSignature(tf)
	body := CanonicalBody(s, pk, []byte(msg))
	want := `{"apiVersion":"0.0.1","kind":"rekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"` + hexOf(msg) +
		`"}},"signature":{"content":"` + base64.StdEncoding.EncodeToString([]byte("untrusted comment:\n"+base64.StdEncoding.EncodeToString(s.Line()))) +
		`","format":"minisign","publicKey":{"content":"` + base64.StdEncoding.EncodeToString([]byte(pk.Base64())) + `"}}}}`
	if string(body) != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
	if len(body) != 471 {
		t.Fatalf("canonical body is %d bytes, Rekor's are 471", len(body))
	}
	b, err := DecodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := BindBody(b, s, []PublicKey{pk}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyEntry(t *testing.T) {
	l := newTestLog(t)
	ps, pk := logged(t, l, 22)
	keys := []PublicKey{pk}
	p := ps[0]
	cp, err := VerifyEntry(p.entry, p.t, keys, p.sha, p.filename, l.key)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 22 || cp.Origin != l.origin {
		t.Fatalf("checkpoint %v", cp)
	}
	// Bundle round trip.
	b, err := MarshalBundle(p.entry)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEntry(e2, p.t, keys, p.sha, p.filename, l.key); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"schema_version": 1`) {
		t.Fatalf("bundle lacks schema_version: %s", b)
	}
}

// TestVerifyEntryTamper: every field of an entry is bound; each tamper is
// caught by the step that must catch it.
func TestVerifyEntryTamper(t *testing.T) {
	l := newTestLog(t)
	ps, pk := logged(t, l, 22)
	keys := []PublicKey{pk}
	p := ps[0]
	other := newTestLog(t)
	otherPs, _ := logged(t, other, 22)

	// A body by the right key, right key id, but the key id bytes of the sig
	// line altered (Rekor accepts such an entry, go-api-notes §1).
	s, _ := ParseSignature(p.t)
	altered := *s
	altered.line[2] ^= 0xff
	cases := []struct {
		name  string
		mod   func(e *LogEntry)
		step  EntryStep
		field string
	}{
		{"body byte flip", func(e *LogEntry) { e.Body[100] ^= 1 }, StepBundle, "uuid"},
		{"body of another package", func(e *LogEntry) { e.Body = ps[1].entry.Body; e.UUID = "" }, StepBody, "signature"},
		{"proof hash flip", func(e *LogEntry) {
			e.Verification.InclusionProof.Hashes[0] = flipHex(e.Verification.InclusionProof.Hashes[0])
		}, StepInclusion, ""},
		{"proof hash dropped", func(e *LogEntry) {
			h := e.Verification.InclusionProof.Hashes
			e.Verification.InclusionProof.Hashes = h[:len(h)-1]
		}, StepInclusion, ""},
		{"proof index+1", func(e *LogEntry) { e.Verification.InclusionProof.LogIndex++ }, StepInclusion, ""},
		{"entry logIndex+1", func(e *LogEntry) { e.LogIndex++ }, StepSET, ""},
		{"integratedTime+1", func(e *LogEntry) { e.IntegratedTime++ }, StepSET, ""},
		{"SET flip", func(e *LogEntry) { e.Verification.SignedEntryTimestamp[10] ^= 1 }, StepSET, ""},
		{"rootHash flip", func(e *LogEntry) {
			e.Verification.InclusionProof.RootHash = flipHex(e.Verification.InclusionProof.RootHash)
		}, StepInclusion, ""},
		{"checkpoint size edited", func(e *LogEntry) {
			e.Verification.InclusionProof.Checkpoint = strings.Replace(e.Verification.InclusionProof.Checkpoint, "\n22\n", "\n23\n", 1)
		}, StepCheckpoint, ""},
		{"checkpoint origin edited", func(e *LogEntry) {
			e.Verification.InclusionProof.Checkpoint = strings.Replace(e.Verification.InclusionProof.Checkpoint, "rekor.test", "rekor.evil", 1)
		}, StepCheckpoint, ""},
		// Hole 1 (go-api-notes §2): treeSize not bound to the checkpoint. For
		// index 0 the proof has the same shape at 17..23; rekor accepts these.
		{"treeSize 21 (hole 1)", func(e *LogEntry) { e.Verification.InclusionProof.TreeSize = 21 }, StepCheckpoint, "treeSize"},
		{"treeSize 23 (hole 1)", func(e *LogEntry) { e.Verification.InclusionProof.TreeSize = 23 }, StepCheckpoint, "treeSize"},
		{"genuine checkpoint of another size", func(e *LogEntry) {
			e.Verification.InclusionProof.Checkpoint = string(l.checkpointAt(21))
		}, StepCheckpoint, "treeSize"},
		// Hole 3: logID not compared with the pinned key.
		{"logID of another log (hole 3)", func(e *LogEntry) { e.LogID = other.key.ID() }, StepBundle, "logID"},
		{"entry of another log", func(e *LogEntry) { *e = *clone(otherPs[0].entry) }, StepBundle, "logID"},
		// Hole 4: nil fields must be errors, not panics.
		{"nil verification (hole 4)", func(e *LogEntry) { e.Verification = nil }, StepBundle, "verification"},
		{"nil inclusion proof (hole 4)", func(e *LogEntry) { e.Verification.InclusionProof = nil }, StepBundle, "verification.inclusionProof"},
		{"empty checkpoint (hole 4)", func(e *LogEntry) { e.Verification.InclusionProof.Checkpoint = "" }, StepBundle, "inclusionProof.checkpoint"},
		{"empty rootHash (hole 4)", func(e *LogEntry) { e.Verification.InclusionProof.RootHash = "" }, StepBundle, "inclusionProof.rootHash"},
		{"empty SET", func(e *LogEntry) { e.Verification.SignedEntryTimestamp = nil }, StepBundle, "verification.signedEntryTimestamp"},
		{"empty body", func(e *LogEntry) { e.Body = nil }, StepBundle, "body"},
		{"index >= treeSize", func(e *LogEntry) { e.Verification.InclusionProof.LogIndex = 22 }, StepBundle, "inclusionProof.logIndex"},
		{"negative index", func(e *LogEntry) { e.Verification.InclusionProof.LogIndex = -1 }, StepBundle, "inclusionProof.logIndex"},
		{"negative global index", func(e *LogEntry) { e.LogIndex = -5 }, StepBundle, "logIndex"},
		{"huge proof", func(e *LogEntry) {
			e.Verification.InclusionProof.Hashes = make([]string, MaxProofHashes+1)
			for i := range e.Verification.InclusionProof.Hashes {
				e.Verification.InclusionProof.Hashes[i] = hexOf("x")
			}
		}, StepBundle, "inclusionProof.hashes"},
		{"uuid of another leaf", func(e *LogEntry) { e.UUID = ps[1].entry.UUID }, StepBundle, "uuid"},
		// Hole 5: a key id in the logged sig line that is not the key's.
		{"altered key id in logged sig line", func(e *LogEntry) {
			e.Body = CanonicalBody(&altered, pk, []byte(p.sha))
			e.UUID = ""
		}, StepBody, "signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := clone(p.entry)
			c.mod(e)
			_, err := VerifyEntry(e, p.t, keys, p.sha, p.filename, l.key)
			ee := entryErr(t, err)
			if ee.Step != c.step || (c.field != "" && ee.Field != c.field) {
				t.Fatalf("step %s field %q, want %s %q: %v", ee.Step, ee.Field, c.step, c.field, err)
			}
			if StatusOf(err) != StatusBundleInvalid {
				t.Fatalf("status %s", StatusOf(err))
			}
		})
	}
	// Another log key altogether: every checkpoint and SET fails.
	if _, err := VerifyEntry(otherPs[0].entry, otherPs[0].t, keys, otherPs[0].sha, otherPs[0].filename, l.key); entryErr(t, err).Field != "logID" {
		t.Fatalf("other log: %v", err)
	}
	// The same other-log entry, with the logID patched to ours: caught by the checkpoint.
	e := clone(otherPs[0].entry)
	e.LogID = l.key.ID()
	if _, err := VerifyEntry(e, otherPs[0].t, keys, otherPs[0].sha, otherPs[0].filename, l.key); entryErr(t, err).Step != StepCheckpoint {
		t.Fatalf("other log, patched logID: %v", err)
	}
}

// TestBodyBinding: the body must be this `.t`, a policy key, this message.
func TestBodyBinding(t *testing.T) {
	l := newTestLog(t)
	sk, pk := testKey(t, 1)
	osk, opk := testKey(t, 2)
	msg := hexOf("pkg")
	const fn = "pkg-1-1-any.pkg.tar.zst"
	tf, _ := SignPackage(sk, msg, fn)
	s, _ := ParseSignature(tf)
	otf, _ := SignPackage(osk, msg, fn)
	os, _ := ParseSignature(otf)

	// Hole 5 (go-api-notes §1): an entry whose sig line carries the policy
	// key's id but whose key is another one; Rekor accepts this. The body
	// holds the other key (not a policy key).
	forged := *os
	copy(forged.line[2:10], s.line[2:10])
	cases := []struct {
		name  string
		body  []byte
		keys  []PublicKey
		sig   *Signature
		field string
	}{
		{"other key's entry", CanonicalBody(os, opk, []byte(msg)), []PublicKey{pk}, s, "signature"},
		{"other key not in policy", CanonicalBody(os, opk, []byte(msg)), []PublicKey{pk}, os, "publicKey"},
		{"key id of sig line differs from key's", CanonicalBody(&forged, opk, []byte(msg)), []PublicKey{pk, opk}, &forged, "keyID"},
		{"other message", CanonicalBody(s, pk, []byte(hexOf("other"))), []PublicKey{pk}, s, "data.hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := DecodeBody(c.body)
			if err != nil {
				t.Fatal(err)
			}
			err = BindBody(b, c.sig, c.keys, []byte(msg))
			if ee := entryErr(t, err); ee.Step != StepBody || ee.Field != c.field {
				t.Fatalf("got %v, want field %s", err, c.field)
			}
		})
	}
	// Through VerifyEntry: a logged entry for another key id with the same signature fails at the body.
	e := l.add(CanonicalBody(&forged, opk, []byte(msg)))
	if _, err := VerifyEntry(e, tf, []PublicKey{pk, opk}, msg, fn, l.key); entryErr(t, err).Step != StepBody {
		t.Fatalf("forged entry: %v", err)
	}

	bad := map[string]string{
		"not json":       `{`,
		"trailing":       string(CanonicalBody(s, pk, []byte(msg))) + `{}`,
		"unknown field":  strings.Replace(string(CanonicalBody(s, pk, []byte(msg))), `"kind"`, `"x":1,"kind"`, 1),
		"hashedrekord":   strings.Replace(string(CanonicalBody(s, pk, []byte(msg))), `"rekord"`, `"hashedrekord"`, 1),
		"pgp":            strings.Replace(string(CanonicalBody(s, pk, []byte(msg))), `"minisign"`, `"pgp"`, 1),
		"sha512":         strings.Replace(string(CanonicalBody(s, pk, []byte(msg))), `"sha256"`, `"sha512"`, 1),
		"with content":   strings.Replace(string(CanonicalBody(s, pk, []byte(msg))), `"data":{`, `"data":{"content":"YQ==",`, 1),
		"full .t stored": fmt.Sprintf(`{"apiVersion":"0.0.1","kind":"rekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"%s"}},"signature":{"content":"%s","format":"minisign","publicKey":{"content":"%s"}}}}`, hexOf(msg), base64.StdEncoding.EncodeToString(tf), base64.StdEncoding.EncodeToString([]byte(pk.Base64()))),
		"huge":           strings.Repeat(" ", MaxEntryBodySize+1),
	}
	for name, b := range bad {
		if _, err := DecodeBody([]byte(b)); entryErr(t, err).Step != StepBody {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func flipHex(h string) string {
	b, _ := hex.DecodeString(h)
	b[0] ^= 1
	return hex.EncodeToString(b)
}

func TestCheckpoint(t *testing.T) {
	l := newTestLog(t)
	logged(t, l, 5)
	text := l.checkpointAt(5)
	cp, err := l.key.VerifyCheckpoint(text)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 5 || !bytes.Equal(cp.Root, l.tree.HashAt(5)) || cp.Origin != l.origin {
		t.Fatalf("%v", cp)
	}
	// Witness cosignature lines by other keys are fine (rekor's SignedNote.Verify fails them).
	w, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	l.witness = w
	if _, err := l.key.VerifyCheckpoint(l.checkpointAt(5)); err != nil {
		t.Fatalf("witness-cosigned checkpoint: %v", err)
	}
	l.witness = nil
	// Hole 2: a pinned origin is compared.
	pinned := *l.key
	pinned.Origin = "rekor.test - 999"
	var ce *CheckpointError
	if _, err := pinned.VerifyCheckpoint(text); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "origin") {
		t.Fatalf("pinned origin: %v", err)
	}
	pinned.Origin = l.origin
	if _, err := pinned.VerifyCheckpoint(text); err != nil {
		t.Fatal(err)
	}
	other := newTestLog(t)
	logged(t, other, 5)
	if _, err := l.key.VerifyCheckpoint(other.checkpointAt(5)); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "pinned log key") {
		t.Fatalf("other key: %v", err)
	}
	bad := map[string]string{
		"no blank line":      strings.Replace(string(text), "\n\n", "\n", 1),
		"no signature":       strings.SplitAfter(string(text), "\n\n")[0],
		"no final newline":   strings.TrimSuffix(string(text), "\n"),
		"leading zero size":  strings.Replace(string(text), "\n5\n", "\n05\n", 1),
		"negative size":      strings.Replace(string(text), "\n5\n", "\n-5\n", 1),
		"short root":         strings.Replace(string(text), base64.StdEncoding.EncodeToString(cp.Root), "AAAA", 1),
		"bad sig line":       strings.Replace(string(text), "\u2014 ", "- ", 1),
		"sig too short":      string(cp.body) + "\n\u2014 x AAAA\n",
		"oversized":          string(text) + strings.Repeat("\u2014 x AAAAAAAA\n", 1000),
		"too many sig lines": string(text) + strings.Repeat("\u2014 x AAAAAAAA\n", 20),
		"empty origin":       "\n" + string(text),
	}
	for name, b := range bad {
		if _, err := ParseCheckpoint([]byte(b)); !errors.As(err, &ce) {
			t.Errorf("%s accepted: %v", name, err)
		}
	}
}

func TestParseBundleStrict(t *testing.T) {
	l := newTestLog(t)
	ps, _ := logged(t, l, 3)
	good, err := MarshalBundle(ps[0].entry)
	if err != nil {
		t.Fatal(err)
	}
	var be *BundleError
	bad := map[string]string{
		"not json":        "<html>502 Bad Gateway</html>",
		"no version":      strings.Replace(string(good), `"schema_version": 1,`, ``, 1),
		"version 2":       strings.Replace(string(good), `"schema_version": 1`, `"schema_version": 2`, 1),
		"unknown field":   strings.Replace(string(good), `"schema_version": 1,`, `"schema_version": 1, "extra": true,`, 1),
		"trailing":        string(good) + "{}",
		"oversized":       string(good) + strings.Repeat(" ", MaxBundleSize),
		"missing proof":   `{"schema_version":1,"uuid":"","logIndex":0,"logID":"` + l.key.ID() + `","integratedTime":1,"body":"YQ==","verification":{"signedEntryTimestamp":"YQ=="}}`,
		"overflow index":  strings.Replace(string(good), `"logIndex": 0,`, `"logIndex": 99999999999999999999,`, 1),
		"truncated":       string(good[:len(good)/2]),
		"empty":           "",
		"null":            "null",
		"body not base64": strings.Replace(string(good), `"body": "`, `"body": "!`, 1),
	}
	for name, b := range bad {
		if _, err := ParseBundle([]byte(b)); !errors.As(err, &be) {
			t.Errorf("%s: %v", name, err)
		} else if StatusOf(err) != StatusBundleInvalid {
			t.Errorf("%s: status %s", name, StatusOf(err))
		}
	}
	if _, err := MarshalBundle(&LogEntry{}); !errors.As(err, &be) {
		t.Fatalf("incomplete entry marshalled: %v", err)
	}
}

// The tree-size hole, shown on the library itself: proof.VerifyInclusion
// accepts the same proof at several sizes, so binding to the checkpoint is
// the only thing that pins it.
func TestInclusionProofSizeAmbiguity(t *testing.T) {
	l := newTestLog(t)
	ps, _ := logged(t, l, 22)
	p := ps[0].entry.Verification.InclusionProof
	root, _ := hex.DecodeString(p.RootHash)
	hs := make([][]byte, len(p.Hashes))
	for i, h := range p.Hashes {
		hs[i], _ = hex.DecodeString(h)
	}
	leaf, _ := hex.DecodeString(LeafHash(ps[0].entry.Body))
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 0, 23, leaf, hs, root); err != nil {
		t.Skipf("library now binds the size: %v", err)
	}
}

func TestVerifyLoggedAndConsistency(t *testing.T) {
	l := newTestLog(t)
	ps, _ := logged(t, l, 9)
	body, cp, err := VerifyLogged(ps[3].entry, l.key)
	if err != nil || cp.Size != 9 || body.DataSHA256 != hexOf(ps[3].sha) || !body.KeyIDMatches() || body.VerifyMessage([]byte(ps[3].sha)) != nil {
		t.Fatalf("%v %v %v", body, cp, err)
	}
	e := clone(ps[3].entry)
	e.IntegratedTime++
	if _, _, err := VerifyLogged(e, l.key); entryErr(t, err).Step != StepSET {
		t.Fatalf("SET: %v", err)
	}
	e = clone(ps[3].entry)
	e.Verification.InclusionProof.TreeSize = 10
	if _, _, err := VerifyLogged(e, l.key); entryErr(t, err).Field != "treeSize" {
		t.Fatalf("treeSize: %v", err)
	}

	old, _ := l.key.VerifyCheckpoint(l.checkpointAt(4))
	cur, _ := l.key.VerifyCheckpoint(l.checkpointAt(9))
	p, _ := l.tree.ConsistencyProof(4, 9)
	if err := CheckConsistency(old, cur, p, ""); err != nil {
		t.Fatal(err)
	}
	if err := CheckConsistency(cur, cur, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := ProveConsistent(context.Background(), l, old, cur, "old"); err != nil {
		t.Fatal(err)
	}
	empty := *old
	empty.Size = 0
	if err := ProveConsistent(context.Background(), l, &empty, cur, "empty"); err != nil {
		t.Fatalf("empty tree: %v", err)
	}
	var se *SecurityError
	bad := [][]byte{append([]byte(nil), p[0]...)}
	bad[0][0] ^= 1
	for name, c := range map[string]func() error{
		"rollback":   func() error { return CheckConsistency(cur, old, nil, "") },
		"bad proof":  func() error { return CheckConsistency(old, cur, append(bad, p[1:]...), "") },
		"no proof":   func() error { return CheckConsistency(old, cur, nil, "") },
		"huge proof": func() error { return CheckConsistency(old, cur, make([][]byte, MaxProofHashes+1), "") },
		"fork same size": func() error {
			o := *cur
			o.Root = old.Root
			return CheckConsistency(&o, cur, nil, "")
		},
	} {
		if err := c(); !errors.As(err, &se) || len(se.Old) == 0 || len(se.New) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}
