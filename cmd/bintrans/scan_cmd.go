package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/term"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/progress"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/internal/scan"
	"github.com/bintrans/bintrans/verify"
)

// ScanCmd is `bintrans scan DB…`: every package of whole sync databases,
// checked in one engine batch, reported for CI.
type ScanCmd struct {
	PolicyFlags

	RepoFlags
	SignatureDir string `name:"signature-dir" placeholder:"DIR" help:"Local directory holding <package>.t and <package>.t.bundle (instead of --transparency-url)."`
	Download     bool   `name:"download" help:"Download and hash every package file (next to its database) instead of trusting the database's %SHA256SUM%; a file that differs from the database is a hash-mismatch."`
	MaxDBSize    int64  `name:"max-db-size" default:"268435456" placeholder:"BYTES" help:"Largest database accepted, as fetched (compressed)."`
	JSON         string `name:"json" placeholder:"FILE|-" help:"Write the JSON report (schema_version 2, docs/report-schema.json) to FILE, or to stdout with '-'."`
	JUnit        string `name:"junit" placeholder:"FILE" help:"Write a JUnit XML report to FILE: one test case per package."`
	GitHub       bool   `name:"github" help:"Print GitHub Actions annotations (::error per failed package) and append a Markdown job summary to $$GITHUB_STEP_SUMMARY when it is set."`
	AllowMissing int    `name:"allow-missing" default:"0" placeholder:"N" help:"Explicit opt-out: exit 0 even if up to N packages have no signature at all (missing-signature), e.g. packages added since the last signing run. They are still reported."`

	DBs []string `arg:"" optional:"" name:"db" help:"Sync database to scan: a path, file:// or http(s):// URL (core.db, extra.files, …)."`
}

// Help is the long help of `bintrans scan --help`.
func (ScanCmd) Help() string {
	return `Checks that every package of one or more pacman sync databases has a valid
transparency signature (<package>.t, signed by a --pubkey over the package's
sha256, trusted comment = file name) that is provably in the transparency log.

Signatures and proof bundles come from --transparency-url (http(s)://,
file://) or --signature-dir (a local directory). Packages are NOT downloaded:
the database's %SHA256SUM% is the message that is verified. --download hashes
the real files instead (streaming, --jobs at a time) and reports every file
that differs from its database entry.

Offline (--offline) every package needs a proof bundle, verified with the
pinned --log-key alone; the bundles' tree heads are compared with each other
and with the one stored in --state-dir (read only): the same tree size with
another root is a SECURITY ERROR (other sizes need the log). Online (the
default) every bundle's checkpoint and the one kept in --state-dir are
proven prefixes of the log's current tree (one consistency proof per
distinct checkpoint), and packages without a bundle are looked up in the
log: a log that rewrote its history is a SECURITY ERROR naming both tree
heads.

Each package ends in one status: ok, missing-signature, malformed-signature,
bad-signature, wrong-key, trusted-comment-mismatch, missing-bundle,
bundle-invalid, not-in-log, log-inconsistent, hash-mismatch (--download),
rebuild-unconfirmed (--required-rebuild-confirms) or unavailable. Reports
list packages by repository, architecture and file name:

  (default)      failed packages and a table of counts per status on stdout
                 (on stderr with --json -); a progress bar on a terminal
  --json FILE|-  versioned JSON report (docs/REPORTS.md, docs/report-schema.json)
  --junit FILE   JUnit XML, one test case per package
  --github       ::error annotations and a job summary ($GITHUB_STEP_SUMMARY)

The repository of a database given by path or URL is its file name without
.db/.files (and compression suffix); its architecture is each package's
%ARCH%. With --repo-url, both come from --repo-name and --architecture.
$SOURCE_DATE_EPOCH, when set, is the report's start time (reproducible
reports).

Examples:
  # a mirror's core and extra, signatures and bundles next to the packages
  bintrans scan --repo-url 'https://mirror.example.org/$repo/os/$arch' \
      --repo-name core --repo-name extra --architecture x86_64 \
      --transparency-url https://mirror.example.org/transparency \
      --pubkey RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3

  # CI: local database and signatures, offline, all three reports
  bintrans scan --offline --signature-dir out/transparency \
      --pubkey-path key.pub --log-url https://rekor.example.org --log-key rekor.pem \
      --json report.json --junit junit.xml --github repo/myrepo.db

  # a repository whose newest packages are not signed yet
  bintrans scan --allow-missing 5 --transparency-url https://… --pubkey RW… core.db

Exit codes: 0 every package ok (missing signatures within --allow-missing
tolerated); 1 at least one package failed (the log contradicting itself
included); 2 usage or configuration error; 3 could not run: a database
could not be read, the log is unreachable in online mode (or answers beyond
the run's memory budget), --deadline passed, a report could not be written.

` + logKindsHelp
}

