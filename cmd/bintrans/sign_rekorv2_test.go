package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/signer"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// Signing into the real Rekor v2 (rekor-tiles `posix` + its tiles served
// statically: scripts/rekor-v2-stack): the repository of real packages
// (repo-add, a GnuPG-signed database) is signed with a fresh transparency
// key, every bundle verifies with the engine's Rekor v2 verifier, and all
// carry one checkpoint.

// v2Args is the sign command line for the local Rekor v2.
func (r *signRepo) v2Args(s testenv.RekorV2Stack, logKey string, extra ...string) []string {
	args := []string{"sign", "--repo-url", r.repoURL, "--repo-name", "core", "--architecture", "x86_64",
		"--signature-dir", r.sigDir, "--pubkey-path", r.pub, "--seckey-path", r.sec, "--keyring", r.keyring,
		"--log-kind", "rekor-v2", "--log-url", s.URL, "--log-read-url", s.ReadURL, "--log-key", logKey,
		"--audit-log", r.auditLog, "--state-dir", r.state}
	if !strings.HasSuffix(logKey, ".vkey") {
		args = append(args, "--log-origin", s.Origin)
	}
	return append(args, extra...)
}

// checkV2Bundles verifies every package's .t and bundle as a client does
// (rekorv2.KindVerifier, the engine's verifier for the kind) and returns
// the distinct checkpoints they carry.
func (r *signRepo) checkV2Bundles(t *testing.T, s testenv.RekorV2Stack) map[string]bool {
	t.Helper()
	pemKey, err := os.ReadFile(s.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := rekorv2.ParseLogKey(pemKey, s.Origin)
	if err != nil {
		t.Fatal(err)
	}
	kv := rekorv2.NewKindVerifier(lv)
	pubText, _ := os.ReadFile(r.pub)
	pub, err := verify.ParsePublicKey(string(pubText))
	if err != nil {
		t.Fatal(err)
	}
	heads := map[string]bool{}
	leaves := map[[32]byte]bool{}
	for _, p := range r.pkgs {
		tb, err := os.ReadFile(filepath.Join(r.sigDir, p.Filename+verify.SignatureSuffix))
		if err != nil {
			t.Fatal(err)
		}
		sig, _, err := verify.VerifySignature(tb, []verify.PublicKey{pub}, p.SHA256Sum, p.Filename)
		if err != nil {
			t.Fatalf("%s.t: %v", p.Filename, err)
		}
		b, err := os.ReadFile(filepath.Join(r.sigDir, p.Filename+verify.BundleSuffix))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(rekorv2.BundleHeader+"\n")) {
			t.Fatalf("%s: not a tlog-proof bundle:\n%s", p.Filename, b)
		}
		pr, err := kv.VerifyBundle(b, sig, []verify.PublicKey{pub}, []byte(p.SHA256Sum))
		if err != nil {
			t.Fatalf("%s: bundle does not verify: %v", p.Filename, err)
		}
		if leaves[pr.LeafHash] {
			t.Fatalf("%s: the same entry as another package", p.Filename)
		}
		leaves[pr.LeafHash] = true
		heads[string(pr.Checkpoint.Text)] = true
		// Another package's hash is refused.
		if _, err := kv.VerifyBundle(b, sig, []verify.PublicKey{pub}, []byte(strings.Repeat("0", 64))); err == nil {
			t.Fatalf("%s: bundle verifies for another sha256", p.Filename)
		}
	}
	return heads
}

