package signer

import (
	b64std "encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jedisct1/go-minisign"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// minisignKey makes a key pair with the real minisign CLI: -W (unencrypted)
// when password is empty, else -G encrypted with password.
func minisignKey(t *testing.T, password string) (pubPath, secPath string) {
	t.Helper()
	bin := testenv.Tool(t, "minisign")
	dir := t.TempDir()
	pubPath, secPath = filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	args := []string{"-G", "-p", pubPath, "-s", secPath}
	if password == "" {
		args = append([]string{"-W"}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(password + "\n" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("minisign %v: %v\n%s", args, err, out)
	}
	return pubPath, secPath
}

func readPub(t *testing.T, path string) minisign.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := minisign.DecodePublicKey(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func never(t *testing.T) PasswordFunc {
	return func() (string, error) { t.Error("password asked for an unencrypted key"); return "", nil }
}

// A -W key (zero checksum, "encrypted" in its comment) reads without a
// password, matches its .pub, and signs what minisign -V accepts.
func TestReadUnencryptedMinisignKey(t *testing.T) {
	pubPath, secPath := minisignKey(t, "")
	sk, err := ReadSecretKey(secPath, never(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckKeyPair(sk, readPub(t, pubPath)); err != nil {
		t.Fatal(err)
	}
	const fn = "foo-1.0-1-x86_64.pkg.tar.zst"
	msg := strings.Repeat("ab", 32)
	tf, err := verify.SignPackage(sk, msg, fn)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m"), []byte(msg), 0o644)
	os.WriteFile(filepath.Join(dir, "m.t"), tf, 0o644)
	out, err := exec.Command(testenv.Tool(t, "minisign"), "-V", "-p", pubPath, "-m", filepath.Join(dir, "m"), "-x", filepath.Join(dir, "m.t")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Trusted comment: "+fn) {
		t.Fatalf("minisign -V: %v\n%s", err, out)
	}
}

// encryptCheap re-encrypts an unencrypted minisign secret key file the way
// minisign -G does (scrypt stream XOR key number ‖ secret key ‖ BLAKE2b
// checksum), but with libsodium's smallest limits (N=2^10), so that the
// decryption path is tested in milliseconds.
func encryptCheap(t *testing.T, secPath, password string) string {
	t.Helper()
	raw, _ := os.ReadFile(secPath)
	lines := strings.SplitN(string(raw), "\n", 3)
	bin, err := b64std.StdEncoding.DecodeString(lines[1])
	if err != nil || len(bin) != 158 {
		t.Fatalf("not a secret key: %v", err)
	}
	const ops, mem = 32768, 16 << 20 // pickparams: N=2^10, r=8, p=1
	salt := bin[6:38]
	binary.LittleEndian.PutUint64(bin[38:], ops)
	binary.LittleEndian.PutUint64(bin[46:], mem)
	h, _ := blake2b.New256(nil)
	h.Write(bin[0:2])
	h.Write(bin[54:126])
	copy(bin[126:158], h.Sum(nil))
	stream, err := scrypt.Key([]byte(password), salt, 1<<10, 8, 1, 104)
	if err != nil {
		t.Fatal(err)
	}
	for i := range stream {
		bin[54+i] ^= stream[i]
	}
	copy(bin[2:4], "Sc")
	p := filepath.Join(t.TempDir(), "cheap.key")
	os.WriteFile(p, []byte(lines[0]+"\n"+b64std.StdEncoding.EncodeToString(bin)+"\n"), 0o600)
	return p
}

// An encrypted key: the password is asked exactly once; a wrong one is a
// KeyError that names the file and holds no key bytes.
func TestReadEncryptedKey(t *testing.T) {
	pubPath, plain := minisignKey(t, "")
	secPath := encryptCheap(t, plain, "hunter2")
	raw, _ := os.ReadFile(secPath)
	asked := 0
	_, err := ReadSecretKey(secPath, func() (string, error) { asked++; return "wrong", nil })
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Path != secPath || asked != 1 {
		t.Fatalf("wrong password: %v (asked %d)", err, asked)
	}
	line := strings.Split(string(raw), "\n")[1]
	if strings.Contains(err.Error(), line[10:40]) {
		t.Fatal("error message contains key bytes")
	}
	sk, err := ReadSecretKey(secPath, func() (string, error) { return "hunter2", nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckKeyPair(sk, readPub(t, pubPath)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretKey(secPath, func() (string, error) { return "", ErrNoPassword }); !errors.Is(err, ErrNoPassword) {
		t.Fatalf("no password: %v", err)
	}
	if _, err := ReadSecretKey(secPath, nil); !errors.Is(err, ErrNoPassword) {
		t.Fatalf("nil password func: %v", err)
	}
}

// A key made by `minisign -G` itself, at minisign's real cost (about 2.4 s
// and 1 GB; minutes under the race detector, so skipped there).
func TestReadMinisignGKey(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("scrypt at minisign's cost: ~2.4 s and 1 GB (minutes with -race)")
	}
	// Made once with `minisign -G`, password hunter2.
	pubPath, secPath := filepath.Join("testdata", "encrypted.pub"), filepath.Join("testdata", "encrypted.key")
	sk, err := ReadSecretKey(secPath, func() (string, error) { return "hunter2", nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckKeyPair(sk, readPub(t, pubPath)); err != nil {
		t.Fatal(err)
	}
}

func TestSecretKeyErrors(t *testing.T) {
	pubPath, secPath := minisignKey(t, "")
	raw, _ := os.ReadFile(secPath)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	// Flip a byte of the Ed25519 public half inside the secret key: the
	// unencrypted key has no checksum to catch it, the derivation does.
	lines := strings.SplitN(string(raw), "\n", 3)
	corrupt := []byte(lines[0] + "\n" + flipBase64(lines[1], 62+32+1) + "\n")
	cases := map[string]string{
		"missing":            filepath.Join(dir, "nope"),
		"public key instead": pubPath,
		"too large":          write("big", make([]byte, maxSecretKeyFile+1)),
		"garbage":            write("garbage", []byte("untrusted comment: x\nnot base64\n")),
		"corrupt":            write("corrupt", corrupt),
	}
	for name, p := range cases {
		_, err := ReadSecretKey(p, never(t))
		var ke *KeyError
		if !errors.As(err, &ke) {
			t.Errorf("%s: %v, want *KeyError", name, err)
		}
	}
	// The pair check: another key's .pub is refused with both key ids.
	otherPub, _ := minisignKey(t, "")
	k, err := ReadSecretKey(secPath, never(t))
	if err != nil {
		t.Fatal(err)
	}
	var km *KeyMismatchError
	if err := CheckKeyPair(k, readPub(t, otherPub)); !errors.As(err, &km) || km.SecretKeyID == km.PublicKeyID {
		t.Fatalf("CheckKeyPair(other) = %v", err)
	}
	// Same key id, other key bytes.
	same := readPub(t, pubPath)
	same.PublicKey[0] ^= 1
	if err := CheckKeyPair(k, same); !errors.As(err, &km) || !km.SameKeyID {
		t.Fatalf("CheckKeyPair(same id, other key) = %v", err)
	}
}

// flipBase64 decodes s, flips byte i, re-encodes.
func flipBase64(s string, i int) string {
	b, err := b64std.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	b[i] ^= 1
	return b64std.StdEncoding.EncodeToString(b)
}
