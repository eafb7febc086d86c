package e2e

// bintrans fetch as pacman's XferCommand, run by the real pacman 6.0.2 in
// the sandbox (on the host, not chrooted, not through a shell), with the
// signatures logged in the real local Rekor. The alpm hook of newWorld is
// removed: here fetch alone must keep bad packages out.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/rebuildertest"
	"github.com/bintrans/bintrans/internal/testkit/socks5test"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// fetchWorld is a world whose pacman downloads through `bintrans fetch`.
type fetchWorld struct {
	*world
	bin        string
	stateDir   string
	emptyConf  string // --config: the host's /etc/bintrans.conf must not leak in
	logKeyPath string // host path of the pinned log key
}

func newFetchWorld(t *testing.T, n int) *fetchWorld {
	t.Helper()
	w := newWorld(t, n)
	if err := os.Remove(filepath.Join(w.s.HookDir, "bintrans.hook")); err != nil {
		t.Fatal(err)
	}
	fw := &fetchWorld{world: w, bin: bintransBinary(t), stateDir: filepath.Join(w.s.Dir, "state")}
	fw.emptyConf = filepath.Join(w.s.Dir, "empty.conf")
	fw.logKeyPath = filepath.Join(w.s.Dir, "rekor.pem")
	if err := os.WriteFile(fw.emptyConf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fw.logKeyPath, w.logKey, 0o644); err != nil {
		t.Fatal(err)
	}
	fw.setXfer(t, w.sigsURL, w.logURL)
	return fw
}

// policyArgs are the fetch flags of the world's policy: the seed's
// (--transparency-url, --pubkey) and the pinned local log.
func (fw *fetchWorld) policyArgs(sigsURL, logURL string) []string {
	return []string{"--config", fw.emptyConf, "--transparency-url", sigsURL, "--pubkey", fw.pub.Base64(),
		"--log-url", logURL, "--log-key", fw.logKeyPath, "--state-dir", fw.stateDir, "-v"}
}

// setXfer points pacman's XferCommand at bintrans fetch with the policy
// and extra flags.
func (fw *fetchWorld) setXfer(t *testing.T, sigsURL, logURL string, extra ...string) {
	t.Helper()
	args := append([]string{fw.bin, "fetch", "-O", "%o", "%u"}, fw.policyArgs(sigsURL, logURL)...)
	fw.s.SetOption(t, "XferCommand", strings.Join(append(args, extra...), " "))
}

// fetch runs the binary directly (as pacman ≥ 6.1 would for a .sig).
func (fw *fetchWorld) fetch(t *testing.T, out, u string) (stderr string, code int) {
	t.Helper()
	args := append([]string{"fetch", "-O", out, u}, fw.policyArgs(fw.sigsURL, fw.logURL)...)
	cmd := exec.Command(fw.bin, args...)
	var eb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &eb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return eb.String(), code
}

// cached lists the files of pacman's package cache.
func (fw *fetchWorld) cached(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(fw.s.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// tamper replaces p on the mirror with a different package of the same
// name and version and re-adds it to the db, as a hostile mirror would:
// pacman's own checksum passes, only bintrans can tell.
func (fw *fetchWorld) tamper(t *testing.T, p pkg) {
	t.Helper()
	evil := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: p.name, Version: p.version, Size: 2048,
		Files: map[string]string{"usr/bin/backdoor": "#!/bin/sh\necho pwned\n"}})
	b, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.RepoAdd(t, fw.s.RepoDB("core"), p.path)
}

func requireFetchInstalled(t *testing.T, w *world, res testenv.PacmanResult, got map[string]string, pkgs ...pkg) {
	t.Helper()
	if res.Code != 0 {
		t.Fatalf("transaction failed: %s", res)
	}
	for _, p := range pkgs {
		if got[p.name] != p.version {
			t.Errorf("%s: installed %q, want %q", p.name, got[p.name], p.version)
		}
		if !lineWith(res.Stderr, "bintrans: verified "+p.filename, "signed by "+w.pub.KeyID(), "log index") {
			t.Errorf("no verified line for %s:\n%s", p.filename, res)
		}
	}
}

