package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// countingProxy is a reverse proxy on 127.0.0.1 in front of the log that
// counts requests per endpoint (entry ids folded into {uuid}).
type countingProxy struct {
	URL string
	srv *http.Server
	ln  net.Listener

	mu sync.Mutex
	n  map[string]int
}

var (
	uuidPath = regexp.MustCompile(`/api/v1/log/entries/[0-9a-f]{64,80}$`)
	// tilePath is a C2SP tile (tlog-tiles): counted per level, the
	// entry bundles apart.
	tilePath = regexp.MustCompile(`^(.*/tile/(?:entries|[0-9]+))/[x0-9/]+(\.p/[0-9]+)?$`)
)

func newCountingProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{URL: "http://" + ln.Addr().String(), ln: ln, n: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep := r.URL.Path
		if uuidPath.MatchString(ep) {
			ep = "/api/v1/log/entries/{uuid}"
		}
		if m := tilePath.FindStringSubmatch(ep); m != nil {
			ep = m[1] + "/{N}"
			if m[2] != "" {
				ep += ".p/{W}"
			}
		}
		p.mu.Lock()
		p.n[r.Method+" "+ep]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	p.n = map[string]int{}
	p.mu.Unlock()
}

// summary is "N requests: k× METHOD path, …".
func (p *countingProxy) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.n))
	total := 0
	for k, v := range p.n {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× `%s`", p.n[k], k)
	}
	return fmt.Sprintf("%d requests: %s", total, strings.Join(parts, ", "))
}

// total is the number of requests counted.
func (p *countingProxy) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.n {
		n += v
	}
	return n
}

func (p *countingProxy) Close() { p.srv.Close() }
