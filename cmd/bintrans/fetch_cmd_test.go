package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/socks5test"
)

// fetchEnv is a mirror served over HTTP (packages under /core and /extra,
// signatures under /sigs/core and /sigs/extra) whose signatures are logged
// in a fake log with real proofs, for in-process runs of bintrans fetch in
// online mode.
type fetchEnv struct {
	dir, www string
	log      *fakelog.Log
	key      scanKey
	mirror   *httptest.Server
	mu       sync.Mutex
	seen     []seenRequest
}

type seenRequest struct{ path, rangeHdr, remote string }

func newFetchEnv(t *testing.T) *fetchEnv {
	e := &fetchEnv{dir: t.TempDir(), log: fakelog.New(t), key: newScanKey(t, 11)}
	e.www = filepath.Join(e.dir, "www")
	fs := http.FileServer(http.Dir(e.www))
	e.mirror = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, seenRequest{r.URL.Path, r.Header.Get("Range"), r.RemoteAddr})
		e.mu.Unlock()
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(e.mirror.Close)
	writeTestFile(t, filepath.Join(e.dir, "rekor.pem"), e.log.KeyPEM)
	writeTestFile(t, filepath.Join(e.dir, "transparency.pub"), e.key.pk.File())
	writeTestFile(t, filepath.Join(e.dir, "empty.conf"), nil)
	return e
}

// publish puts a package of the given content in repo and, when signedAs
// is not nil, a `.t` over signedAs's hash (logged, with bundle) in
// sigRepo's signature directory.
func (e *fetchEnv) publish(t *testing.T, repo, filename string, content, signedAs []byte, sigRepo string) {
	writeTestFile(t, filepath.Join(e.www, repo, filename), content)
	if signedAs != nil {
		writeSigned(t, filepath.Join(e.www, "sigs", sigRepo), filename, signAndLog(t, e.log, e.key, sha256Of(signedAs), filename), true)
	}
}

func (e *fetchEnv) requests() []seenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]seenRequest(nil), e.seen...)
}

// args are the policy flags: online against the fake log.
func (e *fetchEnv) args(t *testing.T, extra ...string) []string {
	return append([]string{"--config", filepath.Join(e.dir, "empty.conf"), "fetch",
		"--pubkey-path", filepath.Join(e.dir, "transparency.pub"),
		"--log-url", e.log.URL, "--log-key", filepath.Join(e.dir, "rekor.pem"),
		"--state-dir", filepath.Join(e.dir, "state")}, extra...)
}

func runFetch(t *testing.T, args []string) (code int, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	if out.Len() > 0 {
		t.Errorf("fetch wrote to stdout: %q", out.String())
	}
	return code, errb.String()
}

func TestFetchOnlineHTTP(t *testing.T) {
	e := newFetchEnv(t)
	good := bytes.Repeat([]byte("good package bytes\n"), 2000)
	e.publish(t, "core", "good-1:2.0-1-x86_64.pkg.tar.zst", good, good, "core")
	e.publish(t, "core", "evil-1.0-1-any.pkg.tar.zst", []byte("evil"), []byte("what was signed"), "core")
	out := t.TempDir()

	// A partial download is resumed with a Range request; online mode
	// proves inclusion against the log's current tree.
	part := filepath.Join(out, "good-1:2.0-1-x86_64.pkg.tar.zst.part")
	writeTestFile(t, part, good[:1000])
	code, stderr := runFetch(t, e.args(t, "-O", part, e.mirror.URL+"/core/good-1:2.0-1-x86_64.pkg.tar.zst",
		"--transparency-url", e.mirror.URL+"/sigs/core", "-v"))
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "resumed at byte 1000") || !strings.Contains(stderr, "bintrans: verified good-1:2.0-1-x86_64.pkg.tar.zst (signed by "+e.key.pk.KeyID()+", log index ") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if b, _ := os.ReadFile(part); !bytes.Equal(b, good) {
		t.Error("the resumed file differs from the package")
	}
	var ranged bool
	for _, r := range e.requests() {
		if strings.HasSuffix(r.path, ".pkg.tar.zst") {
			ranged = r.rangeHdr == "bytes=1000-"
		}
	}
	if !ranged {
		t.Errorf("the package was not requested with Range: bytes=1000-: %+v", e.requests())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state")); err != nil {
		t.Errorf("online mode kept no checkpoint state: %v", err)
	}

	evil := filepath.Join(out, "evil-1.0-1-any.pkg.tar.zst.part")
	code, stderr = runFetch(t, e.args(t, "-O", evil, e.mirror.URL+"/core/evil-1.0-1-any.pkg.tar.zst", "--transparency-url", e.mirror.URL+"/sigs/core"))
	if code != ExitFailed || !strings.Contains(stderr, "bintrans: refused evil-1.0-1-any.pkg.tar.zst: bad-signature") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
	if _, err := os.Lstat(evil); err == nil {
		t.Error("the refused download is still there")
	}

	// The log is down: online mode fails closed (exit 3), nothing kept.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	args := e.args(t, "-O", part+"2", e.mirror.URL+"/core/good-1:2.0-1-x86_64.pkg.tar.zst", "--transparency-url", e.mirror.URL+"/sigs/core")
	for i, a := range args {
		if a == e.log.URL {
			args[i] = down.URL
		}
	}
	code, stderr = runFetch(t, args)
	if code != ExitInternal || !strings.Contains(stderr, "refused good-1:2.0-1-x86_64.pkg.tar.zst") || !strings.Contains(stderr, "hint: retry when the log is reachable") {
		t.Errorf("log down: exit %d:\n%s", code, stderr)
	}
	if _, err := os.Lstat(part + "2"); err == nil {
		t.Error("a package that could not be verified is still there")
	}
}

