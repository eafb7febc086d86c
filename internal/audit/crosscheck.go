package audit

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/verify"
)

// CrossCheckSchemaVersion is the version of CrossReport's JSON form.
const CrossCheckSchemaVersion = 1

// LoggedEntry is a verified log entry for a transparency key (a monitor
// run's output): where it is, and the decoded body.
type LoggedEntry struct {
	UUID           string
	LogIndex       int64
	IntegratedTime int64
	// Body holds the signature line, the key and sha256(message) of a
	// Rekor v1 entry; V2 the key, digest and signature of a Rekor v2 entry
	// (exactly one is set).
	Body   *rekorv1.Body
	V2     *V2Body
	Sigsum *SigsumBody
	// Indexed is false for an entry the log's key search did not list.
	Indexed bool
	// LogOrigin is the origin of the log the entry was read from, when the
	// monitor read several (Sigsum: every log of the policy; Rekor v2
	// shards); an audit record that names its log's origin then matches
	// only the entry of that log.
	LogOrigin string
}

// V2Body is a Rekor v2 entry of a transparency key: a hashedrekord v0.0.2
// whose Ed25519ph signature by Key is over Digest, SHA-512 of the message
// (the package's hex sha256).
type V2Body struct {
	Key       verify.PublicKey
	Digest    []byte
	Signature []byte
}

// SigsumBody is a Sigsum leaf of a transparency key: Signature is Key's
// Ed25519 signature over the Sigsum leaf of Checksum, SHA-256 of the
// package's SHA-256 (the 32 bytes the hex message encodes).
type SigsumBody struct {
	Key       verify.PublicKey
	Checksum  [32]byte
	Signature [64]byte
}

func (e *LoggedEntry) keyID() string {
	if e.Sigsum != nil {
		return e.Sigsum.Key.KeyID()
	}
	if e.V2 != nil {
		return e.V2.Key.KeyID()
	}
	return e.Body.Key.KeyID()
}

// sigKeyID is the key id the signature names (a Rekor v2 entry has no
// minisign signature line: its key's).
func (e *LoggedEntry) sigKeyID() string {
	if e.V2 != nil || e.Sigsum != nil {
		return e.keyID()
	}
	return e.Body.SigKeyID()
}

// msgKey identifies the entry's message as the log holds it: sha256 (hex)
// of a Rekor v1 entry, "sha512:" and the hex SHA-512 of a Rekor v2 one.
func (e *LoggedEntry) msgKey() string {
	if e.Sigsum != nil {
		return "sigsum:" + hex.EncodeToString(e.Sigsum.Checksum[:])
	}
	if e.V2 != nil {
		return "sha512:" + hex.EncodeToString(e.V2.Digest)
	}
	return e.Body.DataSHA256
}

// msgKeys are the msgKey values an entry signing message can have.
func msgKeys(message string) []string {
	d := sha512.Sum512([]byte(message))
	keys := []string{sha256Hex(message), "sha512:" + hex.EncodeToString(d[:])}
	if m, err := hex.DecodeString(message); err == nil && len(m) == 32 {
		c := sigsum.Checksum([32]byte(m))
		keys = append(keys, "sigsum:"+hex.EncodeToString(c[:]))
	}
	return keys
}

// verifyMessage checks that the entry is its key's signature over message.
func (e *LoggedEntry) verifyMessage(message []byte) error {
	if e.Sigsum != nil {
		m, err := hex.DecodeString(string(message))
		if err != nil || len(m) != 32 {
			return errors.New("not a hex sha256")
		}
		if sigsum.Checksum([32]byte(m)) != e.Sigsum.Checksum {
			return fmt.Errorf("the leaf's checksum is not SHA-256 of it (%s)", hex.EncodeToString(e.Sigsum.Checksum[:]))
		}
		if !sigsum.VerifyLeaf(e.Sigsum.Key.Ed25519(), e.Sigsum.Checksum, e.Sigsum.Signature) {
			return errors.New("the leaf signature does not verify")
		}
		return nil
	}
	if e.V2 == nil {
		return e.Body.VerifyMessage(message)
	}
	d := sha512.Sum512(message)
	if !bytes.Equal(d[:], e.V2.Digest) {
		return fmt.Errorf("the entry's digest is not SHA-512 of it (%s)", hex.EncodeToString(e.V2.Digest))
	}
	if ed25519.VerifyWithOptions(e.V2.Key.Ed25519(), d[:], e.V2.Signature, &ed25519.Options{Hash: crypto.SHA512}) != nil {
		return errors.New("the Ed25519ph signature does not verify")
	}
	return nil
}