// v2AuditRecords reads the audit log and checks that every record names the
// Rekor v2 log.
func (r *signRepo) v2AuditRecords(t *testing.T, s testenv.RekorV2Stack) []audit.Record {
	t.Helper()
	f, err := os.Open(r.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []audit.Record
	if _, err := audit.Scan(f, func(_ int, rec audit.Record) error {
		recs = append(recs, rec)
		return nil
	}); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	for _, rec := range recs {
		if rec.SchemaVersion != audit.SchemaVersionLogKind || rec.LogKind != audit.LogKindRekorV2 || rec.LogOrigin != s.Origin ||
			rec.LogURL != s.URL || len(rec.UUID) != 64 || (rec.ReleaseSig != audit.ReleaseDB) != rec.IsStatement() {
			t.Fatalf("audit record: %+v", rec)
		}
	}
	return recs
}

func TestSignRekorV2(t *testing.T) {
	s := testenv.RekorV2(t)
	mini := testenv.Tool(t, "minisign")
	r := newSignRepo(t, nRealPackages)

	res := signRunIn(t, r.v2Args(s, s.KeyPath, "--json")...)
	if res.code != 0 {
		t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
	}
	sum := r.summary(t, res)
	n := len(r.pkgs)
	// The packages and the database's statement (one more entry), all on
	// one checkpoint.
	if sum.Signed != n || sum.Failed != 0 || sum.AuditRecords != n+1 || sum.Settled != n+1 || sum.BundleCheckpoints != 1 || sum.Checkpoint == nil ||
		sum.StatementsIssued != 1 {
		t.Fatalf("summary: %+v", sum)
	}
	t.Logf("Rekor v2: signed %d packages in %.2fs (%.0f packages/s; settle %.2fs)", sum.Signed, sum.Seconds, float64(sum.Signed)/sum.Seconds, sum.SettleSeconds)
	heads := r.checkV2Bundles(t, s)
	if len(heads) != 1 {
		t.Fatalf("bundles carry %d checkpoints, want 1", len(heads))
	}
	recs := r.v2AuditRecords(t, s)
	if len(recs) != n+1 {
		t.Fatalf("%d audit records, want %d", len(recs), n+1)
	}
	if res := signRunIn(t, "audit", "verify-chain", r.auditLog); res.code != 0 {
		t.Fatalf("audit verify-chain: %+v", res)
	}
	// The .t is the seed's format: minisign verifies it.
	p := r.pkgs[0]
	pkg := filepath.Join(r.dir, "core", "os", "x86_64", p.Filename)
	msg := filepath.Join(t.TempDir(), "msg")
	os.WriteFile(msg, []byte(p.SHA256Sum), 0o644)
	if out, err := exec.Command(mini, "-V", "-p", r.pub, "-m", msg, "-x", filepath.Join(r.sigDir, p.Filename+".t")).CombinedOutput(); err != nil {
		t.Fatalf("minisign -V: %v %s (package %s)", err, out, pkg)
	}
	// The checkpoint is stored per origin.
	st, err := filepath.Glob(filepath.Join(r.state, "sign", "checkpoint-rekor-v2-*.json"))
	if err != nil || len(st) != 1 {
		t.Fatalf("stored checkpoint: %v %v", st, err)
	}

	// A re-run has nothing to do and asks nothing of the log.
	res = signRunIn(t, r.v2Args(s, s.KeyPath, "--json")...)
	if res.code != 0 {
		t.Fatalf("re-run: exit %d\n%s", res.code, res.stderr)
	}
	if sum := r.summary(t, res); sum.Signed != 0 || sum.AlreadyPublished != n || sum.AuditRecords != 0 || sum.Settled != 0 || sum.StatementsCurrent != 1 {
		t.Fatalf("re-run summary: %+v", sum)
	}

	// Re-sign after losing the signature dir (the log keeps the entries: 409,
	// proven from the tiles), with the log key as a verifier key, and
	// --refresh-bundles: the same entries, settled on a newer checkpoint.
	if s.VKey != "" {
		for _, p := range r.pkgs[:5] {
			os.Remove(filepath.Join(r.sigDir, p.Filename+verify.BundleSuffix))
		}
		vkey := filepath.Join(t.TempDir(), "log.vkey")
		os.WriteFile(vkey, []byte(s.VKey+"\n"), 0o644)
		res = signRunIn(t, r.v2Args(s, vkey, "--json", "--refresh-bundles")...)
		if res.code != 0 {
			t.Fatalf("re-sign: exit %d\n%s", res.code, res.stderr)
		}
		sum := r.summary(t, res)
		if sum.Signed != 5 || sum.AlreadyPublished != n-5 || sum.AuditRecords != 0 || sum.Settled != n+1 || sum.BundleCheckpoints != 1 {
			t.Fatalf("re-sign summary: %+v", sum)
		}
		if heads := r.checkV2Bundles(t, s); len(heads) != 1 {
			t.Fatalf("bundles carry %d checkpoints after --refresh-bundles, want 1", len(heads))
		}
		if recs := r.v2AuditRecords(t, s); len(recs) != n+1 {
			t.Fatalf("%d audit records after re-signing, want %d (one per entry)", len(recs), n)
		}
	}
}

// Usage errors: a Rekor v2 needs its own URL, key and origin.
func TestSignRekorV2Usage(t *testing.T) {
	dir := t.TempDir()
	mini := testenv.Tool(t, "minisign")
	pub, sec := filepath.Join(dir, "key.pub"), filepath.Join(dir, "key.sec")
	if out, err := exec.Command(mini, "-W", "-G", "-p", pub, "-s", sec).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v %s", err, out)
	}
	pem := filepath.Join(dir, "log.pem")
	os.WriteFile(pem, []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAS6p3Vg1tZ3BWMBABRq/lV00iOUcwXO/AcGik4eHtkXA=\n-----END PUBLIC KEY-----\n"), 0o644)
	base := []string{"sign", "--repo-url", dir, "--repo-name", "core", "--signature-dir", dir,
		"--pubkey-path", pub, "--seckey-path", sec, "--log-kind", "rekor-v2"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "needs --log-url"},
		{[]string{"--log-url", "http://127.0.0.1:1"}, "needs --log-key"},
		{[]string{"--log-url", "http://127.0.0.1:1", "--log-key", pem}, "origin"},
		{[]string{"--log-url", "http://127.0.0.1:1", "--log-key", pem, "--log-origin", "x", "--log-inflight", "0"}, "--log-inflight 0"},
	} {
		res := signRunIn(t, append(append([]string{}, base...), tc.args...)...)
		if res.code != ExitUsage || !strings.Contains(res.stderr, tc.want) || !strings.Contains(res.stderr, "hint: ") {
			t.Errorf("%v: exit %d, stderr %s (want %q)", tc.args, res.code, res.stderr, tc.want)
		}
	}
}

