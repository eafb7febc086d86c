package audit

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"testing"

	"github.com/bintrans/bintrans/internal/logs/sigsum"
)

// The cross-check over Rekor v2 entries (Ed25519ph over SHA-512 of the
// message) and Sigsum leaves (the leaf signature over SHA-256 of the
// package's sha256 bytes): matched by leaf, message checked, packages
// without an entry, entries without a record, a record naming the wrong
// package.

func (k ccKey) loggedKind(t *testing.T, kind, sha string, i int64) LoggedEntry {
	t.Helper()
	priv := ed25519.PrivateKey(k.sk.SecretKey[:])
	uuid := randHex()
	switch kind {
	case LogKindRekorV2:
		d := sha512.Sum512([]byte(sha))
		sig, err := priv.Sign(nil, d[:], crypto.SHA512)
		if err != nil {
			t.Fatal(err)
		}
		return LoggedEntry{UUID: uuid, LogIndex: i, Indexed: true, V2: &V2Body{Key: k.pub, Digest: d[:], Signature: sig}}
	default:
		m, _ := hex.DecodeString(sha)
		sig, err := sigsum.SignLeaf(priv, [32]byte(m))
		if err != nil {
			t.Fatal(err)
		}
		return LoggedEntry{UUID: uuid, LogIndex: i, Indexed: true, Sigsum: &SigsumBody{Key: k.pub, Checksum: sigsum.Checksum([32]byte(m)), Signature: sig}}
	}
}

func TestCrossCheckLogKinds(t *testing.T) {
	for _, kind := range []string{LogKindRekorV2, LogKindSigsum} {
		t.Run(kind, func(t *testing.T) {
			f := &ccFixture{key: newCCKey(t)}
			for i := range 6 {
				sha := randHex()
				e := f.key.loggedKind(t, kind, sha, int64(i))
				f.entries = append(f.entries, e)
				r := releasedRecord(i)
				r.SchemaVersion, r.LogKind, r.LogOrigin = SchemaVersionLogKind, kind, "origin.example"
				r.SHA256, r.UUID, r.LogIndex, r.KeyID, r.IntegratedTime = sha, e.UUID, e.LogIndex, f.key.pub.KeyID(), 0
				f.recs = append(f.recs, LineRecord{Line: i + 1, Record: r})
				f.rel = append(f.rel, ReleasedPackage{Repo: "core", Arch: "x86_64", Filename: r.Filename, SHA256: sha})
			}
			if rep := f.check(); rep.Findings() != 0 || rep.Matched != 6 {
				t.Fatalf("agree: %+v", rep)
			}
			// A record naming another package's sha256; an entry of the key
			// without a record (the same message as record 3: noted); a
			// released package with no entry.
			f.recs[1].SHA256 = f.recs[2].SHA256
			rogue := f.key.loggedKind(t, kind, f.recs[3].SHA256, 50)
			f.entries = append(f.entries, rogue)
			f.rel = append(f.rel, ReleasedPackage{Repo: "core", Arch: "x86_64", Filename: "new-1-1-any.pkg.tar.zst", SHA256: randHex()})
			rep := f.check()
			// (The package record 2 no longer names still has its entry: the
			// entry's signature over it is found by message.)
			if len(rep.Mismatches) != 1 || rep.Mismatches[0].Field != "sha256" || rep.Mismatches[0].Record.Line != 2 ||
				len(rep.Unaudited) != 1 || rep.Unaudited[0].UUID != rogue.UUID || rep.Unaudited[0].Note == "" ||
				len(rep.PackagesWithoutEntry) != 1 || rep.PackagesWithoutEntry[0].Filename != "new-1-1-any.pkg.tar.zst" {
				t.Fatalf("findings: mismatches %+v unaudited %+v packages %+v", rep.Mismatches, rep.Unaudited, rep.PackagesWithoutEntry)
			}
			ref := rep.Unaudited[0]
			if (kind == LogKindRekorV2) != (ref.MessageSHA512 != "") || (kind == LogKindSigsum) != (ref.SigsumChecksum != "") || ref.MessageSHA256 != "" {
				t.Errorf("entry ref %+v", ref)
			}
		})
	}
}

// TestCrossCheckSigsumTwoLogs: entries read from two Sigsum logs (the
// monitor names each entry's log). A record matches the entry of the log
// it names (its index is compared there); the same leaf in the other log
// is information (anyone can submit a published leaf to another log), not
// a finding; a record whose own log does not hold its leaf is a record
// without an entry even when the other log does.
func TestCrossCheckSigsumTwoLogs(t *testing.T) {
	const a, b = "sigsum.org/v1/tree/aaaa", "sigsum.org/v1/tree/bbbb"
	f := &ccFixture{key: newCCKey(t)}
	for i := range 4 {
		sha := randHex()
		e := f.key.loggedKind(t, LogKindSigsum, sha, int64(i))
		e.LogOrigin = a
		if i%2 == 1 {
			e.LogOrigin = b
		}
		f.entries = append(f.entries, e)
		r := releasedRecord(i)
		r.SchemaVersion, r.LogKind, r.LogOrigin = SchemaVersionLogKind, LogKindSigsum, e.LogOrigin
		r.SHA256, r.UUID, r.LogIndex, r.KeyID, r.IntegratedTime = sha, e.UUID, e.LogIndex, f.key.pub.KeyID(), 0
		f.recs = append(f.recs, LineRecord{Line: i + 1, Record: r})
		f.rel = append(f.rel, ReleasedPackage{Repo: "core", Arch: "x86_64", Filename: r.Filename, SHA256: sha})
	}
	if rep := f.check(); rep.Findings() != 0 || rep.Matched != 4 || len(rep.OtherLogCopies) != 0 {
		t.Fatalf("two logs agree: %+v", rep)
	}
	// Record 1's leaf (log a, index 0) also in log b at index 9.
	cp := f.entries[0]
	cp.LogOrigin, cp.LogIndex = b, 9
	f.entries = append(f.entries, cp)
	rep := f.check()
	if rep.Findings() != 0 || rep.Matched != 4 || len(rep.OtherLogCopies) != 1 || rep.OtherLogCopies[0].Log != b || rep.OtherLogCopies[0].LogIndex != 9 {
		t.Fatalf("a copy in the other log: findings %d matched %d copies %+v", rep.Findings(), rep.Matched, rep.OtherLogCopies)
	}
	// Log a no longer holds it: only the copy in log b is left.
	f.entries = f.entries[1:]
	rep = f.check()
	if len(rep.RecordsWithoutEntry) != 1 || rep.RecordsWithoutEntry[0].Line != 1 || len(rep.Unaudited) != 0 {
		t.Fatalf("the record's log lost the leaf: without entry %+v unaudited %+v", rep.RecordsWithoutEntry, rep.Unaudited)
	}
	// Without log names (one log), the index is what tells them apart.
	for i := range f.entries {
		f.entries[i].LogOrigin = ""
	}
	if rep = f.check(); len(rep.Mismatches) != 1 || rep.Mismatches[0].Field != "log_index" {
		t.Fatalf("unnamed logs: mismatches %+v", rep.Mismatches)
	}
}
