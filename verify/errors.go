package verify

import (
	"fmt"
	"strings"
)

// SignatureErrorKind says which check of a `.t` failed.
type SignatureErrorKind int

// The ways a `.t` can fail. Each maps to one Status (see Status()).
const (
	// SigMalformed: not a minisign signature file this project accepts
	// (size, line count, base64, algorithm).
	SigMalformed SignatureErrorKind = iota + 1
	// SigUnknownKey: the signature's key id is not one of the policy keys.
	SigUnknownKey
	// SigBadSignature: the Ed25519 signature over the message does not verify.
	SigBadSignature
	// SigBadGlobalSignature: the signature over the trusted comment does not
	// verify (the trusted comment was edited, or the line was swapped).
	SigBadGlobalSignature
	// SigCommentMismatch: correctly signed, but the trusted comment is not
	// the package file name.
	SigCommentMismatch
)

func (k SignatureErrorKind) String() string {
	switch k {
	case SigMalformed:
		return "malformed signature"
	case SigUnknownKey:
		return "signed by a key that is not in the policy"
	case SigBadSignature:
		return "signature does not verify"
	case SigBadGlobalSignature:
		return "global signature (over the trusted comment) does not verify"
	case SigCommentMismatch:
		return "trusted comment is not the package file name"
	}
	return fmt.Sprintf("signature error %d", int(k))
}

// SignatureError is a `.t` that failed verification, with the evidence.
type SignatureError struct {
	Kind SignatureErrorKind
	// KeyID is the key id of the signature (minisign display form), when
	// the signature could be parsed.
	KeyID string
	// Expected and Got are the evidence for the kind: the policy key ids vs
	// the signature's key id (SigUnknownKey), the file name vs the trusted
	// comment (SigCommentMismatch), the message (SigBadSignature).
	Expected, Got string
	// Err is the underlying parse error (SigMalformed).
	Err error
}

