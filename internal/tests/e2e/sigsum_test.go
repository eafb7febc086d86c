package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/gpgtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/verify"
)

// sigsumStack is a scripts/sigsum-stack run for one test: the Sigsum test
// log as a process (sigsum-testlog) and three sigsum-witness processes,
// with the policy (2 of 3) the script writes.
type sigsumStack struct {
	dir, url, policy string
	stopFn           func()
}

// startSigsumStack starts scripts/sigsum-stack in a temporary directory on
// free ports (BINTRANS_TEST_PORTS when set) and stops it, by its PIDs, when
// the test ends. A missing sigsum-witness or sigsum-key skips the test
// (fails under CI=true).
func startSigsumStack(t *testing.T) *sigsumStack {
	t.Helper()
	witnesstest.Binary(t, witnesstest.SigsumWitness)
	witnesstest.Binary(t, "sigsum-key")
	script, err := filepath.Abs("../../../scripts/sigsum-stack")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "sigsum")
	env := os.Environ()
	seen := map[int]bool{}
	for _, v := range []string{"SIGSUM_LOG_PORT", "SIGSUM_W1_PORT", "SIGSUM_W2_PORT", "SIGSUM_W3_PORT"} {
		p := witnesstest.FreePort(t)
		for seen[p] {
			p = witnesstest.FreePort(t)
		}
		seen[p] = true
		env = append(env, fmt.Sprintf("%s=%d", v, p))
	}
	env = append(env, "SIGSUM_INTERVAL=200ms")
	stop := func() {
		cmd := exec.Command(script, "stop", dir)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sigsum-stack stop: %v\n%s", err, out)
		}
	}
	t.Cleanup(stop)
	cmd := exec.Command(script, "start", dir)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sigsum-stack start: %v\n%s", err, stderr.String())
	}
	t.Logf("sigsum-stack: %s%s", stderr.String(), out)
	s := &sigsumStack{dir: dir}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "SIGSUM_URL":
			s.url = v
		case "SIGSUM_POLICY":
			s.policy = v
		}
	}
	if s.url == "" || s.policy == "" {
		t.Fatalf("sigsum-stack start printed no SIGSUM_URL/SIGSUM_POLICY:\n%s", out)
	}
	// Stopped by the test: the cleanup's stop is then a no-op.
	s.stopFn = stop
	return s
}

// stop stops every process of the stack now.
func (s *sigsumStack) stop() { s.stopFn() }

