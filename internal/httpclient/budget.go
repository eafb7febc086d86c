package httpclient

import (
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Budget bounds the response bytes that the requests of one run hold at
// once: every byte read from a response body is charged when it is read
// and released when the body is closed (the reader is done with it). A
// read that would take the charge beyond the budget fails with a
// *BudgetError, and so does the request it belongs to. Per-response limits
// (LimitBody) bound one answer; a Budget bounds their sum however many
// requests are in flight (--jobs, several rebuilders).
//
// Bytes are charged as they are read, not reserved in advance, so a
// request that finishes below the budget never waits and never fails
// because of answers that are still to come; the one that goes over is the
// one that fails. A Budget is safe for concurrent use.
type Budget struct {
	name string
	max  int64

	mu         sync.Mutex
	held, peak int64
}

// NewBudget returns a budget of max bytes; name says whose answers it
// bounds ("transparency log answers"), for the error.
func NewBudget(name string, max int64) *Budget {
	return &Budget{name: name, max: max}
}

// Peak is the largest number of bytes held at once so far.
func (b *Budget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// Held is the number of bytes held now (read from bodies not yet closed).
func (b *Budget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// BudgetError is a response that could not be read within the run's
// budget: the answers being read at once would exceed it.
type BudgetError struct {
	Name string // whose answers ("transparency log answers")
	Max  int64
	URL  string // the request that went over (redacted)
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("%s: run memory budget exhausted: the %s held at once would exceed %d MiB (answers far larger than any honest one)",
		e.URL, e.Name, e.Max>>20)
}

// Client returns a copy of c whose responses are charged to the budget.
func (b *Budget) Client(c *http.Client) *http.Client {
	cc := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc.Transport = &budgetTransport{b: b, base: base}
	return &cc
}

// budgetChunk is the most one Read of a budgeted body asks for.
const budgetChunk = 64 << 10

type budgetTransport struct {
	b    *Budget
	base http.RoundTripper
}

func (t *budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &budgetBody{rc: resp.Body, b: t.b, url: Redact(req.URL)}
	return resp, nil
}

// CloseIdleConnections passes on to the base transport.
func (t *budgetTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type budgetBody struct {
	rc   io.ReadCloser
	b    *Budget
	url  string
	mu   sync.Mutex
	held int64 // charged to b by this body, not released yet
}

func (r *budgetBody) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	avail := b.max - b.held
	if avail <= 0 {
		b.mu.Unlock()
		return 0, &BudgetError{Name: b.name, Max: b.max, URL: r.url}
	}
	// Reserve what this read may return (at most a chunk, so that a
	// reader with a large buffer does not crowd out the others), give
	// back what it did not return.
	if len(p) > budgetChunk {
		p = p[:budgetChunk]
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	b.held += int64(len(p))
	b.mu.Unlock()

	n, err := r.rc.Read(p)

	b.mu.Lock()
	b.held -= int64(len(p) - n)
	b.peak = max(b.peak, b.held)
	b.mu.Unlock()
	r.mu.Lock()
	r.held += int64(n)
	r.mu.Unlock()
	return n, err
}

// Close releases what the body was charged.
func (r *budgetBody) Close() error {
	r.mu.Lock()
	held := r.held
	r.held = 0
	r.mu.Unlock()
	r.b.mu.Lock()
	r.b.held -= held
	r.b.mu.Unlock()
	return r.rc.Close()
}
