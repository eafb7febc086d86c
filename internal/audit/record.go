// Package audit is the operator's tamper-evident audit log: one JSON line per
// signature that bintrans sign logged, saying why the signature exists (which
// released package, from which repository database, where in the log).
//
// # Format
//
// The file is JSON Lines, UTF-8, each line one Record terminated by "\n"
// (no CR, no blank lines, at most MaxLineSize bytes). Records form a hash
// chain: Record.Prev is the lowercase hex sha256 of the previous line's exact
// bytes without its terminating newline. The first record of a file has
// Prev = GenesisPrev (64 zeros): there is no separate genesis record, so an
// empty file is a valid, empty log.
//
// A record (one line in the file; wrapped here):
//
//	{"schema_version":1,"prev":"cb701ff1…","time":"2026-11-26T08:00:00Z",
//	 "repo":"core","arch":"x86_64","filename":"foo-1.0-1-x86_64.pkg.tar.zst",
//	 "name":"foo","version":"1.0-1","packager":"Alice <alice@example.org>",
//	 "build_date":1700000000,"sha256":"<package sha256 = the signed message>",
//	 "db_url":"https://mirror.example.org/core/os/x86_64/core.db",
//	 "db_sha256":"<sha256 of the db as fetched>","release_sig":"db",
//	 "release_key":"<OpenPGP fingerprint of the packager key>",
//	 "release_sig_sha256":"<sha256 of the detached signature file>",
//	 "log_url":"https://rekor.example.org",
//	 "log_index":101,"uuid":"<entry uuid>","integrated_time":1764144000,
//	 "key_id":"95473F2A8DFC823F","bintrans_version":"0.1.0"}
//
// Readers accept only this exact encoding (field order, no spaces, Go's
// JSON escaping), so a line has one meaning for every reader. No string
// field may hold a control, bidi or format character or invalid UTF-8
// (safetext.Check): a record shows the same in every terminal.
//
// # Versions and kinds
//
// Schema 2 (written since bintrans checks release signatures) adds the
// release fields, which say which packager signature released the package
// (ReleaseSig "db": the database's detached signature, which covers the
// database's %SHA256SUM%; "package": the package file's own detached
// signature), and refusal records: a record with Refused set names a
// package (or a database) that bintrans sign refused to sign, and why; it
// has no log entry (uuid empty, log_index and integrated_time 0). Schema 1
// records (no release fields, never refused) stay valid; a log may hold
// both. A schema 2 signature record without release fields was signed with
// --unsafe-trust-db: the auditor flags it.
//
// Schema 3 (written since bintrans issues repository statements) adds
// statement records: Kind "statement" (KindStatement), the record of a
// repository statement (docs/STATEMENTS.md) the signer issued, logged and
// published. Its Filename is the statement's path
// (statements/<db sha256>.stmt), SHA256 the sha256 of the statement file
// (the signed message), DBURL/DBSHA256 the database it names, and the
// statement's other fields (DBSize, FilesSHA256, FilesSize, Counter,
// Issued, Interval) are kept so that an auditor rebuilds the statement
// byte for byte and checks that it hashes to SHA256. Package records are
// still written as schema 2, so that a reader of schema 2 reads every
// package record; it refuses a statement record as malformed. Schema 3
// also adds LogKind and LogOrigin: the record of an entry in a Rekor v2 or
// Sigsum log names that log (its uuid is the entry's RFC 6962 leaf hash,
// its integrated_time 0) and is written as schema 3; records of Rekor v1
// entries never have them.
//
// # What the chain proves, and what it does not
//
// An edited, inserted, deleted or reordered record anywhere but at the end
// breaks the chain at the line after it, and a torn last line (no newline)
// is reported as truncated. Removing whole records from the end, or editing
// the very last record, leaves a valid (shorter or different) chain: that is
// detected only by comparing the chain's Head with one kept elsewhere
// (bintrans sign keeps the head it wrote in its state dir and checks it on
// the next run; `bintrans audit verify-chain --head` checks a published
// one) and by cross-checking the records with the transparency log
// (`bintrans audit`).
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/safetext"
)

