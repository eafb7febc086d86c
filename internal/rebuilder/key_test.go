package rebuilder

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nullParamPEM writes pub as in-toto-rs does (explicit NULL parameter, CRLF).
func nullParamPEM(pub ed25519.PublicKey) []byte {
	der := append([]byte{0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00, 0x03, 0x21, 0x00}, pub...)
	return []byte("-----BEGIN PUBLIC KEY-----\r\n" + base64.StdEncoding.EncodeToString(der) + "\r\n-----END PUBLIC KEY-----\r\n")
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePublicKeyNullParameter(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := nullParamPEM(pub)
	// The pitfall this parser exists for: the standard library refuses it.
	block, _ := pem.Decode(p)
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		t.Fatal("x509.ParsePKIXPublicKey accepted the NULL-parameter SPKI; the custom parser may be unnecessary")
	}
	got, err := ParsePublicKey(p)
	if err != nil {
		t.Fatalf("ParsePublicKey(NULL param): %v", err)
	}
	if !got.Equal(pub) {
		t.Fatalf("key = %x, want %x", got, pub)
	}
	// RFC 8410 form (no parameters), as Go and openssl write it.
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	got, err = ParsePublicKey(pemOf("PUBLIC KEY", der))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParsePublicKey(RFC 8410) = %x, %v", got, err)
	}
}

func TestParsePublicKeyRejects(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	good := []byte{0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00, 0x03, 0x21, 0x00}
	withParam := []byte{0x30, 0x2d, 0x30, 0x08, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x02, 0x01, 0x00, 0x03, 0x21, 0x00}
	short := []byte{0x30, 0x2b, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00, 0x03, 0x20, 0x00}
	x448 := []byte{0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x05, 0x00, 0x03, 0x21, 0x00}
	cases := map[string][]byte{
		"no PEM":         []byte("MCwwBwYDK2VwBQADIQBLNcEcgErQ1rZz9oIkUnzc3fPuqJEALr22rNbrBK7iqQ=="),
		"private type":   pemOf("PRIVATE KEY", append(good, pub...)),
		"ecdsa":          pemOf("PUBLIC KEY", ecDER),
		"integer param":  pemOf("PUBLIC KEY", append(withParam, pub...)),
		"31-byte key":    pemOf("PUBLIC KEY", append(short, pub[:31]...)),
		"other OID":      pemOf("PUBLIC KEY", append(x448, pub...)),
		"trailing bytes": pemOf("PUBLIC KEY", append(append(good, pub...), 0)),
		"two blocks":     append(nullParamPEM(pub), nullParamPEM(pub)...),
	}
	for name, in := range cases {
		if k, err := ParsePublicKey(in); err == nil {
			t.Errorf("%s: accepted, key %x", name, k)
		}
	}
}

// The two daemon keys quoted in docs/rebuilderd-api.md §3 with their
// in-toto key ids (the archlinux one is quoted truncated).
func TestKeyIDOfRealRebuilderKeys(t *testing.T) {
	for _, c := range []struct{ b64, prefix, suffix string }{
		{"MCwwBwYDK2VwBQADIQATuimKMfCOSfiKc2AT/T1NKQhn9y39Kz5Suo0w5UUXGA==", "2980aa6249ad89ce0ef0f0f5e6d0896214301b2818aad33443444cf460df6ed6", ""},
		{"MCwwBwYDK2VwBQADIQBLNcEcgErQ1rZz9oIkUnzc3fPuqJEALr22rNbrBK7iqQ==", "1ae6d32c", "8b8f"},
	} {
		k, err := ParsePublicKey([]byte("-----BEGIN PUBLIC KEY-----\r\n" + c.b64 + "\r\n-----END PUBLIC KEY-----\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		id := KeyID(k)
		if len(id) != 64 || !strings.HasPrefix(id, c.prefix) || !strings.HasSuffix(id, c.suffix) {
			t.Errorf("KeyID = %s, want %s…%s", id, c.prefix, c.suffix)
		}
	}
}

func TestKeyFlagAndFile(t *testing.T) {
	u, f, err := ParseKeyFlag("https://example.org/rebuild/=/etc/bintrans/k=1.pem")
	if err != nil || u != "https://example.org/rebuild/" || f != "/etc/bintrans/k=1.pem" {
		t.Fatalf("ParseKeyFlag = %q, %q, %v", u, f, err)
	}
	for _, bad := range []string{"https://x/", "=k.pem", "https://x/="} {
		if _, _, err := ParseKeyFlag(bad); err == nil {
			t.Errorf("ParseKeyFlag(%q) accepted", bad)
		}
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	p := filepath.Join(dir, "k.pem")
	if err := os.WriteFile(p, nullParamPEM(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := ReadKeyFile(p)
	if err != nil || !k.Equal(pub) {
		t.Fatalf("ReadKeyFile = %x, %v", k, err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, append(nullParamPEM(pub), make([]byte, MaxKeyFileSize)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("ReadKeyFile(oversized) = %v, want a size error", err)
	}
}
