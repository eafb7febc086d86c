package e2e

// Repository statements (docs/STATEMENTS.md) through the real pacman 6.0.2:
// the hook and fetch (XferCommand) refuse a frozen mirror (a database
// whose statement is older than max-db-age), a rolled-back one (an older
// database, with its genuine older statement, after a newer one was
// accepted) and the issue's `pacman -Syyuu` downgrade; a fresh database
// installs; a repository without statements warns and installs, until a
// statement was accepted for it. Statements are signed with the world's
// transparency key exactly as `bintrans sign` signs them (message: the hex
// sha256 of the statement file; trusted comment: its path) and logged in
// the real Rekor, with a proof bundle.

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// machineArch is pacman's "Architecture = auto" on this machine.
func machineArch() string {
	switch runtime.GOARCH {
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	}
	return "x86_64"
}

// state publishes the statement for the database the mirror serves now:
// counter, issued, signed with the world's key, logged, with its bundle,
// under <sigs>/statements/<db sha256>.stmt.
func (w *world) statement(t *testing.T, counter uint64, issued time.Time) *freshness.Statement {
	t.Helper()
	db, err := os.ReadFile(w.s.RepoDB("core"))
	if err != nil {
		t.Fatal(err)
	}
	st := &freshness.Statement{Repository: "core", Architecture: machineArch(), DB: freshness.DigestOf(db),
		Counter: counter, Issued: issued.UTC().Truncate(time.Second), Interval: 24 * time.Hour}
	w.publishStatement(t, st)
	return st
}

// publishStatement signs st with the world's key, logs it and publishes
// it with its bundle.
func (w *world) publishStatement(t *testing.T, st *freshness.Statement) {
	t.Helper()
	w.publishStatementWith(t, st, w.sk, true)
}

