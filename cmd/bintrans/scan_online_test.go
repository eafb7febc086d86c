package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// onlineRepo is a repository served over HTTP (database, .t files,
// bundles) whose signatures are logged in a fake log with real proofs.
type onlineRepo struct {
	log     *fakelog.Log
	dir     string // served at srv.URL
	srv     *httptest.Server
	pkgs    []repodb.Package
	args    []string // the scan flags every test passes
	state   string
	noBndle string // the package published without a bundle
}

func newOnlineRepo(t *testing.T, n int) *onlineRepo {
	t.Helper()
	r := &onlineRepo{log: fakelog.New(t), dir: t.TempDir(), state: filepath.Join(t.TempDir(), "state")}
	key := newScanKey(t, 1)
	r.pkgs = repodbtest.Packages(n, repodbtest.Options{Seed: 7})
	for i, p := range r.pkgs {
		s := signAndLog(t, r.log, key, p.SHA256Sum, p.Filename)
		// One package has only its .t: the engine finds it in the log.
		withBundle := i != n/2
		if !withBundle {
			r.noBndle = p.Filename
		}
		writeSigned(t, filepath.Join(r.dir, "sigs"), p.Filename, s, withBundle)
	}
	var db bytes.Buffer
	if err := repodbtest.Write(&db, r.pkgs, repodbtest.Options{Compression: "zstd"}); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(r.dir, "extra", "os", "x86_64", "extra.db"), db.Bytes())
	keys := t.TempDir()
	writeTestFile(t, filepath.Join(keys, "transparency.pub"), key.pk.File())
	writeTestFile(t, filepath.Join(keys, "rekor.pem"), r.log.KeyPEM)
	r.srv = httptest.NewServer(http.FileServer(http.Dir(r.dir)))
	t.Cleanup(r.srv.Close)
	r.args = []string{"scan", "--log-url", r.log.URL, "--log-key", filepath.Join(keys, "rekor.pem"),
		"--pubkey-path", filepath.Join(keys, "transparency.pub"), "--state-dir", r.state,
		"--transparency-url", r.srv.URL + "/sigs", "--timeout", "5s"}
	return r
}

// scan runs bintrans scan in-process with the repository's flags plus
// extra, the JSON report written to a file and decoded.
func (r *onlineRepo) scan(t *testing.T, extra ...string) (code int, rep ci.JSONReport, stdout, stderr string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	args := append(append(append([]string(nil), r.args...), "--json", out), extra...)
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(""), &o, &e)
	if b, err := os.ReadFile(out); err == nil {
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("report: %v\n%s", err, b)
		}
	}
	return code, rep, o.String(), e.String()
}

func statusCounts(rep ci.JSONReport) map[string]int {
	m := map[string]int{}
	for _, p := range rep.Packages {
		m[p.Status]++
	}
	return m
}

