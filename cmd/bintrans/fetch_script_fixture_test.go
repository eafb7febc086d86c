package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/bintrans/bintrans/internal/fakelog"
)

var updateFetchFixtures = flag.Bool("update-fetch-fixtures", false, "regenerate the gen/ files of testdata/script/fetch*.txtar")

// fetchFixtureFiles builds a mirror directory (packages and a sync db, no
// .sig), keys, and `.t` files with proof bundles from a fake log (real
// RFC 6962 proofs) for the fetch scripts. Every name starts with "gen/".
func fetchFixtureFiles(t *testing.T) map[string][]byte {
	log := fakelog.New(t)
	key := newScanKey(t, 9)
	files := map[string][]byte{
		"gen/keys/transparency.pub": key.pk.File(),
		"gen/keys/rekor.pem":        log.KeyPEM,
		// A sync database as repo-add writes it (gzip'ed tar of desc
		// files), and packages under a database's and a signature's name.
		"gen/mirror/core.db":      gzipTar(t, "good-1.0-1/desc", "%FILENAME%\ngood-1.0-1-any.pkg.tar.zst\n"),
		"gen/mirror/evil.db":      gzipTar(t, ".PKGINFO", "pkgname = evil\n", "usr/bin/backdoor", "#!/bin/sh\n"),
		"gen/mirror/evil.sig":     gzipTar(t, ".PKGINFO", "pkgname = evil\n", "usr/bin/backdoor", "#!/bin/sh\n"),
		"gen/mirror/extra.db.sig": append([]byte{0x88, 12, 4}, "fake sigpk\n"...), // one OpenPGP signature packet (txtar keeps the final newline)
	}
	for _, p := range []struct{ filename, status string }{
		{"good-1.0-1-any.pkg.tar.zst", "ok"},
		{"tampered-2.0-1-any.pkg.tar.zst", "bad-signature"},
		{"unsigned-3.0-1-any.pkg.tar.zst", "missing-signature"},
	} {
		content := []byte(strings.Repeat("package file "+p.filename+"\n", 100))
		files["gen/mirror/"+p.filename] = content
		var s signed
		switch p.status {
		case "ok":
			s = signAndLog(t, log, key, sha256Of(content), p.filename)
		case "bad-signature": // the mirror serves other bytes than were signed
			s = signAndLog(t, log, key, sha256Of([]byte("the published "+p.filename)), p.filename)
		default:
			continue
		}
		files["gen/sigs/"+p.filename+".t"], files["gen/sigs/"+p.filename+".t.bundle"] = s.T, s.Bundle
	}
	return files
}

// gzipTar is a gzip'ed tar of the given regular files (name, content, …).
func gzipTar(t *testing.T, files ...string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for i := 0; i+1 < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[i+1])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUpdateFetchScriptFixtures rewrites the gen/ files of
// testdata/script/fetch*.txtar (run with -update-fetch-fixtures).
func TestUpdateFetchScriptFixtures(t *testing.T) {
	if !*updateFetchFixtures {
		t.Skip("run with -update-fetch-fixtures to regenerate the fetch scripts' fixtures")
	}
	files := fetchFixtureFiles(t)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	scripts, err := filepath.Glob("testdata/script/fetch*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range scripts {
		a, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var kept []txtar.File
		for _, f := range a.Files {
			if !strings.HasPrefix(f.Name, "gen/") {
				kept = append(kept, f)
			}
		}
		for _, n := range names {
			kept = append(kept, txtar.File{Name: n, Data: files[n]})
		}
		a.Files = kept
		if err := os.WriteFile(path, txtar.Format(a), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", path)
	}
}