// sigID is the entry's Ed25519 signature (base64): an audited signature
// logged again with another key id is a variant.
func (e *LoggedEntry) sigID() string {
	if e.Sigsum != nil {
		return base64.StdEncoding.EncodeToString(e.Sigsum.Signature[:])
	}
	if e.V2 != nil {
		return base64.StdEncoding.EncodeToString(e.V2.Signature)
	}
	return base64.StdEncoding.EncodeToString(e.Body.SigLine[10:])
}

func (e *LoggedEntry) keyIDMatches() bool {
	return e.V2 != nil || e.Sigsum != nil || e.Body.KeyIDMatches()
}

// ReleasedPackage is a package of a repository database given to the
// cross-check (the current release).
type ReleasedPackage struct {
	Repo     string `json:"repo"`
	Arch     string `json:"arch"`
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
}

// CrossCheckInput is everything the cross-check compares.
type CrossCheckInput struct {
	// Keys are the transparency keys; records of other keys are ignored
	// (counted in CrossReport.OtherKeyRecords).
	Keys []verify.PublicKey
	// Entries are every verified log entry for Keys.
	Entries []LoggedEntry
	// Audit is the operator's audit log, read with ReadAll.
	Audit *ReadResult
	// Released are the packages of the repository databases given; with
	// DBsGiven false there were none and "packages without a log entry"
	// is not checked.
	Released []ReleasedPackage
	DBsGiven bool
	// Now is the time of the audit: a repository whose newest statement is
	// older than its interval (+ slack) then is a finding. Zero: not
	// checked.
	Now time.Time
}

// EntryRef names a log entry in a report.
type EntryRef struct {
	UUID           string `json:"uuid"`
	LogIndex       int64  `json:"log_index"`
	IntegratedTime int64  `json:"integrated_time"`
	MessageSHA256  string `json:"message_sha256"`
	// MessageSHA512 is, for a Rekor v2 entry, SHA-512 of the message (hex;
	// MessageSHA256 is then empty).
	MessageSHA512 string `json:"message_sha512,omitempty"`
	// SigsumChecksum is, for a Sigsum leaf, its checksum (hex SHA-256 of
	// the package's SHA-256 bytes).
	SigsumChecksum string `json:"sigsum_checksum,omitempty"`
	KeyID          string `json:"key_id"`
	SigKeyID       string `json:"sig_key_id"`
	// Log is the origin of the entry's log, in an audit over several logs.
	Log string `json:"log,omitempty"`
	// Note explains the finding (e.g. which audit record has the same
	// message).
	Note string `json:"note,omitempty"`
}

// RecordRef names an audit record in a report.
type RecordRef struct {
	Line     int    `json:"line"`
	Repo     string `json:"repo"`
	Arch     string `json:"arch"`
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	LogIndex int64  `json:"log_index"`
	UUID     string `json:"uuid"`
	// AfterBreak: the chain was already broken before this record.
	AfterBreak bool `json:"after_break,omitempty"`
	// Refused is a refusal record's reason (why sign did not sign).
	Refused string `json:"refused,omitempty"`
	// Kind is the record's kind ("statement" for a repository statement).
	Kind string `json:"kind,omitempty"`
}

// Mismatch is a log entry and the audit record naming it that disagree.
type Mismatch struct {
	Entry    EntryRef  `json:"entry"`
	Record   RecordRef `json:"record"`
	Field    string    `json:"field"`
	Expected string    `json:"expected"`
	Got      string    `json:"got"`
}

// ChainBreak is one broken line of the audit log.
type ChainBreak struct {
	Line     int    `json:"line"`
	Kind     string `json:"kind"`
	Expected string `json:"expected,omitempty"`
	Got      string `json:"got,omitempty"`
	Error    string `json:"error"`
}

