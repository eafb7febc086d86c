package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/freshness"
)

// checkDBsRun runs the bintrans command line in-process.
func checkDBsRun(t *testing.T, args ...string) signRun {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return signRun{code, out.String(), errb.String()}
}

// TestCheckDBsHeartbeatRealRekor is the operator's heartbeat and the
// client's check without a transaction, with the real sign, the real
// Rekor and a pacman configuration whose sync database is the repository's:
// sign issues statement 1; check-dbs accepts it; a second sign run after
// --statement-interval (1m) re-issues the statement of the unchanged database
// (counter 2, same database), which check-dbs accepts; the transparency
// URL put back to statement 1 is a rollback (exit 1); a statement older
// than --max-db-age is stale (exit 1, with its age); doctor reports the
// database; --json is the report document; scan fails CI on the stale
// statement.
func TestCheckDBsHeartbeatRealRekor(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	res := signRunIn(t, r.args(r.logURL, "--json", "--statement-interval", "1m")...)
	if res.code != 0 {
		t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
	}
	if s := r.summary(t, res); s.StatementsIssued != 1 || s.Statements[0].Counter != 1 {
		t.Fatalf("first run's statements: %+v", s.Statements)
	}

	// pacman's configuration and its sync database: the repository's.
	dbBytes, err := os.ReadFile(filepath.Join(r.dir, "core", "os", "x86_64", "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	pacdb := filepath.Join(r.dir, "pacdb")
	os.MkdirAll(filepath.Join(pacdb, "sync"), 0o755)
	if err := os.WriteFile(filepath.Join(pacdb, "sync", "core.db"), dbBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(r.dir, "pacman.conf")
	os.WriteFile(conf, []byte("[options]\nDBPath = "+pacdb+"/\nArchitecture = x86_64\n\n[core]\nServer = file://"+r.dir+"/$repo/os/$arch\n\n[extra]\nServer = file://"+r.dir+"/$repo/os/$arch\n"), 0o644)
	empty := filepath.Join(r.dir, "bintrans.conf")
	os.WriteFile(empty, nil, 0o644)
	client := filepath.Join(r.dir, "client-state")
	policy := []string{"--config", empty, "--pacman-conf", conf, "--pubkey-path", r.pub, "--transparency-url", r.sigDir,
		"--log-url", r.logURL, "--log-key", r.logKey, "--state-dir", client}
	check := func(extra ...string) signRun {
		return checkDBsRun(t, append(append([]string{"check-dbs"}, policy...), extra...)...)
	}

	res = check()
	if res.code != 0 || !regexp.MustCompile(`(?m)^ok +\[core\] \S+/sync/core.db: statement 1 for core/x86_64, issued \d+s ago$`).MatchString(res.stdout) {
		t.Fatalf("check-dbs after the first statement: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "ok: 1 sync database(s) checked") || res.stderr != "" {
		t.Errorf("check-dbs: %q %q", res.stdout, res.stderr)
	}
	sha := freshness.DigestOf(dbBytes).SHA256
	stmtDir := filepath.Join(r.sigDir, "statements")
	first := map[string][]byte{}
	for _, suf := range []string{".stmt", ".stmt.t", ".stmt.t.bundle"} {
		b, err := os.ReadFile(filepath.Join(stmtDir, sha+suf))
		if err != nil {
			t.Fatal(err)
		}
		first[suf] = b
	}

	// The heartbeat: the same database, a new statement once the interval
	// (at least a minute: sign refuses less) passed.
	st1, err := freshness.Parse(first[".stmt"])
	if err != nil || st1.Counter != 1 || st1.Interval != time.Minute {
		t.Fatalf("the first statement: %+v %v", st1, err)
	}
	time.Sleep(time.Until(st1.Issued.Add(time.Minute + time.Second)))
	res = signRunIn(t, r.args(r.logURL, "--json", "--statement-interval", "1m")...)
	s := r.summary(t, res)
	if res.code != 0 || s.StatementsIssued != 1 || s.Statements[0].Counter != 2 || s.Statements[0].Reason != "heartbeat" || s.Signed != 0 {
		t.Fatalf("heartbeat run: exit %d %+v\n%s", res.code, s.Statements, res.stderr)
	}
	second, _ := os.ReadFile(filepath.Join(stmtDir, sha+".stmt"))
	st, err := freshness.Parse(second)
	if err != nil || st.Counter != 2 || st.DB.SHA256 != sha {
		t.Fatalf("the re-issued statement: %+v %v", st, err)
	}
	res = check("--json")
	var rep ci.JSONReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 0 {
		t.Fatalf("check-dbs --json: exit %d %v\n%s%s", res.code, err, res.stdout, res.stderr)
	}
	if !rep.OK || len(rep.Databases) != 1 || rep.Databases[0].Counter != 2 || rep.Databases[0].Outcome != "ok" ||
		rep.Databases[0].SHA256 != sha || rep.Databases[0].LogIndex == nil || rep.SchemaVersion != ci.SchemaVersion {
		t.Fatalf("check-dbs --json: %+v", rep)
	}

	// doctor says the same, and writes nothing.
	res = checkDBsRun(t, append([]string{"doctor"}, policy...)...)
	if res.code != 0 || !regexp.MustCompile(`(?m)^database: +ok +\[core\] .*statement 2 for core/x86_64`).MatchString(res.stdout) {
		t.Fatalf("doctor: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// The transparency URL put back to statement 1: this client accepted
	// statement 2 before.
	saved := map[string][]byte{}
	for suf, b := range first {
		p := filepath.Join(stmtDir, sha+suf)
		saved[suf], _ = os.ReadFile(p)
		os.WriteFile(p, b, 0o644)
	}
	res = check()
	if res.code != ExitFailed || !regexp.MustCompile(`(?m)^REFUSED +\[core\] .*ROLLBACK: \[core\] .*accepted statement 2 .*has statement 1`).MatchString(res.stdout) ||
		!strings.Contains(res.stderr, "bintrans: 1 sync database(s) refused") || !strings.Contains(res.stderr, "hint: ") {
		t.Fatalf("rollback: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for suf, b := range saved {
		os.WriteFile(filepath.Join(stmtDir, sha+suf), b, 0o644)
	}

	// Stale: the operator's heartbeat stopped.
	time.Sleep(1100 * time.Millisecond)
	res = check("--max-db-age", "1s")
	if res.code != ExitFailed || !regexp.MustCompile(`(?m)^REFUSED +\[core\] .*STALE: the statement for core/x86_64 \(counter 2\) was issued \d+s ago`).MatchString(res.stdout) {
		t.Fatalf("stale: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = checkDBsRun(t, append([]string{"doctor", "--max-db-age", "1s"}, policy...)...)
	if res.code != ExitFailed || !strings.Contains(res.stderr, "the next upgrade would be refused") {
		t.Fatalf("doctor, stale: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// CI: scan checks the database's statement (no state); an operator
	// whose heartbeat stopped fails the scan with a report entry.
	scan := func(extra ...string) (signRun, ci.JSONReport) {
		args := append([]string{"scan", "--config", empty, "--pubkey-path", r.pub, "--transparency-url", r.sigDir,
			"--log-url", r.logURL, "--log-key", r.logKey, "--state-dir", filepath.Join(r.dir, "scan-state"), "--json", "-"}, extra...)
		res := checkDBsRun(t, append(args, filepath.Join(r.dir, "core", "os", "x86_64", "core.db"))...)
		var rep ci.JSONReport
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("scan --json: %v\n%s%s", err, res.stdout, res.stderr)
		}
		return res, rep
	}
	res, rep = scan()
	if res.code != 0 || len(rep.Databases) != 1 || rep.Databases[0].Outcome != "ok" || rep.Databases[0].Counter != 2 {
		t.Fatalf("scan: exit %d %+v\n%s", res.code, rep.Databases, res.stderr)
	}
	res, rep = scan("--max-db-age", "1s")
	if res.code != ExitFailed || rep.OK || len(rep.Databases) != 1 || rep.Databases[0].Outcome != "refused" ||
		!strings.Contains(rep.Databases[0].Reason, "STALE: the statement for core/x86_64 (counter 2)") || rep.Summary.DatabasesFailed != 1 {
		t.Fatalf("scan, stale: exit %d %+v\n%s", res.code, rep.Databases, res.stderr)
	}

	// Usage errors exit 2; a configuration without sync databases 3.
	if res = check("--max-db-age", "-1h"); res.code != ExitUsage {
		t.Errorf("negative --max-db-age: exit %d %s", res.code, res.stderr)
	}
	os.Remove(filepath.Join(pacdb, "sync", "core.db"))
	if res = check(); res.code != ExitInternal || !strings.Contains(res.stderr, "no sync database to check") {
		t.Errorf("no databases: exit %d %s", res.code, res.stderr)
	}
}
