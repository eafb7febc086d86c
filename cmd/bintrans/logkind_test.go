package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/testkit/enginetest"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// `bintrans verify --log-kind rekor-v2|sigsum`, end to end: package files,
// their `.t` and proofs in a directory, the log flags, the state directory.
// Rekor v2: the real rekor-tiles stack (entries logged by rekorv2.Writer,
// the bundles it returns; online, the checkpoint and tiles). Sigsum: the
// in-process Sigsum log with real witnesses. Witness policies: a quorum
// met (real omniwitnesses cosign the checkpoint) and one missed (refused).

// logKindRepo is a repository directory: pkgs/ (package files), sigs/
// (`.t` and `.t.bundle`), signed by a fresh transparency key.
type logKindRepo struct {
	dir, pkgs, sigs string
	sk              *minisign.PrivateKey
	pk              verify.PublicKey
	files           []string // package files
	shas            []string // their hex sha256
}

func newLogKindRepo(t *testing.T, n int) *logKindRepo {
	t.Helper()
	r := &logKindRepo{dir: t.TempDir()}
	r.pkgs, r.sigs = filepath.Join(r.dir, "pkgs"), filepath.Join(r.dir, "sigs")
	_, edsk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r.sk = &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(r.sk.SecretKey[:], edsk)
	_, _ = rand.Read(r.sk.KeyId[:])
	mpk := r.sk.PublicKey()
	if r.pk, err = verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...))); err != nil {
		t.Fatal(err)
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	for i := range n {
		name := fmt.Sprintf("lk%d-1.0-1-x86_64.pkg.tar.zst", i)
		content := fmt.Appendf(nil, "package %d %x\n", i, nonce)
		sha := memSHA(content)
		tf, err := verify.SignPackage(r.sk, sha, name)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(r.pkgs, name)
		writeTestFile(t, p, content)
		writeTestFile(t, filepath.Join(r.sigs, name+".t"), tf)
		r.files, r.shas = append(r.files, p), append(r.shas, sha)
	}
	return r
}

func memSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (r *logKindRepo) setBundle(t *testing.T, i int, b []byte) {
	t.Helper()
	writeTestFile(t, filepath.Join(r.sigs, filepath.Base(r.files[i])+".t.bundle"), b)
}

// tamper replaces package i's file with other bytes of the same name.
func (r *logKindRepo) tamper(t *testing.T, i int) {
	t.Helper()
	writeTestFile(t, r.files[i], []byte("not the logged package\n"))
}

func wantExit(t *testing.T, what string, want int, args []string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := runCLI(args...)
	if code != want {
		t.Fatalf("%s: exit %d, want %d\nargs: %q\nstdout: %s\nstderr: %s", what, code, want, args, stdout, stderr)
	}
	return stdout, stderr
}

