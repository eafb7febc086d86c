package rebuilder

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the attestation parser. A rebuilderd link with two signatures is
// about 1.5 KiB; split packages list a few more materials.
const (
	MaxAttestationSize = 256 << 10
	maxSignatures      = 16
	maxArtifacts       = 256
	maxJSONDepth       = 32
)

// Checks an attestation can fail, the Check field of *AttestationError.
const (
	CheckFormat          = "format"           // not an in-toto v0.9 link metablock
	CheckType            = "type"             // signed._type is not "link"
	CheckKeyID           = "keyid"            // no signature by the pinned key's id
	CheckSignature       = "signature"        // the pinned key's signature does not verify
	CheckProductFilename = "product-filename" // no product named like the package file
	CheckProductSHA256   = "product-sha256"   // the product's sha256 is not the package's
)

// AttestationError says why an attestation does not vouch for a package. It
// carries the evidence: what was expected and what the attestation holds.
type AttestationError struct {
	Check    string // one of the Check* constants
	Expected string
	Got      string
	Err      error // underlying parse error, for CheckFormat
}

func (e *AttestationError) Error() string {
	switch e.Check {
	case CheckFormat:
		return "attestation: malformed in-toto link: " + e.Err.Error()
	case CheckType:
		return fmt.Sprintf("attestation: _type %q, want %q", e.Got, e.Expected)
	case CheckKeyID:
		return fmt.Sprintf("attestation: no signature by the pinned key %s (signed by: %s)", e.Expected, e.Got)
	case CheckSignature:
		return fmt.Sprintf("attestation: signature by key %s does not verify", e.Expected)
	case CheckProductFilename:
		return fmt.Sprintf("attestation: no product %q (products: %s)", e.Expected, e.Got)
	case CheckProductSHA256:
		return fmt.Sprintf("attestation: product sha256 %s, want %s", e.Got, e.Expected)
	}
	return "attestation: " + e.Check
}

func (e *AttestationError) Unwrap() error { return e.Err }

// Digests are the hashes of one material or product of a link.
type Digests struct {
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512"`
}

// Link is the signed part of a rebuilderd attestation (an in-toto v0.9 link).
type Link struct {
	Type      string             `json:"_type"`
	Name      string             `json:"name"`
	Materials map[string]Digests `json:"materials"`
	Products  map[string]Digests `json:"products"`
}

// LinkSignature is one signature of a metablock: a hex key id and a hex
// Ed25519 signature.
type LinkSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// Attestation is a parsed, not yet verified, in-toto link metablock.
type Attestation struct {
	Signatures []LinkSignature
	Link       Link
	// message is the byte string the signatures sign: the canonical JSON of
	// "signed" with in-toto-rs's `\n` replacement.
	message []byte
}

// ParseAttestation parses an in-toto link metablock as rebuilderd serves it
// at /api/v1/builds/{id}/artifacts/{aid}/attestation. It checks the shape
// (at most MaxAttestationSize bytes, bounded counts, strings, integers only)
// and computes the signed message; it checks no signature (see Verify).
func ParseAttestation(b []byte) (*Attestation, error) {
	if len(b) > MaxAttestationSize {
		return nil, &AttestationError{Check: CheckFormat, Err: fmt.Errorf("%d bytes, limit %d", len(b), MaxAttestationSize)}
	}
	var outer struct {
		Signatures []LinkSignature  `json:"signatures"`
		Signed     *json.RawMessage `json:"signed"`
	}
	if err := json.Unmarshal(b, &outer); err != nil {
		return nil, &AttestationError{Check: CheckFormat, Err: jsonError(b, err)}
	}
	if outer.Signed == nil {
		return nil, &AttestationError{Check: CheckFormat, Err: errors.New(`no "signed" object`)}
	}
	if len(outer.Signatures) == 0 || len(outer.Signatures) > maxSignatures {
		return nil, &AttestationError{Check: CheckFormat, Err: fmt.Errorf("%d signatures, want 1..%d", len(outer.Signatures), maxSignatures)}
	}
	msg, err := CanonicalJSON(*outer.Signed)
	if err != nil {
		return nil, &AttestationError{Check: CheckFormat, Err: err}
	}
	var link Link
	if err := json.Unmarshal(*outer.Signed, &link); err != nil {
		return nil, &AttestationError{Check: CheckFormat, Err: fmt.Errorf("signed: %w", err)}
	}
	if len(link.Materials)+len(link.Products) > maxArtifacts {
		return nil, &AttestationError{Check: CheckFormat, Err: fmt.Errorf("%d materials and products, limit %d", len(link.Materials)+len(link.Products), maxArtifacts)}
	}
	// in-toto-rs (Metablock::new and ::verify) signs the canonical form with
	// every escaped `\n` turned back into a newline.
	msg = bytes.ReplaceAll(msg, []byte(`\n`), []byte("\n"))
	return &Attestation{Signatures: outer.Signatures, Link: link, message: msg}, nil
}