// SchemaVersion is the newest version of Record: readers accept it down to
// MinSchemaVersion (schema 1 has no release fields and no refusal records,
// schema 2 no statement records) and reject any other. The writer writes
// package records as PackageSchemaVersion and statement records as
// SchemaVersion.
const SchemaVersion = 3

// PackageSchemaVersion is the version of the package and refusal records
// the writer writes.
const PackageSchemaVersion = 2

// KindStatement is Record.Kind of a repository statement's record.
const KindStatement = "statement"

// SchemaVersionLogKind is the first version whose records may name their
// log (LogKind, LogOrigin): a record of a Rekor v2 or Sigsum entry is
// written as schema 3; a Rekor v1 package record stays PackageSchemaVersion.
const SchemaVersionLogKind = 3

// schemaLogKind is the first schema with LogKind and LogOrigin.
const schemaLogKind = SchemaVersionLogKind

// The values of Record.LogKind (empty: Rekor v1).
const (
	LogKindRekorV2 = "rekor-v2"
	LogKindSigsum  = "sigsum"
)

// MinSchemaVersion is the oldest record version readers accept.
const MinSchemaVersion = 1

// The values of Record.ReleaseSig.
const (
	// ReleaseDB: the repository database's detached signature
	// (<repo>.db.sig, repo-add --sign) verified over the database the
	// record's sha256 was read from.
	ReleaseDB = "db"
	// ReleasePackage: the package's own detached signature (%PGPSIG% of
	// the database, else <filename>.sig) verified over the package file,
	// whose sha256 is the record's.
	ReleasePackage = "package"
)

// MaxLineSize bounds one record line (without its newline). A real record
// is about 700 bytes.
const MaxLineSize = 16 << 10

