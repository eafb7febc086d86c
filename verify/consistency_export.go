package verify

// Exported building blocks for a log monitor (package monitor): verifying
// an entry found by searching the log, when no `.t` is at hand, and proving
// one checkpoint consistent with another. They share their checks with the
// engine (verifyLogProof, CheckConsistency).

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"golang.org/x/crypto/blake2b"
)

// VerifyLogged verifies, offline, a log entry found without its `.t` (by a
// key search, as a monitor does): e is complete and bounded
// (CheckEntryShape), e.LogID is lk's id, the body decodes as a canonical
// minisign rekord (DecodeBody), its RFC 6962 inclusion proof verifies to
// rootHash at treeSize, the checkpoint is signed by lk and has that root
// and size, and the SET verifies under lk.
//
// It returns the decoded body and the verified checkpoint. It does NOT
// check which key signed (compare Body.Key with the policy), that the
// signature line's key id equals the key's (Body.KeyIDMatches: Rekor does
// not compare them), nor the signature over the message: the log stores
// only sha256(message), so that needs the message (Body.VerifyMessage).
func VerifyLogged(e *LogEntry, lk *LogKey) (*Body, *Checkpoint, error) {
	if lk == nil {
		return nil, nil, fmt.Errorf("verify: no log key")
	}
	if err := CheckEntryShape(e); err != nil {
		return nil, nil, err
	}
	if e.LogID != lk.ID() {
		return nil, nil, &EntryError{Step: StepBundle, Field: "logID", Expected: lk.ID(), Got: e.LogID, LogIndex: e.LogIndex}
	}
	b, err := DecodeBody(e.Body)
	if err != nil {
		return nil, nil, err
	}
	cp, err := verifyLogProof(e, lk, lk.VerifyCheckpoint)
	if err != nil {
		return nil, nil, err
	}
	return b, cp, nil
}

// SigKeyID is the key id of the body's signature line, as minisign prints
// it. Rekor does not compare it with the key's id.
func (b *Body) SigKeyID() string { return keyIDString([8]byte(b.SigLine[2:10])) }

// KeyIDMatches reports whether the signature line names the key that
// verified it. A mismatch is an entry no minisign client would accept, and
// anyone can log one by editing the key id of a published `.t`.
func (b *Body) KeyIDMatches() bool { return b.SigKeyID() == b.Key.KeyID() }

// VerifyMessage checks that the entry is a signature by b.Key over message:
// data.hash is sha256(message) and the signature line's Ed25519 signature
// verifies over message (algorithm `ED`: over its BLAKE2b-512). It does not
// look at the key id. Errors are *EntryError (data.hash) or *SignatureError
// (SigBadSignature).
func (b *Body) VerifyMessage(message []byte) error {
	if want := sha256Hex(message); b.DataSHA256 != want {
		return &EntryError{Step: StepBody, Field: "data.hash", Expected: want, Got: b.DataSHA256}
	}
	if len(b.SigLine) != 74 || b.SigLine[0] != 'E' || (b.SigLine[1] != 'D' && b.SigLine[1] != 'd') {
		return &SignatureError{Kind: SigMalformed, Err: fmt.Errorf("signature line is not an Ed/ED minisign signature")}
	}
	signed := message
	if b.SigLine[1] == 'D' {
		h := blake2b.Sum512(message)
		signed = h[:]
	}
	if !ed25519.Verify(b.Key.key[:], signed, b.SigLine[10:74]) {
		return &SignatureError{Kind: SigBadSignature, KeyID: b.SigKeyID(), Got: truncate(string(message), 128)}
	}
	return nil
}

// ConsistencyProver fetches RFC 6962 consistency proofs (a Log has it).
type ConsistencyProver interface {
	ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error)
}

// ProveConsistent checks that cur, the log's current verified checkpoint,
// extends old, an earlier verified one: the same origin; for a larger tree,
// a consistency proof from log that verifies from old's root to cur's; for
// the same size, the same root. what names old in the error ("the stored
// checkpoint"). A log that fails this (a smaller tree, another root, another
// origin, a proof that does not verify) is a *SecurityError carrying both
// notes; a log that cannot be asked is a *LogUnavailableError. Both
// checkpoints must already have been verified under the pinned log key.
func ProveConsistent(ctx context.Context, log ConsistencyProver, old, cur *Checkpoint, what string) error {
	var p [][]byte
	if old.Origin == cur.Origin && old.Size > 0 && old.Size < cur.Size {
		var err error
		if p, err = log.ConsistencyProof(ctx, old.Size, cur.Size); err != nil {
			return &LogUnavailableError{Op: fmt.Sprintf("consistency proof %d→%d", old.Size, cur.Size), Err: err}
		}
	}
	return CheckConsistency(old, cur, p, what)
}
