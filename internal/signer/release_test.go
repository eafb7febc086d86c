package signer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/gpgtest"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// packagerHome is a packager's GnuPG home: its key signs databases and
// packages, and its keyring (the key ultimately trusted) is the
// operator's --keyring in most tests.
func packagerHome(t *testing.T) *gpgtest.Home {
	return gpgtest.New(t, "Packager One <one@example.org>")
}

// webOfTrust is pacman's arrangement: the operator's keyring has its own
// (master) key, ultimately trusted, which certifies the packager's key
// (pacman-key --lsign-key), so the packager's key is fully valid; other
// keys are imported but not certified, or revoked.
type webOfTrust struct {
	master, packager, stranger, revoked *gpgtest.Home
	dir                                 string // the operator's keyring (public keys + trustdb)
}

func newWebOfTrust(t *testing.T) *webOfTrust {
	w := &webOfTrust{
		master:   gpgtest.New(t, "Repository Master Key <master@example.org>"),
		packager: gpgtest.New(t, "Packager One <one@example.org>"),
		stranger: gpgtest.New(t, "Imported, not trusted <stranger@example.org>"),
		revoked:  gpgtest.New(t, "Former Packager <former@example.org>"),
	}
	for _, k := range []*gpgtest.Home{w.packager, w.stranger, w.revoked} {
		w.master.Import(t, k)
	}
	w.master.Certify(t, w.packager)
	w.master.Certify(t, w.revoked)
	w.master.Revoke(t, w.revoked)
	w.dir = w.master.Keyring(t)
	return w
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

func TestKeyringVerify(t *testing.T) {
	w := newWebOfTrust(t)
	before := snapshotDir(t, w.dir)
	k, err := OpenKeyring(w.dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "foo-1.0-1-x86_64.pkg.tar.zst")
	data := []byte("the package's bytes")
	os.WriteFile(file, data, 0o644)
	good := w.packager.DetachSign(t, file)
	ctx := context.Background()
	rel, err := k.Verify(ctx, "foo", good, bytes.NewReader(data))
	sum := sha256.Sum256(good)
	if err != nil || rel.Key != w.packager.Fingerprint || rel.SigSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("a certified packager's signature: %+v, %v", rel, err)
	}
	byStranger := w.stranger.DetachSign(t, file)
	byRevoked := w.revoked.DetachSign(t, file)
	outsider := gpgtest.New(t, "Not in the keyring <outsider@example.org>")
	byOutsider := outsider.DetachSign(t, file)
	byMaster := w.master.DetachSign(t, file)
	for _, c := range []struct {
		name string
		sig  []byte
		data []byte
		want string
	}{
		{"other bytes", good, append(bytes.Clone(data), '!'), "BAD signature by key"},
		{"key imported but not certified", byStranger, data, "in the keyring but not trusted"},
		{"revoked key", byRevoked, data, "revoked"},
		{"key not in the keyring", byOutsider, data, "not in the keyring"},
		{"two signatures", append(bytes.Clone(good), byMaster...), data, "2 signatures"},
		{"garbage", []byte("not a signature at all"), data, "not an OpenPGP signature"},
		{"empty", nil, data, "empty"},
		{"oversized", make([]byte, MaxReleaseSigSize+1), data, "larger than"},
	} {
		rel, err := k.Verify(ctx, "foo", c.sig, bytes.NewReader(c.data))
		var re *ReleaseError
		if !errors.As(err, &re) || !strings.Contains(re.Reason, c.want) || rel != nil {
			t.Errorf("%s: %+v, %v; want a refusal saying %q", c.name, rel, err, c.want)
		}
	}
	// The master's own key is ultimately trusted: it releases too.
	if rel, err := k.Verify(ctx, "foo", byMaster, bytes.NewReader(data)); err != nil || rel.Key != w.master.Fingerprint {
		t.Errorf("the keyring owner's signature: %+v, %v", rel, err)
	}
	// A read error is not a verdict.
	boom := errors.New("connection reset")
	if _, err := k.Verify(ctx, "foo", good, io.MultiReader(bytes.NewReader(data[:5]), errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	// Nothing was written to the operator's keyring.
	if after := snapshotDir(t, w.dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the keyring directory changed")
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestOpenKeyringErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := OpenKeyring(empty, ""); err == nil || !strings.Contains(err.Error(), "no public keyring") {
		t.Errorf("empty dir: %v", err)
	}
	noTrust := t.TempDir()
	os.WriteFile(filepath.Join(noTrust, "pubring.gpg"), nil, 0o600)
	if _, err := OpenKeyring(noTrust, ""); err == nil || !strings.Contains(err.Error(), "trustdb.gpg") {
		t.Errorf("no trustdb: %v", err)
	}
	if _, err := OpenKeyring(noTrust, "/nonexistent/gpg"); err == nil || !strings.Contains(err.Error(), "GnuPG") {
		t.Errorf("no gpg: %v", err)
	}
}

// readRecords returns the audit log's records.
func (e *env) readRecords() []audit.Record {
	e.t.Helper()
	f, err := os.Open(e.auditF)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var recs []audit.Record
	if _, err := audit.Scan(f, func(_ int, r audit.Record) error { recs = append(recs, r); return nil }); err != nil {
		e.t.Fatal(err)
	}
	return recs
}

func (e *env) dbDir(repo string) string { return filepath.Join(e.root, "repo", repo, "os", "x86_64") }

// A database signed by a trusted packager releases every package in it:
// the records say so, with the key and the signature file's hash.
func TestDBSignatureReleases(t *testing.T) {
	e := newEnv(t, 8)
	sum := e.run([]string{"core"})
	if sum.Signed != 8 || sum.Failed != 0 || sum.ReleaseMode != ReleaseAuto || sum.Databases[0].ReleaseCheck != "db" ||
		sum.Databases[0].Release == nil || sum.Databases[0].Release.Key != e.packager.Fingerprint {
		t.Fatalf("%+v", sum)
	}
	sig, _ := os.ReadFile(filepath.Join(e.dbDir("core"), "core.db.sig"))
	h := sha256.Sum256(sig)
	for _, r := range e.readRecords() {
		if r.ReleaseSig != audit.ReleaseDB || r.ReleaseKey != e.packager.Fingerprint || r.ReleaseSigSHA256 != hex.EncodeToString(h[:]) {
			t.Errorf("record %s: release %q %q %q", r.Filename, r.ReleaseSig, r.ReleaseKey, r.ReleaseSigSHA256)
		}
	}
	e.checkAll(e.pkgs)
}

// The attack on a signed repository: the database gains an entry
// evil-1.0-1-x86_64.pkg.tar.zst with the sha256 of a file no packager
// signed; its signature no longer verifies, so nothing of it is signed,
// the refusal is reported and recorded once; a database re-signed by a key
// the keyring does not have is refused the same way.
func TestTamperedDBRefused(t *testing.T) {
	e := newEnv(t, 4)
	e.run([]string{"core"})
	uploads := e.log.uploads
	sig, _ := os.ReadFile(filepath.Join(e.dbDir("core"), "core.db.sig"))
	evil := repodbtest.Packages(1, repodbtest.Options{Seed: 99})[0]
	evil.Filename, evil.Name, evil.Version = "evil-1.0-1-x86_64.pkg.tar.zst", "evil", "1.0-1"
	evil.SHA256Sum = strings.Repeat("e", 64)
	e.unsignedDB = true
	e.writeDB("core", "x86_64", append(append([]repodb.Package(nil), e.pkgs...), evil))
	os.WriteFile(filepath.Join(e.dbDir("core"), "core.db.sig"), sig, 0o644) // the packager's old signature
	for run := 0; run < 2; run++ {
		sum := e.run([]string{"core"})
		if sum.Signed != 0 || sum.Failed != 1 || sum.Failures[0].Stage != StageRelease || sum.Failures[0].URL == "" ||
			!strings.Contains(sum.Failures[0].Error, "BAD signature") {
			t.Fatalf("run %d: %+v", run, sum)
		}
	}
	if e.log.uploads != uploads {
		t.Errorf("%d uploads for a tampered database", e.log.uploads-uploads)
	}
	if _, err := os.Stat(filepath.Join(e.sigDir, evil.Filename+".t")); !errors.Is(err, os.ErrNotExist) {
		t.Error("evil was signed")
	}
	refusals := 0
	for _, r := range e.readRecords() {
		if r.IsRefusal() {
			refusals++
			if r.Filename != "core.db" || r.DBSHA256 == "" || !strings.Contains(r.Refused, "BAD signature") {
				t.Errorf("refusal record %+v", r)
			}
		}
	}
	if refusals != 1 {
		t.Errorf("%d refusal records after two runs, want 1", refusals)
	}

	// Re-signed by an attacker's key.
	attacker := gpgtest.New(t, "Mallory <mallory@example.org>")
	attacker.DetachSign(t, filepath.Join(e.dbDir("core"), "core.db"))
	sum := e.run([]string{"core"})
	if sum.Signed != 0 || sum.Failed != 1 || sum.Failures[0].Stage != StageRelease || !strings.Contains(sum.Failures[0].Error, "not in the keyring") {
		t.Fatalf("database signed by an unknown key: %+v", sum)
	}
}

// writeRepo writes package files (random bytes) for pkgs into the
// repository's directory, sets their %SHA256SUM% and, for those sign
// returns true for, writes <file>.sig as makepkg --sign does.
func (e *env) writeRepo(pkgs []repodb.Package, sign func(i int) bool) []repodb.Package {
	e.t.Helper()
	out := append([]repodb.Package(nil), pkgs...)
	for i := range out {
		out[i].PGPSig = ""
		content := make([]byte, 1000+i)
		rand.Read(content)
		path := filepath.Join(e.dbDir("core"), out[i].Filename)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			e.t.Fatal(err)
		}
		h := sha256.Sum256(content)
		out[i].SHA256Sum = hex.EncodeToString(h[:])
		if sign == nil || sign(i) {
			e.packager.DetachSign(e.t, path)
		}
	}
	return out
}

// Without a database signature (auto), each package's own signature
// releases it; the attack and its variants are refused one by one,
// each with a refusal record, while the genuine packages are signed.
func TestPackageSignaturesRelease(t *testing.T) {
	e := newEnv(t, 0)
	e.unsignedDB = true
	dir := e.dbDir("core")
	os.MkdirAll(dir, 0o755)
	base := repodbtest.Packages(10, repodbtest.Options{Seed: 5})
	pkgs := e.writeRepo(base[:5], nil) // genuine, each with its .sig
	stranger := gpgtest.New(t, "Not a packager <x@example.org>")
	evil := e.writeRepo(base[5:], func(i int) bool { return false })
	// 0: the attack: the sha256 of a file that is not in the
	// repository (nobody signed it).
	os.Remove(filepath.Join(dir, evil[0].Filename))
	evil[0].Filename, evil[0].Name = "evil-1.0-1-x86_64.pkg.tar.zst", "evil"
	evil[0].SHA256Sum = strings.Repeat("e", 64)
	// 1: a file in the repository with no signature.
	// 2: signed by a key that is not the keyring's.
	stranger.DetachSign(t, filepath.Join(dir, evil[2].Filename))
	// 3: a genuine package's signature next to other bytes.
	sig0, _ := os.ReadFile(filepath.Join(dir, pkgs[0].Filename+".sig"))
	os.WriteFile(filepath.Join(dir, evil[3].Filename+".sig"), sig0, 0o644)
	// 4: the database's %PGPSIG% is another package's signature.
	evil[4].PGPSig = base64.StdEncoding.EncodeToString(sig0)
	// And a genuine package whose database entry claims another sha256.
	lying := pkgs[4]
	lying.SHA256Sum = strings.Repeat("a", 64)
	all := append(append(append([]repodb.Package(nil), pkgs[:4]...), lying), evil...)
	e.writeDB("core", "x86_64", all)

	sum := e.run([]string{"core"})
	if sum.Signed != 4 || sum.Refused != 6 || sum.Failed != 6 || sum.Databases[0].ReleaseCheck != "package" {
		t.Fatalf("%+v", sum)
	}
	wantReason := map[string]string{
		evil[0].Filename: "does not exist",
		evil[1].Filename: "no packager signature",
		evil[2].Filename: "not in the keyring",
		evil[3].Filename: "BAD signature",
		evil[4].Filename: "BAD signature",
		lying.Filename:   "the packager signed a file whose sha256 is",
	}
	for _, f := range sum.Failures {
		if f.Stage != StageRelease || !strings.Contains(f.Error, wantReason[f.Filename]) || wantReason[f.Filename] == "" {
			t.Errorf("failure %s: %s: %s", f.Filename, f.Stage, f.Error)
		}
		if _, err := os.Stat(filepath.Join(e.sigDir, f.Filename+".t")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was signed", f.Filename)
		}
	}
	e.checkAll(pkgs[:4])
	refused := map[string]audit.Record{}
	for _, r := range e.readRecords() {
		switch {
		case r.IsRefusal():
			refused[r.Filename] = r
		case r.ReleaseSig != audit.ReleasePackage || r.ReleaseKey != e.packager.Fingerprint:
			t.Errorf("record %s: release %q by %q", r.Filename, r.ReleaseSig, r.ReleaseKey)
		}
	}
	if len(refused) != 6 || refused["evil-1.0-1-x86_64.pkg.tar.zst"].SHA256 != strings.Repeat("e", 64) {
		t.Errorf("refusal records: %+v", refused)
	}
	// The audit's cross-check agrees: the signed entries are released by a
	// packager signature, the refusals are information.
	cr := e.crossCheck()
	if cr.Findings() != 0 || cr.Matched != 4 || len(cr.Refusals) != 6 {
		t.Errorf("cross-check: %d findings, %d matched, %d refusals", cr.Findings(), cr.Matched, len(cr.Refusals))
	}
	// A second run refuses again but records nothing new.
	n := len(e.readRecords())
	if sum := e.run([]string{"core"}); sum.Refused != 6 || sum.AlreadyPublished != 4 || len(e.readRecords()) != n {
		t.Errorf("second run: %+v, %d records (was %d)", sum, len(e.readRecords()), n)
	}
}

// crossCheck runs the audit's cross-check over the log's entries and the
// audit log.
func (e *env) crossCheck() *audit.CrossReport {
	e.t.Helper()
	f, err := os.Open(e.auditF)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	read, err := audit.ReadAll(f)
	if err != nil {
		e.t.Fatal(err)
	}
	var entries []audit.LoggedEntry
	e.log.mu.Lock()
	for i := range e.log.bodies {
		le := e.log.entryLocked(int64(i))
		b, err := rekorv1.DecodeBody(le.Body)
		if err != nil {
			e.t.Fatal(err)
		}
		entries = append(entries, audit.LoggedEntry{UUID: le.UUID, LogIndex: le.LogIndex, IntegratedTime: le.IntegratedTime, Body: b, Indexed: true})
	}
	e.log.mu.Unlock()
	return audit.CrossCheck(audit.CrossCheckInput{Keys: []verify.PublicKey{e.pub}, Entries: entries, Audit: read})
}

// --release-signatures db requires the database's signature; package
// requires each package's even when the database is signed.
func TestReleaseModes(t *testing.T) {
	e := newEnv(t, 3)
	e.unsignedDB = true
	e.writeDB("core", "x86_64", e.pkgs)
	sum := e.run([]string{"core"}, func(o *Options) { o.Release = ReleaseDBSig })
	if sum.Signed != 0 || sum.Failed != 1 || sum.Failures[0].Stage != StageRelease || !strings.Contains(sum.Failures[0].Error, "no database signature") {
		t.Fatalf("db mode, unsigned database: %+v", sum)
	}
	e.unsignedDB = false
	e.writeDB("core", "x86_64", e.pkgs) // signed, but the packages have no signature files
	sum = e.run([]string{"core"}, func(o *Options) { o.Release = ReleasePackageSig })
	if sum.Signed != 0 || sum.Refused != 3 || sum.Databases[0].ReleaseCheck != "package" {
		t.Fatalf("package mode, signed database, unsigned packages: %+v", sum)
	}
	if _, err := New(Options{Key: e.sk, PublicKey: e.pub, Log: e.log, LogKey: e.log.key, SignatureDir: e.sigDir,
		AuditLog: e.auditF, StateDir: e.state}); err == nil || !strings.Contains(err.Error(), "keyring") {
		t.Errorf("New without a keyring: %v", err)
	}
}

// --unsafe-trust-db signs what the database claims, with no release
// signature in the records: the audit flags every such entry.
func TestUnsafeTrustDB(t *testing.T) {
	e := newEnv(t, 5)
	e.unsignedDB = true
	e.writeDB("core", "x86_64", e.pkgs)
	sum := e.run([]string{"core"}, func(o *Options) { o.Release, o.Keyring = ReleaseUnsafeTrustDB, nil })
	if sum.Signed != 5 || sum.Databases[0].ReleaseCheck != "none" || sum.ReleaseMode != ReleaseUnsafeTrustDB {
		t.Fatalf("%+v", sum)
	}
	for _, r := range e.readRecords() {
		if r.HasRelease() {
			t.Errorf("record %s names a release signature", r.Filename)
		}
	}
	if cr := e.crossCheck(); len(cr.NoReleaseSignature) != 5 || cr.Matched != 0 {
		t.Errorf("cross-check: %+v", cr.NoReleaseSignature)
	}
}

// Plain http:// is refused unless --unsafe-trust-db.
func TestPlainHTTPRefused(t *testing.T) {
	e := newEnv(t, 1)
	s := e.signer()
	sum, err := s.Run(context.Background(), Sources("http://127.0.0.1:1/$repo", []string{"core"}, []string{"x86_64"}))
	s.Close()
	if err != nil || sum.Failed != 1 || sum.Failures[0].Stage != StageDB || !strings.Contains(sum.Failures[0].Error, "plain http://") {
		t.Fatalf("%+v, %v", sum, err)
	}
}

// A published package whose audit record is missing (a new audit log) is
// recorded with the release the database's signature gives it.
func TestPublishedGetsReleaseInNewAuditLog(t *testing.T) {
	e := newEnv(t, 3)
	e.run([]string{"core"})
	e.auditF = filepath.Join(e.root, "audit2.jsonl")
	sum := e.run([]string{"core"})
	if sum.AlreadyPublished != 3 || sum.AuditRecords != 3 || sum.Failed != 0 {
		t.Fatalf("%+v", sum)
	}
	for _, r := range e.readRecords() {
		if r.ReleaseSig != audit.ReleaseDB || r.ReleaseKey != e.packager.Fingerprint {
			t.Errorf("record %s: %q %q", r.Filename, r.ReleaseSig, r.ReleaseKey)
		}
	}
}

// A database entry with a control or bidi character in a field the audit
// log records is not signed (the audit log would refuse the record).
func TestUnrecordableEntryRefused(t *testing.T) {
	e := newEnv(t, 3)
	pkgs := append([]repodb.Package(nil), e.pkgs...)
	pkgs[1].Packager = "Mallory \u202eexample.org"
	e.writeDB("core", "x86_64", pkgs)
	sum := e.run([]string{"core"})
	if sum.Signed != 2 || sum.Failed != 1 || sum.Failures[0].Stage != StageRecord || !strings.Contains(sum.Failures[0].Error, "field packager: bidi control U+202E") {
		t.Fatalf("%+v", sum)
	}
}
