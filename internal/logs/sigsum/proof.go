package sigsum

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"slices"

	"sigsum.org/sigsum-go/pkg/ascii"
	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/policy"
	"sigsum.org/sigsum-go/pkg/proof"
	"sigsum.org/sigsum-go/pkg/types"

	"github.com/bintrans/bintrans/internal/witness"
)

// MaxProofSize bounds a proof file (a tree head with a cosignature per
// witness, and at most 64 inclusion hashes).
const MaxProofSize = 64 << 10

// Result is a proof that verified.
type Result struct {
	LogKeyHash [32]byte     // SHA-256 of the log's Ed25519 key
	Log        *witness.Log // the policy's entry for it
	TreeSize   uint64
	RootHash   [32]byte
	LeafIndex  uint64
	KeyHash    [32]byte // SHA-256 of the transparency key that signed the leaf
	Signature  [64]byte // the leaf signature
	// Cosignatures are the witnesses' valid cosignatures of the tree head
	// (fresh ones, with a MaxAge), policy order.
	Cosignatures []witness.Cosigned
	// LeafHash is the RFC 6962 hash of the leaf.
	LeafHash [32]byte
	// Checkpoint is the tree head as a C2SP signed note: the checkpoint
	// body with origin SigsumOrigin(log key), the log's signature line and
	// a cosignature/v1 line per counted witness cosignature (at most
	// maxNoteCosignatures). Any C2SP verifier accepts it; it is the
	// evidence a client keeps and compares.
	Checkpoint []byte
}

// ProofError is a proof that does not prove the package logged: malformed,
// from a log the policy does not name, signed by another key or over
// another package, a bad log signature, an inclusion proof that does not
// verify. Err, when set, is the underlying error (a *witness.QuorumError
// when the cosignatures fall short).
type ProofError struct {
	Reason string
	Err    error
}

func (e *ProofError) Error() string {
	if e.Err != nil {
		return "sigsum proof: " + e.Reason + ": " + e.Err.Error()
	}
	return "sigsum proof: " + e.Reason
}

func (e *ProofError) Unwrap() error { return e.Err }

// ErrOtherPackage is wrapped by a ProofError whose leaf signature does not
// verify for the package (a proof of another package, or a forged one).
var ErrOtherPackage = errors.New("the leaf is not a signature of this package by the transparency key")

// Verifier checks proof files offline. Build it once (NewVerifier) for
// many packages; it is safe for concurrent use.
type Verifier struct {
	policy *witness.Policy
	keys   map[scrypto.Hash]scrypto.PublicKey
	sp     *policy.Policy
	opts   witness.Options
}

// NewVerifier returns a verifier for proofs of leaves signed by one of
// keys (the transparency keys), under pol (the Sigsum logs and the witness
// quorum), with opts' cosignature age limit.
func NewVerifier(pol *witness.Policy, keys []ed25519.PublicKey, opts witness.Options) (*Verifier, error) {
	if pol == nil || len(keys) == 0 {
		return nil, errors.New("sigsum: a verifier needs a policy and at least one key")
	}
	sp, err := pol.SigsumPolicy()
	if err != nil {
		return nil, err
	}
	v := &Verifier{policy: pol, keys: map[scrypto.Hash]scrypto.PublicKey{}, sp: sp, opts: opts}
	for _, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("sigsum: not an Ed25519 public key")
		}
		var pub scrypto.PublicKey
		copy(pub[:], k)
		v.keys[scrypto.HashBytes(k)] = pub
	}
	return v, nil
}

// Verify checks that proofFile proves a leaf for the package with SHA-256
// pkgSHA256, signed by one of the verifier's keys, included in a tree head
// signed by a policy log and cosigned by the policy's quorum (each witness
// once, within MaxAge). It needs no network. sigsum-go's own proof.Verify
// must agree. Errors: *ProofError (errors.As a *witness.QuorumError for the
// cosignatures).
func (v *Verifier) Verify(proofFile []byte, pkgSHA256 [32]byte) (*Result, error) {
	pr, err := parseProof(proofFile)
	if err != nil {
		return nil, err
	}
	l := v.policy.LogByKeyHash(pr.LogKeyHash)
	if l == nil || l.Ed25519() == nil {
		return nil, &ProofError{Reason: fmt.Sprintf("log %x is not a Sigsum log of the policy", pr.LogKeyHash[:])}
	}
	var logPub scrypto.PublicKey
	copy(logPub[:], l.Ed25519())
	key, ok := v.keys[pr.Leaf.KeyHash]
	if !ok {
		return nil, &ProofError{Reason: fmt.Sprintf("leaf signed by key %x, not a transparency key", pr.Leaf.KeyHash[:]), Err: ErrOtherPackage}
	}
	checksum := scrypto.Hash(Checksum(pkgSHA256))
	leaf := pr.Leaf.ToLeaf(&checksum)
	if !leaf.Verify(&key) {
		return nil, &ProofError{Reason: "leaf signature", Err: ErrOtherPackage}
	}
	if !pr.TreeHead.Verify(&logPub) {
		return nil, &ProofError{Reason: fmt.Sprintf("tree head of size %d: invalid log signature", pr.TreeHead.Size)}
	}
	cosigned, err := checkQuorum(v.policy, logPub, pr.TreeHead.TreeHead, pr.TreeHead.Cosignatures, v.opts)
	if err != nil {
		return nil, &ProofError{Reason: fmt.Sprintf("tree head of size %d", pr.TreeHead.Size), Err: err}
	}
	leafHash := leaf.ToHash()
	if err := pr.Inclusion.Verify(&leafHash, &pr.TreeHead.TreeHead); err != nil {
		return nil, &ProofError{Reason: "inclusion proof", Err: err}
	}
	// Belt and braces: the library's verification (leaf, log signature,
	// quorum by key hash, inclusion) must agree with ours.
	if err := pr.Verify((*scrypto.Hash)(&pkgSHA256), v.keys, v.sp); err != nil {
		return nil, &ProofError{Reason: "sigsum-go refuses a proof bintrans accepted", Err: err}
	}
	return &Result{
		LogKeyHash: pr.LogKeyHash, Log: l, TreeSize: pr.TreeHead.Size, RootHash: pr.TreeHead.RootHash,
		LeafIndex: pr.Inclusion.LeafIndex, KeyHash: pr.Leaf.KeyHash, Signature: pr.Leaf.Signature,
		Cosignatures: cosigned, LeafHash: leafHash,
		Checkpoint: checkpointNote(v.policy, l.Ed25519(), &pr.TreeHead, cosigned),
	}, nil
}

