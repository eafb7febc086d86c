package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// Bounds on what the signer reads.
const (
	// DefaultMaxDBSize bounds a fetched sync database (compressed). Arch's
	// largest, extra.db, is about 8 MiB.
	DefaultMaxDBSize = 256 << 20
	// MaxPackageSize bounds a package downloaded by --verify-downloads.
	MaxPackageSize = 16 << 30
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

// ExpandRepoURL substitutes $repo and $arch in a repository URL template as
// pacman does for a `Server =` line.
func ExpandRepoURL(template, repo, arch string) string {
	return strings.NewReplacer("$repo", repo, "$arch", arch).Replace(template)
}

// Sources expands template for every repo × arch, in that order.
func Sources(template string, repos, arches []string) []Source {
	var out []Source
	for _, r := range repos {
		for _, a := range arches {
			out = append(out, Source{Repo: r, Arch: a, Base: ExpandRepoURL(template, r, a)})
		}
	}
	return out
}

// DBURL is the URL (or path) of the source's sync database: <base>/<repo>.db.
func (s Source) DBURL() string { return s.join(s.Repo + ".db") }

// PackageURL is the URL (or path) of a package file of the source.
func (s Source) PackageURL(filename string) string { return s.join(filename) }

func (s Source) join(name string) string {
	return strings.TrimSuffix(s.Base, "/") + "/" + name
}

// localPath returns the file path for a file:// URL or a plain path, and
// ok=false for http(s).
func localPath(u string) (string, bool, error) {
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		return "", false, nil
	}
	if strings.HasPrefix(u, "file://") {
		pu, err := url.Parse(u)
		if err != nil {
			return "", false, err
		}
		if pu.Host != "" && pu.Host != "localhost" {
			return "", false, fmt.Errorf("%s: file:// URL with a host", u)
		}
		return pu.Path, true, nil
	}
	if strings.Contains(u, "://") {
		return "", false, fmt.Errorf("%s: unsupported URL scheme (want https://, http://, file:// or a directory)", u)
	}
	return filepath.Clean(u), true, nil
}

// DB is a fetched and parsed sync database.
type DB struct {
	Source   Source
	URL      string
	SHA256   string // of the bytes as fetched
	Packages []repodb.Package
}

// FetchDB fetches (at most maxSize bytes) and parses the source's database.
func FetchDB(ctx context.Context, hc *http.Client, s Source, maxSize int64) (*DB, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxDBSize
	}
	u := s.DBURL()
	var b []byte
	p, local, err := localPath(u)
	if err != nil {
		return nil, err
	}
	if local {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		b, err = io.ReadAll(io.LimitReader(f, maxSize+1))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if int64(len(b)) > maxSize {
			return nil, &httpclient.TooLargeError{URL: u, Limit: maxSize}
		}
	} else {
		if hc == nil {
			return nil, errors.New("no HTTP client for " + u)
		}
		ctx, cancel := context.WithTimeout(ctx, dbTimeout)
		defer cancel()
		b, err = httpclient.Get(ctx, hc, u, maxSize)
		if err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(b)
	pkgs, err := repodb.Read(bytes.NewReader(b), repodb.DefaultLimits())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return &DB{Source: s, URL: u, SHA256: hex.EncodeToString(sum[:]), Packages: pkgs}, nil
}

// hashPackage downloads (or opens) a package of s and returns its sha256,
// streaming, at most MaxPackageSize bytes.
func hashPackage(ctx context.Context, hc *http.Client, s Source, filename string) (string, error) {
	u := s.PackageURL(filename)
	p, local, err := localPath(u)
	if err != nil {
		return "", err
	}
	var r io.ReadCloser
	if local {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		r = f
	} else {
		if hc == nil {
			return "", errors.New("no HTTP client for " + u)
		}
		ctx, cancel := context.WithTimeout(ctx, packageTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		if err := httpclient.CheckStatus(resp); err != nil {
			resp.Body.Close()
			return "", err
		}
		r = resp.Body
	}
	defer r.Close()
	sum, n, err := verify.HashReader(io.LimitReader(r, MaxPackageSize+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", u, err)
	}
	if n > MaxPackageSize {
		return "", &httpclient.TooLargeError{URL: u, Limit: MaxPackageSize}
	}
	return sum, nil
}
