// Package rekorv2 is bintrans's adapter for Rekor v2 (sigstore/rekor-tiles),
// the tile-based Sigstore log: signing, logging, an on-disk proof bundle,
// offline verification, and reading the log's C2SP tiles.
//
// Rekor v2 (since v2.3.0) accepts one entry type, hashedrekord v0.0.2, and
// for Ed25519 keys one algorithm, PKIX_ED25519_PH: an RFC 8032 Ed25519ph
// signature over SHA-512 of the message. The message is exactly what a
// package's `.t` signs: the 64-character lowercase hex SHA-256 of the
// package file. So the transparency key (a minisign key: its secret key is
// the seed‖public key layout of crypto/ed25519, convert with
// ed25519.PrivateKey(sk.SecretKey[:])) signs the same message twice: the
// `.t` (minisign, pure Ed25519 over BLAKE2b or the message) and the log entry
// (Ed25519ph over SHA-512).
//
// The pieces:
//
//   - [Sign] makes the [HashedRekord]; its [HashedRekord.Body] is the
//     log's canonical entry body, rebuilt byte for byte from digest,
//     signature and key, so that a bundle need not carry it.
//   - [Writer] logs an entry (POST /api/v2/log/entries) and returns a
//     [Logged] whose every field was checked against the pinned log key; a
//     409 ("already logged at index N") is proven from the tiles instead.
//   - [Bundle] is the on-disk proof (`<pkg>.t.bundle`): a C2SP tlog-proof
//     whose extra data is the Ed25519ph signature (docs/BUNDLES.md).
//   - [VerifyBundle] checks a bundle offline, without I/O.
//   - [Reader] reads checkpoints and tiles (C2SP tlog-tiles) and, through
//     [Tree], builds inclusion and consistency proofs from tiles it has
//     authenticated against a verified checkpoint, and iterates the log's
//     entries with every entry bundle checked against the hash tiles.
//
// Results are this package's own plain types; engine.go adapts them to the
// engine's interfaces (KindVerifier is the verify.LogVerifier, Online the
// verify.LogClient), and that file alone imports package verify.
package rekorv2
