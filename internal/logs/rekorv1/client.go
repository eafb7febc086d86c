// Package rekorv1 is bintrans's Rekor v1 log kind: the client of a Rekor v1
// transparency log (sigstore's generated models and operations over the
// project's HTTP client, httpclient, with a size limit on every response
// body, a context on every call, bounded retries with backoff) and the pure
// verification of what it returns (verify.go, body.go, bundle.go,
// logkey.go: the canonical rekord body and its binding to the `.t`, the
// SET, the proof bundle, VerifyLogged for monitors).
//
// The client converts every answer once into an Entry (hex and base64
// decoded, errors checked) and checks its shape (required fields,
// lengths, that an entry is the one asked for), nothing cryptographic;
// LogKey verifies, against the pinned key. LogKey is the engine's
// verify.LogVerifier; Online (a Client and the LogKey) its
// verify.LogClient and verify.EntryFinder. The operator side uses Upload,
// SearchByPublicKey, EntriesByUUID, PublicKey.
//
// Index semantics on a sharded log (the public instance): Entry.LogIndex
// is the global index (EntriesByIndex takes and keys by it), while
// Entry.Proof.LogIndex is tree-local: proofs must use the latter, display
// the former.
package rekorv1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	"github.com/sigstore/rekor/pkg/generated/client"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/verify"
)

// Limits and defaults.
const (
	// MaxResponseSize bounds every response except search results. A batch
	// of 10 entries with proofs is about 30 KiB.
	MaxResponseSize = 1 << 20
	// MaxSearchResponseSize bounds an index search answer. Rekor v1 has no
	// paging: all UUIDs come in one JSON array of ~85 bytes each, so this
	// allows about 390 000 entries per key.
	MaxSearchResponseSize = 32 << 20
	// MaxBatch is the most items Rekor accepts in one retrieve request.
	MaxBatch = 10
	// DefaultConcurrency bounds parallel retrieve requests of one call.
	DefaultConcurrency = 4
	// DefaultRetries is how often an idempotent call is retried after a
	// refused/reset connection or a 429/502/503/504.
	DefaultRetries = 2
	// maxUploadSize bounds the inputs of Upload.
	maxPubKeyFileSize = 4 << 10
	maxMessageSize    = 64 << 10
)

// Client talks to one Rekor instance. It is safe for concurrent use.
type Client struct {
	base        string
	rc          *client.Rekor
	retries     int
	backoff     time.Duration
	concurrency int
	maxResponse int64
	maxSearch   int64
}

// Option changes a Client's defaults.
type Option func(*Client)

// WithRetries sets how many times an idempotent call is retried (0: never).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// WithBackoff sets the first retry delay (doubled each time, jittered).
func WithBackoff(d time.Duration) Option { return func(c *Client) { c.backoff = d } }

// WithConcurrency bounds the parallel requests of one EntriesByIndex call.
func WithConcurrency(n int) Option { return func(c *Client) { c.concurrency = max(n, 1) } }

// WithMaxResponseSize changes the body limit of non-search responses.
func WithMaxResponseSize(n int64) Option { return func(c *Client) { c.maxResponse = n } }

// WithMaxSearchResponseSize changes the body limit of search responses.
func WithMaxSearchResponseSize(n int64) Option { return func(c *Client) { c.maxSearch = n } }

// New returns a client for the Rekor at baseURL (http or https, optionally
// with a path prefix) that sends every request through hc (build it with
// httpclient.New; nil means httpclient.New(httpclient.Options{})). hc is
// not modified: the client uses a copy whose transport limits bodies.
func New(baseURL string, hc *http.Client, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rekor: log URL %q: want http(s)://host[:port][/path]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("rekor: log URL %q: no query or fragment allowed", baseURL)
	}
	if hc == nil {
		if hc, err = httpclient.New(httpclient.Options{}); err != nil {
			return nil, err
		}
	}
	c := &Client{
		base:        strings.TrimSuffix(u.String(), "/"),
		retries:     DefaultRetries,
		backoff:     100 * time.Millisecond,
		concurrency: DefaultConcurrency,
		maxResponse: MaxResponseSize,
		maxSearch:   MaxSearchResponseSize,
	}
	for _, o := range opts {
		o(c)
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	guarded := *hc
	guarded.Transport = &guard{base: base, defaultMax: c.maxResponse}
	basePath := strings.TrimSuffix(u.Path, "/")
	if basePath == "" {
		basePath = client.DefaultBasePath
	}
	rt := httptransport.NewWithClient(u.Host, basePath, []string{u.Scheme}, &guarded)
	rt.Consumers = map[string]runtime.Consumer{
		runtime.JSONMime:         runtime.JSONConsumer(),
		"application/x-pem-file": runtime.TextConsumer(),
		runtime.TextMime:         runtime.TextConsumer(),
	}
	rt.Producers = map[string]runtime.Producer{runtime.JSONMime: runtime.JSONProducer()}
	c.rc = client.New(rt, strfmt.NewFormats())
	return c, nil
}