// v2Logged logs the repository's packages in the real Rekor v2 stack and
// writes the bundles the Writer returns.
func v2Logged(t *testing.T, s testenv.RekorV2Stack, r *logKindRepo) (*rekorv2.LogVerifier, *rekorv2.Reader, []*rekorv2.Logged) {
	t.Helper()
	key, err := os.ReadFile(s.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := rekorv2.ParseLogKey(key, s.Origin)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := rekorv2.NewReader(s.ReadURL, nil, lv)
	if err != nil {
		t.Fatal(err)
	}
	wr, err := rekorv2.NewWriter(s.URL, nil, lv, rekorv2.WithReader(rd))
	if err != nil {
		t.Fatal(err)
	}
	var entries []*rekorv2.HashedRekord
	for _, sha := range r.shas {
		hr, err := rekorv2.Sign(enginetest.Ed25519(r.sk), []byte(sha))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, hr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logged []*rekorv2.Logged
	for i, res := range wr.AddAll(ctx, entries, len(entries)) {
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		b, err := res.Logged.Bundle().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r.setBundle(t, i, b)
		logged = append(logged, res.Logged)
	}
	return lv, rd, logged
}

// TestVerifyLogKindRekorV2: offline from the Writer's bundles, then online
// (the current checkpoint and consistency from tiles; the checkpoint is
// stored under the log's key id); the verifier key line works without
// --log-origin; a tampered package and another package's bundle are
// refused; missing or contradictory flags are usage errors.
func TestVerifyLogKindRekorV2(t *testing.T) {
	s := testenv.RekorV2(t)
	r := newLogKindRepo(t, 3)
	lv, _, _ := v2Logged(t, s, r)
	state := filepath.Join(r.dir, "state")
	base := []string{"verify", "--log-kind", "rekor-v2", "--log-url", s.URL, "--log-read-url", s.ReadURL,
		"--log-key", s.KeyPath, "--log-origin", s.Origin, "--pubkey", r.pk.Base64(),
		"--transparency-url", r.sigs, "--state-dir", state}
	args := func(extra ...string) []string {
		return append(append(append([]string(nil), base...), extra...), r.files...)
	}

	out, _ := wantExit(t, "offline", ExitOK, args("--offline"))
	if n := strings.Count(out, "OK   lk"); n != 3 {
		t.Fatalf("offline: %d OK lines\n%s", n, out)
	}
	if _, err := os.Stat(state); err == nil {
		t.Fatal("offline created the state directory")
	}
	wantExit(t, "online", ExitOK, args())
	id := lv.KeyID()
	if _, err := os.Stat(filepath.Join(state, "checkpoint-"+hex.EncodeToString(id[:])+".json")); err != nil {
		t.Fatalf("online stored no checkpoint for the Rekor v2 log: %v", err)
	}
	// Again, online, from the stored checkpoint (consistency proven).
	wantExit(t, "online again", ExitOK, args("--json"))

	// The log's verifier key line pins key and origin together.
	vkey := filepath.Join(r.dir, "log.vkey")
	writeTestFile(t, vkey, []byte(lv.VerifierKey()+"\n"))
	vargs := append([]string{"verify", "--log-kind", "rekor-v2", "--log-url", s.URL, "--log-read-url", s.ReadURL,
		"--log-key", vkey, "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, "--state-dir", state}, r.files...)
	wantExit(t, "verifier key, online", ExitOK, vargs)

	// A config file holds the same keys as the flags.
	conf := filepath.Join(r.dir, "bintrans.conf")
	writeTestFile(t, conf, fmt.Appendf(nil, "log-kind = rekor-v2\nlog-url = %s\nlog-read-url = %s\nlog-key = %s\nlog-origin = %s\npubkey = %s\ntransparency-url = %s\nstate-dir = %s\noffline\n",
		s.URL, s.ReadURL, s.KeyPath, s.Origin, r.pk.Base64(), r.sigs, state))
	wantExit(t, "config file", ExitOK, append([]string{"verify", "--config", conf}, r.files...))

	// Another package's bundle, and a package that is not the logged one.
	b1, err := os.ReadFile(filepath.Join(r.sigs, filepath.Base(r.files[1])+".t.bundle"))
	if err != nil {
		t.Fatal(err)
	}
	r.setBundle(t, 0, b1)
	r.tamper(t, 2)
	for _, mode := range [][]string{{"--offline"}, nil} {
		out, _ := wantExit(t, fmt.Sprint("tampered ", mode), ExitFailed, args(mode...))
		if !strings.Contains(out, "FAIL lk0-1.0-1-x86_64.pkg.tar.zst: bundle-invalid") || !strings.Contains(out, "OK   lk1") ||
			!strings.Contains(out, "FAIL lk2-1.0-1-x86_64.pkg.tar.zst: ") {
			t.Fatalf("tampered %v:\n%s", mode, out)
		}
	}

	// Usage errors (exit 2) say what is missing.
	for _, c := range []struct {
		what string
		args []string
		want string
	}{
		{"no --log-key", []string{"verify", "--log-kind", "rekor-v2", "--log-url", s.URL, "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, r.files[1]}, "--log-kind rekor-v2 needs --log-key"},
		{"default --log-url", []string{"verify", "--log-kind", "rekor-v2", "--log-key", vkey, "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, r.files[1]}, "--log-kind rekor-v2 needs --log-url"},
		{"PEM without origin", []string{"verify", "--log-kind", "rekor-v2", "--log-url", s.URL, "--log-key", s.KeyPath, "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, r.files[1]}, "--log-origin"},
		{"other origin", []string{"verify", "--log-kind", "rekor-v2", "--log-url", s.URL, "--log-key", vkey, "--log-origin", "other.example", "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, r.files[1]}, "pinned origin is \"other.example\""},
		{"v1 key for v2", []string{"verify", "--log-kind", "rekor-v2", "--log-url", s.URL, "--log-key", "/tmp/bintrans-test-stack/rekor.pub", "--log-origin", s.Origin, "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, r.files[1]}, "--log-key /tmp/bintrans-test-stack/rekor.pub"},
		{"unknown kind", []string{"verify", "--log-kind", "rekor-v3", "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, r.files[1]}, "--log-kind"},
		{"origin for v1", []string{"verify", "--log-origin", "x", "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, r.files[1]}, "are for --log-kind rekor-v2"},
		{"sigsum without policy", []string{"verify", "--log-kind", "sigsum", "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, r.files[1]}, "--log-kind sigsum needs --sigsum-policy"},
		{"sigsum policy for v2", append(append([]string(nil), base...), "--sigsum-policy", vkey, r.files[1]), "--sigsum-policy is for --log-kind sigsum"},
		{"negative age", append(append([]string(nil), base...), "--max-cosignature-age=-1h", r.files[1]), "--max-cosignature-age -1h0m0s is negative"},
	} {
		_, stderr := wantExit(t, c.what, ExitUsage, c.args)
		if !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "hint: ") {
			t.Errorf("%s: stderr does not say %q with a hint:\n%s", c.what, c.want, stderr)
		}
	}
	// monitor enforces a witness policy on a Rekor v2 log
	// (TestMonitorRekorV2WitnessQuorum): a file that is no policy is a
	// usage error naming the flag, before the log is read.
	_, stderr := wantExit(t, "monitor --log-kind rekor-v2 --witness-policy not-a-policy", ExitUsage, []string{"monitor", "--log-kind", "rekor-v2", "--log-url", s.URL,
		"--log-key", vkey, "--witness-policy", vkey, "--pubkey", r.pk.Base64(), "--state-dir", filepath.Join(r.dir, "mon")})
	if !strings.Contains(stderr, "bintrans: --witness-policy: ") || !strings.Contains(stderr, "hint: fix the policy") {
		t.Errorf("monitor: %s", stderr)
	}
	// Its tiles are read from --log-read-url: a write URL that serves
	// none is a log it cannot read (exit 3), and the hint says where.
	_, stderr = wantExit(t, "monitor --log-kind rekor-v2 without --log-read-url", ExitInternal, []string{"monitor", "--log-kind", "rekor-v2", "--log-url", s.URL,
		"--log-key", vkey, "--pubkey", r.pk.Base64(), "--state-dir", filepath.Join(r.dir, "mon")})
	if !strings.Contains(stderr, "hint: check --log-read-url") {
		t.Errorf("monitor without --log-read-url: %s", stderr)
	}
}

// TestVerifyLogKindRekorV2Witnessed: a 2-of-3 witness policy against the
// real Rekor v2 stack. Bundles made (as sign's settle makes them) at the
// log's current checkpoint cosigned by two real omniwitnesses verify
// offline; the Writer's bundles, which no witness cosigned, are refused
// offline (bundle-invalid, exit 1), and online the log's current
// checkpoint, which no witness cosigned, is no usable view (exit 3).
func TestVerifyLogKindRekorV2Witnessed(t *testing.T) {
	s := testenv.RekorV2(t)
	r := newLogKindRepo(t, 2)
	lv, rd, logged := v2Logged(t, s, r)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	wl := witnesstest.Log{Origin: lv.Origin(), VKey: lv.VerifierKey()}
	ws := []*witnesstest.Witness{witnesstest.StartOmni(t, wl), witnesstest.StartOmni(t, wl), witnesstest.StartOmni(t, wl)}
	var text strings.Builder
	for i, w := range ws {
		fmt.Fprintln(&text, w.PolicyLine(fmt.Sprintf("w%d", i+1)))
	}
	fmt.Fprintln(&text, "group g 2 w1 w2 w3\nquorum g")
	policyFile := filepath.Join(r.dir, "witnesses.policy")
	writeTestFile(t, policyFile, []byte(text.String()))
	pol, err := witness.Parse([]byte(text.String()))
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(r.dir, "state")
	args := func(extra ...string) []string {
		a := []string{"verify", "--log-kind", "rekor-v2", "--log-url", s.URL, "--log-read-url", s.ReadURL,
			"--log-key", s.KeyPath, "--log-origin", s.Origin, "--pubkey", r.pk.Base64(),
			"--transparency-url", r.sigs, "--state-dir", state, "--witness-policy", policyFile}
		return append(append(a, extra...), r.files...)
	}

	// The Writer's bundles: no cosignature.
	out, _ := wantExit(t, "uncosigned, offline", ExitFailed, args("--offline"))
	if strings.Count(out, "bundle-invalid") != 2 || !strings.Contains(out, "witness quorum") {
		t.Fatalf("uncosigned bundles:\n%s", out)
	}
	_, stderr := wantExit(t, "uncosigned, online", ExitInternal, args())
	if !strings.Contains(stderr, "witness quorum") || !strings.Contains(stderr, "hint: the log serves its checkpoint without any witness cosignature") || !strings.Contains(stderr, "verify offline") {
		t.Fatalf("online, the log's checkpoint has no cosignature:\n%s", stderr)
	}

	// Settle at the current checkpoint, cosigned by w1 and w2.
	cur, err := rd.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := rd.At(cur)
	if err != nil {
		t.Fatal(err)
	}
	cosigned := cur.Raw
	wc := &witness.Client{}
	for i := range 2 {
		lines, err := wc.AddCheckpoint(ctx, &pol.Witnesses[i], cur.Raw, 0, nil)
		if err != nil {
			t.Fatalf("witness %d: %v\n%s", i+1, err, ws[i].Output())
		}
		if cosigned, err = witness.MergeCosignatures(cosigned, lines); err != nil {
			t.Fatal(err)
		}
	}
	bundleAt := func(cp []byte) {
		for i, l := range logged {
			leaf := l.Bundle()
			hashes, err := tree.InclusionProof(ctx, l.Index, l.LeafHash)
			if err != nil {
				t.Fatal(err)
			}
			leaf.Hashes, leaf.Checkpoint = hashes, cp
			b, err := leaf.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			r.setBundle(t, i, b)
		}
	}
	bundleAt(cosigned)
	wantExit(t, "cosigned by 2 of 3, offline", ExitOK, args("--offline"))
	wantExit(t, "cosigned by 2 of 3, offline, fresh cosignatures", ExitOK, args("--offline", "--max-cosignature-age", "1h"))

	// One cosignature only: refused.
	one, err := witness.MergeCosignatures(cur.Raw, mustCosign(t, ctx, wc, &pol.Witnesses[2], cur.Raw, ws[2]))
	if err != nil {
		t.Fatal(err)
	}
	bundleAt(one)
	out, _ = wantExit(t, "cosigned by 1 of 3, offline", ExitFailed, args("--offline"))
	if strings.Count(out, "bundle-invalid") != 2 {
		t.Fatalf("one cosignature:\n%s", out)
	}
	// Without the policy, the same bundles verify (no quorum is the default).
	plain := args("--offline")
	for i, a := range plain {
		if a == "--witness-policy" {
			plain = append(plain[:i:i], plain[i+2:]...)
			break
		}
	}
	wantExit(t, "no policy", ExitOK, plain)
}

func mustCosign(t *testing.T, ctx context.Context, c *witness.Client, w *witness.Witness, cp []byte, ww *witnesstest.Witness) []byte {
	t.Helper()
	lines, err := c.AddCheckpoint(ctx, w, cp, 0, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, ww.Output())
	}
	return lines
}

// TestVerifyLogKindSigsum: proofs from the in-process Sigsum log, cosigned
// by real witnesses (two sigsum-witness, one omniwitness), verified by
// `bintrans verify --log-kind sigsum --sigsum-policy` (2-of-3): ok; a
// tampered package and another package's proof are refused; a policy whose
// quorum these proofs miss (all of the three and a fourth witness that
// never cosigned) refuses them all.
func TestVerifyLogKindSigsum(t *testing.T) {
	logPub, logPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	origin := witness.SigsumOrigin(logPub)
	vkey, err := witness.Ed25519VKey(origin, logPub)
	if err != nil {
		t.Fatal(err)
	}
	ws := []*witnesstest.Witness{
		witnesstest.StartSigsum(t, logPub),
		witnesstest.StartSigsum(t, logPub),
		witnesstest.StartOmni(t, witnesstest.Log{Origin: origin, VKey: vkey}),
	}
	var wl strings.Builder
	for i, w := range ws {
		fmt.Fprintln(&wl, w.SigsumPolicyLine(fmt.Sprintf("w%d", i+1)))
	}
	withURLs, err := witness.Parse([]byte(wl.String() + "quorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	log, err := sigsumlog.New(logPriv, withURLs.Witnesses)
	if err != nil {
		t.Fatal(err)
	}
	srv := sigsumlog.Serve(t, log, 50*time.Millisecond)
	text := srv.PolicyLine() + "\n" + wl.String() + "group g 2 w1 w2 w3\nquorum g\n"
	pol, err := witness.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}

	r := newLogKindRepo(t, 3)
	var sums [][32]byte
	for _, sha := range r.shas {
		var s [32]byte
		if _, err := hex.Decode(s[:], []byte(sha)); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	proofs, err := sigsum.Submit(ctx, sigsum.Config{Policy: pol, PollDelay: 20 * time.Millisecond, Timeout: 20 * time.Second}, enginetest.Ed25519(r.sk), sums)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range proofs {
		r.setBundle(t, i, p)
	}
	policyFile := filepath.Join(r.dir, "sigsum.policy")
	writeTestFile(t, policyFile, []byte(text))
	state := filepath.Join(r.dir, "state")
	args := func(policy string, extra ...string) []string {
		a := []string{"verify", "--log-kind", "sigsum", "--sigsum-policy", policy, "--pubkey", r.pk.Base64(),
			"--transparency-url", r.sigs, "--state-dir", state}
		return append(append(a, extra...), r.files...)
	}
	out, _ := wantExit(t, "sigsum", ExitOK, args(policyFile))
	if strings.Count(out, "OK   lk") != 3 {
		t.Fatalf("sigsum:\n%s", out)
	}
	wantExit(t, "sigsum, fresh cosignatures", ExitOK, args(policyFile, "--max-cosignature-age", "1h"))
	if _, err := os.Stat(state); err == nil {
		t.Fatal("sigsum (verified from its proofs) created the state directory")
	}
	// --json says offline: the log was not asked.
	out, _ = wantExit(t, "sigsum --json", ExitOK, args(policyFile, "--json"))
	if !strings.Contains(out, `"mode": "offline"`) {
		t.Errorf("sigsum --json mode:\n%s", out)
	}

	// scan: a Sigsum-logged repository's database, from its proofs.
	var pkgs []repodb.Package
	for i, f := range r.files {
		name := fmt.Sprintf("lk%d", i)
		pkgs = append(pkgs, repodb.Package{Filename: filepath.Base(f), Name: name, Base: name, Version: "1.0-1", Arch: "x86_64",
			Desc: "test package", CSize: 100, ISize: 4096, SHA256Sum: r.shas[i]})
	}
	var db bytes.Buffer
	if err := repodbtest.Write(&db, pkgs, repodbtest.Options{}); err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(r.dir, "core.db")
	writeTestFile(t, dbFile, db.Bytes())
	scan := func(policy string) []string {
		return []string{"scan", "--log-kind", "sigsum", "--sigsum-policy", policy, "--pubkey", r.pk.Base64(),
			"--signature-dir", r.sigs, "--state-dir", state, "--json", "-", dbFile}
	}
	out, _ = wantExit(t, "scan --log-kind sigsum", ExitOK, scan(policyFile))
	if !strings.Contains(out, `"ok": 3`) && !strings.Contains(out, `"ok":3`) {
		t.Errorf("scan --log-kind sigsum:\n%s", out)
	}

	// A quorum these proofs cannot meet: all three and a fourth witness.
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	strict := filepath.Join(r.dir, "strict.policy")
	writeTestFile(t, strict, []byte(srv.PolicyLine()+"\n"+wl.String()+
		"witness w4 "+hex.EncodeToString(stranger.Public().(ed25519.PublicKey))+"\ngroup g all w1 w2 w3 w4\nquorum g\n"))
	out, _ = wantExit(t, "quorum missed", ExitFailed, args(strict))
	if strings.Count(out, "bundle-invalid") != 3 {
		t.Fatalf("quorum missed:\n%s", out)
	}
	wantExit(t, "scan, quorum missed", ExitFailed, scan(strict))

	// Another package's proof, and a package that is not the logged one.
	r.setBundle(t, 0, proofs[1])
	r.tamper(t, 2)
	out, _ = wantExit(t, "sigsum, tampered", ExitFailed, args(policyFile))
	if !strings.Contains(out, "FAIL lk0-1.0-1-x86_64.pkg.tar.zst: bundle-invalid") || !strings.Contains(out, "OK   lk1") || !strings.Contains(out, "FAIL lk2") {
		t.Fatalf("sigsum, tampered:\n%s", out)
	}

	// Flags that do not apply to Sigsum are refused.
	_, stderr := wantExit(t, "sigsum with --witness-policy", ExitUsage, args(policyFile, "--witness-policy", strict))
	if !strings.Contains(stderr, "--witness-policy is not used with --log-kind sigsum") {
		t.Errorf("%s", stderr)
	}
	bad := filepath.Join(r.dir, "bad.policy")
	writeTestFile(t, bad, []byte(srv.PolicyLine()+"\nquorum nobody\n"))
	_, stderr = wantExit(t, "sigsum, bad policy", ExitUsage, args(bad))
	if !strings.Contains(stderr, "--sigsum-policy: witness policy "+bad+" line 2") {
		t.Errorf("bad policy: %s", stderr)
	}
}

// TestVerifyRekorV1WitnessPolicy: a witness policy for a Rekor v1 log must
// name the log (its note key name cannot be derived); with the log named,
// bundles whose checkpoints no policy witness cosigned are refused.
func TestVerifyRekorV1WitnessPolicy(t *testing.T) {
	base, pkgFile := offlineVerifyArgs(t)
	dir := t.TempDir()
	wpub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wkey, err := witness.CosignatureVKey("w1.example", wpub)
	if err != nil {
		t.Fatal(err)
	}
	noLog := filepath.Join(dir, "nolog.policy")
	writeTestFile(t, noLog, []byte("witness w1 "+wkey+"\nquorum w1\n"))
	_, stderr := wantExit(t, "policy without the log", ExitUsage, append(append(append([]string(nil), base...), "--witness-policy", noLog), pkgFile))
	if !strings.Contains(stderr, "names no log") || !strings.Contains(stderr, "hint: add the log to the policy") {
		t.Errorf("policy without the log:\n%s", stderr)
	}

	var keyFile string
	for i, a := range base {
		if a == "--log-key" {
			keyFile = base[i+1]
		}
	}
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	lkey, err := witness.RekorV1VKey("rekor.local", pem) // the fixture log's key name
	if err != nil {
		t.Fatal(err)
	}
	withLog := filepath.Join(dir, "log.policy")
	writeTestFile(t, withLog, []byte("log "+lkey+"\nwitness w1 "+wkey+"\nquorum w1\n"))
	out, _ := wantExit(t, "uncosigned Rekor v1 bundle", ExitFailed, append(append(append([]string(nil), base...), "--witness-policy", withLog), pkgFile))
	if !strings.Contains(out, "bundle-invalid") || !strings.Contains(out, `witness quorum "w1" not met`) {
		t.Errorf("uncosigned Rekor v1 bundle:\n%s", out)
	}
	// "quorum none": the log's signature alone, as without a policy.
	none := filepath.Join(dir, "none.policy")
	writeTestFile(t, none, []byte("log "+lkey+"\nquorum none\n"))
	wantExit(t, "quorum none", ExitOK, append(append(append([]string(nil), base...), "--witness-policy", none), pkgFile))
}
