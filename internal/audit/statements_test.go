package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/verify"
)

var stmtT0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// statementRecord is the record of statement counter n of core/x86_64 for
// the database with content db, issued at stmtT0 + n hours, interval 1h.
func statementRecord(t testing.TB, n uint64, db string, issued time.Time) Record {
	t.Helper()
	st := &freshness.Statement{Repository: "core", Architecture: "x86_64", DB: freshness.DigestOf([]byte(db)),
		Files: freshness.DigestOf([]byte(db + ".files")), Counter: n, Issued: issued, Interval: time.Hour}
	b, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r := StatementRecord(st, freshness.DigestOf(b).SHA256, "https://repo.example.org/core/os/x86_64/core.db")
	r.LogURL, r.LogIndex, r.UUID, r.IntegratedTime, r.KeyID, r.BintransVersion = "http://127.0.0.1:3000", int64(n), strings.Repeat("cd", 40), 1700000000, "471BB1BAE3F81BCC", "test"
	return r
}

// TestStatementRecords: the writer writes a statement's record as schema 3
// and a package's as schema 2; a reader rebuilds the statement from it.
func TestStatementRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Now = fixedClock
	pkg, err := w.Append(releasedRecord(0))
	if err != nil {
		t.Fatal(err)
	}
	sr := statementRecord(t, 1, "db one", stmtT0)
	st, err := w.Append(sr)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if pkg.SchemaVersion != 2 || st.SchemaVersion != 3 {
		t.Fatalf("schema versions %d, %d", pkg.SchemaVersion, st.SchemaVersion)
	}
	b, _ := os.ReadFile(path)
	ls := lines(b)
	if bytes.Contains(ls[0], []byte(`"kind"`)) || !bytes.Contains(ls[1], []byte(`"kind":"statement","db_size":6,"files_sha256":"`)) {
		t.Fatalf("lines:\n%s", b)
	}
	res, err := ReadAll(bytes.NewReader(b))
	if err != nil || len(res.Breaks) != 0 || len(res.Records) != 2 {
		t.Fatalf("%v %+v", err, res)
	}
	got, err := res.Records[1].Statement()
	if err != nil {
		t.Fatal(err)
	}
	text, _ := got.Marshal()
	if freshness.DigestOf(text).SHA256 != sr.SHA256 || got.Counter != 1 || !got.Issued.Equal(stmtT0) || got.Files.IsZero() {
		t.Fatalf("rebuilt statement %+v", got)
	}
	if _, err := res.Records[0].Statement(); err == nil {
		t.Error("a package record rebuilt as a statement")
	}
}

func TestStatementRecordsRefused(t *testing.T) {
	bad := map[string]func(*Record){
		"schema 2":             func(r *Record) { r.SchemaVersion = 2 },
		"other kind":           func(r *Record) { r.Kind = "heartbeat" },
		"no kind":              func(r *Record) { r.Kind = "" },
		"named by another db":  func(r *Record) { r.Filename = freshness.Path(strings.Repeat("12", 32)) },
		"package file name":    func(r *Record) { r.Filename = "core.db" },
		"sha256 of another":    func(r *Record) { r.SHA256 = strings.Repeat("34", 32) },
		"counter edited":       func(r *Record) { r.Counter++ },
		"issued edited":        func(r *Record) { r.Issued = "2026-12-01T00:00:01Z" },
		"issued not canonical": func(r *Record) { r.Issued = "2026-12-01T01:00:00+01:00" },
		"interval zero":        func(r *Record) { r.Interval = 0 },
		"with a package name":  func(r *Record) { r.Name, r.Version = "core", "1" },
		"with a release": func(r *Record) {
			r.ReleaseSig, r.ReleaseKey, r.ReleaseSigSHA256 = ReleaseDB, strings.Repeat("A1", 20), strings.Repeat("ef", 32)
		},
		"refused":              func(r *Record) { r.Refused = "no" },
		"no entry":             func(r *Record) { r.UUID = "" },
		"package with counter": func(r *Record) { *r = releasedRecord(1); r.Counter = 3 },
	}
	for name, edit := range bad {
		r := statementRecord(t, 2, "db two", stmtT0)
		r.SchemaVersion = SchemaVersion
		edit(&r)
		err := VerifyChain(bytes.NewReader(chain(t, testRecord(0), r)))
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Line != 2 || ce.Kind != KindMalformed {
			t.Errorf("%s: %v, want malformed at line 2", name, err)
		}
	}
	if err := VerifyChain(bytes.NewReader(chain(t, testRecord(0), statementRecord(t, 2, "db two", stmtT0)))); err != nil {
		t.Fatalf("the unedited record: %v", err)
	}
}

