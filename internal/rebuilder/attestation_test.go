package rebuilder_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/rebuilder"
	"github.com/bintrans/bintrans/internal/testkit/rebuildertest"
)

const (
	fsFile = "filesystem-2025.10.12-1-any.pkg.tar.zst"
	fsSHA  = "6b6c3fee7432204840d3b6afc9bc1a68c28f591a47fb220071715c40cca956df"
	other  = "0000000000000000000000000000000000000000000000000000000000000000"
)

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// pinnedKey goes the way a user's key goes: PEM as rebuilderd serves it,
// parsed by the client.
func pinnedKey(t testing.TB, priv ed25519.PrivateKey) ed25519.PublicKey {
	t.Helper()
	k, err := rebuilder.ParsePublicKey(rebuildertest.PublicKeyPEM(priv.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fsLink() rebuildertest.Link {
	return rebuildertest.DefaultLink(rebuildertest.Package{Name: "filesystem", Version: "2025.10.12-1", Arch: "any", SHA256: fsSHA})
}

func TestKeyIDMatchesIndependentComputation(t *testing.T) {
	for range 4 {
		pub, _ := newKey(t)
		if got, want := rebuilder.KeyID(pub), rebuildertest.KeyID(pub); got != want {
			t.Fatalf("KeyID = %s, independent computation %s", got, want)
		}
	}
}

// Each case changes one field of an attestation that otherwise verifies.
func TestAttestationVerify(t *testing.T) {
	_, priv := newKey(t)
	_, stranger := newKey(t)
	key := pinnedKey(t, priv)
	good := rebuildertest.SignLink(fsLink(), rebuildertest.Signer{Key: priv})

	otherSHA := fsLink()
	otherSHA.Products[fsFile] = rebuildertest.Digest{SHA256: other, SHA512: otherSHA.Products[fsFile].SHA512}
	otherName := fsLink()
	otherName.Products = map[string]rebuildertest.Digest{"filesystem-2025.10.12-2-any.pkg.tar.zst": otherName.Products[fsFile]}
	layout := fsLink()
	layout.Type = "layout"
	newline := fsLink()
	newline.Name = "rebuild\n" + fsFile // exercises in-toto-rs's `\n` replacement
	flipped := bytes.Clone(good)
	i := bytes.Index(flipped, []byte(`"sig":"`)) + len(`"sig":"`)
	if flipped[i] == '0' { // change one hex digit of the signature
		flipped[i] = '1'
	} else {
		flipped[i] = '0'
	}
	tampered := bytes.Replace(good, []byte(fsSHA), []byte(other), 1) // signed: the canonical form differs now

	cases := []struct {
		name  string
		att   []byte
		check string // "" = verifies
	}{
		{"valid", good, ""},
		{"valid, worker signature first", rebuildertest.SignLink(fsLink(), rebuildertest.Signer{Key: stranger}, rebuildertest.Signer{Key: priv}), ""},
		{"newline in a string", rebuildertest.SignLink(newline, rebuildertest.Signer{Key: priv}), ""},
		{"product sha256", rebuildertest.SignLink(otherSHA, rebuildertest.Signer{Key: priv}), rebuilder.CheckProductSHA256},
		{"product filename", rebuildertest.SignLink(otherName, rebuildertest.Signer{Key: priv}), rebuilder.CheckProductFilename},
		{"_type", rebuildertest.SignLink(layout, rebuildertest.Signer{Key: priv}), rebuilder.CheckType},
		{"signature bit flipped", flipped, rebuilder.CheckSignature},
		{"content changed after signing", tampered, rebuilder.CheckSignature},
		{"keyid of another key on a good signature", rebuildertest.SignLink(fsLink(), rebuildertest.Signer{Key: priv, KeyID: rebuildertest.KeyID(stranger.Public().(ed25519.PublicKey))}), rebuilder.CheckKeyID},
		{"wrong key under its own keyid", rebuildertest.SignLink(fsLink(), rebuildertest.Signer{Key: stranger}), rebuilder.CheckKeyID},
		{"wrong key claiming the pinned keyid", rebuildertest.SignLink(fsLink(), rebuildertest.Signer{Key: stranger, KeyID: rebuilder.KeyID(key)}), rebuilder.CheckSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := rebuilder.ParseAttestation(c.att)
			if err != nil {
				t.Fatalf("ParseAttestation: %v", err)
			}
			err = a.Verify(key, fsFile, fsSHA)
			if c.check == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			var ae *rebuilder.AttestationError
			if !errors.As(err, &ae) || ae.Check != c.check {
				t.Fatalf("Verify = %v, want an AttestationError for %q", err, c.check)
			}
		})
	}

	// The package's own hash must be the product's: the same valid
	// attestation does not vouch for another file content.
	a, _ := rebuilder.ParseAttestation(good)
	var ae *rebuilder.AttestationError
	if err := a.Verify(key, fsFile, other); !errors.As(err, &ae) || ae.Check != rebuilder.CheckProductSHA256 || ae.Got != fsSHA || ae.Expected != other {
		t.Fatalf("Verify(other sha) = %v, want product-sha256 with evidence", err)
	}
	if err := a.Verify(key, fsFile, strings.ToUpper(fsSHA)); err != nil {
		t.Fatalf("upper-case hex: %v", err)
	}
	if err := a.Verify(key, fsFile, ""); !errors.As(err, &ae) || ae.Check != rebuilder.CheckProductSHA256 {
		t.Fatalf("Verify(no sha) = %v, want product-sha256", err)
	}
}

func TestParseAttestationRejects(t *testing.T) {
	_, priv := newKey(t)
	good := string(rebuildertest.SignLink(fsLink(), rebuildertest.Signer{Key: priv}))
	cases := map[string]string{
		"not JSON":       "<html>",
		"no signed":      `{"signatures":[{"keyid":"aa","sig":"bb"}]}`,
		"no signatures":  `{"signatures":[],"signed":{"_type":"link"}}`,
		"float":          strings.Replace(good, `"command":[]`, `"command":[1.5]`, 1),
		"duplicate key":  strings.Replace(good, `"environment":null`, `"environment":null,"environment":{}`, 1),
		"trailing data":  good + "{}",
		"products array": strings.Replace(good, `"byproducts":{}`, `"byproducts":{},"products":[]`, 1),
		"too large":      good + strings.Repeat(" ", rebuilder.MaxAttestationSize),
	}
	for name, in := range cases {
		_, err := rebuilder.ParseAttestation([]byte(in))
		var ae *rebuilder.AttestationError
		if !errors.As(err, &ae) || ae.Check != rebuilder.CheckFormat {
			t.Errorf("%s: ParseAttestation = %v, want a format error", name, err)
		}
	}
}

func TestCanonicalJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"b": 1, "a": [true, false, null], "_": {}}`, `{"_":{},"a":[true,false,null],"b":1}`},
		{`{"B":1,"a":2,"Z":3,"é":4}`, `{"B":1,"Z":3,"a":2,"é":4}`}, // bytewise
		{`"\u0001\u001f\b\f\n\r\t\"\\/"`, `"\u0001\u001f\b\f\n\r\t\"\\/"`},
		{`"<>&\u2028\u00e9"`, "\"<>&\u2028\u00e9\""}, // no HTML or U+2028 escaping (serde_json)
		{`"\u007f"`, "\"\x7f\""},
		{`[-9223372036854775808, 18446744073709551615, 0]`, `[-9223372036854775808,18446744073709551615,0]`},
		{` [ ] `, `[]`},
		{`[-0]`, `[0]`},
	}
	for _, c := range cases {
		got, err := rebuilder.CanonicalJSON([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("CanonicalJSON(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`1.0`, `1e3`, `18446744073709551616`, `-9223372036854775809`, `{"a":1,"a":2}`, `[1] [2]`, `{`, `[007]`,
		strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		if got, err := rebuilder.CanonicalJSON([]byte(bad)); err == nil {
			t.Errorf("CanonicalJSON(%s) = %s, want an error", bad, got)
		}
	}
}