// TestSigsumHook: a repository signed with `bintrans sign --log-kind
// sigsum` into the Sigsum test log run as processes by scripts/sigsum-stack
// (its tree heads cosigned by three real sigsum-witness processes; the
// policy wants 2 of 3), the hook configured with log-kind = sigsum and the
// stack's policy in /etc/bintrans.conf, run by the real pacman. A proof
// whose tree head carries one cosignature (below the quorum) is refused, a
// package a mirror swapped (with a database to match) is refused, the
// genuine packages install; with the whole stack stopped they install
// again (Sigsum proofs are verified offline).
func TestSigsumHook(t *testing.T) {
	st := startSigsumStack(t)
	w := newWorld(t, 3, "pkg00", "pkg01", "pkg02") // signed below, by bintrans sign
	bin := bintransBinary(t)

	// The transparency key as files (minisign), the packagers' release
	// signature on the database (repo-add --sign), then the real signer.
	dir := t.TempDir()
	pubPath, secPath := filepath.Join(dir, "transparency.pub"), filepath.Join(dir, "transparency.key")
	if out, err := exec.Command(testenv.Tool(t, "minisign"), "-W", "-G", "-p", pubPath, "-s", secPath).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v\n%s", err, out)
	}
	pubText, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verify.ParsePublicKey(string(pubText))
	if err != nil {
		t.Fatal(err)
	}
	w.pub = pub
	packager := gpgtest.New(t, "Sigsum E2E Packager <packager@example.org>")
	var paths []string
	for _, p := range w.pkgs {
		paths = append(paths, p.path)
	}
	packager.RepoAddSign(t, w.s.RepoDB("core"), paths...)
	signArgs := []string{"sign", "--repo-url", filepath.Join(w.s.WWW, "$repo"), "--repo-name", "core", "--architecture", "x86_64",
		"--signature-dir", w.sigsDir, "--pubkey-path", pubPath, "--seckey-path", secPath, "--keyring", packager.Keyring(t),
		"--log-kind", "sigsum", "--sigsum-policy", st.policy,
		"--audit-log", filepath.Join(dir, "audit.jsonl"), "--state-dir", filepath.Join(dir, "state"), "--json"}
	cmd := exec.Command(bin, signArgs...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bintrans sign --log-kind sigsum: %v\n%s", err, stderr.String())
	}
	var sum struct{ Signed, Failed int }
	if err := json.Unmarshal(out, &sum); err != nil || sum.Signed != len(w.pkgs) || sum.Failed != 0 {
		t.Fatalf("sign summary %+v (%v):\n%s\n%s", sum, err, out, stderr.String())
	}
	proofs := map[string][]byte{}
	for _, p := range w.pkgs {
		b, err := os.ReadFile(filepath.Join(w.sigsDir, p.filename+verify.BundleSuffix))
		if err != nil {
			t.Fatalf("sign published no proof for %s: %v", p.filename, err)
		}
		if n := strings.Count(string(b), "\ncosignature="); n < 2 {
			t.Fatalf("%s: the published proof has %d cosignatures, the policy wants 2:\n%s", p.filename, n, b)
		}
		proofs[p.filename] = b
	}

	policy, err := os.ReadFile(st.policy)
	if err != nil {
		t.Fatal(err)
	}
	w.s.InstallFile(t, "/etc/bintrans/sigsum.policy", policy, 0o644)
	w.set(t, "pubkey", pub.Base64())
	w.set(t, "log-kind", "sigsum")
	w.set(t, "sigsum-policy", "/etc/bintrans/sigsum.policy")
	w.set(t, "log-url")
	w.set(t, "log-key")

	// A proof whose tree head keeps one cosignature of three: below the
	// 2-of-3 quorum, refused; nothing is installed.
	victim := w.pkgs[1].filename
	w.publish(t, victim+verify.BundleSuffix, keepCosignatures(t, proofs[victim], 1))
	res, got := w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{victim: verify.StatusBundleInvalid})
	w.publish(t, victim+verify.BundleSuffix, proofs[victim])
	clearCache(t, w)

	// A hostile mirror swaps pkg02 (same name, version, file name) and
	// serves a database that matches: pacman's checksum passes, the
	// transparency signature does not.
	bad := w.pkgs[2]
	good, err := os.ReadFile(bad.path)
	if err != nil {
		t.Fatal(err)
	}
	evil := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: bad.name, Version: bad.version, Size: 2048,
		Files: map[string]string{"usr/bin/backdoor": "#!/bin/sh\necho pwned\n"}})
	eb, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad.path, eb, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.RepoAdd(t, w.s.RepoDB("core"), bad.path)
	res, got = w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{bad.filename: verify.StatusBadSignature})
	if _, err := os.Stat(filepath.Join(w.s.Root, "usr/bin/backdoor")); err == nil {
		t.Error("the backdoor was installed")
	}
	if err := os.WriteFile(bad.path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.RepoAdd(t, w.s.RepoDB("core"), bad.path)
	clearCache(t, w)

	// The genuine packages: installed, from their Sigsum proofs.
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
	if !strings.Contains(res.Stdout+res.Stderr, "from Sigsum proofs (policy /etc/bintrans/sigsum.policy)") {
		t.Errorf("the hook's summary does not say it verified Sigsum proofs:\n%s", res)
	}

	// The log and every witness down: the proofs still verify offline.
	st.stop()
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
}

// keepCosignatures returns the Sigsum proof with only its first n
// cosignature lines.
func keepCosignatures(t *testing.T, proof []byte, n int) []byte {
	t.Helper()
	var b strings.Builder
	kept, dropped := 0, 0
	for _, line := range strings.SplitAfter(string(proof), "\n") {
		if strings.HasPrefix(line, "cosignature=") {
			if kept == n {
				dropped++
				continue
			}
			kept++
		}
		b.WriteString(line)
	}
	if kept != n || dropped == 0 {
		t.Fatalf("proof has %d cosignatures, cannot keep %d:\n%s", kept+dropped, n, proof)
	}
	return []byte(b.String())
}

// clearCache empties pacman's package cache: a refused transaction left
// its downloads there, and a file of the same name would be reused.
func clearCache(t *testing.T, w *world) {
	t.Helper()
	ents, err := os.ReadDir(w.s.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(w.s.CacheDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
