// Package fetch is the download half of `bintrans fetch`, pacman's
// XferCommand: it decides which files need a transparency proof (Classify),
// downloads one URL into pacman's `%o` file streaming, bounded and
// resumable (Download), and removes that file when its content must not
// survive (Discard).
//
// What it does not do: verify. The caller verifies a KindPackage file with
// the engine after Download returns and before it exits 0, because pacman
// renames `%o` (`<file>.part`) to its final name only after a zero exit.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
)

// Kind says what a downloaded file is to pacman, and so whether it needs a
// transparency proof.
type Kind int

// The kinds of files pacman asks an XferCommand for.
const (
	// KindPackage is a package file, and anything that is not clearly one
	// of the others: it is verified before pacman may use it.
	KindPackage Kind = iota
	// KindSignature is a detached PGP signature (`*.sig`) of a package or a
	// database: passed through (pacman checks it with its keyring) once
	// CheckPassThrough found only signature packets in it, none of which
	// libarchive could read as an archive.
	KindSignature
	// KindDatabase is a sync database (`*.db`, `*.files`, and their
	// `.tar.*` forms): passed through (the packages it names are verified
	// when downloaded) once CheckPassThrough read it completely as a
	// strict sync database.
	KindDatabase
)

func (k Kind) String() string {
	switch k {
	case KindPackage:
		return "package"
	case KindSignature:
		return "signature"
	default:
		return "sync database"
	}
}

// Classify returns the kind of the file named filename (the last path
// segment of the URL, unescaped). It fails closed: a name that is not a
// signature's or a database's is a package. A name is only a claim: a
// hostile database can give a package any file name, so the content of
// what passes through is checked too (CheckPassThrough).
func Classify(filename string) Kind {
	switch {
	case strings.HasSuffix(filename, ".sig"):
		return KindSignature
	case strings.Contains(filename, ".pkg.tar"):
		return KindPackage
	case strings.HasSuffix(filename, ".db") || strings.HasSuffix(filename, ".files") ||
		strings.Contains(filename, ".db.tar") || strings.Contains(filename, ".files.tar"):
		return KindDatabase
	default:
		return KindPackage
	}
}

// Filename returns the unescaped last path segment of rawURL, the name
// pacman will give the file. It is an error when the URL has none or is
// not http(s):// or file://.
func Filename(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return "", fmt.Errorf("%s: no host", httpclient.Redact(u))
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("%s: file:// URLs name a local file (file:///path)", httpclient.Redact(u))
		}
	default:
		return "", fmt.Errorf("%s: unsupported scheme %q (want http, https or file)", httpclient.Redact(u), u.Scheme)
	}
	name := path.Base(u.Path)
	if name == "." || name == "/" || name == "" || name == ".." {
		return "", fmt.Errorf("%s: the URL names no file", httpclient.Redact(u))
	}
	return name, nil
}

// Defaults of Options.
const (
	DefaultMaxSize      = 4 << 30 // the largest Arch package is well under 1 GiB
	DefaultStallTimeout = 60 * time.Second
)

// pacman's own limits for what it downloads itself (libalpm: 128 MiB for a
// sync database, 16 KiB for a detached signature).
const (
	MaxDatabaseSize  = 128 << 20
	MaxSignatureSize = 16 << 10
)

// MaxSize is the size limit for a file of kind k: pacman's own for
// databases and signatures, userMax (DefaultMaxSize if <= 0) for
// everything else and as an upper bound.
func MaxSize(k Kind, userMax int64) int64 {
	if userMax <= 0 {
		userMax = DefaultMaxSize
	}
	switch k {
	case KindDatabase:
		return min(userMax, MaxDatabaseSize)
	case KindSignature:
		return min(userMax, MaxSignatureSize)
	}
	return userMax
}

// Options bound a Download.
type Options struct {
	// MaxSize is the largest file accepted, in bytes (DefaultMaxSize if 0).
	MaxSize int64
	// StallTimeout aborts a download when no byte arrived for this long
	// (DefaultStallTimeout if 0). The whole download has no fixed limit: a
	// large package on a slow mirror may take long, a dead one may not.
	StallTimeout time.Duration
	// Resume keeps an existing partial file and asks only for the rest
	// (HTTP Range, or a seek for file://). pacman resumes packages only;
	// databases and signatures are always fetched whole, because a mirror
	// may have replaced them since the partial download.
	Resume bool
}

