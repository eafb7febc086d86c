package rekorv2

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Bounds on the inputs of the log identity and its checkpoints.
const (
	// MaxLogKeySize bounds ParseLogKey's input (a PEM block or a vkey line).
	MaxLogKeySize = 16 << 10
	// MaxCheckpointSize bounds a signed checkpoint (the note text plus its
	// signature lines; witness cosignatures included).
	MaxCheckpointSize = 16 << 10
)

// LogVerifier is the pinned identity of a Rekor v2 log: its checkpoint
// origin and its Ed25519 key. Checkpoints are C2SP signed notes whose key
// name is the origin.
type LogVerifier struct {
	origin  string
	pub     ed25519.PublicKey
	vkey    string
	keyID   [32]byte
	noteVer note.Verifier

	// verified remembers checkpoints already verified (by their exact
	// bytes): a run's bundles and a burst of adds share a few.
	mu       sync.Mutex
	verified map[string]Checkpoint
}

// maxVerifiedCheckpoints bounds LogVerifier's memo of verified checkpoints.
const maxVerifiedCheckpoints = 256

// ParseLogKey returns the verifier of the log whose Ed25519 key is
// keyData, either a PEM "PUBLIC KEY" block (PKIX) or a signed-note
// verifier key ("<origin>+<key hash>+<base64 0x01‖key>", as printed by
// `posix` and x/mod/sumdb/note). origin pins the checkpoint origin: with a
// PEM key it is required; with a vkey it may be empty (the vkey's name is
// the origin) and otherwise must equal the vkey's name. Errors are
// *LogKeyError.
func ParseLogKey(keyData []byte, origin string) (*LogVerifier, error) {
	if len(keyData) > MaxLogKeySize {
		return nil, &LogKeyError{Reason: fmt.Sprintf("%d bytes, at most %d accepted", len(keyData), MaxLogKeySize)}
	}
	trimmed := bytes.TrimSpace(keyData)
	if len(trimmed) == 0 {
		return nil, &LogKeyError{Reason: "empty"}
	}
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return parsePEMLogKey(trimmed, origin)
	}
	return parseVKey(string(trimmed), origin)
}

func parsePEMLogKey(pemBytes []byte, origin string) (*LogVerifier, error) {
	blk, rest := pem.Decode(pemBytes)
	if blk == nil {
		return nil, &LogKeyError{Reason: "not a PEM block"}
	}
	if blk.Type != "PUBLIC KEY" {
		return nil, &LogKeyError{Reason: fmt.Sprintf("PEM block %q, want \"PUBLIC KEY\"", blk.Type)}
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, &LogKeyError{Reason: "data after the PEM block"}
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, &LogKeyError{Reason: "not a PKIX public key", Err: err}
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, &LogKeyError{Reason: fmt.Sprintf("%T: only Ed25519 Rekor v2 log keys are supported", k)}
	}
	if origin == "" {
		return nil, &LogKeyError{Reason: "a PEM log key needs the checkpoint origin (--log-origin)"}
	}
	return NewLogVerifier(origin, pub)
}

func parseVKey(vkey, origin string) (*LogVerifier, error) {
	if strings.ContainsAny(vkey, "\r\n") {
		return nil, &LogKeyError{Reason: "neither a PEM block nor a one-line note verifier key"}
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, &LogKeyError{Reason: "not a note verifier key (name+hash+key) with an Ed25519 key", Err: err}
	}
	if origin != "" && v.Name() != origin {
		return nil, &LogKeyError{Reason: fmt.Sprintf("the verifier key names origin %q but the pinned origin is %q", v.Name(), origin)}
	}
	// name+hash+base64(0x01‖key): the key is what follows the second '+'
	// (the base64 may itself contain '+').
	parts := strings.SplitN(vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x01 {
		return nil, &LogKeyError{Reason: "verifier key is not an Ed25519 key"}
	}
	return NewLogVerifier(v.Name(), ed25519.PublicKey(raw[1:]))
}

// NewLogVerifier returns the verifier of the log with this origin and key.
func NewLogVerifier(origin string, pub ed25519.PublicKey) (*LogVerifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, &LogKeyError{Reason: fmt.Sprintf("Ed25519 key of %d bytes", len(pub))}
	}
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return nil, &LogKeyError{Reason: fmt.Sprintf("origin %q cannot name a note key", origin), Err: err}
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, &LogKeyError{Reason: fmt.Sprintf("origin %q cannot name a note key (no spaces or '+')", origin), Err: err}
	}
	lv := &LogVerifier{origin: origin, pub: bytes.Clone(pub), vkey: vkey, noteVer: v}
	// The full key hash (the entries' logId.keyId): SHA-256(name‖"\n"‖0x01‖key).
	h := sha256.New()
	h.Write([]byte(origin + "\n"))
	h.Write([]byte{0x01})
	h.Write(pub)
	copy(lv.keyID[:], h.Sum(nil))
	return lv, nil
}

