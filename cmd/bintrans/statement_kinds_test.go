package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/internal/witness"
)

// Repository statements on the tile-based logs: `sign --log-kind rekor-v2`
// and `--log-kind sigsum` issue the database's statement through the same
// log as its packages (its own entry by the transparency key, its proof
// beside it), and a client on that log kind checks it: check-dbs accepts
// statement 1, then statement 2 (a new .files database), refuses the
// transparency URL put back to statement 1 as a rollback, refuses a
// statement whose proof is another log's, and scan reports the statement.
func TestStatementsOnNoteLogs(t *testing.T) {
	t.Run("rekor-v2", func(t *testing.T) {
		s := testenv.RekorV2(t)
		r := newSignRepo(t, nRealPackages)
		logFlags := []string{"--log-kind", "rekor-v2", "--log-url", s.URL, "--log-read-url", s.ReadURL,
			"--log-key", s.KeyPath, "--log-origin", s.Origin}
		testStatementsOnNoteLog(t, r, audit.LogKindRekorV2, r.v2Args(s, s.KeyPath, "--json"), logFlags)
	})
	t.Run("sigsum", func(t *testing.T) {
		logPub, logPriv, _ := ed25519.GenerateKey(rand.Reader)
		ws := []*witnesstest.Witness{witnesstest.StartSigsum(t, logPub), witnesstest.StartSigsum(t, logPub)}
		var wl string
		for i, w := range ws {
			wl += w.SigsumPolicyLine("w"+string(rune('1'+i))) + "\n"
		}
		withURLs, err := witness.Parse([]byte(wl + "quorum none\n"))
		if err != nil {
			t.Fatal(err)
		}
		l, err := sigsumlog.New(logPriv, withURLs.Witnesses)
		if err != nil {
			t.Fatal(err)
		}
		srv := sigsumlog.Serve(t, l, 50*time.Millisecond)
		r := newSignRepo(t, nRealPackages)
		policy := filepath.Join(r.dir, "sigsum.policy")
		if err := os.WriteFile(policy, []byte(srv.PolicyLine()+"\n"+wl+"group g all w1 w2\nquorum g\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		logFlags := []string{"--log-kind", "sigsum", "--sigsum-policy", policy}
		signArgs := append([]string{"sign", "--repo-url", r.repoURL, "--repo-name", "core", "--architecture", "x86_64",
			"--signature-dir", r.sigDir, "--pubkey-path", r.pub, "--seckey-path", r.sec, "--keyring", r.keyring,
			"--audit-log", r.auditLog, "--state-dir", r.state, "--json"}, logFlags...)
		testStatementsOnNoteLog(t, r, audit.LogKindSigsum, signArgs, logFlags)
	})
}

func testStatementsOnNoteLog(t *testing.T, r *signRepo, kind string, signArgs, logFlags []string) {
	sign := func(what string) {
		t.Helper()
		res := signRunIn(t, signArgs...)
		if res.code != 0 {
			t.Fatalf("sign (%s): exit %d\n%s", what, res.code, res.stderr)
		}
		if strings.Contains(res.stderr, "no repository statements") {
			t.Errorf("sign (%s) still warns: %s", what, res.stderr)
		}
	}
	res := signRunIn(t, signArgs...)
	sum := r.summary(t, res)
	if res.code != 0 || sum.StatementsIssued != 1 || sum.Statements[0].Counter != 1 || sum.Statements[0].LogIndex == nil ||
		sum.AuditRecords != len(r.pkgs)+1 {
		t.Fatalf("sign: exit %d %+v\n%s", res.code, sum, res.stderr)
	}
	// The statement's audit record names the log.
	f, err := os.Open(r.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	stmts := 0
	if _, err := audit.Scan(f, func(_ int, rec audit.Record) error {
		if rec.IsStatement() {
			stmts++
			if rec.LogKind != kind || len(rec.UUID) != 64 || rec.Counter != 1 {
				t.Errorf("statement record: %+v", rec)
			}
		}
		return nil
	}); err != nil || stmts != 1 {
		t.Fatalf("audit log: %d statement records, %v", stmts, err)
	}
	f.Close()

	// A client with this repository's database as its sync database.
	repoDir := filepath.Join(r.dir, "core", "os", "x86_64")
	dbBytes, err := os.ReadFile(filepath.Join(repoDir, "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	pacdb := filepath.Join(r.dir, "pacdb")
	os.MkdirAll(filepath.Join(pacdb, "sync"), 0o755)
	if err := os.WriteFile(filepath.Join(pacdb, "sync", "core.db"), dbBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(r.dir, "pacman.conf")
	os.WriteFile(conf, []byte("[options]\nDBPath = "+pacdb+"/\nArchitecture = x86_64\n\n[core]\nServer = file://"+r.dir+"/$repo/os/$arch\n"), 0o644)
	empty := filepath.Join(r.dir, "bintrans.conf")
	os.WriteFile(empty, nil, 0o644)
	policy := append([]string{"--config", empty, "--pacman-conf", conf, "--pubkey-path", r.pub, "--transparency-url", r.sigDir,
		"--state-dir", filepath.Join(r.dir, "client-state")}, logFlags...)
	check := func() signRun {
		return checkDBsRun(t, append([]string{"check-dbs"}, policy...)...)
	}
	res = check()
	if res.code != 0 || !regexp.MustCompile(`(?m)^ok +\[core\] \S+/sync/core.db: statement 1 for core/x86_64`).MatchString(res.stdout) {
		t.Fatalf("check-dbs, statement 1: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// Statement 2: the .files database changed.
	sha := freshness.DigestOf(dbBytes).SHA256
	stmtDir := filepath.Join(r.sigDir, "statements")
	first := map[string][]byte{}
	for _, suf := range []string{".stmt", ".stmt.t", ".stmt.t.bundle"} {
		if first[suf], err = os.ReadFile(filepath.Join(stmtDir, sha+suf)); err != nil {
			t.Fatal(err)
		}
	}
	files := filepath.Join(repoDir, "core.files")
	fb, err := os.ReadFile(files)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(files) // a link to the .files archive: replace, do not write through
	if err := os.WriteFile(files, append(fb, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	res = signRunIn(t, signArgs...)
	sum = r.summary(t, res)
	if res.code != 0 || sum.StatementsIssued != 1 || sum.Statements[0].Counter != 2 || sum.Statements[0].Reason != "new files database" || sum.Signed != 0 {
		t.Fatalf("second run: exit %d %+v\n%s", res.code, sum.Statements, res.stderr)
	}
	res = check()
	if res.code != 0 || !strings.Contains(res.stdout, "statement 2 for core/x86_64") {
		t.Fatalf("check-dbs, statement 2: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// A re-run finds the statement current.
	sign("re-run")

	// The transparency URL put back to statement 1: a rollback.
	saved := map[string][]byte{}
	for suf, b := range first {
		p := filepath.Join(stmtDir, sha+suf)
		saved[suf], _ = os.ReadFile(p)
		os.WriteFile(p, b, 0o644)
	}
	res = check()
	if res.code != ExitFailed || !regexp.MustCompile(`(?m)^REFUSED +\[core\] .*ROLLBACK: .*accepted statement 2 .*has statement 1`).MatchString(res.stdout) {
		t.Fatalf("rollback: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// Statement 2 with statement 1's proof: not this statement's entry.
	os.WriteFile(filepath.Join(stmtDir, sha+".stmt"), saved[".stmt"], 0o644)
	os.WriteFile(filepath.Join(stmtDir, sha+".stmt.t"), saved[".stmt.t"], 0o644)
	res = check()
	if res.code != ExitFailed || !strings.Contains(res.stdout, "a forged or unlogged statement") {
		t.Fatalf("statement 2 with statement 1's proof: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	os.WriteFile(filepath.Join(stmtDir, sha+".stmt.t.bundle"), saved[".stmt.t.bundle"], 0o644)

	// CI: scan reports the statement.
	args := append([]string{"scan", "--config", empty, "--pubkey-path", r.pub, "--transparency-url", r.sigDir,
		"--state-dir", filepath.Join(r.dir, "scan-state"), "--json", "-"}, logFlags...)
	res = checkDBsRun(t, append(args, filepath.Join(repoDir, "core.db"))...)
	var rep ci.JSONReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("scan --json: %v\n%s%s", err, res.stdout, res.stderr)
	}
	if res.code != 0 || len(rep.Databases) != 1 || rep.Databases[0].Outcome != "ok" || rep.Databases[0].Counter != 2 || rep.Databases[0].LogIndex == nil {
		t.Fatalf("scan: exit %d %+v\n%s", res.code, rep.Databases, res.stderr)
	}
}
