package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/monitor"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/verify"
)

// TestMonitorRekorV2WitnessQuorum: a real Rekor v2 (rekor-tiles posix, a
// private stack) that asks three real omniwitnesses to cosign every
// checkpoint (its --witness-policy-path, 2 of 3). `monitor --log-kind
// rekor-v2 --witness-policy` with the client's 2-of-3 policy tails the log
// and lists the key's entries, and audit with the same flags explains them;
// a policy the served checkpoint cannot meet (a witness the log never
// asks) is refused with exit 3, a clear error and a hint, and nothing is
// stored; so is the log's checkpoint once two witnesses are down (the log
// fails open and publishes it with one cosignature): the next run with a
// met quorum still reports the entries the refused runs did not store.
func TestMonitorRekorV2WitnessQuorum(t *testing.T) {
	lg := testenv.InitRekorV2(t, "witnessed.rekor-v2.test")
	wl := witnesstest.Log{Origin: lg.Origin, VKey: lg.VKey}
	ws := []*witnesstest.Witness{witnesstest.StartOmni(t, wl), witnesstest.StartOmni(t, wl), witnesstest.StartOmni(t, wl)}
	stranger := witnesstest.StartOmni(t, wl)
	dir := t.TempDir()
	var lines strings.Builder
	for i, w := range ws {
		fmt.Fprintln(&lines, w.PolicyLine(fmt.Sprintf("w%d", i+1)))
	}
	logPolicy := filepath.Join(dir, "log-witnesses.policy")
	writeTestFile(t, logPolicy, []byte(lines.String()+"group g 2 w1 w2 w3\nquorum g\n"))
	lg.Start(t, logPolicy)

	r := newLogKindRepo(t, 3)
	v2Logged(t, lg.RekorV2Stack, r)
	clientPolicy := filepath.Join(dir, "client.policy")
	writeTestFile(t, clientPolicy, []byte(lines.String()+"group g 2 w1 w2 w3\nquorum g\n"))
	strictPolicy := filepath.Join(dir, "strict.policy")
	writeTestFile(t, strictPolicy, []byte(lines.String()+stranger.PolicyLine("w4")+"\ngroup g all w1 w4\nquorum g\n"))

	state := filepath.Join(dir, "monitor")
	args := func(cmd string, extra ...string) []string {
		return append([]string{cmd, "--pubkey", r.pk.Base64(), "--log-kind", "rekor-v2", "--log-url", lg.URL,
			"--log-read-url", lg.ReadURL, "--log-key", lg.KeyPath, "--log-origin", lg.Origin, "--state-dir", state}, extra...)
	}

	// The log may publish its first checkpoints before the witnesses
	// answer (rekor-tiles fails open): wait for a cosigned one, read into
	// a throwaway state.
	// It also republishes its checkpoint now and then, cosigned or not: a
	// run that meets the quorum is retried until it does (a refused run
	// stores nothing, so retrying is safe).
	untilOK := func(what string, a []string) string {
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, stdout, stderr := runCLI(a...)
			if code == ExitOK {
				return stdout
			}
			if code != ExitInternal || time.Now().After(deadline) {
				t.Fatalf("%s: exit %d\n%s\nposix log:\n%s", what, code, stderr, lg.Log())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	untilOK("waiting for a cosigned checkpoint", append(args("monitor", "--witness-policy", clientPolicy), "--state-dir", filepath.Join(dir, "wait")))

	// A quorum the log's checkpoint cannot meet: w4 never cosigned.
	_, stderr := wantExit(t, "monitor, quorum missed (w4)", ExitInternal, args("monitor", "--witness-policy", strictPolicy))
	if !strings.Contains(stderr, "bintrans: ") || !strings.Contains(stderr, "not cosigned by the witness quorum") || !strings.Contains(stderr, "w4") ||
		!strings.Contains(stderr, "hint: the log") || !strings.Contains(stderr, "--witness-policy") {
		t.Fatalf("quorum missed:\n%s", stderr)
	}
	if _, err := os.Stat(state); err == nil {
		if m, _ := filepath.Glob(filepath.Join(state, "monitor-rekor-v2-*.json")); len(m) != 0 {
			t.Fatalf("a refused run stored %v", m)
		}
	}

	// A log that gathers no cosignature at all (the shared stack) gets its
	// own hint.
	shared := testenv.RekorV2(t)
	_, stderr = wantExit(t, "monitor, a log without witnesses", ExitInternal, []string{"monitor", "--pubkey", r.pk.Base64(), "--log-kind", "rekor-v2",
		"--log-url", shared.URL, "--log-read-url", shared.ReadURL, "--log-key", shared.KeyPath, "--log-origin", shared.Origin,
		"--state-dir", filepath.Join(dir, "shared"), "--witness-policy", clientPolicy})
	if !strings.Contains(stderr, "hint: the log serves its checkpoint without any witness cosignature") {
		t.Fatalf("no cosignature at all:\n%s", stderr)
	}

	// The 2-of-3 quorum is met: every entry of the key is listed, and the
	// stored checkpoint carries the cosignatures.
	out := untilOK("monitor, quorum met", args("monitor", "--witness-policy", clientPolicy, "--json"))
	var rep monitor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.New != 3 || rep.Total != 3 || len(rep.Findings) != 0 || rep.Current == nil || strings.Count(rep.Current.Note, "— ") < 3 {
		t.Fatalf("quorum met: new %d total %d findings %v current %+v", rep.New, rep.Total, rep.Findings, rep.Current)
	}

	// Two witnesses down: the log publishes its next checkpoint with one
	// cosignature (it fails open); the monitor refuses it and stores nothing.
	ws[1].Stop()
	ws[2].Stop()
	v2Logged(t, lg.RekorV2Stack, r.more(t, 2))
	_, stderr = wantExit(t, "monitor, two witnesses down", ExitInternal, args("monitor", "--witness-policy", clientPolicy))
	if !strings.Contains(stderr, "not cosigned by the witness quorum") || !strings.Contains(stderr, "hint: the log") {
		t.Fatalf("two witnesses down:\n%s", stderr)
	}
	emptyAudit := filepath.Join(dir, "audit.jsonl")
	writeTestFile(t, emptyAudit, nil)
	_, stderr = wantExit(t, "audit, two witnesses down", ExitInternal, args("audit", "--audit-log", emptyAudit, "--witness-policy", clientPolicy))
	if !strings.Contains(stderr, "not cosigned by the witness quorum") {
		t.Fatalf("audit, two witnesses down:\n%s", stderr)
	}
	// Without the policy the same checkpoint is read: the two entries the
	// refused runs saw are still new (nothing was stored).
	out, _ = wantExit(t, "monitor, no policy", ExitOK, args("monitor", "--json"))
	rep = monitor.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.New != 2 || rep.Total != 5 {
		t.Fatalf("after the refused runs: new %d total %d", rep.New, rep.Total)
	}
}

// more is another repository of n new packages signed by r's key.
func (r *logKindRepo) more(t *testing.T, n int) *logKindRepo {
	t.Helper()
	m := &logKindRepo{dir: t.TempDir(), sk: r.sk, pk: r.pk}
	m.pkgs, m.sigs = filepath.Join(m.dir, "pkgs"), filepath.Join(m.dir, "sigs")
	for i := range n {
		name := fmt.Sprintf("more%d-1.0-1-x86_64.pkg.tar.zst", i)
		content := fmt.Appendf(nil, "more package %d of %s\n", i, m.dir)
		sha := memSHA(content)
		tf, err := verify.SignPackage(m.sk, sha, name)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(m.pkgs, name)
		writeTestFile(t, p, content)
		writeTestFile(t, filepath.Join(m.sigs, name+".t"), tf)
		m.files, m.shas = append(m.files, p), append(m.shas, sha)
	}
	return m
}
