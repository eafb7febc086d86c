package socks5test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestProxiesByNameOnly: a socks5h client reaches a server by a name only
// the proxy knows; the origin sees the proxy's outbound connection; an
// unknown name is refused.
func TestProxiesByNameOnly(t *testing.T) {
	var mu sync.Mutex
	var remotes []string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes = append(remotes, r.RemoteAddr)
		mu.Unlock()
		io.WriteString(w, "hello")
	}))
	defer origin.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(origin.URL, "http://"), ":")
	s := New(t, map[string]string{"origin.test": "127.0.0.1"})
	pu, _ := url.Parse(s.URL())
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := c.Get("http://origin.test:" + port + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("body %q", b)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || !reqs[0].Domain || reqs[0].Host != "origin.test" || reqs[0].Addr() != "origin.test:"+port {
		t.Errorf("requests %+v", reqs)
	}
	mu.Lock()
	if len(remotes) != 1 || !s.Outbound(remotes[0]) {
		t.Errorf("origin saw %v, not the proxy's outbound connection", remotes)
	}
	mu.Unlock()
	if _, err := c.Get("http://unknown.test:" + port + "/x"); err == nil {
		t.Error("an unknown name was connected")
	}
	c.CloseIdleConnections()
}
