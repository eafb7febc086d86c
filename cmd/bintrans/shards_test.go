package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/monitor"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/testkit/witnesstest"
	"github.com/bintrans/bintrans/verify"
)

// Shard rotation on Rekor v2 (--log-shard), against two real rekor-tiles
// logs: the shared stack (shard A, the older one) and a private stack of
// another origin and key (shard B, the current one).

// shardLine is a --log-shard value.
func shardLine(s testenv.RekorV2Stack, from, to string) string {
	return fmt.Sprintf("%s %s %s %s %s %s", s.Origin, s.URL, s.ReadURL, s.KeyPath, from, to)
}

func day(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.DateOnly) }

// TestShardsVerifyMonitor: packages whose bundles come from two shards
// verify offline and online with both shards configured (no SECURITY ERROR
// for the origin change; each shard's checkpoint proven and stored per
// origin), from the flags and from 'log-shard' lines in a config file;
// pinning only one shard refuses the other's bundles; a shard whose window
// has not begun is refused. monitor tails both shards, each with its own
// state, and names each entry's shard.
func TestShardsVerifyMonitor(t *testing.T) {
	a := testenv.RekorV2(t)
	bp := testenv.InitRekorV2(t, "shard-b.rekor-v2.test")
	bp.Start(t, "")
	b := bp.RekorV2Stack

	r := newLogKindRepo(t, 2)
	v2Logged(t, a, r)
	r2 := r.more(t, 2)
	v2Logged(t, b, r2)
	for i, f := range r2.files { // one repository, bundles from both shards
		base := filepath.Base(f)
		for _, suf := range []string{"", ".t", ".t.bundle"} {
			src, dst := filepath.Join(r2.sigs, base+suf), filepath.Join(r.sigs, base+suf)
			if suf == "" {
				src, dst = f, filepath.Join(r.pkgs, base)
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, dst, data)
		}
		r.files, r.shas = append(r.files, filepath.Join(r.pkgs, base)), append(r.shas, r2.shas[i])
	}

	sa := shardLine(a, "2020-01-01", day(-24*time.Hour)) // ended yesterday: still verifies
	sb := shardLine(b, day(-24*time.Hour), "-")
	state := filepath.Join(r.dir, "state")
	args := func(shards []string, extra ...string) []string {
		a := []string{"verify", "--log-kind", "rekor-v2", "--pubkey", r.pk.Base64(), "--transparency-url", r.sigs, "--state-dir", state}
		for _, s := range shards {
			a = append(a, "--log-shard", s)
		}
		return append(append(a, extra...), r.files...)
	}
	wantExit(t, "both shards, offline", ExitOK, args([]string{sa, sb}, "--offline"))
	out, _ := wantExit(t, "both shards, online", ExitOK, args([]string{sa, sb}, "--json"))
	if strings.Contains(out, "SECURITY") {
		t.Fatalf("online:\n%s", out)
	}
	for _, s := range []testenv.RekorV2Stack{a, b} { // a checkpoint stored per shard
		id := mustLogKey(t, s).KeyID()
		cp, err := os.ReadFile(filepath.Join(state, fmt.Sprintf("checkpoint-%x.json", id[:])))
		if err != nil || !strings.Contains(string(cp), s.Origin) {
			t.Errorf("stored checkpoint of shard %s: %v %s", s.Origin, err, cp)
		}
	}
	wantExit(t, "both shards, online again", ExitOK, args([]string{sa, sb}))

	// A witness policy applies to every shard, each checked as its own log:
	// neither shard's checkpoints are cosigned by the policy's witness.
	w := witnesstest.StartOmni(t, witnesstest.Log{Origin: a.Origin, VKey: mustLogKey(t, a).VerifierKey()})
	wp := filepath.Join(r.dir, "witnesses.policy")
	writeTestFile(t, wp, []byte(w.PolicyLine("w1")+"\nquorum w1\n"))
	out, _ = wantExit(t, "shards, witness policy, offline", ExitFailed, args([]string{sa, sb}, "--offline", "--witness-policy", wp))
	if strings.Count(out, "bundle-invalid") != 4 || !strings.Contains(out, "witness quorum") {
		t.Fatalf("witness policy offline:\n%s", out)
	}
	_, stderr := wantExit(t, "shards, witness policy, online", ExitInternal, args([]string{sa, sb}, "--witness-policy", wp))
	if !strings.Contains(stderr, "witness quorum") || !strings.Contains(stderr, "hint: ") {
		t.Fatalf("witness policy online:\n%s", stderr)
	}

	// The same from the config file.
	conf := filepath.Join(r.dir, "bintrans.conf")
	writeTestFile(t, conf, fmt.Appendf(nil, "log-kind = rekor-v2\nlog-shard = %s\nlog-shard = %s\npubkey = %s\ntransparency-url = %s\nstate-dir = %s\n",
		sa, sb, r.pk.Base64(), r.sigs, state))
	wantExit(t, "config file", ExitOK, append([]string{"verify", "--config", conf}, r.files...))

	// Only shard A pinned: B's bundles are not the pinned log's.
	out, _ = wantExit(t, "shard A only", ExitFailed, args([]string{sa}, "--offline"))
	if strings.Count(out, "bundle-invalid") != 2 {
		t.Fatalf("shard A only:\n%s", out)
	}
	// Shard B's window has not begun: its bundles are refused.
	out, _ = wantExit(t, "shard B not begun", ExitFailed, args([]string{sa, shardLine(b, day(48*time.Hour), "-")}, "--offline"))
	if strings.Count(out, "bundle-invalid") != 2 || !strings.Contains(out, "window begins") {
		t.Fatalf("shard B in the future:\n%s", out)
	}
	// Mixing --log-shard with the single-log flags, a bad line, one origin twice.
	for _, c := range []struct {
		what string
		args []string
		want string
	}{
		{"with --log-url", args([]string{sa}, "--log-url", a.URL), "--log-shard replaces --log-url"},
		{"five fields", args([]string{a.Origin + " " + a.URL + " - " + a.KeyPath + " -"}), "5 fields, want 6"},
		{"same origin twice", args([]string{sa, sa}), "two shards with origin"},
		{"bad date", args([]string{shardLine(b, "tomorrow", "-")}), "NOT_BEFORE"},
		{"not rekor-v2", []string{"verify", "--log-shard", sa, "--pubkey", r.pk.Base64(), r.files[0]}, "--log-shard is for --log-kind rekor-v2"},
		{"monitor sigsum", []string{"monitor", "--log-kind", "sigsum", "--sigsum-policy", wp, "--log-shard", sa, "--pubkey", r.pk.Base64()}, "--log-shard is for --log-kind rekor-v2"},
		{"monitor rekor-v1", []string{"monitor", "--log-shard", sa, "--pubkey", r.pk.Base64()}, "--log-shard is for --log-kind rekor-v2"},
	} {
		_, stderr := wantExit(t, c.what, ExitUsage, c.args)
		if !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "hint: ") {
			t.Errorf("%s: stderr does not say %q with a hint:\n%s", c.what, c.want, stderr)
		}
	}

	// monitor: every shard, each with its state.
	mstate := filepath.Join(r.dir, "monitor")
	margs := []string{"monitor", "--log-kind", "rekor-v2", "--log-shard", sa, "--log-shard", sb, "--pubkey", r.pk.Base64(), "--state-dir", mstate}
	out, _ = wantExit(t, "monitor", ExitOK, append(margs, "--json"))
	var rep monitor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.New != 4 || len(rep.Logs) != 2 || rep.Logs[0].Origin != a.Origin || rep.Logs[1].Origin != b.Origin || rep.Logs[0].New != 2 || rep.Logs[1].New != 2 {
		t.Fatalf("monitor: new %d logs %+v", rep.New, rep.Logs)
	}
	perShard := map[string]int{}
	for _, e := range rep.Entries {
		perShard[e.Log]++
	}
	if perShard[a.Origin] != 2 || perShard[b.Origin] != 2 {
		t.Fatalf("entries by shard: %v", perShard)
	}
	if m, _ := filepath.Glob(filepath.Join(mstate, "monitor-rekor-v2-*.json")); len(m) != 2 {
		t.Fatalf("monitor state files: %v", m)
	}
	out, _ = wantExit(t, "monitor again", ExitOK, margs)
	if !strings.Contains(out, "0 entries new, 4 known") || strings.Count(out, "consistent with the tree head of the previous run") != 2 {
		t.Fatalf("monitor again:\n%s", out)
	}
}

