// Package scan turns pacman sync databases into the verification engine's
// batch for `bintrans scan`: which databases (paths, URLs, or a mirror
// template with $repo and $arch), how they are read (streamed, bounded),
// and one verify.Artifact per package, in the reports' order.
//
// What is trusted: nothing here decides a verdict. A database is only as
// authentic as its source; its %SHA256SUM% is the message the engine
// verifies against the transparency log (or, with Download, the hash the
// real file must have). A database that cannot be read completely and
// strictly (repodb) fails the whole load: a scan that silently skipped part
// of a repository would be a false pass.
package scan

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/location"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// Defaults of Options (the size bounds: repodb.DefaultMaxDBSize and
// repodb.DefaultMaxPackageSize).
const (
	// DefaultDBTimeout bounds fetching and reading one database.
	DefaultDBTimeout = 5 * time.Minute
	// DefaultPackageTimeout bounds downloading and hashing one package.
	DefaultPackageTimeout = time.Hour
)

// DB is one sync database to scan.
type DB struct {
	// URL is the database: a local path, a file:// URL or an http(s) URL.
	URL string
	// Repo names the repository in reports and picks a per-repository
	// transparency URL. Arch is the repository's architecture; empty means
	// "each package's own %ARCH%" (a database given by path does not say).
	Repo string
	Arch string
	// PackageBase is where the package files live (download mode): the
	// database's directory, as in a pacman mirror.
	PackageBase string
}

// Where is the database's location for messages (credentials redacted).
func (db DB) Where() string { return redact(db.URL) }

// IsFiles reports whether the database is a .files database (by its name).
func (db DB) IsFiles() bool {
	name := db.URL
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return strings.Contains(name, ".files")
}

// FromTemplate expands a mirror URL template for every repo × arch, in
// that order, the way `bintrans sign` does (location.Expand): the database
// of each is <base>/<repo>.db.
func FromTemplate(template string, repos, arches []string) []DB {
	var out []DB
	for _, r := range repos {
		for _, a := range arches {
			base := location.Expand(template, r, a)
			out = append(out, DB{URL: location.Join(base, r+".db"), Repo: r, Arch: a, PackageBase: base})
		}
	}
	return out
}

// dbSuffixes are the name endings of a sync database file that are not
// part of the repository name, longest first.
var dbSuffixes = []string{
	".db.tar.gz", ".db.tar.zst", ".db.tar.xz", ".db.tar.bz2", ".db.tar",
	".files.tar.gz", ".files.tar.zst", ".files.tar.xz", ".files.tar.bz2", ".files.tar",
	".db", ".files",
}

// MaxRepoNameLength bounds a repository name taken from a database's file
// name.
const MaxRepoNameLength = 128

// LocationError is a database argument that names no usable database.
type LocationError struct {
	Location string
	Reason   string
}

func (e *LocationError) Error() string {
	return fmt.Sprintf("database %q: %s", e.Location, e.Reason)
}

// FromLocation describes the database at loc (a path, file:// or http(s)://
// URL). The repository name is the file name without its database suffix
// (core.db, core.db.tar.zst, extra.files → core, core, extra), as pacman
// names a repository after its database; the architecture is left to each
// package's %ARCH%. Package files are expected next to the database.
func FromLocation(loc string) (DB, error) {
	bad := func(reason string) (DB, error) { return DB{}, &LocationError{Location: loc, Reason: reason} }
	if loc == "" {
		return bad("empty")
	}
	l, err := location.Parse(loc)
	if err != nil {
		var le *location.Error
		if errors.As(err, &le) {
			return bad(le.Reason)
		}
		return bad(err.Error())
	}
	if u := l.URL(); u != nil && u.User != nil {
		return bad("a database URL must not carry credentials")
	}
	dir, name := l.Split()
	repo, err := RepoName(name)
	if err != nil {
		return bad(err.Error())
	}
	return DB{URL: loc, Repo: repo, PackageBase: dir}, nil
}