// Witnessed: the run's settled checkpoint is cosigned by real omniwitness
// processes that follow the local Rekor v2 (C2SP tlog-witness, consistency
// proofs from the log's tiles), and every bundle carries the cosignatures;
// a 2-of-3 policy is met with one witness down (a warning). A later run
// (--refresh-bundles) gets the witnesses to cosign again from the size they
// cosigned last.
func TestSignRekorV2Witnessed(t *testing.T) {
	s := testenv.RekorV2(t)
	if s.VKey == "" { // omniwitness takes the log's key as a verifier key
		if os.Getenv("CI") == "true" {
			t.Fatal("BINTRANS_TEST_REKORV2_VKEY is not set")
		}
		t.Skip("BINTRANS_TEST_REKORV2_VKEY is not set")
	}
	lg := witnesstest.Log{Origin: s.Origin, VKey: s.VKey}
	ws := []*witnesstest.Witness{witnesstest.StartOmni(t, lg), witnesstest.StartOmni(t, lg), witnesstest.StartOmni(t, lg)}
	ws[2].Stop()
	var policy strings.Builder
	for i, w := range ws {
		fmt.Fprintln(&policy, w.PolicyLine(fmt.Sprintf("w%d", i+1)))
	}
	policy.WriteString("group g 2 w1 w2 w3\nquorum g\n")
	r := newSignRepo(t, nRealPackages)
	policyFile := filepath.Join(r.dir, "witness.policy")
	os.WriteFile(policyFile, []byte(policy.String()), 0o644)
	pol, err := witness.Parse([]byte(policy.String()))
	if err != nil {
		t.Fatal(err)
	}
	if pol, err = pol.WithLogs(s.VKey); err != nil {
		t.Fatal(err)
	}

	check := func(res signRun) {
		t.Helper()
		if res.code != 0 {
			t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
		}
		sum := r.summary(t, res)
		if len(sum.Cosignatures) != 2 || len(sum.WitnessErrors) != 1 || !strings.Contains(sum.WitnessErrors[0], "w3") ||
			!strings.Contains(res.stderr, "warning: no cosignature: witness w3") {
			t.Fatalf("cosignatures %v, witness errors %v\n%s", sum.Cosignatures, sum.WitnessErrors, res.stderr)
		}
		heads := r.checkV2Bundles(t, s)
		if len(heads) != 1 {
			t.Fatalf("%d checkpoints", len(heads))
		}
		for h := range heads {
			c, err := pol.VerifyCheckpoint([]byte(h), witness.Options{MaxAge: time.Hour})
			if err != nil || len(c.Cosignatures) != 2 {
				t.Fatalf("the bundles' checkpoint does not meet the 2-of-3 quorum: %v\n%s", err, h)
			}
		}
	}
	res := signRunIn(t, r.v2Args(s, s.KeyPath, "--json", "--witness-policy", policyFile)...)
	check(res)
	first := r.summary(t, res).Checkpoint

	// Someone else logs meanwhile (the shared stack), then a refresh: the
	// witnesses cosign a larger checkpoint, proven consistent with theirs.
	other := newSignRepo(t, nRealPackages)
	if res := signRunIn(t, other.v2Args(s, s.KeyPath, "--json")...); res.code != 0 {
		t.Fatalf("other signer: exit %d\n%s", res.code, res.stderr)
	}
	res = signRunIn(t, r.v2Args(s, s.KeyPath, "--json", "--refresh-bundles", "--witness-policy", policyFile,
		"--witness", ws[0].URL, "--witness", ws[1].URL+"/", "--witness", ws[2].URL)...)
	check(res)
	if second := r.summary(t, res).Checkpoint; second.Size <= first.Size {
		t.Fatalf("refresh settled at size %d, the first run at %d", second.Size, first.Size)
	}

	// A witness not in the policy, or --witness without a policy: usage.
	for _, extra := range [][]string{{"--witness", "http://127.0.0.1:1", "--witness-policy", policyFile}, {"--witness", ws[0].URL}} {
		res := signRunIn(t, r.v2Args(s, s.KeyPath, extra...)...)
		if res.code != ExitUsage || !strings.Contains(res.stderr, "hint: ") {
			t.Errorf("%v: exit %d\n%s", extra, res.code, res.stderr)
		}
	}
}