func mustLogKey(t *testing.T, s testenv.RekorV2Stack) *rekorv2.LogVerifier {
	t.Helper()
	b, err := os.ReadFile(s.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := rekorv2.ParseLogKey(b, s.Origin)
	if err != nil {
		t.Fatal(err)
	}
	return lv
}

// TestShardsSign: `sign --log-shard` writes to the shard whose window
// holds now (A), and after the rotation (B current) the packages whose
// bundles are A's are published already: nothing is logged again. audit
// with both shards matches every entry; no current shard is a usage error.
func TestShardsSign(t *testing.T) {
	a := testenv.RekorV2(t)
	bp := testenv.InitRekorV2(t, "shard-b-sign.rekor-v2.test")
	bp.Start(t, "")
	b := bp.RekorV2Stack
	r := newSignRepo(t, nRealPackages)
	sa := shardLine(a, "2020-01-01", day(-24*time.Hour))
	sb := shardLine(b, day(-24*time.Hour), "-")
	base := []string{"sign", "--repo-url", r.repoURL, "--repo-name", "core", "--architecture", "x86_64",
		"--signature-dir", r.sigDir, "--pubkey-path", r.pub, "--seckey-path", r.sec, "--keyring", r.keyring,
		"--log-kind", "rekor-v2", "--audit-log", r.auditLog, "--state-dir", r.state}
	res := signRunIn(t, append(base, "--log-shard", sa, "--log-shard", shardLine(b, day(24*time.Hour), "-"))...)
	if res.code != ExitUsage || !strings.Contains(res.stderr, "no shard's window holds") || !strings.Contains(res.stderr, "hint: ") {
		t.Fatalf("no current shard: exit %d\n%s", res.code, res.stderr)
	}
	// Before the rotation: A is current.
	saCur := shardLine(a, "2020-01-01", day(24*time.Hour))
	sbNext := shardLine(b, day(24*time.Hour), "-")
	res = signRunIn(t, append(base, "--log-shard", saCur, "--log-shard", sbNext, "--json")...)
	if res.code != 0 {
		t.Fatalf("sign into A: exit %d\n%s", res.code, res.stderr)
	}
	if sum := r.summary(t, res); sum.Signed != len(r.pkgs) {
		t.Fatalf("sign into A: %+v", sum)
	}
	// After it: B is current; A's bundles stay valid, nothing is logged
	// again (what is new, here the run's repository statement, goes to B).
	res = signRunIn(t, append(base, "--log-shard", sa, "--log-shard", sb, "--json")...)
	if res.code != 0 {
		t.Fatalf("sign after the rotation: exit %d\n%s", res.code, res.stderr)
	}
	if sum := r.summary(t, res); sum.Signed != 0 || sum.AlreadyPublished != len(r.pkgs) {
		t.Fatalf("sign after the rotation: %+v", sum)
	}
	la := mustLogKey(t, a)
	pubText, _ := os.ReadFile(r.pub)
	pub, _ := verify.ParsePublicKey(string(pubText))
	kv := rekorv2.NewKindVerifier(la)
	for _, p := range r.pkgs[:5] {
		bundle, err := os.ReadFile(filepath.Join(r.sigDir, p.Filename+verify.BundleSuffix))
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := os.ReadFile(filepath.Join(r.sigDir, p.Filename+verify.SignatureSuffix))
		sig, _, err := verify.VerifySignature(tb, []verify.PublicKey{pub}, p.SHA256Sum, p.Filename)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.VerifyBundle(bundle, sig, []verify.PublicKey{pub}, []byte(p.SHA256Sum)); err != nil {
			t.Fatalf("%s: not shard A's bundle any more: %v", p.Filename, err)
		}
	}
	mstate := filepath.Join(t.TempDir(), "monitor")
	res = signRunIn(t, "audit", "--audit-log", r.auditLog, "--pubkey-path", r.pub, "--log-kind", "rekor-v2", "--log-shard", sa, "--log-shard", sb,
		"--state-dir", mstate, "--repo-db", filepath.Join(r.dir, "core", "os", "x86_64", "core.db"), "--json")
	if ar := auditJSON(t, res); res.code != 0 || ar.CrossCheck.Entries < len(r.pkgs) || ar.CrossCheck.Matched != ar.CrossCheck.Entries || ar.Findings != 0 || len(ar.Logs) != 2 ||
		ar.Logs[0].Origin != a.Origin || ar.Logs[0].Total != ar.CrossCheck.Entries || ar.Logs[1].Origin != b.Origin || ar.Logs[1].Total != 0 || ar.Logs[1].Current == nil {
		t.Fatalf("audit: exit %d %+v\n%s", res.code, ar.CrossCheck, res.stderr)
	}
}
