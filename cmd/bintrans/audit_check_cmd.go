package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/monitor"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/internal/scan"
)

// AuditCheckCmd is `bintrans audit [check] --audit-log FILE …`: the
// cross-check of the log's entries for the key with the operator's audit
// log and the released packages. It is AuditCmd's default subcommand, so
// `bintrans audit --audit-log FILE …` runs it.
type AuditCheckCmd struct {
	KeyFlags
	LogFlags
	NetFlags

	AuditLog string   `name:"audit-log" required:"" type:"path" placeholder:"FILE" help:"The operator's audit log (bintrans sign --audit-log)."`
	RepoDB   []string `name:"repo-db" placeholder:"DB" sep:"none" help:"A released sync database (path, file:// or http(s):// URL): its packages must all be in the log, and logged packages are looked up in it. Repeatable."`
	RepoFlags
	MaxDBSize int64  `name:"max-db-size" default:"268435456" placeholder:"BYTES" help:"Largest database accepted, as fetched (compressed)."`
	StateDir  string `name:"state-dir" default:"/var/lib/bintrans-monitor" placeholder:"DIR" help:"The monitor's state directory (the same as 'bintrans monitor --state-dir'): the log's entries are verified incrementally."`
	Tail      bool   `name:"tail" help:"Monitor with --tail: also read, by index, every entry no earlier --tail run read, proven at its index (see bintrans monitor --help)."`
	JSON      bool   `name:"json" help:"Print the report as JSON on stdout (schema_version 1)."`
}

// Help is the long help of `bintrans audit --help`.
func (AuditCheckCmd) Help() string {
	return `Cross-checks three sources that must tell the same story:

  the transparency log  every entry signed by --pubkey (found and verified as
                        'bintrans monitor' does, with the same --state-dir);
  the audit log         the operator's hash-chained record of every signature
                        'bintrans sign' made, and why (--audit-log);
  the releases          the repository databases (--repo-db, --repo-url).

Every logged entry must have an audit record with the same UUID, log index,
key id and sha256 (the entry's signature must verify over the record's
sha256), and the package must have been released: in a given database under
the record's file name, or, for older releases, the record names the
database it was signed from; and the record must name the packager's
OpenPGP signature that released it (the database's or the package's, key
fingerprint and signature file sha256: 'bintrans sign' verified it).

Reported separately:
  POSSIBLE KEY COMPROMISE  log entries signed by the key with no audit record:
                           the key was used outside 'bintrans sign'
  key-id variants          entries that are an audited signature with the key
                           id edited (anyone can log these; clients reject them)
  mismatches               an entry and its record disagree
  records without entry    the operator claims what the log does not show
  unreleased               audited entries whose package was never released
  no release signature     audited entries whose record names no packager
                           signature (signed with 'sign --unsafe-trust-db',
                           or by an older bintrans): nothing shows that a
                           packager released what the key signed
  chain breaks             audit records edited, removed, reordered, truncated
  packages without entry   packages of the given databases not in the log
  statement findings       repository statements (docs/STATEMENTS.md) whose
                           counter goes backwards, one counter for two
                           statements (the key signed two histories), or a
                           gap longer than the interval (+ half): clients saw
                           the repository go stale; also the newest
                           statement that old at the time of the audit

Information, not findings: the repository statements per repository and
architecture, over time (the newest 10; --json: every one, under
cross_check.statements), entries missing from the log's key search
("unindexed", below) and refusal records (packages 'bintrans sign' refused
to sign because no packager signature released them, and why).

Audit records name their entry by UUID, so entries the log's key search
misses (Rekor indexes asynchronously) are fetched by UUID and reported as
"unindexed" (information, not a finding).

Rekor v2 and Sigsum (--log-kind rekor-v2 or sigsum, with the log flags of
'bintrans monitor'): the log's entries for the key are read from its tiles
or leaves as 'bintrans monitor' reads them (every entry: no index to miss
one). A Rekor v2 entry holds SHA-512 of the message and an Ed25519ph
signature over it, a Sigsum leaf SHA-256 of the package's sha256 bytes and
the leaf signature: each must be the key's signature over the record's
sha256, and is matched to its record by leaf hash (the record's uuid).

Examples:
  bintrans audit --audit-log audit.jsonl --pubkey-path repo.pub --log-url URL --log-key rekor.pub
  bintrans audit --audit-log audit.jsonl --pubkey-path repo.pub --log-kind rekor-v2 \
      --log-url https://log2025-1.rekor.sigstore.dev --log-key rekor-v2.pub \
      --log-origin log2025-1.rekor.sigstore.dev --repo-db core.db
  bintrans audit --audit-log audit.jsonl --repo-db core.db --repo-db extra.db --pubkey 'RW…' --json

Exit codes: 0 everything agrees; 1 a finding (a possible key compromise, a
broken chain, any mismatch) or a SECURITY ERROR from the log; 2 usage;
3 could not run (audit log or database unreadable, log unreachable).`
}

