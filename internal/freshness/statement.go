// Package freshness is the repository statement: a small text, signed with
// the transparency key and logged like a package signature, saying "this is
// the sync database of repository R for architecture A, as of time T, the
// N-th statement about R/A". A client that checks the statement of the
// database it holds refuses a database that no statement names (a forged
// or unlogged one), one whose newest statement is older than its maximum
// age (a frozen mirror, or an operator who stopped signing), and one whose
// counter is lower than a statement it accepted before (a rollback).
//
// The package is pure: it builds, parses and judges statements. Signing,
// logging and publishing are the signer's; fetching and verifying the
// signature and the log proof are the engine's (a statement is verified as
// an artifact whose file name is Path(sha256 of the db)); keeping the newest
// accepted statement is the caller's (Accepted is the record to keep).
//
// The format is docs/STATEMENTS.md. It is strict: one way to write every
// statement, so two parsers cannot disagree about one.
package freshness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the first line of a statement of this format.
const Version = "bintrans-repository-statement v1"

// MaxSize bounds a statement file. A valid one is under 512 bytes.
const MaxSize = 4096

// Dir is the directory of statements under a transparency URL.
const Dir = "statements"

// Suffix ends a statement's file name.
const Suffix = ".stmt"

// Path is where the statement naming a database whose sha256 is dbSHA256
// (lowercase hex) is published, relative to the transparency URL:
// "statements/<dbSHA256>.stmt". It is also the trusted comment of the
// statement's signature: it holds a '/', which no package file name can
// (libalpm refuses one in %FILENAME%), so a statement's signature never
// passes as a package's, and no package's `.t` can be published over it.
func Path(dbSHA256 string) string { return Dir + "/" + dbSHA256 + Suffix }

// IsPath reports whether p is a statement path, "statements/<64 lowercase
// hex>.stmt", and returns the hash.
func IsPath(p string) (dbSHA256 string, ok bool) {
	h, ok := strings.CutPrefix(p, Dir+"/")
	if !ok {
		return "", false
	}
	h, ok = strings.CutSuffix(h, Suffix)
	if !ok || !isHex64(h) {
		return "", false
	}
	return h, true
}

// Digest is a database file as a statement names it: its sha256 (lowercase
// hex) and its size in bytes.
type Digest struct {
	SHA256 string
	Size   int64
}

// IsZero reports whether d names no file.
func (d Digest) IsZero() bool { return d.SHA256 == "" && d.Size == 0 }

// DigestOf is the Digest of b.
func DigestOf(b []byte) Digest {
	s := sha256.Sum256(b)
	return Digest{SHA256: hex.EncodeToString(s[:]), Size: int64(len(b))}
}

// Statement is one repository statement.
type Statement struct {
	// Repository and Architecture name the database: pacman's repository
	// name ([core]) and the architecture its files are for (x86_64).
	Repository   string
	Architecture string
	// DB is the sync database (`<repo>.db` as pacman stores it); Files the
	// `<repo>.files` database, zero when the repository has none.
	DB    Digest
	Files Digest
	// Counter grows with every statement about (Repository, Architecture),
	// starting at 1.
	Counter uint64
	// Issued is when the statement was signed (UTC, whole seconds).
	Issued time.Time
	// Interval is the operator's heartbeat: a new statement at least this
	// often, even for an unchanged database (whole seconds, > 0).
	Interval time.Duration
}

// FormatError is a statement that is not exactly in the format.
type FormatError struct {
	Line   int // 1-based; 0: the whole file
	Reason string
}

func (e *FormatError) Error() string {
	if e.Line == 0 {
		return "repository statement: " + e.Reason
	}
	return fmt.Sprintf("repository statement, line %d: %s", e.Line, e.Reason)
}

// Validate checks that s can be written: names in pacman's character set,
// a database digest, a counter >= 1, an issue time in UTC whole seconds
// after 2000, an interval of whole seconds > 0.
func (s *Statement) Validate() error {
	switch {
	case !validName(s.Repository):
		return &FormatError{Reason: fmt.Sprintf("repository %q is not a repository name", s.Repository)}
	case !validName(s.Architecture):
		return &FormatError{Reason: fmt.Sprintf("architecture %q is not an architecture name", s.Architecture)}
	case !validDigest(s.DB):
		return &FormatError{Reason: "the database digest is not a sha256 and a size"}
	case !s.Files.IsZero() && !validDigest(s.Files):
		return &FormatError{Reason: "the files database digest is not a sha256 and a size"}
	case s.Counter == 0:
		return &FormatError{Reason: "counter 0 (counters start at 1)"}
	case s.Issued.Location() != time.UTC || s.Issued.Nanosecond() != 0 || s.Issued.Year() < 2000 || s.Issued.Year() > 9999:
		return &FormatError{Reason: "issue time is not a UTC time in whole seconds between 2000 and 9999"}
	case s.Interval <= 0 || s.Interval%time.Second != 0 || s.Interval > 100*365*24*time.Hour:
		return &FormatError{Reason: "interval is not a positive number of whole seconds"}
	}
	return nil
}

