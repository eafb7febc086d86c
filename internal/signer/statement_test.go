package signer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// clock is a settable Options.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func withStatements(c *clock, interval time.Duration) func(*Options) {
	return func(o *Options) { o.Statements, o.StatementInterval, o.Now = true, interval, c.now }
}

// readStatement reads and verifies the statement published for the
// database at dbPath as a client does: by the database's hash, its .t (the
// trusted comment its path) and its bundle.
func (e *env) readStatement(dbPath string, files bool) *freshness.Statement {
	e.t.Helper()
	b, err := os.ReadFile(dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(e.sigDir, freshness.Path(freshness.DigestOf(b).SHA256)))
	if err != nil {
		e.t.Fatalf("no statement for %s: %v", dbPath, err)
	}
	st, err := freshness.Parse(text)
	if err != nil {
		e.t.Fatal(err)
	}
	named := st.DB
	if files {
		named = st.Files
	}
	if named != freshness.DigestOf(b) {
		e.t.Fatalf("the statement names %+v, the file is %+v", named, freshness.DigestOf(b))
	}
	path := freshness.Path(st.DB.SHA256) // a .files copy is signed under the db's name
	tb, err := os.ReadFile(filepath.Join(e.sigDir, path+verify.SignatureSuffix))
	if err != nil {
		e.t.Fatal(err)
	}
	bb, err := os.ReadFile(filepath.Join(e.sigDir, path+verify.BundleSuffix))
	if err != nil {
		e.t.Fatal(err)
	}
	ent, err := rekorv1.ParseBundle(bb)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := rekorv1.VerifyEntry(ent, tb, []verify.PublicKey{e.pub}, freshness.DigestOf(text).SHA256, path, e.log.key); err != nil {
		e.t.Fatalf("the statement does not verify: %v", err)
	}
	return st
}

func (e *env) dbPath(repo string) string {
	return filepath.Join(e.root, "repo", repo, "os", "x86_64", repo+".db")
}