// RepoName returns the repository name of a database file name: the name
// without a known database suffix (dbSuffixes). It refuses names that are
// not a plausible repository name: empty, too long, with '/', control
// characters or white space.
func RepoName(file string) (string, error) {
	repo := file
	for _, s := range dbSuffixes {
		if strings.HasSuffix(file, s) {
			repo = strings.TrimSuffix(file, s)
			break
		}
	}
	if repo == file {
		return "", fmt.Errorf("file name %q does not end in .db or .files (optionally .tar.gz, .tar.zst, …)", file)
	}
	switch {
	case repo == "" || repo == "." || repo == "..":
		return "", fmt.Errorf("file name %q has no repository name", file)
	case len(repo) > MaxRepoNameLength:
		return "", fmt.Errorf("repository name longer than %d bytes", MaxRepoNameLength)
	}
	for _, r := range repo {
		if r <= ' ' || r == 0x7f || r == '/' || r == '\\' || r == '$' {
			return "", fmt.Errorf("repository name %q contains %q", repo, r)
		}
	}
	return repo, nil
}

// Options bound and shape Load. Zero fields take the defaults.
type Options struct {
	// HTTP fetches http(s) databases and packages: the one client built by
	// httpclient.New for the run. Required only for http(s) locations.
	HTTP *http.Client
	// MaxDBSize bounds each database as fetched (repodb.DefaultMaxDBSize).
	MaxDBSize int64
	// Limits bound the database's content (repodb.DefaultLimits).
	Limits repodb.Limits
	// DBTimeout bounds fetching and reading one database.
	DBTimeout time.Duration
	// Download gives each artifact an Open that streams the real package
	// file (<PackageBase>/<filename>): the engine hashes it and compares
	// with %SHA256SUM%. Without it the database's %SHA256SUM% is verified
	// as is and no package is downloaded.
	Download bool
	// MaxPackageSize bounds one package file (repodb.DefaultMaxPackageSize);
	// PackageTimeout one download.
	MaxPackageSize int64
	PackageTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxDBSize <= 0 {
		o.MaxDBSize = repodb.DefaultMaxDBSize
	}
	if o.DBTimeout <= 0 {
		o.DBTimeout = DefaultDBTimeout
	}
	if o.MaxPackageSize <= 0 {
		o.MaxPackageSize = repodb.DefaultMaxPackageSize
	}
	if o.PackageTimeout <= 0 {
		o.PackageTimeout = DefaultPackageTimeout
	}
	return o
}

// DBError is a database that could not be fetched or is not a valid sync
// database. Err is the cause: an *httpclient.StatusError or TooLargeError,
// an I/O error, or a *repodb.EntryError.
type DBError struct {
	URL string // redacted
	Err error
}

func (e *DBError) Error() string { return fmt.Sprintf("database %s: %v", e.URL, e.Err) }
func (e *DBError) Unwrap() error { return e.Err }

// Hint says what to do about a database that could not be read.
func (e *DBError) Hint() string {
	var st *httpclient.StatusError
	var tl *httpclient.TooLargeError
	switch {
	case errors.Is(e.Err, os.ErrNotExist), errors.As(e.Err, &st) && st.Code == http.StatusNotFound:
		return "check the database path or URL (with --repo-url: <url>/<repo>.db must exist)"
	case errors.As(e.Err, &tl):
		return "raise --max-db-size if the database is really that large"
	case errors.Is(e.Err, repodb.ErrCorrupt), errors.Is(e.Err, repodb.ErrUnknownCompression):
		return "the file is not a pacman sync database (or is damaged); fetch it again"
	}
	return ""
}

// MaxParallelDBs bounds the databases fetched and read at once.
const MaxParallelDBs = 4

// Load reads every database (up to MaxParallelDBs at once) and returns one
// artifact per package, sorted by (repo, arch, filename). Exact duplicates
// (the same repo, arch, filename and sha256, e.g. a .db and its .files
// given together) appear once. Any database that cannot be read fails the
// load with a *DBError (the first in argument order). Memory holds only the
// artifacts, never a whole database.
func Load(ctx context.Context, dbs []DB, o Options) ([]verify.Artifact, error) {
	arts, _, err := LoadDigests(ctx, dbs, o)
	return arts, err
}

