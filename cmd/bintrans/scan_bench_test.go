package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
)

// scanBenchFixture is a sync database of n synthetic packages shaped like
// Arch's extra (repodbtest: epochs, split packages, long descriptions,
// %PGPSIG%), with a `.t` and a proof bundle for every package, logged in a
// fake log (real RFC 6962 proofs, each against the tree right after its
// entry, as Rekor answers uploads; so every bundle has its own checkpoint).
// It is cached under $BINTRANS_CACHE or the user cache dir, keyed by n and a
// version, so that only the first run pays for generation.
func scanBenchFixture(b *testing.B, n int) (dir string) {
	b.Helper()
	root := os.Getenv("BINTRANS_CACHE")
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		root = filepath.Join(c, "bintrans")
	}
	dir = filepath.Join(root, fmt.Sprintf("scan-bench-v1-%d", n))
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir
	}
	start := time.Now()
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	log := fakelog.New(b)
	key := newScanKey(b, 1)
	pkgs := repodbtest.Packages(n, repodbtest.Options{Seed: 15000})
	for _, p := range pkgs {
		s := signAndLog(b, log, key, p.SHA256Sum, p.Filename)
		writeSigned(b, filepath.Join(tmp, "sigs"), p.Filename, s, true)
	}
	f, err := os.Create(filepath.Join(tmp, "extra.db"))
	if err != nil {
		b.Fatal(err)
	}
	if err := repodbtest.Write(f, pkgs, repodbtest.Options{}); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	writeTestFile(b, filepath.Join(tmp, "transparency.pub"), key.pk.File())
	writeTestFile(b, filepath.Join(tmp, "rekor.pem"), log.KeyPEM)
	writeTestFile(b, filepath.Join(tmp, "complete"), nil)
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d packages in %s (%v)", n, dir, time.Since(start).Round(time.Millisecond))
	return dir
}

// BenchmarkScan15000Offline scans a 15 000-package database offline, every
// package with a `.t` and a bundle in a local directory, as a separate
// process (this test binary acting as bintrans), and reports its wall time
// and peak RSS, plus its CPU time (user + system): on a busy machine the
// wall time says little, and cpu-s/scan ÷ 2 bounds the wall time on an idle
// 2-core one. The goal on a 2-core machine: ≤ 5 s, ≤ 150 MB.
//
//	go test ./cmd/bintrans -run '^$' -bench BenchmarkScan15000Offline -benchtime 3x
func BenchmarkScan15000Offline(b *testing.B) {
	dir := scanBenchFixture(b, 15000)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "bintrans")
	if err := os.Symlink(exe, bin); err != nil {
		b.Fatal(err)
	}
	var maxRSS int64
	var wall, cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "scan", "--offline",
			"--signature-dir", filepath.Join(dir, "sigs"),
			"--pubkey-path", filepath.Join(dir, "transparency.pub"),
			"--log-key", filepath.Join(dir, "rekor.pem"),
			"--json", filepath.Join(b.TempDir(), "report.json"),
			filepath.Join(dir, "extra.db"))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall += time.Since(start)
		if err != nil {
			b.Fatalf("scan: %v\n%s", err, out)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			maxRSS = max(maxRSS, ru.Maxrss*1024)
			cpu += time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		}
	}
	b.StopTimer()
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/scan")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/scan")
	b.ReportMetric(float64(maxRSS)/(1<<20), "peak-RSS-MB")
}
