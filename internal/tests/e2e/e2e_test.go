// Package e2e runs the whole story with the real parts: Debian's pacman
// 6.0.2 in a sandbox, packages built with bsdtar and a repo-add database
// served over HTTP on 127.0.0.1, signatures made with the engine's
// SignPackage and logged in the real local Rekor stack, and the bintrans
// binary (built with CGO_ENABLED=0) installed as the alpm hook inside the
// sandbox root, where alpm runs it chrooted.
package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/rebuildertest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if bench != nil {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// bintransBinary builds cmd/bintrans once, statically (CGO_ENABLED=0), so
// that it runs inside a sandbox root that has no libc.
func bintransBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the e2e tests build cmd/bintrans: %v", err)
			return
		}
		binDir, buildErr = os.MkdirTemp("", "bintrans-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "bintrans")
		cmd := exec.Command(goTool, "build", "-trimpath", "-o", binPath, "../../../cmd/bintrans")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/bintrans: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// pkg is one built package of the repository.
type pkg struct {
	name, version, filename, path, sha256 string
}

// world is a sandboxed pacman with one repository "core" of signed
// packages, the bintrans hook installed, and a policy in
// Root/etc/bintrans.conf.
type world struct {
	s        *testenv.Sandbox
	sk       *minisign.PrivateKey
	pub      verify.PublicKey
	logURL   string
	logKey   []byte // PEM
	log      *rekorv1.Client
	pkgs     []pkg
	sigsDir  string // served at sigsURL
	sigsURL  string
	settings map[string][]string // bintrans.conf, rewritten by writeConf
}

func newKey(t testing.TB) (*minisign.PrivateKey, verify.PublicKey) {
	t.Helper()
	_, edsk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	if _, err := rand.Read(sk.KeyId[:]); err != nil {
		t.Fatal(err)
	}
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(hexToB64(mpk))
	if err != nil {
		t.Fatal(err)
	}
	return sk, pk
}

func hexToB64(mpk minisign.PublicKey) string {
	b := append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)
	return encodeB64(b)
}