// Marshal writes s in the one form Parse accepts.
func (s *Statement) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nrepository %s\narchitecture %s\n", Version, s.Repository, s.Architecture)
	fmt.Fprintf(&b, "db sha256:%s size:%d\n", s.DB.SHA256, s.DB.Size)
	if s.Files.IsZero() {
		b.WriteString("files -\n")
	} else {
		fmt.Fprintf(&b, "files sha256:%s size:%d\n", s.Files.SHA256, s.Files.Size)
	}
	fmt.Fprintf(&b, "counter %d\nissued %s\ninterval %d\n", s.Counter, s.Issued.Format(time.RFC3339), int64(s.Interval/time.Second))
	return b.Bytes(), nil
}

// Parse reads a statement strictly: at most MaxSize bytes of ASCII, the
// eight lines of the format in order, each ending in "\n", single spaces,
// canonical numbers, lowercase hex. Anything else is a *FormatError.
// Parse(Marshal(s)) == s, and Marshal(Parse(b)) == b.
func Parse(b []byte) (*Statement, error) {
	if len(b) > MaxSize {
		return nil, &FormatError{Reason: fmt.Sprintf("%d bytes, at most %d accepted", len(b), MaxSize)}
	}
	for i, c := range b {
		if c != '\n' && (c < 0x20 || c > 0x7e) {
			return nil, &FormatError{Line: 1 + bytes.Count(b[:i], []byte("\n")), Reason: fmt.Sprintf("byte %#02x is not printable ASCII", c)}
		}
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, &FormatError{Reason: "does not end with a newline"}
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	const nLines = 8
	if len(lines) != nLines {
		return nil, &FormatError{Reason: fmt.Sprintf("%d lines, want %d", len(lines), nLines)}
	}
	if lines[0] != Version {
		return nil, &FormatError{Line: 1, Reason: fmt.Sprintf("first line is not %q (another format version?)", Version)}
	}
	var s Statement
	field := func(i int, key string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], key+" ")
		if !ok || v == "" {
			return "", &FormatError{Line: i + 1, Reason: fmt.Sprintf("want %q", key+" <value>")}
		}
		return v, nil
	}
	var err error
	if s.Repository, err = field(1, "repository"); err != nil {
		return nil, err
	}
	if s.Architecture, err = field(2, "architecture"); err != nil {
		return nil, err
	}
	v, err := field(3, "db")
	if err != nil {
		return nil, err
	}
	if s.DB, err = parseDigest(v, 4); err != nil {
		return nil, err
	}
	if v, err = field(4, "files"); err != nil {
		return nil, err
	}
	if v != "-" {
		if s.Files, err = parseDigest(v, 5); err != nil {
			return nil, err
		}
	}
	if v, err = field(5, "counter"); err != nil {
		return nil, err
	}
	if s.Counter, err = parseUint(v, 6); err != nil {
		return nil, err
	}
	if v, err = field(6, "issued"); err != nil {
		return nil, err
	}
	t, terr := time.Parse(time.RFC3339, v)
	if terr != nil || t.Location() != time.UTC || t.Format(time.RFC3339) != v {
		return nil, &FormatError{Line: 7, Reason: "issue time is not RFC 3339 UTC in whole seconds (2006-01-02T15:04:05Z)"}
	}
	s.Issued = t
	if v, err = field(7, "interval"); err != nil {
		return nil, err
	}
	secs, err := parseUint(v, 8)
	if err != nil {
		return nil, err
	}
	if secs > uint64(100*365*24*time.Hour/time.Second) {
		return nil, &FormatError{Line: 8, Reason: "interval longer than a century"}
	}
	s.Interval = time.Duration(secs) * time.Second
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func parseDigest(v string, line int) (Digest, error) {
	h, size, ok := strings.Cut(v, " ")
	bad := &FormatError{Line: line, Reason: "want \"sha256:<64 lowercase hex> size:<bytes>\""}
	if !ok {
		return Digest{}, bad
	}
	h, ok1 := strings.CutPrefix(h, "sha256:")
	size, ok2 := strings.CutPrefix(size, "size:")
	if !ok1 || !ok2 || !isHex64(h) {
		return Digest{}, bad
	}
	n, err := parseUint(size, line)
	if err != nil || n > 1<<50 {
		return Digest{}, bad
	}
	return Digest{SHA256: h, Size: int64(n)}, nil
}

// parseUint accepts canonical decimals only (no sign, no leading zero).
func parseUint(v string, line int) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != v {
		return 0, &FormatError{Line: line, Reason: fmt.Sprintf("%q is not a canonical decimal number", truncate(v, 32))}
	}
	return n, nil
}

func validDigest(d Digest) bool { return isHex64(d.SHA256) && d.Size >= 0 && d.Size <= 1<<50 }

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validName is pacman's repository (and architecture) name: 1..128 of
// [A-Za-z0-9@._+-], not starting with '-' or '.'.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '-' || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '@' || c == '.' || c == '_' || c == '+' || c == '-':
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
