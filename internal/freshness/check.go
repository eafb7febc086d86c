package freshness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Defaults of a client's Policy.
const (
	// DefaultMaxAge is how old the newest statement of a database may be.
	// Operators re-issue statements every DefaultInterval, so a week leaves
	// room for a few missed heartbeats and a lagging mirror.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultInterval is the signer's heartbeat (sign --statement-interval).
	DefaultInterval = 24 * time.Hour
	// DefaultSkew is how far in the future an issue time may be (clocks).
	DefaultSkew = 5 * time.Minute
)

// Held is the database a client holds and checks a statement against.
type Held struct {
	// Repository is the name the client's pacman.conf gives it.
	Repository string
	// Architectures are those the client installs for (pacman.conf
	// Architecture, "auto" resolved); a statement for another is refused.
	Architectures []string
	// File is the digest of the database file the client holds; Files says
	// whether it is the `.files` database (else the `.db`).
	File  Digest
	Files bool
}

// Policy is what a statement must satisfy beyond naming the held database.
type Policy struct {
	// MaxAge: a statement issued longer ago is stale. 0 disables the check
	// (the caller warns).
	MaxAge time.Duration
	// Skew: an issue time later than now+Skew is refused (0: DefaultSkew).
	Skew time.Duration
}

// Accepted is what a client keeps of the newest statement it accepted for
// one (repository, architecture): enough to refuse a rollback and to prove
// that statements were seen (after which a database without one is refused).
type Accepted struct {
	Repository   string    `json:"repository"`
	Architecture string    `json:"architecture"`
	Counter      uint64    `json:"counter"`
	Issued       time.Time `json:"issued"`
	DBSHA256     string    `json:"db_sha256"`
	// StatementSHA256 identifies the exact statement (evidence in errors).
	StatementSHA256 string `json:"statement_sha256"`
}

// MismatchError is a statement about another database than the one held:
// another repository, architecture or file.
type MismatchError struct {
	Field      string // "repository", "architecture", "db", "files"
	Want, Got  string
	Repository string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("statement for [%s] is about another %s (%s, the database held is %s): a mirror may be serving another repository's or architecture's database",
		e.Repository, e.Field, e.Got, e.Want)
}

// StaleError is a statement older than the policy's maximum age: the mirror
// is frozen, or the operator stopped issuing statements.
type StaleError struct {
	Repository, Architecture string
	Issued                   time.Time
	Age, MaxAge, Interval    time.Duration
	Counter                  uint64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("STALE: the statement for %s/%s (counter %d) was issued %s ago, at %s; at most %s is accepted (the operator re-issues every %s): the mirror serves a frozen database, or the operator stopped signing",
		e.Repository, e.Architecture, e.Counter, Human(e.Age), e.Issued.Format(time.RFC3339), Human(e.MaxAge), Human(e.Interval))
}

// FutureError is a statement issued later than now (beyond the skew).
type FutureError struct {
	Repository string
	Issued     time.Time
	Now        time.Time
}

func (e *FutureError) Error() string {
	return fmt.Sprintf("the statement for [%s] is dated %s, %s in the future: check this machine's clock", e.Repository, e.Issued.Format(time.RFC3339), Human(e.Issued.Sub(e.Now)))
}

// RollbackError is a statement older than one this client accepted before
// for the same repository and architecture: a rollback (or a mirror that
// lags behind one this client used).
type RollbackError struct {
	Prev   Accepted
	Got    *Statement
	Reason string
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("ROLLBACK: [%s] %s: this client accepted statement %d (issued %s) before, the database offered has statement %d (issued %s)",
		e.Prev.Repository, e.Reason, e.Prev.Counter, e.Prev.Issued.Format(time.RFC3339), e.Got.Counter, e.Got.Issued.Format(time.RFC3339))
}

// ConflictError is two statements with one counter about two databases: the
// transparency key signed two histories of the repository. It is evidence
// of a compromised or misused key, never a mirror's fault.
type ConflictError struct {
	Prev Accepted
	Got  *Statement
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("SECURITY ERROR: two statements for %s/%s carry counter %d but name different databases (sha256 %s accepted before, %s now): the transparency key signed two histories",
		e.Prev.Repository, e.Prev.Architecture, e.Prev.Counter, e.Prev.DBSHA256, e.Got.DB.SHA256)
}

// AnyArchitecture is the architecture of a repository whose one database
// serves every architecture (its Server line has no $arch, its packages are
// "any"): a client accepts its statements whatever it installs for.
const AnyArchitecture = "any"

