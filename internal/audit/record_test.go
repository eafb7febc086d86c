package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/safetext"
)

func releasedRecord(i int) Record {
	r := testRecord(i)
	r.ReleaseSig, r.ReleaseKey, r.ReleaseSigSHA256 = ReleaseDB, strings.Repeat("A1", 20), strings.Repeat("ef", 32)
	return r
}

func refusalRecord(i int) Record {
	r := testRecord(i)
	r.LogIndex, r.UUID, r.IntegratedTime = 0, "", 0
	r.Refused = "no packager signature: " + r.Filename + ".sig is not on the mirror"
	return r
}

// chain encodes records as a valid chain (Prev filled in) without
// validating them: what a hostile or buggy writer could put in a file.
func chain(t *testing.T, recs ...Record) []byte {
	t.Helper()
	var out []byte
	prev := GenesisPrev
	for _, r := range recs {
		if r.SchemaVersion == 0 {
			r.SchemaVersion = SchemaVersion
		}
		r.Prev, r.Time = prev, "2026-11-26T07:00:00Z"
		line, err := r.marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, line...), '\n')
		prev = LineHash(line)
	}
	return out
}

func TestRecordKindsAndVersions(t *testing.T) {
	v1 := testRecord(0)
	v1.SchemaVersion = 1
	if err := VerifyChain(bytes.NewReader(chain(t, v1, testRecord(1), releasedRecord(2), refusalRecord(3)))); err != nil {
		t.Fatalf("a log of schema 1, unreleased, released and refusal records: %v", err)
	}
	r := releasedRecord(0)
	if !r.HasRelease() || r.IsRefusal() || !refusalRecord(0).IsRefusal() {
		t.Error("HasRelease/IsRefusal")
	}
	bad := map[string]Record{}
	add := func(name string, f func(*Record)) {
		r := releasedRecord(1)
		f(&r)
		bad[name] = r
	}
	add("schema 1 with release fields", func(r *Record) { r.SchemaVersion = 1 })
	add("schema 1 refusal", func(r *Record) { *r = refusalRecord(1); r.SchemaVersion = 1 })
	add("release without key", func(r *Record) { r.ReleaseKey = "" })
	add("release key not a fingerprint", func(r *Record) { r.ReleaseKey = strings.Repeat("a1", 20) })
	add("unknown release kind", func(r *Record) { r.ReleaseSig = "trust-me" })
	add("release without signature hash", func(r *Record) { r.ReleaseSigSHA256 = "" })
	add("refusal with an entry", func(r *Record) { *r = refusalRecord(1); r.UUID = strings.Repeat("cd", 32) })
	add("refusal with a release", func(r *Record) {
		*r = refusalRecord(1)
		r.ReleaseSig, r.ReleaseKey, r.ReleaseSigSHA256 = ReleaseDB, strings.Repeat("A1", 20), strings.Repeat("ef", 32)
	})
	add("schema 2 naming a log kind", func(r *Record) { r.SchemaVersion, r.LogKind, r.LogOrigin = 2, LogKindRekorV2, "rekor.example" })
	add("unknown log kind", func(r *Record) {
		r.SchemaVersion, r.LogKind, r.LogOrigin = SchemaVersionLogKind, "rekor-v3", "rekor.example"
	})
	add("log kind without origin", func(r *Record) { r.SchemaVersion, r.LogKind = SchemaVersionLogKind, LogKindSigsum })
	add("origin without log kind", func(r *Record) { r.LogOrigin = "rekor.example" })
	add("schema 4", func(r *Record) { r.SchemaVersion, r.LogKind, r.LogOrigin = 4, LogKindRekorV2, "rekor.example" })
	for name, r := range bad {
		err := VerifyChain(bytes.NewReader(chain(t, testRecord(0), r)))
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Line != 2 || ce.Kind != KindMalformed {
			t.Errorf("%s: %v, want malformed at line 2", name, err)
		}
	}
}

