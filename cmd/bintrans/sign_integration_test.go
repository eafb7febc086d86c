package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/signer"
	"github.com/bintrans/bintrans/internal/testkit/gpgtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// signRepo is a real repository (packages built with bsdtar, database with
// Debian's repo-add, signed by its packager's GnuPG key as repo-add --sign
// signs it) plus a fresh transparency key, so that counting the log's
// entries for the key counts exactly this test's entries.
type signRepo struct {
	dir, repoURL, pub, sec, sigDir, state, auditLog string
	logURL, logKey                                  string
	pkgs                                            []repodb.Package
	packager                                        *gpgtest.Home
	keyring                                         string // the operator's --keyring
}

var (
	builtRepoOnce sync.Once
	builtRepoDir  string
	builtRepoErr  error
)

// realRepo builds a repository of n real packages with repo-add (once: it
// is cached in the temp dir, the packages are the same bytes on every
// build) and copies it for the calling test.
func realRepo(t *testing.T, n int) string {
	t.Helper()
	testenv.Tool(t, "repo-add")
	builtRepoOnce.Do(func() {
		cache := filepath.Join(os.TempDir(), fmt.Sprintf("bintrans-sign-repo-v1-%d", n))
		if _, err := os.Stat(filepath.Join(cache, "core", "os", "x86_64", "core.db")); err == nil {
			builtRepoDir = cache
			return
		}
		dir, err := os.MkdirTemp("", "bintrans-sign-repo-build-")
		if err != nil {
			builtRepoErr = err
			return
		}
		repoDir := filepath.Join(dir, "core", "os", "x86_64")
		os.MkdirAll(repoDir, 0o755)
		var paths []string
		for i := range n {
			paths = append(paths, testenv.BuildPackage(t, repoDir, testenv.Pkg{
				Name: fmt.Sprintf("signtest-%03d", i), Version: fmt.Sprintf("%d.0-1", 1+i%3), Arch: "x86_64",
				Files: map[string]string{fmt.Sprintf("usr/share/signtest/%d", i): fmt.Sprintf("file %d\n", i)},
			}))
		}
		testenv.RepoAdd(t, filepath.Join(repoDir, "core.db.tar.gz"), paths...)
		if err := os.Rename(dir, cache); err != nil { // another test binary won the race
			os.RemoveAll(dir)
		}
		builtRepoDir = cache
	})
	if builtRepoErr != nil {
		t.Fatal(builtRepoErr)
	}
	dst := t.TempDir()
	out, err := exec.Command("cp", "-a", builtRepoDir+"/.", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func newSignRepo(t *testing.T, n int) *signRepo {
	t.Helper()
	logURL, logKey := testenv.Rekor(t)
	mini := testenv.Tool(t, "minisign")
	dir := realRepo(t, n)
	r := &signRepo{dir: dir, repoURL: filepath.Join(dir, "$repo", "os", "$arch"),
		pub: filepath.Join(dir, "key.pub"), sec: filepath.Join(dir, "key.sec"),
		sigDir: filepath.Join(dir, "sig"), state: filepath.Join(dir, "state"), auditLog: filepath.Join(dir, "audit.jsonl"),
		logURL: logURL, logKey: logKey}
	if out, err := exec.Command(mini, "-W", "-G", "-p", r.pub, "-s", r.sec).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v %s", err, out)
	}
	os.MkdirAll(r.sigDir, 0o755)
	pkgs, err := repodb.ReadFile(filepath.Join(dir, "core", "os", "x86_64", "core.db"), repodb.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != n {
		t.Fatalf("db has %d packages, want %d", len(pkgs), n)
	}
	r.pkgs = pkgs
	r.packager = gpgtest.New(t, "Sign Test Packager <packager@example.org>")
	r.keyring = r.packager.Keyring(t)
	r.signDB(t)
	return r
}

// signDB signs the database as repo-add --sign does: gpg --detach-sign of
// the database file, and <repo>.db.sig linked to its signature.
func (r *signRepo) signDB(t *testing.T) {
	t.Helper()
	d := filepath.Join(r.dir, "core", "os", "x86_64")
	r.packager.DetachSign(t, filepath.Join(d, "core.db.tar.gz"))
	os.Remove(filepath.Join(d, "core.db.sig"))
	if err := os.Symlink("core.db.tar.gz.sig", filepath.Join(d, "core.db.sig")); err != nil {
		t.Fatal(err)
	}
}

func (r *signRepo) args(logURL string, extra ...string) []string {
	return append([]string{"sign", "--repo-url", r.repoURL, "--repo-name", "core", "--architecture", "x86_64",
		"--signature-dir", r.sigDir, "--pubkey-path", r.pub, "--seckey-path", r.sec, "--keyring", r.keyring,
		"--log-url", logURL, "--log-key", r.logKey, "--audit-log", r.auditLog, "--state-dir", r.state}, extra...)
}

func (r *signRepo) summary(t *testing.T, res signRun) signer.Summary {
	t.Helper()
	var s signer.Summary
	if err := json.Unmarshal([]byte(res.stdout), &s); err != nil {
		t.Fatalf("--json output: %v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	return s
}

// logEntriesForKey counts the log's entries for the test's key (search by
// public key), waiting for the asynchronous index to catch up with want.
func (r *signRepo) logEntriesForKey(t *testing.T, want int) []string {
	t.Helper()
	c, err := rekorv1.New(r.logURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(r.pub)
	var uuids []string
	for range 50 {
		uuids, err = c.SearchByPublicKey(context.Background(), pub)
		if err != nil {
			t.Fatal(err)
		}
		if len(uuids) >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return uuids
}

// checkComplete asserts the end state: every package's .t and bundle verify
// offline (and the .t with `minisign -V`), one audit record per logged
// entry, a valid chain, and exactly one log entry per package.
//
// Rekor writes its search index in the upload request's context: when the
// uploader dies mid-request the entry is logged but never indexed (seen in
// TestSignKill9MidRun), and a 409 on re-upload does not index it either.
// With unindexedOK the key search may miss entries, but must not hold any
// entry that is not one of the bundles (a duplicate), and every bundle's
// entry is fetched from the log by UUID (nothing lost).
func (r *signRepo) checkComplete(t *testing.T, unindexedOK bool) {
	t.Helper()
	lkPEM, _ := os.ReadFile(r.logKey)
	lk, err := rekorv1.ParseLogKey(lkPEM)
	if err != nil {
		t.Fatal(err)
	}
	pubText, _ := os.ReadFile(r.pub)
	pub, err := verify.ParsePublicKey(string(pubText))
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]audit.Record{}
	f, err := os.Open(r.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	_, err = audit.Scan(f, func(_ int, rec audit.Record) error {
		if _, dup := recs[rec.UUID]; dup {
			t.Errorf("two audit records for %s", rec.UUID)
		}
		recs[rec.UUID] = rec
		return nil
	})
	f.Close()
	if err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	// The repository statements published (each with its .t; a .files
	// copy has none): entries of the key as the packages are.
	stmts := r.statements(t, pub, lk)
	want := len(r.pkgs) + len(stmts)
	res := signRunIn(t, "audit", "verify-chain", r.auditLog)
	if res.code != 0 || !strings.Contains(res.stdout, fmt.Sprintf("chain ok, %d records", want)) {
		t.Errorf("audit verify-chain: %+v", res)
	}
	logged := map[string]bool{}
	searched := r.logEntriesForKey(t, want)
	for _, u := range searched {
		if logged[u[len(u)-64:]] {
			t.Errorf("the key search lists entry %s twice", u)
		}
		logged[u[len(u)-64:]] = true
	}
	if len(logged) > want || (!unindexedOK && len(logged) != want) {
		t.Errorf("the log's index holds %d entries for the key, want exactly %d (one per package and statement)", len(logged), want)
	}
	lc, err := rekorv1.New(r.logURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, e := range stmts {
		ours[rekorv1.LeafHash(e.Body)] = true
		if rec, ok := recs[e.UUID]; !ok || !rec.IsStatement() || rec.LogIndex != e.LogIndex {
			t.Errorf("statement entry %d: audit record %+v", e.LogIndex, rec)
		}
	}
	mini := testenv.Tool(t, "minisign")
	msgDir := t.TempDir()
	for i, p := range r.pkgs {
		tf, err := os.ReadFile(filepath.Join(r.sigDir, p.Filename+".t"))
		if err != nil {
			t.Errorf("lost: %v", err)
			continue
		}
		b, err := os.ReadFile(filepath.Join(r.sigDir, p.Filename+".t.bundle"))
		if err != nil {
			t.Errorf("lost: %v", err)
			continue
		}
		e, err := rekorv1.ParseBundle(b)
		if err == nil {
			_, err = rekorv1.VerifyEntry(e, tf, []verify.PublicKey{pub}, p.SHA256Sum, p.Filename, lk)
		}
		if err != nil {
			t.Errorf("%s: %v", p.Filename, err)
			continue
		}
		leaf := rekorv1.LeafHash(e.Body)
		ours[leaf] = true
		if !logged[leaf] {
			if !unindexedOK {
				t.Errorf("%s: entry %s not found by the key search", p.Filename, e.UUID)
			}
			// Not indexed: prove it is in the log by asking for it.
			got, err := lc.EntryByUUID(context.Background(), leaf)
			if err != nil || got.LogIndex != e.LogIndex {
				t.Errorf("%s: entry %s not in the log: %v", p.Filename, e.UUID, err)
			} else {
				t.Logf("%s: entry %d is logged but not in the search index", p.Filename, e.LogIndex)
			}
		}
		if rec, ok := recs[e.UUID]; !ok || rec.SHA256 != p.SHA256Sum || rec.Filename != p.Filename || rec.LogIndex != e.LogIndex {
			t.Errorf("%s: audit record %+v does not match entry %d", p.Filename, rec, e.LogIndex)
		}
		if i%20 == 0 { // interop: the Debian minisign CLI accepts the .t over the hex message
			m := filepath.Join(msgDir, "msg")
			os.WriteFile(m, []byte(p.SHA256Sum), 0o644)
			os.WriteFile(m+".t", tf, 0o644)
			out, err := exec.Command(mini, "-V", "-p", r.pub, "-m", m, "-x", m+".t").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Trusted comment: "+p.Filename) {
				t.Errorf("minisign -V %s: %v\n%s", p.Filename, err, out)
			}
		}
	}
	if len(recs) != want {
		t.Errorf("%d audit records for %d packages and %d statements", len(recs), len(r.pkgs), len(stmts))
	}
	for leaf := range logged {
		if !ours[leaf] {
			t.Errorf("the log holds entry %s for the key that no published bundle explains (a duplicate)", leaf)
		}
	}
	// The journal is compacted when a signer opens the state dir: what
	// the last run left unfinished is what a new one would find.
	if j, err := os.ReadFile(filepath.Join(r.state, "sign", "intents.jsonl")); err != nil {
		t.Error(err)
	} else {
		pending := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(j)), "\n") {
			var jl struct{ Op, Leaf string }
			if line == "" {
				continue
			}
			if err := json.Unmarshal([]byte(line), &jl); err != nil {
				t.Fatalf("journal line %q: %v", line, err)
			}
			pending[jl.Leaf] = jl.Op == "intent"
		}
		for leaf, p := range pending {
			if p {
				t.Errorf("intent %s left unfinished", leaf)
			}
		}
	}
}

// statements verifies every statement published with its .t and returns
// their entries.
func (r *signRepo) statements(t *testing.T, pub verify.PublicKey, lk *rekorv1.LogKey) []*rekorv1.Entry {
	t.Helper()
	ts, err := filepath.Glob(filepath.Join(r.sigDir, "statements", "*.stmt.t"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*rekorv1.Entry
	for _, tp := range ts {
		text, err1 := os.ReadFile(strings.TrimSuffix(tp, ".t"))
		tf, err2 := os.ReadFile(tp)
		b, err3 := os.ReadFile(tp + ".bundle")
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Errorf("statement %s: %v", tp, err)
			continue
		}
		e, err := rekorv1.ParseBundle(b)
		if err == nil {
			sum := sha256.Sum256(text)
			_, err = rekorv1.VerifyEntry(e, tf, []verify.PublicKey{pub}, hex.EncodeToString(sum[:]), "statements/"+strings.TrimSuffix(filepath.Base(tp), ".t"), lk)
		}
		if err != nil {
			t.Errorf("statement %s: %v", tp, err)
			continue
		}
		out = append(out, e)
	}
	return out
}

const nRealPackages = 200

func TestSignRealRekor(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	res := signRunIn(t, r.args(r.logURL, "--json")...)
	if res.code != 0 {
		t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
	}
	s := r.summary(t, res)
	if s.Signed != nRealPackages || s.Failed != 0 || s.AuditRecords != nRealPackages+1 || s.StatementsIssued != 1 {
		t.Fatalf("summary: %+v", s)
	}
	t.Logf("signed %d packages in %.2fs", s.Signed, s.Seconds)
	r.checkComplete(t, false)

	// A second run uploads nothing and does not even ask the log: it
	// runs against a log URL where nothing listens.
	res = signRunIn(t, r.args("http://127.0.0.1:1", "--json")...)
	s = r.summary(t, res)
	if res.code != 0 || s.AlreadyPublished != nRealPackages || s.Signed != 0 || s.AuditRecords != 0 || s.StatementsCurrent != 1 {
		t.Fatalf("second run: exit %d %+v\n%s", res.code, s, res.stderr)
	}
	r.checkComplete(t, false)
}

// faultProxy sits between the signer and the real Rekor and injects faults
// into uploads (POST /api/v1/log/entries).
type faultProxy struct {
	srv *httptest.Server
	// okPosts counts uploads the real log answered 201/409.
	okPosts atomic.Int64
	// down: every request fails with 503 (the log is down).
	down atomic.Bool
	// failAfter > 0: once that many uploads succeeded, the log goes down.
	failAfter atomic.Int64
	// eatAnswers: uploads reach the log but the client gets a 502 (the
	// log has the entry, the signer does not know).
	eatAnswers atomic.Bool
	// onPost runs after each successful upload with the count so far.
	onPost atomic.Pointer[func(n int64)]
	// delay slows every upload (nanoseconds).
	delay atomic.Int64
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		upload := req.Method == http.MethodPost && req.URL.Path == "/api/v1/log/entries"
		if p.down.Load() || (upload && p.failAfter.Load() > 0 && p.okPosts.Load() >= p.failAfter.Load()) {
			http.Error(w, "<html><body>503 Service Unavailable (test)</body></html>", http.StatusServiceUnavailable)
			return
		}
		if !upload {
			rp.ServeHTTP(w, req)
			return
		}
		if d := p.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, req)
		if rec.Code == http.StatusCreated || rec.Code == http.StatusConflict {
			n := p.okPosts.Add(1)
			if f := p.onPost.Load(); f != nil {
				(*f)(n)
			}
		}
		if p.eatAnswers.Load() {
			http.Error(w, "bad gateway (test)", http.StatusBadGateway)
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		io.Copy(w, rec.Body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func TestSignLogDownMidRun(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	p := newFaultProxy(t, r.logURL)
	p.failAfter.Store(60)
	res := signRunIn(t, r.args(p.srv.URL, "--json")...)
	s := r.summary(t, res)
	if res.code != ExitInternal || s.Failed == 0 || s.Signed < 50 || s.Signed+s.Failed != nRealPackages+1 { // +1: the statement
		t.Fatalf("run with the log going down: exit %d %+v", res.code, s)
	}
	for _, f := range s.Failures {
		if f.Stage != signer.StageUpload {
			t.Errorf("failure %+v, want upload", f)
		}
	}
	if !strings.Contains(res.stderr, "bintrans: sign core/x86_64 ") || !strings.Contains(res.stderr, "hint: ") {
		t.Errorf("stderr does not list the failures with a hint:\n%s", res.stderr)
	}
	// The log comes back, but answers get lost for a while: the entries
	// are logged, the signer is not told.
	p.failAfter.Store(0)
	p.eatAnswers.Store(true)
	eat := func(n int64) {
		if n >= 100 {
			p.eatAnswers.Store(false)
		}
	}
	p.onPost.Store(&eat)
	res = signRunIn(t, r.args(p.srv.URL, "--json")...)
	if res.code == 0 {
		t.Fatalf("run with lost answers succeeded: %s", res.stdout)
	}
	// Recovery.
	res = signRunIn(t, r.args(p.srv.URL, "--json")...)
	s = r.summary(t, res)
	if res.code != 0 || s.Failed != 0 {
		t.Fatalf("re-run: exit %d %+v\n%s", res.code, s, res.stderr)
	}
	r.checkComplete(t, false)
}

func TestSignKill9MidRun(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	p := newFaultProxy(t, r.logURL)
	p.delay.Store(int64(5 * time.Millisecond))
	killed := make(chan struct{})
	var once sync.Once
	cmd := signChild(t, r.args(p.srv.URL, "--jobs", "8")...)
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc := cmd.Process
	kill := func(n int64) {
		if n >= 70 {
			once.Do(func() {
				proc.Signal(syscall.SIGKILL)
				close(killed)
			})
		}
	}
	p.onPost.Store(&kill)
	err := cmd.Wait()
	out := outBuf.Bytes()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("signer was not killed: %v\n%s", err, out)
	}
	<-killed
	// The killed run left intents; the re-run (a real process too)
	// finishes them and the rest.
	out, err = signChild(t, r.args(r.logURL, "--json")...).Output()
	if err != nil {
		t.Fatalf("re-run after kill -9: %v\n%s", err, out)
	}
	var s signer.Summary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	// The package whose upload triggered the kill had its intent written
	// and no .t: the re-run must have finished at least that one intent.
	if s.Failed != 0 || s.AlreadyPublished+s.Signed != nRealPackages || s.Recovered == 0 {
		t.Fatalf("re-run: %+v", s)
	}
	r.checkComplete(t, true)
}

func TestSignUnwritableSignatureDir(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	// Root ignores a read-only mode; a directory where the .t must go
	// fails the rename for everybody, after the log and audit steps.
	blocked := r.pkgs[:50]
	for _, p := range blocked {
		if err := os.MkdirAll(filepath.Join(r.sigDir, p.Filename+".t.bundle", "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	res := signRunIn(t, r.args(r.logURL, "--json")...)
	s := r.summary(t, res)
	if res.code != ExitInternal || s.Failed != len(blocked) || s.Signed != nRealPackages-len(blocked) {
		t.Fatalf("exit %d %+v", res.code, s)
	}
	for _, f := range s.Failures {
		if f.Stage != signer.StagePublish {
			t.Errorf("failure %+v, want publish", f)
		}
	}
	for _, p := range blocked {
		os.RemoveAll(filepath.Join(r.sigDir, p.Filename+".t.bundle"))
	}
	res = signRunIn(t, r.args(r.logURL, "--json")...)
	s = r.summary(t, res)
	if res.code != 0 || s.Recovered != len(blocked) || s.AuditRecords != 0 {
		t.Fatalf("re-run: exit %d %+v\n%s", res.code, s, res.stderr)
	}
	r.checkComplete(t, false)
}