// CrossReport is the outcome of CrossCheck. Every list is sorted (entries
// by log index, records by line, packages by repo/arch/filename) and never
// nil. Any non-empty list except Unindexed is a finding.
type CrossReport struct {
	SchemaVersion int `json:"schema_version"`
	// Entries, Records and Packages count what was compared.
	Entries  int `json:"entries"`
	Records  int `json:"records"`
	Packages int `json:"packages"`
	// Matched entries have an audit record that agrees and a release.
	Matched int `json:"matched"`
	// OtherKeyRecords are records of keys that were not checked.
	OtherKeyRecords int `json:"other_key_records"`
	// AuditHead is the head of the audit log as read.
	AuditHead Head `json:"audit_head"`

	// Unaudited: log entries signed by the key with no audit record and
	// not a key-id variant of an audited signature. POSSIBLE KEY
	// COMPROMISE: someone used the key outside the signing pipeline.
	Unaudited []EntryRef `json:"unaudited_entries"`
	// Variants: entries with no audit record whose signature is an audited
	// one with the key id in the signature line edited. Anyone can log
	// these (Rekor does not compare key ids); no minisign client accepts
	// them. Not a key compromise, but a finding.
	Variants []EntryRef `json:"key_id_variants"`
	// Mismatches: an entry and its audit record disagree (log index,
	// sha256, key id, the signature over the record's sha256, or the file
	// name a repository database gives that sha256).
	Mismatches []Mismatch `json:"mismatches"`
	// RecordsWithoutEntry: audit records whose entry is not in the log for
	// the key: the operator claims something the log does not show.
	RecordsWithoutEntry []RecordRef `json:"records_without_entry"`
	// Unreleased: audited entries whose package is in none of the given
	// databases and whose record names no database it was released in.
	Unreleased []RecordRef `json:"unreleased"`
	// NoReleaseSignature: audited entries whose record names no packager
	// signature that released the package (signed with --unsafe-trust-db,
	// or by a bintrans that did not check release signatures): the
	// operator cannot show that a packager released what the key signed.
	NoReleaseSignature []RecordRef `json:"no_release_signature"`
	// ChainBreaks: every broken line of the audit log.
	ChainBreaks []ChainBreak `json:"chain_breaks"`
	// PackagesWithoutEntry: packages of the given databases with no valid
	// log entry for the key (no entry whose signature verifies over the
	// package's sha256 with a matching key id).
	PackagesWithoutEntry []ReleasedPackage `json:"packages_without_entry"`
	// Unindexed (information): audited entries that are in the log but
	// that the log's key search does not list.
	Unindexed []EntryRef `json:"unindexed"`
	// OtherLogCopies (information): the leaf of an audited entry found in
	// another log than the one its record names (Sigsum: anyone can submit
	// a published leaf to another log of the policy). The record's own log
	// must still hold it (RecordsWithoutEntry otherwise).
	OtherLogCopies []EntryRef `json:"other_log_copies"`
	// Refusals (information): refusal records of the checked keys:
	// packages or databases bintrans sign refused to sign, and why.
	Refusals []RecordRef `json:"refusals"`
	// Statements (information): the repository statements the audit log
	// records, per repository and architecture, in the order issued.
	Statements []StatementHistory `json:"statements"`
	// StatementFindings: a counter that went backwards, one counter for two
	// statements, a gap between statements longer than the operator's
	// interval (+ half of it), or, at the time of the audit, no statement
	// for that long (the heartbeat stopped).
	StatementFindings []StatementFinding `json:"statement_findings"`
}

