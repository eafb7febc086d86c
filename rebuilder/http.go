package rebuilder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/bintrans/bintrans/verify"
)

// HTTPError is a non-2xx answer from a rebuilder. A 404 unwraps to
// verify.ErrNotFound.
type HTTPError struct {
	URL     string
	Code    int
	Snippet string // start of the body, for the human reading the reason
}

func (e *HTTPError) Error() string {
	if e.Snippet == "" {
		return fmt.Sprintf("HTTP %d from %s", e.Code, e.URL)
	}
	return fmt.Sprintf("HTTP %d from %s: %q", e.Code, e.URL, e.Snippet)
}

func (e *HTTPError) Unwrap() error {
	if e.Code == http.StatusNotFound {
		return verify.ErrNotFound
	}
	return nil
}

// TooLargeError says that a response body exceeded the configured limit;
// reading stopped at Limit+1 bytes.
type TooLargeError struct {
	URL   string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("response from %s larger than %d bytes", e.URL, e.Limit)
}

// get fetches url with hc, reading at most max bytes of the body. ctx bounds
// the whole exchange, body included.
func get(ctx context.Context, hc *http.Client, url string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &HTTPError{URL: url, Code: resp.StatusCode, Snippet: snippet(b)}
	}
	if resp.ContentLength > max {
		return nil, &TooLargeError{URL: url, Limit: max}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &TooLargeError{URL: url, Limit: max}
	}
	return b, nil
}

func isNotFound(err error) bool { return errors.Is(err, verify.ErrNotFound) }
