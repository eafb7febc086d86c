// Package testenv gives tests the real components they need: the local Rekor
// stacks started by scripts/rekor-stack (v1) and scripts/rekor-v2-stack (v2),
// and Debian's pacman tools.
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

// RekorV2Stack is the local Rekor v2 started by scripts/rekor-v2-stack.
type RekorV2Stack struct {
	// URL is the write API (POST /api/v2/log/entries), ReadURL where its
	// checkpoint and tiles are served (C2SP tlog-tiles).
	URL, ReadURL string
	// KeyPath is the log's Ed25519 public key (PEM); Origin the checkpoint
	// origin pinned with it; VKey the same key as a signed-note verifier
	// key (optional: empty when BINTRANS_TEST_REKORV2_VKEY is not set).
	KeyPath, Origin, VKey string
}

// RekorV2 returns the local Rekor v2 stack, from BINTRANS_TEST_REKORV2_URL,
// BINTRANS_TEST_REKORV2_READ_URL, BINTRANS_TEST_REKORV2_KEY and
// BINTRANS_TEST_REKORV2_ORIGIN (set by scripts/test after
// `scripts/rekor-v2-stack start`; BINTRANS_TEST_REKORV2_VKEY too).
func RekorV2(t testing.TB) RekorV2Stack {
	t.Helper()
	s := RekorV2Stack{
		URL:     os.Getenv("BINTRANS_TEST_REKORV2_URL"),
		ReadURL: os.Getenv("BINTRANS_TEST_REKORV2_READ_URL"),
		KeyPath: os.Getenv("BINTRANS_TEST_REKORV2_KEY"),
		Origin:  os.Getenv("BINTRANS_TEST_REKORV2_ORIGIN"),
		VKey:    os.Getenv("BINTRANS_TEST_REKORV2_VKEY"),
	}
	if s.URL == "" || s.ReadURL == "" || s.KeyPath == "" || s.Origin == "" {
		missing(t, "the local Rekor v2 stack (BINTRANS_TEST_REKORV2_URL/_READ_URL/_KEY/_ORIGIN; run `make test`)")
	}
	return s
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
