package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// bundleSizes returns the distinct tree sizes of the published bundles of
// r's packages, each verified offline under the log key at lkPath.
func (r *signRepo) bundleSizes(t *testing.T, lkPath string) map[int64]int {
	t.Helper()
	lkPEM, _ := os.ReadFile(lkPath)
	lk, err := rekorv1.ParseLogKey(lkPEM)
	if err != nil {
		t.Fatal(err)
	}
	pubText, _ := os.ReadFile(r.pub)
	pub, err := verify.ParsePublicKey(string(pubText))
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[int64]int{}
	for _, p := range r.pkgs {
		tf, err := os.ReadFile(filepath.Join(r.sigDir, p.Filename+".t"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(r.sigDir, p.Filename+".t.bundle"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := rekorv1.ParseBundle(b)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := rekorv1.VerifyEntry(e, tf, []verify.PublicKey{pub}, p.SHA256Sum, p.Filename, lk)
		if err != nil {
			t.Fatalf("%s: %v", p.Filename, err)
		}
		sizes[cp.Size]++
	}
	return sizes
}

// storedCheckpoint is the checkpoint sign keeps in its state dir.
func (r *signRepo) storedCheckpoint(t *testing.T, lkPath string) *verify.Checkpoint {
	t.Helper()
	b, err := state.NewCheckpointStore(filepath.Join(r.state, "sign", "checkpoint.json"), state.StoreOptions{}).Load(context.Background())
	if err != nil || b == nil {
		t.Fatalf("sign's stored checkpoint: %q %v", b, err)
	}
	lkPEM, _ := os.ReadFile(lkPath)
	lk, err := rekorv1.ParseLogKey(lkPEM)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := lk.VerifyCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// countingProxy forwards to target and counts requests by method and path.
type countingProxy struct {
	srv    *httptest.Server
	proofs atomic.Int64 // GET /api/v1/log/proof
	total  atomic.Int64
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.total.Add(1)
		if req.Method == http.MethodGet && req.URL.Path == "/api/v1/log/proof" {
			p.proofs.Add(1)
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// With the real Rekor: a run's 200 bundles share one tree head (a few if
// other tests write to the shared log at the same time), they verify, the
// stored checkpoint is the newest, and an online scan of the repository
// then needs at most one consistency proof per tree head instead of one
// per upload. A later run advances the stored checkpoint.
func TestSignSettleRealRekor(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	res := signRunIn(t, r.args(r.logURL, "--json", "--jobs", "8")...)
	if res.code != 0 {
		t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
	}
	s := r.summary(t, res)
	if s.Signed != nRealPackages || s.Settled != nRealPackages+1 || s.SettleFailed != 0 || s.SettleError != "" || s.Checkpoint == nil { // +1: the statement
		t.Fatalf("summary: %+v", s)
	}
	sizes := r.bundleSizes(t, r.logKey)
	if len(sizes) != s.BundleCheckpoints || len(sizes) > 3 {
		t.Fatalf("bundles carry %d tree heads %v (summary: %d), want 1 (at most 3 with other writers)", len(sizes), sizes, s.BundleCheckpoints)
	}
	stored := r.storedCheckpoint(t, r.logKey)
	for size := range sizes {
		if size > stored.Size {
			t.Errorf("a bundle's tree size %d is newer than the stored checkpoint's %d", size, stored.Size)
		}
	}
	if stored.Size != s.Checkpoint.Size {
		t.Errorf("stored size %d, summary %d", stored.Size, s.Checkpoint.Size)
	}
	t.Logf("signed %d in %.2fs, settle %.3fs, tree heads %v, stored size %d", s.Signed, s.Seconds, s.SettleSeconds, sizes, stored.Size)
	r.checkComplete(t, false)

	// An online scan re-proves every bundle and proves each tree head
	// consistent with the current one: one proof per head, not per upload.
	p := newCountingProxy(t, r.logURL)
	var so, se bytes.Buffer
	code := run([]string{"scan", "--signature-dir", r.sigDir, "--pubkey-path", r.pub, "--log-url", p.srv.URL, "--log-key", r.logKey,
		"--state-dir", t.TempDir(), filepath.Join(r.dir, "core", "os", "x86_64", "core.db")}, strings.NewReader(""), &so, &se)
	if code != 0 {
		t.Fatalf("scan: exit %d\n%s\n%s", code, so.String(), se.String())
	}
	// The database's statement is checked in a verifier run of its own
	// (before the packages): its tree head is proven once more when the
	// shared log grew since the sign run.
	if got := p.proofs.Load(); got > int64(len(sizes))+1 {
		t.Errorf("online scan fetched %d consistency proofs for %d tree heads (+1 for the statement's run)", got, len(sizes))
	}
	t.Logf("online scan of %d packages: %d requests, %d consistency proofs", nRealPackages, p.total.Load(), p.proofs.Load())

	// The log grows (one entry by someone else); the next run re-proves
	// everything (--refresh-bundles) and the stored checkpoint advances.
	c, err := rekorv1.New(r.logURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, edsk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	rand.Read(sk.KeyId[:])
	mpk := sk.PublicKey()
	opub, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("%x", sha256.Sum256(edsk))
	ot, err := verify.SignPackage(sk, msg, "other-1-1-any.pkg.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upload(context.Background(), ot, opub.File(), []byte(msg)); err != nil {
		t.Fatal(err)
	}
	res = signRunIn(t, r.args(r.logURL, "--json", "--refresh-bundles")...)
	s = r.summary(t, res)
	if res.code != 0 || s.AlreadyPublished != nRealPackages || s.Settled != nRealPackages+1 || s.Signed != 0 || s.StatementsCurrent != 1 {
		t.Fatalf("refresh run: exit %d %+v\n%s", res.code, s, res.stderr)
	}
	next := r.storedCheckpoint(t, r.logKey)
	if next.Size <= stored.Size {
		t.Errorf("stored checkpoint did not advance: %d → %d", stored.Size, next.Size)
	}
	if sizes := r.bundleSizes(t, r.logKey); len(sizes) > 3 {
		t.Errorf("refreshed bundles carry %d tree heads", len(sizes))
	}
	r.checkComplete(t, false)
}

// A log that rolls back or forks between two runs, seen at the settle:
// exit 1 with the SECURITY ERROR and both tree heads; every .t and bundle
// published before is byte-identical, the packages re-signed in that run
// are published (with the proof of their upload) and the stored checkpoint
// is kept. Once the log is honest again, a run settles everything.
func TestSignSettleLyingLog(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	fl := fakelog.New(t)
	r.logKey = filepath.Join(r.dir, "fakelog.pem")
	if err := os.WriteFile(r.logKey, fl.KeyPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	res := signRunIn(t, r.args(fl.URL, "--json")...)
	s := r.summary(t, res)
	if res.code != 0 || s.Settled != nRealPackages+1 || s.BundleCheckpoints != 1 { // +1: the statement
		t.Fatalf("honest run: exit %d %+v\n%s", res.code, s, res.stderr)
	}
	storedPath := filepath.Join(r.state, "sign", "checkpoint.json")
	for _, tc := range []struct {
		name string
		lie  func()
	}{
		{"rollback", func() { fl.RollbackTo(fl.Size() - 20) }},
		{"fork", func() { fl.Fork(fl.Size() - 30) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storedBefore, err := os.ReadFile(storedPath)
			if err != nil {
				t.Fatal(err)
			}
			// Ten packages lose their files: the run signs them again (the
			// log answers 409 with the existing entry, honestly).
			redo := r.pkgs[:10]
			for _, p := range redo {
				os.Remove(filepath.Join(r.sigDir, p.Filename+".t"))
				os.Remove(filepath.Join(r.sigDir, p.Filename+".t.bundle"))
			}
			before := map[string][]byte{}
			for _, p := range r.pkgs[10:] {
				for _, suf := range []string{".t", ".t.bundle"} {
					b, err := os.ReadFile(filepath.Join(r.sigDir, p.Filename+suf))
					if err != nil {
						t.Fatal(err)
					}
					before[p.Filename+suf] = b
				}
			}
			tc.lie()
			// The lie is told where the settle looks: uploads and lookups
			// stay honest.
			lie := fakelog.LieStaleCheckpoint
			if tc.name == "fork" {
				lie = fakelog.LieForkedTree
			}
			fl.SetLie(lie, fakelog.EndpointRetrieve, fakelog.EndpointLogInfo, fakelog.EndpointProof)
			res := signRunIn(t, r.args(fl.URL, "--json")...)
			s := r.summary(t, res)
			if res.code != ExitFailed || !strings.Contains(res.stderr, "SECURITY ERROR") || !strings.Contains(res.stderr, "hint: keep both tree heads") {
				t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
			}
			if s.Signed != len(redo) || s.Settled != 0 || s.SecurityError == "" || !strings.Contains(s.SecurityError, fakelog.Hostname) {
				t.Errorf("summary: %+v", s)
			}
			for name, b := range before {
				got, err := os.ReadFile(filepath.Join(r.sigDir, name))
				if err != nil || !bytes.Equal(got, b) {
					t.Errorf("%s changed or lost: %v", name, err)
				}
			}
			if got, _ := os.ReadFile(storedPath); !bytes.Equal(got, storedBefore) {
				t.Errorf("the stored checkpoint was replaced")
			}
			r.bundleSizes(t, r.logKey) // every bundle, the re-signed ones too, verifies

			fl.SetLie(fakelog.Honest)
			res = signRunIn(t, r.args(fl.URL, "--json", "--refresh-bundles")...)
			s = r.summary(t, res)
			if res.code != 0 || s.Settled != nRealPackages+1 || s.BundleCheckpoints != 1 {
				t.Fatalf("honest refresh: exit %d %+v\n%s", res.code, s, res.stderr)
			}
			if sizes := r.bundleSizes(t, r.logKey); len(sizes) != 1 {
				t.Errorf("tree heads after the honest refresh: %v", sizes)
			}
		})
	}
	if n := fl.Size(); n != nRealPackages+1 {
		t.Errorf("the log holds %d entries for %d packages and a statement", n, nRealPackages)
	}
}

// The log is down when the run settles: a warning, exit 0, bundles as
// published.
func TestSignSettleLogDownIsAWarning(t *testing.T) {
	r := newSignRepo(t, nRealPackages)
	p := newFaultProxy(t, r.logURL)
	var n atomic.Int64
	down := func(int64) {
		if n.Add(1) == nRealPackages+1 { // the packages and the statement
			p.down.Store(true)
		}
	}
	p.onPost.Store(&down)
	res := signRunIn(t, r.args(p.srv.URL, "--json")...)
	s := r.summary(t, res)
	if res.code != 0 || s.Signed != nRealPackages || s.StatementsIssued != 1 || s.Settled != 0 || s.SettleFailed != nRealPackages+1 || s.SettleError == "" {
		t.Fatalf("exit %d %+v\n%s", res.code, s, res.stderr)
	}
	if !strings.Contains(res.stderr, "warning: 201 bundle(s) not settled") {
		t.Errorf("stderr: %s", res.stderr)
	}
	if _, err := os.Stat(filepath.Join(r.state, "sign", "checkpoint.json")); err == nil {
		t.Errorf("a checkpoint was stored without a settle")
	}
	r.checkComplete(t, false)
}
