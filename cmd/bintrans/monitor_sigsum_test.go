package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/internal/witness"
)

// TestMonitorSigsumTwoLogs: a Sigsum policy of two logs (two in-process
// Sigsum log servers, internal/testkit/sigsumlog), both cosigned by a real
// omniwitness (quorum: it). sign submits the repository to one of them;
// monitor lists the key's leaves of both logs, each with its log, and
// audit cross-checks all of them: a leaf of the key in the other log
// (submitted outside bintrans sign) is a POSSIBLE KEY COMPROMISE, a copy
// of an audited leaf there is information.
func TestMonitorSigsumTwoLogs(t *testing.T) {
	type lg struct {
		priv   ed25519.PrivateKey
		origin string
		vkey   string
		srv    *sigsumlog.Server
	}
	var logs [2]*lg
	var wlogs []witnesstest.Log
	for i := range logs {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		l := &lg{priv: priv, origin: witness.SigsumOrigin(pub)}
		l.vkey, _ = witness.Ed25519VKey(l.origin, pub)
		logs[i] = l
		wlogs = append(wlogs, witnesstest.Log{Origin: l.origin, VKey: l.vkey})
	}
	w := witnesstest.StartOmni(t, wlogs...)
	wline := w.SigsumPolicyLine("w1")
	withURL, err := witness.Parse([]byte(wline + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	policyText := ""
	for _, l := range logs {
		sl, err := sigsumlog.New(l.priv, withURL.Witnesses)
		if err != nil {
			t.Fatal(err)
		}
		// The empty tree head, cosigned (a log publishes one at once).
		if err := sl.Sequence(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		l.srv = sigsumlog.Serve(t, sl, 50*time.Millisecond)
		policyText += l.srv.PolicyLine() + "\n"
	}
	policyText += wline + "\nquorum w1\n"

	r := newSignRepo(t, nRealPackages)
	policyFile := filepath.Join(r.dir, "sigsum.policy")
	writeTestFile(t, policyFile, []byte(policyText))
	res := signRunIn(t, "sign", "--repo-url", r.repoURL, "--repo-name", "core", "--architecture", "x86_64",
		"--signature-dir", r.sigDir, "--pubkey-path", r.pub, "--seckey-path", r.sec, "--keyring", r.keyring,
		"--log-kind", "sigsum", "--sigsum-policy", policyFile, "--audit-log", r.auditLog, "--state-dir", r.state, "--json")
	if res.code != 0 {
		t.Fatalf("sign: exit %d\n%s", res.code, res.stderr)
	}
	// Which log took the repository: the audit records say.
	f, err := os.Open(r.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	// (The run's repository statement is its own submission: it may have
	// gone to the other log.)
	signedIn, pkgsIn := map[string]int{}, map[string]int{}
	if _, err := audit.Scan(f, func(_ int, rec audit.Record) error {
		signedIn[rec.LogOrigin]++
		if rec.Kind == "" {
			pkgsIn[rec.LogOrigin]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	used, other := 0, 1
	if pkgsIn[logs[1].origin] > 0 {
		used, other = 1, 0
	}
	records := signedIn[logs[0].origin] + signedIn[logs[1].origin]
	if pkgsIn[logs[used].origin] != len(r.pkgs) || records < len(r.pkgs) {
		t.Fatalf("audit records by log: %v (packages %v)", signedIn, pkgsIn)
	}

	mstate := filepath.Join(t.TempDir(), "monitor")
	monArgs := []string{"monitor", "--pubkey-path", r.pub, "--log-kind", "sigsum", "--sigsum-policy", policyFile, "--state-dir", mstate}
	res = monRun(t, append(monArgs, "--json")...)
	rep := monitorReport(t, res)
	if res.code != 0 || rep.New != records || len(rep.Logs) != 2 || rep.Logs[used].New != signedIn[logs[used].origin] ||
		rep.Logs[other].New != signedIn[logs[other].origin] || rep.Logs[other].Current == nil {
		t.Fatalf("monitor: exit %d new %d logs %+v\n%s", res.code, rep.New, rep.Logs, res.stderr)
	}
	byLog := map[string]int{}
	for _, e := range rep.Entries {
		byLog[e.Log]++
	}
	if byLog[logs[0].origin] != signedIn[logs[0].origin] || byLog[logs[1].origin] != signedIn[logs[1].origin] {
		t.Fatalf("entries by log %v, audit records by log %v", byLog, signedIn)
	}

	// In the other log: a copy of an audited leaf (the same package's
	// sha256, the same key: the same leaf), and a leaf made outside sign.
	priv := signKeyOf(t, r.sec)
	m, _ := hex.DecodeString(r.pkgs[0].SHA256Sum)
	rogue := sha256.Sum256([]byte(r.dir))
	only := sigsum.Config{Policy: pol0(t, logs[other].srv.PolicyLine()+"\n"+wline+"\nquorum w1\n"), PollDelay: 20 * time.Millisecond, Timeout: 30 * time.Second}
	if _, err := sigsum.Submit(context.Background(), only, priv, [][32]byte{[32]byte(m), rogue}); err != nil {
		t.Fatal(err)
	}
	res = monRun(t, monArgs...)
	if res.code != 0 || !strings.Contains(res.stdout, "2 entries new") || strings.Count(res.stdout, "log "+logs[other].srv.URL) != 3 ||
		!strings.Contains(res.stdout, fmt.Sprintf("log %s: tree size %d", logs[other].srv.URL, signedIn[logs[other].origin]+2)) {
		t.Fatalf("monitor after the other log's leaves: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	res = signRunIn(t, "audit", "--audit-log", r.auditLog, "--pubkey-path", r.pub, "--log-kind", "sigsum", "--sigsum-policy", policyFile,
		"--state-dir", mstate, "--repo-db", filepath.Join(r.dir, "core", "os", "x86_64", "core.db"), "--json")
	var ar auditReport
	if err := json.Unmarshal([]byte(res.stdout), &ar); err != nil {
		t.Fatalf("audit --json: %v\n%s\n%s", err, res.stdout, res.stderr)
	}
	cr := ar.CrossCheck
	if res.code != ExitFailed || !ar.PossibleKeyCompromise || len(cr.Unaudited) != 1 || cr.Unaudited[0].Log != logs[other].origin ||
		len(cr.OtherLogCopies) != 1 || cr.OtherLogCopies[0].Log != logs[other].origin || cr.Matched != records || len(ar.Logs) != 2 {
		t.Fatalf("audit: exit %d unaudited %+v copies %+v matched %d logs %d\n%s", res.code, cr.Unaudited, cr.OtherLogCopies, cr.Matched, len(ar.Logs), res.stderr)
	}
	if !strings.Contains(res.stderr, "POSSIBLE KEY COMPROMISE: 1 log entry") {
		t.Fatalf("audit stderr:\n%s", res.stderr)
	}
}
