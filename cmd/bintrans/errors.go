package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/bintrans/bintrans/internal/safetext"
)

// Exit codes, the same for every command (design.md).
const (
	ExitOK       = 0 // everything verified
	ExitFailed   = 1 // a package failed verification; audit/monitor: a finding
	ExitUsage    = 2 // usage or configuration error
	ExitInternal = 3 // could not run: I/O, unreachable service in a mode that needs it
)

// cliError is an error with an exit code and an optional hint: what the user
// should do next. Commands build them with fail, usage and failed.
type cliError struct {
	code int
	msg  string
	hint string
	err  error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// ExitCode makes cliError a kong.ExitCoder.
func (e *cliError) ExitCode() int { return e.code }

// usageErrorf is a usage or configuration error (exit 2).
func usageErrorf(hint, format string, args ...any) error {
	return &cliError{code: ExitUsage, msg: fmt.Sprintf(format, args...), hint: hint}
}

// runErrorf is a could-not-run error (exit 3).
func runErrorf(err error, hint, format string, args ...any) error {
	return &cliError{code: ExitInternal, msg: fmt.Sprintf(format, args...), hint: hint, err: err}
}

// verificationFailed is returned when at least one package failed (exit 1).
// The per-package lines have already been printed; msg is the summary.
func verificationFailed(hint, format string, args ...any) error {
	return &cliError{code: ExitFailed, msg: fmt.Sprintf(format, args...), hint: hint}
}

// usageError wraps a kong parse error so it exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// hinter is implemented by domain errors that know what the user should do.
type hinter interface{ Hint() string }

// reportError prints err in the one voice of the tool and returns its exit
// code: "bintrans: <what failed>" and, when known, "hint: <what to do>".
func reportError(w io.Writer, err error) int {
	code := ExitInternal
	hint := ""
	var ce *cliError
	var ue usageError
	var h hinter
	switch {
	case errors.As(err, &ce):
		code, hint = ce.code, ce.hint
	case errors.As(err, &ue):
		code = ExitUsage
		hint = "run 'bintrans --help' or 'bintrans <command> --help' for usage"
	}
	if hint == "" && errors.As(err, &h) {
		hint = h.Hint()
	}
	// Errors quote untrusted text (names from databases, log answers):
	// escaped here, once, on one line.
	fmt.Fprintf(w, "bintrans: %s\n", safetext.Message(err.Error()))
	if hint != "" {
		fmt.Fprintf(w, "hint: %s\n", safetext.Message(hint))
	}
	return code
}
