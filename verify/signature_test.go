package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/jedisct1/go-minisign"
)

func sigKind(t *testing.T, err error) SignatureErrorKind {
	t.Helper()
	var se *SignatureError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *SignatureError", err, err)
	}
	return se.Kind
}

func TestSignAndVerify(t *testing.T) {
	sk, pk := testKey(t, 1)
	_, other := testKey(t, 2)
	msg := hexOf("package")
	const fn = "foo-1.0-1-x86_64.pkg.tar.zst"
	tf, err := SignPackage(sk, msg, fn)
	if err != nil {
		t.Fatal(err)
	}
	s, k, err := VerifySignature(tf, []PublicKey{other, pk}, msg, fn)
	if err != nil {
		t.Fatal(err)
	}
	if k != pk || s.Algorithm() != "ED" || s.KeyID() != pk.KeyID() || s.TrustedComment() != fn {
		t.Fatalf("got key %v alg %s id %s comment %q", k, s.Algorithm(), s.KeyID(), s.TrustedComment())
	}

	cases := []struct {
		name   string
		t      []byte
		keys   []PublicKey
		msg    string
		fn     string
		kind   SignatureErrorKind
		status Status
	}{
		{"other message", tf, []PublicKey{pk}, hexOf("other"), fn, SigBadSignature, StatusBadSignature},
		{"unknown key id", tf, []PublicKey{other}, msg, fn, SigUnknownKey, StatusWrongKey},
		{"no keys", tf, nil, msg, fn, SigUnknownKey, StatusWrongKey},
		{"other filename", tf, []PublicKey{pk}, msg, "evil-1.0-1-x86_64.pkg.tar.zst", SigCommentMismatch, StatusCommentMismatch},
		{"edited trusted comment", bytes.Replace(tf, []byte("trusted comment: foo"), []byte("trusted comment: fop"), 1), []PublicKey{pk}, msg, "fop-1.0-1-x86_64.pkg.tar.zst", SigBadGlobalSignature, StatusBadSignature},
		{"oversized", append(tf, bytes.Repeat([]byte(" "), MaxSignatureSize)...), []PublicKey{pk}, msg, fn, SigMalformed, StatusMalformedSignature},
		{"extra line", append(append([]byte{}, tf...), "extra\n"...), []PublicKey{pk}, msg, fn, SigMalformed, StatusMalformedSignature},
		{"rekor two-line form", []byte("untrusted comment:\n" + strings.Split(string(tf), "\n")[1]), []PublicKey{pk}, msg, fn, SigMalformed, StatusMalformedSignature},
		{"garbage", []byte("\x00\x01binary"), []PublicKey{pk}, msg, fn, SigMalformed, StatusMalformedSignature},
		{"empty", nil, []PublicKey{pk}, msg, fn, SigMalformed, StatusMalformedSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := VerifySignature(c.t, c.keys, c.msg, c.fn)
			if k := sigKind(t, err); k != c.kind {
				t.Fatalf("kind %v, want %v (%v)", k, c.kind, err)
			}
			if st := StatusOf(err); st != c.status {
				t.Fatalf("status %s, want %s", st, c.status)
			}
		})
	}

	// A forged key id: the policy key's id on a signature by another key.
	osk, _ := testKey(t, 3)
	osk.KeyId = sk.KeyId
	forged, err := SignPackage(osk, msg, fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifySignature(forged, []PublicKey{pk}, msg, fn); sigKind(t, err) != SigBadSignature {
		t.Fatalf("forged key id: %v", err)
	}

	// Two policy keys sharing a key id: the signature must verify under one.
	opub := osk.PublicKey()
	twin, err := ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), opub.KeyId[:]...), opub.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	if _, k, err := VerifySignature(tf, []PublicKey{twin, pk}, msg, fn); err != nil || k != pk {
		t.Fatalf("twin key ids: %v %v", k, err)
	}
	if _, k, err := VerifySignature(forged, []PublicKey{pk, twin}, msg, fn); err != nil || k != twin {
		t.Fatalf("twin key ids, forged: %v %v", k, err)
	}

	// Every single flipped bit of the signature line is rejected.
	line := strings.Split(string(tf), "\n")[1]
	raw, _ := base64.StdEncoding.DecodeString(line)
	for i := range raw {
		mod := append([]byte(nil), raw...)
		mod[i] ^= 1
		bad := strings.Replace(string(tf), line, base64.StdEncoding.EncodeToString(mod), 1)
		if _, _, err := VerifySignature([]byte(bad), []PublicKey{pk}, msg, fn); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
}

