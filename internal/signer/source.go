package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/location"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// Time bounds on what the signer reads (its size bounds are repodb's:
// DefaultMaxDBSize, DefaultMaxPackageSize).
const (
	dbTimeout      = 5 * time.Minute
	packageTimeout = time.Hour
)

// Source is one repository database to sign: the repository's directory
// (https://, http://, file:// URL or a local path) after $repo/$arch
// substitution, and the repository name and architecture it stands for.
type Source struct {
	Repo string `json:"repo"`
	Arch string `json:"arch"`
	Base string `json:"url"`
}

// Sources expands template ($repo, $arch: location.Expand) for every
// repo × arch, in that order.
func Sources(template string, repos, arches []string) []Source {
	var out []Source
	for _, r := range repos {
		for _, a := range arches {
			out = append(out, Source{Repo: r, Arch: a, Base: location.Expand(template, r, a)})
		}
	}
	return out
}

// DBURL is the URL (or path) of the source's sync database: <base>/<repo>.db.
func (s Source) DBURL() string { return s.join(s.Repo + ".db") }

// DBSigURL is the URL (or path) of the database's detached signature, as
// repo-add --sign writes it: <base>/<repo>.db.sig.
func (s Source) DBSigURL() string { return s.DBURL() + ".sig" }

// PlainHTTP reports whether the source is fetched over plain http://.
func (s Source) PlainHTTP() bool { return strings.HasPrefix(strings.ToLower(s.Base), "http://") }

// PackageURL is the URL (or path) of a package file of the source.
func (s Source) PackageURL(filename string) string { return s.join(filename) }

func (s Source) join(name string) string { return location.Join(s.Base, name) }

// DB is a fetched and parsed sync database.
type DB struct {
	Source   Source
	URL      string
	SHA256   string // of the bytes as fetched
	Size     int64  // of the bytes as fetched
	Packages []repodb.Package
	// Release is the database's verified signature (ReleaseDBSig, or
	// ReleaseAuto with a <repo>.db.sig); nil when each package's own
	// signature is checked, or under ReleaseUnsafeTrustDB.
	Release *Release
	raw     []byte // the bytes as fetched, until the signature is checked
}

// FetchDB fetches (at most maxSize bytes) and parses the source's database.
func FetchDB(ctx context.Context, hc *http.Client, s Source, maxSize int64) (*DB, error) {
	if maxSize <= 0 {
		maxSize = repodb.DefaultMaxDBSize
	}
	u := s.DBURL()
	b, err := fetchFile(ctx, hc, u, maxSize)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	pkgs, err := repodb.Read(bytes.NewReader(b), repodb.DefaultLimits())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return &DB{Source: s, URL: u, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b)), Packages: pkgs, raw: b}, nil
}

// fetchFile reads a whole file of at most max bytes from a local path,
// file:// or http(s) URL. A missing file wraps verify.ErrNotFound.
func fetchFile(ctx context.Context, hc *http.Client, u string, max int64) ([]byte, error) {
	l, err := location.Parse(u)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	b, _, err := location.ReadAll(ctx, l, location.Options{HTTP: hc, Limit: max})
	return b, notFound(err)
}

// hashPackage downloads (or opens) a package of s and returns its sha256,
// streaming, at most repodb.DefaultMaxPackageSize bytes.
func hashPackage(ctx context.Context, hc *http.Client, s Source, filename string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, packageTimeout)
	defer cancel()
	r, err := openPackage(ctx, hc, s, filename)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return r.hashAll()
}

// packageReader streams a package (at most repodb.DefaultMaxPackageSize
// bytes) and hashes what it reads.
type packageReader struct {
	url string
	rc  io.ReadCloser
	h   hash.Hash
	n   int64 // bytes read
}

// openPackage opens (or downloads) a package of s for one streaming read.
// A missing file wraps verify.ErrNotFound. ctx bounds the download.
func openPackage(ctx context.Context, hc *http.Client, s Source, filename string) (*packageReader, error) {
	u := s.PackageURL(filename)
	l, err := location.Parse(u)
	if err != nil {
		return nil, err
	}
	body, err := location.Open(ctx, l, location.Options{HTTP: hc, Limit: repodb.DefaultMaxPackageSize})
	if err != nil {
		return nil, notFound(err)
	}
	return &packageReader{url: u, rc: body, h: sha256.New()}, nil
}

func (r *packageReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	var tl *httpclient.TooLargeError
	if err != nil && err != io.EOF && !errors.As(err, &tl) {
		err = fmt.Errorf("reading %s: %w", r.url, err)
	}
	return n, err
}

// hashAll reads the rest and returns the sha256 of everything read.
func (r *packageReader) hashAll() (string, error) {
	buf := make([]byte, 256<<10)
	for {
		_, err := r.Read(buf)
		if err == io.EOF {
			return r.sum(), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// sum is the hex sha256 of the bytes read so far.
func (r *packageReader) sum() string { return hex.EncodeToString(r.h.Sum(nil)) }

func (r *packageReader) Close() error { return r.rc.Close() }

// notFound makes a missing file or a 404 (both fs.ErrNotExist, see
// location.Open) also verify.ErrNotFound, keeping the error.
func notFound(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return &notFoundError{err}
	}
	return err
}

type notFoundError struct{ err error }

func (e *notFoundError) Error() string   { return e.err.Error() }
func (e *notFoundError) Unwrap() []error { return []error{e.err, verify.ErrNotFound} }