// monitor --log-kind rekor-v2 lists exactly the key's entries, read from
// the real Rekor v2's tiles and proven against its checkpoint; the next run
// reports only what is new, consistent with the stored checkpoint; an entry
// of the key logged outside bintrans sign is listed too (and audit calls it
// a possible key compromise).
func TestMonitorRekorV2(t *testing.T) {
	s := testenv.RekorV2(t)
	r := newSignRepo(t, nRealPackages)
	if res := signRunIn(t, r.v2Args(s, s.KeyPath, "--json")...); res.code != 0 {
		t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
	}
	state := filepath.Join(t.TempDir(), "monitor")
	args := func(extra ...string) []string {
		return append([]string{"monitor", "--pubkey-path", r.pub, "--log-kind", "rekor-v2", "--log-url", s.URL,
			"--log-read-url", s.ReadURL, "--log-key", s.KeyPath, "--log-origin", s.Origin, "--state-dir", state}, extra...)
	}
	res := monRun(t, args("--json")...)
	if res.code != 0 {
		t.Fatalf("monitor: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	rep := monitorReport(t, res)
	bundles := map[string]string{} // leaf -> sha512(message)
	pemKey, _ := os.ReadFile(s.KeyPath)
	lv, err := rekorv2.ParseLogKey(pemKey, s.Origin)
	if err != nil {
		t.Fatal(err)
	}
	pubText, _ := os.ReadFile(r.pub)
	pub, _ := verify.ParsePublicKey(string(pubText))
	// The packages' entries and the database's statement's.
	signed := map[string]string{} // file → its sha256
	for _, p := range r.pkgs {
		signed[p.Filename] = p.SHA256Sum
	}
	stmts, _ := filepath.Glob(filepath.Join(r.sigDir, "statements", "*.stmt"))
	for _, f := range stmts {
		if _, err := os.Stat(f + verify.SignatureSuffix); err != nil {
			continue // the copy named by the .files database: the .db-named one's proof
		}
		text, _ := os.ReadFile(f)
		signed[filepath.Join("statements", filepath.Base(f))] = freshness.DigestOf(text).SHA256
	}
	if len(signed) != len(r.pkgs)+1 {
		t.Fatalf("statements: %v", stmts)
	}
	for file, sha := range signed {
		b, _ := os.ReadFile(filepath.Join(r.sigDir, file+verify.BundleSuffix))
		v, err := rekorv2.VerifyBundle(b, lv, []ed25519.PublicKey{pub.Ed25519()}, []byte(sha))
		if err != nil {
			t.Fatal(err)
		}
		d := sha512.Sum512([]byte(sha))
		bundles[hex.EncodeToString(v.LeafHash[:])] = hex.EncodeToString(d[:])
	}
	n := len(signed)
	if rep.New != n || rep.Total != n || len(rep.Entries) != n || len(rep.Findings) != 0 || rep.Previous != nil || rep.Current == nil {
		t.Fatalf("first run: new %d total %d entries %d findings %v previous %v", rep.New, rep.Total, len(rep.Entries), rep.Findings, rep.Previous)
	}
	for _, e := range rep.Entries {
		if bundles[e.UUID] == "" || bundles[e.UUID] != e.MessageSHA512 || e.KeyID != pub.KeyID() {
			t.Fatalf("entry %+v is none of the bundles'", e)
		}
	}

	// audit explains every entry: each has its record, each record's
	// package is released (the db), every package has its entry.
	auditArgs := func(extra ...string) []string {
		return append([]string{"audit", "--audit-log", r.auditLog, "--pubkey-path", r.pub, "--log-kind", "rekor-v2", "--log-url", s.URL,
			"--log-read-url", s.ReadURL, "--log-key", s.KeyPath, "--log-origin", s.Origin, "--state-dir", state,
			"--repo-db", filepath.Join(r.dir, "core", "os", "x86_64", "core.db")}, extra...)
	}
	res = signRunIn(t, auditArgs("--json")...)
	if res.code != 0 {
		t.Fatalf("audit: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if ar := auditJSON(t, res); ar.CrossCheck.Matched != n || ar.CrossCheck.Entries != n || ar.Findings != 0 {
		t.Fatalf("audit: %+v", ar.CrossCheck)
	}

	// An entry of the key made outside bintrans sign.
	priv := signKeyOf(t, r.sec)
	rogue := hex.EncodeToString(func() []byte { h := sha512.Sum512_256([]byte(r.dir)); return h[:] }())
	h, err := rekorv2.Sign(priv, []byte(rogue))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := rekorv2.NewReader(s.ReadURL, nil, lv)
	if err != nil {
		t.Fatal(err)
	}
	w, err := rekorv2.NewWriter(s.URL, nil, lv, rekorv2.WithReader(rd))
	if err != nil {
		t.Fatal(err)
	}
	logged, err := w.Add(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	res = monRun(t, args()...)
	if res.code != 0 || !strings.Contains(res.stdout, fmt.Sprintf("1 entry new, %d known", n+1)) || !strings.Contains(res.stdout, "consistent with the checkpoint of the previous run") ||
		!strings.Contains(res.stdout, hex.EncodeToString(logged.LeafHash[:])) {
		t.Fatalf("second run: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	// audit: a possible key compromise, naming the entry.
	res = signRunIn(t, auditArgs()...)
	if res.code != ExitFailed || !strings.Contains(res.stderr, "POSSIBLE KEY COMPROMISE: 1 log entry") ||
		!strings.Contains(res.stdout, hex.EncodeToString(logged.LeafHash[:])) || !strings.Contains(res.stdout, "sha512(message) "+hex.EncodeToString(h.Digest[:])) {
		t.Fatalf("audit after a rogue entry: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}

// signKeyOf is the Ed25519 key of an unencrypted minisign secret key file.
func signKeyOf(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	sk, err := signer.OpenSecretKey(path)
	if err != nil || sk.IsEncrypted() {
		t.Fatalf("secret key: %v", err)
	}
	return ed25519.PrivateKey(append([]byte(nil), sk.SecretKey[:]...))
}