// auditReport is the --json output.
type auditReport struct {
	SchemaVersion int               `json:"schema_version"`
	AuditLog      string            `json:"audit_log"`
	LogURL        string            `json:"log_url"`
	KeyIDs        []string          `json:"key_ids"`
	Checkpoint    *monitor.TreeHead `json:"checkpoint"`
	// Logs are each log's part when several were read (Sigsum: every log
	// of the policy).
	Logs            []monitor.LogRun   `json:"logs,omitempty"`
	MonitorFindings []monitor.Finding  `json:"monitor_findings"`
	CrossCheck      *audit.CrossReport `json:"cross_check"`
	// PossibleKeyCompromise is true when a logged entry has no audit record.
	PossibleKeyCompromise bool `json:"possible_key_compromise"`
	Findings              int  `json:"findings"`
}

// Run cross-checks.
func (c *AuditCheckCmd) Run(g *Globals) error {
	dbs, err := c.databases()
	if err != nil {
		return err
	}
	if c.LogKind != "" && c.LogKind != "rekor-v1" {
		return c.runNote(g, dbs)
	}
	s, err := newMonitorSetup(&c.KeyFlags, &c.LogFlags, &c.NetFlags, c.StateDir)
	if err != nil {
		return err
	}
	ctx := g.Context()
	f, err := os.Open(c.AuditLog)
	if err != nil {
		return runErrorf(err, "check --audit-log", "%v", err)
	}
	read, err := audit.ReadAll(f)
	f.Close()
	if err != nil {
		return runErrorf(err, "", "reading %s: %v", c.AuditLog, err)
	}
	// Entries the records name, for the keys checked: asked for by UUID
	// too, in case the log's key search misses them.
	ids := map[string]bool{}
	for _, k := range s.keys {
		ids[k.KeyID()] = true
	}
	var extra []string
	for _, r := range read.Records {
		if ids[r.KeyID] && !r.IsRefusal() {
			extra = append(extra, r.UUID)
		}
	}
	mrep, err := monitor.Run(ctx, s.options(false, c.Tail, extra))
	if err != nil {
		return monitorVerdict(g, mrep, err)
	}
	in := audit.CrossCheckInput{Keys: s.keys, Audit: read, DBsGiven: len(dbs) > 0}
	for _, e := range mrep.AllEntries() {
		b, err := e.Body()
		if err != nil {
			return runErrorf(err, "", "monitor state entry %s: %v", e.UUID, err)
		}
		in.Entries = append(in.Entries, audit.LoggedEntry{UUID: e.UUID, LogIndex: e.LogIndex, IntegratedTime: e.IntegratedTime, Body: b, Indexed: e.Indexed})
	}
	return c.crossCheck(g, in, mrep, dbs)
}

// crossCheck runs the cross-check of the monitor's entries (in) with the
// audit log and the databases, and reports.
func (c *AuditCheckCmd) crossCheck(g *Globals, in audit.CrossCheckInput, mrep *monitor.Report, dbs []scan.DB) error {
	ctx := g.Context()
	if len(dbs) > 0 {
		hc, err := c.httpClient()
		if err != nil {
			return err
		}
		arts, err := scan.Load(ctx, dbs, scan.Options{HTTP: hc, MaxDBSize: c.MaxDBSize})
		if err != nil {
			return runErrorf(err, "", "%v", err)
		}
		for _, a := range arts {
			in.Released = append(in.Released, audit.ReleasedPackage{Repo: a.Repo, Arch: a.Arch, Filename: a.Filename, SHA256: a.SHA256})
		}
	}
	cr := audit.CrossCheck(in)
	rep := auditReport{SchemaVersion: 1, AuditLog: c.AuditLog, LogURL: mrep.LogURL, KeyIDs: mrep.KeyIDs, Checkpoint: mrep.Current, Logs: mrep.Logs,
		MonitorFindings: mrep.Findings, CrossCheck: cr, PossibleKeyCompromise: len(cr.Unaudited) > 0,
		Findings: cr.Findings() + len(mrep.Findings)}
	if c.JSON {
		if err := writeJSON(g.Stdout, rep); err != nil {
			return runErrorf(err, "", "writing the report: %v", err)
		}
	} else {
		printAuditReport(g.Stdout, &rep)
	}
	switch {
	case len(cr.Unaudited) > 0:
		return verificationFailed("someone signed with the transparency key outside 'bintrans sign': treat the key as compromised (revoke it, rotate, tell your users) unless each entry above is explained",
			"POSSIBLE KEY COMPROMISE: %d log entr%s signed by the transparency key %s no audit record", len(cr.Unaudited), plural(len(cr.Unaudited), "y", "ies"), plural(len(cr.Unaudited), "has", "have"))
	case rep.Findings > 0:
		return verificationFailed("see the report above: each finding names the entry, record or package and what disagrees",
			"audit: %d finding(s)", rep.Findings)
	}
	return nil
}

