package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/bintrans/bintrans/repodb"
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
	log, key, files := newFixtureLog(t, 1, "keys/")
	other := newScanKey(t, 2)
	files["keys/other.pub"] = other.pk.File()
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
			s := addSigned(t, files, log, key, sigs, sha, fn, p.status == "ok")
			if p.status == "ok" {
				okSigned = s
			}
		case "missing-signature":
		case "bundle-invalid":
			// Its own, valid .t; the bundle of another package.
			addSigned(t, files, log, key, sigs, sha, fn, false)
			files[sigs+".t.bundle"] = okSigned.Bundle
		case "wrong-key":
			addSigned(t, files, log, other, sigs, sha, fn, true)
		case "trusted-comment-mismatch":
			addSigned(t, files, log, key, sigs, sha, "sed-4.8-1-x86_64.pkg.tar.zst", true)
		case "bad-signature":
			// The database claims another sha256 than the one signed (and
			// than the file's: hash-mismatch with --download).
			addSigned(t, files, log, key, sigs, sha, fn, true)
			dbSHA = sha256Of([]byte("tampered " + fn))
		case "malformed-signature":
			files[sigs+".t"] = []byte("untrusted comment: not a signature\nthis is not base64!\n")
		default:
			t.Fatalf("unknown fixture status %q", p.status)
		}
		dir := p.name + "-" + p.version
		lists[p.repo] = append(lists[p.repo], dir)
		files["dbsrc/"+p.repo+"/"+dir+"/desc"] = fixtureDesc(repodb.Package{
			Filename: fn, Name: p.name, Version: p.version, Desc: p.desc,
			License: []string{"GPL-3.0-or-later"}, Arch: p.arch,
		}, content, dbSHA)
		files["mirror/"+p.repo+"/os/x86_64/"+fn] = content
	}
	for repo, dirs := range lists {
		files["dbsrc/"+repo+".list"] = fixtureDBList(dirs)
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
	updateScriptFixtures(t, scanFixtureFiles(t), []string{"testdata/script/scan*.txtar"}, isGenerated, func(a *txtar.Archive) bool {
		for _, f := range a.Files {
			if f.Name == "keys/rekor.pem" {
				return true
			}
		}
		return false
	})
}

func isGenerated(name string) bool {
	for _, p := range generatedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
