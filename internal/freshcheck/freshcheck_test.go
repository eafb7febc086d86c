package freshcheck

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/sigsource"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// operator publishes statements into a transparency directory, signed
// with its key and logged in a fake log that produces real proofs.
type operator struct {
	t   *testing.T
	dir string
	sk  *minisign.PrivateKey
	pub verify.PublicKey
	log *fakelog.Log
	lk  *rekorv1.LogKey
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	_, edsk, _ := ed25519.GenerateKey(rand.Reader)
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	rand.Read(sk.KeyId[:])
	mpk := sk.PublicKey()
	pub, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	fl := fakelog.New(t)
	lk, err := rekorv1.ParseLogKey(fl.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "statements"), 0o755)
	return &operator{t: t, dir: dir, sk: sk, pub: pub, log: fl, lk: lk}
}

// publish signs st under the path of its database (or name, when set),
// logs it unless !logged, and writes it under the hash of file.
func (o *operator) publish(st *freshness.Statement, file freshness.Digest, logged bool, name ...string) []byte {
	o.t.Helper()
	text, err := st.Marshal()
	if err != nil {
		o.t.Fatal(err)
	}
	sha := freshness.DigestOf(text).SHA256
	path := freshness.Path(st.DB.SHA256)
	if len(name) > 0 {
		path = name[0]
	}
	sig, err := o.sk.Sign([]byte(sha), minisign.SignOptions{TrustedComment: path, Hashed: true})
	if err != nil {
		o.t.Fatal(err)
	}
	tb := sig.Encode()
	o.write(path+".t", tb)
	if logged {
		s, _ := verify.ParseSignature(tb)
		e := o.log.Add(rekorv1.CanonicalBody(s, o.pub, []byte(sha)))
		b, err := rekorv1.MarshalBundle(e)
		if err != nil {
			o.t.Fatal(err)
		}
		o.write(path+".t.bundle", b)
	}
	o.write(freshness.Path(file.SHA256), text)
	return text
}

func (o *operator) write(name string, b []byte) {
	o.t.Helper()
	if err := os.WriteFile(filepath.Join(o.dir, name), b, 0o644); err != nil {
		o.t.Fatal(err)
	}
}

func (o *operator) options(acc *freshness.AcceptedSet, now time.Time) Options {
	o.t.Helper()
	src, err := sigsource.New(o.dir, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	v, err := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{o.pub}, Log: o.lk, Offline: true}, src, nil, nil, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	return Options{Verifier: v, Source: src.(sigsource.StatementSource), Architectures: []string{"x86_64"},
		Policy: freshness.Policy{MaxAge: freshness.DefaultMaxAge}, Accepted: acc, Now: now}
}

