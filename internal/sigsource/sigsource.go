// Package sigsource finds the `.t` signature and the proof bundle of a
// package: over http(s), in a file:// URL or in a plain directory.
//
// It is the one place that knows the layout of a transparency URL:
//
//	<base>/<package filename>.t          (verify.SignatureSuffix)
//	<base>/<package filename>.t.bundle   (verify.BundleSuffix)
//	<base>/statements/<db sha256>.stmt   a repository statement (docs/STATEMENTS.md),
//	                                     with its own .t and .t.bundle next to it
//
// A statement is verified as an artifact whose file name is its path,
// "statements/<64 lowercase hex>.stmt" (freshness.Path): the one name with
// a '/' a source accepts.
//
// A source only fetches bytes. It does not verify them and caches nothing:
// what it returns is untrusted until the verify engine accepts it. Every
// read is bounded (verify.MaxSignatureSize, verify.MaxBundleSize): a longer
// file is a *TooLargeError, never a truncated result. A missing file is an
// error wrapping verify.ErrNotFound; any other failure means "could not find
// out" and must not be read as "not signed".
package sigsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/location"
	"github.com/bintrans/bintrans/verify"
)

// MaxFilenameLength is the longest package file name accepted (NAME_MAX on
// Linux; with the `.t.bundle` suffix the file name stays a valid path
// element on file systems with a 255-byte limit).
const MaxFilenameLength = 255 - len(verify.BundleSuffix)

// DefaultTimeout bounds one request when the caller's context has no
// deadline, so that a client built without a timeout cannot hang a source.
const DefaultTimeout = 60 * time.Second

// FilenameError is a package file name that cannot be a key of a
// transparency URL: empty, `.`/`..`, containing `/`, NUL or another control
// character, or too long. Such a name never comes from a well-formed
// repository database, so it is refused before any I/O.
type FilenameError struct {
	Filename string
	Reason   string
}

func (e *FilenameError) Error() string {
	return fmt.Sprintf("sigsource: invalid package file name %q: %s", e.Filename, e.Reason)
}

// NotFoundError is a signature or bundle that does not exist at Location.
// It unwraps to verify.ErrNotFound.
type NotFoundError struct {
	Location string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("sigsource: %s: not found", e.Location) }

// Unwrap returns verify.ErrNotFound.
func (e *NotFoundError) Unwrap() error { return verify.ErrNotFound }

// TooLargeError is a file longer than the limit for its kind. Nothing of it
// is returned.
type TooLargeError struct {
	Location string
	Limit    int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("sigsource: %s: larger than %d bytes", e.Location, e.Limit)
}

// Unwrap makes the error verify.ErrTooLarge for the engine.
func (e *TooLargeError) Unwrap() error { return verify.ErrTooLarge }

// UnexpectedContentError is a successful answer whose body is not what a
// transparency URL serves: an HTML page (a captive portal, a CDN's "soft
// 404", a directory listing) where a `.t` or a bundle was expected.
type UnexpectedContentError struct {
	Location    string
	ContentType string
	// Snippet is a short printable summary of the body (its HTML title).
	Snippet string
}

func (e *UnexpectedContentError) Error() string {
	s := fmt.Sprintf("sigsource: %s: got an HTML page (Content-Type %q), not a signature file", e.Location, e.ContentType)
	if e.Snippet != "" {
		s += ": " + e.Snippet
	}
	return s
}

