package location

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/httpclient"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, path, url, str string
	}{
		{"/srv/repo/core.db", "/srv/repo/core.db", "", "/srv/repo/core.db"},
		{"repo//x/../core.db", "repo/core.db", "", "repo//x/../core.db"},
		{"file:///srv/r/a%20b.db", "/srv/r/a b.db", "", "file:///srv/r/a%20b.db"},
		{"file://localhost/srv/r", "/srv/r", "", "file://localhost/srv/r"},
		{"https://m.example/core/os/x86_64", "", "https://m.example/core/os/x86_64", "https://m.example/core/os/x86_64"},
		{"HTTP://m.example:8080/x", "", "http://m.example:8080/x", "http://m.example:8080/x"},
		{"https://user:secret@m.example/x", "", "https://user:secret@m.example/x", "https://user:xxxxx@m.example/x"},
	} {
		l, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		got := ""
		if u := l.URL(); u != nil {
			got = u.String()
		}
		if l.Path() != tc.path || got != tc.url || l.IsLocal() != (tc.url == "") || l.String() != tc.str {
			t.Errorf("Parse(%q) = path %q url %q local %v string %q", tc.in, l.Path(), got, l.IsLocal(), l.String())
		}
	}
	for in, reason := range map[string]string{
		"":                         "empty",
		"ftp://x/core.db":          `unsupported scheme "ftp"`,
		"https:///core.db":         "no host",
		"file://host/srv/x":        "remote host",
		"file:relative":            "", // no "://": a path
		"file://":                  "absolute path",
		"https://[::1/x":           "not a URL",
		"https://u:pw@[::1/x":      "not a URL",
		"gopher://u:pw@host/x.db":  `unsupported scheme "gopher"`,
		"data://text/plain;base64": `unsupported scheme "data"`,
		"https://h/x?":             "query or fragment",
		"https://h/x#":             "query or fragment",
		"https://h/x?a=b":          "query or fragment",
		"file:///x#y":              "query or fragment",
	} {
		_, err := Parse(in)
		if reason == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", in, err)
			}
			continue
		}
		var le *Error
		if !errors.As(err, &le) || !strings.Contains(err.Error(), reason) {
			t.Errorf("Parse(%q) = %v, want an *Error saying %q", in, err, reason)
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("Parse(%q): the error shows the password: %v", in, err)
		}
	}
}

func TestJoinSplitExpand(t *testing.T) {
	for _, tc := range []struct{ base, name, want string }{
		{"/srv/sigs", "a-1-1-any.pkg.tar.zst.t", "/srv/sigs/a-1-1-any.pkg.tar.zst.t"},
		{"/srv/sigs/", "a%b#c?.t", "/srv/sigs/a%b#c?.t"},
		{"https://m.example/core/", "a%b#c?.t", "https://m.example/core/a%25b%23c%3F.t"},
		{"file:///srv/x", "lib32-gcc-libs-1:14-1-x86_64.pkg.tar.zst", "file:///srv/x/lib32-gcc-libs-1:14-1-x86_64.pkg.tar.zst"},
		{"https://m.example/a%2Fb", "x+y@z.db", "https://m.example/a%2Fb/x+y@z.db"},
	} {
		if got := Join(tc.base, tc.name); got != tc.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tc.base, tc.name, got, tc.want)
		}
	}
	// A joined URL names exactly that file.
	l, err := Parse(Join("https://m.example/a%2Fb", "a%b#c?.t"))
	if err != nil || l.URL().Path != "/a/b/a%b#c?.t" || l.URL().RawQuery != "" || l.URL().Fragment != "" {
		t.Errorf("joined URL: %+v %v", l.URL(), err)
	}
	for in, want := range map[string][2]string{
		"/srv/r/core.db":                     {"/srv/r", "core.db"},
		"core.db":                            {".", "core.db"},
		"https://m.example/core/os/extra.db": {"https://m.example/core/os", "extra.db"},
		"file:///srv/x/testing.db.tar.zst":   {"file:///srv/x", "testing.db.tar.zst"},
		"https://m.example/a%2Fb/c.db":       {"https://m.example/a/b", "c.db"},
	} {
		l, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if dir, name := l.Split(); dir != want[0] || name != want[1] {
			t.Errorf("Split(%q) = %q %q, want %q", in, dir, name, want)
		}
	}
	if got := Expand("https://m/$repo/os/$arch/$repo", "core", "x86_64"); got != "https://m/core/os/x86_64/core" {
		t.Errorf("Expand: %q", got)
	}
}

