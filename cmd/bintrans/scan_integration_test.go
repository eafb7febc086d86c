package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/signer"
	"github.com/bintrans/bintrans/internal/testkit/gpgtest"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

var updateScanGolden = flag.Bool("update-scan-golden", false, "rewrite testdata/scan_integration.*.golden")

// scanIntegrationPackages is the size of the real repository.
const scanIntegrationPackages = 200

// The four packages the test breaks, and how (status scan must report).
var scanIntegrationBroken = map[string]verify.Status{
	"scanit-010": verify.StatusMissingSignature, // its .t removed
	"scanit-050": verify.StatusBundleInvalid,    // its bundle corrupted
	"scanit-100": verify.StatusBadSignature,     // its db entry's sha256 replaced
	"scanit-150": verify.StatusWrongKey,         // re-signed (and logged) with another key
}

// TestScanRealRekor is issue 8's integration test: a repository of 200 real
// packages (bsdtar, Debian's repo-add) signed by the real publish pipeline
// into the real Rekor stack passes `bintrans scan` online, offline and with
// --download; after four kinds of damage, scan reports exactly those four
// packages with the right statuses in the JSON, JUnit and GitHub reports
// (golden files, variable parts normalized), exit 1.
func TestScanRealRekor(t *testing.T) {
	logURL, logKeyPath := testenv.Rekor(t)
	testenv.Tool(t, "repo-add")
	ctx := context.Background()
	start := time.Now()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", scanITMirror(t), filepath.Join(dir, "mirror")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	repoDir := filepath.Join(dir, "mirror", "scanit", "os", "x86_64")
	t.Logf("repository of %d real packages ready: %v", scanIntegrationPackages, time.Since(start).Round(time.Millisecond))
	start = time.Now()

	// Sign with the real pipeline into the real log.
	key, other := newScanKey(t, 11), newScanKey(t, 12)
	lkPEM, err := os.ReadFile(logKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := rekorv1.ParseLogKey(lkPEM)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := httpclient.New(httpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rekorv1.New(logURL, hc)
	if err != nil {
		t.Fatal(err)
	}
	sigDir := filepath.Join(dir, "sigs")
	if err := os.MkdirAll(sigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The database is released by its packager's signature (what repo-add
	// --sign writes), verified against the packager's keyring.
	packager := gpgtest.New(t, "Scan Test Packager <scan@example.org>")
	packager.DetachSign(t, filepath.Join(repoDir, "scanit.db"))
	keyring, err := signer.OpenKeyring(packager.Keyring(t), "")
	if err != nil {
		t.Fatal(err)
	}
	defer keyring.Close()
	s, err := signer.New(signer.Options{
		Key: key.sk, PublicKey: key.pk, Log: rc, LogKey: lk, LogURL: logURL,
		SignatureDir: sigDir, AuditLog: filepath.Join(dir, "audit.jsonl"), StateDir: filepath.Join(dir, "sign-state"),
		HTTP: hc, Version: "test", Keyring: keyring,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := s.Run(ctx, signer.Sources(filepath.Join(dir, "mirror", "$repo", "os", "$arch"), []string{"scanit"}, []string{"x86_64"}))
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil || sum.Failed != 0 || sum.Signed+sum.AlreadyPublished != scanIntegrationPackages {
		t.Fatalf("sign: %v; summary %+v", err, sum)
	}
	t.Logf("signed and logged: %v", time.Since(start).Round(time.Millisecond))
	keys := t.TempDir()
	writeTestFile(t, filepath.Join(keys, "key.pub"), key.pk.File())

	state := filepath.Join(dir, "scan-state")
	base := []string{"scan", "--log-url", logURL, "--log-key", logKeyPath, "--pubkey-path", filepath.Join(keys, "key.pub"),
		"--signature-dir", sigDir, "--state-dir", state}
	scanRun := func(extra ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := run(append(append(append([]string(nil), base...), extra...), filepath.Join(repoDir, "scanit.db")), strings.NewReader(""), &o, &e)
		return code, o.String(), e.String()
	}

	// Everything signed: online, offline, hashing the real files, and with
	// repo-add's .files database given too (each package counted once).
	for _, mode := range [][]string{nil, {"--offline"}, {"--download"}, {"--offline", filepath.Join(repoDir, "scanit.files")}} {
		if code, stdout, stderr := scanRun(mode...); code != ExitOK || !regexp.MustCompile(fmt.Sprintf(`(?m)^ok +%d$`, scanIntegrationPackages)).MatchString(stdout) {
			t.Fatalf("scan %v of the signed repository: exit %d\n%s\n%s", mode, code, stdout, stderr)
		}
	}

	// Four kinds of damage.
	byName := map[string]repodb.Package{}
	pkgs, err := repodb.ReadFile(filepath.Join(repoDir, "scanit.db"), repodb.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		byName[p.Name] = p
	}
	missing := byName["scanit-010"].Filename
	if err := os.Remove(filepath.Join(sigDir, missing+verify.SignatureSuffix)); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(sigDir, byName["scanit-050"].Filename+verify.BundleSuffix)
	b, err := os.ReadFile(corrupt)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, corrupt, b[:len(b)/2])
	for i := range pkgs {
		if pkgs[i].Name == "scanit-100" {
			pkgs[i].SHA256Sum = sha256Of([]byte("a different package file"))
		}
	}
	var db bytes.Buffer
	if err := repodbtest.Write(&db, pkgs, repodbtest.Options{}); err != nil {
		t.Fatal(err)
	}
	dbFile, err := filepath.EvalSymlinks(filepath.Join(repoDir, "scanit.db"))
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, dbFile, db.Bytes())
	wk := byName["scanit-150"]
	tf, err := verify.SignPackage(other.sk, wk.SHA256Sum, wk.Filename)
	if err != nil {
		t.Fatal(err)
	}
	e, err := rc.Upload(ctx, tf, other.pk.File(), []byte(wk.SHA256Sum))
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := rekorv1.MarshalBundle(e)
	if err != nil {
		t.Fatal(err)
	}
	writeSigned(t, sigDir, wk.Filename, signed{T: tf, Bundle: bundle}, true)

	// Online, all three reports.
	out := t.TempDir()
	summary := filepath.Join(out, "summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	t.Setenv("SOURCE_DATE_EPOCH", "1750000000")
	code, stdout, stderr := scanRun("--json", filepath.Join(out, "report.json"), "--junit", filepath.Join(out, "junit.xml"), "--github")
	if code != ExitFailed {
		t.Fatalf("damaged repository: exit %d, want %d\n%s\n%s", code, ExitFailed, stdout, stderr)
	}
	if want := "bintrans: 4 of 200 packages failed verification\n"; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr = %q, want it to start with %q", stderr, want)
	}

	// JSON: exactly the four, with their statuses; the others ok and logged.
	jb, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep ci.JSONReport
	if err := json.Unmarshal(jb, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Mode != ci.ModeOnline || rep.Log == nil || rep.Log.TreeSize <= int64(scanIntegrationPackages) || rep.OK {
		t.Fatalf("report: mode %q, log %+v, ok %v", rep.Mode, rep.Log, rep.OK)
	}
	var failed []ci.JSONResult
	for _, p := range rep.Packages {
		want, broken := scanIntegrationBroken[p.Name]
		switch {
		case broken && p.Status != string(want):
			t.Errorf("%s: status %q, want %q (%s)", p.Name, p.Status, want, p.Reason)
		case !broken && (p.Status != "ok" || p.LogIndex == nil || p.UUID == ""):
			t.Errorf("%s: status %q, log index %v: want ok with a log entry (%s)", p.Name, p.Status, p.LogIndex, p.Reason)
		}
		if broken {
			failed = append(failed, p)
		}
	}
	if len(failed) != len(scanIntegrationBroken) || rep.Summary.Failed != len(scanIntegrationBroken) || rep.Summary.Total != scanIntegrationPackages {
		t.Fatalf("%d failed packages in the report (summary %+v), want %d", len(failed), rep.Summary, len(scanIntegrationBroken))
	}
	rep.Packages = failed
	jsonGolden, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkScanGolden(t, "json", normalizeScanReport(string(jsonGolden)+"\n", logURL))

	// JUnit parses back: one test case per package, the four failures.
	xb, err := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var ju ci.JUnitTestSuites
	if err := xml.Unmarshal(xb, &ju); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	cases, failures := 0, 0
	for _, s := range ju.Suites {
		cases += len(s.Cases)
		for _, c := range s.Cases {
			if c.Failure != nil {
				failures++
			}
		}
	}
	if cases != scanIntegrationPackages+1 || failures != len(scanIntegrationBroken) { // +1: the database's statement
		t.Fatalf("junit: %d cases, %d failures", cases, failures)
	}
	for i := range ju.Suites {
		var keep = ju.Suites[i].Cases[:0]
		for _, c := range ju.Suites[i].Cases {
			if c.Failure != nil {
				keep = append(keep, c)
			}
		}
		ju.Suites[i].Cases = keep
	}
	xg, err := xml.MarshalIndent(ju, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkScanGolden(t, "junit.xml", normalizeScanReport(string(xg)+"\n", logURL))

	// GitHub: annotations on stdout (then the human summary), job summary.
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	checkScanGolden(t, "github", normalizeScanReport(stdout, logURL))
	checkScanGolden(t, "summary.md", normalizeScanReport(string(md), logURL))

	// Offline the same four fail; with --download the replaced sha256 is a
	// hash mismatch (the file is what was signed, the database lies).
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	for _, tc := range []struct {
		flag string
		swap verify.Status
	}{{"--offline", verify.StatusBadSignature}, {"--download", verify.StatusHashMismatch}} {
		jf := filepath.Join(out, "report"+tc.flag+".json")
		if code, stdout, stderr := scanRun(tc.flag, "--json", jf); code != ExitFailed {
			t.Fatalf("%s: exit %d\n%s\n%s", tc.flag, code, stdout, stderr)
		}
		jb, err := os.ReadFile(jf)
		if err != nil {
			t.Fatal(err)
		}
		var rep ci.JSONReport
		if err := json.Unmarshal(jb, &rep); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range rep.Packages {
			want, broken := scanIntegrationBroken[p.Name]
			if p.Name == "scanit-100" {
				want = tc.swap
			}
			if !broken {
				want = verify.StatusOK
			}
			if p.Status != string(want) {
				t.Errorf("%s: %s: status %q, want %q (%s)", tc.flag, p.Name, p.Status, want, p.Reason)
			}
			n++
		}
		if n != scanIntegrationPackages {
			t.Errorf("%s: %d packages", tc.flag, n)
		}
	}
}

// scanITMirror builds the repository of real packages (bsdtar, zstd,
// Debian's repo-add) once and caches it under $BINTRANS_CACHE (or the user
// cache dir): BuildPackage gives the same bytes for the same Pkg, and
// building 200 packages takes minutes on a busy machine. It returns the
// mirror root (<root>/scanit/os/x86_64/…).
func scanITMirror(t *testing.T) string {
	t.Helper()
	root := os.Getenv("BINTRANS_CACHE")
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		root = filepath.Join(c, "bintrans")
	}
	dir := filepath.Join(root, fmt.Sprintf("scan-it-v1-%d", scanIntegrationPackages))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return filepath.Join(dir, "mirror")
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	repoDir := filepath.Join(tmp, "mirror", "scanit", "os", "x86_64")
	if err := os.MkdirAll(repoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i := range scanIntegrationPackages {
		version := fmt.Sprintf("1.%d-1", i%4)
		if i%25 == 0 {
			version = "2:" + version // epochs, as in the wild
		}
		paths = append(paths, testenv.BuildPackage(t, repoDir, testenv.Pkg{
			Name: fmt.Sprintf("scanit-%03d", i), Version: version, Arch: "x86_64",
			Desc:  "scan integration package " + strings.Repeat("with a long description ", i%7),
			Files: map[string]string{fmt.Sprintf("usr/share/scanit/%03d", i): fmt.Sprintf("file %d\n", i)},
		}))
	}
	testenv.RepoAdd(t, filepath.Join(repoDir, "scanit.db.tar.gz"), paths...)
	writeTestFile(t, filepath.Join(tmp, "complete"), nil)
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "mirror")
}

var scanVariable = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`"(log_index|integrated_time|tree_size)": \d+`), `"$1": 0`},
	{regexp.MustCompile(`"(uuid|root_hash)": "[0-9a-f]+"`), `"$1": "…"`},
	{regexp.MustCompile(`time="[0-9.]+"`), `time="0.000"`},
	{regexp.MustCompile(`log index: \d+`), `log index: 0`},
	{regexp.MustCompile(`at tree size \d+, root [0-9a-f]{64}`), `at tree size 0, root …`},
	{regexp.MustCompile(`(uuid|entry): [0-9a-f]{64,80}`), `$1: …`},
	{regexp.MustCompile(`(<property name="log\.(tree_size|root_hash)" value=")[^"]*`), `$1…`},
	{regexp.MustCompile(`(/[A-Za-z0-9._-]+)+/mirror/scanit/`), `…/mirror/scanit/`},
}

// normalizeScanReport replaces what differs between runs against the same
// log (indexes, UUIDs, times, the tree head, the log's address).
func normalizeScanReport(s, logURL string) string {
	s = strings.ReplaceAll(s, logURL, "http://rekor.test")
	for _, v := range scanVariable {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	return s
}

func checkScanGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "scan_integration."+name+".golden")
	if *updateScanGolden {
		writeTestFile(t, path, []byte(got))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-scan-golden to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run with -update-scan-golden after checking):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}
