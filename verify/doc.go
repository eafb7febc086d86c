// Package verify is the bintrans verification engine.
//
// It decides, from bytes and a handful of interfaces, whether a package is
// provably public: its minisign transparency signature (the `.t` file) is
// valid for a policy key, signs the package's sha256 with the package's file
// name as trusted comment, and is included in a transparency log whose
// identity is pinned. It never opens a socket or a file itself, and imports
// no package of this module: the log, the signature source, the checkpoint
// store and the rebuilders are interfaces implemented at the edges
// (internal/logs/<kind>, internal/sigsource, internal/state,
// internal/rebuilder) and, in tests, by in-memory fakes that still produce
// real RFC 6962 proofs.
//
// The engine keeps what every log shares: the `.t` (Signature, PublicKey),
// the signed-note Checkpoint, RFC 6962 consistency (Consistency,
// CheckConsistency), Artifact, Result and Status, the typed errors and the
// verdict classifier (StatusOf, OutcomeOf, Judge), the CheckpointStore
// interface and the batch (Verifier.VerifyAll). What differs per kind of
// log sits behind small interfaces (log.go): a pure LogVerifier (the kind's
// checkpoints and proof bundles, returning a common Proof), an online
// LogClient (checkpoint, consistency proofs) and, for logs that can be
// searched (Rekor v1), an EntryFinder for `.t` files published without a
// bundle. A witness quorum (Witnesses) applies to the checkpoints the run
// relies on.
//
// A failed package is a Result, not an error. A Go error from VerifyAll means
// that the run as a whole could not reach a trustworthy verdict: the context
// was cancelled, the log could not be reached in online mode, or the log
// showed two inconsistent views of itself (a *SecurityError).
//
// What is checked, per package: the file's sha256 (HashReader) against the
// database; the `.t` (ParseSignature, Signature.Verify: policy key id,
// Ed25519 signature over the 64-byte hex sha256, global signature, trusted
// comment == file name); then its inclusion: the bundle, by the log kind's
// verifier (for Rekor v1: the canonical rekord body binds this signature
// line, a policy key and sha256(message); the RFC 6962 inclusion proof; a
// checkpoint signed by the pinned key whose size and root are the proof's;
// the SET), or, online and without a bundle, the entry the log finds.
// Online, VerifyAll then proves every checkpoint an inclusion was proven
// in, and the stored one, consistent with the log's current checkpoint (a
// *SecurityError otherwise): with bundles that is one checkpoint fetch and
// one consistency proof per distinct older tree head, no entry retrieval.
// Offline, VerifyAll compares the bundles' checkpoints with each other and
// with the stored one: two signed tree heads of the same size with
// different roots are a *SecurityError too; heads of different sizes need
// the log's consistency proof and are not compared.
package verify