// URL is the log's base URL.
func (c *Client) URL() string { return c.base }

// MalformedResponseError is a 2xx answer that is not what the API
// documents: undecodable, truncated, empty, missing required fields, or
// naming another entry than the one asked for.
type MalformedResponseError struct {
	Op     string
	Reason string
	Err    error // the decoding error, if any
}

func (e *MalformedResponseError) Error() string {
	s := "rekor " + e.Op + ": malformed response: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *MalformedResponseError) Unwrap() error { return e.Err }

func malformed(op, format string, args ...any) error {
	return &MalformedResponseError{Op: op, Reason: fmt.Sprintf(format, args...)}
}

// CallError is a call to the log that failed. Err is a
// *httpclient.StatusError (the server said no; a 404 is verify.ErrNotFound),
// a *httpclient.TooLargeError, a *httpclient.BudgetError (the run's answer
// budget, when the client was given a budgeted http.Client), a
// *MalformedResponseError, or a transport
// error (errors.Is(err, context.DeadlineExceeded) on timeouts).
type CallError struct {
	Op  string
	Err error
}

func (e *CallError) Error() string { return "rekor " + e.Op + ": " + e.Err.Error() }

// Unwrap returns Err, and verify.ErrNotFound when Err is a 404 (which
// httpclient reports as fs.ErrNotExist).
func (e *CallError) Unwrap() []error {
	if errors.Is(e.Err, fs.ErrNotExist) {
		return []error{e.Err, verify.ErrNotFound}
	}
	return []error{e.Err}
}

// call runs fn with retries when the failure is temporary, and classifies
// the error.
func (c *Client) call(ctx context.Context, op string, limit int64, fn func(ctx context.Context) error) error {
	ctx = context.WithValue(ctx, limitKey{}, limit)
	delay := c.backoff
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		err = classify(op, err)
		if attempt >= c.retries || !httpclient.Temporary(err) || ctx.Err() != nil {
			return &CallError{Op: op, Err: err}
		}
		d := delay + rand.N(delay/2+1)
		delay *= 2
		select {
		case <-ctx.Done():
			return &CallError{Op: op, Err: err}
		case <-time.After(d):
		}
	}
}

// classify strips the url.Error around errors the guard produced and turns
// decoding failures into *MalformedResponseError.
func classify(op string, err error) error {
	var se *httpclient.StatusError
	if errors.As(err, &se) {
		return se
	}
	var tl *httpclient.TooLargeError
	if errors.As(err, &tl) {
		return tl
	}
	var be *httpclient.BudgetError
	if errors.As(err, &be) {
		return be
	}
	var me *MalformedResponseError
	if errors.As(err, &me) {
		if me.Op == "" {
			c := *me
			c.Op = op
			return &c
		}
		return me
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &MalformedResponseError{Op: op, Reason: "truncated", Err: err}
	}
	return &MalformedResponseError{Op: op, Reason: "cannot decode", Err: err}
}

type limitKey struct{}

// guard enforces the body limit of the request's context on every
// response and turns every non-2xx answer except 409 (which the generated
// client decodes for its Location) into a *httpclient.StatusError.
type guard struct {
	base       http.RoundTripper
	defaultMax int64
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusConflict {
		if err := httpclient.CheckStatus(resp); err != nil {
			resp.Body.Close()
			return nil, err
		}
	}
	limit := g.defaultMax
	if l, ok := req.Context().Value(limitKey{}).(int64); ok && l > 0 {
		limit = l
	}
	resp.Body = &nonEmpty{ReadCloser: httpclient.LimitBody(resp.Body, limit, httpclient.Redact(req.URL))}
	return resp, nil
}

// nonEmpty fails a body that ends before its first byte: every answer of
// the API is a JSON value or a PEM key, and the generated readers treat an
// empty body (io.EOF) as an empty, successful answer.
type nonEmpty struct {
	io.ReadCloser
	seen bool
}

func (b *nonEmpty) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.seen = true
	}
	if err == io.EOF && !b.seen {
		return n, &MalformedResponseError{Reason: "empty body"}
	}
	return n, err
}

func (g *guard) CloseIdleConnections() {
	if c, ok := g.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// checkArg reports a caller error (not a log failure).
func checkArg(op string, ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("rekor %s: %s", op, fmt.Sprintf(format, args...))
}

var _ API = (*Client)(nil)
