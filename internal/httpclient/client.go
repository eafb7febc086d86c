// Package httpclient builds the one HTTP client every bintrans command uses:
// bounded in time (dial, TLS, response header, whole request), bounded in
// size (Get and LimitBody), with a fixed user agent, keep-alives on, a small
// idle pool, a redirect limit that refuses https→http downgrades, and an
// explicit proxy policy.
//
// Proxy policy. bintrans never routes through a proxy it was not told about:
// the HTTP_PROXY/HTTPS_PROXY/ALL_PROXY environment is ignored unless
// Options.Proxy is the literal "env". A security tool that silently follows
// an environment variable can be redirected by whoever controls the
// environment of a pacman hook; and the opposite surprise (a user who set
// --proxy socks5h://… for Tor leaking a request direct) is prevented by
// making every connection, DNS included for socks5h, go through the proxy
// unless BypassProxyFor says otherwise.
package httpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/net/proxy"
)

// Defaults used when an Options field is zero.
const (
	DefaultTimeout               = 60 * time.Second
	DefaultDialTimeout           = 10 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConnsPerHost   = 16
	DefaultMaxRedirects          = 5
	DefaultStallTimeout          = 30 * time.Second
)

// ProxyEnvironment is the Options.Proxy value that opts in to the
// HTTP_PROXY/HTTPS_PROXY/NO_PROXY environment variables.
const ProxyEnvironment = "env"

// Options configure New. The zero value is a direct client with the
// defaults above.
type Options struct {
	// Timeout bounds a whole request, body included (http.Client.Timeout).
	// Zero means DefaultTimeout; a negative value means no overall limit
	// (large package downloads): the caller must then bound the request
	// with its context.
	Timeout time.Duration
	// Proxy is empty (direct), "socks5h://host:port" (the proxy resolves
	// names: nothing is looked up locally), "socks5://host:port" (names are
	// resolved locally, then the address is sent to the proxy),
	// "http://host:port" or "https://host:port" (CONNECT for https targets),
	// or "env" (the standard environment variables). User info in a SOCKS
	// URL is sent as username/password (Tor stream isolation).
	Proxy string
	// BypassProxyFor, when set together with Proxy, sends the requests for
	// which it returns true direct (--bypass-proxy-for-pkgs uses
	// IsPackageDownload). Redirects are decided again per request.
	BypassProxyFor func(*http.Request) bool
	// UserAgent defaults to "bintrans/<module version>".
	UserAgent string

	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	IdleConnTimeout       time.Duration
	MaxIdleConnsPerHost   int
	// StallTimeout fails a response body that delivers no byte for this
	// long (*StallError), whatever Timeout is: with Timeout < 0 it is what
	// stops a download from a mirror that stops sending. Zero means
	// DefaultStallTimeout; negative disables it. (A peer that trickles one
	// byte at a time is stopped only by Timeout or the context.)
	StallTimeout time.Duration
	// MaxRedirects bounds the redirects followed; zero means
	// DefaultMaxRedirects, negative means none are followed.
	MaxRedirects int
	// TLSConfig, when set, is cloned (tests with a private CA).
	TLSConfig *tls.Config
}

// ProxyError reports a proxy setting that cannot be used.
type ProxyError struct {
	Proxy  string // sanitized: no password
	Reason string
}

func (e *ProxyError) Error() string { return "proxy " + e.Proxy + ": " + e.Reason }

// RedirectError reports a redirect that was refused.
type RedirectError struct {
	From, To string
	Reason   string
}

func (e *RedirectError) Error() string {
	return "redirect from " + e.From + " to " + e.To + " refused: " + e.Reason
}

// New returns a client configured by o. Every client it returns has an
// overall timeout (unless o.Timeout < 0), keep-alives and a bounded idle
// pool; bodies are not limited here: read them with Get or LimitBody.
func New(o Options) (*http.Client, error) {
	o = withDefaults(o)
	direct, err := newTransport(o, "")
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = direct
	if o.Proxy != "" {
		proxied, err := newTransport(o, o.Proxy)
		if err != nil {
			return nil, err
		}
		if o.BypassProxyFor != nil {
			rt = &router{proxied: proxied, direct: direct, bypass: o.BypassProxyFor}
		} else {
			direct.CloseIdleConnections()
			rt = proxied
		}
	}
	if o.StallTimeout > 0 {
		rt = &stallGuard{base: rt, d: o.StallTimeout}
	}
	c := &http.Client{
		Transport: &userAgent{base: rt, ua: o.UserAgent},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			prev := via[len(via)-1]
			if len(via) > o.MaxRedirects {
				return &RedirectError{From: Redact(prev.URL), To: Redact(req.URL), Reason: fmt.Sprintf("more than %d redirects", o.MaxRedirects)}
			}
			if prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
				return &RedirectError{From: Redact(prev.URL), To: Redact(req.URL), Reason: "downgrade from https"}
			}
			return nil
		},
	}
	if o.Timeout > 0 {
		c.Timeout = o.Timeout
	}
	return c, nil
}

