package rekorv1

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/bintrans/bintrans/verify"
)

// The canonical Rekor `rekord` v0.0.1 body of a minisign signature, field
// for field in the order rekor-server marshals it (go-api-notes §3). The two
// `content` fields are []byte: encoding/json base64-encodes them exactly as
// Rekor's strfmt.Base64 does.
type rekordBody struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Spec       rekordSpec `json:"spec"`
}

type rekordSpec struct {
	Data      rekordData      `json:"data"`
	Signature rekordSignature `json:"signature"`
}

type rekordData struct {
	Hash *rekordHash `json:"hash,omitempty"`
	// Content is never present in a canonical body; declared so that a body
	// carrying it is decoded (and rejected) rather than refused as unknown.
	Content []byte `json:"content,omitempty"`
}

type rekordHash struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type rekordSignature struct {
	Content   []byte          `json:"content"`
	Format    string          `json:"format"`
	PublicKey rekordPublicKey `json:"publicKey"`
}

type rekordPublicKey struct {
	Content []byte `json:"content"`
}

// rekorSigPrefix is what Rekor keeps of a minisign signature file before the
// signature line: the trusted comment and global signature are dropped.
const rekorSigPrefix = "untrusted comment:\n"

// CanonicalBody rebuilds, byte for byte, the body Rekor stores for the
// `rekord` entry of signature s by key over message (the 64-byte hex sha256).
// Its RFC 6962 leaf hash is the entry's UUID (LeafHash).
func CanonicalBody(s *verify.Signature, key verify.PublicKey, message []byte) []byte {
	b := rekordBody{
		APIVersion: "0.0.1",
		Kind:       "rekord",
		Spec: rekordSpec{
			Data: rekordData{Hash: &rekordHash{Algorithm: "sha256", Value: sha256Hex(message)}},
			Signature: rekordSignature{
				Content:   []byte(rekorSigPrefix + base64.StdEncoding.EncodeToString(s.Line())),
				Format:    "minisign",
				PublicKey: rekordPublicKey{Content: []byte(key.Base64())},
			},
		},
	}
	out, err := json.Marshal(b)
	if err != nil {
		panic("rekorv1: marshal of a fixed struct failed: " + err.Error())
	}
	return out
}

// LeafHash is the RFC 6962 leaf hash of an entry body, hex: the 64-hex
// entry UUID Rekor answers to at /api/v1/log/entries/<leaf hash>.
func LeafHash(body []byte) string {
	return hex.EncodeToString(rfc6962.DefaultHasher.HashLeaf(body))
}

// Body is the part of a decoded `rekord` minisign entry that binds it to a
// `.t`: the 74 signature bytes, the public key, the artifact hash.
type Body struct {
	// SigLine is algorithm ‖ key id ‖ Ed25519 signature (74 bytes).
	SigLine []byte
	// Key is the public key the log verified the signature with.
	Key verify.PublicKey
	// DataSHA256 is data.hash.value: hex sha256 of the signed message.
	DataSHA256 string
}

