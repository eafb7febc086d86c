package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
)

var updateFetchFixtures = flag.Bool("update-fetch-fixtures", false, "regenerate the gen/ files of testdata/script/fetch*.txtar")

// fetchFixtureFiles builds a mirror directory (packages and a sync db, no
// .sig), keys, and `.t` files with proof bundles from a fake log (real
// RFC 6962 proofs) for the fetch scripts. Every name starts with "gen/".
func fetchFixtureFiles(t *testing.T) map[string][]byte {
	log, key, files := newFixtureLog(t, 9, "gen/keys/")
	// A sync database as repo-add writes it (a zstd'ed tar of desc files),
	// a two-faced one (issue 16), packages under a database's and a
	// signature's name, and a signature packet with a zip inside.
	files["gen/mirror/core.db"] = newlineZstdTar(t, "good-1.0-1/desc", tarcorpus.Desc("good", "1.0-1"))
	files["gen/mirror/twofaced.db"] = newlineZstdTar(t, "", string(dbCaseData(t, "pax-path-then-L")))
	files["gen/mirror/zip.sig"] = zipSignature(t)
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

// newlineZstdTar is a zstd'ed tar of the given regular files (name,
// content, …), or of the raw tar given with an empty name, whose last
// byte is a newline: txtar adds a newline to a file that lacks one, and a
// strict database reader refuses data after the compressed stream. The
// zstd frame's checksum is varied through a zero block of padding added
// to the tar (harmless: only zeros follow the end marker).
func newlineZstdTar(t *testing.T, files ...string) []byte {
	var raw []byte
	if files[0] == "" {
		raw = []byte(files[1])
	} else {
		raw = tarcorpus.Cat(tarcorpus.File(files[0], files[1]), tarcorpus.End())
	}
	for i := 0; i < 4096; i++ {
		var buf bytes.Buffer
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(raw)
		zw.Write(make([]byte, 512*i))
		zw.Close()
		if b := buf.Bytes(); b[len(b)-1] == '\n' {
			return b
		}
	}
	t.Fatal("no zstd frame ends in a newline")
	return nil
}

func dbCaseData(t *testing.T, name string) []byte {
	for _, c := range tarcorpus.DBCases() {
		if c.Name == name {
			return c.Data
		}
	}
	t.Fatalf("no tarcorpus db case %q", name)
	return nil
}

// zipSignature is one OpenPGP signature packet whose body, after the
// version byte, is a zip archive holding a .PKGINFO: libarchive (and so
// pacman) reads it as a package. The zip comment ends the file with a
// newline, as txtar wants.
func zipSignature(t *testing.T) []byte {
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, err := zw.Create(".PKGINFO")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "pkgname = evil\npkgver = 1.0-1\n")
	zw.SetComment("evil\n")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	body := append([]byte{4}, z.Bytes()...)
	return append([]byte{0x89, byte(len(body) >> 8), byte(len(body))}, body...)
}

// TestUpdateFetchScriptFixtures rewrites the gen/ files of
// testdata/script/fetch*.txtar (run with -update-fetch-fixtures).
func TestUpdateFetchScriptFixtures(t *testing.T) {
	if !*updateFetchFixtures {
		t.Skip("run with -update-fetch-fixtures to regenerate the fetch scripts' fixtures")
	}
	updateScriptFixtures(t, fetchFixtureFiles(t), []string{"testdata/script/fetch*.txtar"}, isGenDir, nil)
}