// Check judges s, a statement whose signature and log proof the caller has
// verified (stmtSHA256 is the sha256 of its bytes), against the held
// database, the newest statement accepted before for the same repository
// and architecture (prev, nil if none), the time now and the policy. It
// returns the record to keep when the caller's whole run succeeds.
//
// Checks, in order: the statement names the held repository, an
// architecture the client installs for (or AnyArchitecture), and the held
// file (digest and
// size); it is not dated in the future; it is not older than p.MaxAge;
// it is not older than prev (counter, then issue time); a counter equal to
// prev's names the same database. The first failure is returned as a
// *MismatchError, *FutureError, *StaleError, *RollbackError or
// *ConflictError.
func Check(s *Statement, stmtSHA256 string, held Held, prev *Accepted, now time.Time, p Policy) (*Accepted, error) {
	if s.Repository != held.Repository {
		return nil, &MismatchError{Field: "repository", Want: held.Repository, Got: s.Repository, Repository: held.Repository}
	}
	if s.Architecture != AnyArchitecture && !slices.Contains(held.Architectures, s.Architecture) {
		return nil, &MismatchError{Field: "architecture", Want: fmt.Sprint(held.Architectures), Got: s.Architecture, Repository: held.Repository}
	}
	named, which := s.DB, "db"
	if held.Files {
		named, which = s.Files, "files"
	}
	if named != held.File {
		return nil, &MismatchError{Field: which, Want: fmt.Sprintf("sha256 %s, %d bytes", held.File.SHA256, held.File.Size),
			Got: fmt.Sprintf("sha256 %s, %d bytes", named.SHA256, named.Size), Repository: held.Repository}
	}
	skew := p.Skew
	if skew <= 0 {
		skew = DefaultSkew
	}
	if s.Issued.After(now.Add(skew)) {
		return nil, &FutureError{Repository: held.Repository, Issued: s.Issued, Now: now}
	}
	if age := now.Sub(s.Issued); p.MaxAge > 0 && age > p.MaxAge {
		return nil, &StaleError{Repository: s.Repository, Architecture: s.Architecture, Issued: s.Issued, Age: age, MaxAge: p.MaxAge, Interval: s.Interval, Counter: s.Counter}
	}
	if prev != nil {
		switch {
		case prev.Repository != s.Repository || prev.Architecture != s.Architecture:
			return nil, fmt.Errorf("freshness: the stored statement is for %s/%s, not %s/%s", prev.Repository, prev.Architecture, s.Repository, s.Architecture)
		case s.Counter < prev.Counter:
			return nil, &RollbackError{Prev: *prev, Got: s, Reason: "the database is older than one used before"}
		case s.Counter == prev.Counter && s.DB.SHA256 != prev.DBSHA256:
			return nil, &ConflictError{Prev: *prev, Got: s}
		case s.Counter == prev.Counter && !s.Issued.Equal(prev.Issued):
			return nil, &ConflictError{Prev: *prev, Got: s}
		case s.Counter > prev.Counter && s.Issued.Before(prev.Issued):
			return nil, &RollbackError{Prev: *prev, Got: s, Reason: "a later statement is dated before an earlier one"}
		}
	}
	return &Accepted{Repository: s.Repository, Architecture: s.Architecture, Counter: s.Counter, Issued: s.Issued,
		DBSHA256: s.DB.SHA256, StatementSHA256: stmtSHA256}, nil
}

// Newer reports whether a should replace b as the stored record (b may be
// nil): a higher counter.
func (a *Accepted) Newer(b *Accepted) bool { return b == nil || a.Counter > b.Counter }

// acceptedFile is the stored form of an Accepted.
type acceptedFile struct {
	SchemaVersion int `json:"schema_version"`
	Accepted
}

// MaxAcceptedSize bounds a stored Accepted record.
const MaxAcceptedSize = 4096

// MarshalAccepted is the stored form of a (schema_version 1, JSON, one line).
func MarshalAccepted(a *Accepted) ([]byte, error) {
	b, err := json.Marshal(acceptedFile{SchemaVersion: 1, Accepted: *a})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseAccepted reads a stored record strictly (known fields only, schema
// version 1, a valid repository, architecture and hashes).
func ParseAccepted(b []byte) (*Accepted, error) {
	if len(b) > MaxAcceptedSize {
		return nil, fmt.Errorf("freshness: stored statement record of %d bytes, at most %d", len(b), MaxAcceptedSize)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var f acceptedFile
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("freshness: stored statement record: %w", err)
	}
	if d.More() {
		return nil, errors.New("freshness: stored statement record: data after the record")
	}
	a := f.Accepted
	switch {
	case f.SchemaVersion != 1:
		return nil, fmt.Errorf("freshness: stored statement record has schema_version %d, want 1", f.SchemaVersion)
	case !validName(a.Repository) || !validName(a.Architecture) || a.Counter == 0 || !isHex64(a.DBSHA256) ||
		(a.StatementSHA256 != "" && !isHex64(a.StatementSHA256)) || a.Issued.IsZero():
		return nil, errors.New("freshness: stored statement record is incomplete or invalid")
	}
	a.Issued = a.Issued.UTC()
	return &a, nil
}

// Human writes a duration for people: "9d 3h", "5h 12m", "42s".
func Human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, d%time.Minute/time.Second)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}