// FuzzParse: what Parse accepts is a local path or an http(s) URL with a
// host; a name joined to it stays one element below it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/srv/x", "x", "file:///x", "file://localhost/x", "https://h/x", "HTTPS://h:1/%2e%2e/x", "ftp://x", "https:///x", "file://h/x", "http://u:p@h/x?q#f", ":", "a://"} {
		f.Add(s, "a-1-1-any.pkg.tar.zst.t")
	}
	f.Add("https://h/a", "%2e%2e")
	f.Add("/srv", "a?b#c")
	f.Fuzz(func(t *testing.T, s, name string) {
		l, err := Parse(s)
		if err != nil {
			var le *Error
			if !errors.As(err, &le) {
				t.Fatalf("Parse(%q): error %T", s, err)
			}
			return
		}
		if l.IsLocal() {
			if l.Path() == "" || l.URL() != nil {
				t.Fatalf("Parse(%q): local with path %q", s, l.Path())
			}
		} else {
			u := l.URL()
			if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) {
				t.Fatalf("Parse(%q): URL %v", s, u)
			}
		}
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
			return
		}
		j, err := Parse(Join(s, name))
		if err != nil {
			t.Fatalf("Join(%q, %q) does not parse: %v", s, name, err)
		}
		if j.IsLocal() != l.IsLocal() {
			t.Fatalf("Join(%q, %q) changed kind", s, name)
		}
		if j.IsLocal() {
			if want := filepath.Join(l.Path(), name); j.Path() != want {
				t.Fatalf("Join(%q, %q): path %q, want %q", s, name, j.Path(), want)
			}
			return
		}
		ju, lu := j.URL(), l.URL()
		if ju.Host != lu.Host || ju.Path != strings.TrimSuffix(lu.Path, "/")+"/"+name || ju.RawQuery != lu.RawQuery {
			t.Fatalf("Join(%q, %q) = %v", s, name, ju)
		}
	})
}

func read(t *testing.T, l Location, o Options) ([]byte, error) {
	t.Helper()
	b, err := Open(context.Background(), l, o)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(b)
}

