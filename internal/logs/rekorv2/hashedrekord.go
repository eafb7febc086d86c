package rekorv2

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/transparency-dev/merkle/rfc6962"
)

// The entry type and algorithms Rekor v2 uses for Ed25519 keys.
const (
	Kind       = "hashedrekord"
	APIVersion = "0.0.2"
	// DigestAlgorithm is the hashedrekord data.algorithm of a SHA-512 digest.
	DigestAlgorithm = "SHA2_512"
	// KeyDetails is the verifier's keyDetails of an Ed25519ph signature.
	KeyDetails = "PKIX_ED25519_PH"
	// MessageSize is the length of a message: a lowercase hex SHA-256.
	MessageSize = 64
	// MaxBodySize bounds ParseBody's input. A hashedrekord body with an
	// Ed25519 key is about 450 bytes; one with an X.509 certificate a few KiB.
	MaxBodySize = 64 << 10
)

// HashedRekord is a hashedrekord v0.0.2 entry with an Ed25519ph signature:
// everything the log stores about a signed package, and all that is needed
// to rebuild the log's canonical body.
type HashedRekord struct {
	// Digest is SHA-512 of the message.
	Digest [sha512.Size]byte
	// Signature is the RFC 8032 Ed25519ph signature over Digest.
	Signature [ed25519.SignatureSize]byte
	// PublicKey is the signing (transparency) key.
	PublicKey ed25519.PublicKey
}

// Sign signs message (the package's 64-character lowercase hex SHA-256,
// exactly what its `.t` signs) with priv: an Ed25519ph signature over
// SHA-512(message). Ed25519 is deterministic, so signing the same package
// again makes the same entry (which the log answers with a 409).
func Sign(priv ed25519.PrivateKey, message []byte) (*HashedRekord, error) {
	if err := checkMessage(message); err != nil {
		return nil, err
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("rekor v2 sign: private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	// A minisign secret key carries seed and public key side by side: make
	// sure they belong together before publishing the public half.
	if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()), priv) {
		return nil, fmt.Errorf("rekor v2 sign: the private key's seed does not derive its public key")
	}
	h := &HashedRekord{Digest: sha512.Sum512(message), PublicKey: priv.Public().(ed25519.PublicKey)}
	sig, err := priv.Sign(nil, h.Digest[:], crypto.SHA512) // Hash: SHA512 selects Ed25519ph
	if err != nil {
		return nil, fmt.Errorf("rekor v2 sign: %w", err)
	}
	copy(h.Signature[:], sig)
	if !h.Verify() {
		return nil, fmt.Errorf("rekor v2 sign: the Ed25519ph signature does not verify")
	}
	return h, nil
}

// Verify reports whether Signature is a valid Ed25519ph signature over
// Digest by PublicKey.
func (h *HashedRekord) Verify() bool {
	return len(h.PublicKey) == ed25519.PublicKeySize &&
		ed25519.VerifyWithOptions(h.PublicKey, h.Digest[:], h.Signature[:], &ed25519.Options{Hash: crypto.SHA512}) == nil
}

// SPKI returns the DER SubjectPublicKeyInfo of an Ed25519 key (what the
// log stores as publicKey.rawBytes).
func SPKI(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil { // only for a key that is not an ed25519.PublicKey
		panic("rekorv2: " + err.Error())
	}
	return der
}

// Body returns the entry's canonicalized body exactly as the log stores it:
// RFC 8785 (JCS) JSON of the protojson form of the hashedrekord v0.0.2
// entry. Its RFC 6962 leaf hash is the entry's leaf in the log.
func (h *HashedRekord) Body() []byte {
	return canonicalBody(&Body{
		Algorithm: DigestAlgorithm, Digest: h.Digest[:], Signature: h.Signature[:],
		KeyDetails: KeyDetails, PublicKey: SPKI(h.PublicKey),
	})
}

// LeafHash is the RFC 6962 leaf hash of Body.
func (h *HashedRekord) LeafHash() [32]byte {
	return [32]byte(rfc6962.DefaultHasher.HashLeaf(h.Body()))
}

