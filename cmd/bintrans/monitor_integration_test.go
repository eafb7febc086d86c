package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/monitor"
	"github.com/bintrans/bintrans/internal/signer"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// monitorCLI holds the commands of the monitor story (sign, audit,
// monitor), independent of how main.go assembles the CLI.
type monitorCLI struct {
	Globals
	Sign    SignCmd    `cmd:""`
	Audit   AuditCmd   `cmd:""`
	Monitor MonitorCmd `cmd:""`
}

func monRun(t *testing.T, args ...string) signRun {
	t.Helper()
	var out, errb bytes.Buffer
	var cli monitorCLI
	exit := -1
	parser, err := kong.New(&cli, kong.Name("bintrans"), kong.Writers(&out, &errb),
		kong.Exit(func(code int) { exit = code }), kong.Vars{"version": version, "default_log_url": DefaultLogURL})
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 {
		return signRun{exit, out.String(), errb.String()}
	}
	if err != nil {
		return signRun{reportError(&errb, usageError{err}), out.String(), errb.String()}
	}
	cli.Globals.ctx = context.Background()
	cli.Globals.Stdin, cli.Globals.Stdout, cli.Globals.Stderr = strings.NewReader(""), &out, &errb
	code := ExitOK
	if err := kctx.Run(&cli.Globals); err != nil {
		code = reportError(&errb, err)
	}
	return signRun{code, out.String(), errb.String()}
}

func (r *signRepo) monitorArgs(state string, extra ...string) []string {
	return append([]string{"monitor", "--pubkey-path", r.pub, "--log-url", r.logURL, "--log-key", r.logKey, "--state-dir", state}, extra...)
}

func (r *signRepo) auditArgs(state string, extra ...string) []string {
	return append([]string{"audit", "--audit-log", r.auditLog, "--pubkey-path", r.pub, "--log-url", r.logURL, "--log-key", r.logKey,
		"--state-dir", state, "--repo-db", filepath.Join(r.dir, "core", "os", "x86_64", "core.db")}, extra...)
}