// GenesisPrev is the Prev of the first record of every audit log.
const GenesisPrev = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one audit-log entry: the evidence that one logged signature
// belongs to one released package. Field names are part of the file format:
// never rename one.
type Record struct {
	SchemaVersion int `json:"schema_version"`
	// Prev is the hex sha256 of the previous line (GenesisPrev for the first).
	Prev string `json:"prev"`
	// Time is when the record was written (RFC 3339, UTC).
	Time string `json:"time"`

	// The package, as the repository database describes it.
	Repo      string `json:"repo"`
	Arch      string `json:"arch"`
	Filename  string `json:"filename"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Packager  string `json:"packager"`
	BuildDate int64  `json:"build_date"` // unix seconds (%BUILDDATE%)
	// SHA256 is the package's lowercase hex sha256: the signed message.
	SHA256 string `json:"sha256"`
	// DBURL and DBSHA256 name the sync database the package was read from
	// and the sha256 of its bytes as fetched.
	DBURL    string `json:"db_url"`
	DBSHA256 string `json:"db_sha256"`

	// The packager signature that released the package (schema 2; empty
	// under --unsafe-trust-db): ReleaseDB or ReleasePackage, the
	// fingerprint of the OpenPGP key that made it (the primary key's,
	// upper-case hex) and the sha256 of the detached signature's bytes.
	ReleaseSig       string `json:"release_sig,omitempty"`
	ReleaseKey       string `json:"release_key,omitempty"`
	ReleaseSigSHA256 string `json:"release_sig_sha256,omitempty"`
	// Refused (schema 2) makes this a refusal record: why bintrans sign did
	// not sign the package (or, Filename being the database's file name,
	// any package of the database). A refusal record has no log entry.
	Refused string `json:"refused,omitempty"`

	// Kind (schema 3) is "" for a package's record, KindStatement for a
	// repository statement's. A statement record's Filename is
	// freshness.Path(DBSHA256), its SHA256 the statement file's; these
	// fields are the rest of the statement (its repository and
	// architecture are Repo and Arch). Empty for any other record.
	Kind        string `json:"kind,omitempty"`
	DBSize      int64  `json:"db_size,omitempty"`
	FilesSHA256 string `json:"files_sha256,omitempty"`
	FilesSize   int64  `json:"files_size,omitempty"`
	Counter     uint64 `json:"counter,omitempty"`
	Issued      string `json:"issued,omitempty"` // RFC 3339 UTC, whole seconds
	Interval    int64  `json:"interval,omitempty"`

	// The log entry holding the signature.
	LogURL string `json:"log_url"`
	// LogKind and LogOrigin (schema 3) name the log when it is not a Rekor
	// v1: "rekor-v2" or "sigsum", and the checkpoint origin of its tree
	// (the log's identity: a Rekor v2 shard, a Sigsum log's
	// sigsum.org/v1/tree/<key hash>). Both empty: Rekor v1. For those logs
	// UUID is the entry's RFC 6962 leaf hash (64 hex) and IntegratedTime 0.
	LogKind        string `json:"log_kind,omitempty"`
	LogOrigin      string `json:"log_origin,omitempty"`
	LogIndex       int64  `json:"log_index"`
	UUID           string `json:"uuid"`
	IntegratedTime int64  `json:"integrated_time"`
	// KeyID is the signing key's id as minisign prints it (16 upper-case hex).
	KeyID string `json:"key_id"`
	// BintransVersion is the version of the bintrans that wrote the record.
	BintransVersion string `json:"bintrans_version"`
}

var (
	hex64      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hexUUID    = regexp.MustCompile(`^([0-9a-f]{16})?[0-9a-f]{64}$`)
	hexKeyID   = regexp.MustCompile(`^[0-9A-F]{16}$`)
	fingerprnt = regexp.MustCompile(`^([0-9A-F]{40}|[0-9A-F]{64})$`)
)

// IsRefusal reports whether r is a refusal record (no log entry).
func (r Record) IsRefusal() bool { return r.Refused != "" }

// IsStatement reports whether r is a repository statement's record.
func (r Record) IsStatement() bool { return r.Kind == KindStatement }

// StatementRecord is the record of statement st, whose file's sha256 is
// stmtSHA256, read from the database at dbURL (log fields left empty).
func StatementRecord(st *freshness.Statement, stmtSHA256, dbURL string) Record {
	return Record{
		Kind: KindStatement, Repo: st.Repository, Arch: st.Architecture,
		Filename: freshness.Path(st.DB.SHA256), SHA256: stmtSHA256, DBURL: dbURL,
		DBSHA256: st.DB.SHA256, DBSize: st.DB.Size, FilesSHA256: st.Files.SHA256, FilesSize: st.Files.Size,
		Counter: st.Counter, Issued: st.Issued.UTC().Format(time.RFC3339), Interval: int64(st.Interval / time.Second),
	}
}

// Statement rebuilds the statement a statement record describes. It does
// not check that it hashes to r.SHA256 (Validate does).
func (r Record) Statement() (*freshness.Statement, error) {
	if !r.IsStatement() {
		return nil, fmt.Errorf("record for %s is not a statement's", r.Filename)
	}
	issued, err := time.Parse(time.RFC3339, r.Issued)
	if err != nil || issued.Location() != time.UTC || issued.Format(time.RFC3339) != r.Issued {
		return nil, fmt.Errorf("issued %q is not RFC 3339 UTC in whole seconds", r.Issued)
	}
	if r.Interval <= 0 || r.Interval > int64(100*365*24*time.Hour/time.Second) {
		return nil, fmt.Errorf("interval %d is not a positive number of seconds", r.Interval)
	}
	st := &freshness.Statement{
		Repository: r.Repo, Architecture: r.Arch,
		DB:      freshness.Digest{SHA256: r.DBSHA256, Size: r.DBSize},
		Files:   freshness.Digest{SHA256: r.FilesSHA256, Size: r.FilesSize},
		Counter: r.Counter, Issued: issued, Interval: time.Duration(r.Interval) * time.Second,
	}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	return st, nil
}

// HasRelease reports whether r names the packager signature that released
// its package.
func (r Record) HasRelease() bool { return r.ReleaseSig != "" }

// CheckText checks that no string field of r holds a control, bidi or
// format character or invalid UTF-8 (safetext.Check), naming the field.
// bintrans sign checks a package's record with it before signing.
func (r Record) CheckText() error {
	for _, f := range []struct{ name, v string }{
		{"prev", r.Prev}, {"time", r.Time}, {"repo", r.Repo}, {"arch", r.Arch}, {"filename", r.Filename},
		{"name", r.Name}, {"version", r.Version}, {"packager", r.Packager}, {"sha256", r.SHA256},
		{"db_url", r.DBURL}, {"db_sha256", r.DBSHA256}, {"release_sig", r.ReleaseSig}, {"release_key", r.ReleaseKey},
		{"release_sig_sha256", r.ReleaseSigSHA256}, {"refused", r.Refused}, {"kind", r.Kind}, {"files_sha256", r.FilesSHA256},
		{"issued", r.Issued}, {"log_url", r.LogURL}, {"log_kind", r.LogKind}, {"log_origin", r.LogOrigin}, {"uuid", r.UUID},
		{"key_id", r.KeyID}, {"bintrans_version", r.BintransVersion},
	} {
		if err := safetext.Check(f.v); err != nil {
			return fmt.Errorf("field %s: %v", f.name, err)
		}
	}
	return nil
}

// Validate checks that r is a well-formed record (not that it is true). It
// does not check Prev against anything: that is the chain's job. Errors
// quote the offending value as it is (escape it before printing).
func (r *Record) Validate() error {
	if r.SchemaVersion < MinSchemaVersion || r.SchemaVersion > SchemaVersionLogKind {
		return fmt.Errorf("schema_version %d, want %d to %d", r.SchemaVersion, MinSchemaVersion, SchemaVersionLogKind)
	}
	if err := r.CheckText(); err != nil {
		return err
	}
	if r.Kind != "" || r.DBSize != 0 || r.FilesSHA256 != "" || r.FilesSize != 0 || r.Counter != 0 || r.Issued != "" || r.Interval != 0 {
		if err := r.validateStatement(); err != nil {
			return err
		}
	}
	switch {
	case !hex64.MatchString(r.Prev):
		return fmt.Errorf("prev %q is not 64 lowercase hex digits", r.Prev)
	case r.IsStatement():
	case r.Filename == "" || strings.ContainsAny(r.Filename, "/\\") || r.Filename == "." || r.Filename == "..":
		return fmt.Errorf("filename %q is not a package file name", r.Filename)
	case r.DBSHA256 != "" && !hex64.MatchString(r.DBSHA256):
		return fmt.Errorf("db_sha256 %q is not 64 lowercase hex digits", r.DBSHA256)
	case !hexKeyID.MatchString(r.KeyID):
		return fmt.Errorf("key_id %q is not 16 upper-case hex digits", r.KeyID)
	case r.SchemaVersion < 2 && (r.HasRelease() || r.ReleaseKey != "" || r.ReleaseSigSHA256 != "" || r.IsRefusal()):
		return fmt.Errorf("schema_version %d record with release or refusal fields", r.SchemaVersion)
	case r.LogKind != "" && r.SchemaVersion < schemaLogKind:
		return fmt.Errorf("schema_version %d record with log_kind %q (log_kind is schema %d)", r.SchemaVersion, r.LogKind, schemaLogKind)
	case r.LogKind != "" && r.LogKind != LogKindRekorV2 && r.LogKind != LogKindSigsum:
		return fmt.Errorf("log_kind %q is not %q or %q", r.LogKind, LogKindRekorV2, LogKindSigsum)
	case (r.LogKind == "") != (r.LogOrigin == ""):
		return fmt.Errorf("log_origin %q without log_kind, or log_kind without log_origin", r.LogOrigin)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
		return fmt.Errorf("time %q is not RFC 3339", r.Time)
	}
	if r.HasRelease() || r.ReleaseKey != "" || r.ReleaseSigSHA256 != "" {
		switch {
		case r.ReleaseSig != ReleaseDB && r.ReleaseSig != ReleasePackage:
			return fmt.Errorf("release_sig %q is not %q or %q", r.ReleaseSig, ReleaseDB, ReleasePackage)
		case !fingerprnt.MatchString(r.ReleaseKey):
			return fmt.Errorf("release_key %q is not an OpenPGP fingerprint (40 or 64 upper-case hex digits)", r.ReleaseKey)
		case !hex64.MatchString(r.ReleaseSigSHA256):
			return fmt.Errorf("release_sig_sha256 %q is not 64 lowercase hex digits", r.ReleaseSigSHA256)
		}
	}
	if r.IsRefusal() {
		switch {
		case r.SHA256 != "" && !hex64.MatchString(r.SHA256):
			return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", r.SHA256)
		case r.UUID != "" || r.LogIndex != 0 || r.IntegratedTime != 0:
			return fmt.Errorf("refusal record for %s names a log entry", r.Filename)
		case r.HasRelease():
			return fmt.Errorf("refusal record for %s names a release signature", r.Filename)
		}
		return nil
	}
	switch {
	case (r.Name == "" || r.Version == "") && !r.IsStatement():
		return fmt.Errorf("record for %s lacks name or version", r.Filename)
	case !hex64.MatchString(r.SHA256):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", r.SHA256)
	case r.LogIndex < 0:
		return fmt.Errorf("log_index %d is negative", r.LogIndex)
	case !hexUUID.MatchString(r.UUID):
		return fmt.Errorf("uuid %q is not 64 or 80 lowercase hex digits", r.UUID)
	}
	return nil
}

// validateStatement checks a record with statement fields: schema 3, kind
// statement, no package or release fields, not a refusal, and a statement
// that rebuilds, is named by its database's hash and hashes to SHA256.
func (r *Record) validateStatement() error {
	switch {
	case r.Kind != KindStatement:
		return fmt.Errorf("kind %q is not %q (or empty, with no statement fields)", r.Kind, KindStatement)
	case r.SchemaVersion < 3:
		return fmt.Errorf("schema_version %d record of a statement (statements are schema 3)", r.SchemaVersion)
	case r.Name != "" || r.Version != "" || r.Packager != "" || r.BuildDate != 0:
		return fmt.Errorf("statement record with package fields")
	case r.HasRelease() || r.ReleaseKey != "" || r.ReleaseSigSHA256 != "" || r.IsRefusal():
		return fmt.Errorf("statement record with release or refusal fields")
	case !hex64.MatchString(r.DBSHA256) || r.Filename != freshness.Path(r.DBSHA256):
		return fmt.Errorf("statement record for %q is not named statements/<its db_sha256>.stmt", r.Filename)
	case !hex64.MatchString(r.SHA256):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", r.SHA256)
	}
	st, err := r.Statement()
	if err != nil {
		return fmt.Errorf("statement record for %s: %w", r.Filename, err)
	}
	b, err := st.Marshal()
	if err != nil {
		return fmt.Errorf("statement record for %s: %w", r.Filename, err)
	}
	if got := sha256Hex(string(b)); got != r.SHA256 {
		return fmt.Errorf("statement record for %s: the statement it describes hashes to %s, not its sha256 %s", r.Filename, got, r.SHA256)
	}
	return nil
}

// marshal encodes r as one record line (without the newline).
func (r *Record) marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(line) > MaxLineSize {
		return nil, fmt.Errorf("record for %s is %d bytes, over the %d-byte line limit", r.Filename, len(line), MaxLineSize)
	}
	return line, nil
}

// LineHash returns the hex sha256 of one record line (without its newline):
// the Prev of the record after it.
func LineHash(line []byte) string {
	h := sha256.Sum256(line)
	return hex.EncodeToString(h[:])
}