func (c *AuditCheckCmd) databases() ([]scan.DB, error) {
	return c.RepoFlags.databases("--repo-db", c.RepoDB)
}

// printAuditReport writes the human report. Every field that comes from
// the audit log, the log or a database is escaped (safetext): the audit
// log is the operator's, but its names come from repository databases.
func printAuditReport(w io.Writer, r *auditReport) {
	cr := r.CrossCheck
	L, M := safetext.Line, safetext.Message
	chain := "chain ok"
	if n := len(cr.ChainBreaks); n > 0 {
		chain = fmt.Sprintf("chain BROKEN (%d bad line%s)", n, plural(n, "", "s"))
	}
	fmt.Fprintf(w, "audit log %s: %d records for key %v, head %d:%s, %s\n", L(r.AuditLog), cr.Records, r.KeyIDs, cr.AuditHead.Records, cr.AuditHead.Hash, chain)
	switch {
	case len(r.Logs) > 0:
		for _, lr := range r.Logs {
			if lr.Current != nil {
				fmt.Fprintf(w, "log %s (%s): %d entries for the key, tree size %d (consistent with the monitor's previous tree head)\n", L(lr.URL), L(lr.Origin), lr.Total, lr.Current.Size)
			}
		}
	case r.Checkpoint != nil:
		fmt.Fprintf(w, "log %s: %d entries for the key, tree size %d (consistent with the monitor's previous checkpoint)\n", L(r.LogURL), cr.Entries, r.Checkpoint.Size)
	}
	if cr.Packages > 0 {
		fmt.Fprintf(w, "repository databases: %d packages\n", cr.Packages)
	}
	entries := func(title string, refs []audit.EntryRef) {
		if len(refs) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d):\n", title, len(refs))
		for _, e := range refs {
			switch {
			case e.SigsumChecksum != "":
				fmt.Fprintf(w, "  index %d  uuid %s  checksum %s  key id %s", e.LogIndex, L(e.UUID), L(e.SigsumChecksum), L(e.SigKeyID))
			case e.MessageSHA512 != "":
				fmt.Fprintf(w, "  index %d  uuid %s  sha512(message) %s  key id %s", e.LogIndex, L(e.UUID), L(e.MessageSHA512), L(e.SigKeyID))
			default:
				fmt.Fprintf(w, "  index %d  uuid %s  sha256(message) %s  key id %s", e.LogIndex, L(e.UUID), L(e.MessageSHA256), L(e.SigKeyID))
			}
			if e.Log != "" {
				fmt.Fprintf(w, "  log %s", L(e.Log))
			}
			if e.Note != "" {
				fmt.Fprintf(w, "  (%s)", M(e.Note))
			}
			fmt.Fprintln(w)
		}
	}
	records := func(title string, refs []audit.RecordRef) {
		if len(refs) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d):\n", title, len(refs))
		for _, rr := range refs {
			if rr.Refused != "" {
				fmt.Fprintf(w, "  line %d  %s/%s %s  sha256 %s: %s\n", rr.Line, L(rr.Repo), L(rr.Arch), L(rr.Filename), L(rr.SHA256), M(rr.Refused))
				continue
			}
			fmt.Fprintf(w, "  line %d  %s/%s %s  sha256 %s  index %d  uuid %s\n", rr.Line, L(rr.Repo), L(rr.Arch), L(rr.Filename), L(rr.SHA256), rr.LogIndex, L(rr.UUID))
		}
	}
	entries("POSSIBLE KEY COMPROMISE — log entries signed by the transparency key with no audit record", cr.Unaudited)
	entries("key-id variants of audited signatures (logged by anyone; rejected by clients)", cr.Variants)
	if len(cr.Mismatches) > 0 {
		fmt.Fprintf(w, "\nentries that disagree with their audit record (%d):\n", len(cr.Mismatches))
		for _, m := range cr.Mismatches {
			fmt.Fprintf(w, "  index %d (record line %d, %s): %s: log says %s, record says %s\n", m.Entry.LogIndex, m.Record.Line, L(m.Record.Filename), L(m.Field), M(m.Expected), M(m.Got))
		}
	}
	records("audit records with no log entry (the operator claims what the log does not show)", cr.RecordsWithoutEntry)
	records("audited entries whose package was never released", cr.Unreleased)
	records("audited entries with no packager signature: nothing shows that a packager released what the key signed (signed with --unsafe-trust-db, or before bintrans checked release signatures)", cr.NoReleaseSignature)
	if len(cr.ChainBreaks) > 0 {
		fmt.Fprintf(w, "\naudit chain breaks (%d):\n", len(cr.ChainBreaks))
		for _, b := range cr.ChainBreaks {
			fmt.Fprintf(w, "  %s\n", M(b.Error))
		}
	}
	if len(cr.PackagesWithoutEntry) > 0 {
		fmt.Fprintf(w, "\npackages in the databases with no log entry (%d):\n", len(cr.PackagesWithoutEntry))
		for _, p := range cr.PackagesWithoutEntry {
			fmt.Fprintf(w, "  %s/%s %s  sha256 %s\n", L(p.Repo), L(p.Arch), L(p.Filename), L(p.SHA256))
		}
	}
	if len(cr.StatementFindings) > 0 {
		fmt.Fprintf(w, "\nrepository statement findings (%d):\n", len(cr.StatementFindings))
		for _, f := range cr.StatementFindings {
			fmt.Fprintf(w, "  %s %s/%s (lines %v): %s\n", f.Kind, L(f.Repo), L(f.Arch), f.Lines, M(f.Detail))
		}
	}
	for _, f := range r.MonitorFindings {
		fmt.Fprintf(w, "\nlog finding %s: entry %d %s: %s\n", f.Kind, f.LogIndex, L(f.UUID), M(f.Detail))
	}
	if len(cr.Unindexed) > 0 {
		fmt.Fprintf(w, "\n(information) %d audited entr%s in the log but not listed by its key search\n", len(cr.Unindexed), plural(len(cr.Unindexed), "y is", "ies are"))
	}
	if len(cr.OtherLogCopies) > 0 {
		fmt.Fprintf(w, "\n(information) %d audited entr%s also logged in another log than the one its record names:\n", len(cr.OtherLogCopies), plural(len(cr.OtherLogCopies), "y", "ies"))
		for _, e := range cr.OtherLogCopies {
			fmt.Fprintf(w, "  %d %s: %s\n", e.LogIndex, L(e.UUID), M(e.Note))
		}
	}
	records("(information) packages bintrans sign refused to sign", cr.Refusals)
	printStatementHistory(w, cr.Statements)
	fmt.Fprintf(w, "\n%d of %d log entries match an audit record and a release; %d finding(s)\n", cr.Matched, cr.Entries, r.Findings)
}

