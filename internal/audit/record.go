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
//	 "db_sha256":"<sha256 of the db as fetched>","log_url":"https://rekor.example.org",
//	 "log_index":101,"uuid":"<entry uuid>","integrated_time":1764144000,
//	 "key_id":"95473F2A8DFC823F","bintrans_version":"0.1.0"}
//
// Readers accept only this exact encoding (field order, no spaces, Go's
// JSON escaping), so a line has one meaning for every reader.
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
)

// SchemaVersion is the version of Record written by this package. Readers
// reject records with another version.
const SchemaVersion = 1

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

	// The log entry holding the signature.
	LogURL         string `json:"log_url"`
	LogIndex       int64  `json:"log_index"`
	UUID           string `json:"uuid"`
	IntegratedTime int64  `json:"integrated_time"`
	// KeyID is the signing key's id as minisign prints it (16 upper-case hex).
	KeyID string `json:"key_id"`
	// BintransVersion is the version of the bintrans that wrote the record.
	BintransVersion string `json:"bintrans_version"`
}

var (
	hex64     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hexUUID   = regexp.MustCompile(`^([0-9a-f]{16})?[0-9a-f]{64}$`)
	hexKeyID  = regexp.MustCompile(`^[0-9A-F]{16}$`)
	fieldText = regexp.MustCompile(`^[^\x00-\x1f\x7f]*$`)
)

// Validate checks that r is a well-formed record (not that it is true). It
// does not check Prev against anything: that is the chain's job.
func (r *Record) Validate() error {
	switch {
	case r.SchemaVersion != SchemaVersion:
		return fmt.Errorf("schema_version %d, want %d", r.SchemaVersion, SchemaVersion)
	case !hex64.MatchString(r.Prev):
		return fmt.Errorf("prev %q is not 64 lowercase hex digits", r.Prev)
	case r.Filename == "" || strings.ContainsAny(r.Filename, "/\\") || r.Filename == "." || r.Filename == "..":
		return fmt.Errorf("filename %q is not a package file name", r.Filename)
	case r.Name == "" || r.Version == "":
		return fmt.Errorf("record for %s lacks name or version", r.Filename)
	case !hex64.MatchString(r.SHA256):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", r.SHA256)
	case r.DBSHA256 != "" && !hex64.MatchString(r.DBSHA256):
		return fmt.Errorf("db_sha256 %q is not 64 lowercase hex digits", r.DBSHA256)
	case r.LogIndex < 0:
		return fmt.Errorf("log_index %d is negative", r.LogIndex)
	case !hexUUID.MatchString(r.UUID):
		return fmt.Errorf("uuid %q is not 64 or 80 lowercase hex digits", r.UUID)
	case !hexKeyID.MatchString(r.KeyID):
		return fmt.Errorf("key_id %q is not 16 upper-case hex digits", r.KeyID)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
		return fmt.Errorf("time %q is not RFC 3339", r.Time)
	}
	for _, f := range []string{r.Repo, r.Arch, r.Name, r.Version, r.Packager, r.DBURL, r.LogURL, r.BintransVersion} {
		if !fieldText.MatchString(f) {
			return fmt.Errorf("field %q holds control characters", f)
		}
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