func TestFetchXferGoodPackagesInstalled(t *testing.T) {
	fw := newFetchWorld(t, 3)
	res, got := fw.install(t, fw.names()...)
	requireFetchInstalled(t, fw.world, res, got, fw.pkgs...)
	// The db went through fetch too, unverified, and said so (-v).
	if !strings.Contains(res.Stderr, "bintrans: core.db: sync database, passed through unverified") {
		t.Errorf("the db download did not go through bintrans fetch:\n%s", res)
	}
	for _, f := range fw.cached(t) {
		if strings.HasSuffix(f, ".part") {
			t.Errorf("left %s in the cache", f)
		}
	}
}

func TestFetchXferTamperedPackageRefused(t *testing.T) {
	fw := newFetchWorld(t, 3)
	bad := fw.pkgs[2]
	fw.tamper(t, bad)
	res, got := fw.install(t, fw.names()...)
	t.Logf("%s", res)
	if res.Code == 0 {
		t.Fatalf("pacman installed a tampered package:\n%s", res)
	}
	if len(got) != 0 {
		t.Errorf("installed %v after a refused download", got)
	}
	if _, err := os.Stat(filepath.Join(fw.s.Root, "usr/bin/backdoor")); err == nil {
		t.Error("the backdoor was installed")
	}
	// One voice: what failed and why, then what to do.
	if !lineWith(res.Stderr, "bintrans: refused "+bad.filename, string(verify.StatusBadSignature)) || !strings.Contains(res.Stderr, "\nhint: ") {
		t.Errorf("no refusal line naming %s with its reason and a hint:\n%s", bad.filename, res.Stderr)
	}
	// Nothing of the refused file stays; the good ones may.
	for _, f := range fw.cached(t) {
		if strings.HasPrefix(f, bad.filename) {
			t.Errorf("refused download left %s in the cache", f)
		}
	}
}

// TestFetchXferFileServer: a file:// Server is verified like any other
// (the seed copied file:// packages unverified).
func TestFetchXferFileServer(t *testing.T) {
	fw := newFetchWorld(t, 2)
	fw.s.SetServers(t, "core", "file://"+fw.s.RepoDir("core"))
	res, got := fw.install(t, fw.pkgs[0].name)
	requireFetchInstalled(t, fw.world, res, got, fw.pkgs[0])

	fw.tamper(t, fw.pkgs[1])
	res, got = fw.install(t, fw.pkgs[1].name)
	if res.Code == 0 || got[fw.pkgs[1].name] != "" {
		t.Fatalf("a tampered file:// package was installed:\n%s", res)
	}
	if !lineWith(res.Stderr, "bintrans: refused "+fw.pkgs[1].filename) {
		t.Errorf("no refusal line:\n%s", res)
	}
}

// TestFetchXferResume: a partial download in the cache is resumed with a
// Range request and the whole file verified; a poisoned partial download
// is refused, removed, and the next attempt downloads it afresh.
func TestFetchXferResume(t *testing.T) {
	fw := newFetchWorld(t, 2)
	p := fw.pkgs[0]
	good, err := os.ReadFile(p.path)
	if err != nil {
		t.Fatal(err)
	}
	half := len(good) / 2
	part := filepath.Join(fw.s.CacheDir, p.filename+".part")
	if err := os.WriteFile(part, good[:half], 0o644); err != nil {
		t.Fatal(err)
	}
	res, got := fw.install(t, p.name)
	requireFetchInstalled(t, fw.world, res, got, p)
	if !strings.Contains(res.Stderr, fmt.Sprintf("bintrans: %s: resumed at byte %d, %d bytes", p.filename, half, len(good))) {
		t.Errorf("not resumed at byte %d:\n%s", half, res)
	}

	q := fw.pkgs[1]
	good, err = os.ReadFile(q.path)
	if err != nil {
		t.Fatal(err)
	}
	part = filepath.Join(fw.s.CacheDir, q.filename+".part")
	if err := os.WriteFile(part, bytes.Repeat([]byte{0xEE}, len(good)/2), 0o644); err != nil {
		t.Fatal(err)
	}
	res, got = fw.install(t, q.name)
	if res.Code == 0 || got[q.name] != "" {
		t.Fatalf("a poisoned partial download was installed:\n%s", res)
	}
	if !lineWith(res.Stderr, "bintrans: refused "+q.filename) {
		t.Errorf("no refusal line:\n%s", res)
	}
	if _, err := os.Lstat(part); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused .part is still there (%v): the next attempt would resume it", err)
	}
	res, got = fw.install(t, q.name)
	requireFetchInstalled(t, fw.world, res, got, q)
}