// requestJSON is the POST /api/v2/log/entries body (protojson of a
// CreateEntryRequest with a HashedRekordRequestV002).
func (h *HashedRekord) requestJSON() []byte {
	b64 := base64.StdEncoding.EncodeToString
	return []byte(`{"hashedRekordRequestV002":{"digest":"` + b64(h.Digest[:]) +
		`","signature":{"content":"` + b64(h.Signature[:]) +
		`","verifier":{"publicKey":{"rawBytes":"` + b64(SPKI(h.PublicKey)) +
		`"},"keyDetails":"` + KeyDetails + `"}}}}`)
}

// Body is a decoded hashedrekord v0.0.2 entry body, whatever its key.
type Body struct {
	Algorithm  string // data.algorithm ("SHA2_256", "SHA2_512", …)
	Digest     []byte // data.digest
	Signature  []byte // signature.content
	KeyDetails string // signature.verifier.keyDetails
	// Exactly one of PublicKey (DER SPKI) and Certificate (DER X.509) is set.
	PublicKey   []byte
	Certificate []byte
}

// wire form of a body; field order is irrelevant to decoding.
type bodyJSON struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		HashedRekordV002 *struct {
			Data struct {
				Algorithm string `json:"algorithm"`
				Digest    []byte `json:"digest"`
			} `json:"data"`
			Signature struct {
				Content  []byte `json:"content"`
				Verifier struct {
					KeyDetails string   `json:"keyDetails"`
					PublicKey  *rawJSON `json:"publicKey"`
					X509       *rawJSON `json:"x509Certificate"`
				} `json:"verifier"`
			} `json:"signature"`
		} `json:"hashedRekordV002"`
	} `json:"spec"`
}

type rawJSON struct {
	RawBytes []byte `json:"rawBytes"`
}

// BodyError is an entry body that is not a canonical hashedrekord v0.0.2
// body. Kind and APIVersion are what the body claims, when readable
// (another entry type is not an error of the log: see MentionsKey).
type BodyError struct {
	Kind, APIVersion string
	Reason           string
	Err              error
}

func (e *BodyError) Error() string {
	s := "entry body: " + e.Reason
	if e.Kind != "" || e.APIVersion != "" {
		s += fmt.Sprintf(" (kind %q, apiVersion %q)", sanitize(e.Kind, 40), sanitize(e.APIVersion, 20))
	}
	return withErr(s, e.Err)
}
func (e *BodyError) Unwrap() error { return e.Err }

// ParseBody decodes an entry body (at most MaxBodySize bytes) that must be
// a hashedrekord v0.0.2 body in the log's canonical form: no unknown or
// missing fields, exactly one verifier, and byte for byte what the log
// would have written. It does not verify the signature (see Body.SignedBy).
// Errors are *BodyError.
func ParseBody(b []byte) (*Body, error) {
	if len(b) == 0 || len(b) > MaxBodySize {
		return nil, &BodyError{Reason: fmt.Sprintf("%d bytes, want 1..%d", len(b), MaxBodySize)}
	}
	var j bodyJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		var probe struct{ Kind, APIVersion string }
		_ = json.Unmarshal(b, &probe)
		return nil, &BodyError{Kind: probe.Kind, APIVersion: probe.APIVersion, Reason: "not a hashedrekord v0.0.2 body", Err: err}
	}
	bad := func(reason string) (*Body, error) {
		return nil, &BodyError{Kind: j.Kind, APIVersion: j.APIVersion, Reason: reason}
	}
	if j.Kind != Kind || j.APIVersion != APIVersion || j.Spec.HashedRekordV002 == nil {
		return bad("not a hashedrekord v0.0.2 body")
	}
	s := j.Spec.HashedRekordV002
	v := s.Signature.Verifier
	body := &Body{Algorithm: s.Data.Algorithm, Digest: s.Data.Digest, Signature: s.Signature.Content, KeyDetails: v.KeyDetails}
	switch {
	case v.PublicKey != nil && v.X509 == nil:
		body.PublicKey = v.PublicKey.RawBytes
	case v.X509 != nil && v.PublicKey == nil:
		body.Certificate = v.X509.RawBytes
	default:
		return bad("want exactly one of verifier.publicKey and verifier.x509Certificate")
	}
	if body.Algorithm == "" || len(body.Digest) == 0 || len(body.Signature) == 0 || body.KeyDetails == "" ||
		len(body.PublicKey)+len(body.Certificate) == 0 {
		return bad("missing field")
	}
	if !bytes.Equal(canonicalBody(body), b) {
		return bad("not in canonical form (RFC 8785 JSON as the log writes it)")
	}
	return body, nil
}

