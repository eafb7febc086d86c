package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/verify"
)

func TestReadAllClean(t *testing.T) {
	_, b := writeLog(t, 5)
	res, err := ReadAll(bytes.NewReader(b))
	if err != nil || len(res.Breaks) != 0 || len(res.Records) != 5 {
		t.Fatalf("clean log: %v breaks %v records %d", err, res.Breaks, len(res.Records))
	}
	head, _ := Scan(bytes.NewReader(b), nil)
	if res.Head != head {
		t.Errorf("head %+v, Scan says %+v", res.Head, head)
	}
}

// An edit in the middle is reported where it is, and reading goes on: the
// records after it are still returned (marked), and a second edit further
// down is reported too.
func TestReadAllGoesOn(t *testing.T) {
	_, b := writeLog(t, 8)
	ls := lines(b)
	ls[2] = bytes.Replace(ls[2], []byte("pkg002-"), []byte("evil02-"), 1) // breaks line 4
	ls[5] = nil                                                           // deleting line 6 breaks line 7
	ls[7] = ls[7][:len(ls[7])-1]                                          // torn last line
	edited := bytes.Join(ls, nil)
	res, err := ReadAll(bytes.NewReader(edited))
	if err != nil {
		t.Fatal(err)
	}
	type br struct {
		line int
		kind ChainErrorKind
	}
	var got []br
	for _, e := range res.Breaks {
		got = append(got, br{e.Line, e.Kind})
	}
	want := []br{{4, KindPrevMismatch}, {6, KindPrevMismatch}, {7, KindTruncated}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("breaks %v, want %v", got, want)
	}
	if len(res.Records) != 6 {
		t.Fatalf("%d records, want 6 (lines 1-6 of the edited file)", len(res.Records))
	}
	if res.Records[2].Filename != "evil02-1.0-1-x86_64.pkg.tar.zst" || res.Records[2].AfterBreak || !res.Records[3].AfterBreak {
		t.Errorf("records %+v / %+v", res.Records[2], res.Records[3])
	}
	// The first break is the one Scan reports.
	_, serr := Scan(bytes.NewReader(edited), nil)
	var ce *ChainError
	if !errors.As(serr, &ce) || ce.Line != res.Breaks[0].Line || ce.Kind != res.Breaks[0].Kind {
		t.Errorf("Scan says %v, ReadAll %v", serr, res.Breaks[0])
	}
}

func TestReadAllMalformedAndLong(t *testing.T) {
	_, b := writeLog(t, 3)
	ls := lines(b)
	long := append(bytes.Repeat([]byte("x"), MaxLineSize+10), '\n')
	edited := bytes.Join([][]byte{ls[0], []byte("{not json}\n"), long, ls[1], ls[2]}, nil)
	res, err := ReadAll(bytes.NewReader(edited))
	if err != nil {
		t.Fatal(err)
	}
	kinds := []ChainErrorKind{}
	for _, e := range res.Breaks {
		kinds = append(kinds, e.Kind)
	}
	if fmt.Sprint(kinds) != fmt.Sprint([]ChainErrorKind{KindMalformed, KindTooLong}) || len(res.Records) != 3 {
		t.Errorf("breaks %v records %d", res.Breaks, len(res.Records))
	}
}

