package pacman

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bintrans/bintrans/repodb"
)

// Target is one package of a transaction mapped to the file pacman
// downloaded for it.
type Target struct {
	// Name is the package name alpm passed to the hook.
	Name string
	// NotInSyncDB is set when no sync database of the configuration holds
	// Name: a package installed with `pacman -U <file|url>`. Only Name is
	// set then; whether that is acceptable is the caller's policy.
	NotInSyncDB bool
	// Repo is the repository whose sync database entry was used.
	Repo string
	// Arch, Filename, Version and SHA256 come from that entry
	// (%ARCH%, %FILENAME%, %VERSION%, %SHA256SUM%). The db is the
	// repository's claim: the caller still hashes the file.
	Arch     string
	Filename string
	Version  string
	SHA256   string
	// Path is the cached package file, "" when no cache directory holds
	// Filename (the transaction installs another version, e.g. with -U).
	Path string
}

// Cached reports whether the package file was found in a cache directory.
func (t Target) Cached() bool { return t.Path != "" }

// DBError is a sync database that exists but could not be read. Resolve
// fails closed on it: a name it would have resolved must not silently turn
// into NotInSyncDB.
type DBError struct {
	Repo string
	Path string
	Err  error
}

func (e *DBError) Error() string {
	return fmt.Sprintf("sync database of [%s] (%s): %v", e.Repo, e.Path, e.Err)
}

func (e *DBError) Unwrap() error { return e.Err }

// Hint says what to do about an unreadable sync database. A database that
// was read but holds what repo-add never writes (a construct tar readers
// disagree on, desc keys outside desc, duplicate packages, …) may show
// libalpm other packages than bintrans: that is a mirror to distrust, not
// a download to retry.
func (e *DBError) Hint() string {
	if isContentError(e.Err) {
		return "this database is not what repo-add writes, and pacman may read other packages from it than bintrans does: refresh it from a mirror you trust ('pacman -Syy') and report this one"
	}
	return "refresh the databases with 'pacman -Sy' and retry"
}

// isContentError reports a refusal of what the database says, as opposed
// to a failure to read it.
func isContentError(err error) bool {
	for _, s := range []error{repodb.ErrTarFormat, repodb.ErrUnsafePath, repodb.ErrEntryType, repodb.ErrUnexpectedEntry,
		repodb.ErrDuplicate, repodb.ErrDirMismatch, repodb.ErrMissingDesc, repodb.ErrMissingField, repodb.ErrUnknownField,
		repodb.ErrDuplicateField, repodb.ErrMalformed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Resolve maps package names to sync database entries and cached files, the
// way pacman chose them: the repositories are searched in configuration
// order; when several hold the name, the first one whose %FILENAME% is in a
// cache directory wins (that is the file pacman downloaded, e.g. for
// `pacman -S extra/foo`), else the first one. Cache directories are tried
// in order. Sync databases are read from c.DBPath/sync/<repo>.db with
// repodb's default limits; a missing one is skipped (pacman cannot install
// from it either), an unreadable one is a *DBError. The result has one
// Target per name, in the order of names.
//
// A hook must call Resolve with the configuration returned by InRoot.
func Resolve(c *Config, names []string) ([]Target, error) {
	return ResolveLimits(c, names, repodb.DefaultLimits())
}

// ResolveLimits is Resolve with explicit limits for the sync databases.
func ResolveLimits(c *Config, names []string, lim repodb.Limits) ([]Target, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	// found[name] holds the entries of name, one per repository, in
	// configuration order.
	type entry struct {
		repo string
		pkg  repodb.Package
	}
	found := make(map[string][]entry, len(names))
	for _, r := range c.Repos {
		p := c.SyncDBPath(r.Name)
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, &DBError{Repo: r.Name, Path: p, Err: err}
		}
		err = repodb.Walk(f, lim, func(pkg repodb.Package) error {
			if want[pkg.Name] {
				found[pkg.Name] = append(found[pkg.Name], entry{r.Name, pkg})
			}
			return nil
		})
		f.Close()
		if err != nil {
			return nil, &DBError{Repo: r.Name, Path: p, Err: err}
		}
	}
	out := make([]Target, len(names))
	for i, name := range names {
		es := found[name]
		if len(es) == 0 {
			out[i] = Target{Name: name, NotInSyncDB: true}
			continue
		}
		chosen, path := es[0], ""
		for _, e := range es {
			p, err := c.cached(e.pkg.Filename)
			if err != nil {
				return nil, &DBError{Repo: e.repo, Path: c.SyncDBPath(e.repo), Err: err}
			}
			if p != "" {
				chosen, path = e, p
				break
			}
		}
		out[i] = Target{
			Name:     name,
			Repo:     chosen.repo,
			Arch:     chosen.pkg.Arch,
			Filename: chosen.pkg.Filename,
			Version:  chosen.pkg.Version,
			SHA256:   chosen.pkg.SHA256Sum,
			Path:     path,
		}
	}
	return out, nil
}

// cached returns the path of filename in the first cache directory holding
// it as a regular file, or "". A filename that is not a plain file name is
// an error: it would let a database point outside the cache.
func (c *Config) cached(filename string) (string, error) {
	if filename == "" || filename == "." || filename == ".." || strings.ContainsAny(filename, "/\x00") {
		return "", fmt.Errorf("%%FILENAME%% %q is not a plain file name", filename)
	}
	for _, d := range c.CacheDirs {
		p := filepath.Join(d, filename)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", nil
}
