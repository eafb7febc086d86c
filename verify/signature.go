package verify

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jedisct1/go-minisign"
	"golang.org/x/crypto/blake2b"
)

// File name suffixes of what a signature source publishes next to a
// package. This is the one place that knows them.
const (
	SignatureSuffix = ".t"
	BundleSuffix    = ".t.bundle"
)

const (
	untrustedPrefix = "untrusted comment: "
	trustedPrefix   = "trusted comment: "
	// maxPublicKeyText bounds ParsePublicKey's input (a .pub file is ~110 bytes).
	maxPublicKeyText = 4096
)

// PublicKey is a minisign Ed25519 public key (a transparency key).
type PublicKey struct {
	keyNum [8]byte // key id bytes as stored (little-endian key number)
	key    [32]byte
}

// ParsePublicKey parses a minisign public key: either the bare base64 line
// (`RW…`) or a whole `.pub` file (untrusted comment line + key line, LF or
// CRLF). Anything else (extra lines, another algorithm, bad base64) is an
// error.
func ParsePublicKey(text string) (PublicKey, error) {
	var pk PublicKey
	if len(text) > maxPublicKeyText {
		return pk, fmt.Errorf("minisign public key: longer than %d bytes", maxPublicKeyText)
	}
	lines := strings.Split(strings.TrimRight(text, "\r\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	var line string
	switch {
	case len(lines) == 1:
		line = strings.TrimSpace(lines[0])
	case len(lines) == 2 && strings.HasPrefix(lines[0], untrustedPrefix):
		line = lines[1]
	default:
		return pk, errors.New("minisign public key: want a `RW…` line or a .pub file (comment line + key line)")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(line)
	if err != nil || len(raw) != 42 || strings.ContainsAny(line, "\r\n") {
		return pk, fmt.Errorf("minisign public key: %q is not base64 of 42 bytes", truncate(line, 64))
	}
	if raw[0] != 'E' || raw[1] != 'd' {
		return pk, fmt.Errorf("minisign public key: algorithm %q, want \"Ed\"", raw[:2])
	}
	copy(pk.keyNum[:], raw[2:10])
	copy(pk.key[:], raw[10:42])
	return pk, nil
}

// keyIDString renders key id bytes as minisign prints them: the key number
// is stored little-endian and printed as %016X, i.e. the bytes reversed.
func keyIDString(b [8]byte) string {
	var r [8]byte
	for i := range b {
		r[i] = b[7-i]
	}
	return strings.ToUpper(hex.EncodeToString(r[:]))
}

// KeyID is the key id in minisign's display order (the key number, upper-case
// hex), always 16 digits. minisign itself prints it with %lX, i.e. without
// leading zeros: compare with strings.TrimLeft(id, "0") when matching CLI output.
func (k PublicKey) KeyID() string { return keyIDString(k.keyNum) }

// Bytes is the 42-byte binary key: "Ed" ‖ key id ‖ Ed25519 key.
func (k PublicKey) Bytes() []byte {
	b := make([]byte, 0, 42)
	b = append(b, 'E', 'd')
	b = append(b, k.keyNum[:]...)
	return append(b, k.key[:]...)
}

// Base64 is the key line (`RW…`), as in the second line of a .pub file.
func (k PublicKey) Base64() string { return base64.StdEncoding.EncodeToString(k.Bytes()) }

// File is the text of a minisign .pub file for the key, as `minisign -G`
// writes it.
func (k PublicKey) File() []byte {
	id := strings.TrimLeft(k.KeyID(), "0")
	if id == "" {
		id = "0"
	}
	return []byte(untrustedPrefix + "minisign public key " + id + "\n" + k.Base64() + "\n")
}

// Ed25519 is the key's Ed25519 public key.
func (k PublicKey) Ed25519() ed25519.PublicKey { return append(ed25519.PublicKey(nil), k.key[:]...) }

// IsZero reports whether k is the zero value (no key).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// String is the key id and key line, for messages.
func (k PublicKey) String() string { return k.KeyID() + " " + k.Base64() }

// Signature is a parsed `.t` file (a minisign signature).
type Signature struct {
	untrusted string   // untrusted comment, without prefix
	line      [74]byte // algorithm ‖ key id ‖ Ed25519 signature
	trusted   string   // trusted comment, without prefix
	global    [64]byte // signature over signature ‖ trusted comment
}

// ParseSignature parses a `.t` file strictly: at most MaxSignatureSize
// bytes, exactly four lines (untrusted comment, signature, trusted comment,
// global signature) with an optional final newline, LF or CRLF line ends,
// algorithm `ED` (prehashed) or `Ed` (legacy). It checks form only; Verify
// checks the signatures. Errors are *SignatureError of kind SigMalformed.
func ParseSignature(b []byte) (*Signature, error) {
	bad := func(format string, args ...any) (*Signature, error) {
		return nil, &SignatureError{Kind: SigMalformed, Err: fmt.Errorf(format, args...)}
	}
	if len(b) > MaxSignatureSize {
		return bad("%d bytes, at most %d accepted", len(b), MaxSignatureSize)
	}
	text := string(b)
	text = strings.TrimSuffix(text, "\n")
	lines := strings.Split(text, "\n")
	if len(lines) != 4 {
		return bad("%d lines, a minisign signature has 4", len(lines))
	}
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if strings.ContainsRune(l, '\r') {
			return bad("line %d: stray carriage return", i+1)
		}
		lines[i] = l
	}
	var s Signature
	if !strings.HasPrefix(lines[0], untrustedPrefix) {
		return bad("line 1 does not start with %q", untrustedPrefix)
	}
	s.untrusted = lines[0][len(untrustedPrefix):]
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[1])
	if err != nil || len(raw) != 74 {
		return bad("line 2 is not base64 of 74 bytes")
	}
	if raw[0] != 'E' || (raw[1] != 'D' && raw[1] != 'd') {
		return bad("signature algorithm %q, want \"ED\" or \"Ed\"", raw[:2])
	}
	copy(s.line[:], raw)
	if !strings.HasPrefix(lines[2], trustedPrefix) {
		return bad("line 3 does not start with %q", trustedPrefix)
	}
	s.trusted = lines[2][len(trustedPrefix):]
	g, err := base64.StdEncoding.Strict().DecodeString(lines[3])
	if err != nil || len(g) != 64 {
		return bad("line 4 is not base64 of 64 bytes")
	}
	copy(s.global[:], g)
	return &s, nil
}

// Algorithm is "ED" (prehashed, BLAKE2b-512 of the message is signed) or
// "Ed" (legacy, the message itself is signed).
func (s *Signature) Algorithm() string { return string(s.line[:2]) }

// KeyID is the key id of the signature as minisign prints it.
func (s *Signature) KeyID() string { return keyIDString(s.keyNum()) }

func (s *Signature) keyNum() (k [8]byte) { copy(k[:], s.line[2:10]); return k }

// TrustedComment is the signed comment (without the "trusted comment: "
// prefix). Only meaningful after Verify succeeded.
func (s *Signature) TrustedComment() string { return s.trusted }

// Line is the 74 signature bytes (algorithm ‖ key id ‖ signature): what a
// Rekor entry stores of a minisign signature.
func (s *Signature) Line() []byte { return s.line[:] }

// Verify checks the signature against the policy keys: the key id must be a
// policy key's (else SigUnknownKey), the Ed25519 signature must verify over
// message (SigBadSignature), the global signature over the trusted comment
// (SigBadGlobalSignature), and the trusted comment must equal filename
// (SigCommentMismatch). It returns the key that verified.
func (s *Signature) Verify(keys []PublicKey, message []byte, filename string) (PublicKey, error) {
	id := s.keyNum()
	var (
		key   PublicKey
		err   error
		found bool
	)
	// Normally one policy key has this id; should two share it, the
	// signature must verify under one of them.
	for _, k := range keys {
		if k.keyNum != id {
			continue
		}
		found = true
		if key, err = s.verifyWith(k, message, filename); err == nil {
			return key, nil
		}
	}
	if !found {
		ids := make([]string, len(keys))
		for i, k := range keys {
			ids[i] = k.KeyID()
		}
		return PublicKey{}, &SignatureError{Kind: SigUnknownKey, KeyID: s.KeyID(), Got: s.KeyID(), Expected: strings.Join(ids, ",")}
	}
	return key, err
}

func (s *Signature) verifyWith(key PublicKey, message []byte, filename string) (PublicKey, error) {
	if !VerifyLine(key, s.line[:], message) {
		return key, &SignatureError{Kind: SigBadSignature, KeyID: s.KeyID(), Got: truncate(string(message), 128)}
	}
	global := make([]byte, 0, 64+len(s.trusted))
	global = append(global, s.line[10:74]...)
	global = append(global, s.trusted...)
	if !ed25519.Verify(key.key[:], global, s.global[:]) {
		return key, &SignatureError{Kind: SigBadGlobalSignature, KeyID: s.KeyID()}
	}
	if s.trusted != filename {
		return key, &SignatureError{Kind: SigCommentMismatch, KeyID: s.KeyID(), Expected: filename, Got: s.trusted}
	}
	return key, nil
}

// VerifyLine checks a minisign signature line (algorithm ‖ key id ‖
// Ed25519 signature: 74 bytes, what a log entry keeps of a `.t`) over
// message under key: the signature is over BLAKE2b-512(message) for
// algorithm "ED", over message itself for "Ed". The key id is not
// compared (LineKeyID).
func VerifyLine(key PublicKey, line, message []byte) bool {
	if len(line) != 74 || line[0] != 'E' || (line[1] != 'D' && line[1] != 'd') {
		return false
	}
	signed := message
	if line[1] == 'D' {
		h := blake2b.Sum512(message)
		signed = h[:]
	}
	return ed25519.Verify(key.key[:], signed, line[10:74])
}

// LineKeyID is the key id a minisign signature line names, as minisign
// prints it ("" for a line shorter than 10 bytes).
func LineKeyID(line []byte) string {
	if len(line) < 10 {
		return ""
	}
	return keyIDString([8]byte(line[2:10]))
}

// VerifySignature parses a `.t` and verifies it for a package: the message
// is the 64-byte lowercase hex sha256 of the package, the trusted comment
// must be filename. The caller must still make sure sha256Hex is the hash
// of the package it is about to trust.
func VerifySignature(t []byte, keys []PublicKey, sha256Hex, filename string) (*Signature, PublicKey, error) {
	if !isSHA256Hex(sha256Hex) {
		return nil, PublicKey{}, fmt.Errorf("verify: message %q is not a lowercase hex sha256", truncate(sha256Hex, 80))
	}
	s, err := ParseSignature(t)
	if err != nil {
		return nil, PublicKey{}, err
	}
	k, err := s.Verify(keys, []byte(sha256Hex), filename)
	return s, k, err
}

// SignPackage signs a package's sha256 the way every bintrans and
// pacman-bintrans client expects: message = the 64-byte lowercase hex
// sha256, prehashed (`ED`), trusted comment = filename. The result is the
// `.t` file, byte-identical to `minisign -S -m <hexfile> -t <filename>`.
// sk must be decrypted.
func SignPackage(sk *minisign.PrivateKey, sha256Hex, filename string) ([]byte, error) {
	if !isSHA256Hex(sha256Hex) {
		return nil, fmt.Errorf("sign: message %q is not a lowercase hex sha256", truncate(sha256Hex, 80))
	}
	if filename == "" || strings.ContainsAny(filename, "\r\n/") {
		return nil, fmt.Errorf("sign: %q is not a package file name", truncate(filename, 80))
	}
	sig, err := sk.Sign([]byte(sha256Hex), minisign.SignOptions{TrustedComment: filename, Hashed: true})
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", filename, err)
	}
	t := sig.Encode()
	if len(t) > MaxSignatureSize {
		return nil, fmt.Errorf("sign %s: signature would be %d bytes, at most %d accepted (file name too long)", filename, len(t), MaxSignatureSize)
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