// TestFetchXferDatabaseAndSignatures: -Sy with an optional database
// signature works; a .sig the mirror lacks exits non-zero with nothing
// written (pacman treats that as "no optional signature"), one calm line;
// a present .sig passes through byte for byte.
//
// Measured: pacman 6.0.2 never asks the XferCommand for a .sig (its
// fetchcb path ignores download_signature, even with DatabaseOptional or
// Optional), so the .sig cases run the binary as pacman ≥ 6.1 does.
func TestFetchXferDatabaseAndSignatures(t *testing.T) {
	fw := newFetchWorld(t, 1)
	fw.s.SetRepoOption(t, "core", "SigLevel", "Optional TrustAll")
	res := fw.s.Pacman(t, nil, "-Sy")
	if res.Code != 0 {
		t.Fatalf("pacman -Sy: %s", res)
	}
	if !strings.Contains(res.Stderr, "bintrans: core.db: sync database, passed through unverified") {
		t.Errorf("the db did not go through fetch:\n%s", res)
	}
	if _, err := os.Stat(filepath.Join(fw.s.DBPath, "sync", "core.db")); err != nil {
		t.Fatalf("no sync db after -Sy: %v", err)
	}
	// -Syy forces a new download over the existing db.
	if res := fw.s.Pacman(t, nil, "-Syy"); res.Code != 0 {
		t.Fatalf("pacman -Syy: %s", res)
	}

	syncDir := filepath.Join(fw.s.DBPath, "sync")
	out := filepath.Join(syncDir, "core.db.sig.part")
	stderr, code := fw.fetch(t, out, fw.s.URL+"/core/core.db.sig")
	if code == 0 {
		t.Fatalf("a missing .sig exited 0: pacman would rename an empty file to core.db.sig\n%s", stderr)
	}
	if strings.TrimSpace(stderr) != "bintrans: core.db.sig: not on the mirror; pacman skips a signature that is optional" {
		t.Errorf("a missing optional .sig should be one calm line, got:\n%s", stderr)
	}
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a 404 left %s", out)
	}

	// One OpenPGP signature packet (old format, tag 2, version 4); the
	// body is not checked: pacman does that with its keyring.
	text := "\x04 signature body, passed through as is"
	sig := append([]byte{0x88, byte(len(text))}, text...)
	if err := os.WriteFile(filepath.Join(fw.s.RepoDir("core"), "core.db.sig"), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	stderr, code = fw.fetch(t, out, fw.s.URL+"/core/core.db.sig")
	if code != 0 {
		t.Fatalf("a present .sig: exit %d\n%s", code, stderr)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, sig) {
		t.Errorf("the .sig was not passed through: %q, %v", b, err)
	}
	if !strings.Contains(stderr, "core.db.sig: signature, passed through unverified") {
		t.Errorf("no pass-through note under -v:\n%s", stderr)
	}

	// A package .sig the mirror lacks behaves the same.
	pkgSig := filepath.Join(fw.s.CacheDir, fw.pkgs[0].filename+".sig.part")
	if _, code := fw.fetch(t, pkgSig, fw.s.URL+"/core/"+fw.pkgs[0].filename+".sig"); code == 0 {
		t.Error("a missing package .sig exited 0")
	}
	if _, err := os.Lstat(pkgSig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a 404 left %s", pkgSig)
	}
}