// canonicalBody writes b as the log does: JCS orders object members by
// key, protojson writes bytes as padded standard base64; every string
// here is an enum name or base64, so none needs escaping.
func canonicalBody(b *Body) []byte {
	b64 := base64.StdEncoding.EncodeToString
	var buf bytes.Buffer
	buf.Grow(300 + 2*(len(b.Digest)+len(b.Signature)+len(b.PublicKey)+len(b.Certificate)))
	buf.WriteString(`{"apiVersion":"` + APIVersion + `","kind":"` + Kind + `","spec":{"hashedRekordV002":{"data":{"algorithm":"`)
	buf.WriteString(b.Algorithm)
	buf.WriteString(`","digest":"` + b64(b.Digest) + `"},"signature":{"content":"` + b64(b.Signature) + `","verifier":{"keyDetails":"`)
	buf.WriteString(b.KeyDetails)
	if b.Certificate != nil {
		buf.WriteString(`","x509Certificate":{"rawBytes":"` + b64(b.Certificate))
	} else {
		buf.WriteString(`","publicKey":{"rawBytes":"` + b64(b.PublicKey))
	}
	buf.WriteString(`"}}}}}}`)
	return buf.Bytes()
}

// SignedBy reports whether the body is an Ed25519ph signature by pub over
// its digest: keyDetails PKIX_ED25519_PH, algorithm SHA2_512, the public
// key (or the certificate's key) equal to pub, and a valid signature. To
// tie it to a package, compare Digest with SHA-512 of the package's message.
func (b *Body) SignedBy(pub ed25519.PublicKey) bool {
	if b.KeyDetails != KeyDetails || b.Algorithm != DigestAlgorithm || len(b.Digest) != sha512.Size {
		return false
	}
	if !b.HasKey(pub) {
		return false
	}
	return ed25519.VerifyWithOptions(pub, b.Digest, b.Signature, &ed25519.Options{Hash: crypto.SHA512}) == nil
}

// HasKey reports whether the body's verifier is pub: its public key, or
// the public key of its certificate.
func (b *Body) HasKey(pub ed25519.PublicKey) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	if b.PublicKey != nil {
		return bytes.Equal(b.PublicKey, SPKI(pub))
	}
	c, err := x509.ParseCertificate(b.Certificate)
	if err != nil {
		return false
	}
	k, ok := c.PublicKey.(ed25519.PublicKey)
	return ok && k.Equal(pub)
}

// MentionsKey reports whether an entry body of any type names pub as a
// public key the way Rekor encodes keys (standard base64 of the DER SPKI).
// A monitor uses it for the bodies ParseBody refuses (other entry types,
// such as dsse, or future fields): an entry that mentions the transparency
// key but is not an entry bintrans makes is a finding, not noise.
func MentionsKey(body []byte, pub ed25519.PublicKey) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	return bytes.Contains(body, []byte(base64.StdEncoding.EncodeToString(SPKI(pub))))
}

// checkMessage requires the 64-character lowercase hex message.
func checkMessage(m []byte) error {
	if len(m) != MessageSize {
		return &VerifyError{Step: StepMessage, Reason: fmt.Sprintf("%d bytes, want %d lowercase hex digits", len(m), MessageSize)}
	}
	for _, c := range m {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return &VerifyError{Step: StepMessage, Reason: "not the package's SHA-256", Expected: "64 lowercase hex digits", Got: sanitize(string(m), 64)}
		}
	}
	return nil
}