// Verify checks that the attestation vouches for the package file filename
// with the given sha256, under the pinned key pub:
//   - signed._type is "link";
//   - a signature whose keyid is KeyID(pub) exists and verifies over the
//     canonical JSON of "signed" (signatures by other keys are ignored);
//   - products[filename].sha256 equals sha256Hex (case-insensitive hex).
//
// It returns an *AttestationError naming the first check that failed. The
// caller must still make sure that filename and sha256Hex are the package's
// own (the engine hashes the file).
func (a *Attestation) Verify(pub ed25519.PublicKey, filename, sha256Hex string) error {
	if a.Link.Type != "link" {
		return &AttestationError{Check: CheckType, Expected: "link", Got: a.Link.Type}
	}
	id := KeyID(pub)
	var sig *LinkSignature
	ids := make([]string, 0, len(a.Signatures))
	for i := range a.Signatures {
		ids = append(ids, a.Signatures[i].KeyID)
		if strings.EqualFold(a.Signatures[i].KeyID, id) && sig == nil {
			sig = &a.Signatures[i]
		}
	}
	if sig == nil {
		return &AttestationError{Check: CheckKeyID, Expected: id, Got: strings.Join(ids, ",")}
	}
	raw, err := hex.DecodeString(sig.Sig)
	if err != nil || len(raw) != ed25519.SignatureSize || !ed25519.Verify(pub, a.message, raw) {
		return &AttestationError{Check: CheckSignature, Expected: id, Got: sig.Sig}
	}
	p, ok := a.Link.Products[filename]
	if !ok {
		names := make([]string, 0, len(a.Link.Products))
		for n := range a.Link.Products {
			names = append(names, n)
		}
		sort.Strings(names)
		return &AttestationError{Check: CheckProductFilename, Expected: filename, Got: strings.Join(names, ",")}
	}
	if sha256Hex == "" || !strings.EqualFold(p.SHA256, sha256Hex) {
		return &AttestationError{Check: CheckProductSHA256, Expected: strings.ToLower(sha256Hex), Got: p.SHA256}
	}
	return nil
}

// CanonicalJSON re-encodes a JSON value the way in-toto-rs canonicalizes it
// before signing: object keys sorted bytewise, no whitespace, integers only
// (a fraction or exponent is an error, as in in-toto-rs), strings escaped
// like serde_json (only `"`, `\` and control characters; `\b \f \n \r \t`
// short forms, other controls as lowercase `\u00xx`; everything else raw
// UTF-8). Duplicate object keys and invalid UTF-8 are errors. It does not
// apply in-toto-rs's `\n` replacement (ParseAttestation does).
func CanonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	if err := canonValue(dec, &out, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("canonical json: trailing data")
	}
	return out.Bytes(), nil
}

func canonValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("canonical json: nested deeper than %d", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("canonical json: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := canonValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("canonical json: %w", err)
			}
			out.WriteByte(']')
			return nil
		case '{':
			members := map[string][]byte{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return fmt.Errorf("canonical json: %w", err)
				}
				k := kt.(string) // the decoder guarantees a string key here
				if !utf8.ValidString(k) {
					return errors.New("canonical json: invalid UTF-8 in a key")
				}
				if _, dup := members[k]; dup {
					return fmt.Errorf("canonical json: duplicate key %q", k)
				}
				var v bytes.Buffer
				if err := canonValue(dec, &v, depth+1); err != nil {
					return err
				}
				members[k] = v.Bytes()
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("canonical json: %w", err)
			}
			keys := make([]string, 0, len(members))
			for k := range members {
				keys = append(keys, k)
			}
			sort.Strings(keys) // bytewise, like Rust's BTreeMap<String, _>
			out.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					out.WriteByte(',')
				}
				writeSerdeString(out, k)
				out.WriteByte(':')
				out.Write(members[k])
			}
			out.WriteByte('}')
			return nil
		}
		return fmt.Errorf("canonical json: unexpected %v", t)
	case string:
		if !utf8.ValidString(t) {
			return errors.New("canonical json: invalid UTF-8 in a string")
		}
		writeSerdeString(out, t)
	case json.Number:
		s := string(t)
		if strings.ContainsAny(s, ".eE") {
			return fmt.Errorf("canonical json: non-integer number %s", s)
		}
		// Written back as serde_json's i64/u64 print them ("-0" is 0).
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			out.WriteString(strconv.FormatInt(n, 10))
		} else if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			out.WriteString(strconv.FormatUint(u, 10))
		} else {
			return fmt.Errorf("canonical json: number %s out of range", s)
		}
	case bool:
		if t {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case nil:
		out.WriteString("null")
	}
	return nil
}

// writeSerdeString writes s as serde_json escapes it.
func writeSerdeString(out *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	out.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			out.WriteString(`\"`)
		case c == '\\':
			out.WriteString(`\\`)
		case c == '\b':
			out.WriteString(`\b`)
		case c == '\f':
			out.WriteString(`\f`)
		case c == '\n':
			out.WriteString(`\n`)
		case c == '\r':
			out.WriteString(`\r`)
		case c == '\t':
			out.WriteString(`\t`)
		case c < 0x20:
			out.WriteString(`\u00`)
			out.WriteByte(hexDigits[c>>4])
			out.WriteByte(hexDigits[c&0xf])
		default:
			out.WriteByte(c)
		}
	}
	out.WriteByte('"')
}