// TestFetchXferDisguisedPackageRefused: pacman installs whatever file a
// database names (measured: repo-add and pacman 6.0.2 take a package
// named evil.db or evil.sig); fetch must not pass it through unverified
// because of its name.
func TestFetchXferDisguisedPackageRefused(t *testing.T) {
	fw := newFetchWorld(t, 1)
	evil := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: "evil", Version: "1.0-1",
		Files: map[string]string{"usr/bin/backdoor": "#!/bin/sh\necho pwned\n"}})
	b, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"evil.db", "evil.sig"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(fw.s.RepoDir("core"), name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			testenv.RepoAdd(t, fw.s.RepoDB("core"), p)
			res, got := fw.install(t, "evil")
			t.Logf("%s", res)
			if res.Code == 0 || got["evil"] != "" {
				t.Fatalf("a package named %s was installed:\n%s", name, res)
			}
			if _, err := os.Stat(filepath.Join(fw.s.Root, "usr/bin/backdoor")); err == nil {
				t.Error("the backdoor was installed")
			}
			if !lineWith(res.Stderr, "bintrans: refused "+name) {
				t.Errorf("no refusal line for %s:\n%s", name, res.Stderr)
			}
			if _, err := os.Lstat(filepath.Join(fw.s.CacheDir, name+".part")); err == nil {
				t.Errorf("%s.part left in the cache", name)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// recordingOrigin serves dir over HTTP and records, for every request, the
// path and the client's address, so that a test can tell proxied requests
// (from the proxy's outbound connections) from direct ones.
type recordingOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	seen []originRequest
}

type originRequest struct{ path, remote string }

func newRecordingOrigin(t *testing.T, dir string) *recordingOrigin {
	o := &recordingOrigin{}
	fs := http.FileServer(http.Dir(dir))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen = append(o.seen, originRequest{r.URL.Path, r.RemoteAddr})
		o.mu.Unlock()
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *recordingOrigin) requests() []originRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]originRequest(nil), o.seen...)
}

func (o *recordingOrigin) port() string {
	u, _ := url.Parse(o.URL)
	return u.Port()
}

// tcpFront forwards connections to target and records each client's
// address: the real Rekor, behind a front that sees who connects.
type tcpFront struct {
	ln      net.Listener
	mu      sync.Mutex
	remotes []string
}

func newTCPFront(t *testing.T, target string) *tcpFront {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &tcpFront{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.remotes = append(f.remotes, c.RemoteAddr().String())
			f.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(up, c); done <- struct{}{} }()
				go func() { io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return f
}

func (f *tcpFront) port() string {
	_, p, _ := net.SplitHostPort(f.ln.Addr().String())
	return p
}

func (f *tcpFront) clients() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.remotes...)
}

// proxyWorld serves the world's mirror and signatures from a recording
// origin and the real Rekor behind a recording front, under names that
// only the SOCKS5 proxy resolves (mirror.test, sigs.test, rekor.test).
type proxyWorld struct {
	*fetchWorld
	origin *recordingOrigin
	rekor  *tcpFront
	proxy  *socks5test.Server
}

func newProxyWorld(t *testing.T, n int) *proxyWorld {
	fw := newFetchWorld(t, n)
	pw := &proxyWorld{fetchWorld: fw, origin: newRecordingOrigin(t, fw.s.WWW)}
	lu, err := url.Parse(fw.logURL)
	if err != nil {
		t.Fatal(err)
	}
	pw.rekor = newTCPFront(t, lu.Host)
	pw.proxy = socks5test.New(t, map[string]string{"mirror.test": "127.0.0.1", "sigs.test": "127.0.0.1", "rekor.test": "127.0.0.1"})
	return pw
}