// newWorld builds n packages (pkg00, pkg01, …; pkg01 onwards depend on
// pkg00 so that dependencies are part of the transaction), adds them to
// the repository, and signs and logs every one unless unsigned names it.
func newWorld(t *testing.T, n int, unsigned ...string) *world {
	t.Helper()
	logURL, logKeyPath := testenv.Rekor(t)
	bin := bintransBinary(t)
	s := testenv.NewSandbox(t, "core")
	keyPEM, err := os.ReadFile(logKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := httpclient.New(httpclient.Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rekorv1.New(logURL, hc)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{s: s, logURL: logURL, logKey: keyPEM, log: rc}
	w.sk, w.pub = newKey(t)
	w.sigsDir = filepath.Join(s.WWW, "sigs")
	w.sigsURL = s.URL + "/sigs"
	if err := os.MkdirAll(w.sigsDir, 0o755); err != nil {
		t.Fatal(err)
	}

	var paths []string
	for i := range n {
		p := testenv.Pkg{Name: fmt.Sprintf("pkg%02d", i), Version: fmt.Sprintf("1.%d-1", i), Size: 2048 + 512*i,
			Files: map[string]string{fmt.Sprintf("usr/share/doc/pkg%02d/README", i): "package " + fmt.Sprint(i) + "\n"}}
		if i > 0 {
			p.Depends = []string{"pkg00"}
		}
		path := testenv.BuildPackage(t, s.RepoDir("core"), p)
		paths = append(paths, path)
		w.pkgs = append(w.pkgs, pkg{name: p.Name, version: p.Version, filename: filepath.Base(path), path: path, sha256: fileSHA256(t, path)})
	}
	testenv.RepoAdd(t, s.RepoDB("core"), paths...)
	skip := map[string]bool{}
	for _, u := range unsigned {
		skip[u] = true
	}
	for _, p := range w.pkgs {
		if !skip[p.name] {
			w.sign(t, p, true)
		}
	}

	// The hook as shipped, the binary where its Exec points, the log key
	// and the policy inside the root the hook is chrooted into.
	hookText, err := os.ReadFile("../../../hooks/bintrans.hook")
	if err != nil {
		t.Fatal(err)
	}
	s.InstallHook(t, "bintrans", string(hookText))
	s.CopyIntoRoot(t, bin, "/usr/bin/bintrans")
	s.InstallFile(t, "/etc/bintrans/log.pem", keyPEM, 0o644)
	w.settings = map[string][]string{
		"pubkey":           {w.pub.Base64()},
		"transparency-url": {w.sigsURL},
		"log-url":          {logURL},
		"log-key":          {"/etc/bintrans/log.pem"},
		"state-dir":        {"/var/lib/bintrans"},
	}
	w.writeConf(t)
	return w
}

// set replaces (or, with no values, removes) a bintrans.conf key.
func (w *world) set(t *testing.T, key string, values ...string) {
	t.Helper()
	if len(values) == 0 {
		delete(w.settings, key)
	} else {
		w.settings[key] = values
	}
	w.writeConf(t)
}

func (w *world) writeConf(t *testing.T) {
	t.Helper()
	var keys []string
	for k := range w.settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# bintrans e2e policy\n")
	for _, k := range keys {
		for _, v := range w.settings[k] {
			fmt.Fprintf(&b, "%s = %s\n", k, v)
		}
	}
	w.s.InstallFile(t, "/etc/bintrans.conf", []byte(b.String()), 0o644)
}

// sign signs p with the world's key, logs it in the real Rekor (unless
// !logged) and publishes `.t` (and, when logged, the proof bundle).
func (w *world) sign(t *testing.T, p pkg, logged bool) {
	t.Helper()
	sig, err := verify.SignPackage(w.sk, p.sha256, p.filename)
	if err != nil {
		t.Fatal(err)
	}
	w.publish(t, p.filename+verify.SignatureSuffix, sig)
	if !logged {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := w.log.Upload(ctx, sig, w.pub.File(), []byte(p.sha256))
	if err != nil {
		t.Fatalf("upload %s: %v", p.filename, err)
	}
	if e.Proof == nil {
		// Rekor answers the POST before the entry is sequenced with a
		// proof; fetch it again until it has one.
		e = w.waitForProof(t, e.UUID)
	}
	bundle, err := rekorv1.MarshalBundle(e)
	if err != nil {
		t.Fatal(err)
	}
	w.publish(t, p.filename+verify.BundleSuffix, bundle)
}

func (w *world) waitForProof(t *testing.T, uuid string) *rekorv1.Entry {
	t.Helper()
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		e, err := w.log.EntryByUUID(ctx, uuid)
		cancel()
		if err == nil && e.Proof != nil {
			return e
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("entry %s never got an inclusion proof", uuid)
	return nil
}

func (w *world) publish(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(w.sigsDir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (w *world) unpublish(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(w.sigsDir, name)); err != nil {
		t.Fatal(err)
	}
}

func (w *world) names() []string {
	var n []string
	for _, p := range w.pkgs {
		n = append(n, p.name)
	}
	return n
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// install runs `pacman -Sy names…` and returns the result with the
// installed set afterwards.
func (w *world) install(t *testing.T, names ...string) (testenv.PacmanResult, map[string]string) {
	t.Helper()
	res := w.s.Sync(t, nil, names...)
	return res, w.s.Installed(t)
}

func requireInstalled(t *testing.T, w *world, res testenv.PacmanResult, got map[string]string) {
	t.Helper()
	if res.Code != 0 {
		t.Fatalf("transaction failed: %s", res)
	}
	for _, p := range w.pkgs {
		if got[p.name] != p.version {
			t.Errorf("%s: installed %q, want %q", p.name, got[p.name], p.version)
		}
	}
	if !strings.Contains(res.Stdout, "Verifying packages against the transparency log") {
		t.Errorf("the bintrans hook did not run:\n%s", res)
	}
}

// requireRefused checks that the transaction was aborted by the hook,
// nothing is installed, and the output names every given package file
// with its status.
func requireRefused(t *testing.T, res testenv.PacmanResult, got map[string]string, want map[string]verify.Status) {
	t.Helper()
	if res.Code == 0 {
		t.Fatalf("transaction not aborted:\n%s", res)
	}
	if !strings.Contains(res.Stderr, "failed to run transaction hooks") {
		t.Errorf("not aborted by the hook:\n%s", res)
	}
	if len(got) != 0 {
		t.Errorf("installed %v after a refused transaction", got)
	}
	out := res.Stdout + res.Stderr
	t.Logf("pacman's output:\n%s", out)
	for file, status := range want {
		if !lineWith(out, file, string(status)) {
			t.Errorf("output has no line naming %s with %q:\n%s", file, status, out)
		}
	}
}

func lineWith(out string, subs ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestAllGoodInstalled(t *testing.T) {
	w := newWorld(t, 5)
	res, got := w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
	// The checkpoint the hook verified is persisted in the state dir.
	if _, err := os.Stat(filepath.Join(w.s.Root, "var/lib/bintrans")); err != nil {
		t.Errorf("state dir: %v", err)
	}
}

func TestOfflineWithBundlesInstalled(t *testing.T) {
	w := newWorld(t, 3)
	w.set(t, "offline", "true")
	w.set(t, "log-url", "http://127.0.0.1:1") // nothing listens: offline must not ask
	res, got := w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
}

// TestTamperedPackageInTwentyAborts: a hostile mirror rebuilds one of 20
// packages (same name, version and file name) and serves a database that
// matches it, so pacman's own checksum passes; only bintrans can see it.
func TestTamperedPackageInTwentyAborts(t *testing.T) {
	w := newWorld(t, 20)
	bad := w.pkgs[13]
	evil := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: bad.name, Version: bad.version, Size: 2048,
		Files: map[string]string{"usr/bin/backdoor": "#!/bin/sh\necho pwned\n"}})
	b, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad.path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.RepoAdd(t, w.s.RepoDB("core"), bad.path) // the mirror's db now matches the evil file

	res, got := w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{bad.filename: verify.StatusBadSignature})
	if strings.Contains(res.Stdout+res.Stderr, w.pkgs[12].filename+":") {
		t.Errorf("a good package is reported:\n%s", res)
	}
	if _, err := os.Stat(filepath.Join(w.s.Root, "usr/bin/backdoor")); err == nil {
		t.Error("the backdoor was installed")
	}
	if !strings.Contains(res.Stdout+res.Stderr, "1 of 20") {
		t.Errorf("no one-line summary with the count:\n%s", res)
	}
}

func TestMissingSignatureAborts(t *testing.T) {
	w := newWorld(t, 3)
	w.unpublish(t, w.pkgs[1].filename+verify.SignatureSuffix)
	res, got := w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{w.pkgs[1].filename: verify.StatusMissingSignature})
}

func TestSignedButNeverLoggedAborts(t *testing.T) {
	w := newWorld(t, 3, "pkg02")
	w.sign(t, w.pkgs[2], false) // a valid .t, never uploaded, no bundle
	res, got := w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{w.pkgs[2].filename: verify.StatusNotInLog})

	// Offline, the same package has no bundle: refused as well.
	w.set(t, "offline", "true")
	res, got = w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{w.pkgs[2].filename: verify.StatusMissingBundle})
}

func TestBundleOfAnotherPackageAborts(t *testing.T) {
	w := newWorld(t, 3)
	other, err := os.ReadFile(filepath.Join(w.sigsDir, w.pkgs[0].filename+verify.BundleSuffix))
	if err != nil {
		t.Fatal(err)
	}
	w.publish(t, w.pkgs[2].filename+verify.BundleSuffix, other)
	w.set(t, "offline", "true")
	res, got := w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{w.pkgs[2].filename: verify.StatusBundleInvalid})
}

