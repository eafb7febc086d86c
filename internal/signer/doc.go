// Package publish is the repository operator's signing pipeline: for every
// package of one or more sync databases it signs the package's sha256 with
// the transparency key, logs the signature in Rekor, verifies the returned
// entry under the pinned log key, appends an audit record, and only then
// publishes `<filename>.t` and `<filename>.t.bundle`.
//
// # Ordering and crash safety
//
// For each package, in this order:
//
//  1. intent: a journal file in the state dir records the signature and the
//     entry's leaf hash (computable before upload: Ed25519 is deterministic
//     and the canonical body is rebuilt from .t + key + message), fsync'ed;
//  2. upload (a 409 "already logged" returns the existing entry);
//  3. the entry is verified offline under the pinned log key (body binds the
//     .t, key and message; inclusion proof; checkpoint; SET);
//  4. the audit record is appended and fsync'ed;
//  5. `.t.bundle` then `.t` are written atomically (temp + fsync + rename +
//     directory fsync);
//  6. the intent is removed.
//
// A crash at any point leaves either nothing logged (re-run uploads once),
// or a logged entry with an intent (re-run re-signs, gets 409 with the same
// UUID, and finishes: no duplicate), or an audit record without .t (re-run
// finds the record by leaf hash and does not append a second one), so the
// log never holds an entry that the audit log does not explain once a run
// has completed, and a published `.t` always has its audit record.
//
// # Settle
//
// At the end of a run, the bundles it wrote are re-fetched from the log by
// index (batched, parallel), checked to be the same entries, verified in
// full and rewritten atomically with their fresh inclusion proofs, so that
// they share one tree head; the log's current checkpoint is first proven
// consistent with the one the signer stored in its state dir by the run
// before, then stored. A bundle is only ever replaced by another that
// verifies, so a crash or a failure during the settle leaves valid bundles
// (the upload's or the fresh one) and at worst a temp file, which the next
// run removes at its start.
package signer