// Origin is the pinned checkpoint origin.
func (v *LogVerifier) Origin() string { return v.origin }

// PublicKey is the log's Ed25519 key.
func (v *LogVerifier) PublicKey() ed25519.PublicKey { return bytes.Clone(v.pub) }

// VerifierKey is the log identity as a signed-note verifier key.
func (v *LogVerifier) VerifierKey() string { return v.vkey }

// KeyID is the log's 32-byte key id (the logId.keyId of its entries); its
// first 4 bytes are the key hash of its checkpoint signatures.
func (v *LogVerifier) KeyID() [32]byte { return v.keyID }

// Checkpoint is a verified checkpoint: signed by the pinned key, with the
// pinned origin.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   [32]byte
	// Raw is the signed note exactly as served (text and signature lines).
	Raw []byte
}

// String is "<origin> size <n> root <hex>", for messages.
func (c *Checkpoint) String() string {
	if c == nil {
		return "<no checkpoint>"
	}
	return fmt.Sprintf("%s size %d root %s", c.Origin, c.Size, hex.EncodeToString(c.Root[:]))
}

// VerifyCheckpoint parses a signed checkpoint (C2SP tlog-checkpoint) and
// checks its log signature and origin. Signatures by other keys (witness
// cosignatures) are allowed and not checked; extension lines are allowed
// and ignored (Rekor v2 writes none). Errors are *CheckpointError.
func (v *LogVerifier) VerifyCheckpoint(raw []byte) (*Checkpoint, error) {
	v.mu.Lock()
	c, ok := v.verified[string(raw)]
	v.mu.Unlock()
	if ok {
		c.Raw = bytes.Clone(raw)
		return &c, nil
	}
	cp, err := v.verifyCheckpoint(raw)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.verified == nil || len(v.verified) >= maxVerifiedCheckpoints {
		v.verified = map[string]Checkpoint{}
	}
	v.verified[string(raw)] = *cp
	v.mu.Unlock()
	return cp, nil
}

func (v *LogVerifier) verifyCheckpoint(raw []byte) (*Checkpoint, error) {
	if len(raw) == 0 || len(raw) > MaxCheckpointSize {
		return nil, &CheckpointError{Reason: fmt.Sprintf("%d bytes, want 1..%d", len(raw), MaxCheckpointSize)}
	}
	fail := func(reason string, err error) (*Checkpoint, error) {
		return nil, &CheckpointError{Reason: reason, Err: err, Head: headOf(raw)}
	}
	n, err := note.Open(raw, note.VerifierList(v.noteVer))
	if err != nil {
		var une *note.UnverifiedNoteError
		var ise *note.InvalidSignatureError
		switch {
		case errors.As(err, &une):
			var names []string
			for _, s := range une.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return fail(fmt.Sprintf("not signed by the pinned log key %s+%08x (signed by: %s)",
				v.origin, v.noteVer.KeyHash(), sanitize(strings.Join(names, ", "), 300)), nil)
		case errors.As(err, &ise):
			return fail("the log signature does not verify", err)
		}
		return fail("not a signed note", err)
	}
	var cp flog.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return fail("malformed checkpoint text", err)
	}
	if cp.Origin != v.origin {
		return fail(fmt.Sprintf("origin %q is not the pinned origin %q", sanitize(cp.Origin, 100), v.origin), nil)
	}
	if len(cp.Hash) != sha256.Size {
		return fail(fmt.Sprintf("root hash of %d bytes", len(cp.Hash)), nil)
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: [32]byte(cp.Hash), Raw: bytes.Clone(raw)}, nil
}

// headOf returns the first three lines of a checkpoint (origin, size,
// root), sanitized, as evidence.
func headOf(raw []byte) string {
	lines := strings.SplitN(string(raw), "\n", 4)
	if len(lines) > 3 {
		lines = lines[:3]
	}
	return sanitize(strings.Join(lines, " "), 200)
}