// TestFetchPerRepoTransparencyURL: the repository of %u comes from
// pacman.conf's Server lines; its own transparency URL is used.
func TestFetchPerRepoTransparencyURL(t *testing.T) {
	e := newFetchEnv(t)
	a := []byte("package a")
	b := []byte("package b")
	e.publish(t, "extra", "a-1-1-any.pkg.tar.zst", a, a, "extra")
	e.publish(t, "core", "b-1-1-any.pkg.tar.zst", b, b, "extra") // its .t is published for the wrong repository
	conf := filepath.Join(e.dir, "pacman.conf")
	writeTestFile(t, conf, []byte("[options]\nArchitecture = x86_64\n[core]\nServer = "+e.mirror.URL+"/$repo\n[extra]\nServer = "+e.mirror.URL+"/$repo\n"))
	perRepo := []string{"--pacman-conf", conf,
		"--repo-transparency-url", "core=" + e.mirror.URL + "/sigs/core", "--repo-transparency-url", "extra=" + e.mirror.URL + "/sigs/extra"}
	out := t.TempDir()
	code, stderr := runFetch(t, e.args(t, append([]string{"-O", filepath.Join(out, "a.part"), e.mirror.URL + "/extra/a-1-1-any.pkg.tar.zst"}, perRepo...)...))
	if code != 0 {
		t.Fatalf("extra/a: exit %d:\n%s", code, stderr)
	}
	code, stderr = runFetch(t, e.args(t, append([]string{"-O", filepath.Join(out, "b.part"), e.mirror.URL + "/core/b-1-1-any.pkg.tar.zst"}, perRepo...)...))
	if code != ExitFailed || !strings.Contains(stderr, "refused b-1-1-any.pkg.tar.zst: missing-signature") {
		t.Errorf("core/b with its .t only under extra: exit %d:\n%s", code, stderr)
	}
}

// TestFetchThroughSOCKS5: every connection goes through the proxy, by
// name (socks5h): the mirror and the log have names that resolve only at
// the proxy, so a direct connection could not even have been attempted,
// and the mirror sees only the proxy's connections.
func TestFetchThroughSOCKS5(t *testing.T) {
	e := newFetchEnv(t)
	good := []byte("a package behind a proxy")
	e.publish(t, "core", "p-1-1-any.pkg.tar.zst", good, good, "core")
	proxy := socks5test.New(t, map[string]string{"mirror.test": "127.0.0.1", "log.test": "127.0.0.1"})
	mu, _ := url.Parse(e.mirror.URL)
	lu, _ := url.Parse(e.log.URL)
	mirror := "http://mirror.test:" + mu.Port()
	args := e.args(t, "-O", filepath.Join(t.TempDir(), "p.part"), mirror+"/core/p-1-1-any.pkg.tar.zst",
		"--transparency-url", mirror+"/sigs/core", "--proxy", proxy.URL())
	for i, a := range args {
		if a == e.log.URL {
			args[i] = "http://log.test:" + lu.Port()
		}
	}
	code, stderr := runFetch(t, args)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	names := map[string]int{}
	for _, r := range proxy.Requests() {
		if !r.Domain {
			t.Errorf("an address, not a name, was sent to the proxy: %+v", r)
		}
		names[r.Host]++
	}
	if names["mirror.test"] == 0 || names["log.test"] == 0 {
		t.Errorf("CONNECTs by name: %v; want the mirror and the log", names)
	}
	for _, r := range e.requests() {
		if !proxy.Outbound(r.remote) {
			t.Errorf("%s reached the mirror directly from %s", r.path, r.remote)
		}
	}
}