// FuzzReadAll: never panics; agrees with Scan on a clean log and on where
// the first break is.
func FuzzReadAll(f *testing.F) {
	seedPath := filepath.Join(f.TempDir(), "seed")
	w, err := Open(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	w.Now = fixedClock
	for i := range 3 {
		if _, err := w.Append(testRecord(i)); err != nil {
			f.Fatal(err)
		}
	}
	w.Close()
	seed, err := os.ReadFile(seedPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	ls := bytes.SplitAfter(seed, []byte("\n"))
	f.Add(bytes.Join([][]byte{ls[0], ls[2], ls[1]}, nil))
	f.Add([]byte("{}\n{}\n"))
	f.Add([]byte(`{"schema_version":1}` + "\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := ReadAll(bytes.NewReader(b))
		if err != nil {
			return // limits
		}
		n := 0
		head, serr := Scan(bytes.NewReader(b), func(int, Record) error { n++; return nil })
		if len(res.Breaks) == 0 {
			if serr != nil || len(res.Records) != n || res.Head != head {
				t.Fatalf("ReadAll clean, Scan %v (%d vs %d records)", serr, len(res.Records), n)
			}
			return
		}
		var ce *ChainError
		if !errors.As(serr, &ce) || ce.Line != res.Breaks[0].Line || ce.Kind != res.Breaks[0].Kind {
			t.Fatalf("Scan %v, ReadAll first break %v", serr, res.Breaks[0])
		}
	})
}

// --- cross-check ---

type ccKey struct {
	sk  *minisign.PrivateKey
	pub verify.PublicKey
}

func newCCKey(t testing.TB) ccKey {
	_, edsk, _ := ed25519.GenerateKey(rand.Reader)
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	rand.Read(sk.KeyId[:])
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return ccKey{sk, pk}
}

// logged signs sha as the log would hold it at index i.
func (k ccKey) logged(t testing.TB, sha string, i int64) LoggedEntry {
	tb, err := verify.SignPackage(k.sk, sha, "p.pkg.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := verify.ParseSignature(tb)
	body := rekorv1.CanonicalBody(s, k.pub, []byte(sha))
	b, err := rekorv1.DecodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	return LoggedEntry{UUID: "1234567812345678" + rekorv1.LeafHash(body), LogIndex: i, IntegratedTime: 1700000000 + i, Body: b, Indexed: true}
}

func randHex() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type ccFixture struct {
	key     ccKey
	entries []LoggedEntry
	recs    []LineRecord
	rel     []ReleasedPackage
}

func newCC(t *testing.T, n int) *ccFixture {
	f := &ccFixture{key: newCCKey(t)}
	for i := range n {
		sha := randHex()
		e := f.key.logged(t, sha, int64(100+i))
		f.entries = append(f.entries, e)
		r := releasedRecord(i)
		r.SHA256, r.UUID, r.LogIndex, r.KeyID = sha, e.UUID, e.LogIndex, f.key.pub.KeyID()
		f.recs = append(f.recs, LineRecord{Line: i + 1, Record: r})
		f.rel = append(f.rel, ReleasedPackage{Repo: "core", Arch: "x86_64", Filename: r.Filename, SHA256: sha})
	}
	return f
}

func (f *ccFixture) check() *CrossReport {
	return CrossCheck(CrossCheckInput{Keys: []verify.PublicKey{f.key.pub}, Entries: f.entries,
		Audit: &ReadResult{Records: f.recs}, Released: f.rel, DBsGiven: true})
}

func TestCrossCheckAgrees(t *testing.T) {
	f := newCC(t, 12)
	rep := f.check()
	if rep.Findings() != 0 || rep.Matched != 12 || rep.Entries != 12 || rep.Records != 12 || rep.Packages != 12 {
		t.Fatalf("%+v", rep)
	}
	// Released only per the audit history (older db): still matched.
	f.rel = f.rel[:6]
	if rep := f.check(); rep.Findings() != 0 || rep.Matched != 12 {
		t.Errorf("history: %+v", rep)
	}
	// Not released anywhere: no db in the record, not in the dbs.
	f.recs[8].DBURL, f.recs[8].DBSHA256 = "", ""
	if rep := f.check(); len(rep.Unreleased) != 1 || rep.Unreleased[0].Line != 9 || rep.Findings() != 1 {
		t.Errorf("unreleased: %+v", rep)
	}
}

// The attack, as the audit log shows it: an entry whose record
// names its database (db_url, db_sha256) but no packager signature is a
// finding even when a given database lists it; refusal records are listed
// as information and are not entries the log should have.
func TestCrossCheckReleaseSignatures(t *testing.T) {
	f := newCC(t, 4)
	f.recs[2].ReleaseSig, f.recs[2].ReleaseKey, f.recs[2].ReleaseSigSHA256 = "", "", ""
	ref := refusalRecord(9)
	ref.KeyID = f.key.pub.KeyID()
	f.recs = append(f.recs, LineRecord{Line: 5, Record: ref})
	rep := f.check()
	if len(rep.NoReleaseSignature) != 1 || rep.NoReleaseSignature[0].Line != 3 || rep.Findings() != 1 || rep.Matched != 3 {
		t.Errorf("no release signature: %+v", rep)
	}
	if len(rep.Refusals) != 1 || rep.Refusals[0].Line != 5 || rep.Refusals[0].Refused == "" || len(rep.RecordsWithoutEntry) != 0 || rep.Records != 4 {
		t.Errorf("refusals %+v, records without entry %+v, records %d", rep.Refusals, rep.RecordsWithoutEntry, rep.Records)
	}
	// The same without databases: the record's history does not help.
	f.rel, f.recs = nil, f.recs[:4]
	if rep := CrossCheck(CrossCheckInput{Keys: []verify.PublicKey{f.key.pub}, Entries: f.entries, Audit: &ReadResult{Records: f.recs}}); len(rep.NoReleaseSignature) != 1 {
		t.Errorf("without databases: %+v", rep.NoReleaseSignature)
	}
}

func TestCrossCheckFindings(t *testing.T) {
	f := newCC(t, 10)
	// (a) an entry signed by the key with no record: possible compromise.
	rogue := f.key.logged(t, randHex(), 500)
	f.entries = append(f.entries, rogue)
	// (b) a record whose entry is not in the log.
	ghost := releasedRecord(50)
	ghost.KeyID, ghost.UUID, ghost.SHA256 = f.key.pub.KeyID(), strings.Repeat("ef", 32), randHex()
	f.recs = append(f.recs, LineRecord{Line: 11, Record: ghost})
	// (c) a record that disagrees with its entry (index, sha256).
	f.recs[3].LogIndex = 999
	f.recs[4].SHA256 = randHex()
	// (d) a key-id variant of an audited signature.
	v := f.entries[0]
	line := bytes.Clone(v.Body.SigLine)
	line[2] ^= 0xff
	vb := &rekorv1.Body{SigLine: line, Key: v.Body.Key, DataSHA256: v.Body.DataSHA256}
	f.entries = append(f.entries, LoggedEntry{UUID: strings.Repeat("01", 32), LogIndex: 501, Body: vb, Indexed: true})
	// (e) a released package that was never logged.
	f.rel = append(f.rel, ReleasedPackage{Repo: "core", Arch: "x86_64", Filename: "new-1-1-x86_64.pkg.tar.zst", SHA256: randHex()})
	// A record of another key is ignored.
	other := releasedRecord(60)
	f.recs = append(f.recs, LineRecord{Line: 12, Record: other})

	rep := f.check()
	if len(rep.Unaudited) != 1 || rep.Unaudited[0].UUID != rogue.UUID {
		t.Errorf("unaudited %+v", rep.Unaudited)
	}
	if len(rep.RecordsWithoutEntry) != 1 || rep.RecordsWithoutEntry[0].Line != 11 {
		t.Errorf("records without entry %+v", rep.RecordsWithoutEntry)
	}
	fields := map[string]int{}
	for _, m := range rep.Mismatches {
		fields[m.Field] = m.Record.Line
	}
	if len(rep.Mismatches) != 2 || fields["log_index"] != 4 || fields["sha256"] != 5 {
		t.Errorf("mismatches %+v", rep.Mismatches)
	}
	if len(rep.Variants) != 1 || rep.Variants[0].LogIndex != 501 {
		t.Errorf("variants %+v", rep.Variants)
	}
	// The packages of the mismatched records are still signed by a valid
	// entry; the new one is not logged at all.
	if len(rep.PackagesWithoutEntry) != 1 || rep.PackagesWithoutEntry[0].Filename != "new-1-1-x86_64.pkg.tar.zst" {
		t.Errorf("packages without entry %+v", rep.PackagesWithoutEntry)
	}
	if rep.OtherKeyRecords != 1 || rep.Matched != 8 {
		t.Errorf("other-key records %d matched %d", rep.OtherKeyRecords, rep.Matched)
	}
	if rep.Findings() != 1+1+2+1+1 {
		t.Errorf("findings %d", rep.Findings())
	}
}

func TestCrossCheckChainBreaksAndUnindexed(t *testing.T) {
	f := newCC(t, 3)
	f.entries[1].Indexed = false
	rep := CrossCheck(CrossCheckInput{Keys: []verify.PublicKey{f.key.pub}, Entries: f.entries,
		Audit: &ReadResult{Records: f.recs, Breaks: []*ChainError{{Line: 2, Kind: KindPrevMismatch, Expected: "a", Got: "b"}}}})
	if len(rep.ChainBreaks) != 1 || rep.ChainBreaks[0].Line != 2 || rep.Findings() != 1 {
		t.Errorf("chain breaks %+v", rep.ChainBreaks)
	}
	if len(rep.Unindexed) != 1 || rep.Unindexed[0].LogIndex != 101 {
		t.Errorf("unindexed %+v", rep.Unindexed)
	}
	if len(rep.PackagesWithoutEntry) != 0 {
		t.Errorf("no dbs given, yet packages without entry: %+v", rep.PackagesWithoutEntry)
	}
}