// Run scans the databases.
func (c *ScanCmd) Run(g *Globals) error {
	ctx := g.Context()
	dbs, err := c.databases()
	if err != nil {
		return err
	}
	if c.AllowMissing < 0 {
		return usageErrorf("give 0 or more", "--allow-missing %d is negative", c.AllowMissing)
	}
	if c.MaxDBSize <= 0 {
		return usageErrorf("give a size in bytes", "--max-db-size must be positive")
	}
	if c.JUnit == "-" {
		return usageErrorf("give a file name, e.g. --junit junit.xml", "--junit needs a file (stdout carries the human or JSON report)")
	}
	if c.JSON == "-" && c.GitHub {
		return usageErrorf("write the JSON report to a file (--json report.json) when using --github", "--json - and --github both write to stdout")
	}
	if c.SignatureDir != "" {
		if c.TransparencyURL != "" {
			return usageErrorf("give one of them", "--signature-dir and --transparency-url both name where the signatures are")
		}
		if fi, err := os.Stat(c.SignatureDir); err != nil || !fi.IsDir() {
			return usageErrorf("give the directory that holds <package>.t and <package>.t.bundle", "--signature-dir %s is not a directory", c.SignatureDir)
		}
	}
	started := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return usageErrorf("set it to Unix seconds, or unset it", "SOURCE_DATE_EPOCH=%q is not a time", s)
		}
		started = time.Unix(n, 0)
	}

	e, err := c.open(ctx, c.SignatureDir)
	if err != nil {
		return err
	}
	defer e.Close()

	// Databases and packages can be large: their client has no overall
	// timeout (--timeout is per request to the log and signature server);
	// scan bounds each download with its own deadline, and a stalled
	// transfer still fails.
	nf := c.NetFlags
	nf.Timeout = -1
	dl, err := nf.httpClient()
	if err != nil {
		return err
	}
	arts, digests, err := scan.LoadDigests(ctx, dbs, scan.Options{HTTP: dl, MaxDBSize: c.MaxDBSize, Download: c.Download})
	if err != nil {
		var h hinter
		hint := ""
		if errors.As(err, &h) {
			hint = h.Hint()
		}
		return runErrorf(err, hint, "%v", err)
	}
	if len(arts) == 0 {
		fmt.Fprintln(g.Stderr, "bintrans: warning: the databases list no packages: nothing was verified")
	}

	// The databases' repository statements (CI keeps no state: age,
	// repository, architecture, signature and log only).
	stmts, err := c.checkStatements(ctx, g, e, dbs, digests)
	if err != nil {
		return err
	}

	bar := progress.New(g.Stderr, len(arts), "scanning")
	e.Verifier.Progress = func(int, int, verify.Result) { bar.Add(1) }
	results, runErr := e.Verifier.VerifyAll(ctx, arts)
	bar.Done()

	rep := ci.Report{Tool: "bintrans", Version: version, Started: started, Mode: ci.ModeOnline, Results: results, Databases: stmts.results()}
	if e.policy.Offline {
		rep.Mode = ci.ModeOffline
	} else if runErr == nil && rep.Failed() < len(results) {
		// At least one package was proven against the current tree.
		rep.Log = c.treeHead(g, e)
	}
	if err := c.writeReports(g, rep); err != nil {
		return err
	}
	if err := c.verdict(g, rep, runErr); err != nil {
		return err
	}
	return stmts.verdict(g, "")
}

// databases lists the databases of the positional arguments and of
// --repo-url, in the order given.
func (c *ScanCmd) databases() ([]scan.DB, error) {
	dbs, err := c.RepoFlags.databases("database", c.DBs)
	if err != nil {
		return nil, err
	}
	if len(dbs) == 0 {
		return nil, usageErrorf("give sync databases (bintrans scan core.db extra.db) or --repo-url with --repo-name", "no database to scan")
	}
	return dbs, nil
}

