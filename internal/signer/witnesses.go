package signer

import (
	"context"
	"fmt"

	"github.com/bintrans/bintrans/internal/witness"
)

// Witnesses is the Cosigner of `sign --witness`: it asks witnesses (C2SP
// tlog-witness add-checkpoint, with the consistency proof from the size a
// witness last cosigned, which it reports with a 409) to cosign the
// settled checkpoint, keeps the cosignature lines that verify under each
// witness's pinned key, and merges them into the note. Where the policy
// has a quorum, a cosigned checkpoint that does not meet it is reported
// (clients that enforce the policy will refuse the bundles).
type Witnesses struct {
	Client *witness.Client
	// Ask are the witnesses to ask (each with a URL and its pinned key).
	Ask []witness.Witness
	// Policy, when set, is the witness policy (with the log's key) whose
	// quorum the cosigned checkpoint is checked against.
	Policy  *witness.Policy
	Options witness.Options
}

var _ Cosigner = (*Witnesses)(nil)

// Cosign asks every witness at once. It never fails as a whole: a witness
// that gives no valid cosignature is one of errs, and the note keeps the
// cosignatures obtained (none: the note as it was).
func (w *Witnesses) Cosign(ctx context.Context, note []byte, size uint64, proof func(ctx context.Context, oldSize uint64) ([][32]byte, error)) ([]byte, []string, []error) {
	c := w.Client
	if c == nil {
		c = &witness.Client{}
	}
	var lines [][]byte
	var names []string
	var errs []error
	for _, r := range c.AddCheckpointAll(ctx, w.Ask, note, nil, witness.ProofFunc(proof)) {
		if r.Err != nil {
			errs = append(errs, r.Err)
			continue
		}
		lines = append(lines, r.Lines)
		names = append(names, r.Witness)
	}
	if len(lines) == 0 {
		return note, nil, errs
	}
	merged, err := witness.MergeCosignatures(note, lines...)
	if err != nil {
		return note, nil, append(errs, fmt.Errorf("merging the cosignatures: %w", err))
	}
	if w.Policy != nil && w.Policy.Quorum != witness.QuorumNone {
		if _, err := w.Policy.VerifyCheckpoint(merged, w.Options); err != nil {
			errs = append(errs, fmt.Errorf("the cosigned checkpoint (size %d) does not meet the witness policy's quorum, clients that enforce it will refuse these bundles: %w", size, err))
		}
	}
	return merged, names, errs
}
