package signer

import (
	"strings"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/verify"
)

// sigDirTarget: the signature dir receives only <filename>.t and
// <filename>.t.bundle.
func sigDirTarget(name string) bool {
	return strings.HasSuffix(name, verify.SignatureSuffix) || strings.HasSuffix(name, verify.BundleSuffix)
}

// stmtDirTarget: the statements subdirectory receives only
// <hash>.stmt, <hash>.stmt.t and <hash>.stmt.t.bundle.
func stmtDirTarget(name string) bool {
	return strings.HasSuffix(name, freshness.Suffix) || strings.HasSuffix(name, freshness.Suffix+verify.SignatureSuffix) ||
		strings.HasSuffix(name, freshness.Suffix+verify.BundleSuffix)
}

// stateDirTarget: the files the signer replaces (durable.WriteFile) in
// <state-dir>/sign/.
func stateDirTarget(name string) bool {
	switch name {
	case journalName, "audit-head.json", checkpointName, legacyCheckpointName, countersName:
		return true
	}
	return isNoteCheckpointName(name)
}
