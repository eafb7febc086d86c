package httpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what an error report keeps of a response.
const (
	// snippetRead is how much of an error response body is read.
	snippetRead = 4 << 10
	// MaxSnippet is the longest StatusError.Snippet, in runes.
	MaxSnippet = 160
)

// StatusError is a non-2xx answer. Snippet is a short, printable summary of
// the body (the "message" of a JSON error, the title or text of an HTML
// page), never raw server bytes. A 404 unwraps to fs.ErrNotExist, as a
// missing local file does: callers that must tell "not found" from "could
// not find out" test that, and translate it into their own domain's error.
type StatusError struct {
	URL     string
	Code    int
	Snippet string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d %s", e.URL, e.Code, http.StatusText(e.Code))
	if e.Snippet != "" {
		s += ": " + e.Snippet
	}
	return s
}

// Unwrap makes errors.Is(err, fs.ErrNotExist) true for a 404.
func (e *StatusError) Unwrap() error {
	if e.Code == http.StatusNotFound {
		return fs.ErrNotExist
	}
	return nil
}

// TooLargeError is a response body longer than the reader's limit. Nothing
// of such a body is used.
type TooLargeError struct {
	URL   string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: response body larger than %d bytes", e.URL, e.Limit)
}

// Get fetches url with ctx and returns its body, at most max bytes.
// Errors: a 404 is a *StatusError wrapping fs.ErrNotExist, another
// non-2xx a *StatusError, a longer body a *TooLargeError, anything else a
// transport error (errors.Is(err, context.DeadlineExceeded) on timeouts).
func Get(ctx context.Context, c *http.Client, url string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := CheckStatus(resp); err != nil {
		return nil, err
	}
	return ReadAll(resp, max)
}

// ReadAll reads resp's body, at most max bytes (*TooLargeError beyond).
// The caller still closes the body.
func ReadAll(resp *http.Response, max int64) ([]byte, error) {
	return io.ReadAll(LimitBody(resp.Body, max, requestURL(resp)))
}

// CheckStatus returns nil for a 2xx response and a *StatusError otherwise,
// reading at most 4 KiB of the body for the snippet. The caller still
// closes the body.
func CheckStatus(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, snippetRead))
	return &StatusError{URL: requestURL(resp), Code: resp.StatusCode, Snippet: Snippet(resp.Header.Get("Content-Type"), b)}
}

func requestURL(resp *http.Response) string {
	if resp.Request != nil && resp.Request.URL != nil {
		return Redact(resp.Request.URL)
	}
	return ""
}

// LimitBody wraps rc so that reading more than max bytes fails with a
// *TooLargeError (instead of silently truncating like io.LimitReader).
func LimitBody(rc io.ReadCloser, max int64, url string) io.ReadCloser {
	return &limitedBody{rc: rc, left: max, max: max, url: url}
}

type limitedBody struct {
	rc        io.ReadCloser
	left, max int64
	url       string
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, &TooLargeError{URL: l.url, Limit: l.max}
	}
	// Allow one byte past the limit to tell "exactly max" from "more".
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, &TooLargeError{URL: l.url, Limit: l.max}
	}
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }

var (
	titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	dropRE  = regexp.MustCompile(`(?is)<(script|style)[^>]*>.*?</(script|style)>`)
	tagRE   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// Snippet summarizes an error body for humans: the "message" of a JSON
// error object, the title (else the text) of an HTML page, or the text,
// with control characters removed, whitespace collapsed and at most
// MaxSnippet runes.
func Snippet(contentType string, body []byte) string {
	if len(body) > snippetRead {
		body = body[:snippetRead]
	}
	text := string(body)
	var je struct {
		Message string `json:"message"`
	}
	trimmed := strings.TrimSpace(text)
	switch {
	case strings.HasPrefix(trimmed, "{") && json.Unmarshal([]byte(trimmed), &je) == nil && je.Message != "":
		text = je.Message
	case strings.Contains(strings.ToLower(contentType), "html") || strings.HasPrefix(trimmed, "<"):
		if m := titleRE.FindStringSubmatch(text); m != nil && strings.TrimSpace(m[1]) != "" {
			text = m[1]
		} else {
			text = tagRE.ReplaceAllString(dropRE.ReplaceAllString(text, " "), " ")
		}
		text = html.UnescapeString(text)
	}
	return clean(text)
}

func clean(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if r == utf8.RuneError {
			continue
		}
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if !unicode.IsPrint(r) {
			continue
		}
		// At most MaxSnippet runes, a pending space included, then "…".
		need := 1
		if space {
			need = 2
		}
		if n+need > MaxSnippet {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Temporary reports whether err is worth retrying for an idempotent
// request: a refused or reset connection, or a 429/502/503/504 answer.
// Timeouts and cancellations are not (the time budget is spent), nor is
// any other answer of the server.
func Temporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var tl *TooLargeError
	var st *StallError
	if errors.As(err, &tl) || errors.As(err, &st) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