func TestLogKeyMismatchAborts(t *testing.T) {
	w := newWorld(t, 2)
	// A well-formed ECDSA P-256 key that is not the log's.
	otherPEM := otherLogKeyPEM(t)
	w.s.InstallFile(t, "/etc/bintrans/log.pem", otherPEM, 0o644)
	res, got := w.install(t, w.names()...)
	if res.Code == 0 || len(got) != 0 || !strings.Contains(res.Stderr, "failed to run transaction hooks") {
		t.Fatalf("log key mismatch: not refused (installed %v):\n%s", got, res)
	}
	w.set(t, "offline", "true")
	res, got = w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{w.pkgs[0].filename: verify.StatusBundleInvalid, w.pkgs[1].filename: verify.StatusBundleInvalid})
}

func TestLogUnreachableOnlineFailsClosed(t *testing.T) {
	w := newWorld(t, 2)
	w.set(t, "log-url", "http://127.0.0.1:1")
	res, got := w.install(t, w.names()...)
	if res.Code == 0 || len(got) != 0 || !strings.Contains(res.Stderr, "failed to run transaction hooks") {
		t.Fatalf("unreachable log online: not refused (installed %v):\n%s", got, res)
	}
	if !strings.Contains(res.Stdout+res.Stderr, "127.0.0.1:1") {
		t.Errorf("the error does not name the log:\n%s", res)
	}
	// Offline with bundles, the same transaction passes.
	w.set(t, "offline", "true")
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
}

