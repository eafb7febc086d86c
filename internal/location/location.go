// Package location is the one way bintrans opens a file it is given by
// location: a local path, a file:// URL or an http(s) URL, read through the
// project's one HTTP client (internal/httpclient) and always with a size
// limit. It also owns the two layouts such locations are built with: a
// file under a base (Join: <base>/<name>) and pacman's mirror template
// (Expand: $repo and $arch).
//
// What it does not do: decide what a missing file means (a 404 and a
// missing local file both satisfy errors.Is(err, fs.ErrNotExist); callers
// translate that into their own domain), retry, cache, or apply a time
// limit (the caller's context bounds a request).
package location

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/httpclient"
)

// Location is a parsed location: a local file (a path, or a file:// URL)
// or an http(s) URL. The zero value is not a location.
type Location struct {
	raw  string   // as given
	path string   // the local file; "" for http(s)
	url  *url.URL // the http(s) URL; nil for a local file
}

// Error is a string that is not a location bintrans can open.
type Error struct {
	Location string // as given, credentials redacted
	Reason   string
}

func (e *Error) Error() string { return e.Location + ": " + e.Reason }

// Parse parses s: an "http://" or "https://" URL (the scheme in any case)
// with a host; a "file://" URL of an absolute path on this host (no host,
// or "localhost"); or, when s has no "://", a local path. A URL with a
// query or a fragment, even an empty one, and anything else is an *Error.
// Parse does not judge what a caller may refuse on top (user information):
// URL returns the parsed URL for that.
func Parse(s string) (Location, error) {
	bad := func(reason string) (Location, error) {
		return Location{}, &Error{Location: redactString(s), Reason: reason}
	}
	if s == "" {
		return bad("empty location")
	}
	if !strings.Contains(s, "://") {
		return Location{raw: s, path: filepath.Clean(s)}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("not a URL: " + err.Error())
	}
	// A query or a fragment names no file (a fragment is not even sent),
	// and Join would append to it: refused, even empty.
	if strings.ContainsAny(s, "?#") {
		return bad("a location must not have a query or fragment (escape '?' and '#' in a path: %3F, %23)")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return bad("no host")
		}
		return Location{raw: s, url: u}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("a file:// URL must not name a remote host")
		}
		if !strings.HasPrefix(u.Path, "/") {
			return bad("a file:// URL needs an absolute path (file:///dir)")
		}
		return Location{raw: s, path: filepath.Clean(u.Path)}, nil
	}
	return bad(fmt.Sprintf("unsupported scheme %q (want https, http, file or a path)", u.Scheme))
}

// IsLocal reports whether l is a local file (a path or a file:// URL).
func (l Location) IsLocal() bool { return l.url == nil }

// Path is the local file's path ("" for an http(s) URL).
func (l Location) Path() string { return l.path }

// URL returns a copy of the http(s) URL (nil for a local file).
func (l Location) URL() *url.URL {
	if l.url == nil {
		return nil
	}
	u := *l.url
	return &u
}

// String is the location as given, without credentials: for messages.
func (l Location) String() string {
	if l.url != nil {
		return httpclient.Redact(l.url)
	}
	return l.raw
}

// Join returns <base>/<name>, as pacman appends a file name to a Server
// URL: name is one path element, escaped as a URL path segment when base
// is a URL (a '%', '?' or '#' in it is data, never an escape, a query or a
// fragment), appended as is to a path. Nothing is cleaned or resolved; the
// caller checks that name is a plain file name, and refuses a base URL
// with a query or a fragment (the name would be appended to them).
func Join(base, name string) string {
	if strings.Contains(base, "://") {
		name = url.PathEscape(name)
	}
	return strings.TrimSuffix(base, "/") + "/" + name
}

// Split returns the directory part of l (as a location string, for Join)
// and its last element: a URL's path is split as a URL path, a local path
// by the file system's rules.
func (l Location) Split() (dir, name string) {
	if !strings.Contains(l.raw, "://") {
		return filepath.Dir(l.raw), filepath.Base(l.raw)
	}
	u, _ := url.Parse(l.raw) // Parse succeeded on it
	name = path.Base(u.Path)
	u.Path = path.Dir(u.Path)
	u.RawPath = ""
	return u.String(), name
}