// treeHead is the log's tree head that the online batch was proven
// consistent with: the checkpoint the engine has just stored.
func (c *ScanCmd) treeHead(g *Globals, e *engine) *ci.LogInfo {
	if e.state == nil {
		return nil
	}
	text, err := e.state.CheckpointsFor(e.log.StateID).Load(g.Context())
	if err != nil || len(text) == 0 {
		return nil
	}
	cp, err := e.log.Verifier.VerifyCheckpoint(text)
	if err != nil {
		return nil
	}
	return &ci.LogInfo{URL: c.LogURL, TreeSize: cp.Size, RootHash: fmt.Sprintf("%x", cp.Root)}
}

// writeReports writes every report asked for. A report that cannot be
// written makes the run fail (exit 3): CI must not go green on a missing
// report.
func (c *ScanCmd) writeReports(g *Globals, rep ci.Report) error {
	if c.JSON != "" {
		if err := writeReportFile(g.Stdout, c.JSON, func(w io.Writer) error { return ci.WriteJSON(w, rep) }); err != nil {
			return runErrorf(err, "", "writing the JSON report: %v", err)
		}
	}
	if c.JUnit != "" {
		if err := writeReportFile(nil, c.JUnit, func(w io.Writer) error { return ci.WriteJUnit(w, rep) }); err != nil {
			return runErrorf(err, "", "writing the JUnit report: %v", err)
		}
	}
	if c.GitHub {
		if err := ci.WriteGitHub(g.Stdout, os.Getenv("GITHUB_STEP_SUMMARY"), rep); err != nil {
			return runErrorf(err, "", "writing the GitHub report: %v", err)
		}
	}
	human := g.Stdout
	if c.JSON == "-" {
		human = g.Stderr
	}
	if err := ci.WriteHuman(human, rep, colorOK(human)); err != nil {
		return runErrorf(err, "", "writing the summary: %v", err)
	}
	return nil
}

// writeReportFile writes a report to path ("-": stdout) through a temporary
// file renamed into place (durable.WriteFileFrom), so a reader never sees
// half a report and a failed write leaves the previous one.
func writeReportFile(stdout io.Writer, path string, write func(io.Writer) error) error {
	if path == "-" && stdout != nil {
		return write(stdout)
	}
	return durable.WriteFileFrom(path, 0o644, write)
}

// colorOK: ANSI colours only on a terminal, and never with NO_COLOR or
// TERM=dumb.
func colorOK(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	return os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// verdict turns the run into the exit code: 3 when the run had no
// trustworthy verdict (log unreachable online, interrupted), 1 when a
// package failed (missing signatures beyond --allow-missing), 0 otherwise.
func (c *ScanCmd) verdict(g *Globals, rep ci.Report, runErr error) error {
	var sec *verify.SecurityError
	var lu *verify.LogUnavailableError
	switch {
	case errors.As(runErr, &sec):
		// The evidence, in full: both signed tree heads.
		fmt.Fprintf(g.Stderr, "bintrans: %s\n", safetext.Text(sec.Error()))
		return verificationFailed("keep both tree heads above and report them: the log showed two histories",
			"SECURITY ERROR: the transparency log is inconsistent; %d of %d packages could not be trusted", rep.Failed(), len(rep.Results))
	case errors.As(runErr, &lu):
		return runErrorf(runErr, logUnavailableHint(runErr, "check --log-url and the network (--proxy); --offline verifies from proof bundles alone"), "%v", runErr)
	case runErr != nil:
		return runErrorf(runErr, "", "scan interrupted: %v", runErr)
	}
	failed, missing := 0, 0
	for _, r := range rep.Results {
		switch {
		case r.OK():
		case r.Status == verify.StatusMissingSignature:
			missing++
		default:
			failed++
		}
	}
	if missing > c.AllowMissing {
		failed += missing
		missing = 0
	}
	if failed > 0 {
		hint := "the packages above are not provably in the transparency log; see the reports for the evidence"
		if c.AllowMissing > 0 && missing == 0 {
			hint = fmt.Sprintf("more packages lack a signature than --allow-missing %d tolerates", c.AllowMissing)
		}
		return verificationFailed(hint, "%d of %d packages failed verification", failed, len(rep.Results))
	}
	if missing > 0 {
		fmt.Fprintf(g.Stderr, "bintrans: %d package(s) without a signature tolerated by --allow-missing %d\n", missing, c.AllowMissing)
	}
	return nil
}
