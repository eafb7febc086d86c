package sigsum

// The engine's interface (verify.LogVerifier) for Sigsum: proofs verified
// offline against a policy. Sigsum's logs serve no search by key, so there
// is no EntryFinder; an online client (get-tree-head with its
// cosignatures, get-consistency-proof) is for a later kind of client.

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// KindName names Sigsum logs (--log-kind).
const KindName = "sigsum"

// KindVerifier is a Sigsum policy as the engine sees it: proofs are
// verified against the policy's logs and its witness quorum, which is part
// of every Sigsum proof (the engine's Policy.Witnesses is not needed, and
// the checkpoints it returns carry the counted cosignatures as note lines).
// It is safe for concurrent use.
type KindVerifier struct {
	policy *witness.Policy
	opts   witness.Options

	mu    sync.Mutex
	byKey map[string]*Verifier // by the transparency keys (base64 lines)
}

// NewKindVerifier returns the engine's verifier for proofs under pol, with
// opts' cosignature age limit.
func NewKindVerifier(pol *witness.Policy, opts witness.Options) (*KindVerifier, error) {
	if pol == nil {
		return nil, fmt.Errorf("sigsum: no policy")
	}
	if _, err := pol.SigsumPolicy(); err != nil {
		return nil, err
	}
	return &KindVerifier{policy: pol, opts: opts, byKey: map[string]*Verifier{}}, nil
}

// Kind is "sigsum".
func (k *KindVerifier) Kind() string { return KindName }

// VerifyCheckpoint verifies a checkpoint note signed by one of the policy's
// logs under its Sigsum origin (as Result.Checkpoint writes them; the
// cosignature lines are not its business). Errors are
// *verify.CheckpointError.
func (k *KindVerifier) VerifyCheckpoint(note []byte) (*verify.Checkpoint, error) {
	c, err := verify.ParseCheckpoint(note)
	if err != nil {
		return nil, err
	}
	for i := range k.policy.Logs {
		pub := k.policy.Logs[i].Ed25519()
		origin := witness.SigsumOrigin(pub)
		if pub == nil || c.Origin != origin {
			continue
		}
		if c.SignedBy(noteHint(origin, noteAlgEd25519, pub), func(body, sig []byte) bool { return ed25519.Verify(pub, body, sig) }) {
			return c, nil
		}
		return nil, &verify.CheckpointError{Reason: "no valid signature by the policy's log " + origin, Origin: c.Origin, Size: c.Size}
	}
	return nil, &verify.CheckpointError{Reason: "not the checkpoint of a Sigsum log of the policy", Origin: c.Origin, Size: c.Size}
}

// VerifyBundle verifies a Sigsum proof (Verifier.Verify) for a `.t` that
// already verified: the leaf must be signed by the key that made the `.t`
// over the package's SHA-256 (msg is its hex). Errors are *ProofError.
func (k *KindVerifier) VerifyBundle(proof []byte, sig *verify.Signature, keys []verify.PublicKey, msg []byte) (*verify.Proof, error) {
	var sum [32]byte
	if len(msg) != 64 || strings.ToLower(string(msg)) != string(msg) {
		return nil, &ProofError{Reason: fmt.Sprintf("message %q is not a package's hex SHA-256", msg)}
	}
	if _, err := hex.Decode(sum[:], msg); err != nil {
		return nil, &ProofError{Reason: "message is not hex", Err: err}
	}
	v, err := k.verifier(sig, keys)
	if err != nil {
		return nil, err
	}
	res, err := v.Verify(proof, sum)
	if err != nil {
		return nil, err
	}
	cp, err := verify.ParseCheckpoint(res.Checkpoint)
	if err != nil {
		return nil, &ProofError{Reason: "the verified tree head does not make a checkpoint note", Err: err}
	}
	return &verify.Proof{Checkpoint: cp, Index: int64(res.LeafIndex), LeafHash: res.LeafHash,
		Entry: verify.EntryID{UUID: hex.EncodeToString(res.LeafHash[:]), LogIndex: int64(res.LeafIndex), LogID: hex.EncodeToString(res.LogKeyHash[:])}}, nil
}

// verifier is the proof Verifier for the keys with the `.t`'s key id.
func (k *KindVerifier) verifier(sig *verify.Signature, keys []verify.PublicKey) (*Verifier, error) {
	var eds []ed25519.PublicKey
	var id strings.Builder
	for _, pk := range keys {
		if pk.KeyID() == sig.KeyID() {
			eds = append(eds, pk.Ed25519())
			id.WriteString(pk.Base64())
		}
	}
	if len(eds) == 0 {
		return nil, &ProofError{Reason: "no transparency key with the signature's key id " + sig.KeyID(), Err: ErrOtherPackage}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if v, ok := k.byKey[id.String()]; ok {
		return v, nil
	}
	v, err := NewVerifier(k.policy, eds, k.opts)
	if err != nil {
		return nil, err
	}
	k.byKey[id.String()] = v
	return v, nil
}

var _ verify.LogVerifier = (*KindVerifier)(nil)
