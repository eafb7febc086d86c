package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/rebuildertest"
)

// offlineVerifyArgs writes the hook scripts' fixture into a temp dir and
// returns the arguments of an offline `bintrans verify` of its good
// package (good-1.0-1-any), without the package argument.
func offlineVerifyArgs(t *testing.T) (args []string, pkgFile string) {
	t.Helper()
	dir := t.TempDir()
	for name, b := range hookFixtureFiles(t) {
		writeTestFile(t, filepath.Join(dir, name), b)
	}
	return []string{"verify", "--offline", "--pubkey-path", filepath.Join(dir, "gen/keys/transparency.pub"),
			"--log-key", filepath.Join(dir, "gen/keys/rekor.pem"), "--transparency-url", filepath.Join(dir, "gen/sigs"),
			"--state-dir", filepath.Join(dir, "state")},
		filepath.Join(dir, "gen/cache/good-1.0-1-any.pkg.tar.zst")
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, nil, &o, &e)
	return code, o.String(), e.String()
}

// TestRebuilderIndependence: real rebuilders on 127.0.0.1 and 127.0.0.2
// are two confirmations; a second rebuilder reached as "localhost" (the
// same addresses), or the same host spelled otherwise, is the same one:
// counted once, and a threshold only distinct machines could meet is a
// configuration error (exit 2) naming both URLs.
func TestRebuilderIndependence(t *testing.T) {
	base, pkgFile := offlineVerifyArgs(t)
	good := rebuildertest.Package{Name: "good", Version: "1.0-1", Arch: "any", Status: "GOOD"}
	url := func(addr, host string) string {
		s := rebuildertest.New(t, rebuildertest.Options{Addr: addr + ":0"})
		s.Add(good)
		return strings.Replace(s.URL, addr, host, 1)
	}
	one, two := url("127.0.0.1", "127.0.0.1"), url("127.0.0.2", "127.0.0.2")
	alias := url("127.0.0.1", "localhost")
	with := func(required string, rbs ...string) []string {
		args := append([]string(nil), base...)
		for _, r := range rbs {
			args = append(args, "--rebuilder", r)
		}
		return append(args, "--required-rebuild-confirms", required, pkgFile)
	}

	code, out, errOut := runCLI(with("2", one, two)...)
	if code != ExitOK || !strings.Contains(out, "reproduced by 2 rebuilder(s)") {
		t.Fatalf("two machines: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = runCLI(with("2", one, alias)...)
	if code != ExitUsage || !strings.Contains(errOut, "are only 1 independent rebuilder(s)") ||
		!strings.Contains(errOut, alias+" counts as the same rebuilder as "+one) || !strings.Contains(errOut, "both resolve to 127.0.0.1") {
		t.Fatalf("a name and its address, 2 required: exit %d, want 2 naming both\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(with("1", one, alias)...)
	if code != ExitOK || !strings.Contains(out, "reproduced by 1 rebuilder(s)") {
		t.Fatalf("a name and its address, 1 required: exit %d\n%s%s", code, out, errOut)
	}

	// One host in two spellings: judged without any lookup (the names do
	// not resolve), before anything is asked.
	code, out, errOut = runCLI(with("2", "http://rb.invalid:8001/", "http://RB.Invalid.:8002/")...)
	if code != ExitUsage || !strings.Contains(errOut, "same host rb.invalid") {
		t.Fatalf("case and trailing dot: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(with("1", "https://rb.invalid/", "https://RB.invalid.:443")...)
	if code != ExitUsage || !strings.Contains(errOut, "given twice") {
		t.Fatalf("the same URL twice: exit %d\n%s", code, errOut)
	}
}