// FetchError is a file that could not be read: a transport error, a
// timeout, a non-2xx answer other than 404/410 (Err is then an
// *httpclient.StatusError), or an I/O error on a local file.
type FetchError struct {
	Location string
	Err      error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("sigsource: %s: %v", e.Location, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// NoSourceError is an artifact of a repository for which PerRepo has no
// source and no fallback (a configuration gap, not a missing signature).
type NoSourceError struct {
	Repo string
}

func (e *NoSourceError) Error() string {
	return fmt.Sprintf("sigsource: no transparency URL configured for repository %q", e.Repo)
}

// CheckFilename returns a *FilenameError unless name is a plain file name
// that can safely be appended to a transparency URL or a directory.
func CheckFilename(name string) error {
	bad := func(reason string) error { return &FilenameError{Filename: name, Reason: reason} }
	switch {
	case name == "":
		return bad("empty")
	case name == "." || name == "..":
		return bad("not a file name")
	case len(name) > MaxFilenameLength:
		return bad(fmt.Sprintf("longer than %d bytes", MaxFilenameLength))
	case strings.ContainsRune(name, '/'):
		return bad("contains '/'")
	case strings.ContainsRune(name, '\\'):
		return bad("contains '\\'")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return bad(fmt.Sprintf("contains control character %U", r))
		}
	}
	return nil
}

// checkName is CheckFilename, except that a statement path
// (freshness.IsPath: "statements/<64 lowercase hex>.stmt", nothing else
// with a '/') is accepted too.
func checkName(name string) error {
	if _, ok := freshness.IsPath(name); ok {
		return nil
	}
	return CheckFilename(name)
}

// SignatureName is the file name of the `.t` of package file name
// filename (or of a statement path), checked with CheckFilename.
func SignatureName(filename string) (string, error) {
	if err := checkName(filename); err != nil {
		return "", err
	}
	return filename + verify.SignatureSuffix, nil
}

// BundleName is the file name of the proof bundle of package file name
// filename (or of a statement path), checked with CheckFilename.
func BundleName(filename string) (string, error) {
	if err := checkName(filename); err != nil {
		return "", err
	}
	return filename + verify.BundleSuffix, nil
}

// StatementSource finds repository statements: every source New and PerRepo
// return is one. a.Filename is the statement's path (freshness.Path of the
// database's sha256), a.Repo picks the repository's transparency URL. The
// statement is read whole, at most freshness.MaxSize bytes (a longer one is
// a *TooLargeError); a missing one is a *NotFoundError.
type StatementSource interface {
	Statement(ctx context.Context, a verify.Artifact) ([]byte, error)
}

// statementName checks that a names a statement.
func statementName(a verify.Artifact) (string, error) {
	if _, ok := freshness.IsPath(a.Filename); !ok {
		return "", &FilenameError{Filename: a.Filename, Reason: "not a statement path (statements/<64 lowercase hex>.stmt)"}
	}
	return a.Filename, nil
}

// New returns the source for base: an "http://" or "https://" URL (fetched
// with hc, which must be the client built by httpclient.New), a "file://"
// URL or a plain directory path. The directory need not exist yet (files
// in it are then missing).
func New(base string, hc *http.Client) (verify.SignatureSource, error) {
	if base == "" {
		return nil, errors.New("sigsource: empty transparency URL")
	}
	l, err := location.Parse(base)
	if err != nil {
		var le *location.Error
		if errors.As(err, &le) {
			err = errors.New(le.Reason)
		}
		return nil, fmt.Errorf("sigsource: transparency URL %q: %w", base, err)
	}
	if u := l.URL(); u != nil {
		if hc == nil {
			return nil, errors.New("sigsource: an http(s) transparency URL needs an HTTP client")
		}
		if u.User != nil {
			return nil, fmt.Errorf("sigsource: transparency URL %q must not carry credentials", httpclient.Redact(u))
		}
		return &source{base: base, hc: hc}, nil
	}
	return &source{base: l.Path()}, nil
}

// PerRepo returns a source that serves each artifact from bySource[a.Repo],
// or from fallback when the repository has no entry. With a nil fallback,
// an artifact of an unlisted repository is a *NoSourceError. The map is
// copied.
func PerRepo(byRepo map[string]verify.SignatureSource, fallback verify.SignatureSource) verify.SignatureSource {
	m := make(map[string]verify.SignatureSource, len(byRepo))
	for k, v := range byRepo {
		m[k] = v
	}
	return &perRepo{byRepo: m, fallback: fallback}
}

type perRepo struct {
	byRepo   map[string]verify.SignatureSource
	fallback verify.SignatureSource
}

func (p *perRepo) pick(a verify.Artifact) (verify.SignatureSource, error) {
	if s, ok := p.byRepo[a.Repo]; ok && s != nil {
		return s, nil
	}
	if p.fallback != nil {
		return p.fallback, nil
	}
	return nil, &NoSourceError{Repo: a.Repo}
}

func (p *perRepo) Signature(ctx context.Context, a verify.Artifact) ([]byte, error) {
	s, err := p.pick(a)
	if err != nil {
		return nil, err
	}
	return s.Signature(ctx, a)
}

func (p *perRepo) Bundle(ctx context.Context, a verify.Artifact) ([]byte, error) {
	s, err := p.pick(a)
	if err != nil {
		return nil, err
	}
	return s.Bundle(ctx, a)
}

func (p *perRepo) Statement(ctx context.Context, a verify.Artifact) ([]byte, error) {
	s, err := p.pick(a)
	if err != nil {
		return nil, err
	}
	ss, ok := s.(StatementSource)
	if !ok {
		return nil, fmt.Errorf("sigsource: the source of repository %q cannot serve statements", a.Repo)
	}
	return ss.Statement(ctx, a)
}

// source serves <base>/<name> from a directory or an http(s) URL.
type source struct {
	base string // a directory, or an http(s) URL
	hc   *http.Client
}

func (s *source) Signature(ctx context.Context, a verify.Artifact) ([]byte, error) {
	name, err := SignatureName(a.Filename)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, name, verify.MaxSignatureSize)
}