// Findings is the number of findings (everything but Unindexed).
func (r *CrossReport) Findings() int {
	return len(r.Unaudited) + len(r.Variants) + len(r.Mismatches) + len(r.RecordsWithoutEntry) +
		len(r.Unreleased) + len(r.NoReleaseSignature) + len(r.ChainBreaks) + len(r.PackagesWithoutEntry) +
		len(r.StatementFindings)
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func leafOf(uuid string) string {
	if len(uuid) < 64 {
		return uuid
	}
	return uuid[len(uuid)-64:]
}

func entryRef(e LoggedEntry) EntryRef {
	ref := EntryRef{UUID: e.UUID, LogIndex: e.LogIndex, IntegratedTime: e.IntegratedTime, KeyID: e.keyID(), SigKeyID: e.sigKeyID(), Log: e.LogOrigin}
	switch {
	case e.Sigsum != nil:
		ref.SigsumChecksum = hex.EncodeToString(e.Sigsum.Checksum[:])
	case e.V2 != nil:
		ref.MessageSHA512 = hex.EncodeToString(e.V2.Digest)
	default:
		ref.MessageSHA256 = e.Body.DataSHA256
	}
	return ref
}

func recordRef(r LineRecord) RecordRef {
	return RecordRef{Line: r.Line, Repo: r.Repo, Arch: r.Arch, Filename: r.Filename, SHA256: r.SHA256,
		LogIndex: r.LogIndex, UUID: r.UUID, AfterBreak: r.AfterBreak, Refused: r.Refused, Kind: r.Kind}
}

// CrossCheck compares the log's entries for the keys with the audit log
// and the released packages. It is pure: no I/O. Each entry must have a
// record with the same UUID, log index, key id and sha256 — the record's
// sha256 must be the signed message (data.hash = sha256 of it, and the
// entry's Ed25519 signature verifies over it) — and the package must be
// released: in a given database under the record's file name, or, when
// it is not there (an older release), the record names the database it was
// read from (the audit log's history) — and the record must name the
// packager signature that released it (NoReleaseSignature otherwise).
// Refusal records have no entry: they are listed (Refusals), not matched.
func CrossCheck(in CrossCheckInput) *CrossReport {
	c := newCrossCheck(in)
	for _, e := range c.entries {
		c.matchEntry(e)
	}
	c.unauditedEntries()
	c.recordsWithoutEntry()
	c.rep.Statements, c.rep.StatementFindings = Statements(c.records, in.Now)
	if in.DBsGiven {
		c.packagesWithoutEntry()
	}
	return c.rep
}

// crossCheck is one CrossCheck: its input indexed, what the entries
// matched so far, and the report being filled.
type crossCheck struct {
	in  CrossCheckInput
	rep *CrossReport

	records    []LineRecord                 // the checked keys' records, refusals aside
	recsByLeaf map[string][]LineRecord      // by leaf hash of the record's UUID
	recsByMsg  map[string][]LineRecord      // by msgKey of the record's sha256
	relBySHA   map[string][]ReleasedPackage // released packages by sha256
	entries    []LoggedEntry                // by log index, then UUID

	matchedLeaf map[string]bool // entries whose record matched (by uuid)
	matchedIn   map[string]bool // leaf "@" log origin of matched entries read from a named log
	matchedAny  map[string]bool // leaves of matched entries read from an unnamed log
	auditedSigs map[string]bool // Ed25519 signatures of audited entries
	validForMsg map[string]bool // package sha256 -> a valid entry (key id matches) signs it
	unmatched   []LoggedEntry   // entries without a record (by UUID)
}

// newCrossCheck starts the report (the audit log's head and chain breaks)
// and indexes the records of the checked keys, the released packages and
// the entries.
func newCrossCheck(in CrossCheckInput) *crossCheck {
	c := &crossCheck{in: in,
		rep: &CrossReport{SchemaVersion: CrossCheckSchemaVersion,
			Unaudited: []EntryRef{}, Variants: []EntryRef{}, Mismatches: []Mismatch{}, RecordsWithoutEntry: []RecordRef{},
			Unreleased: []RecordRef{}, NoReleaseSignature: []RecordRef{}, ChainBreaks: []ChainBreak{}, PackagesWithoutEntry: []ReleasedPackage{},
			Unindexed: []EntryRef{}, OtherLogCopies: []EntryRef{}, Refusals: []RecordRef{}, Statements: []StatementHistory{}, StatementFindings: []StatementFinding{}},
		recsByLeaf: map[string][]LineRecord{}, recsByMsg: map[string][]LineRecord{}, relBySHA: map[string][]ReleasedPackage{},
		matchedLeaf: map[string]bool{}, matchedIn: map[string]bool{}, matchedAny: map[string]bool{}, auditedSigs: map[string]bool{}, validForMsg: map[string]bool{}, unmatched: []LoggedEntry{}}
	rep := c.rep
	keyIDs := map[string]bool{}
	for _, k := range in.Keys {
		keyIDs[k.KeyID()] = true
	}
	if in.Audit != nil {
		rep.AuditHead = in.Audit.Head
		for _, b := range in.Audit.Breaks {
			cb := ChainBreak{Line: b.Line, Kind: string(b.Kind), Expected: b.Expected, Got: b.Got, Error: b.Error()}
			rep.ChainBreaks = append(rep.ChainBreaks, cb)
		}
		for _, r := range in.Audit.Records {
			if !keyIDs[r.KeyID] {
				rep.OtherKeyRecords++
				continue
			}
			if r.IsRefusal() {
				rep.Refusals = append(rep.Refusals, recordRef(r))
				continue
			}
			c.records = append(c.records, r)
			c.recsByLeaf[leafOf(r.UUID)] = append(c.recsByLeaf[leafOf(r.UUID)], r)
			for _, k := range msgKeys(r.SHA256) {
				c.recsByMsg[k] = append(c.recsByMsg[k], r)
			}
		}
	}
	rep.Records = len(c.records)
	for _, p := range in.Released {
		c.relBySHA[p.SHA256] = append(c.relBySHA[p.SHA256], p)
	}
	rep.Packages = len(in.Released)

	c.entries = append([]LoggedEntry(nil), in.Entries...)
	sort.Slice(c.entries, func(a, b int) bool {
		if c.entries[a].LogIndex != c.entries[b].LogIndex {
			return c.entries[a].LogIndex < c.entries[b].LogIndex
		}
		return c.entries[a].UUID < c.entries[b].UUID
	})
	rep.Entries = len(c.entries)
	return c
}

// matchEntry matches an entry with its record (by UUID): the record must
// agree with the entry (recordAgrees), and then be the operator's
// statement or a released package with its release signature.
func (c *crossCheck) matchEntry(e LoggedEntry) {
	rep := c.rep
	leaf := leafOf(e.UUID)
	recs := c.ownRecords(e, c.recsByLeaf[leaf])
	if recs == nil {
		return
	}
	if len(recs) == 0 {
		c.unmatched = append(c.unmatched, e)
		return
	}
	c.matchedLeaf[leaf] = true
	if e.LogOrigin != "" {
		c.matchedIn[leaf+"@"+e.LogOrigin] = true
	} else {
		c.matchedAny[leaf] = true
	}
	ref := entryRef(e)
	r := recs[0]
	for _, dup := range recs[1:] {
		rep.Mismatches = append(rep.Mismatches, Mismatch{Entry: ref, Record: recordRef(dup), Field: "duplicate-record",
			Expected: fmt.Sprintf("one record (line %d)", r.Line), Got: fmt.Sprintf("another at line %d", dup.Line)})
	}
	if !c.recordAgrees(e, r, ref) {
		return
	}
	c.auditedSigs[e.sigID()] = true
	c.validForMsg[r.SHA256] = true
	if !e.Indexed {
		rep.Unindexed = append(rep.Unindexed, ref)
	}
	if r.IsStatement() {
		// The operator's own statement: nothing to release (Validate
		// checked that it rebuilds and hashes to the signed message).
		rep.Matched++
		return
	}
	// Released?
	released := false
	for _, p := range c.relBySHA[r.SHA256] {
		if p.Filename == r.Filename {
			released = true
		}
	}
	if !released {
		if others := c.relBySHA[r.SHA256]; len(others) > 0 {
			c.mismatch(ref, r, "filename", others[0].Filename, r.Filename)
			return
		}
		if r.DBURL != "" && r.DBSHA256 != "" {
			released = true // released in an earlier database, per the audit log's history
		}
	}
	if !released {
		rep.Unreleased = append(rep.Unreleased, recordRef(r))
		return
	}
	if !r.HasRelease() {
		rep.NoReleaseSignature = append(rep.NoReleaseSignature, recordRef(r))
		return
	}
	rep.Matched++
}

// ownRecords are the records of e's leaf that name e's log (or no log):
// all of recs when e's log is not named. When recs name only other logs,
// e is a copy of an audited leaf in another log: it is listed in
// OtherLogCopies and ownRecords returns nil (nothing more to match).
func (c *crossCheck) ownRecords(e LoggedEntry, recs []LineRecord) []LineRecord {
	if e.LogOrigin == "" || len(recs) == 0 {
		return append([]LineRecord{}, recs...)
	}
	own := []LineRecord{}
	for _, r := range recs {
		if r.LogOrigin == "" || r.LogOrigin == e.LogOrigin {
			own = append(own, r)
		}
	}
	if len(own) == 0 {
		ref := entryRef(e)
		ref.Note = fmt.Sprintf("the leaf of audit record line %d (%s), logged in %s too; the record names %s", recs[0].Line, recs[0].Filename, e.LogOrigin, recs[0].LogOrigin)
		c.rep.OtherLogCopies = append(c.rep.OtherLogCopies, ref)
		return nil
	}
	return own
}

// recordAgrees reports whether record r says what entry e is: its log
// index, its key id, the message its signature verifies over, and a
// signature line naming that key. Each difference is a Mismatch.
func (c *crossCheck) recordAgrees(e LoggedEntry, r LineRecord, ref EntryRef) bool {
	ok := true
	if r.LogIndex != e.LogIndex {
		c.mismatch(ref, r, "log_index", fmt.Sprint(e.LogIndex), fmt.Sprint(r.LogIndex))
		ok = false
	}
	if r.KeyID != e.keyID() {
		c.mismatch(ref, r, "key_id", e.keyID(), r.KeyID)
		ok = false
	}
	if err := e.verifyMessage([]byte(r.SHA256)); err != nil {
		c.mismatch(ref, r, "sha256", "the message the entry signs ("+e.msgKey()+")", r.SHA256+": "+err.Error())
		ok = false
	}
	if e.sigKeyID() != e.keyID() {
		c.mismatch(ref, r, "sig_key_id", e.keyID(), e.sigKeyID())
		ok = false
	}
	return ok
}

func (c *crossCheck) mismatch(ref EntryRef, r LineRecord, field, expected, got string) {
	c.rep.Mismatches = append(c.rep.Mismatches, Mismatch{Entry: ref, Record: recordRef(r), Field: field, Expected: expected, Got: got})
}

// unauditedEntries lists the entries without a record (by UUID): a
// variant of an audited entry's signature, or an unaudited entry, noted
// with the record that signs the same message, if any.
func (c *crossCheck) unauditedEntries() {
	rep := c.rep
	for _, e := range c.unmatched {
		ref := entryRef(e)
		if ref.SigKeyID != ref.KeyID && c.auditedSigs[e.sigID()] {
			ref.Note = "the signature of an audited entry with the key id in the signature line changed from " + ref.KeyID + " to " + ref.SigKeyID
			rep.Variants = append(rep.Variants, ref)
			continue
		}
		if recs := c.recsByMsg[e.msgKey()]; len(recs) > 0 {
			ref.Note = fmt.Sprintf("signs the same message as audit record line %d (%s), but is another log entry (%s)", recs[0].Line, recs[0].Filename, recs[0].UUID)
		}
		if ref.SigKeyID != ref.KeyID {
			if ref.Note != "" {
				ref.Note += "; "
			}
			ref.Note += "its signature line names key id " + ref.SigKeyID
		}
		rep.Unaudited = append(rep.Unaudited, ref)
	}
}

// recordsWithoutEntry lists the records no entry matched (by UUID).
func (c *crossCheck) recordsWithoutEntry() {
	for _, r := range c.records {
		leaf := leafOf(r.UUID)
		if !c.matchedAny[leaf] && !c.matchedIn[leaf+"@"+r.LogOrigin] && (r.LogOrigin != "" || !c.matchedLeaf[leaf]) {
			c.rep.RecordsWithoutEntry = append(c.rep.RecordsWithoutEntry, recordRef(r))
		}
	}
}

// packagesWithoutEntry lists the released packages without a valid entry:
// an audited one, or any entry of the key whose signature verifies over
// the package's sha256. Sorted by repo, arch and file name.
func (c *crossCheck) packagesWithoutEntry() {
	rep := c.rep
	byMsg := map[string][]LoggedEntry{}
	for _, e := range c.entries {
		byMsg[e.msgKey()] = append(byMsg[e.msgKey()], e)
	}
	for _, p := range c.in.Released {
		if c.validForMsg[p.SHA256] {
			continue
		}
		found := false
		for _, k := range msgKeys(p.SHA256) {
			for _, e := range byMsg[k] {
				if e.keyIDMatches() && e.verifyMessage([]byte(p.SHA256)) == nil {
					found = true
					break
				}
			}
		}
		if !found {
			rep.PackagesWithoutEntry = append(rep.PackagesWithoutEntry, p)
		}
	}
	sort.Slice(rep.PackagesWithoutEntry, func(a, b int) bool {
		x, y := rep.PackagesWithoutEntry[a], rep.PackagesWithoutEntry[b]
		if x.Repo != y.Repo {
			return x.Repo < y.Repo
		}
		if x.Arch != y.Arch {
			return x.Arch < y.Arch
		}
		return x.Filename < y.Filename
	})
}
