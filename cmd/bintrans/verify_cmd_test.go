package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyURL: a package URL is downloaded (streaming) and verified under
// the URL's file name; .t files and bundles come over HTTP too.
func TestVerifyURL(t *testing.T) {
	dir := t.TempDir()
	for name, b := range hookFixtureFiles(t) {
		writeTestFile(t, filepath.Join(dir, name), b)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	args := []string{"verify", "--offline", "--pubkey-path", filepath.Join(dir, "gen/keys/transparency.pub"),
		"--log-key", filepath.Join(dir, "gen/keys/rekor.pem"), "--transparency-url", srv.URL + "/gen/sigs"}

	var stdout, stderr bytes.Buffer
	code := run(append(args, srv.URL+"/gen/cache/good-1.0-1-any.pkg.tar.zst"), nil, &stdout, &stderr)
	if code != ExitOK || !strings.HasPrefix(stdout.String(), "OK   good-1.0-1-any.pkg.tar.zst: signed by ") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, &stdout, &stderr)
	}

	stdout.Reset()
	stderr.Reset()
	code = run(append(args, srv.URL+"/gen/cache/tampered-2.0-1-any.pkg.tar.zst"), nil, &stdout, &stderr)
	if code != ExitFailed || !strings.Contains(stdout.String(), "FAIL tampered-2.0-1-any.pkg.tar.zst: bad-signature") {
		t.Fatalf("tampered: exit %d\nstdout: %s\nstderr: %s", code, &stdout, &stderr)
	}

	// A 404 is a could-not-run error, a URL without a package name a usage error.
	stderr.Reset()
	if code := run(append(args, srv.URL+"/gen/cache/gone-1-1-any.pkg.tar.zst"), nil, &stdout, &stderr); code != ExitInternal {
		t.Errorf("404: exit %d, stderr %s", code, &stderr)
	}
	stderr.Reset()
	if code := run(append(args, srv.URL+"/gen/cache/"), nil, &stdout, &stderr); code != ExitUsage {
		t.Errorf("no file name: exit %d, stderr %s", code, &stderr)
	}

	// Too large for --max-download-size: refused, nothing left behind.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stderr.Reset()
	if code := run(append(args, "--max-download-size", "10", srv.URL+"/gen/cache/good-1.0-1-any.pkg.tar.zst"), nil, &stdout, &stderr); code != ExitInternal || !strings.Contains(stderr.String(), "larger than --max-download-size") {
		t.Errorf("oversized: exit %d, stderr %s", code, &stderr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
