// Package adversarial collects every hostile input bintrans can meet into
// table-driven suites driven through the public entry points: the engine
// (verify.NewVerifier / VerifyAll) over sigsource reading a temp directory
// and the Rekor client talking to internal/fakelog (real RFC 6962 proofs,
// signed checkpoints and SETs, lie modes), repodb.Read, the state
// directory, rebuilder.Set against rebuilder/rebuildertest, and the real
// pacman 6.0.2 with the static bintrans binary as its hook.
//
// Every case is one named bad input with the exact verdict (Status), the
// typed error (errors.As) and the "nothing accepted, nothing cached"
// invariant: the package is not OK, and the persisted checkpoint is
// byte-for-byte what it was before the run.
package adversarial

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/sigsource"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// key is a minisign transparency key pair.
type key struct {
	sk *minisign.PrivateKey
	pk verify.PublicKey
}

func newKey(t testing.TB) key {
	t.Helper()
	_, edsk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	if _, err := rand.Read(sk.KeyId[:]); err != nil {
		t.Fatal(err)
	}
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	return key{sk: sk, pk: pk}
}

// pkgFile is a package published in the env: its file, `.t` and bundle.
type pkgFile struct {
	name     string // pkgname
	version  string // pkgver-pkgrel
	filename string
	content  []byte
	sha256   string
	t        []byte
	bundle   []byte
	entry    *rekorv1.Entry
}

