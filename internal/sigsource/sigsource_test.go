package sigsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/location"
	"github.com/bintrans/bintrans/verify"
)

const pkg = "libstdc++-1:13.2.1-3-x86_64.pkg.tar.zst"

var (
	sigBytes    = []byte("untrusted comment: signature from minisign secret key\nRUQ...\ntrusted comment: " + pkg + "\nAAAA\n")
	bundleBytes = []byte(`{"schema_version":1}`)
)

func client(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	c, err := httpclient.New(httpclient.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// server serves files (keyed by unescaped path) and counts requests.
type server struct {
	*httptest.Server
	files    map[string][]byte
	requests atomic.Int64
	paths    chan string
}

func newServer(t *testing.T, files map[string][]byte) *server {
	t.Helper()
	s := &server{files: files, paths: make(chan string, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		select {
		case s.paths <- r.URL.EscapedPath():
		default:
		}
		b, ok := s.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestHTTPLayout(t *testing.T) {
	s := newServer(t, map[string][]byte{
		"/core/os/x86_64/" + pkg + ".t":        sigBytes,
		"/core/os/x86_64/" + pkg + ".t.bundle": bundleBytes,
	})
	for _, base := range []string{s.URL + "/core/os/x86_64", s.URL + "/core/os/x86_64/"} {
		src, err := New(base, client(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		a := verify.Artifact{Filename: pkg}
		got, err := src.Signature(ctx(t), a)
		if err != nil || string(got) != string(sigBytes) {
			t.Fatalf("Signature(%s) = %q, %v", base, got, err)
		}
		if p := <-s.paths; p != "/core/os/x86_64/libstdc++-1:13.2.1-3-x86_64.pkg.tar.zst.t" {
			t.Errorf("requested path %q", p)
		}
		got, err = src.Bundle(ctx(t), a)
		if err != nil || string(got) != string(bundleBytes) {
			t.Fatalf("Bundle = %q, %v", got, err)
		}
		<-s.paths
	}
	// '%', '?' and '#' in a file name are data: escaped, never decoded,
	// never a query, never cleaned into a traversal.
	odd := "odd%2F..%2F?x#y-1-1-any.pkg.tar.zst"
	s.files["/core/os/x86_64/"+odd+".t"] = sigBytes
	src, err := New(s.URL+"/core/os/x86_64", client(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := src.Signature(ctx(t), verify.Artifact{Filename: odd}); err != nil || string(got) != string(sigBytes) {
		t.Fatalf("Signature(%q) = %q, %v", odd, got, err)
	}
	if p := <-s.paths; p != "/core/os/x86_64/odd%252F..%252F%3Fx%23y-1-1-any.pkg.tar.zst.t" {
		t.Errorf("requested path %q", p)
	}
}

func TestHTTPNotFound(t *testing.T) {
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
	}))
	t.Cleanup(gone.Close)
	for _, base := range []string{newServer(t, nil).URL, gone.URL} {
		src, err := New(base, client(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Signature(ctx(t), verify.Artifact{Filename: pkg})
		var nf *NotFoundError
		if !errors.Is(err, verify.ErrNotFound) || !errors.As(err, &nf) {
			t.Fatalf("missing .t: got %v (%T), want a NotFoundError wrapping verify.ErrNotFound", err, err)
		}
		if !strings.HasSuffix(nf.Location, ".t") {
			t.Errorf("Location %q", nf.Location)
		}
	}
}

func TestHTTPServerErrors(t *testing.T) {
	const page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"
	cases := []struct {
		name    string
		handler http.HandlerFunc
		check   func(t *testing.T, err error)
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "database on fire", http.StatusInternalServerError)
		}, func(t *testing.T, err error) {
			var fe *FetchError
			var se *httpclient.StatusError
			if !errors.As(err, &fe) || !errors.As(err, &se) || se.Code != 500 || !strings.Contains(se.Snippet, "database on fire") {
				t.Fatalf("got %v, want a FetchError with a StatusError 500 and its message", err)
			}
		}},
		{"502 html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, page)
		}, func(t *testing.T, err error) {
			var se *httpclient.StatusError
			if !errors.As(err, &se) || se.Code != 502 || se.Snippet != "502 Bad Gateway" {
				t.Fatalf("got %v, want StatusError 502 with the page title", err)
			}
		}},
		{"200 html content-type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<html><head><title>Welcome to Hotel WiFi</title></head></html>")
		}, func(t *testing.T, err error) {
			var ue *UnexpectedContentError
			if !errors.As(err, &ue) || ue.Snippet != "Welcome to Hotel WiFi" || ue.ContentType != "text/html; charset=utf-8" {
				t.Fatalf("got %v, want UnexpectedContentError with the title", err)
			}
		}},
		{"200 html sniffed", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			fmt.Fprint(w, "\n  <!doctype html><p>soft 404</p>")
		}, func(t *testing.T, err error) {
			var ue *UnexpectedContentError
			if !errors.As(err, &ue) || ue.Snippet != "soft 404" {
				t.Fatalf("got %v, want UnexpectedContentError", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			t.Cleanup(srv.Close)
			src, err := New(srv.URL, client(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Bundle(ctx(t), verify.Artifact{Filename: pkg})
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, verify.ErrNotFound) {
				t.Fatalf("%v must not read as 'not found'", err)
			}
			c.check(t, err)
		})
	}
}

func TestHTTPSizeLimits(t *testing.T) {
	exact := make([]byte, verify.MaxSignatureSize)
	for i := range exact {
		exact[i] = 'a'
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/exact/"):
			_, _ = w.Write(exact)
		case strings.HasPrefix(r.URL.Path, "/plusone/"):
			_, _ = w.Write(append(exact, 'a'))
		case strings.HasPrefix(r.URL.Path, "/length/"):
			// Announces a huge body; nothing of it must be read.
			w.Header().Set("Content-Length", "1099511627776")
			w.WriteHeader(200)
		case strings.HasPrefix(r.URL.Path, "/endless/"):
			// Chunked, never ends: only the limit stops the reader.
			chunk := []byte(strings.Repeat("x", 4096))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	hc := client(t, 10*time.Second)
	for _, c := range []struct {
		dir    string
		bundle bool
		ok     bool
	}{
		{"exact", false, true},
		{"plusone", false, false},
		{"length", false, false},
		{"endless", false, false},
		{"endless", true, false},
	} {
		src, err := New(srv.URL+"/"+c.dir, hc)
		if err != nil {
			t.Fatal(err)
		}
		var b []byte
		limit := int64(verify.MaxSignatureSize)
		if c.bundle {
			b, err = src.Bundle(ctx(t), verify.Artifact{Filename: pkg})
			limit = verify.MaxBundleSize
		} else {
			b, err = src.Signature(ctx(t), verify.Artifact{Filename: pkg})
		}
		if c.ok {
			if err != nil || len(b) != verify.MaxSignatureSize {
				t.Errorf("%s: %d bytes, %v; want exactly the limit accepted", c.dir, len(b), err)
			}
			continue
		}
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Limit != limit || b != nil {
			t.Errorf("%s bundle=%v: got %d bytes, %v; want TooLargeError{Limit: %d}", c.dir, c.bundle, len(b), err, limit)
		}
	}
}

func TestHTTPSlowBodyTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("untrusted comment: "))
		w.(http.Flusher).Flush()
		select { // then stalls, past the client's timeout
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	src, err := New(srv.URL, client(t, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Signature(ctx(t), verify.Artifact{Filename: pkg})
	var fe *FetchError
	var ne net.Error
	if !errors.As(err, &fe) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a FetchError that is a timeout", err)
	}
	if errors.Is(err, verify.ErrNotFound) {
		t.Fatal("a timeout must not read as 'not found'")
	}
}

func TestHTTPContextDeadline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // no headers, ever
	}))
	t.Cleanup(srv.Close)
	// A client with no overall timeout: the caller's deadline must still hold.
	src, err := New(srv.URL, &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = src.Signature(c, verify.Artifact{Filename: pkg})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

func TestHTTPRedirectLoop(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	src, err := New(srv.URL, client(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Signature(ctx(t), verify.Artifact{Filename: pkg})
	var fe *FetchError
	if !errors.As(err, &fe) || errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("got %v, want a FetchError", err)
	}
	if n := hits.Load(); n > 20 {
		t.Errorf("followed %d redirects", n)
	}
}

func TestBadFilenamesNeverReachTheServer(t *testing.T) {
	s := newServer(t, nil)
	hsrc, err := New(s.URL+"/repo", client(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A file that a traversal would reach: it must never be read.
	if err := os.WriteFile(filepath.Join(dir, "secret.t"), sigBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	dsrc, err := New(sub, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "..", "../secret", "a/b", "/etc/passwd", "a\x00b", "a\nb", "a\\b", strings.Repeat("x", 300)} {
		for _, src := range []verify.SignatureSource{hsrc, dsrc} {
			_, err := src.Signature(ctx(t), verify.Artifact{Filename: name})
			var fe *FilenameError
			if !errors.As(err, &fe) || fe.Filename != name {
				t.Errorf("%q: got %v, want FilenameError", name, err)
			}
			_, err = src.Bundle(ctx(t), verify.Artifact{Filename: name})
			if !errors.As(err, &fe) {
				t.Errorf("%q bundle: got %v, want FilenameError", name, err)
			}
		}
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("server saw %d requests", n)
	}
}

func TestDirectoryAndFileURL(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(pkg+".t", sigBytes)
	write(pkg+".t.bundle", bundleBytes)
	write("big-1-1-any.pkg.tar.zst.t", make([]byte, verify.MaxSignatureSize+1))
	write("bigb-1-1-any.pkg.tar.zst.t.bundle", make([]byte, verify.MaxBundleSize+1))
	if err := os.Mkdir(filepath.Join(dir, "dir-1-1-any.pkg.tar.zst.t"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo-1-1-any.pkg.tar.zst.t"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pkg+".t", filepath.Join(dir, "link-1-1-any.pkg.tar.zst.t")); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{dir, "file://" + dir, "file://localhost" + dir + "/"} {
		src, err := New(base, nil)
		if err != nil {
			t.Fatal(err)
		}
		get := func(name string, bundle bool) ([]byte, error) {
			if bundle {
				return src.Bundle(ctx(t), verify.Artifact{Filename: name})
			}
			return src.Signature(ctx(t), verify.Artifact{Filename: name})
		}
		if b, err := get(pkg, false); err != nil || string(b) != string(sigBytes) {
			t.Errorf("%s: .t = %q, %v", base, b, err)
		}
		if b, err := get(pkg, true); err != nil || string(b) != string(bundleBytes) {
			t.Errorf("%s: bundle = %q, %v", base, b, err)
		}
		if b, err := get("link-1-1-any.pkg.tar.zst", false); err != nil || string(b) != string(sigBytes) {
			t.Errorf("%s: symlinked .t = %q, %v", base, b, err)
		}
		var nf *NotFoundError
		if _, err := get("missing-1-1-any.pkg.tar.zst", false); !errors.As(err, &nf) || !errors.Is(err, verify.ErrNotFound) {
			t.Errorf("%s: missing: %v", base, err)
		}
		var tl *TooLargeError
		if _, err := get("big-1-1-any.pkg.tar.zst", false); !errors.As(err, &tl) || tl.Limit != verify.MaxSignatureSize {
			t.Errorf("%s: big .t: %v", base, err)
		}
		if _, err := get("bigb-1-1-any.pkg.tar.zst", true); !errors.As(err, &tl) || tl.Limit != verify.MaxBundleSize {
			t.Errorf("%s: big bundle: %v", base, err)
		}
		var fe *FetchError
		for _, special := range []string{"dir-1-1-any.pkg.tar.zst", "fifo-1-1-any.pkg.tar.zst"} {
			if _, err := get(special, false); !errors.As(err, &fe) || errors.Is(err, verify.ErrNotFound) {
				t.Errorf("%s: %s: got %v, want a FetchError (not a regular file)", base, special, err)
			}
		}
	}
	// A signature dir that does not exist (yet): everything is missing.
	src, err := New(filepath.Join(dir, "nope"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Signature(ctx(t), verify.Artifact{Filename: pkg}); !errors.Is(err, verify.ErrNotFound) {
		t.Errorf("missing dir: %v", err)
	}
	// A path through a regular file (ENOTDIR) is missing too.
	src, err = New(filepath.Join(dir, pkg+".t"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Signature(ctx(t), verify.Artifact{Filename: pkg}); !errors.Is(err, verify.ErrNotFound) {
		t.Errorf("ENOTDIR: %v", err)
	}
}

func TestUnreadableFileIsNotMissing(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file: permission errors cannot be produced")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, pkg+".t")
	if err := os.WriteFile(p, sigBytes, 0); err != nil {
		t.Fatal(err)
	}
	src, _ := New(dir, nil)
	_, err := src.Signature(ctx(t), verify.Artifact{Filename: pkg})
	var fe *FetchError
	if !errors.As(err, &fe) || errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("got %v, want FetchError", err)
	}
}

func TestNewRejects(t *testing.T) {
	hc := client(t, time.Second)
	for _, c := range []struct {
		base string
		hc   *http.Client
	}{
		{"", hc},
		{"ftp://example.org/x", hc},
		{"http://", hc},
		{"https://example.org/x", nil},
		{"https://example.org/x?sig=1", hc},
		{"https://example.org/x#frag", hc},
		{"https://user:pw@example.org/x", hc},
		{"file://example.org/srv/sigs", nil},
		{"file://relative", nil},
		{"http://[::1", hc},
	} {
		if src, err := New(c.base, c.hc); err == nil {
			t.Errorf("New(%q) = %T, want an error", c.base, src)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("New(%q): error leaks the password: %v", c.base, err)
		}
	}
}

type fixed struct{ name string }

func (f fixed) Signature(context.Context, verify.Artifact) ([]byte, error) {
	return []byte(f.name), nil
}
func (f fixed) Bundle(context.Context, verify.Artifact) ([]byte, error) {
	return []byte(f.name + "-bundle"), nil
}

func TestPerRepo(t *testing.T) {
	m := map[string]verify.SignatureSource{"core": fixed{"core"}, "extra": fixed{"extra"}}
	p := PerRepo(m, fixed{"fallback"})
	m["core"] = fixed{"mutated"} // PerRepo copied the map
	for repo, want := range map[string]string{"core": "core", "extra": "extra", "community": "fallback", "": "fallback"} {
		a := verify.Artifact{Filename: pkg, Repo: repo}
		if b, err := p.Signature(ctx(t), a); err != nil || string(b) != want {
			t.Errorf("repo %q: %q, %v; want %q", repo, b, err, want)
		}
		if b, err := p.Bundle(ctx(t), a); err != nil || string(b) != want+"-bundle" {
			t.Errorf("repo %q bundle: %q, %v", repo, b, err)
		}
	}
	strict := PerRepo(map[string]verify.SignatureSource{"core": fixed{"core"}}, nil)
	_, err := strict.Signature(ctx(t), verify.Artifact{Filename: pkg, Repo: "evil"})
	var ns *NoSourceError
	if !errors.As(err, &ns) || ns.Repo != "evil" || errors.Is(err, verify.ErrNotFound) {
		t.Fatalf("got %v, want NoSourceError{evil}", err)
	}
	if _, err := strict.Bundle(ctx(t), verify.Artifact{Filename: pkg, Repo: "evil"}); !errors.As(err, &ns) {
		t.Fatalf("bundle: got %v", err)
	}
}

// FuzzCheckFilename: an accepted name never leaves the base, neither as a
// path nor as a URL.
func FuzzCheckFilename(f *testing.F) {
	for _, s := range []string{pkg, freshness.Path(strings.Repeat("ab", 32)), "statements/../x.stmt", "a", "..", "../x", "a/b", "%2e%2e", "a?b#c", "a\x00", ".", "...", "x%2F..%2Fy", "\\..\\x", "é-1-1.pkg"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://example.org/core/os/x86_64")
	f.Fuzz(func(t *testing.T, name string) {
		sig, err := SignatureName(name)
		if err != nil {
			var fe *FilenameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T", err)
			}
			return
		}
		want := "/srv/sigs"
		if _, ok := freshness.IsPath(name); ok {
			want = "/srv/sigs/statements" // the one subdirectory
		}
		if d := filepath.Dir(filepath.Join("/srv/sigs", sig)); d != want {
			t.Fatalf("%q escapes the directory: %s", name, d)
		}
		// What a server sees: the URL as sent, parsed again.
		l, err := location.Parse(location.Join(base.String(), sig))
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		u, err := url.Parse(l.URL().String())
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if u.Host != base.Host || u.RawQuery != "" || u.Fragment != "" || u.Path != base.Path+"/"+sig {
			t.Fatalf("%q: the server would see %q (query %q, fragment %q), want %q", name, u.Path, u.RawQuery, u.Fragment, base.Path+"/"+sig)
		}
	})
}