// VerifyProof is NewVerifier(pol, keys, opts).Verify(proofFile, pkgSHA256).
func VerifyProof(proofFile []byte, pkgSHA256 [32]byte, keys []ed25519.PublicKey, pol *witness.Policy, opts witness.Options) (*Result, error) {
	v, err := NewVerifier(pol, keys, opts)
	if err != nil {
		return nil, err
	}
	return v.Verify(proofFile, pkgSHA256)
}

// parseProof reads a proof file (at most MaxProofSize bytes) with
// sigsum-go's parser, which refuses trailing data. It accepts what
// sigsum-verify accepts (cosignature lines in any order, version 1 too).
func parseProof(b []byte) (*proof.SigsumProof, error) {
	if len(b) > MaxProofSize {
		return nil, &ProofError{Reason: fmt.Sprintf("larger than %d bytes", MaxProofSize)}
	}
	var pr proof.SigsumProof
	if err := pr.FromASCII(bytes.NewReader(b)); err != nil {
		return nil, &ProofError{Reason: "malformed", Err: err}
	}
	if pr.TreeHead.Size > 1 && pr.Inclusion.LeafIndex >= pr.TreeHead.Size {
		return nil, &ProofError{Reason: fmt.Sprintf("leaf index %d beyond tree size %d", pr.Inclusion.LeafIndex, pr.TreeHead.Size)}
	}
	return &pr, nil
}

// ParseProof reads the parts of a proof file a caller may index by,
// without verifying anything.
func ParseProof(b []byte) (logKeyHash [32]byte, treeSize, leafIndex uint64, err error) {
	pr, err := parseProof(b)
	if err != nil {
		return [32]byte{}, 0, 0, err
	}
	return pr.LogKeyHash, pr.TreeHead.Size, pr.Inclusion.LeafIndex, nil
}

// marshal writes a proof file as sigsum-go's ToASCII does, but with the
// cosignature lines sorted by witness key hash (sigsum-go writes them in
// map order), so the same proof is always the same bytes.
func marshal(pr *proof.SigsumProof) ([]byte, error) {
	var b bytes.Buffer
	if err := ascii.WriteInt(&b, "version", proof.SigsumProofVersion); err != nil {
		return nil, err
	}
	if err := ascii.WriteHash(&b, "log", &pr.LogKeyHash); err != nil {
		return nil, err
	}
	if err := pr.Leaf.ToASCII(&b); err != nil {
		return nil, err
	}
	b.WriteString("\n")
	if err := pr.TreeHead.SignedTreeHead.ToASCII(&b); err != nil {
		return nil, err
	}
	keys := slices.SortedFunc(maps.Keys(pr.TreeHead.Cosignatures), func(a, c scrypto.Hash) int { return bytes.Compare(a[:], c[:]) })
	for _, k := range keys {
		cs := pr.TreeHead.Cosignatures[k]
		if err := cs.ToASCII(&b, &k); err != nil {
			return nil, err
		}
	}
	if pr.TreeHead.Size > 1 {
		b.WriteString("\n")
		if err := pr.Inclusion.ToASCII(&b); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// checkQuorum counts a Sigsum tree head's cosignatures against the policy.
// The witnesses signed the checkpoint body with the log's Sigsum origin.
func checkQuorum(p *witness.Policy, logPub scrypto.PublicKey, th types.TreeHead, cs map[scrypto.Hash]types.Cosignature, opts witness.Options) ([]witness.Cosigned, error) {
	list := make([]witness.Cosignature, 0, len(cs))
	for kh, c := range cs {
		list = append(list, witness.Cosignature{KeyHash: kh, Time: c.Timestamp, Signature: c.Signature})
	}
	body := th.FormatCheckpoint(types.SigsumCheckpointOrigin(&logPub))
	return p.CheckQuorum([]byte(body), list, opts)
}
