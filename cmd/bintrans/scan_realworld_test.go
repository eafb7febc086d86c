package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
)

// TestScanRealWorldShapedDBs scans databases shaped like Arch's as found in
// the wild, end to end: split packages, epochs, %PGPSIG%, descriptions of
// several KiB and one of 40 KiB, long dependency lists, a .files database
// (zstd) and its .db (xz) given together. Every package is signed and
// logged: the scan must pass and count each package once.
func TestScanRealWorldShapedDBs(t *testing.T) {
	dir := t.TempDir()
	pkgs := repodbtest.Packages(300, repodbtest.Options{Seed: 2026})
	big := pkgs[17]
	big.Desc = strings.Repeat("A description as long as some in the wild, ", 1000)[:40<<10]
	big.Version = "3:9.9.1-2"
	big.Filename = big.Name + "-" + big.Version + "-" + big.Arch + ".pkg.tar.zst"
	for i := range 300 {
		big.Depends = append(big.Depends, "libdep"+strings.Repeat("x", i%9)+string(rune('a'+i%26))+">=1.0")
	}
	pkgs[17] = big
	epochs := 0
	for _, p := range pkgs {
		if strings.Contains(p.Version, ":") {
			epochs++
		}
	}
	if epochs < 10 {
		t.Fatalf("only %d packages with an epoch", epochs)
	}

	log := fakelog.New(t)
	key := newScanKey(t, 5)
	sigs := filepath.Join(dir, "sigs")
	for _, p := range pkgs {
		writeSigned(t, sigs, p.Filename, signAndLog(t, log, key, p.SHA256Sum, p.Filename), true)
	}
	for _, db := range []struct {
		name string
		o    repodbtest.Options
	}{{"extra.files", repodbtest.Options{Files: true, Compression: "zstd"}}, {"extra.db", repodbtest.Options{Compression: "xz"}}} {
		var b bytes.Buffer
		if err := repodbtest.Write(&b, pkgs, db.o); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(dir, db.name), b.Bytes())
	}
	// The generator's output is what repodb reads back, the big one included.
	back, err := repodb.ReadFile(filepath.Join(dir, "extra.files"), repodb.Limits{})
	if err != nil || len(back) != len(pkgs) {
		t.Fatalf("read back: %d packages, %v", len(back), err)
	}
	writeTestFile(t, filepath.Join(dir, "key.pub"), key.pk.File())
	writeTestFile(t, filepath.Join(dir, "rekor.pem"), log.KeyPEM)

	var stdout, stderr bytes.Buffer
	code := run([]string{"scan", "--offline", "--signature-dir", sigs, "--pubkey-path", filepath.Join(dir, "key.pub"),
		"--log-key", filepath.Join(dir, "rekor.pem"), "--json", "-",
		filepath.Join(dir, "extra.files"), filepath.Join(dir, "extra.db")}, strings.NewReader(""), &stdout, &stderr)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var rep ci.JSONReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Summary.Total != len(pkgs) || rep.Summary.OK != len(pkgs) {
		t.Fatalf("summary %+v, want %d ok", rep.Summary, len(pkgs))
	}
	found := false
	for _, p := range rep.Packages {
		if p.Filename == big.Filename {
			found = p.Status == "ok" && p.Version == big.Version
		}
		if p.Repo != "extra" || (p.Arch != "x86_64" && p.Arch != "any") {
			t.Fatalf("package %+v: want repo extra and the package's own arch", p)
		}
	}
	if !found {
		t.Fatalf("the package with the 40 KiB description is not ok in the report")
	}
}