func (o Options) withDefaults() Options {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	return o
}

// Result describes a finished download.
type Result struct {
	Size    int64 // size of the file now at dst
	Resumed int64 // bytes kept from the partial file (0: downloaded whole)
	Status  int   // the HTTP status of the last answer (0 for file://)
}

// RangeError is an answer to a Range request that does not continue the
// partial file: a Content-Range that starts elsewhere, or none at all.
type RangeError struct {
	URL          string
	Offset       int64  // the byte asked for
	ContentRange string // what the server answered
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("%s: asked for bytes from %d, server answered Content-Range %q", e.URL, e.Offset, e.ContentRange)
}

// StallError is a download that received nothing for Options.StallTimeout.
type StallError struct {
	URL     string
	After   int64 // bytes received before it stalled
	Timeout time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s: no data for %s after %d bytes", e.URL, e.Timeout, e.After)
}

// NotFoundError is a file:// URL naming no file. It unwraps to
// fs.ErrNotExist, like an HTTP 404 (*httpclient.StatusError).
type NotFoundError struct{ Path string }

func (e *NotFoundError) Error() string { return e.Path + ": no such file" }

// Unwrap makes errors.Is(err, fs.ErrNotExist) true.
func (e *NotFoundError) Unwrap() error { return fs.ErrNotExist }

// PathError is a destination that is not a regular file (a directory, a
// symlink, a device): Download refuses to write through it.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return e.Path + ": " + e.Reason }

// Download fetches rawURL (http://, https:// through c, or file://) into
// dst. With o.Resume and a non-empty regular file at dst, only the rest is
// requested: a 206 whose Content-Range starts at the file's size is
// appended; a 200 (the server ignored the Range) replaces the file; a 416
// whose Content-Range total equals the file's size means it is complete;
// any other 416 restarts from zero once. Without o.Resume dst is
// truncated first.
//
// Errors: an HTTP 404 or a missing file:// path wraps fs.ErrNotExist
// (*httpclient.StatusError / *NotFoundError); another non-2xx is a
// *httpclient.StatusError; a body beyond o.MaxSize a
// *httpclient.TooLargeError; a silent connection a *StallError; a bad
// Content-Range a *RangeError; a dst that is not a regular file a
// *PathError. After an error dst may hold a partial download (never more
// than MaxSize bytes): the caller decides whether to keep it for a later
// resume or Discard it. dst is never renamed: that is pacman's job.
func Download(ctx context.Context, c *http.Client, rawURL, dst string, o Options) (Result, error) {
	o = o.withDefaults()
	if _, err := Filename(rawURL); err != nil {
		return Result{}, err
	}
	have, err := partialSize(dst)
	if err != nil {
		return Result{}, err
	}
	if !o.Resume || have > o.MaxSize {
		have = 0
	}
	u, _ := url.Parse(rawURL)
	if u.Scheme == "file" {
		return copyFile(ctx, u.Path, dst, have, o)
	}
	res, err := get(ctx, c, u, dst, have, o)
	var rerr *restartError
	if errors.As(err, &rerr) {
		res, err = get(ctx, c, u, dst, 0, o)
	}
	return res, err
}

// partialSize is the size of the regular file at dst, 0 when there is none.
func partialSize(dst string) (int64, error) {
	st, err := os.Lstat(dst)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, err
	case !st.Mode().IsRegular():
		return 0, &PathError{Path: dst, Reason: "exists and is not a regular file (" + st.Mode().Type().String() + ")"}
	}
	return st.Size(), nil
}

// restartError asks Download to fetch again from zero (a 416 that does not
// prove the partial file complete).
type restartError struct{}

func (restartError) Error() string { return "restart" }

