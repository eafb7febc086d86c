package verify

import "context"

// The log-kind seam: what the engine needs from a transparency log, and
// nothing that differs between kinds of logs. A kind (Rekor v1, Rekor v2,
// Sigsum: internal/logs/<kind>) implements LogVerifier, pure, and, to be
// used online, LogClient; only a kind whose logs can be searched (Rekor v1)
// implements EntryFinder, for `.t` files published without a proof bundle.

// LogVerifier is the pure, per-kind part of a log: the pinned log identity
// (key, origin) and the kind's proof format. It does no I/O. Both methods
// are called from several goroutines at once.
type LogVerifier interface {
	// Kind names the kind of log ("rekor-v1", "rekor-v2", "sigsum").
	Kind() string
	// VerifyCheckpoint verifies a signed checkpoint note: signed by the
	// pinned log key, with the pinned origin (when the kind pins one).
	// Witness cosignatures are not its business (Policy.Witnesses).
	// Errors are *CheckpointError.
	VerifyCheckpoint(note []byte) (*Checkpoint, error)
	// VerifyBundle verifies the proof bundle published next to a `.t`:
	// that the log holds an entry binding sig (a `.t` that already
	// verified under one of keys) to msg, the package's 64-character hex
	// sha256, and that this entry is included in the tree of a checkpoint
	// the log signed. Any error means the bundle does not prove it; the
	// engine reports it as StatusBundleInvalid, with the kind's error (and
	// its message) as the evidence.
	VerifyBundle(bundle []byte, sig *Signature, keys []PublicKey, msg []byte) (*Proof, error)
}

// LogClient is the online part of a log: its current checkpoint and the
// consistency proofs between two of its tree sizes. The engine verifies
// everything it returns. Errors mean "could not ask" (the engine reports a
// *LogUnavailableError).
type LogClient interface {
	// Checkpoint returns the log's current signed checkpoint note.
	Checkpoint(ctx context.Context) ([]byte, error)
	// ConsistencyProof returns the RFC 6962 consistency proof between two
	// tree sizes (0 < first < last).
	ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error)
}

// Shards is implemented by the LogClient of a log that rotates shards
// (Rekor v2: a new origin, key and URL every few months; every shard's
// entries stay verifiable). Each shard has its own checkpoints and its own
// stored checkpoint: online, the engine proves the checkpoints of each
// origin consistent with that shard's current checkpoint and stores it in
// that shard's store, so a bundle of an earlier shard is no origin change.
// The LogVerifier must accept every shard's checkpoints (and refuse
// those of a shard whose window has not begun); the Verifier's own store
// is then unused. Offline, a Shards may be given as the LogClient for its
// stores alone (Shard's log may then be nil: it is never asked).
type Shards interface {
	// Shard returns the online side and the checkpoint store (nil: none)
	// of the configured shard whose checkpoints have origin; ok is false
	// when no configured shard has it.
	Shard(origin string) (log LogClient, store CheckpointStore, ok bool)
}

// EntryFinder is implemented by a LogClient whose log can find the entry
// of a signature without a bundle (a seed-signed `.t`: Rekor v1's index).
// Online, the engine asks it for every verified `.t` that has no bundle;
// without one, such a package is StatusMissingBundle.
type EntryFinder interface {
	// FindEntry returns the verified proof that the log holds sig (a `.t`
	// that verified under one of keys) over msg. No such entry is a
	// *NotInLogError (with the candidates that did not verify); a log that
	// cannot be asked, any other error.
	FindEntry(ctx context.Context, sig *Signature, keys []PublicKey, msg []byte) (*Proof, error)
}

// Witnesses is a witness quorum (C2SP tlog-policy; internal/witness): the
// cosignatures every checkpoint a run relies on must carry, besides the
// log's own signature.
type Witnesses interface {
	// CheckCosignatures checks the quorum of the cosignature lines of a
	// checkpoint note whose log signature verified. The error says which
	// witnesses are missing.
	CheckCosignatures(note []byte) error
}

// Proof is what every kind proves for a package: a leaf of the log's tree,
// included in the tree of a verified checkpoint.
type Proof struct {
	// Checkpoint is the verified checkpoint the inclusion was proven in.
	Checkpoint *Checkpoint
	// Index is the leaf's tree-local index (< Checkpoint.Size).
	Index int64
	// LeafHash is the RFC 6962 leaf hash of the entry.
	LeafHash [32]byte
	// Entry identifies the entry in reports.
	Entry EntryID
}

// EntryID identifies a log entry in reports. Rekor v1: the entry UUID,
// its global log index, the log id and the integrated time; a tile log
// (Rekor v2, Sigsum): the hex leaf hash and the index.
type EntryID struct {
	UUID           string
	LogIndex       int64
	LogID          string
	IntegratedTime int64
}
