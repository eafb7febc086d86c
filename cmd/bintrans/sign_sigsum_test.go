package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// Signing into a Sigsum log: a real Sigsum log API (sigsum-go's server
// package over an in-process tree, internal/testkit/sigsumlog) that pushes
// every tree head to two real sigsum-witness processes and one omniwitness;
// the policy (Sigsum syntax) wants 2 of the 3. The package's sha256 is
// submitted as the Sigsum message (no package is read), and every published
// proof verifies offline with the engine's Sigsum verifier.

func TestSignSigsum(t *testing.T) {
	logPub, logPriv, _ := ed25519.GenerateKey(rand.Reader)
	origin := witness.SigsumOrigin(logPub)
	vkey, _ := witness.Ed25519VKey(origin, logPub)
	ws := []*witnesstest.Witness{
		witnesstest.StartSigsum(t, logPub),
		witnesstest.StartSigsum(t, logPub),
		witnesstest.StartOmni(t, witnesstest.Log{Origin: origin, VKey: vkey}),
	}
	var wl string
	for i, w := range ws {
		wl += w.SigsumPolicyLine(fmt.Sprintf("w%d", i+1)) + "\n"
	}
	withURLs, err := witness.Parse([]byte(wl + "quorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := sigsumlog.New(logPriv, withURLs.Witnesses)
	if err != nil {
		t.Fatal(err)
	}
	srv := sigsumlog.Serve(t, l, 50*time.Millisecond)
	policyText := srv.PolicyLine() + "\n" + wl + "group g 2 w1 w2 w3\nquorum g\n"

	r := newSignRepo(t, nRealPackages)
	policyFile := filepath.Join(r.dir, "sigsum.policy")
	if err := os.WriteFile(policyFile, []byte(policyText), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"sign", "--repo-url", r.repoURL, "--repo-name", "core", "--architecture", "x86_64",
		"--signature-dir", r.sigDir, "--pubkey-path", r.pub, "--seckey-path", r.sec, "--keyring", r.keyring,
		"--log-kind", "sigsum", "--sigsum-policy", policyFile,
		"--audit-log", r.auditLog, "--state-dir", r.state, "--json"}
	res := signRunIn(t, args...)
	if res.code != 0 {
		t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
	}
	sum := r.summary(t, res)
	n := len(r.pkgs)
	if sum.Signed != n || sum.Failed != 0 || sum.AuditRecords != n+1 || sum.StatementsIssued != 1 { // the packages and the statement
		t.Fatalf("summary: %+v", sum)
	}
	t.Logf("Sigsum: signed %d packages in %.2fs (%.0f packages/s), %d tree head(s)", sum.Signed, sum.Seconds, float64(sum.Signed)/sum.Seconds, sum.BundleCheckpoints)

	// Offline, as a client: the policy without URLs, the engine's verifier.
	pol, err := witness.Parse([]byte(stripPolicyURLs(policyText)))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := sigsum.NewKindVerifier(pol, witness.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pubText, _ := os.ReadFile(r.pub)
	pub, err := verify.ParsePublicKey(string(pubText))
	if err != nil {
		t.Fatal(err)
	}
	leaves := map[[32]byte]string{}
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
		pr, err := kv.VerifyBundle(b, sig, []verify.PublicKey{pub}, []byte(p.SHA256Sum))
		if err != nil {
			t.Fatalf("%s: proof does not verify: %v\n%s", p.Filename, err, b)
		}
		if leaves[pr.LeafHash] != "" {
			t.Fatalf("%s: the same leaf as %s", p.Filename, leaves[pr.LeafHash])
		}
		leaves[pr.LeafHash] = p.Filename
		// The log's leaf holds SHA-256 of the package's sha256.
		m, _ := hex.DecodeString(p.SHA256Sum)
		if _, err := sigsum.VerifyProof(b, sha256.Sum256([]byte("another package")), []ed25519.PublicKey{pub.Ed25519()}, pol, witness.Options{}); err == nil {
			t.Fatalf("%s: proof verifies for another package", p.Filename)
		}
		if _, err := sigsum.VerifyProof(b, [32]byte(m), []ed25519.PublicKey{pub.Ed25519()}, pol, witness.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	// Audit records name the Sigsum log.
	f, err := os.Open(r.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nrec := 0
	if _, err := audit.Scan(f, func(_ int, rec audit.Record) error {
		nrec++
		if rec.LogKind != audit.LogKindSigsum || rec.LogOrigin != origin || rec.LogURL != srv.URL || len(rec.UUID) != 64 {
			t.Errorf("audit record: %+v", rec)
		}
		return nil
	}); err != nil || nrec != n+1 {
		t.Fatalf("audit log: %d records, %v", nrec, err)
	}

	// A re-run: everything published, nothing submitted.
	res = signRunIn(t, args...)
	if res.code != 0 {
		t.Fatalf("re-run: exit %d\n%s", res.code, res.stderr)
	}
	if sum := r.summary(t, res); sum.Signed != 0 || sum.AlreadyPublished != n || sum.AuditRecords != 0 {
		t.Fatalf("re-run summary: %+v", sum)
	}
	// monitor lists exactly the key's leaves (checksums of the packages'
	// sha256), audit explains each; a leaf of the key submitted outside
	// bintrans sign is listed and is a possible key compromise.
	mstate := filepath.Join(t.TempDir(), "monitor")
	monArgs := []string{"monitor", "--pubkey-path", r.pub, "--log-kind", "sigsum", "--sigsum-policy", policyFile, "--state-dir", mstate}
	res = monRun(t, append(monArgs, "--json")...)
	if res.code != 0 {
		t.Fatalf("monitor: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	rep := monitorReport(t, res)
	if rep.New != n+1 || rep.Total != n+1 || len(rep.Findings) != 0 {
		t.Fatalf("monitor: new %d total %d findings %v", rep.New, rep.Total, rep.Findings)
	}
	// The packages' leaves and the database statement's.
	shas := []string{}
	for _, p := range r.pkgs {
		shas = append(shas, p.SHA256Sum)
	}
	stmts, _ := filepath.Glob(filepath.Join(r.sigDir, "statements", "*.stmt"))
	for _, f := range stmts {
		if _, err := os.Stat(f + verify.SignatureSuffix); err != nil {
			continue // the copy named by the .files database: the .db-named one's proof
		}
		text, _ := os.ReadFile(f)
		sha := freshness.DigestOf(text).SHA256
		shas = append(shas, sha)
		b, _ := os.ReadFile(f + verify.SignatureSuffix + ".bundle")
		pr, err := sigsum.VerifyProof(b, [32]byte(mustHex(t, sha)), []ed25519.PublicKey{pub.Ed25519()}, pol, witness.Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		leaves[pr.LeafHash] = f
	}
	checksums := map[string]bool{}
	for _, sha := range shas {
		m, _ := hex.DecodeString(sha)
		c := sigsum.Checksum([32]byte(m))
		checksums[hex.EncodeToString(c[:])] = true
	}
	for _, e := range rep.Entries {
		if !checksums[e.SigsumChecksum] || leaves[[32]byte(mustHex(t, e.UUID))] == "" {
			t.Fatalf("monitor entry %+v is none of the packages'", e)
		}
	}
	auditArgs := []string{"audit", "--audit-log", r.auditLog, "--pubkey-path", r.pub, "--log-kind", "sigsum", "--sigsum-policy", policyFile,
		"--state-dir", mstate, "--repo-db", filepath.Join(r.dir, "core", "os", "x86_64", "core.db")}
	res = signRunIn(t, append(auditArgs, "--json")...)
	if ar := auditJSON(t, res); res.code != 0 || ar.CrossCheck.Matched != n+1 || ar.Findings != 0 {
		t.Fatalf("audit: exit %d %+v\n%s", res.code, ar.CrossCheck, res.stderr)
	}
	rogue := sha256.Sum256([]byte(r.dir))
	priv := signKeyOf(t, r.sec)
	if _, err := sigsum.Submit(context.Background(), sigsum.Config{Policy: pol0(t, policyText), PollDelay: 20 * time.Millisecond}, priv, [][32]byte{rogue}); err != nil {
		t.Fatal(err)
	}
	res = signRunIn(t, auditArgs...)
	if res.code != ExitFailed || !strings.Contains(res.stderr, "POSSIBLE KEY COMPROMISE: 1 log entry") {
		t.Fatalf("audit after a rogue leaf: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// Without a policy: a usage error.
	var noPolicy []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--sigsum-policy" {
			i++
			continue
		}
		noPolicy = append(noPolicy, args[i])
	}
	res = signRunIn(t, noPolicy...)
	if res.code != ExitUsage || !strings.Contains(res.stderr, "--sigsum-policy") {
		t.Fatalf("no --sigsum-policy: exit %d %s", res.code, res.stderr)
	}
}

// stripPolicyURLs drops the URL of every log and witness line: what a
// client needs (keys and quorum) and no more.
func stripPolicyURLs(text string) string {
	var out string
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "log":
			line = f[0] + " " + f[1]
		case len(f) == 4 && f[0] == "witness":
			line = f[0] + " " + f[1] + " " + f[2]
		}
		out += line + "\n"
	}
	return out
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("%q is not 32 bytes of hex", s)
	}
	return b
}

func pol0(t *testing.T, text string) *witness.Policy {
	t.Helper()
	p, err := witness.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