// TestScanOnline: bundles re-proven against the log's current tree, a
// bundle-less package found in the log, the tree head in the report and in
// the state dir; then a log that rolled back or forked is a SECURITY ERROR
// (exit 1, every package log-inconsistent); an unreachable log is exit 3
// with unavailable packages, reports still written.
func TestScanOnline(t *testing.T) {
	r := newOnlineRepo(t, 40)
	dbURL := r.srv.URL + "/extra/os/x86_64/extra.db"

	code, rep, stdout, stderr := r.scan(t, dbURL)
	if code != ExitOK {
		t.Fatalf("honest log: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if rep.Mode != ci.ModeOnline || rep.Log == nil || rep.Log.TreeSize != r.log.Size() || rep.Log.URL != r.log.URL {
		t.Fatalf("report mode %q log %+v, want online at tree size %d", rep.Mode, rep.Log, r.log.Size())
	}
	if got := statusCounts(rep); got["ok"] != 40 || rep.Summary.Total != 40 {
		t.Fatalf("statuses %v, want 40 ok", got)
	}
	for _, p := range rep.Packages {
		if p.Repo != "extra" || p.LogIndex == nil || p.UUID == "" {
			t.Fatalf("package %+v: want repo extra and a log entry", p)
		}
		if p.Filename == r.noBndle && *p.LogIndex != int64(20) {
			t.Errorf("bundle-less package at log index %d, want 20", *p.LogIndex)
		}
	}
	if fi, err := os.ReadDir(r.state); err != nil || len(fi) == 0 {
		t.Fatalf("state dir after an online run: %v %v", fi, err)
	}

	// The log grows: the next run proves consistency with the stored head.
	r.log.Add([]byte(`{"kind":"other entry"}`))
	if code, rep, _, stderr := r.scan(t, dbURL); code != ExitOK || rep.Log.TreeSize != r.log.Size() {
		t.Fatalf("grown log: exit %d, tree %+v\n%s", code, rep.Log, stderr)
	}

	// Rollback to before the stored checkpoint.
	r.log.RollbackTo(r.log.Size() - 1)
	code, rep, _, stderr = r.scan(t, dbURL)
	if code != ExitFailed {
		t.Fatalf("rolled-back log: exit %d, want %d\n%s", code, ExitFailed, stderr)
	}
	if got := statusCounts(rep); got[string(verify.StatusLogInconsistent)] == 0 || got["ok"] != 0 {
		t.Fatalf("rolled-back log: statuses %v, want log-inconsistent and no ok", got)
	}
	for _, want := range []string{"SECURITY ERROR", "earlier signed tree head:", "current signed tree head:", fakelog.Hostname} {
		if !strings.Contains(stderr, want) {
			t.Errorf("rolled-back log: stderr lacks %q:\n%s", want, stderr)
		}
	}
	if rep.Log != nil {
		t.Errorf("a report of a log that contradicts itself names tree head %+v", rep.Log)
	}

	// A forked log (split view) that shows a consistent-looking tree.
	r.log.Fork(r.log.Size() - 3)
	if code, rep, _, stderr := r.scan(t, dbURL); code != ExitFailed || statusCounts(rep)["ok"] != 0 {
		t.Fatalf("forked log: exit %d, statuses %v\n%s", code, statusCounts(rep), stderr)
	}

	// The log answers with a proxy's error page: could not run (exit 3),
	// every package unavailable, the report written anyway.
	r.log.SetLie(fakelog.LieHTML502)
	code, rep, _, stderr = r.scan(t, dbURL)
	if code != ExitInternal {
		t.Fatalf("unreachable log: exit %d, want %d\n%s", code, ExitInternal, stderr)
	}
	if got := statusCounts(rep); got[string(verify.StatusUnavailable)] == 0 || got["ok"] != 0 {
		t.Fatalf("unreachable log: statuses %v", got)
	}
	if !strings.Contains(stderr, "hint: check --log-url") {
		t.Errorf("unreachable log: no hint:\n%s", stderr)
	}

	// Offline, the same repository passes from its bundles alone, except the
	// bundle-less package.
	code, rep, _, _ = r.scan(t, "--offline", dbURL)
	if code != ExitFailed || rep.Mode != ci.ModeOffline || rep.Log != nil {
		t.Fatalf("offline: exit %d mode %q log %+v", code, rep.Mode, rep.Log)
	}
	if got := statusCounts(rep); got["ok"] != 39 || got[string(verify.StatusMissingBundle)] != 1 {
		t.Fatalf("offline: statuses %v, want 39 ok and 1 missing-bundle", got)
	}

	// Online with an honest log again but no signature published at all:
	// nothing was proven against the log, so the report names no tree head.
	r.log.SetLie(fakelog.Honest)
	if err := os.RemoveAll(filepath.Join(r.dir, "sigs")); err != nil {
		t.Fatal(err)
	}
	code, rep, _, _ = r.scan(t, dbURL)
	if code != ExitFailed || rep.Log != nil || statusCounts(rep)[string(verify.StatusMissingSignature)] != 40 {
		t.Fatalf("no signatures: exit %d, log %+v, statuses %v", code, rep.Log, statusCounts(rep))
	}
}

// TestScanHTTPDatabaseErrors: databases over HTTP that cannot be used stop
// the run (exit 3) before anything is verified, with a hint.
func TestScanHTTPDatabaseErrors(t *testing.T) {
	r := newOnlineRepo(t, 3)
	writeTestFile(t, filepath.Join(r.dir, "junk", "junk.db"), []byte("<html>not a database</html>"))
	for _, tc := range []struct {
		name, url, stderr string
		extra             []string
	}{
		{"404", r.srv.URL + "/nosuch/core.db", "hint: check the database path or URL", nil},
		{"not a database", r.srv.URL + "/junk/junk.db", "hint: the file is not a pacman sync database", nil},
		{"too large", r.srv.URL + "/extra/os/x86_64/extra.db", "hint: raise --max-db-size", []string{"--max-db-size", "100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, rep, _, stderr := r.scan(t, append(append([]string{"--offline"}, tc.extra...), tc.url)...)
			if code != ExitInternal || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, ExitInternal, stderr)
			}
			if rep.SchemaVersion != 0 {
				t.Fatalf("a report was written for a run that could not read its databases")
			}
		})
	}
}