// env is one repository of signed, logged packages: a signature directory
// (sigsource), a fake log, a state directory holding the checkpoint an
// honest earlier run stored.
type env struct {
	key     key
	log     *fakelog.Log
	logKey  *rekorv1.LogKey
	sigDir  string
	pkgDir  string
	state   *state.Dir
	pkgs    []*pkgFile
	hc      *http.Client
	tb      testing.TB
	stateCP string // path of the checkpoint file
	// entryRequests counts the fake log's entry requests before a run.
	entryRequests int
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newEnv publishes n good packages (signed, logged, `.t` + bundle), then
// runs the engine online once so that the state holds the log's checkpoint.
func newEnv(t *testing.T, n int) *env {
	t.Helper()
	e := &env{key: newKey(t), log: fakelog.New(t), sigDir: t.TempDir(), pkgDir: t.TempDir(), tb: t}
	var err error
	if e.logKey, err = rekorv1.ParseLogKey(e.log.KeyPEM); err != nil {
		t.Fatal(err)
	}
	if e.state, err = state.Open(filepath.Join(t.TempDir(), "state")); err != nil {
		t.Fatal(err)
	}
	e.stateCP = e.state.Path("checkpoint.json")
	if e.hc, err = httpclient.New(httpclient.Options{Timeout: 5 * time.Second, StallTimeout: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e.add(t, fmt.Sprintf("pkg%02d", i), fmt.Sprintf("1.%d-1", i), []byte(fmt.Sprintf("package %d payload\n", i)))
	}
	res, err := e.run(t, runOpts{})
	if err != nil {
		t.Fatalf("honest baseline run: %v", err)
	}
	for _, r := range res {
		if !r.OK() {
			t.Fatalf("honest baseline: %s: %s: %v", r.Artifact.Filename, r.Status, r.Err)
		}
	}
	if _, err := os.Stat(e.stateCP); err != nil {
		t.Fatalf("baseline stored no checkpoint: %v", err)
	}
	return e
}

// add signs, logs and publishes a package.
func (e *env) add(t testing.TB, name, version string, content []byte) *pkgFile {
	t.Helper()
	filename := name + "-" + version + "-x86_64.pkg.tar.zst"
	p := &pkgFile{name: name, version: version, filename: filename, content: content, sha256: sum(content)}
	p.t, p.entry, p.bundle = e.signLog(t, e.key, p.sha256, filename)
	e.write(t, filename, content)
	e.writeSig(t, filename+verify.SignatureSuffix, p.t)
	e.writeSig(t, filename+verify.BundleSuffix, p.bundle)
	e.pkgs = append(e.pkgs, p)
	return p
}

// signLog signs sha with k (trusted comment comment), logs the canonical
// body and returns the `.t`, the entry and its bundle.
func (e *env) signLog(t testing.TB, k key, sha, comment string) ([]byte, *rekorv1.Entry, []byte) {
	t.Helper()
	tf, err := verify.SignPackage(k.sk, sha, comment)
	if err != nil {
		t.Fatal(err)
	}
	le := e.logSig(t, tf, k.pk, sha)
	return tf, le, bundleOf(t, le)
}

// logSig logs a `.t` under key pk for message sha and returns the entry.
func (e *env) logSig(t testing.TB, tf []byte, pk verify.PublicKey, sha string) *rekorv1.Entry {
	t.Helper()
	s, err := verify.ParseSignature(tf)
	if err != nil {
		t.Fatal(err)
	}
	return e.log.Add(rekorv1.CanonicalBody(s, pk, []byte(sha)))
}

func bundleOf(t testing.TB, le *rekorv1.Entry) []byte {
	t.Helper()
	b, err := rekorv1.MarshalBundle(le)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) write(t testing.TB, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.pkgDir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *env) writeSig(t testing.TB, name string, b []byte) {
	t.Helper()
	if name == "" {
		return
	}
	if b == nil {
		if err := os.Remove(filepath.Join(e.sigDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(filepath.Join(e.sigDir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// artifact is the Artifact pacman's hook builds for p: the cached file is
// opened and hashed; SHA256 is what the repository database claims.
func (e *env) artifact(p *pkgFile) verify.Artifact {
	path := filepath.Join(e.pkgDir, p.filename)
	return verify.Artifact{Filename: p.filename, Repo: "core", Arch: "x86_64", Name: p.name, Version: p.version, SHA256: p.sha256,
		Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

func (e *env) artifacts() []verify.Artifact {
	var a []verify.Artifact
	for _, p := range e.pkgs {
		a = append(a, e.artifact(p))
	}
	return a
}

// runOpts varies the engine's inputs for one case.
type runOpts struct {
	offline  bool
	arts     []verify.Artifact // default: every package
	log      rekorv1.API       // default: the Rekor client on the fake log
	src      verify.SignatureSource
	rb       verify.Rebuilders
	required int
	timeout  time.Duration
}

// rekorClient is the real Rekor client on the fake log, without retries.
func (e *env) rekorClient(t testing.TB, hc *http.Client) *rekorv1.Client {
	t.Helper()
	if hc == nil {
		hc = e.hc
	}
	c, err := rekorv1.New(e.log.URL, hc, rekorv1.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run builds a verifier with the persisted checkpoint store and verifies.
func (e *env) run(t testing.TB, o runOpts) ([]verify.Result, error) {
	t.Helper()
	src := o.src
	if src == nil {
		var err error
		if src, err = sigsource.New(e.sigDir, nil); err != nil {
			t.Fatal(err)
		}
	}
	var online verify.LogClient
	if !o.offline {
		lg := o.log
		if lg == nil {
			lg = e.rekorClient(t, nil)
		}
		online = rekorv1.NewOnline(lg, e.logKey)
	}
	v, err := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{e.key.pk}, Log: e.logKey, Offline: o.offline,
		Concurrency: 2, RequiredRebuildConfirms: o.required}, src, online, e.state.Checkpoints(), o.rb)
	if err != nil {
		t.Fatal(err)
	}
	arts := o.arts
	if arts == nil {
		arts = e.artifacts()
	}
	if o.timeout == 0 {
		o.timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	unlock, err := e.state.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	return v.VerifyAll(ctx, arts)
}

// drainTestLog empties the buffer of `go test`'s test log before a case
// sets RLIMIT_FSIZE: the log (testlog.txt, written when results are
// cacheable) records every file this process opens through a 4 KiB
// bufio.Writer, and a flush inside the limited window fails with EFBIG,
// which fails the whole package run ("can't write testlog.txt") however the
// tests went. A lookup of a name longer than the buffer makes bufio flush
// and write the name directly, leaving one byte buffered: the window's few
// opens then stay in memory until the limit is lifted.
func drainTestLog() { os.Getenv(strings.Repeat("BINTRANS_DRAIN_TESTLOG_", 400)) }

// asType reports whether err's chain holds an error of want's type (want
// is a typed nil pointer such as (*verify.SignatureError)(nil)) and
// returns it.
func asType(err error, want any) (any, bool) {
	if err == nil || want == nil {
		return nil, false
	}
	target := reflect.New(reflect.TypeOf(want))
	if errors.As(err, target.Interface()) {
		return target.Elem().Interface(), true
	}
	return nil, false
}

func typeName(v any) string {
	if v == nil {
		return "<nil>"
	}
	return reflect.TypeOf(v).String()
}

// mutateJSON decodes b, lets f edit the generic value and re-encodes it.
func mutateJSON(t testing.TB, b []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// proofOf returns the inclusionProof object of a bundle's generic value.
func proofOf(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	v, ok := m["verification"].(map[string]any)
	if !ok {
		t.Fatalf("bundle without verification: %v", m)
	}
	p, ok := v["inclusionProof"].(map[string]any)
	if !ok {
		t.Fatalf("bundle without inclusionProof: %v", v)
	}
	return p
}