func monitorReport(t *testing.T, res signRun) monitor.Report {
	t.Helper()
	var rep monitor.Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("monitor --json: %v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	return rep
}

func auditJSON(t *testing.T, res signRun) auditReport {
	t.Helper()
	var rep auditReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("audit --json: %v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	return rep
}

// bundles returns the log entries of every published bundle, by leaf hash.
func (r *signRepo) bundles(t *testing.T) map[string]*rekorv1.Entry {
	t.Helper()
	out := map[string]*rekorv1.Entry{}
	ms, _ := filepath.Glob(filepath.Join(r.sigDir, "*"+verify.BundleSuffix))
	stmts, _ := filepath.Glob(filepath.Join(r.sigDir, "statements", "*"+verify.BundleSuffix)) // the repository statements
	for _, m := range append(ms, stmts...) {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		e, err := rekorv1.ParseBundle(b)
		if err != nil {
			t.Fatal(err)
		}
		out[rekorv1.LeafHash(e.Body)] = e
	}
	return out
}

// sameEntries asserts that the monitor reported exactly want, each once,
// with the log's index and message hash.
func sameEntries(t *testing.T, got []monitor.Entry, want map[string]*rekorv1.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("monitor reported %d entries, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, e := range got {
		leaf := e.UUID[len(e.UUID)-64:]
		w, ok := want[leaf]
		switch {
		case seen[leaf]:
			t.Errorf("entry %d reported twice", e.LogIndex)
		case !ok:
			t.Errorf("entry %d %s reported but not expected", e.LogIndex, e.UUID)
		case w.LogIndex != e.LogIndex:
			t.Errorf("entry %s: index %d, the bundle says %d", e.UUID, e.LogIndex, w.LogIndex)
		}
		seen[leaf] = true
	}
	for leaf, w := range want {
		if !seen[leaf] {
			t.Errorf("entry %d (%s) not reported", w.LogIndex, leaf)
		}
	}
}

// TestMonitorAuditRealRekor is the auditor's story on the real Rekor, with
// a fresh transparency key (the stack is shared: entries are counted by key,
// never by tree size); every signing run also logs the database's
// repository statement (one entry more per run here):
// (1) monitor lists exactly the signed entries (200 + 1: 21 retrieve batches);
// audit agrees with the audit log and the db; (4) a second signing run adds
// packages: monitor reports only those, consistent with its stored tree
// head; (2) a signature uploaded outside bintrans sign is a possible key
// compromise, a key-id variant is flagged; (3) an edited audit record
// breaks the chain, reported by audit.
func TestMonitorAuditRealRekor(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	if res := signRunIn(t, r.args(r.logURL, "--json")...); res.code != 0 {
		t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
	}
	r.logEntriesForKey(t, nRealPackages+1) // the index is written asynchronously
	state := filepath.Join(t.TempDir(), "monitor")

	// (1)
	res := monRun(t, r.monitorArgs(state, "--json")...)
	if res.code != 0 {
		t.Fatalf("monitor: exit %d\n%s", res.code, res.stderr)
	}
	rep := monitorReport(t, res)
	want := r.bundles(t)
	sameEntries(t, rep.Entries, want)
	if rep.New != nRealPackages+1 || rep.Total != nRealPackages+1 || len(rep.Findings) != 0 || rep.Previous != nil {
		t.Errorf("first run: new %d total %d findings %v previous %v", rep.New, rep.Total, rep.Findings, rep.Previous)
	}
	shaOf := map[string]string{}
	for _, p := range r.pkgs {
		shaOf[p.SHA256Sum] = p.Filename
	}
	stmtTexts, _ := filepath.Glob(filepath.Join(r.sigDir, "statements", "*.stmt"))
	for _, st := range stmtTexts {
		b, _ := os.ReadFile(st)
		sum := sha256.Sum256(b)
		shaOf[hex.EncodeToString(sum[:])] = st
	}
	for _, e := range rep.Entries {
		found := false
		for sha := range shaOf {
			if s := sha256.Sum256([]byte(sha)); hex.EncodeToString(s[:]) == e.MessageSHA256 {
				found = true
			}
		}
		if !found {
			t.Errorf("entry %d: message hash %s is no package's or statement's", e.LogIndex, e.MessageSHA256)
		}
	}
	res = monRun(t, r.auditArgs(state, "--json")...)
	arep := auditJSON(t, res)
	if res.code != 0 || arep.CrossCheck.Matched != nRealPackages+1 || arep.Findings != 0 || arep.PossibleKeyCompromise ||
		len(arep.CrossCheck.Statements) != 1 || len(arep.CrossCheck.Statements[0].Statements) != 1 {
		t.Fatalf("audit of a clean repo: exit %d %+v\n%s", res.code, arep.CrossCheck, res.stderr)
	}

	// (4) New packages, signed by a second run.
	repoDir := filepath.Join(r.dir, "core", "os", "x86_64")
	var paths []string
	for i := range 3 {
		paths = append(paths, testenv.BuildPackage(t, repoDir, testenv.Pkg{Name: fmt.Sprintf("monitortest-%d", i), Version: "1.0-1", Arch: "x86_64",
			Files: map[string]string{fmt.Sprintf("usr/share/monitortest/%d", i): "x\n"}}))
	}
	r.packager.RepoAddSign(t, filepath.Join(repoDir, "core.db.tar.gz"), paths...) // the real repo-add --sign
	before := r.bundles(t)
	if res := signRunIn(t, r.args(r.logURL, "--json")...); res.code != 0 {
		t.Fatalf("second sign: exit %d\n%s", res.code, res.stderr)
	}
	r.logEntriesForKey(t, nRealPackages+5)
	added := map[string]*rekorv1.Entry{}
	for leaf, e := range r.bundles(t) {
		if before[leaf] == nil {
			added[leaf] = e
		}
	}
	res = monRun(t, r.monitorArgs(state, "--json")...)
	rep2 := monitorReport(t, res)
	// The stack is shared with concurrent tests: the checkpoint the first run
	// stored may be newer than the one it reported (a proof against a later
	// tree), never older; and the log only grows.
	if res.code != 0 || rep2.New != 4 || rep2.Total != nRealPackages+5 || rep2.Previous == nil || rep2.Previous.Size < rep.Current.Size || rep2.Current.Size < rep2.Previous.Size {
		t.Fatalf("second monitor run: exit %d new %d total %d previous %+v\n%s", res.code, rep2.New, rep2.Total, rep2.Previous, res.stderr)
	}
	sameEntries(t, rep2.Entries, added)
	// Human output of a run with nothing new.
	res = monRun(t, r.monitorArgs(state)...)
	if res.code != 0 || !strings.Contains(res.stdout, "consistent with the checkpoint of the previous run") ||
		!strings.Contains(res.stdout, fmt.Sprintf("0 entries new, %d known", nRealPackages+5)) {
		t.Errorf("third run: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// The audit's human report lists the repository's statements over
	// time: the first run's and the second's (a new database).
	res = monRun(t, r.auditArgs(state)...)
	if res.code != 0 || !strings.Contains(res.stdout, "(information) repository statements (1 repository):") ||
		!regexp.MustCompile(`(?m)^  core/x86_64: 2 statement\(s\), newest counter 2 issued \S+Z, interval 86400s$`).MatchString(res.stdout) ||
		!regexp.MustCompile(`(?m)^    counter 1  issued \S+Z  db [0-9a-f]{64}(  files [0-9a-f]{64})?  line \d+  index \d+\n    counter 2 `).MatchString(res.stdout) {
		t.Errorf("audit's statements: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// (2) The key used outside bintrans sign, and a key-id variant.
	sk, err := signer.ReadSecretKey(r.sec, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubFile, _ := os.ReadFile(r.pub)
	lc, err := rekorv1.New(r.logURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	evilSHA := strings.Repeat("e", 64)
	evilT, err := verify.SignPackage(sk, evilSHA, "evil-1.0-1-x86_64.pkg.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := lc.Upload(context.Background(), evilT, pubFile, []byte(evilSHA))
	if err != nil {
		t.Fatal(err)
	}
	p := r.pkgs[7]
	origT, _ := os.ReadFile(filepath.Join(r.sigDir, p.Filename+verify.SignatureSuffix))
	varT := withKeyID(t, origT)
	variant, err := lc.Upload(context.Background(), varT, pubFile, []byte(p.SHA256Sum))
	if err != nil {
		t.Fatalf("Rekor refused a key-id variant (it does not compare key ids, go-api-notes §1): %v", err)
	}
	r.logEntriesForKey(t, nRealPackages+7)
	// --tail: the first --tail run reads the whole log by index (the runs
	// before it read nothing that way), every leaf proven against the
	// log's root; Rekor indexed both new entries, so nothing more is found.
	res = monRun(t, r.monitorArgs(state, "--json", "--tail")...)
	rep3 := monitorReport(t, res)
	if res.code != ExitFailed || rep3.New != 2 || len(rep3.Findings) != 1 || rep3.Findings[0].Kind != monitor.FindingKeyIDMismatch || rep3.Findings[0].UUID != variant.UUID {
		t.Errorf("monitor after outside uploads: exit %d new %d findings %+v\n%s", res.code, rep3.New, rep3.Findings, res.stderr)
	}
	if rep3.Tail == nil || !rep3.Tail.Proven || rep3.Tail.From != 0 || rep3.Stats.Tailed != rep3.Tail.To || rep3.TailedSize != rep3.Tail.To || rep3.Tail.To > rep3.Current.Size {
		t.Errorf("first --tail run: span %+v, tailed %d, proven prefix %d, tree %d", rep3.Tail, rep3.Stats.Tailed, rep3.TailedSize, rep3.Current.Size)
	}
	// The next --tail run reads only what was appended since.
	res = monRun(t, r.monitorArgs(state, "--json", "--tail")...)
	rep4 := monitorReport(t, res)
	if rep4.Tail == nil || !rep4.Tail.Proven || rep4.Tail.From != rep3.Tail.To || rep4.New != 0 {
		t.Errorf("second --tail run: span %+v after %+v, new %d\n%s", rep4.Tail, rep3.Tail, rep4.New, res.stderr)
	}
	res = monRun(t, r.auditArgs(state, "--json")...)
	arep = auditJSON(t, res)
	cr := arep.CrossCheck
	if res.code != ExitFailed || !arep.PossibleKeyCompromise || len(cr.Unaudited) != 1 || cr.Unaudited[0].UUID != evil.UUID ||
		len(cr.Variants) != 1 || cr.Variants[0].UUID != variant.UUID || cr.Matched != nRealPackages+5 {
		t.Errorf("audit after outside uploads: exit %d %+v", res.code, cr)
	}
	if !strings.Contains(res.stderr, "bintrans: POSSIBLE KEY COMPROMISE: 1 log entry signed by the transparency key has no audit record") {
		t.Errorf("not loud enough:\n%s", res.stderr)
	}
	res = monRun(t, r.auditArgs(state)...)
	if res.code != ExitFailed || !strings.Contains(res.stdout, "POSSIBLE KEY COMPROMISE") || !strings.Contains(res.stdout, evil.UUID) {
		t.Errorf("human audit report:\n%s\n%s", res.stdout, res.stderr)
	}

	// (3) An audit record edited after the fact.
	b, _ := os.ReadFile(r.auditLog)
	ls := bytes.SplitAfter(b, []byte("\n"))
	var rec audit.Record
	json.Unmarshal(ls[6], &rec)
	ls[6] = bytes.Replace(ls[6], []byte(`"filename":"`+rec.Filename+`"`), []byte(`"filename":"x`+rec.Filename+`"`), 1)
	os.WriteFile(r.auditLog, bytes.Join(ls, nil), 0o644)
	res = monRun(t, r.auditArgs(state, "--json")...)
	arep = auditJSON(t, res)
	cr = arep.CrossCheck
	if res.code != ExitFailed || len(cr.ChainBreaks) != 1 || cr.ChainBreaks[0].Line != 8 || cr.ChainBreaks[0].Kind != string(audit.KindPrevMismatch) {
		t.Errorf("audit after an edit: exit %d breaks %+v", res.code, cr.ChainBreaks)
	}
	// The edited record names a file no db releases under that name.
	if len(cr.Mismatches) != 1 || cr.Mismatches[0].Field != "filename" || cr.Mismatches[0].Record.Line != 7 {
		t.Errorf("mismatches %+v", cr.Mismatches)
	}
}

// withKeyID returns the `.t` t with another key id in its signature line:
// what anyone can derive from a published signature.
func withKeyID(t *testing.T, tb []byte) []byte {
	t.Helper()
	ls := strings.Split(string(tb), "\n")
	line, err := base64.StdEncoding.DecodeString(ls[1])
	if err != nil || len(line) != 74 {
		t.Fatalf("sig line: %v", err)
	}
	line[2] ^= 0x5a
	ls[1] = base64.StdEncoding.EncodeToString(line)
	return []byte(strings.Join(ls, "\n"))
}

// (5) A lying log through the CLI: after a verified run, the log forks
// its history: SECURITY ERROR with both tree heads, exit 1, state kept.
func TestMonitorCLILyingLog(t *testing.T) {
	l := fakelog.New(t)
	dir := t.TempDir()
	logKey := filepath.Join(dir, "log.pem")
	os.WriteFile(logKey, l.KeyPEM, 0o644)
	sk, pub := fakelogKey(t)
	pubPath := filepath.Join(dir, "key.pub")
	os.WriteFile(pubPath, pub.File(), 0o644)
	for i := range 15 {
		sha := fmt.Sprintf("%064x", i+1)
		tb, err := verify.SignPackage(sk, sha, fmt.Sprintf("p%d.pkg.tar.zst", i))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := verify.ParseSignature(tb)
		l.Add(rekorv1.CanonicalBody(s, pub, []byte(sha)))
	}
	state := filepath.Join(dir, "state")
	args := []string{"monitor", "--pubkey-path", pubPath, "--log-url", l.URL, "--log-key", logKey, "--state-dir", state}
	res := monRun(t, args...)
	if res.code != 0 || !strings.Contains(res.stdout, "15 entries new, 15 known") {
		t.Fatalf("first run: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	stored := string(l.Checkpoint())
	files, _ := filepath.Glob(filepath.Join(state, "monitor-*.json"))
	if len(files) != 1 {
		t.Fatalf("state files %v", files)
	}
	before, _ := os.ReadFile(files[0])
	l.Fork(10)
	res = monRun(t, args...)
	if res.code != ExitFailed || !strings.Contains(res.stderr, "SECURITY ERROR") || !strings.Contains(res.stderr, "earlier signed tree head:") {
		t.Fatalf("forked log: exit %d\n%s", res.code, res.stderr)
	}
	// Both tree heads, in full: the stored one (size 15) and the fork's (16).
	storedLines := strings.Split(strings.TrimSpace(stored), "\n")
	if !strings.Contains(res.stderr, "\t"+storedLines[1]+"\n\t"+storedLines[2]) || !strings.Contains(res.stderr, "\t16\n") {
		t.Errorf("the tree heads are not both in the message:\n%s", res.stderr)
	}
	after, _ := os.ReadFile(files[0])
	if !bytes.Equal(before, after) {
		t.Errorf("state changed by a run against a forked log")
	}
	// A rollback too.
	l.SetLie(fakelog.Honest)
	l.RollbackTo(12)
	if res := monRun(t, args...); res.code != ExitFailed || !strings.Contains(res.stderr, "ROLLBACK") {
		t.Errorf("rolled-back log: exit %d\n%s", res.code, res.stderr)
	}
	// Honest again: fine.
	l.SetLie(fakelog.Honest)
	if res := monRun(t, args...); res.code != 0 {
		t.Errorf("honest again: exit %d\n%s", res.code, res.stderr)
	}
	// Usage errors: no --log-key for a non-default log, bad interval.
	if res := monRun(t, "monitor", "--pubkey-path", pubPath, "--log-url", l.URL, "--state-dir", state); res.code != ExitUsage {
		t.Errorf("no log key: exit %d", res.code)
	}
	if res := monRun(t, append(args, "--follow", "--interval", "1ms")...); res.code != ExitUsage {
		t.Errorf("--interval 1ms: exit %d", res.code)
	}
	// The log down: could not run.
	l.SetLie(fakelog.LieHTML502)
	if res := monRun(t, append(args, "--timeout", "2s")...); res.code != ExitInternal {
		t.Errorf("log down: exit %d\n%s", res.code, res.stderr)
	}
}

// fakelogKey is a fresh random minisign key pair.
func fakelogKey(t testing.TB) (*minisign.PrivateKey, verify.PublicKey) {
	t.Helper()
	_, edsk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	rand.Read(sk.KeyId[:])
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return sk, pk
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		fails    int
		want     time.Duration
	}{
		{5 * time.Minute, 0, 5 * time.Minute},
		{5 * time.Minute, 1, 10 * time.Minute},
		{5 * time.Minute, 3, 40 * time.Minute},
		{5 * time.Minute, 4, time.Hour},
		{5 * time.Minute, 1000, time.Hour},
		{2 * time.Hour, 3, 2 * time.Hour},
	} {
		if got := backoff(tc.interval, tc.fails); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.interval, tc.fails, got, tc.want)
		}
	}
}