func TestStatementFindings(t *testing.T) {
	var recs []LineRecord
	add := func(n uint64, db string, issued time.Time) {
		recs = append(recs, LineRecord{Line: len(recs) + 1, Record: statementRecord(t, n, db, issued)})
	}
	h := time.Hour
	add(1, "a", stmtT0)
	add(2, "a", stmtT0.Add(h))                  // heartbeat
	add(3, "b", stmtT0.Add(2*h))                // a new db
	add(5, "b", stmtT0.Add(3*h))                // a counter skipped: fine
	add(4, "c", stmtT0.Add(4*h))                // backwards
	add(5, "d", stmtT0.Add(5*h))                // counter 5 again, another db
	add(6, "d", stmtT0.Add(8*h))                // 3h after the last: more than 1h + 30m
	add(7, "d", stmtT0.Add(8*h+89*time.Minute)) // 1h29m after: within 1h + 30m
	hist, finds := Statements(recs, time.Time{})
	if len(hist) != 1 || len(hist[0].Statements) != 8 || hist[0].Repo != "core" || hist[0].Arch != "x86_64" {
		t.Fatalf("history %+v", hist)
	}
	var kinds []string
	for _, f := range finds {
		kinds = append(kinds, fmt.Sprintf("%s:%v", f.Kind, f.Lines))
	}
	want := []string{"counter-backwards:[4 5]", "counter-reused:[4 6]", "gap:[6 7]"}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Errorf("findings %v, want %v\n%+v", kinds, want, finds)
	}
	// At the time of an audit, the newest statement is overdue: the
	// heartbeat stopped.
	last := stmtT0.Add(8*h + 89*time.Minute)
	if _, f := Statements(recs, last.Add(time.Hour)); len(f) != 3 {
		t.Errorf("1h after the newest statement: %+v", f)
	}
	_, f := Statements(recs, last.Add(2*h))
	if len(f) != 4 || f[3].Kind != FindingGap || !strings.Contains(f[3].Detail, "heartbeat stopped") {
		t.Errorf("2h after the newest statement: %+v", f)
	}
}

// TestCrossCheckStatements: a statement's entry is explained by its record
// (no release needed); its history and findings are in the report.
func TestCrossCheckStatements(t *testing.T) {
	f := newCC(t, 2)
	r := statementRecord(t, 1, "db", stmtT0)
	e := f.key.logged(t, r.SHA256, 300)
	r.UUID, r.LogIndex, r.KeyID = e.UUID, e.LogIndex, f.key.pub.KeyID()
	r2 := statementRecord(t, 1, "another db", stmtT0.Add(time.Minute)) // counter 1 again
	e2 := f.key.logged(t, r2.SHA256, 301)
	r2.UUID, r2.LogIndex, r2.KeyID = e2.UUID, e2.LogIndex, f.key.pub.KeyID()
	f.entries = append(f.entries, e, e2)
	f.recs = append(f.recs, LineRecord{Line: 3, Record: r}, LineRecord{Line: 4, Record: r2})
	rep := CrossCheck(CrossCheckInput{Keys: []verify.PublicKey{f.key.pub}, Entries: f.entries,
		Audit: &ReadResult{Records: f.recs}, Released: f.rel, DBsGiven: true})
	if rep.Matched != 4 || len(rep.Unreleased) != 0 || len(rep.NoReleaseSignature) != 0 || len(rep.Unaudited) != 0 {
		t.Fatalf("%+v", rep)
	}
	if len(rep.Statements) != 1 || len(rep.Statements[0].Statements) != 2 || rep.Statements[0].Statements[0].LogIndex != 300 {
		t.Errorf("statements %+v", rep.Statements)
	}
	if len(rep.StatementFindings) != 1 || rep.StatementFindings[0].Kind != FindingCounterReused || rep.Findings() != 1 {
		t.Errorf("findings %+v", rep.StatementFindings)
	}
	// Without its record, a statement's entry is a possible key compromise
	// like any other.
	f.recs = f.recs[:2]
	rep = CrossCheck(CrossCheckInput{Keys: []verify.PublicKey{f.key.pub}, Entries: f.entries, Audit: &ReadResult{Records: f.recs}})
	if len(rep.Unaudited) != 2 {
		t.Errorf("unaudited %+v", rep.Unaudited)
	}
}