// publishStatementWith signs st with sk and publishes it, logged (with its
// bundle) or not (the .t alone).
func (w *world) publishStatementWith(t *testing.T, st *freshness.Statement, sk *minisign.PrivateKey, logged bool) {
	t.Helper()
	text, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := freshness.Path(st.DB.SHA256)
	sha := freshness.DigestOf(text).SHA256
	sig, err := sk.Sign([]byte(sha), minisign.SignOptions{TrustedComment: path, Hashed: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(w.sigsDir, freshness.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(w.sigsDir, path+verify.BundleSuffix))
	if logged {
		pub := sk.PublicKey()
		pubFile := []byte("untrusted comment: minisign public key\n" + hexToB64(pub) + "\n")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e, err := w.log.Upload(ctx, sig.Encode(), pubFile, []byte(sha))
		if err != nil {
			t.Fatalf("upload %s: %v", path, err)
		}
		if e.Proof == nil {
			e = w.waitForProof(t, e.UUID)
		}
		bundle, err := rekorv1.MarshalBundle(e)
		if err != nil {
			t.Fatal(err)
		}
		// As sign publishes: bundle and .t first, the statement last.
		w.publish(t, path+verify.BundleSuffix, bundle)
	}
	w.publish(t, path+verify.SignatureSuffix, sig.Encode())
	w.publish(t, path, text)
}

// release builds a new version of a package into the repository, signs
// and logs it: the operator publishing an update.
func (w *world) release(t *testing.T, name, version string) pkg {
	t.Helper()
	path := testenv.BuildPackage(t, w.s.RepoDir("core"), testenv.Pkg{Name: name, Version: version, Size: 3000,
		Files: map[string]string{"usr/share/doc/" + name + "/README": "package " + name + " " + version + "\n"}})
	p := pkg{name: name, version: version, filename: filepath.Base(path), path: path, sha256: fileSHA256(t, path)}
	testenv.RepoAdd(t, w.s.RepoDB("core"), path)
	w.sign(t, p, true)
	return p
}

// serveDB makes the mirror serve db as the repository's database.
func (w *world) serveDB(t *testing.T, db []byte) {
	t.Helper()
	if err := os.WriteFile(w.s.RepoDB("core"), db, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requireDBRefused: the transaction was aborted by the hook because of the
// sync database, naming the repository and the reason.
func requireDBRefused(t *testing.T, res testenv.PacmanResult, want ...string) {
	t.Helper()
	out := res.Stdout + res.Stderr
	t.Logf("pacman's output:\n%s", out)
	if res.Code == 0 || !strings.Contains(res.Stderr, "failed to run transaction hooks") {
		t.Fatalf("transaction not aborted by the hook:\n%s", res)
	}
	if !lineWith(out, append([]string{"bintrans: REFUSED [core]"}, want...)...) {
		t.Errorf("no line refusing [core] with %q", want)
	}
	if !lineWith(out, "sync database(s) refused: transaction aborted") {
		t.Errorf("no summary line")
	}
}

// (1) A fresh database with its statement installs, silently; the accepted
// statement is kept in the state directory.
func TestStatementFreshDBInstalls(t *testing.T) {
	w := newWorld(t, 3)
	w.statement(t, 1, time.Now())
	res, got := w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
	if strings.Contains(res.Stderr, "statement") {
		t.Errorf("a fresh database should pass silently:\n%s", res)
	}
	b, err := os.ReadFile(filepath.Join(w.s.Root, "var/lib/bintrans/statements.jsonl"))
	if err != nil || !strings.Contains(string(b), `"counter":1`) {
		entries, _ := os.ReadDir(filepath.Join(w.s.Root, "var/lib/bintrans"))
		t.Errorf("the accepted statement was not kept: %v %q %v", err, b, entries)
	}
}

// (4) A frozen mirror: a new client, no state, and a database whose
// genuine, logged statement was issued 9 days ago: refused as stale with
// its age; nothing installed. --max-db-age 0 lets it through, loudly.
func TestStatementFrozenMirrorRefused(t *testing.T) {
	w := newWorld(t, 2)
	w.statement(t, 7, time.Now().Add(-9*24*time.Hour-3*time.Hour))
	res, got := w.install(t, w.names()...)
	requireDBRefused(t, res, "STALE: the statement for core/"+machineArch()+" (counter 7) was issued 9d 3h ago", "at most 7d 0h is accepted")
	if len(got) != 0 {
		t.Errorf("installed %v from a frozen mirror", got)
	}
	if !strings.Contains(res.Stdout+res.Stderr, "hint: the mirror serves a database that is no longer current") {
		t.Errorf("no hint:\n%s", res)
	}

	w.set(t, "max-db-age", "0")
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
	if !strings.Contains(res.Stdout+res.Stderr, "WARNING: max-db-age is 0") {
		t.Errorf("max-db-age 0 did not warn:\n%s", res)
	}
}

// (2), (3) and the downgrade: the client installs pkg00 1.0-1,
// the operator releases 2.0-1 (statement 2) and the client updates; then
// a mirror serves the old database with its genuine old statement:
// `pacman -Syyuu` would downgrade to the logged, older pkg00. Refused as a
// rollback; pkg00 stays 2.0-1. The same mirror refused by fetch
// (XferCommand): pacman keeps its current database (-Syy: none).
func TestStatementRollbackDowngradeRefused(t *testing.T) {
	w := newWorld(t, 2)
	w.statement(t, 1, time.Now())
	oldDB := readFile(t, w.s.RepoDB("core"))
	res, got := w.install(t, w.names()...)
	requireInstalled(t, w, res, got)

	fix := w.release(t, "pkg00", "2.0-1")
	w.statement(t, 2, time.Now())
	newDB := readFile(t, w.s.RepoDB("core"))
	res = w.s.Pacman(t, nil, "-Syyu")
	if got := w.s.Installed(t); res.Code != 0 || got["pkg00"] != fix.version {
		t.Fatalf("update to %s: %v\n%s", fix.version, got, res)
	}

	// The mirror rolls back: the old database, whose statement (1) is
	// genuine, logged and recent.
	w.serveDB(t, oldDB)
	res = w.s.Pacman(t, nil, "-Syyuu")
	requireDBRefused(t, res, "ROLLBACK: [core]", "accepted statement 2", "has statement 1")
	if got := w.s.Installed(t); got["pkg00"] != fix.version {
		t.Errorf("pkg00 %q after the refused downgrade, want %s", got["pkg00"], fix.version)
	}
	if strings.Contains(res.Stdout, "downgrading pkg00") && !strings.Contains(res.Stderr, "failed to run transaction hooks") {
		t.Errorf("downgraded:\n%s", res)
	}

	// Fetch as XferCommand refuses the old database before pacman sees
	// it: pacman keeps the database it has (which the hook accepted).
	// Fetch's own state learns statement 2 first, from the current db.
	os.Remove(filepath.Join(w.s.HookDir, "bintrans.hook"))
	fw := &fetchWorld{world: w, bin: bintransBinary(t), stateDir: filepath.Join(w.s.Dir, "fetch-state")}
	fw.emptyConf = filepath.Join(w.s.Dir, "empty.conf")
	fw.logKeyPath = filepath.Join(w.s.Dir, "rekor.pem")
	os.WriteFile(fw.emptyConf, nil, 0o644)
	os.WriteFile(fw.logKeyPath, w.logKey, 0o644)
	fw.setXfer(t, w.sigsURL, w.logURL, "--pacman-conf", w.s.Conf)
	w.serveDB(t, newDB)
	if res := w.s.Pacman(t, nil, "-Syy"); res.Code != 0 || !strings.Contains(res.Stderr, "statement 2 for core/") {
		t.Fatalf("fetch of the current database: %s", res)
	}
	held := readFile(t, filepath.Join(w.s.DBPath, "sync", "core.db"))
	w.serveDB(t, oldDB)
	res = w.s.Pacman(t, nil, "-Syuu")
	t.Logf("pacman with fetch:\n%s", res)
	if res.Code == 0 || !lineWith(res.Stderr, "bintrans: REFUSED [core] core.db", "ROLLBACK") ||
		!lineWith(res.Stderr, "1 sync database(s) refused: not given to pacman") {
		t.Fatalf("fetch did not refuse the rolled-back database:\n%s", res)
	}
	if now := readFile(t, filepath.Join(w.s.DBPath, "sync", "core.db")); string(now) != string(held) {
		t.Error("pacman's sync database changed after fetch refused the download")
	}
	// -Syy: pacman deletes its database before it runs XferCommand
	// (measured, pacman 6.0.2); the refusal leaves it none, and nothing
	// can be installed from the repository until a mirror serves a good
	// one: closed, not downgraded.
	res = w.s.Pacman(t, nil, "-Syyuu")
	if res.Code == 0 || !lineWith(res.Stderr, "bintrans: REFUSED [core] core.db", "ROLLBACK") {
		t.Fatalf("-Syyuu: fetch did not refuse the rolled-back database:\n%s", res)
	}
	if got := w.s.Installed(t); got["pkg00"] != fix.version {
		t.Errorf("pkg00 %q after the refused download, want %s", got["pkg00"], fix.version)
	}
}

// (6) A repository that never had statements: a warning, and it installs.
// Once a statement was accepted for it, a database without one is refused
// (no silent downgrade of protection); statements = off lets it through
// with a warning.
func TestStatementUnstatedRepository(t *testing.T) {
	w := newWorld(t, 1)
	res, got := w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
	if !lineWith(res.Stdout, "bintrans: warning: [core] has no repository statement", "a frozen or rolled-back mirror of it cannot be detected") {
		t.Errorf("no warning for a repository without statements:\n%s", res)
	}

	w.statement(t, 1, time.Now())
	w.release(t, "pkg01", "1.0-1")
	w.statement(t, 2, time.Now())
	res = w.s.Sync(t, nil, "pkg01")
	if res.Code != 0 {
		t.Fatalf("install with statement 2: %s", res)
	}

	// The operator's statements vanish from this mirror's database.
	w.release(t, "pkg02", "1.0-1")
	res = w.s.Sync(t, nil, "pkg02")
	requireDBRefused(t, res, "NO STATEMENT", "this client accepted its statement 2", "a downgrade of protection")
	if _, ok := w.s.Installed(t)["pkg02"]; ok {
		t.Error("pkg02 installed from a database without a statement")
	}

	w.set(t, "repo-statements", "core=off")
	res = w.s.Sync(t, nil, "pkg02")
	if res.Code != 0 || !lineWith(res.Stdout, "bintrans: warning: [core]", "statements = off") {
		t.Errorf("statements = off: %s", res)
	}
}

// The statement must be for the client's architecture: a genuine, logged
// statement of the same database bytes for another architecture is
// refused as such.
func TestStatementCrossArchitectureRefused(t *testing.T) {
	w := newWorld(t, 1)
	db := readFile(t, w.s.RepoDB("core"))
	st := &freshness.Statement{Repository: "core", Architecture: "riscv64", DB: freshness.DigestOf(db),
		Counter: 1, Issued: time.Now().UTC().Truncate(time.Second), Interval: time.Hour}
	w.publishStatement(t, st)
	res, got := w.install(t, w.names()...)
	requireDBRefused(t, res, "is about another architecture (riscv64")
	if len(got) != 0 {
		t.Errorf("installed %v", got)
	}
}

// Adversarial statements for the database the mirror serves, each refused
// by the hook through the real pacman, nothing installed: a statement of
// another repository for the same bytes (a mirror serving extra's
// database as core), one signed by another key (forged, but logged: the
// log accepts anyone's entries), and one signed by the transparency key
// but never logged (online: the log has no entry for it).
func TestStatementAdversarialRefused(t *testing.T) {
	w := newWorld(t, 1)
	db := readFile(t, w.s.RepoDB("core"))
	stmt := func(repo string) *freshness.Statement {
		return &freshness.Statement{Repository: repo, Architecture: machineArch(), DB: freshness.DigestOf(db),
			Counter: 1, Issued: time.Now().UTC().Truncate(time.Second), Interval: time.Hour}
	}
	for _, tc := range []struct {
		name string
		pub  func()
		want []string
	}{
		{"cross-repository", func() { w.publishStatement(t, stmt("extra")) }, []string{"is about another repository (extra"}},
		{"forged", func() {
			other, _ := newKey(t)
			w.publishStatementWith(t, stmt("core"), other, true)
		}, []string{"does not verify", "a forged or unlogged statement"}},
		{"unlogged", func() { w.publishStatementWith(t, stmt("core"), w.sk, false) }, []string{"does not verify", "a forged or unlogged statement"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pub()
			res, got := w.install(t, w.names()...)
			requireDBRefused(t, res, tc.want...)
			if len(got) != 0 {
				t.Errorf("installed %v", got)
			}
		})
	}
}