func get(ctx context.Context, c *http.Client, u *url.URL, dst string, have int64, o Options) (Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Result{}, err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	// No transparent decompression: the bytes on disk are the bytes served.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := c.Do(req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	where := httpclient.Redact(u)

	offset := int64(0)
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, _, _, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return Result{Status: resp.StatusCode}, &RangeError{URL: where, Offset: have, ContentRange: resp.Header.Get("Content-Range")}
		}
		offset = have
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		if total, ok := unsatisfiedTotal(resp.Header.Get("Content-Range")); ok && total == have {
			return Result{Size: have, Resumed: have, Status: resp.StatusCode}, nil
		}
		return Result{Status: resp.StatusCode}, &restartError{}
	case resp.StatusCode == http.StatusPartialContent:
		// A 206 to a request without Range cannot be trusted to be whole.
		return Result{Status: resp.StatusCode}, &RangeError{URL: where, Offset: 0, ContentRange: resp.Header.Get("Content-Range")}
	default:
		if err := httpclient.CheckStatus(resp); err != nil {
			return Result{Status: resp.StatusCode}, err
		}
	}
	if resp.ContentLength >= 0 && offset+resp.ContentLength > o.MaxSize {
		return Result{Status: resp.StatusCode}, &httpclient.TooLargeError{URL: where, Limit: o.MaxSize}
	}
	body := httpclient.LimitBody(resp.Body, o.MaxSize-offset, where)
	n, err := write(ctx, cancel, body, dst, offset, o.StallTimeout)
	res := Result{Size: offset + n, Resumed: offset, Status: resp.StatusCode}
	if err != nil {
		var stall *stalled
		if errors.As(context.Cause(ctx), &stall) {
			return res, &StallError{URL: where, After: offset + n, Timeout: o.StallTimeout}
		}
		return res, fmt.Errorf("%s: %w", where, err)
	}
	return res, nil
}

type stalled struct{}

func (stalled) Error() string { return "stalled" }

// write copies r into dst from offset (truncating dst there), cancelling
// ctx with *stalled when no byte arrives for stall, and syncs the file.
func write(ctx context.Context, cancel context.CancelCauseFunc, r io.Reader, dst string, offset int64, stall time.Duration) (int64, error) {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Truncate(offset); err != nil {
		return 0, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	timer := time.AfterFunc(stall, func() { cancel(&stalled{}) })
	defer timer.Stop()
	n, err := io.Copy(f, &watchdog{r: r, reset: func() { timer.Reset(stall) }, ctx: ctx})
	if err != nil {
		return n, err
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	return n, f.Close()
}

// watchdog resets the stall timer on every read that brings data.
type watchdog struct {
	r     io.Reader
	reset func()
	ctx   context.Context
}

func (w *watchdog) Read(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.r.Read(p)
	if n > 0 {
		w.reset()
	}
	return n, err
}

// copyFile is Download for file://: the same resume rules, with a seek
// instead of a Range request.
func copyFile(ctx context.Context, src, dst string, have int64, o Options) (Result, error) {
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return Result{}, &NotFoundError{Path: src}
	}
	if err != nil {
		return Result{}, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return Result{}, err
	}
	if !st.Mode().IsRegular() {
		return Result{}, &PathError{Path: src, Reason: "not a regular file"}
	}
	if st.Size() > o.MaxSize {
		return Result{}, &httpclient.TooLargeError{URL: "file://" + src, Limit: o.MaxSize}
	}
	if have > st.Size() {
		have = 0
	}
	if have == st.Size() && have > 0 {
		return Result{Size: have, Resumed: have}, nil
	}
	if _, err := in.Seek(have, io.SeekStart); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n, err := write(ctx, cancel, io.LimitReader(in, o.MaxSize-have), dst, have, o.StallTimeout)
	return Result{Size: have + n, Resumed: have}, err
}

// parseContentRange parses "bytes first-last/total" (total may be "*",
// then -1).
func parseContentRange(s string) (first, last, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err error
	if first, err = strconv.ParseInt(a, 10, 64); err != nil || first < 0 {
		return 0, 0, 0, false
	}
	if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
		return 0, 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= last {
			return 0, 0, 0, false
		}
	}
	return first, last, total, true
}

// unsatisfiedTotal parses the "bytes */total" of a 416 answer.
func unsatisfiedTotal(s string) (int64, bool) {
	tot, found := strings.CutPrefix(strings.TrimSpace(s), "bytes */")
	if !found {
		return 0, false
	}
	n, err := strconv.ParseInt(tot, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// Discard removes the file at p so that nothing of a refused download
// survives. It removes only a regular file (never a directory or what a
// symlink points to) and is a no-op when p does not exist.
func Discard(p string) error {
	st, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return &PathError{Path: p, Reason: "not a regular file; left alone"}
	}
	return os.Remove(p)
}
