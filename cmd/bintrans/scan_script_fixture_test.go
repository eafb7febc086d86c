package main

import (
	"crypto/md5"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/bintrans/bintrans/internal/fakelog"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/repodb/repodbtest"
)

var updateScanFixtures = flag.Bool("update-scan-fixtures", false, "regenerate the fixture files of testdata/script/scan*.txtar")

// scanFixturePkg is one package of the scan scripts' repositories, and what
// is wrong with its signature (case = the status scan must report).
type scanFixturePkg struct {
	repo, name, version, arch string
	desc                      string
	status                    string
}

// scanFixturePkgs: "core" holds one package per failure status (and the ok
// ones), "extra" only good packages, "testing" one good and one unsigned.
var scanFixturePkgs = []scanFixturePkg{
	{"core", "acl", "2.3.2-1", "x86_64", "Access control list utilities, libraries and headers", "ok"},
	{"core", "zlib", "1:1.3.1-2", "x86_64", "Compression library implementing the deflate compression method found in gzip and PKZIP", "ok"},
	{"core", "tzdata", "2025b-1", "any", "Sources for time zone and daylight saving time data", "ok"},
	{"core", "expat", "2.7.1-1", "x86_64", "An XML parser library", "missing-signature"},
	{"core", "gzip", "1.13-4", "x86_64", "GNU compression utility", "missing-bundle"},
	{"core", "curl", "8.14.0-1", "x86_64", "command line tool and library for transferring data with URLs", "bundle-invalid"},
	{"core", "glibc", "2.41+r9-1", "x86_64", "GNU C Library", "wrong-key"},
	{"core", "sed", "4.9-2", "x86_64", "GNU stream editor", "trusted-comment-mismatch"},
	{"core", "bash", "5.2.037-1", "x86_64", "The GNU Bourne Again shell", "bad-signature"},
	{"core", "coreutils", "9.7-1", "x86_64", "The basic file, shell and text manipulation utilities of the GNU operating system", "malformed-signature"},
	{"extra", "python", "3.13.3-1", "x86_64", "The Python programming language", "ok"},
	{"extra", "python-pip", "25.1-1", "any", "The PyPA recommended tool for installing Python packages", "ok"},
	{"testing", "linux", "6.15.1-1", "x86_64", "The Linux kernel and modules", "ok"},
	{"testing", "linux-firmware", "20250508-1", "any", "Firmware files for Linux", "missing-signature"},
}

func (p scanFixturePkg) filename() string {
	return p.name + "-" + p.version + "-" + p.arch + ".pkg.tar.zst"
}

// content is the "package file" served in the mirror for --download.
func (p scanFixturePkg) content() []byte { return []byte("package file " + p.filename() + "\n") }

// generatedPrefixes are the txtar file names the generator owns.
var generatedPrefixes = []string{"keys/", "dbsrc/", "mirror/", "sigs/"}

// scanFixtureFiles builds the repositories: desc files (the scripts pack
// them into databases with bsdtar), package files, `.t` files and bundles
// logged in a fake log with real proofs, the keys.
func scanFixtureFiles(t *testing.T) map[string][]byte {
	log := fakelog.New(t)
	key := newScanKey(t, 1)
	other := newScanKey(t, 2)
	files := map[string][]byte{
		"keys/transparency.pub": key.pk.File(),
		"keys/other.pub":        other.pk.File(),
		"keys/rekor.pem":        log.KeyPEM,
	}
	lists := map[string][]string{}
	var okSigned signed
	for _, p := range scanFixturePkgs {
		content := p.content()
		sha := sha256Of(content)
		dbSHA := sha
		fn := p.filename()
		sigs := "sigs/" + fn
		switch p.status {
		case "ok", "missing-bundle":
			s := signAndLog(t, log, key, sha, fn)
			files[sigs+".t"] = s.T
			if p.status == "ok" {
				files[sigs+".t.bundle"] = s.Bundle
				okSigned = s
			}
		case "missing-signature":
		case "bundle-invalid":
			// Its own, valid .t; the bundle of another package.
			s := signAndLog(t, log, key, sha, fn)
			files[sigs+".t"] = s.T
			files[sigs+".t.bundle"] = okSigned.Bundle
		case "wrong-key":
			s := signAndLog(t, log, other, sha, fn)
			files[sigs+".t"], files[sigs+".t.bundle"] = s.T, s.Bundle
		case "trusted-comment-mismatch":
			s := signAndLog(t, log, key, sha, "sed-4.8-1-x86_64.pkg.tar.zst")
			files[sigs+".t"], files[sigs+".t.bundle"] = s.T, s.Bundle
		case "bad-signature":
			// The database claims another sha256 than the one signed (and
			// than the file's: hash-mismatch with --download).
			s := signAndLog(t, log, key, sha, fn)
			files[sigs+".t"], files[sigs+".t.bundle"] = s.T, s.Bundle
			dbSHA = sha256Of([]byte("tampered " + fn))
		case "malformed-signature":
			files[sigs+".t"] = []byte("untrusted comment: not a signature\nthis is not base64!\n")
		default:
			t.Fatalf("unknown fixture status %q", p.status)
		}
		dir := p.name + "-" + p.version
		lists[p.repo] = append(lists[p.repo], dir)
		md5sum := md5.Sum(content)
		files["dbsrc/"+p.repo+"/"+dir+"/desc"] = repodbtest.Desc(repodb.Package{
			Filename: fn, Name: p.name, Base: p.name, Version: p.version, Desc: p.desc,
			CSize: int64(len(content)), ISize: 4096, MD5Sum: hex.EncodeToString(md5sum[:]), SHA256Sum: dbSHA,
			URL: "https://example.org/" + p.name, License: []string{"GPL-3.0-or-later"}, Arch: p.arch,
			BuildDate: 1700000000, Packager: "bintrans tests <tests@bintrans.invalid>",
		})
		files["mirror/"+p.repo+"/os/x86_64/"+fn] = content
	}
	for repo, dirs := range lists {
		sort.Strings(dirs)
		files["dbsrc/"+repo+".list"] = []byte(strings.Join(dirs, "\n") + "\n")
	}
	return files
}

// TestUpdateScanScriptFixtures rewrites the generated files of every
// testdata/script/scan*.txtar that has a keys/rekor.pem section (run with
// -update-scan-fixtures; the scripts themselves are the test).
func TestUpdateScanScriptFixtures(t *testing.T) {
	if !*updateScanFixtures {
		t.Skip("run with -update-scan-fixtures to regenerate the scan scripts' fixtures")
	}
	files := scanFixtureFiles(t)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	scripts, err := filepath.Glob("testdata/script/scan*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range scripts {
		a, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		owned := false
		var kept []txtar.File
		for _, f := range a.Files {
			if f.Name == "keys/rekor.pem" {
				owned = true
			}
			if !isGenerated(f.Name) {
				kept = append(kept, f)
			}
		}
		if !owned {
			continue
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

func isGenerated(name string) bool {
	for _, p := range generatedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
