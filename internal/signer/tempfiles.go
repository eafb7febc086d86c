package signer

import (
	"strings"

	"github.com/bintrans/bintrans/verify"
)

// sigDirTarget: the signature dir receives only <filename>.t and
// <filename>.t.bundle.
func sigDirTarget(name string) bool {
	return strings.HasSuffix(name, verify.SignatureSuffix) || strings.HasSuffix(name, verify.BundleSuffix)
}

// stateDirTarget: the files the signer replaces (durable.WriteFile) in
// <state-dir>/sign/.
func stateDirTarget(name string) bool {
	switch name {
	case journalName, "audit-head.json", checkpointName, legacyCheckpointName:
		return true
	}
	return false
}
