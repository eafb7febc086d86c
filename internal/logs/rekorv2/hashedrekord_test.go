package rekorv2

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// The real server's answer (testdata, captured from rekor-tiles v2.3.0)
// is exactly what Sign and Body produce for the same key and message, and
// passes every check of a Writer: the body template is byte-exact, the
// response decoding and the duplicated-field checks accept the real thing.
func TestRealServerAnswer(t *testing.T) {
	vkey, err := os.ReadFile("testdata/log.vkey")
	if err != nil {
		t.Fatal(err)
	}
	lv, err := ParseLogKey(vkey, "rekor-v2.local")
	if err != nil {
		t.Fatal(err)
	}
	answer, err := os.ReadFile("testdata/add-201-index2.json")
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("bintrans rekorv2 testdata key"))
	h := mustSign(t, ed25519.NewKeyFromSeed(seed[:]), "pkg-c")
	w, err := NewWriter("http://127.0.0.1:1", nil, lv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := w.checkAnswer(h, answer)
	if err != nil {
		t.Fatalf("the real server's answer: %v", err)
	}
	if l.Index != 2 || l.Checkpoint.Size != 3 || len(l.Hashes) != 1 {
		t.Fatalf("index %d size %d hashes %d", l.Index, l.Checkpoint.Size, len(l.Hashes))
	}
	// The same answer for another package's entry is refused: the body is compared.
	if _, err := w.checkAnswer(mustSign(t, ed25519.NewKeyFromSeed(seed[:]), "pkg-b"), answer); !isStep(err, StepResponse) {
		t.Fatalf("answer for another entry: %v", err)
	}
	// And the bundle made from it verifies offline.
	bb, err := l.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyBundle(bb, lv, []ed25519.PublicKey{h.PublicKey}, msgOf("pkg-c"))
	if err != nil || v.Index != 2 || v.LeafHash != h.LeafHash() {
		t.Fatalf("bundle: %v %+v", err, v)
	}
	// The 409 body names the index (the header is the first choice).
	b409, _ := os.ReadFile("testdata/add-409.json")
	if n, err := conflictIndex("", b409); err != nil || n != 0 {
		t.Fatalf("409 body: %d %v", n, err)
	}
}

func isStep(err error, s Step) bool {
	var ve *VerifyError
	return errors.As(err, &ve) && ve.Step == s
}

