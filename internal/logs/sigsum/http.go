package sigsum

import (
	"fmt"
	"io"
	"net/http"
)

// bounded returns a client like c (nil: a private direct one, proxy
// environment ignored, 30 s timeout) whose response bodies fail beyond
// MaxResponse bytes: sigsum-go's client reads answers whole.
func bounded(c *http.Client) *http.Client {
	if c == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		c = &http.Client{Timeout: DefaultRequestTimeout, Transport: t}
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	b := *c
	b.Transport = limitTransport{base: base, max: MaxResponse}
	return &b
}

type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

// limitedBody fails (rather than truncates) a body longer than max.
type limitedBody struct {
	rc        io.ReadCloser
	left, max int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, fmt.Errorf("sigsum log answer larger than %d bytes", l.max)
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, fmt.Errorf("sigsum log answer larger than %d bytes", l.max)
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