func withDefaults(o Options) Options {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.TLSHandshakeTimeout <= 0 {
		o.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = DefaultMaxRedirects
	} else if o.MaxRedirects < 0 {
		o.MaxRedirects = 0
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent()
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	return o
}

// DefaultUserAgent is "bintrans/<version>", the version taken from the
// build information ("dev" for a development build).
func DefaultUserAgent() string {
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return "bintrans/" + v
}

func newTransport(o Options, proxyURL string) (*http.Transport, error) {
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // never implicitly from the environment
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * o.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		TLSHandshakeTimeout:   o.TLSHandshakeTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if o.TLSConfig != nil {
		tr.TLSClientConfig = o.TLSConfig.Clone()
	}
	if proxyURL == "" {
		return tr, nil
	}
	if proxyURL == ProxyEnvironment {
		tr.Proxy = http.ProxyFromEnvironment
		return tr, nil
	}
	u, err := url.Parse(proxyURL)
	if err != nil || u.Host == "" {
		return nil, &ProxyError{Proxy: redactString(proxyURL), Reason: "not a URL like socks5h://127.0.0.1:9050"}
	}
	if u.Port() == "" {
		return nil, &ProxyError{Proxy: Redact(u), Reason: "missing port"}
	}
	switch u.Scheme {
	case "http", "https":
		tr.Proxy = http.ProxyURL(u)
	case "socks5", "socks5h":
		var auth *proxy.Auth
		if u.User != nil {
			pw, _ := u.User.Password()
			auth = &proxy.Auth{User: u.User.Username(), Password: pw}
		}
		d, err := proxy.SOCKS5("tcp", u.Host, auth, dialer)
		if err != nil {
			return nil, &ProxyError{Proxy: Redact(u), Reason: err.Error()}
		}
		cd, ok := d.(proxy.ContextDialer)
		if !ok {
			return nil, &ProxyError{Proxy: Redact(u), Reason: "SOCKS dialer without context support"}
		}
		if u.Scheme == "socks5h" {
			tr.DialContext = cd.DialContext
		} else {
			tr.DialContext = localDNS(cd)
		}
	default:
		return nil, &ProxyError{Proxy: Redact(u), Reason: "unsupported scheme " + u.Scheme + " (want socks5h, socks5, http or https)"}
	}
	return tr, nil
}

// localDNS resolves the host locally and asks the SOCKS proxy to connect to
// the resulting addresses in turn (socks5:// semantics).
func localDNS(d proxy.ContextDialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if net.ParseIP(host) != nil {
			return d.DialContext(ctx, network, addr)
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.IP.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if len(errs) == 0 {
			return nil, fmt.Errorf("%s: no addresses", host)
		}
		return nil, errors.Join(errs...)
	}
}

// IsPackageDownload reports whether req fetches a package file or its
// detached signature (`*.pkg.tar*`, `*.pkg.tar*.sig`): the requests
// --bypass-proxy-for-pkgs sends direct. `.t` files and proof bundles are
// not package downloads: who asks for them reveals what is installed.
func IsPackageDownload(req *http.Request) bool {
	base := path.Base(req.URL.Path)
	if !strings.Contains(base, ".pkg.tar") {
		return false
	}
	return !strings.HasSuffix(base, ".t") && !strings.HasSuffix(base, ".t.bundle")
}

type router struct {
	proxied, direct *http.Transport
	bypass          func(*http.Request) bool
}

func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.bypass(req) {
		return r.direct.RoundTrip(req)
	}
	return r.proxied.RoundTrip(req)
}

func (r *router) CloseIdleConnections() {
	r.proxied.CloseIdleConnections()
	r.direct.CloseIdleConnections()
}

type userAgent struct {
	base http.RoundTripper
	ua   string
}

func (u *userAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", u.ua)
	}
	return u.base.RoundTrip(req)
}

func (u *userAgent) CloseIdleConnections() {
	if c, ok := u.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Redact returns u with its password masked (safe to print).
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Redacted()
}

func redactString(s string) string {
	if u, err := url.Parse(s); err == nil {
		return Redact(u)
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "…" + s[i:]
	}
	return s
}