func TestSignIsEd25519phOverSHA512(t *testing.T) {
	priv := testKey(1)
	msg := msgOf("foo-1.0-1-x86_64.pkg.tar.zst")
	h, err := Sign(priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	d := sha512.Sum512(msg)
	if h.Digest != d {
		t.Fatal("digest is not SHA-512 of the message")
	}
	pub := priv.Public().(ed25519.PublicKey)
	if err := ed25519.VerifyWithOptions(pub, d[:], h.Signature[:], &ed25519.Options{Hash: crypto.SHA512}); err != nil {
		t.Fatalf("not Ed25519ph: %v", err)
	}
	if ed25519.Verify(pub, msg, h.Signature[:]) || ed25519.Verify(pub, d[:], h.Signature[:]) {
		t.Fatal("the signature verifies as pure Ed25519")
	}
	again, _ := Sign(priv, msg)
	if again.Signature != h.Signature || !bytes.Equal(again.Body(), h.Body()) {
		t.Fatal("signing is not deterministic (re-runs would not be 409s)")
	}
	// The request carries the same fields as the body.
	req := string(h.requestJSON())
	for _, want := range []string{base64.StdEncoding.EncodeToString(d[:]), base64.StdEncoding.EncodeToString(h.Signature[:]),
		base64.StdEncoding.EncodeToString(SPKI(pub)), `"keyDetails":"PKIX_ED25519_PH"`} {
		if !strings.Contains(req, want) {
			t.Fatalf("request %s lacks %s", req, want)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	priv := testKey(1)
	for _, m := range []string{"", strings.Repeat("a", 63), strings.Repeat("A", 64), strings.Repeat("g", 64), strings.Repeat("a", 65)} {
		if _, err := Sign(priv, []byte(m)); !isStep(err, StepMessage) {
			t.Errorf("message %q: %v", m, err)
		}
	}
	// A secret key whose public half is not its seed's (a corrupted minisign key).
	bad := append(ed25519.PrivateKey(nil), priv...)
	copy(bad[32:], testKey(2)[32:])
	if _, err := Sign(bad, msgOf("x")); err == nil {
		t.Fatal("signed with a key whose halves do not match")
	}
	if _, err := Sign(priv[:32], msgOf("x")); err == nil {
		t.Fatal("signed with a 32-byte key")
	}
}

// A minisign secret key converts to crypto/ed25519 by its layout, and the
// entry then names the minisign public key.
func TestMinisignKeyConverts(t *testing.T) {
	bin := testenv.Tool(t, "minisign")
	dir := t.TempDir()
	cmd := exec.Command(bin, "-G", "-W", "-p", filepath.Join(dir, "k.pub"), "-s", filepath.Join(dir, "k.key"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v %s", err, out)
	}
	sk, err := minisign.NewPrivateKeyFromFile(filepath.Join(dir, "k.key"))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := minisign.NewPublicKeyFromFile(filepath.Join(dir, "k.pub"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Sign(ed25519.PrivateKey(sk.SecretKey[:]), msgOf("pkg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.PublicKey, pk.PublicKey[:]) {
		t.Fatal("the entry's key is not the minisign public key")
	}
	b, err := ParseBody(h.Body())
	if err != nil || !b.SignedBy(ed25519.PublicKey(pk.PublicKey[:])) {
		t.Fatalf("body: %v", err)
	}
}

func TestParseBody(t *testing.T) {
	priv := testKey(1)
	pub := priv.Public().(ed25519.PublicKey)
	h := mustSign(t, priv, "a")
	body := h.Body()
	b, err := ParseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if !b.SignedBy(pub) || b.SignedBy(testKey(2).Public().(ed25519.PublicKey)) || !b.HasKey(pub) {
		t.Fatal("SignedBy/HasKey")
	}
	if d := sha512.Sum512(msgOf("a")); !bytes.Equal(b.Digest, d[:]) {
		t.Fatal("digest")
	}
	if !MentionsKey(body, pub) || MentionsKey(body, testKey(2).Public().(ed25519.PublicKey)) {
		t.Fatal("MentionsKey")
	}

	// A certificate verifier (the other form Rekor stores) parses, and its key counts.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cb := canonicalBody(&Body{Algorithm: DigestAlgorithm, Digest: h.Digest[:], Signature: h.Signature[:], KeyDetails: KeyDetails, Certificate: certDER})
	c, err := ParseBody(cb)
	if err != nil || !c.SignedBy(pub) || c.PublicKey != nil {
		t.Fatalf("certificate body: %v", err)
	}

	swap := func(old, new string) []byte { return bytes.Replace(body, []byte(old), []byte(new), 1) }
	bad := map[string][]byte{
		"empty":            nil,
		"not JSON":         []byte("nope"),
		"unknown field":    swap(`"kind":"hashedrekord"`, `"kind":"hashedrekord","x":1`),
		"dsse":             swap(`"kind":"hashedrekord"`, `"kind":"dsse"`),
		"v0.0.1":           swap(`"apiVersion":"0.0.2"`, `"apiVersion":"0.0.1"`),
		"whitespace":       swap(`{"apiVersion"`, `{ "apiVersion"`),
		"member order":     swap(`"apiVersion":"0.0.2","kind":"hashedrekord"`, `"kind":"hashedrekord","apiVersion":"0.0.2"`),
		"no keyDetails":    swap(`"keyDetails":"PKIX_ED25519_PH",`, ``),
		"two verifiers":    swap(`"publicKey":{`, `"x509Certificate":{"rawBytes":"AA=="},"publicKey":{`),
		"unpadded base64":  bytes.Replace(body, []byte(`==`), []byte(``), 1),
		"trailing newline": append(bytes.Clone(body), '\n'),
		"too large":        bytes.Repeat([]byte("x"), MaxBodySize+1),
	}
	for name, in := range bad {
		var be *BodyError
		if _, err := ParseBody(in); !errors.As(err, &be) {
			t.Errorf("%s: %v", name, err)
		}
	}
	var be *BodyError
	if _, err := ParseBody(bad["dsse"]); !errors.As(err, &be) || be.Kind != "dsse" {
		t.Fatalf("dsse: %v", err)
	}
	// Not Ed25519ph, or not SHA-512: not "signed by" even with the key.
	b2 := *b
	b2.KeyDetails = "PKIX_ED25519"
	b3 := *b
	b3.Algorithm = "SHA2_256"
	if b2.SignedBy(pub) || b3.SignedBy(pub) {
		t.Fatal("SignedBy accepted another algorithm")
	}
}