func (pw *proxyWorld) sigsURL(host string) string {
	return "http://" + host + ":" + pw.origin.port() + "/sigs"
}

func (pw *proxyWorld) logURLByName() string { return "http://rekor.test:" + pw.rekor.port() }

// TestFetchXferProxyEverything: with --proxy socks5h://…, the package, the
// db, the .t and bundle, and every request to the log go through the
// proxy, by name: the origin and the log front see only the proxy's
// outbound connections, and the proxy saw only names.
func TestFetchXferProxyEverything(t *testing.T) {
	pw := newProxyWorld(t, 2)
	pw.s.SetServers(t, "core", "http://mirror.test:"+pw.origin.port()+"/core")
	pw.setXfer(t, pw.sigsURL("sigs.test"), pw.logURLByName(), "--proxy", pw.proxy.URL())
	res, got := pw.install(t, pw.names()...)
	requireFetchInstalled(t, pw.world, res, got, pw.pkgs...)

	reqs := pw.origin.requests()
	var pkgs, sigs, dbs int
	for _, r := range reqs {
		if !pw.proxy.Outbound(r.remote) {
			t.Errorf("direct connection to the origin from %s for %s", r.remote, r.path)
		}
		switch {
		case strings.HasSuffix(r.path, ".pkg.tar.zst"):
			pkgs++
		case strings.HasSuffix(r.path, verify.SignatureSuffix) || strings.HasSuffix(r.path, verify.BundleSuffix):
			sigs++
		case strings.HasSuffix(r.path, ".db"):
			dbs++
		}
	}
	if pkgs != 2 || dbs != 1 || sigs < 2 {
		t.Errorf("origin saw %d package, %d db, %d signature requests: %v", pkgs, dbs, sigs, reqs)
	}
	logConns := pw.rekor.clients()
	if len(logConns) == 0 {
		t.Error("the log was never asked (online mode)")
	}
	for _, c := range logConns {
		if !pw.proxy.Outbound(c) {
			t.Errorf("direct connection to the log from %s", c)
		}
	}
	for _, r := range pw.proxy.Requests() {
		if !r.Domain {
			t.Errorf("the proxy was sent an address, not a name (DNS resolved locally): %+v", r)
		}
	}
	t.Logf("origin: %d requests, log front: %d connections, proxy: %d connections, %d CONNECTs",
		len(reqs), len(logConns), pw.proxy.Accepted(), len(pw.proxy.Requests()))
}

// TestFetchXferBypassProxyForPkgs: with --bypass-proxy-for-pkgs only the
// package downloads go direct; the db, the .t and bundles and the log
// still go through the proxy.
func TestFetchXferBypassProxyForPkgs(t *testing.T) {
	pw := newProxyWorld(t, 2)
	// The mirror must be reachable directly for the package downloads.
	pw.s.SetServers(t, "core", pw.origin.URL+"/core")
	pw.setXfer(t, pw.sigsURL("sigs.test"), pw.logURLByName(), "--proxy", pw.proxy.URL(), "--bypass-proxy-for-pkgs")
	res, got := pw.install(t, pw.names()...)
	requireFetchInstalled(t, pw.world, res, got, pw.pkgs...)

	var direct, proxied int
	for _, r := range pw.origin.requests() {
		viaProxy := pw.proxy.Outbound(r.remote)
		isPkg := strings.HasSuffix(r.path, ".pkg.tar.zst")
		switch {
		case isPkg && viaProxy:
			t.Errorf("package %s went through the proxy despite --bypass-proxy-for-pkgs", r.path)
		case !isPkg && !viaProxy:
			t.Errorf("%s went direct; only packages may bypass the proxy", r.path)
		case isPkg:
			direct++
		default:
			proxied++
		}
	}
	if direct != 2 || proxied < 3 {
		t.Errorf("%d direct package requests (want 2), %d proxied (db + signatures, want ≥ 3)", direct, proxied)
	}
	for _, c := range pw.rekor.clients() {
		if !pw.proxy.Outbound(c) {
			t.Errorf("direct connection to the log from %s", c)
		}
	}
}

