package ci

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
)

// TestDatabasesInReports: a refused sync database fails the report (ok
// false, a FAIL line, an ::error annotation, a JUnit failure), a database
// without a statement is a warning that does not, and every writer
// escapes the reason.
func TestDatabasesInReports(t *testing.T) {
	r := fixtureReport()
	r.Results = nil // no package: the databases alone decide
	if r.OK() || r.DatabasesFailed() != 1 {
		t.Fatalf("OK %v, %d failed", r.OK(), r.DatabasesFailed())
	}
	var doc JSONReport
	if err := json.Unmarshal(render(t, func(b *bytes.Buffer) error { return WriteJSON(b, r) }), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OK || doc.SchemaVersion != 2 || len(doc.Databases) != 3 || doc.Summary.Databases != 3 || doc.Summary.DatabasesFailed != 1 ||
		doc.Databases[1].Outcome != DBRefused || doc.Databases[0].Counter != 42 || doc.Databases[0].Issued != "2026-11-26T02:00:00Z" ||
		strings.ContainsAny(doc.Databases[1].Reason, "\n\x1b") {
		t.Fatalf("JSON %+v", doc)
	}
	human := string(render(t, func(b *bytes.Buffer) error { return WriteHuman(b, r, false) }))
	if strings.Count(human, "FAIL ") != 1 || !strings.Contains(human, "FAIL extra https://mirror.example/extra/os/x86_64/extra.db: statement refused: STALE") ||
		!strings.Contains(human, "WARN custom custom.db: statement unstated") || strings.Contains(human, "\x1b") {
		t.Fatalf("human:\n%s", human)
	}
	gh := string(render(t, func(b *bytes.Buffer) error { return WriteGitHub(b, "", r) }))
	if strings.Count(gh, "::error ") != 1 || strings.Count(gh, "::warning ") != 1 || !strings.Contains(gh, "1 of 3 sync databases refused") {
		t.Fatalf("github:\n%s", gh)
	}
	var x xSuites
	if err := xml.Unmarshal(render(t, func(b *bytes.Buffer) error { return WriteJUnit(b, r) }), &x); err != nil {
		t.Fatal(err)
	}
	if x.Tests != 3 || x.Failures != 1 || len(x.Suites) != 1 || x.Suites[0].Name != "sync databases" {
		t.Fatalf("junit %+v", x)
	}
	// A warning alone passes.
	r.Databases = r.Databases[2:]
	if !r.OK() {
		t.Fatal("an unstated database failed the report")
	}
}