func dbOf(repo, content string) DB {
	return DB{Repo: repo, Path: "/var/lib/pacman/sync/" + repo + ".db",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
}

func stmt(repo, arch string, db freshness.Digest, counter uint64, issued time.Time) *freshness.Statement {
	return &freshness.Statement{Repository: repo, Architecture: arch, DB: db, Counter: counter, Issued: issued, Interval: 24 * time.Hour}
}

func check1(t *testing.T, o Options, db DB) Verdict {
	t.Helper()
	vs, err := Check(context.Background(), o, []DB{db})
	if err != nil {
		t.Fatal(err)
	}
	return vs[0]
}

func TestCheck(t *testing.T) {
	op := newOperator(t)
	core1, core2 := freshness.DigestOf([]byte("core v1")), freshness.DigestOf([]byte("core v2"))
	files2 := freshness.DigestOf([]byte("core.files v2"))
	op.publish(stmt("core", "x86_64", core1, 1, t0), core1, true)
	s2 := stmt("core", "x86_64", core2, 2, t0.Add(time.Hour))
	s2.Files = files2
	op.publish(s2, core2, true)
	op.publish(s2, files2, true) // the .files copy (same .t and bundle)
	now := t0.Add(2 * time.Hour)

	// A fresh database, no state: accepted.
	v := check1(t, op.options(nil, now), dbOf("core", "core v2"))
	if v.Outcome != OK || v.Accepted == nil || v.Accepted.Counter != 2 || v.Result == nil || v.Result.Entry == nil {
		t.Fatalf("%+v", v)
	}
	// The .files database, through the copy named by its hash.
	f := dbOf("core", "core.files v2")
	f.Files = true
	if v := check1(t, op.options(nil, now), f); v.Outcome != OK || v.Statement.Counter != 2 {
		t.Fatalf(".files: %+v", v)
	}

	// Rollback: core v1 after statement 2 was accepted.
	acc := freshness.NewAcceptedSet()
	acc.Put(v.Accepted)
	v = check1(t, op.options(acc, now), dbOf("core", "core v1"))
	var rb *freshness.RollbackError
	if v.Outcome != Refused || !errors.As(v.Err, &rb) {
		t.Fatalf("rollback: %+v", v)
	}
	// Stale: 8 days later, no state.
	v = check1(t, op.options(nil, t0.Add(9*24*time.Hour)), dbOf("core", "core v2"))
	var stale *freshness.StaleError
	if v.Outcome != Refused || !errors.As(v.Err, &stale) || !strings.Contains(v.Err.Error(), "issued 8d 23h ago") {
		t.Fatalf("stale: %+v", v)
	}
	// Another architecture's client.
	o := op.options(nil, now)
	o.Architectures = []string{"aarch64"}
	var mm *freshness.MismatchError
	if v := check1(t, o, dbOf("core", "core v2")); v.Outcome != Refused || !errors.As(v.Err, &mm) || mm.Field != "architecture" {
		t.Fatalf("cross-architecture: %+v", v)
	}
	// core's database served as extra's (the statement names core).
	if v := check1(t, op.options(nil, now), dbOf("extra", "core v2")); v.Outcome != Refused || !errors.As(v.Err, &mm) || mm.Field != "repository" {
		t.Fatalf("cross-repository: %+v", v)
	}
}

func TestCheckMissing(t *testing.T) {
	op := newOperator(t)
	core1 := freshness.DigestOf([]byte("core v1"))
	op.publish(stmt("core", "x86_64", core1, 1, t0), core1, true)
	o := op.options(nil, t0)
	if v := check1(t, o, dbOf("extra", "extra v1")); v.Outcome != Unstated || !strings.Contains(v.Err.Error(), "no repository statement") {
		t.Fatalf("optional, never seen: %+v", v)
	}
	acc := freshness.NewAcceptedSet()
	acc.Put(&freshness.Accepted{Repository: "extra", Architecture: "x86_64", Counter: 4, Issued: t0, DBSHA256: core1.SHA256})
	o.Accepted = acc
	var me *MissingError
	if v := check1(t, o, dbOf("extra", "extra v1")); v.Outcome != Refused || !errors.As(v.Err, &me) || me.Prev.Counter != 4 {
		t.Fatalf("optional, seen before: %+v", v)
	}
	o = op.options(nil, t0)
	o.Modes = map[string]freshness.Mode{"extra": freshness.ModeRequired, "community": freshness.ModeOff}
	if v := check1(t, o, dbOf("extra", "extra v1")); v.Outcome != Refused || !errors.As(v.Err, &me) || !me.Required {
		t.Fatalf("required: %+v", v)
	}
	if v := check1(t, o, dbOf("community", "whatever")); v.Outcome != Off {
		t.Fatalf("off: %+v", v)
	}
}

func TestCheckForgedAndUnlogged(t *testing.T) {
	op := newOperator(t)
	core1, core2, core3 := freshness.DigestOf([]byte("core v1")), freshness.DigestOf([]byte("core v2")), freshness.DigestOf([]byte("core v3"))
	// Forged: a statement signed by another key.
	other := newOperator(t)
	other.dir = op.dir
	other.publish(stmt("core", "x86_64", core1, 9, t0), core1, true)
	// Unlogged: signed by the key, never logged (no bundle, offline).
	op.publish(stmt("core", "x86_64", core2, 10, t0), core2, false)
	// Signed for another database: a genuine statement of core v1 copied
	// to the name of core v3's hash.
	op.publish(stmt("core", "x86_64", core1, 11, t0), core3, true, freshness.Path(core3.SHA256))
	var ue *UnverifiedError
	vs, err := Check(context.Background(), op.options(nil, t0), []DB{dbOf("core", "core v1"), dbOf("core", "core v2"), dbOf("core", "core v3")})
	if err != nil {
		t.Fatal(err)
	}
	if vs[0].Outcome != Refused || !errors.As(vs[0].Err, &ue) || ue.Result.Status != verify.StatusWrongKey {
		t.Errorf("forged: %+v", vs[0])
	}
	if vs[1].Outcome != Refused || !errors.As(vs[1].Err, &ue) || ue.Result.Status != verify.StatusMissingBundle {
		t.Errorf("unlogged: %+v", vs[1])
	}
	var mm *freshness.MismatchError
	if vs[2].Outcome != Refused || !errors.As(vs[2].Err, &mm) || mm.Field != "db" {
		t.Errorf("another database's: %+v", vs[2])
	}
	// A statement at the right name but with the .t of another statement.
	text := op.publish(stmt("core", "x86_64", core2, 12, t0), core2, true)
	op.write(freshness.Path(core2.SHA256), bytes.Replace(text, []byte("counter 12"), []byte("counter 99"), 1))
	if v := check1(t, op.options(nil, t0), dbOf("core", "core v2")); v.Outcome != Refused || !errors.As(v.Err, &ue) || ue.Result.Status != verify.StatusBadSignature {
		t.Errorf("edited statement: %+v", v)
	}
}

func TestCommit(t *testing.T) {
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := func(c uint64) Verdict {
		return Verdict{Outcome: OK, Accepted: &freshness.Accepted{Repository: "core", Architecture: "x86_64", Counter: c, Issued: t0.Add(time.Duration(c) * time.Hour), DBSHA256: strings.Repeat("ab", 32)}}
	}
	if n, err := Commit(context.Background(), dir, false, []Verdict{a(5), {Outcome: Refused}}); n != 1 || err != nil {
		t.Fatalf("commit: %d %v", n, err)
	}
	if n, err := Commit(context.Background(), dir, false, []Verdict{a(3)}); n != 0 || err != nil {
		t.Fatalf("an older record: %d %v", n, err)
	}
	set, err := Load(dir)
	if err != nil || set.Get("core", "x86_64").Counter != 5 {
		t.Fatalf("%v %+v", err, set)
	}
	os.WriteFile(dir.Path(StoreName), []byte("garbage\n"), 0o600)
	var ce *state.CorruptError
	if _, err := Load(dir); !errors.As(err, &ce) {
		t.Fatalf("a corrupt store: %v", err)
	}
}