// TestLocalPackageRefused: `pacman -U` of a file that is in no sync db.
// The hook reads pacman's command line and verifies the file as itself:
// nobody signed it. Without /proc in the root (strict mode) it cannot see
// the file, and refuses the name: in no sync database.
func TestLocalPackageRefused(t *testing.T) {
	w := newWorld(t, 1)
	local := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: "homemade", Version: "1-1"})
	res := w.s.Pacman(t, nil, "-U", local)
	got := w.s.Installed(t)
	requireRefused(t, res, got, map[string]verify.Status{local + " (pacman -U)": verify.StatusMissingSignature})

	w.s.NoProc = true
	res = w.s.Pacman(t, nil, "-U", local)
	got = w.s.Installed(t)
	requireRefused(t, res, got, map[string]verify.Status{"homemade": verify.StatusNotInRepository})
	if !strings.Contains(res.Stdout+res.Stderr, "bintrans: notice: strict mode: /proc is not mounted inside RootDir") {
		t.Errorf("no strict-mode notice:\n%s", res)
	}
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// otherLogKeyPEM is a valid log key (ECDSA P-256, PEM) of no log.
func otherLogKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestRebuildThresholdNotMet: two fake rebuilderds (in this process, on
// 127.0.0.1, reached from the chrooted hook) confirm pkg00 and pkg01; one
// says BAD for pkg02. With two confirmations required, pkg02 is refused.
func TestRebuildThresholdNotMet(t *testing.T) {
	w := newWorld(t, 3)
	rb1 := rebuildertest.New(t, rebuildertest.Options{})
	rb2 := rebuildertest.New(t, rebuildertest.Options{Addr: "127.0.0.2:0"}) // another machine
	for _, p := range w.pkgs {
		good := rebuildertest.Package{Name: p.name, Version: p.version, Arch: "any", Status: "GOOD", SHA256: p.sha256}
		rb1.Add(good)
		if p.name == "pkg02" {
			good.Status = "BAD"
		}
		rb2.Add(good)
	}
	// Confirmations from one machine count once: the second rebuilder
	// listens on another address, under a name of its own (resolved from
	// the sandbox's /etc/hosts, as the hook resolves it).
	w.s.InstallFile(t, "/etc/hosts", []byte("127.0.0.1 localhost\n127.0.0.2 rebuilder-b.test\n"), 0o644)
	w.s.InstallFile(t, "/etc/nsswitch.conf", []byte("hosts: files dns\n"), 0o644)
	w.set(t, "rebuilder", rb1.URL, strings.Replace(rb2.URL, "127.0.0.2", "rebuilder-b.test", 1))
	w.set(t, "required-rebuild-confirms", "2")
	res, got := w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{w.pkgs[2].filename: verify.StatusRebuildUnconfirmed})

	w.set(t, "required-rebuild-confirms", "1")
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
}
