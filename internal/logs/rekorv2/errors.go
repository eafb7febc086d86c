package rekorv2

import (
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
)

// LogKeyError is a log key (--log-key, --log-origin) that cannot be used.
type LogKeyError struct {
	Reason string
	Err    error
}

func (e *LogKeyError) Error() string { return withErr("log key: "+e.Reason, e.Err) }
func (e *LogKeyError) Unwrap() error { return e.Err }

// CheckpointError is a checkpoint that is not a valid signed note of the
// pinned log: bad or missing log signature, another origin, malformed text.
type CheckpointError struct {
	Reason string
	// Head is the checkpoint's first three lines (origin, size, root),
	// sanitized, when it could be read: the evidence.
	Head string
	Err  error
}

func (e *CheckpointError) Error() string {
	s := "checkpoint: " + e.Reason
	if e.Head != "" {
		s += " [" + e.Head + "]"
	}
	return withErr(s, e.Err)
}
func (e *CheckpointError) Unwrap() error { return e.Err }

// Step names the check of a bundle or log answer that failed.
type Step string

// The checks of VerifyBundle (in order) and of a log's answer to an add.
const (
	StepBundle     Step = "bundle"     // not a well-formed, canonical tlog-proof of this format
	StepMessage    Step = "message"    // the message is not a 64-character lowercase hex SHA-256
	StepCheckpoint Step = "checkpoint" // the checkpoint is not signed by the pinned log key / origin
	StepSignature  Step = "signature"  // the Ed25519ph signature is by none of the transparency keys
	StepInclusion  Step = "inclusion"  // the entry is not included in the checkpoint's tree
	StepResponse   Step = "response"   // the log's answer contradicts itself or the entry sent
)

// VerifyError is a bundle, or a log's answer to an add, that does not
// prove that the entry is in the log.
type VerifyError struct {
	Step Step
	// Field names what was compared ("index", "treeSize", "body", …).
	Field string
	// Reason says what is wrong.
	Reason string
	// Expected and Got carry the evidence, as text.
	Expected, Got string
	// Index and TreeSize locate the entry when known.
	Index, TreeSize uint64
	Err             error
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Step))
	if e.Field != "" {
		b.WriteString(" " + e.Field)
	}
	b.WriteString(": " + e.Reason)
	if e.Expected != "" || e.Got != "" {
		fmt.Fprintf(&b, " (expected %s, got %s)", e.Expected, e.Got)
	}
	if e.TreeSize > 0 {
		fmt.Fprintf(&b, " [index %d, tree size %d]", e.Index, e.TreeSize)
	}
	return withErr(b.String(), e.Err)
}
func (e *VerifyError) Unwrap() error { return e.Err }

// CallError is a request to the log that failed: Err is a
// *httpclient.StatusError (the server said no), a *httpclient.TooLargeError,
// a *MalformedResponseError, or a transport error (errors.Is(err,
// context.DeadlineExceeded) on timeouts). Attempts counts the tries.
type CallError struct {
	Op       string
	URL      string
	Attempts int
	Err      error
}

func (e *CallError) Error() string {
	s := "rekor v2 " + e.Op
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	return s + ": " + e.Err.Error()
}
func (e *CallError) Unwrap() error { return e.Err }

// RejectedError is an entry the log refused (HTTP 4xx other than
// 408/409/429, or a 500 the server gives for a request it cannot
// process): retrying the same request cannot help.
type RejectedError struct {
	Status int
	// Message is the server's message, sanitized and shortened.
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("rekor v2 refused the entry: HTTP %d: %s", e.Status, e.Message)
}

// MalformedResponseError is a 2xx (or 409) answer that is not what the
// API documents: undecodable, truncated, missing required fields.
type MalformedResponseError struct {
	Reason string
	Err    error
}

func (e *MalformedResponseError) Error() string {
	return withErr("malformed answer: "+e.Reason, e.Err)
}
func (e *MalformedResponseError) Unwrap() error { return e.Err }

