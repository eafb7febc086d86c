package httpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/testkit/socks5test"
)

// remoteAddrs is a target server that records the peer address of every
// request it serves.
type remoteAddrs struct {
	mu    sync.Mutex
	addrs []string
}

func (r *remoteAddrs) add(a string) { r.mu.Lock(); r.addrs = append(r.addrs, a); r.mu.Unlock() }
func (r *remoteAddrs) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...)
}

func newTarget(t *testing.T) (*httptest.Server, *remoteAddrs) {
	t.Helper()
	seen := &remoteAddrs{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.RemoteAddr)
		fmt.Fprintf(w, "hello %s %s", r.Host, r.Header.Get("User-Agent"))
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func port(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	return u.Port()
}

func get(t *testing.T, c *http.Client, u string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Get(ctx, c, u, 1<<20)
	return string(b), err
}

func TestSOCKS5hResolvesThroughProxyAndNeverConnectsDirect(t *testing.T) {
	target, seen := newTarget(t)
	// "repo.invalid" cannot resolve locally (RFC 2606): only the proxy knows it.
	socks := socks5test.New(t, map[string]string{"repo.invalid": "127.0.0.1"})
	c, err := New(Options{Proxy: "socks5h://" + socks.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	body, err := get(t, c, "http://repo.invalid:"+port(t, target)+"/core/x")
	if err != nil {
		t.Fatalf("GET through socks5h: %v", err)
	}
	if !strings.HasPrefix(body, "hello repo.invalid:") {
		t.Errorf("body = %q", body)
	}
	// An IP literal target goes through the proxy too.
	if _, err := get(t, c, target.URL+"/y"); err != nil {
		t.Fatal(err)
	}
	reqs := socks.Requests()
	if len(reqs) != 2 || !reqs[0].Domain || reqs[0].Host != "repo.invalid" || reqs[1].Host != "127.0.0.1" {
		t.Fatalf("proxy saw %+v, want the name repo.invalid then 127.0.0.1", reqs)
	}
	for _, a := range seen.list() {
		if !socks.Outbound(a) {
			t.Errorf("target got a connection from %s, which the proxy did not make: a direct connection", a)
		}
	}
	if len(seen.list()) == 0 {
		t.Fatal("target saw no request")
	}
}

func TestSOCKS5ResolvesLocally(t *testing.T) {
	target, seen := newTarget(t)
	socks := socks5test.New(t, map[string]string{"repo.invalid": "127.0.0.1"})
	c, err := New(Options{Proxy: "socks5://" + socks.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, c, "http://localhost:"+port(t, target)+"/"); err != nil {
		t.Fatalf("GET localhost via socks5: %v", err)
	}
	for _, r := range socks.Requests() {
		if r.Domain {
			t.Errorf("socks5:// sent the name %q to the proxy; want a locally resolved address", r.Host)
		}
	}
	if a := seen.list(); len(a) != 1 || !socks.Outbound(a[0]) {
		t.Errorf("target connections %v not made by the proxy", a)
	}
	// A name only the proxy could resolve fails locally, before the proxy.
	n := len(socks.Requests())
	if _, err := get(t, c, "http://repo.invalid:"+port(t, target)+"/"); err == nil {
		t.Error("socks5:// resolved repo.invalid: it must resolve locally and fail")
	}
	if len(socks.Requests()) != n {
		t.Error("the proxy was asked for a name that did not resolve locally")
	}
}

func TestBypassProxyForPackagesOnly(t *testing.T) {
	target, seen := newTarget(t)
	socks := socks5test.New(t, nil)
	c, err := New(Options{Proxy: "socks5h://" + socks.Addr(), BypassProxyFor: IsPackageDownload})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path   string
		direct bool
	}{
		{"/core/os/x86_64/foo-1.0-1-x86_64.pkg.tar.zst", true},
		{"/core/os/x86_64/foo-1.0-1-x86_64.pkg.tar.zst.sig", true},
		{"/t/foo-1.0-1-x86_64.pkg.tar.zst.t", false},
		{"/t/foo-1.0-1-x86_64.pkg.tar.zst.t.bundle", false},
		{"/core/os/x86_64/core.db", false},
	}
	for _, tc := range cases {
		before := len(seen.list())
		c.CloseIdleConnections() // a new connection per request: each is attributable
		if _, err := get(t, c, target.URL+tc.path); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		a := seen.list()[before]
		if viaProxy := socks.Outbound(a); viaProxy == tc.direct {
			t.Errorf("%s: direct=%v, want %v", tc.path, !viaProxy, tc.direct)
		}
	}
}

func TestHTTPProxy(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	proxySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.String())
		mu.Unlock()
		io.WriteString(w, "via proxy")
	}))
	defer proxySrv.Close()
	c, err := New(Options{Proxy: proxySrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	body, err := get(t, c, "http://repo.invalid/core.db")
	if err != nil || body != "via proxy" {
		t.Fatalf("got %q, %v", body, err)
	}
	if len(asked) != 1 || asked[0] != "http://repo.invalid/core.db" {
		t.Errorf("proxy asked for %v", asked)
	}
}

func TestProxyDownFailsClosed(t *testing.T) {
	target, seen := newTarget(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, p := range []string{"socks5h://" + dead, "socks5://" + dead, "http://" + dead} {
		c, err := New(Options{Proxy: p})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get(t, c, target.URL); err == nil {
			t.Errorf("%s down: request succeeded", p)
		}
	}
	if n := len(seen.list()); n != 0 {
		t.Errorf("target served %d requests with the proxy down: fell back to direct", n)
	}
}

func TestNoImplicitEnvironmentProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("ALL_PROXY", "socks5h://127.0.0.1:1")
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := transportOf(c)
	if tr.Proxy != nil {
		t.Fatal("the default client consults a proxy function")
	}
	c, err = New(Options{Proxy: ProxyEnvironment})
	if err != nil {
		t.Fatal(err)
	}
	tr = transportOf(c)
	req, _ := http.NewRequest("GET", "http://repo.example/", nil)
	if u, err := tr.Proxy(req); err != nil || u == nil || u.Host != "127.0.0.1:1" {
		t.Errorf(`Proxy "env" gives %v, %v; want HTTP_PROXY`, u, err)
	}
}

func TestBadProxy(t *testing.T) {
	for _, p := range []string{"ftp://127.0.0.1:1", "socks5h://127.0.0.1", "127.0.0.1:9050", "socks4://127.0.0.1:9050", "socks5h://user:secret@127.0.0.1"} {
		_, err := New(Options{Proxy: p})
		var pe *ProxyError
		if !errors.As(err, &pe) {
			t.Errorf("%q: err = %v, want *ProxyError", p, err)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error leaks the password: %v", p, err)
		}
	}
}

func TestUserAgent(t *testing.T) {
	target, _ := newTarget(t)
	c, _ := New(Options{})
	body, err := get(t, c, target.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, " bintrans/") {
		t.Errorf("default user agent not bintrans/…: %q", body)
	}
	c, _ = New(Options{UserAgent: "bintrans/1.2.3"})
	body, _ = get(t, c, target.URL)
	if !strings.HasSuffix(body, " bintrans/1.2.3") {
		t.Errorf("user agent: %q", body)
	}
}

func TestGetErrors(t *testing.T) {
	const max = 1 << 10
	mux := http.NewServeMux()
	mux.HandleFunc("/html502", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><head><title>502 Bad Gateway</title><style>body{}</style></head><body><h1>502 Bad Gateway</h1>\x1b[31m<hr>nginx</body></html>")
	})
	mux.HandleFunc("/json400", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"code":400,"message":"error processing entry: failed to verify signature"}`)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("/exact", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, max)) })
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for i := 0; i < 1600; i++ { // 100 MiB unless the client stops reading
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := New(Options{})
	ctx := context.Background()

	_, err := Get(ctx, c, srv.URL+"/html502", max)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 502 || se.Snippet != "502 Bad Gateway" {
		t.Errorf("HTML 502: %#v", err)
	}
	_, err = Get(ctx, c, srv.URL+"/json400", max)
	if !errors.As(err, &se) || se.Code != 400 || se.Snippet != "error processing entry: failed to verify signature" {
		t.Errorf("JSON 400: %#v", err)
	}
	_, err = Get(ctx, c, srv.URL+"/missing", max)
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("404: %v, want fs.ErrNotExist and *StatusError", err)
	}
	if b, err := Get(ctx, c, srv.URL+"/exact", max); err != nil || len(b) != max {
		t.Errorf("body of exactly max: %d bytes, %v", len(b), err)
	}
	_, err = Get(ctx, c, srv.URL+"/huge", max)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Limit != max {
		t.Errorf("huge body: %v, want *TooLargeError", err)
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Error("too large must not look like not found")
	}
}

func TestSlowlorisBodyHitsTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		for {
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	defer close(stop)
	c, _ := New(Options{Timeout: 300 * time.Millisecond})
	_, err := Get(context.Background(), c, srv.URL, 1<<20)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("slowloris: %v, want a timeout", err)
	}
	if Temporary(err) {
		t.Error("a timeout must not be retried")
	}
}

func TestHangingHeadersHitContextDeadline(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	c, _ := New(Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Get(ctx, c, srv.URL, 10)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v, want context.DeadlineExceeded", err)
	}
}

func TestRedirects(t *testing.T) {
	plain, _ := newTarget(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			http.Redirect(w, r, plain.URL+"/x", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/once":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer tlsSrv.Close()
	tlsConf := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	c, err := New(Options{TLSConfig: tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	var re *RedirectError
	if _, err := get(t, c, tlsSrv.URL+"/down"); !errors.As(err, &re) || !strings.Contains(re.Reason, "downgrade") {
		t.Errorf("https→http: %v, want a refused downgrade", err)
	}
	if _, err := get(t, c, tlsSrv.URL+"/loop"); !errors.As(err, &re) || !strings.Contains(re.Reason, "redirects") {
		t.Errorf("loop: %v, want the redirect limit", err)
	}
	if body, err := get(t, c, tlsSrv.URL+"/once"); err != nil || body != "ok" {
		t.Errorf("one redirect: %q, %v", body, err)
	}
	c, _ = New(Options{TLSConfig: tlsConf, MaxRedirects: -1})
	if _, err := get(t, c, tlsSrv.URL+"/once"); !errors.As(err, &re) {
		t.Errorf("MaxRedirects<0 followed a redirect: %v", err)
	}
}

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&StatusError{Code: 502}, true},
		{&StatusError{Code: 503}, true},
		{&StatusError{Code: 500}, false},
		{&StatusError{Code: 404}, false},
		{&TooLargeError{}, false},
		{context.DeadlineExceeded, false},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{io.ErrUnexpectedEOF, true},
		{nil, false},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v", tc.err, got)
		}
	}
}

func TestSnippet(t *testing.T) {
	for _, tc := range []struct{ ct, body, want string }{
		{"text/html", "<html><title> 502  Bad\nGateway </title></html>", "502 Bad Gateway"},
		{"text/html", "<p>Service <b>down</b> &amp; out</p><script>alert(1)</script>", "Service down & out"},
		{"application/json", `{"code":409,"message":"already exists"}`, "already exists"},
		{"text/plain", "line1\r\n\x00\x1b[2Jline2", "line1 [2Jline2"},
		{"", strings.Repeat("a", 500), strings.Repeat("a", MaxSnippet) + "…"},
		{"", "", ""},
	} {
		if got := Snippet(tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("Snippet(%q, %q) = %q, want %q", tc.ct, tc.body, got, tc.want)
		}
	}
}

func FuzzSnippet(f *testing.F) {
	f.Add("text/html", []byte("<html><title>502</title></html>"))
	f.Add("application/json", []byte(`{"message":"x"}`))
	f.Add("", []byte("\xff\xfe\x00<title>"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		s := Snippet(ct, body)
		if n := len([]rune(s)); n > MaxSnippet+1 {
			t.Fatalf("snippet of %d runes", n)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character %q in %q", r, s)
			}
		}
	})
}

func transportOf(c *http.Client) *http.Transport {
	return c.Transport.(*userAgent).base.(*stallGuard).base.(*http.Transport)
}

func TestStalledBody(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first bytes"))
		w.(http.Flusher).Flush()
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	c, _ := New(Options{Timeout: -1, StallTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Get(ctx, c, srv.URL, 1<<20)
	var se *StallError
	if !errors.As(err, &se) || se.Idle != time.Second {
		t.Fatalf("stalled body: %v, want *StallError", err)
	}
	if Temporary(err) {
		t.Error("a stall must not be retried")
	}
	// A body that keeps coming is not a stall, however long it takes.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 8; i++ { // 1.6 s in all, never 1 s without a byte
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
		}
	}))
	defer srv2.Close()
	if b, err := Get(ctx, c, srv2.URL, 1<<20); err != nil || string(b) != "xxxxxxxx" {
		t.Errorf("slow but steady body: %q, %v", b, err)
	}
}