// DecodeBody decodes a canonical `rekord` v0.0.1 minisign body strictly:
// at most MaxEntryBodySize bytes, no unknown fields, no trailing data, kind
// "rekord", apiVersion "0.0.1", format "minisign", data.hash sha256 with 64
// lowercase hex, no data.content, signature content exactly
// "untrusted comment:\n" + base64(74 bytes), key content a minisign key line.
// It does not compare the body with anything: BindBody does.
func DecodeBody(body []byte) (*Body, error) {
	bad := func(field, format string, args ...any) (*Body, error) {
		return nil, &EntryError{Step: StepBody, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if len(body) > MaxEntryBodySize {
		return bad("body", "%d bytes, at most %d accepted", len(body), MaxEntryBodySize)
	}
	var b rekordBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return bad("body", "not a rekord entry: %v", err)
	}
	if dec.More() {
		return bad("body", "trailing data after the entry")
	}
	if b.Kind != "rekord" || b.APIVersion != "0.0.1" {
		return bad("kind", "entry kind %q version %q, want rekord 0.0.1", b.Kind, b.APIVersion)
	}
	if b.Spec.Signature.Format != "minisign" {
		return bad("signature.format", "format %q, want minisign", b.Spec.Signature.Format)
	}
	if b.Spec.Data.Hash == nil || b.Spec.Data.Hash.Algorithm != "sha256" || !isLowerHex(b.Spec.Data.Hash.Value, 64) {
		return bad("data.hash", "want a sha256 artifact hash in lowercase hex")
	}
	if len(b.Spec.Data.Content) != 0 {
		return bad("data.content", "a canonical entry carries no data content")
	}
	sc := b.Spec.Signature.Content
	if !bytes.HasPrefix(sc, []byte(rekorSigPrefix)) {
		return bad("signature.content", "does not start with %q", rekorSigPrefix)
	}
	line, err := base64.StdEncoding.Strict().DecodeString(string(sc[len(rekorSigPrefix):]))
	if err != nil || len(line) != 74 || bytes.ContainsAny(sc[len(rekorSigPrefix):], "\r\n") {
		return bad("signature.content", "signature line is not base64 of 74 bytes")
	}
	key, err := verify.ParsePublicKey(string(b.Spec.Signature.PublicKey.Content))
	if err != nil || bytes.ContainsAny(b.Spec.Signature.PublicKey.Content, "\r\n") {
		return bad("signature.publicKey", "not a minisign key line: %v", err)
	}
	return &Body{SigLine: line, Key: key, DataSHA256: b.Spec.Data.Hash.Value}, nil
}

// BindBody checks that a decoded body is the log entry of signature s over
// message by a policy key: same 74 signature bytes (algorithm, key id,
// signature), a key that is in keys, the signature's key id equal to the
// key's (Rekor does not compare them), and data.hash == sha256(message).
func BindBody(b *Body, s *verify.Signature, keys []verify.PublicKey, message []byte) error {
	if subtle.ConstantTimeCompare(b.SigLine, s.Line()) != 1 {
		return &EntryError{Step: StepBody, Field: "signature", Expected: base64.StdEncoding.EncodeToString(s.Line()), Got: base64.StdEncoding.EncodeToString(b.SigLine)}
	}
	inPolicy := false
	for _, k := range keys {
		if k == b.Key {
			inPolicy = true
			break
		}
	}
	if !inPolicy {
		return &EntryError{Step: StepBody, Field: "publicKey", Expected: "a policy key", Got: b.Key.KeyID() + " " + b.Key.Base64()}
	}
	if sigID := b.SigKeyID(); sigID != b.Key.KeyID() {
		return &EntryError{Step: StepBody, Field: "keyID", Expected: b.Key.KeyID(), Got: sigID}
	}
	if want := sha256Hex(message); b.DataSHA256 != want {
		return &EntryError{Step: StepBody, Field: "data.hash", Expected: want, Got: b.DataSHA256}
	}
	return nil
}

// SigKeyID is the key id of the body's signature line, as minisign prints
// it. Rekor does not compare it with the key's id.
func (b *Body) SigKeyID() string { return verify.LineKeyID(b.SigLine) }

// KeyIDMatches reports whether the signature line names the key that
// verified it. A mismatch is an entry no minisign client would accept, and
// anyone can log one by editing the key id of a published `.t`.
func (b *Body) KeyIDMatches() bool { return b.SigKeyID() == b.Key.KeyID() }

// VerifyMessage checks that the entry is a signature by b.Key over message:
// data.hash is sha256(message) and the signature line's Ed25519 signature
// verifies over message (algorithm `ED`: over its BLAKE2b-512). It does not
// look at the key id. Errors are *EntryError (data.hash) or
// *verify.SignatureError (SigBadSignature).
func (b *Body) VerifyMessage(message []byte) error {
	if want := sha256Hex(message); b.DataSHA256 != want {
		return &EntryError{Step: StepBody, Field: "data.hash", Expected: want, Got: b.DataSHA256}
	}
	if len(b.SigLine) != 74 || b.SigLine[0] != 'E' || (b.SigLine[1] != 'D' && b.SigLine[1] != 'd') {
		return &verify.SignatureError{Kind: verify.SigMalformed, Err: fmt.Errorf("signature line is not an Ed/ED minisign signature")}
	}
	if !verify.VerifyLine(b.Key, b.SigLine, message) {
		return &verify.SignatureError{Kind: verify.SigBadSignature, KeyID: b.SigKeyID(), Got: truncate(string(message))}
	}
	return nil
}

// sha256Hex returns the lowercase hex sha256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
