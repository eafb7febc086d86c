package signer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/gpgtest"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// testKey returns a deterministic, unencrypted minisign key pair.
func testKey(t testing.TB, seed byte) (*minisign.PrivateKey, verify.PublicKey) {
	t.Helper()
	s := bytes.Repeat([]byte{seed}, 32)
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], ed25519.NewKeyFromSeed(s))
	sum := sha256.Sum256([]byte{'k', seed})
	copy(sk.KeyId[:], sum[:8])
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return sk, pk
}

// env is one signing setup: a repository with a database signed by its
// packager (a real GnuPG key; the operator's keyring trusts it), a log,
// dirs.
type env struct {
	t        *testing.T
	root     string
	repoURL  string
	sigDir   string
	state    string
	auditF   string
	log      *memLog
	sk       *minisign.PrivateKey
	pub      verify.PublicKey
	pkgs     []repodb.Package
	packager *gpgtest.Home
	keyring  *Keyring
	// unsignedDB: writeDB writes no <repo>.db.sig.
	unsignedDB bool
}

func newEnv(t *testing.T, n int) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, root: root, repoURL: filepath.Join(root, "repo", "$repo", "os", "$arch"),
		sigDir: filepath.Join(root, "sig"), state: filepath.Join(root, "state"), auditF: filepath.Join(root, "audit.jsonl"),
		log: newMemLog(t)}
	e.sk, e.pub = testKey(t, 1)
	if err := os.MkdirAll(e.sigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.packager = packagerHome(t)
	k, err := OpenKeyring(e.packager.Keyring(t), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	e.keyring = k
	e.pkgs = repodbtest.Packages(n, repodbtest.Options{Seed: 7})
	e.writeDB("core", "x86_64", e.pkgs)
	return e
}

func (e *env) writeDB(repo, arch string, pkgs []repodb.Package) {
	e.t.Helper()
	dir := filepath.Join(e.root, "repo", repo, "os", arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	var b bytes.Buffer
	if err := repodbtest.Write(&b, pkgs, repodbtest.Options{}); err != nil {
		e.t.Fatal(err)
	}
	db := filepath.Join(dir, repo+".db")
	if err := os.WriteFile(db, b.Bytes(), 0o644); err != nil {
		e.t.Fatal(err)
	}
	os.Remove(db + ".sig")
	if !e.unsignedDB {
		e.packager.DetachSign(e.t, db) // what repo-add --sign does
	}
}

// options are the signer options of the env (mod applied by signer).
func (e *env) options() Options {
	return Options{Key: e.sk, PublicKey: e.pub, Log: e.log, LogKey: e.log.key, LogURL: "mem://log",
		SignatureDir: e.sigDir, AuditLog: e.auditF, StateDir: e.state, Jobs: 4, Version: "test", Keyring: e.keyring}
}

func (e *env) signer(mod ...func(*Options)) *Signer {
	e.t.Helper()
	o := e.options()
	for _, m := range mod {
		m(&o)
	}
	s, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) run(repos []string, mod ...func(*Options)) *Summary {
	e.t.Helper()
	s := e.signer(mod...)
	sum, err := s.Run(context.Background(), Sources(e.repoURL, repos, []string{"x86_64"}))
	if cerr := s.Close(); cerr != nil {
		e.t.Fatal(cerr)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return sum
}

// checkAll asserts the invariant of a finished run: every package has a .t
// and bundle that verify offline, exactly one audit record per log entry
// (refusal records aside),
// the chain verifies, the log holds exactly one entry per package, no
// intent is left.
func (e *env) checkAll(pkgs []repodb.Package) {
	e.t.Helper()
	recs := map[string]audit.Record{}
	f, err := os.Open(e.auditF)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := audit.Scan(f, func(_ int, r audit.Record) error {
		if r.IsRefusal() {
			return nil // refusal records have no entry
		}
		if _, dup := recs[r.UUID]; dup {
			e.t.Errorf("two audit records for entry %s (%s)", r.UUID, r.Filename)
		}
		recs[r.UUID] = r
		return nil
	}); err != nil {
		e.t.Fatalf("audit chain: %v", err)
	}
	for _, p := range pkgs {
		t, err := os.ReadFile(filepath.Join(e.sigDir, p.Filename+verify.SignatureSuffix))
		if err != nil {
			e.t.Errorf("%s: %v", p.Filename, err)
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.sigDir, p.Filename+verify.BundleSuffix))
		if err != nil {
			e.t.Errorf("%s: %v", p.Filename, err)
			continue
		}
		ent, err := rekorv1.ParseBundle(b)
		if err != nil {
			e.t.Errorf("%s: %v", p.Filename, err)
			continue
		}
		if _, err := rekorv1.VerifyEntry(ent, t, []verify.PublicKey{e.pub}, p.SHA256Sum, p.Filename, e.log.key); err != nil {
			e.t.Errorf("%s: bundle does not verify: %v", p.Filename, err)
		}
		r, ok := recs[ent.UUID]
		switch {
		case !ok:
			e.t.Errorf("%s: no audit record for entry %s", p.Filename, ent.UUID)
		case r.Filename != p.Filename || r.SHA256 != p.SHA256Sum || r.LogIndex != ent.LogIndex || r.Name != p.Name ||
			r.Version != p.Version || r.BuildDate != p.BuildDate || r.KeyID != e.pub.KeyID() || r.DBSHA256 == "":
			e.t.Errorf("%s: audit record %+v does not describe entry %d", p.Filename, r, ent.LogIndex)
		}
	}
	if len(recs) != e.log.size() || e.log.size() != len(pkgs) {
		e.t.Errorf("%d audit records, %d log entries, %d packages", len(recs), e.log.size(), len(pkgs))
	}
	left, err := readJournal(filepath.Join(e.state, stateSubdir, journalName))
	if err != nil {
		e.t.Fatal(err)
	}
	if len(left) != 0 {
		e.t.Errorf("%d intents left", len(left))
	}
}

func TestSignEverythingThenNothing(t *testing.T) {
	e := newEnv(t, 60)
	sum := e.run([]string{"core"})
	if sum.Failed != 0 || sum.Signed != 60 || sum.Packages != 60 || sum.AuditRecords != 60 {
		t.Fatalf("first run: %+v", sum)
	}
	e.checkAll(e.pkgs)
	if len(sum.Databases) != 1 || sum.Databases[0].Packages != 60 || len(sum.Databases[0].SHA256) != 64 {
		t.Errorf("databases: %+v", sum.Databases)
	}

	// The .t is byte-compatible: minisign's own verifier accepts it over
	// the hex message with the filename as trusted comment.
	p := e.pkgs[0]
	tb, _ := os.ReadFile(filepath.Join(e.sigDir, p.Filename+".t"))
	sig, err := minisign.DecodeSignature(string(tb))
	if err != nil {
		t.Fatal(err)
	}
	mpk, _ := minisign.NewPublicKey(e.pub.Base64())
	if ok, err := mpk.Verify([]byte(p.SHA256Sum), sig); !ok || err != nil || sig.TrustedComment != "trusted comment: "+p.Filename {
		t.Errorf("go-minisign rejects the .t: %v %q", err, sig.TrustedComment)
	}

	uploads := e.log.uploads
	sum = e.run([]string{"core"})
	if sum.Failed != 0 || sum.AlreadyPublished != 60 || sum.Signed != 0 || sum.AuditRecords != 0 {
		t.Fatalf("second run: %+v", sum)
	}
	if e.log.uploads != uploads || e.log.conflicts != 0 || e.log.lookups != 0 {
		t.Errorf("second run talked to the log: %d uploads, %d conflicts, %d lookups", e.log.uploads-uploads, e.log.conflicts, e.log.lookups)
	}
	e.checkAll(e.pkgs)
}

func TestLogDownMidRunThenRerun(t *testing.T) {
	e := newEnv(t, 40)
	e.log.failAfter = 15
	sum := e.run([]string{"core"})
	if sum.Signed != 15 || sum.Failed != 25 {
		t.Fatalf("run with the log going down: %+v", sum)
	}
	for _, f := range sum.Failures {
		if f.Stage != StageUpload || !errors.Is(f.Err, errLogDown) || f.Filename == "" {
			t.Errorf("failure %+v", f)
		}
	}
	// The log is back.
	e.log.failAfter = 0
	sum = e.run([]string{"core"})
	if sum.Failed != 0 || sum.Recovered != 25 || sum.AlreadyPublished != 40 || sum.Signed != 0 {
		t.Fatalf("re-run: %+v", sum)
	}
	e.checkAll(e.pkgs)
}

// The log accepted the entry but the signer never heard back (connection
// lost, or killed): the re-run finds it by leaf hash and does not log it
// twice.
func TestLostUploadAnswerIsFoundNotDuplicated(t *testing.T) {
	e := newEnv(t, 20)
	e.log.afterAdd = func(n int) error {
		if n%4 == 0 {
			return errors.New("connection reset by peer")
		}
		return nil
	}
	sum := e.run([]string{"core"})
	if sum.Failed != 5 || e.log.size() != 20 {
		t.Fatalf("%+v, log size %d", sum, e.log.size())
	}
	e.log.afterAdd = nil
	uploads := e.log.uploads
	sum = e.run([]string{"core"})
	if sum.Failed != 0 || sum.Recovered != 5 {
		t.Fatalf("re-run: %+v", sum)
	}
	if e.log.uploads != uploads {
		t.Errorf("re-run uploaded %d new entries, want 0", e.log.uploads-uploads)
	}
	e.checkAll(e.pkgs)
}

func TestReadOnlySignatureDirThenRerun(t *testing.T) {
	// A read-only directory does not stop root (tests may run as root):
	// a file where the directory should be fails every write for everyone.
	e := newEnv(t, 12)
	realDir := e.sigDir
	ro := filepath.Join(e.root, "ro")
	if err := os.WriteFile(ro, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	s := e.signer()
	s.o.SignatureDir = ro // New checked it; make every write fail now
	s.sigDir.Close()
	var err error
	if s.sigDir, err = durable.OpenDir(ro); err != nil { // a file: every write into it fails
		t.Fatal(err)
	}
	sum, err := s.Run(context.Background(), Sources(e.repoURL, []string{"core"}, []string{"x86_64"}))
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 12 || sum.AuditRecords != 12 {
		t.Fatalf("run into an unwritable dir: %+v", sum)
	}
	for _, f := range sum.Failures {
		if f.Stage != StagePublish {
			t.Errorf("failure %+v, want publish", f)
		}
	}
	e.sigDir = realDir
	uploads := e.log.uploads
	sum = e.run([]string{"core"})
	if sum.Failed != 0 || sum.Recovered != 12 || sum.AuditRecords != 0 || e.log.uploads != uploads {
		t.Fatalf("re-run: %+v (uploads %d)", sum, e.log.uploads-uploads)
	}
	e.checkAll(e.pkgs)
}

func TestLyingLogPublishesNothing(t *testing.T) {
	e := newEnv(t, 5)
	e.log.lie = func(le *rekorv1.Entry) {
		le.Proof.RootHash[0] ^= 1
	}
	sum := e.run([]string{"core"})
	if sum.Failed != 5 || sum.AuditRecords != 0 {
		t.Fatalf("%+v", sum)
	}
	for _, f := range sum.Failures {
		if f.Stage != StageVerify {
			t.Errorf("failure %+v, want verify", f)
		}
	}
	names, _ := os.ReadDir(e.sigDir)
	if len(names) != 0 {
		t.Errorf("published %d files from a lying log", len(names))
	}
}

func TestVerifyDownloads(t *testing.T) {
	e := newEnv(t, 0)
	dir := filepath.Join(e.root, "repo", "core", "os", "x86_64")
	var pkgs []repodb.Package
	for i, p := range repodbtest.Packages(6, repodbtest.Options{Seed: 3}) {
		content := []byte(fmt.Sprintf("package %d", i))
		sum := sha256.Sum256(content)
		p.SHA256Sum = hex.EncodeToString(sum[:])
		if i == 2 {
			content = append(content, '!') // the mirror serves other bytes than the db says
		}
		if err := os.WriteFile(filepath.Join(dir, p.Filename), content, 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	e.writeDB("core", "x86_64", pkgs)
	sum := e.run([]string{"core"}, func(o *Options) { o.VerifyDownloads = true })
	if sum.Signed != 5 || sum.Failed != 1 {
		t.Fatalf("%+v", sum)
	}
	f := sum.Failures[0]
	var hm *verify.HashMismatchError
	if f.Filename != pkgs[2].Filename || f.Stage != StageDownload || !errors.As(f.Err, &hm) || hm.Expected != pkgs[2].SHA256Sum {
		t.Errorf("failure %+v", f)
	}
	if _, err := os.Stat(filepath.Join(e.sigDir, pkgs[2].Filename+".t")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mismatching package was signed")
	}
}

func TestTwoReposSameFilenameDifferentHash(t *testing.T) {
	e := newEnv(t, 4)
	other := append([]repodb.Package(nil), e.pkgs...)
	other[1].SHA256Sum = strings.Repeat("0", 64)
	e.writeDB("extra", "x86_64", other)
	sum := e.run([]string{"core", "extra"})
	if sum.Packages != 4 || sum.Signed != 4 || sum.Failed != 1 || sum.Failures[0].Stage != StageConflict || sum.Failures[0].Repo != "extra" {
		t.Fatalf("%+v", sum)
	}
}

func TestMissingDBIsAFailureNotAnAbort(t *testing.T) {
	e := newEnv(t, 3)
	sum := e.run([]string{"nosuch", "core"})
	if sum.Signed != 3 || sum.Failed != 1 || sum.Failures[0].Stage != StageDB || !errors.Is(sum.Failures[0].Err, os.ErrNotExist) {
		t.Fatalf("%+v", sum)
	}
}

func TestAuditTailRemovedIsRefused(t *testing.T) {
	e := newEnv(t, 5)
	e.run([]string{"core"})
	b, err := os.ReadFile(e.auditF)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndexByte(b[:len(b)-1], '\n')
	if err := os.WriteFile(e.auditF, b[:i+1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = New(e.options())
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Kind != audit.KindHeadMismatch {
		t.Fatalf("New after the last record was removed = %v, want head mismatch", err)
	}
	// An edited last record too.
	last := bytes.LastIndex(b[:len(b)-1], []byte("\n"))
	edited := append(b[:last+1:last+1], bytes.Replace(b[last+1:], []byte(`"arch":"x86_64"`), []byte(`"arch":"aarch64"`), 1)...)
	if err := os.WriteFile(e.auditF, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = New(e.options())
	if !errors.As(err, &ce) || ce.Kind != audit.KindHeadMismatch {
		t.Fatalf("New after the last record was edited = %v, want head mismatch", err)
	}
}

func TestConcurrentSignersExclude(t *testing.T) {
	e := newEnv(t, 1)
	s := e.signer()
	defer s.Close()
	_, err := New(e.options())
	if !errors.Is(err, ErrStateLocked) {
		t.Fatalf("second signer: %v, want ErrStateLocked", err)
	}
}

func TestWrongKeyPairRefused(t *testing.T) {
	e := newEnv(t, 1)
	_, otherPub := testKey(t, 2)
	o := e.options()
	o.PublicKey = otherPub
	_, err := New(o)
	var km *KeyMismatchError
	if !errors.As(err, &km) || km.PublicKeyID != otherPub.KeyID() {
		t.Fatalf("New with another public key = %v", err)
	}
}

func TestExpandRepoURL(t *testing.T) {
	got := Sources("https://m.example/$repo/os/$arch", []string{"core", "extra"}, []string{"x86_64"})
	if len(got) != 2 || got[1].DBURL() != "https://m.example/extra/os/x86_64/extra.db" || got[0].PackageURL("a.pkg") != "https://m.example/core/os/x86_64/a.pkg" {
		t.Fatalf("%+v", got)
	}
	// A package file name is one path element of a URL, escaped.
	if got := Sources("https://m.example/$repo", []string{"core"}, []string{"x"})[0].PackageURL("a#1?.pkg"); got != "https://m.example/core/a%231%3F.pkg" {
		t.Errorf("PackageURL: %s", got)
	}
}

// The key is decrypted only when a package needs a new signature: a run
// with nothing new never calls LoadKey; a failing LoadKey stops the run
// before anything is uploaded.
func TestLazyKey(t *testing.T) {
	e := newEnv(t, 5)
	calls := 0
	lazy := func(o *Options) {
		o.Key = nil
		o.LoadKey = func() (*minisign.PrivateKey, error) {
			calls++
			sk, _ := testKey(t, 1) // a fresh copy: Close wipes it
			return sk, nil
		}
	}
	if sum := e.run([]string{"core"}, lazy); sum.Signed != 5 || calls != 1 {
		t.Fatalf("first run: %+v, LoadKey called %d times", sum, calls)
	}
	if sum := e.run([]string{"core"}, lazy); sum.AlreadyPublished != 5 || calls != 1 {
		t.Fatalf("second run: %+v, LoadKey called %d times in all", sum, calls)
	}

	e2 := newEnv(t, 3)
	wrong := errors.New("wrong password (test)")
	s := e2.signer(func(o *Options) {
		o.Key, o.LoadKey = nil, func() (*minisign.PrivateKey, error) { return nil, wrong }
	})
	_, err := s.Run(context.Background(), Sources(e2.repoURL, []string{"core"}, []string{"x86_64"}))
	s.Close()
	if !errors.Is(err, wrong) || e2.log.uploads != 0 {
		t.Fatalf("Run with a failing LoadKey = %v, %d uploads", err, e2.log.uploads)
	}
	_, other := testKey(t, 9)
	s = e2.signer(func(o *Options) {
		o.Key, o.PublicKey = nil, other
		o.LoadKey = func() (*minisign.PrivateKey, error) { sk, _ := testKey(t, 1); return sk, nil }
	})
	_, err = s.Run(context.Background(), Sources(e2.repoURL, []string{"core"}, []string{"x86_64"}))
	s.Close()
	var km *KeyMismatchError
	if !errors.As(err, &km) || e2.log.uploads != 0 {
		t.Fatalf("Run with a key of another pair = %v, %d uploads", err, e2.log.uploads)
	}
}
