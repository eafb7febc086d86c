package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/safetext"
)

// AuditCmd is `bintrans audit`: the auditor's checks of the operator's audit
// log. Subcommands grow here.
type AuditCmd struct {
	Check       AuditCheckCmd       `cmd:"" name:"check" default:"withargs" help:"Cross-check the log's entries for the key with the audit log and the released databases (the default: bintrans audit --audit-log FILE …)."`
	VerifyChain AuditVerifyChainCmd `cmd:"" name:"verify-chain" help:"Check an audit log's hash chain (edited, deleted, reordered or truncated records)."`
}

// AuditVerifyChainCmd is `bintrans audit verify-chain FILE`.
type AuditVerifyChainCmd struct {
	File string `arg:"" placeholder:"FILE" help:"Audit log written by bintrans sign (--audit-log)."`
	Head string `name:"head" placeholder:"[N:]HASH" help:"Also require the chain to end at this head (as printed by bintrans sign or an earlier verify-chain), e.g. 200:3f2a… — detects records removed from the end."`
	JSON bool   `name:"json" help:"Print the result as JSON on stdout."`
}

// Help is the long help of `bintrans audit verify-chain --help`.
func (AuditVerifyChainCmd) Help() string {
	return `Reads the audit log line by line (bounded: at most 16 KiB per line) and
checks that every line is a well-formed record (schema 1, 2 or 3, in the exact
form bintrans writes, no field holding a control, bidi or format character
or invalid UTF-8), that each record's "prev" is the sha256 of the line
before (64 zeros for the first), and that the file ends with a newline.
The first bad line is reported with its number (and, for a bad character,
the field and the character as U+XXXX: nothing of it reaches the terminal).

The chain cannot show records removed from the end or an edited last record:
compare the head with one kept elsewhere (--head), and cross-check the
records with the log (bintrans audit).

Examples:
  bintrans audit verify-chain /var/lib/bintrans/audit.jsonl
  bintrans audit verify-chain --head 200:3f2a… audit.jsonl

Exit codes: 0 the chain verifies; 1 it is broken (a finding); 2 usage;
3 the file cannot be read.`
}

// chainReport is the --json output of verify-chain.
type chainReport struct {
	SchemaVersion int    `json:"schema_version"`
	File          string `json:"file"`
	OK            bool   `json:"ok"`
	Records       int    `json:"records"`
	Head          string `json:"head"`
	BadLine       int    `json:"bad_line,omitempty"`
	Kind          string `json:"kind,omitempty"`
	Error         string `json:"error,omitempty"`
}

// Run verifies the chain.
func (c *AuditVerifyChainCmd) Run(g *Globals) error {
	var want *audit.Head
	if c.Head != "" {
		h, err := parseHead(c.Head)
		if err != nil {
			return usageErrorf("give the head as HASH or N:HASH (64 hex digits)", "--head: %v", err)
		}
		want = &h
	}
	f, err := os.Open(c.File)
	if err != nil {
		return runErrorf(err, "check the path", "%v", err)
	}
	defer f.Close()
	var head audit.Head
	if want != nil {
		head, err = audit.VerifyHead(f, *want)
	} else {
		head, err = audit.Scan(f, nil)
	}
	var ce *audit.ChainError
	if err != nil && !errors.As(err, &ce) {
		return runErrorf(err, "", "reading %s: %v", c.File, err)
	}
	rep := chainReport{SchemaVersion: 1, File: c.File, OK: err == nil, Records: head.Records, Head: head.Hash}
	if ce != nil {
		rep.BadLine, rep.Kind, rep.Error = ce.Line, string(ce.Kind), ce.Error()
	}
	if c.JSON {
		if err := writeJSON(g.Stdout, rep); err != nil {
			return runErrorf(err, "", "%v", err)
		}
	} else if ce == nil {
		fmt.Fprintf(g.Stdout, "%s: chain ok, %d records, head %d:%s\n", safetext.Line(c.File), head.Records, head.Records, head.Hash)
	}
	if ce != nil {
		return verificationFailed("the audit log was edited, truncated or reordered after it was written: compare it with a backup and with the log ('bintrans audit')",
			"%s: %v", c.File, ce)
	}
	return nil
}

func parseHead(s string) (audit.Head, error) {
	var h audit.Head
	if n, hash, ok := strings.Cut(s, ":"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return h, fmt.Errorf("%q is not a record count", n)
		}
		h.Records, s = v, hash
	}
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 || strings.ToLower(s) != s {
		return h, fmt.Errorf("%q is not 64 lowercase hex digits", s)
	}
	h.Hash = s
	return h, nil
}