// A path and a file:// URL: whole at the limit, a *TooLargeError one byte
// over, fs.ErrNotExist when missing; a directory is refused.
func TestLocal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "core.db")
	os.WriteFile(p, bytes.Repeat([]byte("x"), 100), 0o644)
	for _, s := range []string{p, "file://" + p} {
		l, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := read(t, l, Options{Limit: 100}); err != nil || len(b) != 100 {
			t.Errorf("%s at the limit: %d %v", s, len(b), err)
		}
		if b, ct, err := ReadAll(context.Background(), l, Options{Limit: 100}); err != nil || len(b) != 100 || ct != "" {
			t.Errorf("ReadAll %s at the limit: %d %q %v", s, len(b), ct, err)
		}
		var tl *httpclient.TooLargeError
		if _, err := read(t, l, Options{Limit: 99}); !errors.As(err, &tl) || tl.Limit != 99 {
			t.Errorf("%s over the limit: %v", s, err)
		}
		if _, _, err := ReadAll(context.Background(), l, Options{Limit: 99}); !errors.As(err, &tl) || tl.URL != s {
			t.Errorf("ReadAll %s over the limit: %v", s, err)
		}
		body, err := Open(context.Background(), l, Options{Limit: 100})
		if err != nil || body.Size != 100 || body.ContentType != "" {
			t.Errorf("%s: %+v %v", s, body, err)
		} else {
			body.Close()
		}
	}
	missing, _ := Parse("file://" + filepath.Join(dir, "missing.db"))
	if _, err := Open(context.Background(), missing, Options{Limit: 1}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if _, _, err := ReadAll(context.Background(), missing, Options{Limit: 1}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadAll missing: %v", err)
	}
	d, _ := Parse(dir)
	if _, err := Open(context.Background(), d, Options{Limit: 1}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	// A pipe is read (scan <(curl …)); RegularOnly refuses it, without
	// blocking on a FIFO nobody writes.
	r, w, _ := os.Pipe()
	go func() { w.Write([]byte("db")); w.Close() }()
	pl, _ := Parse("/dev/fd/" + strconv.Itoa(int(r.Fd())))
	if b, err := read(t, pl, Options{Limit: 10}); err != nil || string(b) != "db" {
		t.Errorf("pipe: %q %v", b, err)
	}
	r.Close()
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	fl, _ := Parse(fifo)
	done := make(chan error, 2)
	go func() { _, err := Open(context.Background(), fl, Options{Limit: 10, RegularOnly: true}); done <- err }()
	go func() {
		_, _, err := ReadAll(context.Background(), fl, Options{Limit: 10, RegularOnly: true})
		done <- err
	}()
	for range 2 {
		select {
		case err := <-done:
			var nr *durable.NotRegularError
			if !errors.As(err, &nr) {
				t.Errorf("FIFO with RegularOnly: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("RegularOnly blocked on a FIFO")
		}
	}
}

// tlsClient is the project's client, trusting the test server's CA.
func tlsClient(t *testing.T, srv *httptest.Server, o httpclient.Options) *http.Client {
	t.Helper()
	o.TLSConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	c, err := httpclient.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// https through the project's client: the body at the limit, a
// Content-Length or a body over it refused, a 404 is fs.ErrNotExist,
// another status a *StatusError, and redirects follow httpclient's policy
// (a downgrade to http refused, a bounded number).
func TestHTTPS(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "plain") }))
	defer plain.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/core/exact":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(bytes.Repeat([]byte("x"), 100))
		case "/core/announced":
			w.Header().Set("Content-Length", "101")
			w.Write(bytes.Repeat([]byte("x"), 101))
		case "/core/chunked":
			w.(http.Flusher).Flush() // no Content-Length: the body itself is over
			w.Write(bytes.Repeat([]byte("x"), 101))
		case "/core/downgrade":
			http.Redirect(w, r, plain.URL+"/x", http.StatusFound)
		case "/core/moved":
			http.Redirect(w, r, "/core/exact", http.StatusMovedPermanently)
		case "/core/loop":
			http.Redirect(w, r, "/core/loop", http.StatusFound)
		case "/core/gone":
			http.Error(w, "gone", http.StatusGone)
		case "/core/a%b#c?.t":
			fmt.Fprint(w, "escaped")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	hc := tlsClient(t, srv, httpclient.Options{MaxRedirects: 3})
	ctx := context.Background()
	loc := func(name string) Location {
		l, err := Parse(Join(srv.URL+"/core", name))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	o := Options{HTTP: hc, Limit: 100}
	if b, ct, err := ReadAll(ctx, loc("exact"), o); err != nil || len(b) != 100 || ct != "application/octet-stream" {
		t.Errorf("exact: %d %q %v", len(b), ct, err)
	}
	if b, _, err := ReadAll(ctx, loc("moved"), o); err != nil || len(b) != 100 {
		t.Errorf("redirect within https: %d %v", len(b), err)
	}
	if b, _, err := ReadAll(ctx, loc("a%b#c?.t"), o); err != nil || string(b) != "escaped" {
		t.Errorf("escaped name: %q %v", b, err)
	}
	var tl *httpclient.TooLargeError
	if _, err := Open(ctx, loc("announced"), o); !errors.As(err, &tl) {
		t.Errorf("Content-Length over the limit: %v", err)
	}
	if _, _, err := ReadAll(ctx, loc("chunked"), o); !errors.As(err, &tl) || !strings.HasPrefix(tl.URL, srv.URL) {
		t.Errorf("body over the limit: %v", err)
	}
	var se *httpclient.StatusError
	if _, _, err := ReadAll(ctx, loc("missing"), o); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("404: %v", err)
	}
	if _, _, err := ReadAll(ctx, loc("gone"), o); errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) || se.Code != 410 {
		t.Errorf("410: %v", err)
	}
	var re *httpclient.RedirectError
	if _, _, err := ReadAll(ctx, loc("downgrade"), o); !errors.As(err, &re) || !strings.Contains(re.Reason, "downgrade") {
		t.Errorf("https→http redirect: %v", err)
	}
	if _, _, err := ReadAll(ctx, loc("loop"), o); !errors.As(err, &re) || !strings.Contains(re.Reason, "redirects") {
		t.Errorf("redirect loop: %v", err)
	}
	if _, _, err := ReadAll(ctx, loc("exact"), Options{Limit: 100}); err == nil || !strings.Contains(err.Error(), "no HTTP client") {
		t.Errorf("no client: %v", err)
	}
	// The context bounds the request.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := ReadAll(cctx, loc("exact"), o); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// A certificate the client does not trust.
	if _, _, err := ReadAll(ctx, loc("exact"), Options{HTTP: mustClient(t), Limit: 100}); err == nil {
		t.Error("an untrusted certificate was accepted")
	}
	// Credentials in the URL do not show in errors.
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("op", "hunter2")
	l, _ := Parse(u.String() + "/core/missing")
	if _, _, err := ReadAll(ctx, l, o); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error with credentials: %v", err)
	}
}

func mustClient(t *testing.T) *http.Client {
	c, err := httpclient.New(httpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
