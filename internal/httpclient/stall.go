package httpclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// StallError is a response body that delivered nothing for Idle.
type StallError struct {
	URL  string
	Idle time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s: no data for %s", e.URL, e.Idle)
}

// Timeout makes a stall count as a timeout (net.Error style): it is not
// retried by Temporary.
func (e *StallError) Timeout() bool { return true }

// stallGuard cancels a request whose body stops delivering bytes.
type stallGuard struct {
	base http.RoundTripper
	d    time.Duration
}

func (g *stallGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	resp, err := g.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	b := &stallBody{rc: resp.Body, cancel: cancel, d: g.d, url: Redact(req.URL)}
	b.timer = time.AfterFunc(g.d, func() {
		b.stalled.Store(true)
		cancel()
	})
	resp.Body = b
	return resp, nil
}

func (g *stallGuard) CloseIdleConnections() {
	if c, ok := g.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type stallBody struct {
	rc      io.ReadCloser
	cancel  context.CancelFunc
	d       time.Duration
	url     string
	timer   *time.Timer
	stalled atomic.Bool
	once    sync.Once
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if b.stalled.Load() {
		return n, &StallError{URL: b.url, Idle: b.d}
	}
	if n > 0 {
		b.timer.Reset(b.d)
	}
	if err != nil {
		b.timer.Stop()
	}
	return n, err
}

func (b *stallBody) Close() error {
	err := b.rc.Close()
	b.once.Do(func() {
		b.timer.Stop()
		b.cancel()
	})
	return err
}
