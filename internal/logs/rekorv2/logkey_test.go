package rekorv2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/bintrans/bintrans/internal/testkit/tilelog"
)

// --log-key takes a PEM key or a vkey; both name the same log, and the
// origin is pinned either way.
func TestParseLogKey(t *testing.T) {
	pemKey, _ := os.ReadFile("testdata/log.pub")
	vkey, _ := os.ReadFile("testdata/log.vkey")
	a, err := ParseLogKey(pemKey, "rekor-v2.local")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseLogKey(vkey, "") // the vkey names its origin
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseLogKey(append([]byte("\n  "), vkey...), "rekor-v2.local")
	if err != nil {
		t.Fatal(err)
	}
	// The vkey the stack script computes with openssl/sha256sum is x/mod's.
	if a.VerifierKey() != strings.TrimSpace(string(vkey)) || b.VerifierKey() != a.VerifierKey() || c.VerifierKey() != a.VerifierKey() {
		t.Fatalf("vkeys differ: %s / %s / %s", a.VerifierKey(), b.VerifierKey(), c.VerifierKey())
	}
	if a.KeyID() != b.KeyID() || !bytes.Equal(a.PublicKey(), b.PublicKey()) || b.Origin() != "rekor-v2.local" {
		t.Fatal("the two forms differ")
	}
	// logId.keyId of the real server's answers is the full key hash.
	if kid := a.KeyID(); kid[0] != 0x67 || kid[1] != 0xa3 {
		t.Fatalf("key id %x does not start with the vkey's hash 67a3f6be", kid)
	}

	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})
	bad := []struct {
		name, origin string
		key          []byte
		want         string
	}{
		{"PEM without origin", "", pemKey, "needs the checkpoint origin"},
		{"vkey for another origin", "other.example", vkey, "names origin"},
		{"ECDSA", "o", ecPEM, "only Ed25519"},
		{"private key", "o", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), "want \"PUBLIC KEY\""},
		{"trailing data", "o", append(bytes.Clone(pemKey), "junk"...), "after the PEM block"},
		{"garbage", "o", []byte("garbage"), "not a note verifier key"},
		{"two lines", "o", []byte("a+b+c\nd"), "one-line"},
		{"empty", "o", []byte("  \n"), "empty"},
		{"huge", "o", bytes.Repeat([]byte("a"), MaxLogKeySize+1), "at most"},
		{"bad origin", "has space", pemKey, "cannot name a note key"},
	}
	for _, c := range bad {
		var le *LogKeyError
		_, err := ParseLogKey(c.key, c.origin)
		if !errors.As(err, &le) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (want %q)", c.name, err, c.want)
		}
	}
}

func TestVerifyCheckpoint(t *testing.T) {
	l := tilelog.New(t, "cp.test/log")
	l.Append([]byte("a"), []byte("b"))
	raw := l.Publish()
	lv, err := ParseLogKey(l.PublicKeyPEM, l.Origin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lv.VerifyCheckpoint(raw); err != nil {
		t.Fatal(err)
	}
	cp, err := lv.VerifyCheckpoint(raw) // from the memo of verified checkpoints
	if err != nil || cp.Size != 2 || cp.Root != l.Root(2) || cp.Origin != l.Origin || !bytes.Equal(cp.Raw, raw) {
		t.Fatalf("%v %+v", err, cp)
	}

	// A witness cosignature (another key) is allowed.
	wsk, _, _ := note.GenerateKey(rand.Reader, "witness.example")
	ws, _ := note.NewSigner(wsk)
	n, err := note.Open(raw, note.VerifierList(lv.noteVer))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := note.Sign(n, ws)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lv.VerifyCheckpoint(cosigned); err != nil {
		t.Fatalf("cosigned: %v", err)
	}

	other := tilelog.New(t, "cp.test/log") // same origin, another key
	other.Append([]byte("a"), []byte("b"))
	otherCP := other.Publish()
	tampered := bytes.Replace(raw, []byte("\n2\n"), []byte("\n3\n"), 1)
	cases := map[string]struct {
		raw  []byte
		want string
	}{
		"other key":     {otherCP, "not signed by the pinned log key"},
		"tampered size": {tampered, "does not verify"},
		"empty":         {nil, "want 1.."},
		"huge":          {bytes.Repeat([]byte("x"), MaxCheckpointSize+1), "want 1.."},
		"no signature":  {[]byte("cp.test/log\n2\nAAAA\n"), "not a signed note"},
	}
	for name, c := range cases {
		var ce *CheckpointError
		_, err := lv.VerifyCheckpoint(c.raw)
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (want %q)", name, err, c.want)
		}
	}
	// Signed by the key but for another origin (text line): the origin is pinned.
	sk, vk, _ := note.GenerateKey(rand.Reader, "cp.test/log")
	s, _ := note.NewSigner(sk)
	lv2, _ := ParseLogKey([]byte(vk), "")
	wrongOrigin, _ := note.Sign(&note.Note{Text: "cp.test/evil\n1\n" + strings.Repeat("A", 43) + "=\n"}, s)
	if _, err := lv2.VerifyCheckpoint(wrongOrigin); err == nil || !strings.Contains(err.Error(), "not the pinned origin") {
		t.Fatalf("other origin line: %v", err)
	}
	shortRoot, _ := note.Sign(&note.Note{Text: "cp.test/log\n1\nAAAA\n"}, s)
	if _, err := lv2.VerifyCheckpoint(shortRoot); err == nil || !strings.Contains(err.Error(), "root hash of 3 bytes") {
		t.Fatalf("short root: %v", err)
	}
}