func (e *env) statementRecords() []audit.Record {
	e.t.Helper()
	f, err := os.Open(e.auditF)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	if _, err := audit.Scan(f, func(_ int, r audit.Record) error {
		if r.IsStatement() {
			out = append(out, r)
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestStatementsIssuedAndHeartbeat: the first run issues counter 1 after
// the packages; a run within the interval issues nothing; after the
// interval the same database gets counter 2 (heartbeat); a new database
// gets counter 3; each is logged, audited and published under the
// database's hash, and the older one stays published.
func TestStatementsIssuedAndHeartbeat(t *testing.T) {
	e := newEnv(t, 5)
	ck := &clock{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	sum := e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.Failed != 0 || sum.Signed != 5 || sum.StatementsIssued != 1 || len(sum.Statements) != 1 {
		t.Fatalf("%+v", sum)
	}
	ss := sum.Statements[0]
	if ss.Action != "issued" || ss.Reason != "first statement" || ss.Counter != 1 || ss.LogIndex == nil || *ss.LogIndex != 5 {
		t.Fatalf("statement summary %+v", ss)
	}
	st := e.readStatement(e.dbPath("core"), false)
	if st.Repository != "core" || st.Architecture != "x86_64" || st.Counter != 1 || !st.Issued.Equal(ck.t) || st.Interval != time.Hour || !st.Files.IsZero() {
		t.Fatalf("statement %+v", st)
	}
	firstDB, _ := os.ReadFile(e.dbPath("core"))

	ck.t = ck.t.Add(59 * time.Minute)
	uploads := e.log.uploads
	sum = e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.StatementsIssued != 0 || sum.StatementsCurrent != 1 || sum.Statements[0].Action != "current" || e.log.uploads != uploads {
		t.Fatalf("within the interval: %+v", sum.Statements)
	}

	ck.t = ck.t.Add(time.Minute)
	sum = e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.StatementsIssued != 1 || sum.Statements[0].Reason != "heartbeat" || sum.Statements[0].Counter != 2 {
		t.Fatalf("heartbeat: %+v", sum.Statements)
	}
	if st := e.readStatement(e.dbPath("core"), false); st.Counter != 2 || !st.Issued.Equal(ck.t) {
		t.Fatalf("after the heartbeat: %+v", st)
	}

	// The operator publishes a new package, with a .files database.
	pkgs := append(e.pkgs, repodbtest.Packages(1, repodbtest.Options{Seed: 99})...)
	e.writeDB("core", "x86_64", pkgs)
	if err := os.WriteFile(filepath.Join(filepath.Dir(e.dbPath("core")), "core.files"), []byte("the files database"), 0o644); err != nil {
		t.Fatal(err)
	}
	ck.t = ck.t.Add(time.Minute)
	sum = e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.Failed != 0 || sum.Signed != 1 || sum.StatementsIssued != 1 || sum.Statements[0].Reason != "new database" || sum.Statements[0].Counter != 3 {
		t.Fatalf("new database: %+v %+v", sum, sum.Statements)
	}
	st = e.readStatement(e.dbPath("core"), false)
	if st.Counter != 3 || st.Files != freshness.DigestOf([]byte("the files database")) {
		t.Fatalf("new statement %+v", st)
	}
	if f := e.readStatement(filepath.Join(filepath.Dir(e.dbPath("core")), "core.files"), true); f.Counter != 3 {
		t.Fatalf("the .files copy: %+v", f)
	}
	// The old database's statement is kept.
	old, err := os.ReadFile(filepath.Join(e.sigDir, freshness.Path(freshness.DigestOf(firstDB).SHA256)))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := freshness.Parse(old); st == nil || st.Counter != 2 {
		t.Fatalf("old statement %q", old)
	}
	// Every statement has its audit record, in order.
	recs := e.statementRecords()
	if len(recs) != 3 || recs[0].Counter != 1 || recs[1].Counter != 2 || recs[2].Counter != 3 || recs[2].FilesSHA256 == "" {
		t.Fatalf("statement records %+v", recs)
	}
	if _, finds := audit.Statements(lineRecords(recs), time.Time{}); len(finds) != 0 {
		t.Errorf("findings in the signer's own statements: %+v", finds)
	}
}

func lineRecords(rs []audit.Record) []audit.LineRecord {
	var out []audit.LineRecord
	for i, r := range rs {
		out = append(out, audit.LineRecord{Line: i + 1, Record: r})
	}
	return out
}

// TestStatementCounterSurvivesLostState: with the state dir's counter file
// gone, the next counter is still above every one the audit log records;
// with the audit log gone too, above the published statement's. A
// repository put back to an older database gets a new statement above the
// newest (never the old one, which clients would refuse as a rollback).
func TestStatementCounterSurvivesLostState(t *testing.T) {
	e := newEnv(t, 3)
	ck := &clock{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	e.run([]string{"core"}, withStatements(ck, time.Hour))
	dbA, _ := os.ReadFile(e.dbPath("core"))
	sigA, _ := os.ReadFile(e.dbPath("core") + ".sig")
	e.writeDB("core", "x86_64", e.pkgs[:2])
	ck.t = ck.t.Add(time.Minute)
	if sum := e.run([]string{"core"}, withStatements(ck, time.Hour)); sum.Statements[0].Counter != 2 {
		t.Fatalf("%+v", sum.Statements)
	}

	if err := os.Remove(filepath.Join(e.state, stateSubdir, countersName)); err != nil {
		t.Fatal(err)
	}
	// Back to database A (published with counter 1).
	os.WriteFile(e.dbPath("core"), dbA, 0o644)
	os.WriteFile(e.dbPath("core")+".sig", sigA, 0o644)
	ck.t = ck.t.Add(time.Minute)
	sum := e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.StatementsIssued != 1 || sum.Statements[0].Counter != 3 || sum.Statements[0].Reason != "newer statement of another database" {
		t.Fatalf("back to A without the counter file: %+v", sum.Statements)
	}
	if st := e.readStatement(e.dbPath("core"), false); st.Counter != 3 {
		t.Fatalf("%+v", st)
	}

	// Counter file and audit log gone: the published statement is the floor.
	os.Remove(filepath.Join(e.state, stateSubdir, countersName))
	os.Remove(filepath.Join(e.state, stateSubdir, "audit-head.json"))
	os.Rename(e.auditF, e.auditF+".lost")
	ck.t = ck.t.Add(2 * time.Hour)
	sum = e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.StatementsIssued != 1 || sum.Statements[0].Counter != 4 {
		t.Fatalf("heartbeat with nothing but the published statement: %+v", sum.Statements)
	}
}

// TestStatementCrashBeforeUpload: the log is down when the statement is
// uploaded: its counter is stored (and the statement not published); the
// next run finishes the intent and then issues nothing new within the
// interval.
func TestStatementCrashBeforeUpload(t *testing.T) {
	e := newEnv(t, 2)
	ck := &clock{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	e.log.failAfter = 2 // the packages go in, the statement does not
	s := e.signer(withStatements(ck, time.Hour))
	sum, err := s.Run(context.Background(), Sources(e.repoURL, []string{"core"}, []string{"x86_64"}))
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.StatementsIssued != 0 || sum.Failed != 1 || sum.Failures[0].Stage != StageUpload || !strings.HasPrefix(sum.Failures[0].Filename, "statements/") {
		t.Fatalf("%+v %+v", sum, sum.Failures)
	}
	set, err := (&stateDir{dir: filepath.Join(e.state, stateSubdir)}).loadCounters()
	if err != nil || set.Get("core", "x86_64") == nil || set.Get("core", "x86_64").Counter != 1 {
		t.Fatalf("the counter was not stored before the upload: %v %+v", err, set.All())
	}
	if _, err := os.Stat(filepath.Join(e.sigDir, freshness.Path(freshness.DigestOf(mustRead(t, e.dbPath("core"))).SHA256))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a statement was published without its entry: %v", err)
	}
	e.log.failAfter = 0
	ck.t = ck.t.Add(time.Minute)
	sum = e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.Failed != 0 || sum.Recovered != 1 || sum.StatementsCurrent != 1 || sum.StatementsIssued != 0 {
		t.Fatalf("recovery: %+v %+v", sum, sum.Statements)
	}
	if st := e.readStatement(e.dbPath("core"), false); st.Counter != 1 {
		t.Fatalf("%+v", st)
	}
}

// TestStatementClockBehind: a clock behind the last statement's time
// issues nothing (clients would refuse it) and says why.
func TestStatementClockBehind(t *testing.T) {
	e := newEnv(t, 1)
	ck := &clock{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	e.run([]string{"core"}, withStatements(ck, time.Hour))
	ck.t = ck.t.Add(-2 * time.Hour)
	e.writeDB("core", "x86_64", append(e.pkgs, repodbtest.Packages(1, repodbtest.Options{Seed: 5})...))
	sum := e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.StatementsIssued != 0 || sum.Failed != 1 || sum.Failures[0].Stage != StageStatement || !strings.Contains(sum.Failures[0].Error, "clock") {
		t.Fatalf("%+v", sum.Failures)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStatementWithheld: a database holding a package no packager
// released gets no statement (the published one of the earlier database
// stands, and ages); once the package is gone, the next run issues one.
func TestStatementWithheld(t *testing.T) {
	e := newEnv(t, 3)
	ck := &clock{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	e.run([]string{"core"}, withStatements(ck, time.Hour))
	e.unsignedDB = true // package release: each package's own signature
	evil := repodbtest.Packages(1, repodbtest.Options{Seed: 66})
	e.writeDB("core", "x86_64", append(append([]repodb.Package(nil), e.pkgs...), evil...))
	ck.t = ck.t.Add(2 * time.Hour)
	uploads := e.log.uploads
	sum := e.run([]string{"core"}, withStatements(ck, time.Hour))
	if sum.Refused != 1 || sum.StatementsIssued != 0 || len(sum.Statements) != 1 || sum.Statements[0].Action != "withheld" || e.log.uploads != uploads {
		t.Fatalf("%+v %+v", sum, sum.Statements)
	}
	if _, err := os.Stat(filepath.Join(e.sigDir, freshness.Path(freshness.DigestOf(mustRead(t, e.dbPath("core"))).SHA256))); err == nil {
		t.Fatal("a statement names the database with the refused package")
	}
	e.writeDB("core", "x86_64", e.pkgs)
	ck.t = ck.t.Add(time.Minute)
	if sum := e.run([]string{"core"}, withStatements(ck, time.Hour)); sum.StatementsIssued != 1 || sum.Statements[0].Counter != 2 {
		t.Fatalf("%+v", sum.Statements)
	}
}