// TestFetchXferRebuilderThreshold: three rebuilders (distinct hosts, named
// through the proxy), one reproduced the package, one says BAD, one does
// not know it: --required-rebuild-confirms 0 and 1 download, 2 refuses.
func TestFetchXferRebuilderThreshold(t *testing.T) {
	fw := newFetchWorld(t, 1)
	p := fw.pkgs[0]
	good := rebuildertest.New(t, rebuildertest.Options{})
	good.Add(rebuildertest.Package{Name: p.name, Version: p.version, Arch: "any", Status: "GOOD", SHA256: p.sha256})
	bad := rebuildertest.New(t, rebuildertest.Options{})
	bad.Add(rebuildertest.Package{Name: p.name, Version: p.version, Arch: "any", Status: "BAD"})
	unknown := rebuildertest.New(t, rebuildertest.Options{})
	unknown.Add(rebuildertest.Package{Name: "other", Version: "1-1", Arch: "any", Status: "GOOD"})
	proxy := socks5test.New(t, map[string]string{"rb1.test": "127.0.0.1", "rb2.test": "127.0.0.1", "rb3.test": "127.0.0.1"})
	byName := func(s *rebuildertest.Server, name string) string {
		u, _ := url.Parse(s.URL)
		return "http://" + name + ":" + u.Port() + "/"
	}
	rebuilders := []string{"--proxy", proxy.URL(),
		"--rebuilder", byName(good, "rb1.test"), "--rebuilder", byName(bad, "rb2.test"), "--rebuilder", byName(unknown, "rb3.test")}

	for _, tc := range []struct {
		confirms int
		ok       bool
	}{{0, true}, {1, true}, {2, false}} {
		t.Run(fmt.Sprint("confirms=", tc.confirms), func(t *testing.T) {
			os.Remove(filepath.Join(fw.s.CacheDir, p.filename))
			before := good.Requests().Total + bad.Requests().Total + unknown.Requests().Total
			fw.setXfer(t, fw.sigsURL, fw.logURL, append(rebuilders, "--required-rebuild-confirms", fmt.Sprint(tc.confirms))...)
			res := fw.s.Pacman(t, nil, "-Syw", p.name)
			_, err := os.Stat(filepath.Join(fw.s.CacheDir, p.filename))
			asked := good.Requests().Total + bad.Requests().Total + unknown.Requests().Total - before
			t.Logf("exit %d, rebuilder requests %d\n%s", res.Code, asked, res.Stderr)
			if tc.ok {
				if res.Code != 0 || err != nil {
					t.Fatalf("refused with %d required confirmations:\n%s", tc.confirms, res)
				}
				if tc.confirms > 0 && !strings.Contains(res.Stderr, "reproduced by 1 rebuilder(s)") {
					t.Errorf("the success line does not name the confirmation:\n%s", res.Stderr)
				}
				return
			}
			if res.Code == 0 || err == nil {
				t.Fatalf("downloaded with 1 of 2 required confirmations:\n%s", res)
			}
			if !lineWith(res.Stderr, "bintrans: refused "+p.filename, string(verify.StatusRebuildUnconfirmed)) {
				t.Errorf("no refusal naming %s: %s:\n%s", p.filename, verify.StatusRebuildUnconfirmed, res.Stderr)
			}
			if asked == 0 {
				t.Error("no rebuilder was asked")
			}
		})
	}
	// Each rebuilder was reached by its name, through the proxy (the only
	// place those names resolve).
	named := map[string]int{}
	for _, r := range proxy.Requests() {
		if r.Domain {
			named[r.Host]++
		}
	}
	for _, h := range []string{"rb1.test", "rb2.test", "rb3.test"} {
		if named[h] == 0 {
			t.Errorf("rebuilder %s never asked through the proxy (CONNECTs by name: %v)", h, named)
		}
	}
}
