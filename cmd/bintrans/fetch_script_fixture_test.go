package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

var updateFetchFixtures = flag.Bool("update-fetch-fixtures", false, "regenerate the gen/ files of testdata/script/fetch*.txtar")

// fetchFixtureFiles builds a mirror directory (packages and a sync db, no
// .sig), keys, and `.t` files with proof bundles from a fake log (real
// RFC 6962 proofs) for the fetch scripts. Every name starts with "gen/".
func fetchFixtureFiles(t *testing.T) map[string][]byte {
	log, key, files := newFixtureLog(t, 9, "gen/keys/")
	// A sync database as repo-add writes it (gzip'ed tar of desc files),
	// and packages under a database's and a signature's name.
	files["gen/mirror/core.db"] = gzipTar(t, "good-1.0-1/desc", "%FILENAME%\ngood-1.0-1-any.pkg.tar.zst\n")
	files["gen/mirror/evil.db"] = gzipTar(t, ".PKGINFO", "pkgname = evil\n", "usr/bin/backdoor", "#!/bin/sh\n")
	files["gen/mirror/evil.sig"] = gzipTar(t, ".PKGINFO", "pkgname = evil\n", "usr/bin/backdoor", "#!/bin/sh\n")
	files["gen/mirror/extra.db.sig"] = append([]byte{0x88, 12, 4}, "fake sigpk\n"...) // one OpenPGP signature packet (txtar keeps the final newline)
	for _, p := range []struct{ filename, status string }{
		{"good-1.0-1-any.pkg.tar.zst", "ok"},
		{"tampered-2.0-1-any.pkg.tar.zst", "bad-signature"},
		{"unsigned-3.0-1-any.pkg.tar.zst", "missing-signature"},
	} {
		content := []byte(strings.Repeat("package file "+p.filename+"\n", 100))
		files["gen/mirror/"+p.filename] = content
		sigs := "gen/sigs/" + p.filename
		switch p.status {
		case "ok":
			addSigned(t, files, log, key, sigs, sha256Of(content), p.filename, true)
		case "bad-signature": // the mirror serves other bytes than were signed
			addSigned(t, files, log, key, sigs, sha256Of([]byte("the published "+p.filename)), p.filename, true)
		}
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
	updateScriptFixtures(t, fetchFixtureFiles(t), []string{"testdata/script/fetch*.txtar"}, isGenDir, nil)
}