func (e *SignatureError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	switch e.Kind {
	case SigUnknownKey:
		fmt.Fprintf(&b, ": key id %s, policy keys %s", e.Got, e.Expected)
	case SigCommentMismatch:
		fmt.Fprintf(&b, ": trusted comment %q, expected %q", e.Got, e.Expected)
	case SigBadSignature, SigBadGlobalSignature:
		if e.KeyID != "" {
			fmt.Fprintf(&b, " (key id %s)", e.KeyID)
		}
		if e.Got != "" {
			fmt.Fprintf(&b, " for message %s", e.Got)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *SignatureError) Unwrap() error { return e.Err }

// Status maps the error to the package verdict.
func (e *SignatureError) Status() Status {
	switch e.Kind {
	case SigUnknownKey:
		return StatusWrongKey
	case SigBadSignature, SigBadGlobalSignature:
		return StatusBadSignature
	case SigCommentMismatch:
		return StatusCommentMismatch
	}
	return StatusMalformedSignature
}

// InvalidProofError is a proof bundle that the log kind's verifier
// refused (LogVerifier.VerifyBundle): Err is the kind's own error, with the
// evidence, and the message is Err's alone.
type InvalidProofError struct {
	Err error
}

func (e *InvalidProofError) Error() string { return e.Err.Error() }
func (e *InvalidProofError) Unwrap() error { return e.Err }

// CheckpointError is a signed checkpoint note that could not be parsed or
// whose signature does not verify under the pinned log key.
type CheckpointError struct {
	Reason string
	// Origin and Size of the checkpoint, when it could be parsed.
	Origin string
	Size   int64
	Err    error
}

func (e *CheckpointError) Error() string {
	s := "checkpoint: " + e.Reason
	if e.Origin != "" {
		s += fmt.Sprintf(" (origin %q, size %d)", e.Origin, e.Size)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CheckpointError) Unwrap() error { return e.Err }

// BundleError is a proof bundle that is not valid JSON of the bundle schema.
type BundleError struct {
	Reason string
	Err    error
}

func (e *BundleError) Error() string {
	if e.Err != nil {
		return "proof bundle: " + e.Reason + ": " + e.Err.Error()
	}
	return "proof bundle: " + e.Reason
}

func (e *BundleError) Unwrap() error { return e.Err }

// HashMismatchError: the package file's sha256 is not what the repository
// database says.
type HashMismatchError struct {
	Filename      string
	Expected, Got string // Expected from the db, Got computed from the file
}

func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("%s: sha256 %s, repository database says %s", e.Filename, e.Got, e.Expected)
}

// MissingError: a `.t` or a bundle that the policy needs does not exist.
type MissingError struct {
	What     string // "signature" or "bundle"
	Filename string // the package file name
	Err      error
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("no %s for %s", e.What, e.Filename)
}

func (e *MissingError) Unwrap() error { return e.Err }

// NotInLogError: the log has no entry for this signature (online mode, no
// bundle), or the entries it returned do not prove inclusion.
type NotInLogError struct {
	// LeafHash is the entry UUID computed from the canonical body.
	LeafHash string
	// SearchHash is the sha256 searched in the index (sha256 of the message).
	SearchHash string
	// Candidates holds the verification error of each entry the log returned.
	Candidates []error
}

func (e *NotInLogError) Error() string {
	s := fmt.Sprintf("signature not in the log (entry %s, index sha256:%s)", e.LeafHash, e.SearchHash)
	if len(e.Candidates) > 0 {
		s += fmt.Sprintf("; %d candidate entr(ies) rejected: %v", len(e.Candidates), e.Candidates[0])
	}
	return s
}

func (e *NotInLogError) Unwrap() []error { return e.Candidates }

// RebuildError: fewer independent rebuilders than the policy requires
// reproduced the package.
type RebuildError struct {
	Required  int
	Confirmed []string
	Verdict   RebuildVerdict
}

func (e *RebuildError) Error() string {
	return fmt.Sprintf("reproduced by %d rebuilder(s) %v, policy requires %d", len(e.Confirmed), e.Confirmed, e.Required)
}

// LogUnavailableError: the log could not be asked in a mode that needs it.
// VerifyAll returns it (and marks affected results unavailable): the run
// fails closed.
type LogUnavailableError struct {
	Op  string // what was asked ("checkpoint", "entries by index", …)
	Err error
}

func (e *LogUnavailableError) Error() string {
	return fmt.Sprintf("transparency log unavailable (%s): %v", e.Op, e.Err)
}

func (e *LogUnavailableError) Unwrap() error { return e.Err }

// SecurityError: the log showed two views of itself that cannot both be
// true (a fork, a rollback, a changed origin). It carries both signed tree
// heads so that a human can publish the evidence.
type SecurityError struct {
	Reason string
	// Old is the earlier checkpoint (persisted, or carried by a bundle or an
	// entry), New the log's current one. Both are the full signed notes.
	Old, New []byte
	// OldLabel and NewLabel say where Old and New come from, when it is
	// not "earlier" and "current" (offline: the stored checkpoint and a
	// proof bundle's, or two bundles').
	OldLabel, NewLabel string
	Err                error
}

func (e *SecurityError) Error() string {
	var b strings.Builder
	b.WriteString("SECURITY ERROR\n")
	b.WriteString("The transparency log presented inconsistent views of itself: ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	oldLabel, newLabel := e.OldLabel, e.NewLabel
	if oldLabel == "" {
		oldLabel = "earlier signed tree head"
	}
	if newLabel == "" {
		newLabel = "current signed tree head"
	}
	b.WriteString("\n\n" + oldLabel + ":\n")
	b.Write(indent(e.Old))
	b.WriteString("\n" + newLabel + ":\n")
	b.Write(indent(e.New))
	b.WriteString("\nThis is proof that the log misbehaved (split view or rollback). Keep both tree heads.")
	return b.String()
}

func (e *SecurityError) Unwrap() error { return e.Err }

func indent(b []byte) []byte {
	if len(b) == 0 {
		return []byte("\t(none)\n")
	}
	var out []byte
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		out = append(out, '\t')
		out = append(out, l...)
	}
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}
