package verify

import (
	"context"
	"errors"
	"io"
	"time"
)

// Size limits shared by every reader of untrusted bytes.
const (
	// MaxSignatureSize is the largest `.t` file accepted (the seed's limit).
	MaxSignatureSize = 1024
	// MaxBundleSize is the largest proof bundle accepted. A real bundle is
	// about 3 KiB; 64 KiB leaves room for deep trees and long checkpoints.
	MaxBundleSize = 64 << 10
	// MaxProofHashes bounds an inclusion or consistency proof (a tree of 2^64
	// leaves needs at most 64 hashes per proof).
	MaxProofHashes = 128
	// MaxCheckpointSize bounds a signed checkpoint note.
	MaxCheckpointSize = 8 << 10
)

// ErrNotFound is returned (wrapped) by a SignatureSource or a log client
// when the thing asked for does not exist. Any other error means "could not find out".
var ErrNotFound = errors.New("not found")

// ErrTooLarge is returned (wrapped) by a SignatureSource when the file is
// larger than its limit (MaxSignatureSize, MaxBundleSize). Such a file is
// malformed, not unavailable: the engine reports it so.
var ErrTooLarge = errors.New("larger than its size limit")

// Artifact is one package to verify.
type Artifact struct {
	// Filename is the package file name (`foo-1.0-1-x86_64.pkg.tar.zst`). It
	// is the trusted comment of the `.t` and the key of the signature source.
	Filename string
	// Repo and Arch name the repository the package came from, when known
	// (reports, per-repository transparency URLs).
	Repo string
	Arch string
	// Name and Version (`[epoch:]pkgver-pkgrel`) identify the package for
	// rebuilders. Empty when unknown.
	Name    string
	Version string
	// SHA256 is the lowercase hex sha256 the repository database claims
	// (%SHA256SUM%). When Open is nil it is the message that is verified;
	// when Open is set, the file's hash must also equal it (if non-empty).
	SHA256 string
	// Open opens the package file for hashing. Nil means "do not hash, trust
	// SHA256" (scan without --download).
	Open func() (io.ReadCloser, error)
}

// Status is the verdict for one package. The string values are part of the
// JSON report schema: never rename one.
type Status string

// Every status a package can end in.
const (
	StatusOK                 Status = "ok"
	StatusMissingSignature   Status = "missing-signature"
	StatusMalformedSignature Status = "malformed-signature"
	StatusBadSignature       Status = "bad-signature"
	StatusWrongKey           Status = "wrong-key"
	StatusCommentMismatch    Status = "trusted-comment-mismatch"
	StatusMissingBundle      Status = "missing-bundle"
	StatusBundleInvalid      Status = "bundle-invalid"
	StatusNotInLog           Status = "not-in-log"
	StatusLogInconsistent    Status = "log-inconsistent"
	StatusHashMismatch       Status = "hash-mismatch"
	StatusRebuildUnconfirmed Status = "rebuild-unconfirmed"
	StatusNotInRepository    Status = "not-in-repository"
	StatusUnavailable        Status = "unavailable" // could not be checked (I/O, unreachable log)
)

// Result is the verdict for one Artifact, with the evidence behind it.
type Result struct {
	Artifact Artifact
	Status   Status
	// Err explains a non-ok Status. It is one of the typed errors of this
	// package (errors.As works) and carries the evidence.
	Err error
	// SHA256 is the hash that was verified (computed or taken from the db).
	SHA256 string
	// KeyID is the minisign key id of the signature, as minisign prints it
	// (16 upper-case hex digits), when the `.t` could be parsed.
	KeyID string
	// Entry identifies the log entry proving inclusion, when one was
	// verified (the proofs themselves are not kept: a scan holds every
	// Result at once).
	Entry *EntryID
	// Rebuild is the rebuilder verdict, when a rebuilder policy is set.
	Rebuild *RebuildVerdict
	// Duration is the wall time spent on this package.
	Duration time.Duration
}

// OK reports whether the package passed every check of the policy.
func (r Result) OK() bool { return r.Status == StatusOK }

// SignatureSource finds the `.t` file and the proof bundle of a package.
// Implementations bound what they read (MaxSignatureSize, MaxBundleSize) and
// return an error wrapping ErrNotFound when the file does not exist.
type SignatureSource interface {
	Signature(ctx context.Context, a Artifact) ([]byte, error)
	Bundle(ctx context.Context, a Artifact) ([]byte, error)
}

// CheckpointStore persists the last checkpoint verified against this client.
// Load returns (nil, nil) when there is none yet. Store must be atomic and is
// called only with a checkpoint that verified and is consistent with the
// stored one.
type CheckpointStore interface {
	Load(ctx context.Context) ([]byte, error)
	Store(ctx context.Context, checkpoint []byte) error
}

// Rebuilders answers, for a whole batch, which independent rebuilders
// reproduced each package. Implementations query each rebuilder once per
// batch (bounded, timed out) and never fail the batch: an unreachable
// rebuilder is recorded in the verdicts and counts as zero confirmations.
type Rebuilders interface {
	Verdicts(ctx context.Context, arts []Artifact, sha256s []string) []RebuildVerdict
}

// RebuildVerdict says what each rebuilder answered about one package.
type RebuildVerdict struct {
	Confirmed   []string `json:"confirmed"`   // rebuilders that reproduced it (GOOD, attestation ok if pinned)
	Bad         []string `json:"bad"`         // rebuilders that said BAD
	Unknown     []string `json:"unknown"`     // rebuilders that have no verdict for this exact package
	Unreachable []string `json:"unreachable"` // rebuilders that could not be asked (error, timeout)
	// Reasons holds a short reason per rebuilder URL when it did not confirm.
	Reasons map[string]string `json:"reasons,omitempty"`
}