// Expand substitutes $repo and $arch in a mirror template, as pacman does
// for a `Server =` line.
func Expand(template, repo, arch string) string {
	return strings.NewReplacer("$repo", repo, "$arch", arch).Replace(template)
}

// Options bound how a location is read.
type Options struct {
	// HTTP is the client for http(s) locations, the one httpclient.New
	// builds (redirects, proxies, timeouts). Required for them.
	HTTP *http.Client
	// Limit bounds the content in bytes: a longer body is a
	// *httpclient.TooLargeError, never a truncated one.
	Limit int64
	// RegularOnly refuses a local file that is not a regular file (a FIFO,
	// a device, a directory) with a *durable.NotRegularError, without
	// blocking in its open.
	RegularOnly bool
}

// Body is an open location, read at most Options.Limit bytes.
type Body struct {
	io.ReadCloser
	// ContentType is the server's Content-Type ("" for a local file).
	ContentType string
	// Size is the announced length (a local file's size, a response's
	// Content-Length), -1 when unknown.
	Size int64
}

// Open opens l for one streaming read of at most o.Limit bytes; ctx
// bounds an http(s) request, body included. A local directory is refused.
// Errors: a missing file or an HTTP 404 satisfies errors.Is(err,
// fs.ErrNotExist); another non-2xx answer is a *httpclient.StatusError; an
// announced size beyond the limit a *httpclient.TooLargeError (before
// anything is read).
func Open(ctx context.Context, l Location, o Options) (*Body, error) {
	if o.Limit < 0 {
		return nil, fmt.Errorf("%s: negative size limit %d", l, o.Limit)
	}
	if l.url == nil {
		return openLocal(l, o)
	}
	if o.HTTP == nil {
		return nil, errors.New("no HTTP client for " + l.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if err := httpclient.CheckStatus(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	if resp.ContentLength > o.Limit {
		resp.Body.Close()
		return nil, &httpclient.TooLargeError{URL: l.String(), Limit: o.Limit}
	}
	return &Body{ReadCloser: httpclient.LimitBody(resp.Body, o.Limit, l.String()),
		ContentType: resp.Header.Get("Content-Type"), Size: resp.ContentLength}, nil
}

func openLocal(l Location, o Options) (*Body, error) {
	flags := os.O_RDONLY
	if o.RegularOnly {
		flags |= syscall.O_NONBLOCK
	}
	f, err := os.OpenFile(l.path, flags, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case fi.Mode().IsRegular():
		if fi.Size() > o.Limit {
			f.Close()
			return nil, &httpclient.TooLargeError{URL: l.String(), Limit: o.Limit}
		}
	case fi.IsDir() && !o.RegularOnly:
		f.Close()
		return nil, fmt.Errorf("%s is a directory", l.path)
	case o.RegularOnly:
		f.Close()
		return nil, &durable.NotRegularError{Path: l.path, Mode: fi.Mode()}
	}
	size := int64(-1)
	if fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return &Body{ReadCloser: httpclient.LimitBody(f, o.Limit, l.String()), Size: size}, nil
}

// ReadAll reads the whole content of l, at most o.Limit bytes, with the
// errors of Open; a local file is read with durable's bounded reader. It
// also returns the server's Content-Type ("" for a local file).
func ReadAll(ctx context.Context, l Location, o Options) (data []byte, contentType string, err error) {
	if l.url == nil {
		read := durable.ReadFile
		if o.RegularOnly {
			read = durable.ReadRegularFile
		}
		b, err := read(l.path, o.Limit)
		var tl *durable.TooLargeError
		if errors.As(err, &tl) {
			return nil, "", &httpclient.TooLargeError{URL: l.String(), Limit: o.Limit}
		}
		return b, "", err
	}
	body, err := Open(ctx, l, o)
	if err != nil {
		return nil, "", err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, "", err
	}
	return b, body.ContentType, nil
}

// redactString removes the credentials of a URL string for messages, also
// from one that does not parse.
func redactString(s string) string {
	if u, err := url.Parse(s); err == nil {
		if u.User != nil {
			return httpclient.Redact(u)
		}
		return s
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		return scheme + "://xxxxx" + rest[i:]
	}
	return s
}