func (s *source) Bundle(ctx context.Context, a verify.Artifact) ([]byte, error) {
	name, err := BundleName(a.Filename)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, name, verify.MaxBundleSize)
}

func (s *source) Statement(ctx context.Context, a verify.Artifact) ([]byte, error) {
	name, err := statementName(a)
	if err != nil {
		return nil, err
	}
	return s.get(ctx, name, freshness.MaxSize)
}

// at is the location <base>/<name>: name is one path element (escaped in
// a URL), except a statement path, whose one '/' is kept (its parts are
// plain: "statements", hex and ".stmt…").
func (s *source) at(name string) string {
	if dir, rest, ok := strings.Cut(name, "/"); ok && dir == freshness.Dir {
		return location.Join(location.Join(s.base, dir), rest)
	}
	return location.Join(s.base, name)
}

// get reads <base>/<name>, at most max bytes. A local file must be a
// regular file (a FIFO planted in a signature directory cannot block the
// read); a server's answer must not be a web page.
func (s *source) get(ctx context.Context, name string, max int64) ([]byte, error) {
	l, err := location.Parse(s.at(name))
	if err != nil {
		return nil, &FetchError{Location: s.at(name), Err: err}
	}
	where := l.String()
	if l.IsLocal() {
		where = l.Path()
	} else if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	b, ct, err := location.ReadAll(ctx, l, location.Options{HTTP: s.hc, Limit: max, RegularOnly: true})
	var se *httpclient.StatusError
	var tl *httpclient.TooLargeError
	var nr *durable.NotRegularError
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || (errors.As(err, &se) && se.Code == http.StatusGone):
		return nil, &NotFoundError{Location: where}
	case errors.As(err, &tl):
		return nil, &TooLargeError{Location: where, Limit: max}
	case errors.As(err, &nr):
		return nil, &FetchError{Location: where, Err: fmt.Errorf("not a regular file (%s)", nr.Mode.Type())}
	case errors.As(err, &se):
		return nil, &FetchError{Location: where, Err: se}
	case err != nil:
		return nil, &FetchError{Location: where, Err: err}
	}
	if !l.IsLocal() && isHTML(ct, b) {
		return nil, &UnexpectedContentError{Location: where, ContentType: ct, Snippet: httpclient.Snippet("text/html", b)}
	}
	return b, nil
}

// isHTML reports whether a body is a web page. Neither a `.t` (it starts
// with "untrusted comment:") nor a bundle (JSON) ever starts with '<'.
func isHTML(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return true
	}
	return bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n\ufeff"), []byte("<"))
}
