// Package verify is the bintrans verification engine.
//
// It decides, from bytes and a handful of interfaces, whether a package is
// provably public: its minisign transparency signature (the `.t` file) is
// valid for a policy key, signs the package's sha256 with the package's file
// name as trusted comment, and is included in a Rekor transparency log whose
// key is pinned. It never opens a socket or a file itself: the log, the
// signature source, the checkpoint store and the rebuilders are interfaces
// implemented at the edges (internal/logs, cmd/bintrans, internal/rebuilder) and, in
// tests, by in-memory fakes that still produce real RFC 6962 proofs.
//
// A failed package is a Result, not an error. A Go error from VerifyAll means
// that the run as a whole could not reach a trustworthy verdict: the context
// was cancelled, the log could not be reached in online mode, or the log
// showed two inconsistent views of itself (a *SecurityError).
//
// What is checked, per package: the file's sha256 (HashReader) against the
// database; the `.t` (ParseSignature, Signature.Verify: policy key id,
// Ed25519 signature over the 64-byte hex sha256, global signature, trusted
// comment == file name); then the log entry (VerifyEntry): the canonical
// rekord body binds this signature line, a policy key with the same key id
// and sha256(message); the RFC 6962 inclusion proof; a checkpoint signed by
// the pinned LogKey whose size and root are the proof's; the SET. Online,
// VerifyAll also re-proves bundled entries against the current tree and
// proves every checkpoint seen, and the stored one, consistent with the
// log's current checkpoint (a *SecurityError otherwise). Offline, VerifyAll
// compares the bundles' checkpoints with each other and with the stored
// one: two signed tree heads of the same size with different roots are a
// *SecurityError too; heads of different sizes need the log's consistency
// proof and are not compared.
package verify