func TestSignatureCRLFAndNoFinalNewline(t *testing.T) {
	sk, pk := testKey(t, 1)
	msg := hexOf("x")
	tf, _ := SignPackage(sk, msg, "x.pkg.tar.zst")
	for name, v := range map[string][]byte{
		"crlf":       bytes.ReplaceAll(tf, []byte("\n"), []byte("\r\n")),
		"no newline": bytes.TrimSuffix(tf, []byte("\n")),
	} {
		if _, _, err := VerifySignature(v, []PublicKey{pk}, msg, "x.pkg.tar.zst"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Bare CR inside a line is not a line ending.
	bad := bytes.Replace(tf, []byte("trusted comment: "), []byte("trusted comment: \r"), 1)
	if _, err := ParseSignature(bad); sigKind(t, err) != SigMalformed {
		t.Fatal("stray CR accepted")
	}
	// A blank line after the signature is an extra line.
	if _, err := ParseSignature(append(append([]byte{}, tf...), '\n')); sigKind(t, err) != SigMalformed {
		t.Fatal("extra blank line accepted")
	}
}

func TestSignPackageRejects(t *testing.T) {
	sk, _ := testKey(t, 1)
	for _, c := range []struct{ msg, fn string }{
		{"ABC", "a.pkg"},
		{strings.ToUpper(hexOf("x")), "a.pkg"},
		{hexOf("x"), ""},
		{hexOf("x"), "a\nb"},
		{hexOf("x"), "../a"},
		{hexOf("x"), strings.Repeat("a", 900)},
	} {
		if _, err := SignPackage(sk, c.msg, c.fn); err == nil {
			t.Errorf("SignPackage(%q, %q) accepted", c.msg, c.fn)
		}
	}
}

func TestParsePublicKey(t *testing.T) {
	// From `minisign -G`: the .pub comment prints the key id byte-reversed.
	const file = "untrusted comment: minisign public key 2C3E038CEDAA5D35\nRWQ1XartjAM+LExNxSyJeInjZgk1y1lbc/L+SqZUVqLhZOS6/g2yW+p5\n"
	const line = "RWQ1XartjAM+LExNxSyJeInjZgk1y1lbc/L+SqZUVqLhZOS6/g2yW+p5"
	for _, in := range []string{file, line, line + "\n", "  " + line + " \n", strings.ReplaceAll(file, "\n", "\r\n")} {
		k, err := ParsePublicKey(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if k.KeyID() != "2C3E038CEDAA5D35" || k.Base64() != line || string(k.File()) != file {
			t.Fatalf("%q: id %s b64 %s file %q", in, k.KeyID(), k.Base64(), k.File())
		}
	}
	for _, in := range []string{"", "RWQ", file + "extra\n", "comment\n" + line, strings.Replace(line, "RWQ", "RUQ", 1), strings.Repeat("A", 5000)} {
		if _, err := ParsePublicKey(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestHashReader(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100000)
	h, n, err := HashReader(bytes.NewReader(data))
	if err != nil || n != int64(len(data)) || h != hexOf(string(data)) {
		t.Fatalf("got %s %d %v", h, n, err)
	}
	if _, _, err := HashReader(errReader{}); err == nil {
		t.Fatal("read error not returned")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// minisign CLI interop, both directions.
func TestMinisignInterop(t *testing.T) {
	ms := testenv.Tool(t, "minisign")
	dir := t.TempDir()
	pubPath, secPath := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(ms, args...)
		cmd.Stdin = strings.NewReader("")
		return cmd.CombinedOutput()
	}
	if out, err := run("-G", "-W", "-p", pubPath, "-s", secPath); err != nil {
		t.Fatalf("minisign -G: %v\n%s", err, out)
	}
	pubText, _ := os.ReadFile(pubPath)
	pk, err := ParsePublicKey(string(pubText))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pk.File(), pubText) {
		t.Fatalf("File() = %q, minisign wrote %q", pk.File(), pubText)
	}
	sk, err := minisign.NewPrivateKeyFromFile(secPath)
	if err != nil {
		t.Fatal(err)
	}
	msg := hexOf("interop package")
	msgPath := filepath.Join(dir, "msg")
	os.WriteFile(msgPath, []byte(msg), 0o644)
	const fn = "interop-2:1.0-3-any.pkg.tar.zst"

	t.Run("bintrans signs, minisign verifies", func(t *testing.T) {
		tf, err := SignPackage(&sk, msg, fn)
		if err != nil {
			t.Fatal(err)
		}
		sigPath := filepath.Join(dir, "b.t")
		os.WriteFile(sigPath, tf, 0o644)
		out, err := run("-V", "-p", pubPath, "-m", msgPath, "-x", sigPath)
		if err != nil {
			t.Fatalf("minisign -V rejected bintrans' signature: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "Trusted comment: "+fn) {
			t.Fatalf("minisign output: %s", out)
		}
		// The CLI agrees on the rejections too.
		os.WriteFile(msgPath+"2", []byte(hexOf("other")), 0o644)
		if out, err := run("-V", "-p", pubPath, "-m", msgPath+"2", "-x", sigPath); err == nil {
			t.Fatalf("minisign accepted another message: %s", out)
		}
	})

	t.Run("minisign signs, bintrans verifies", func(t *testing.T) {
		for _, legacy := range []bool{false, true} {
			sigPath := filepath.Join(dir, "m.t")
			args := []string{"-S", "-s", secPath, "-m", msgPath, "-t", fn, "-x", sigPath}
			if legacy {
				args = append(args, "-l")
			}
			if out, err := run(args...); err != nil {
				t.Fatalf("minisign -S: %v\n%s", err, out)
			}
			tf, _ := os.ReadFile(sigPath)
			s, _, err := VerifySignature(tf, []PublicKey{pk}, msg, fn)
			if err != nil {
				t.Fatalf("legacy=%v: %v", legacy, err)
			}
			want := map[bool]string{false: "ED", true: "Ed"}[legacy]
			if s.Algorithm() != want {
				t.Fatalf("algorithm %s, want %s", s.Algorithm(), want)
			}
			if !legacy {
				ours, _ := SignPackage(&sk, msg, fn)
				if !bytes.Equal(ours, tf) {
					t.Fatalf("SignPackage output differs from minisign -S:\n%s\n%s", ours, tf)
				}
			}
			// Rejections, each with its own kind.
			_, otherPK := testKey(t, 9)
			lines := strings.Split(string(tf), "\n")
			raw, _ := base64.StdEncoding.DecodeString(lines[1])
			raw[40] ^= 0x01 // a byte of the Ed25519 signature
			lines[1] = base64.StdEncoding.EncodeToString(raw)
			flipped := []byte(strings.Join(lines, "\n"))
			if _, _, err := VerifySignature(flipped, []PublicKey{pk}, msg, fn); sigKind(t, err) != SigBadSignature {
				t.Fatalf("flipped byte: %v", err)
			}
			if _, _, err := VerifySignature(tf, []PublicKey{otherPK}, msg, fn); sigKind(t, err) != SigUnknownKey {
				t.Fatalf("wrong key: %v", err)
			}
			if _, _, err := VerifySignature(tf, []PublicKey{pk}, msg, "other.pkg.tar.zst"); sigKind(t, err) != SigCommentMismatch {
				t.Fatalf("wrong comment: %v", err)
			}
		}
	})
}
