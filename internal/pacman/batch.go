package pacman

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bintrans/bintrans/verify"
)

// NotInRepositoryError is the verdict for a target that no sync database
// holds (`pacman -U <file>`): there is no repository claim to check the
// file against, and the hook cannot see the file.
type NotInRepositoryError struct {
	Name string
}

func (e *NotInRepositoryError) Error() string {
	return fmt.Sprintf("%s is in no sync database (installed with pacman -U?): nothing says which file is the published one", e.Name)
}

// Hint says how to proceed with such a package.
func (e *NotInRepositoryError) Hint() string {
	return "verify the file with 'bintrans verify FILE' first; the policy can let such packages through with --unsafe-allow-local"
}

// NotCachedError is the verdict for a target whose sync database entry
// names a file that no cache directory holds: the transaction installs
// something else (e.g. `pacman -U` of another build of a repository
// package), or the cache is outside the hook's RootDir.
type NotCachedError struct {
	Name      string
	Filename  string
	CacheDirs []string
}

func (e *NotCachedError) Error() string {
	return fmt.Sprintf("%s is in no cache directory (%s): is another file being installed (pacman -U)?", e.Filename, strings.Join(e.CacheDirs, ", "))
}

// Batch is one transaction prepared for the engine: the targets it can
// verify as Artifacts, and ready-made Results for those it cannot.
type Batch struct {
	// Targets as resolved, one per result.
	Targets []Target
	// Artifacts is what to pass to (*verify.Verifier).VerifyAll.
	Artifacts []verify.Artifact

	results []verify.Result // one per target; engine results are placed by index
	index   []int           // Artifacts[i] is Targets[index[i]]
}

// BatchOptions is the pacman side of the verification policy.
type BatchOptions struct {
	// UnsafeAllowLocal accepts targets in no sync database (pacman -U)
	// unverified: their Result is StatusOK with Skipped set in the Batch.
	// Off by default: such a package fails with StatusNotInRepository.
	UnsafeAllowLocal bool
	// CacheDirs are named in NotCachedError.
	CacheDirs []string
	// VerifyUncachedClaim verifies a target whose file is not cached by
	// its database entry alone (an Artifact without Open: the signature
	// and the log are checked against the database's SHA256, no file is
	// hashed), instead of failing it with *NotCachedError. For ad-hoc
	// checks of a repository; never for a transaction.
	VerifyUncachedClaim bool
}

// NewBatch prepares targets: a cached target becomes an Artifact that
// hashes the cached file (Open) and must match the database's SHA256; a
// target in no sync database gets StatusNotInRepository
// (*NotInRepositoryError) unless opts.UnsafeAllowLocal; a target whose file
// is not cached gets StatusUnavailable (*NotCachedError), or with
// opts.VerifyUncachedClaim becomes an Artifact without Open.
func NewBatch(ts []Target, opts BatchOptions) *Batch {
	b := &Batch{Targets: ts, results: make([]verify.Result, len(ts))}
	for i, t := range ts {
		a := t.Artifact()
		b.results[i].Artifact = a
		switch {
		case t.NotInSyncDB && opts.UnsafeAllowLocal:
			b.results[i].Status = verify.StatusOK
		case t.NotInSyncDB:
			b.results[i].Status = verify.StatusNotInRepository
			b.results[i].Err = &NotInRepositoryError{Name: t.Name}
		case !t.Cached() && !opts.VerifyUncachedClaim:
			b.results[i].Status = verify.StatusUnavailable
			b.results[i].Err = &NotCachedError{Name: t.Name, Filename: t.Filename, CacheDirs: opts.CacheDirs}
		default:
			b.Artifacts = append(b.Artifacts, a)
			b.index = append(b.index, i)
		}
	}
	return b
}

// Skipped reports whether target i was let through unverified
// (BatchOptions.UnsafeAllowLocal).
func (b *Batch) Skipped(i int) bool {
	return b.Targets[i].NotInSyncDB && b.results[i].Status == verify.StatusOK
}

// Results merges the engine's results (one per Artifact, in order) with
// the ready-made ones: one Result per target, in target order.
func (b *Batch) Results(engine []verify.Result) ([]verify.Result, error) {
	if len(engine) != len(b.Artifacts) {
		return nil, fmt.Errorf("pacman: %d engine results for %d artifacts", len(engine), len(b.Artifacts))
	}
	out := append([]verify.Result(nil), b.results...)
	for j, r := range engine {
		out[b.index[j]] = r
	}
	return out, nil
}

// Artifact is the engine's view of the target: Filename, Repo, Arch, Name,
// Version and the database's SHA256, and, when cached, an Open that reads
// the cached file.
func (t Target) Artifact() verify.Artifact {
	a := verify.Artifact{
		Filename: t.Filename,
		Repo:     t.Repo,
		Arch:     t.Arch,
		Name:     t.Name,
		Version:  t.Version,
		SHA256:   t.SHA256,
	}
	if a.Filename == "" {
		a.Filename = t.Name
	}
	if t.Path != "" {
		path := t.Path
		a.Open = func() (io.ReadCloser, error) { return os.Open(path) }
	}
	return a
}