// DuplicateError is a 409 ("an equivalent entry already exists … with
// index N") that could not be turned into a proof: the Writer has no
// Reader, or the tiles did not show the entry in time. The entry is
// logged at Index (as the log claims).
type DuplicateError struct {
	Index uint64
	Err   error
}

func (e *DuplicateError) Error() string {
	return withErr(fmt.Sprintf("already logged at index %d but no proof could be built", e.Index), e.Err)
}
func (e *DuplicateError) Unwrap() error { return e.Err }

// LeafMismatchError is an entry that is not the expected one at its
// index, by the log's own authenticated tiles: a 409 naming another
// entry's index, or a bundle's entry the log does not hold.
type LeafMismatchError struct {
	Index      uint64
	Checkpoint *Checkpoint
	// Want is the expected leaf hash, Got the one the tiles hold.
	Want, Got [32]byte
}

func (e *LeafMismatchError) Error() string {
	return fmt.Sprintf("the log holds another entry at index %d (leaf hash %s, expected %s) at %s",
		e.Index, hex.EncodeToString(e.Got[:]), hex.EncodeToString(e.Want[:]), e.Checkpoint)
}

// RollbackError is a log that serves a checkpoint older than one already
// seen: both are signed by the log, so this is evidence.
type RollbackError struct {
	Old, New *Checkpoint
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("log rolled back: served %s after %s", e.New, e.Old)
}

// ForkError is a log that signed two trees neither of which extends the
// other (a split view): both checkpoints are the evidence.
type ForkError struct {
	Old, New *Checkpoint
	Err      error
}

func (e *ForkError) Error() string {
	return withErr(fmt.Sprintf("log forked: %s is not an extension of %s", e.New, e.Old), e.Err)
}
func (e *ForkError) Unwrap() error { return e.Err }

// TileErrorKind names what was wrong with data the tile server served.
type TileErrorKind int

// The lies a tile server can tell that the Reader catches.
const (
	// TileInconsistent: hash tiles that do not hash to the checkpoint's root.
	TileInconsistent TileErrorKind = iota + 1
	// TileWrongSize: a tile or entry bundle with another number of hashes
	// or entries than the checkpoint's tree has there (a partial tile
	// beyond the checkpoint, a truncated full tile).
	TileWrongSize
	// EntryBundleMalformed: an entry bundle that is not a sequence of
	// length-prefixed entries.
	EntryBundleMalformed
	// EntryBundleMismatch: an entry whose leaf hash is not the one the
	// authenticated hash tiles hold for its index.
	EntryBundleMismatch
	// RootMismatch: the entries read do not hash to the checkpoint's root.
	RootMismatch
)

func (k TileErrorKind) String() string {
	switch k {
	case TileInconsistent:
		return "tiles do not hash to the checkpoint root"
	case TileWrongSize:
		return "tile size does not match the checkpoint"
	case EntryBundleMalformed:
		return "malformed entry bundle"
	case EntryBundleMismatch:
		return "entry bundle does not match the hash tiles"
	case RootMismatch:
		return "entries do not hash to the checkpoint root"
	}
	return fmt.Sprintf("tile error %d", int(k))
}

// TileError is tile data that contradicts the verified checkpoint it was
// read for: the tile server (or something between) lies.
type TileError struct {
	Kind TileErrorKind
	// Paths are the tiles involved (for TileInconsistent, one of them is wrong).
	Paths      []string
	Checkpoint *Checkpoint
	// Index is the entry concerned (EntryBundleMismatch), Detail the rest of
	// the evidence.
	Index  uint64
	Detail string
}

func (e *TileError) Error() string {
	s := e.Kind.String()
	if len(e.Paths) > 0 {
		p := e.Paths
		if len(p) > 8 {
			p = append(p[:8:8], fmt.Sprintf("… %d more", len(e.Paths)-8))
		}
		s += " (" + strings.Join(p, ", ") + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s + " at " + e.Checkpoint.String()
}

func withErr(s string, err error) string {
	if err != nil {
		return s + ": " + err.Error()
	}
	return s
}

// sanitize keeps printable characters of s, at most max runes.
func sanitize(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if !unicode.IsPrint(r) {
			r = '?'
		}
		if n == max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
