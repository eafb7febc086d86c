// Package witness implements C2SP witnessing for any transparency log whose
// checkpoints are signed notes: Rekor v1 (ECDSA, origin "<host> - <tree ID>"),
// Rekor v2 (Ed25519) and Sigsum (Ed25519, origin "sigsum.org/v1/tree/<hex>").
//
//   - Parse reads a policy in C2SP tlog-policy syntax (vkeys) or Sigsum's
//     syntax (hex keys), enforcing the rules the upstream parsers skip.
//   - (*Policy).VerifyCheckpoint checks a cosigned checkpoint: the log
//     signature under a pinned log key, the origin, then the cosignature/v1
//     lines counted against the policy's quorum, optionally with a maximum
//     age. (*Policy).CheckQuorum does the same for cosignatures identified
//     by key hash (Sigsum proof files).
//   - Client speaks C2SP tlog-witness add-checkpoint to collect cosignatures.
//   - MergeCosignatures adds cosignature lines to a checkpoint note.
//
// Nothing here opens a file or a socket except Client (HTTP through the
// caller's *http.Client) and ParseFile.
package witness
