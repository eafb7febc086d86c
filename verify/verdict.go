package verify

import (
	"context"
	"errors"
)

// StatusOf maps an error of this package to the package verdict. Errors of
// other packages (I/O) map to StatusUnavailable.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	var se *SignatureError
	var ip *InvalidProofError
	var ce *CheckpointError
	var be *BundleError
	var he *HashMismatchError
	var me *MissingError
	var nl *NotInLogError
	var re *RebuildError
	var sec *SecurityError
	var lu *LogUnavailableError
	switch {
	case errors.As(err, &sec):
		return StatusLogInconsistent
	case errors.As(err, &lu):
		return StatusUnavailable
	case errors.As(err, &he):
		return StatusHashMismatch
	case errors.As(err, &se):
		return se.Status()
	case errors.As(err, &me):
		if me.What == "bundle" {
			return StatusMissingBundle
		}
		return StatusMissingSignature
	case errors.As(err, &nl):
		return StatusNotInLog
	case errors.As(err, &ip), errors.As(err, &ce), errors.As(err, &be):
		return StatusBundleInvalid
	case errors.As(err, &re):
		return StatusRebuildUnconfirmed
	}
	return StatusUnavailable
}

// Outcome is a run's verdict in one word: what every command maps to its
// exit code (cmd/bintrans does, once).
type Outcome int

// Every outcome, from best to worst for the exit code's sake.
const (
	// Verified: the run completed and nothing failed.
	Verified Outcome = iota
	// Refused: the run completed and at least one package (entry, record)
	// failed verification.
	Refused
	// Inconsistent: the log showed two views of itself (a *SecurityError,
	// the evidence to keep).
	Inconsistent
	// Unavailable: the log could not be used in a mode that needs it (a
	// *LogUnavailableError).
	Unavailable
	// Incomplete: the run was cut short (interrupt, --deadline) or failed
	// on its own I/O: no trustworthy verdict.
	Incomplete
)

func (o Outcome) String() string {
	switch o {
	case Verified:
		return "verified"
	case Refused:
		return "refused"
	case Inconsistent:
		return "inconsistent"
	case Unavailable:
		return "unavailable"
	case Incomplete:
		return "incomplete"
	}
	return "outcome?"
}

// OutcomeOf classifies a run's error (VerifyAll's, or the monitor's, the
// signer's…): nil is Verified; a *SecurityError anywhere in the chain is
// Inconsistent (it outweighs everything); a *LogUnavailableError is
// Unavailable; anything else, context ends included, is Incomplete.
func OutcomeOf(err error) Outcome {
	var sec *SecurityError
	var lu *LogUnavailableError
	switch {
	case err == nil:
		return Verified
	case errors.As(err, &sec):
		return Inconsistent
	case errors.As(err, &lu):
		return Unavailable
	}
	return Incomplete
}

// Verdict is a batch's outcome with its counts.
type Verdict struct {
	Outcome Outcome
	// Failed counts the results that are not OK; Total every result.
	Failed, Total int
	// Err is the run's error (nil unless the outcome is Inconsistent,
	// Unavailable or Incomplete).
	Err error
}

// Judge classifies a batch: the run's error first (OutcomeOf), then
// Refused when a result is not OK, else Verified.
func Judge(results []Result, runErr error) Verdict {
	v := Verdict{Outcome: OutcomeOf(runErr), Total: len(results), Err: runErr}
	for _, r := range results {
		if !r.OK() {
			v.Failed++
		}
	}
	if v.Outcome == Verified && v.Failed > 0 {
		v.Outcome = Refused
	}
	return v
}

// cancelled reports whether err is the end of a context (cancel, deadline).
func cancelled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