// Every string field is checked for control, bidi and format characters,
// and the error names the record (line) and the field, without echoing the
// character.
func TestRecordTextChecked(t *testing.T) {
	for _, c := range []struct {
		field string
		set   func(*Record, string)
	}{
		{"filename", func(r *Record, s string) { r.Filename = "a" + s + ".pkg.tar.zst" }},
		{"name", func(r *Record, s string) { r.Name = s }},
		{"version", func(r *Record, s string) { r.Version = "1" + s }},
		{"packager", func(r *Record, s string) { r.Packager = "Mallory " + s }},
		{"repo", func(r *Record, s string) { r.Repo = s }},
		{"db_url", func(r *Record, s string) { r.DBURL = "https://x/" + s }},
		{"log_url", func(r *Record, s string) { r.LogURL = s }},
		{"bintrans_version", func(r *Record, s string) { r.BintransVersion = s }},
		{"refused", func(r *Record, s string) { *r = refusalRecord(1); r.Refused = "why " + s }},
	} {
		for _, bad := range []string{"\x1b]0;owned\x07", "\x1b[2J", "\u009b31m", "\u202e", "\u2066", "\u200b", "\x7f", "\u2028"} {
			r := testRecord(1)
			c.set(&r, bad)
			err := VerifyChain(bytes.NewReader(chain(t, testRecord(0), r, testRecord(2))))
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Line != 2 || ce.Kind != KindMalformed {
				t.Errorf("%s %q: %v, want malformed at line 2", c.field, bad, err)
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, "line 2") || !strings.Contains(msg, "field "+c.field+":") || !strings.Contains(msg, "U+") {
				t.Errorf("%s %q: error %q does not name the line, the field and the character", c.field, bad, msg)
			}
			if strings.ContainsFunc(msg, safetext.Unsafe) {
				t.Errorf("%s: the error echoes the character: %q", c.field, msg)
			}
			// ReadAll reports it too, and keeps reading.
			res, rerr := ReadAll(bytes.NewReader(chain(t, testRecord(0), r, testRecord(2))))
			if rerr != nil || len(res.Breaks) != 1 || res.Breaks[0].Line != 2 || len(res.Records) != 2 {
				t.Errorf("%s %q: ReadAll breaks %v records %d (%v)", c.field, bad, res.Breaks, len(res.Records), rerr)
			}
		}
	}
	// The writer refuses such a record before writing anything.
	w, err := Open(t.TempDir() + "/audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := testRecord(0)
	r.Filename = "evil\u202egpj.pkg.tar.zst"
	if _, err := w.Append(r); err == nil || w.Head().Records != 0 {
		t.Errorf("Append of a bidi file name: %v, head %v", err, w.Head())
	}
}

// A Rekor v2 or Sigsum entry's record names the kind and origin (schema 3);
// the writer picks the schema from the record, so a Rekor v1 signer's
// records stay readable by an older bintrans.
func TestRecordLogKind(t *testing.T) {
	v2 := releasedRecord(1)
	v2.LogKind, v2.LogOrigin, v2.UUID, v2.IntegratedTime = LogKindRekorV2, "rekor-v2.example", strings.Repeat("ab", 32), 0
	v2.SchemaVersion = SchemaVersionLogKind
	if err := VerifyChain(bytes.NewReader(chain(t, releasedRecord(0), v2))); err != nil {
		t.Fatalf("a chain of a Rekor v1 and a Rekor v2 record: %v", err)
	}
	path := t.TempDir() + "/audit.jsonl"
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	v2.SchemaVersion = 0
	got, err := w.Append(v2)
	if err != nil || got.SchemaVersion != SchemaVersionLogKind {
		t.Fatalf("append: schema %d, %v", got.SchemaVersion, err)
	}
	got, err = w.Append(releasedRecord(2))
	if err != nil || got.SchemaVersion != PackageSchemaVersion {
		t.Fatalf("append: schema %d, %v", got.SchemaVersion, err)
	}
}