// writeJSON prints v as indented JSON, escaped by safetext.JSON (the same
// values; no control, bidi or format character and no workflow command
// reaches a terminal or a CI log).
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(safetext.JSON(b), '\n'))
	return err
}

// maxStatementsListed is how many of a repository's newest statements the
// human report lists (a 24h heartbeat makes 365 a year; --json has all).
const maxStatementsListed = 10

// printStatementHistory lists the repository statements of the audit log
// per repository and architecture, the newest last.
func printStatementHistory(w io.Writer, hist []audit.StatementHistory) {
	if len(hist) == 0 {
		return
	}
	L := safetext.Line
	fmt.Fprintf(w, "\n(information) repository statements (%d repositor%s):\n", len(hist), plural(len(hist), "y", "ies"))
	for _, h := range hist {
		n := len(h.Statements)
		last := h.Statements[n-1]
		fmt.Fprintf(w, "  %s/%s: %d statement(s), newest counter %d issued %s, interval %ds\n", L(h.Repo), L(h.Arch), n, last.Counter, L(last.Issued), last.Interval)
		shown := h.Statements
		if n > maxStatementsListed {
			fmt.Fprintf(w, "    … %d earlier (--json lists every one)\n", n-maxStatementsListed)
			shown = shown[n-maxStatementsListed:]
		}
		for _, st := range shown {
			files := ""
			if st.FilesSHA256 != "" {
				files = "  files " + L(st.FilesSHA256)
			}
			fmt.Fprintf(w, "    counter %d  issued %s  db %s%s  line %d  index %d\n", st.Counter, L(st.Issued), L(st.DBSHA256), files, st.Line, st.LogIndex)
		}
	}
}