// LoadDigests is Load that also returns each database's digest (sha256 and
// size of its bytes as fetched, in the order of dbs): what names its
// repository statement.
func LoadDigests(ctx context.Context, dbs []DB, o Options) ([]verify.Artifact, []freshness.Digest, error) {
	o = o.withDefaults()
	per := make([][]verify.Artifact, len(dbs))
	digests := make([]freshness.Digest, len(dbs))
	errs := make([]error, len(dbs))
	var g errgroup.Group
	g.SetLimit(MaxParallelDBs)
	for i := range dbs {
		g.Go(func() error {
			per[i], digests[i], errs[i] = loadOne(ctx, dbs[i], o)
			return nil
		})
	}
	g.Wait()
	var arts []verify.Artifact
	for i := range dbs {
		if errs[i] != nil {
			return nil, nil, errs[i]
		}
		arts = append(arts, per[i]...)
	}
	slices.SortStableFunc(arts, compareArtifacts)
	arts = slices.CompactFunc(arts, func(a, b verify.Artifact) bool {
		return a.Repo == b.Repo && a.Arch == b.Arch && a.Filename == b.Filename && a.SHA256 == b.SHA256
	})
	return slices.Clip(arts), digests, nil
}

func compareArtifacts(a, b verify.Artifact) int {
	return cmp.Or(
		strings.Compare(a.Repo, b.Repo),
		strings.Compare(a.Arch, b.Arch),
		strings.Compare(a.Filename, b.Filename),
		strings.Compare(a.SHA256, b.SHA256),
	)
}

func loadOne(runCtx context.Context, db DB, o Options) ([]verify.Artifact, freshness.Digest, error) {
	ctx, cancel := context.WithTimeout(runCtx, o.DBTimeout)
	defer cancel()
	where := redact(db.URL)
	body, err := open(ctx, o.HTTP, db.URL, o.MaxDBSize)
	if err != nil {
		return nil, freshness.Digest{}, &DBError{URL: where, Err: err}
	}
	defer body.Close()
	// Every byte read is hashed: the digest names the statement.
	h := &hashingReader{r: body, h: sha256.New()}
	var rc io.Reader = h
	var arts []verify.Artifact
	err = repodb.Walk(rc, o.Limits, func(p repodb.Package) error {
		// Clone: the parsed strings share the whole desc text.
		a := verify.Artifact{
			Filename: strings.Clone(p.Filename),
			Repo:     db.Repo,
			Arch:     db.Arch,
			Name:     strings.Clone(p.Name),
			Version:  strings.Clone(p.Version),
			SHA256:   strings.Clone(p.SHA256Sum),
		}
		if a.Arch == "" {
			a.Arch = strings.Clone(p.Arch)
		}
		if o.Download {
			a.Open = packageOpener(runCtx, o, db.PackageBase, a.Filename)
		}
		arts = append(arts, a)
		return nil
	})
	if err != nil {
		return nil, freshness.Digest{}, &DBError{URL: where, Err: err}
	}
	// The rest (a reader may stop at the archive's end marker).
	if _, err := io.Copy(io.Discard, h); err != nil {
		return nil, freshness.Digest{}, &DBError{URL: where, Err: err}
	}
	return arts, freshness.Digest{SHA256: hex.EncodeToString(h.h.Sum(nil)), Size: h.n}, nil
}

// hashingReader hashes and counts what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// packageOpener returns the Open of one package in download mode. The
// download is bounded by o.MaxPackageSize and o.PackageTimeout, and ends
// with the run's context.
func packageOpener(runCtx context.Context, o Options, base, filename string) func() (io.ReadCloser, error) {
	u := location.Join(base, filename)
	hc, limit, timeout := o.HTTP, o.MaxPackageSize, o.PackageTimeout
	return func() (io.ReadCloser, error) {
		ctx, cancel := context.WithTimeout(runCtx, timeout)
		rc, err := open(ctx, hc, u, limit)
		if err != nil {
			cancel()
			return nil, err
		}
		return &cancelOnClose{ReadCloser: rc, cancel: cancel}, nil
	}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// open streams the database or package at loc (a path, file:// or
// http(s) URL), failing with an *httpclient.TooLargeError after max bytes.
// ctx bounds the request.
func open(ctx context.Context, hc *http.Client, loc string, max int64) (io.ReadCloser, error) {
	l, err := location.Parse(loc)
	if err != nil {
		return nil, err
	}
	return location.Open(ctx, l, location.Options{HTTP: hc, Limit: max})
}

// redact is loc without credentials, for messages.
func redact(loc string) string {
	if l, err := location.Parse(loc); err == nil {
		return l.String()
	}
	return loc
}
