// Package testenv gives tests the real components they need: the local Rekor
// stack started by scripts/rekor-stack, and Debian's pacman tools.
//
// A test that needs a component calls the matching function; when the
// component is absent the test is skipped, except under CI (CI=true) where a
// missing component is a failure: CI must never go green by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Rekor returns the URL of the local Rekor stack and the path of its pinned
// log public key (PEM), from BINTRANS_TEST_REKOR_URL and
// BINTRANS_TEST_REKOR_KEY (set by scripts/test after `scripts/rekor-stack start`).
func Rekor(t testing.TB) (url, logKeyPath string) {
	t.Helper()
	url = os.Getenv("BINTRANS_TEST_REKOR_URL")
	logKeyPath = os.Getenv("BINTRANS_TEST_REKOR_KEY")
	if url == "" || logKeyPath == "" {
		missing(t, "the local Rekor stack (BINTRANS_TEST_REKOR_URL/BINTRANS_TEST_REKOR_KEY; run `make test`)")
	}
	return url, logKeyPath
}

// Tool returns the path of an external program (pacman, repo-add, makepkg,
// minisign, bsdtar, openssl, …), skipping (or failing under CI) when absent.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" (apt-get install the package that ships it; scripts/install-deps does)")
	}
	return p
}

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI needs %s", what)
	}
	t.Skipf("needs %s", what)
}
