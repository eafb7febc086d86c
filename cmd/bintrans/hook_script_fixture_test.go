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

var updateHookFixtures = flag.Bool("update-hook-fixtures", false, "regenerate the gen/ files of testdata/script/{hook,verify}*.txtar")

// hookFixturePkgs are the packages of the hook and verify scripts' "core"
// repository, by what is wrong with them.
var hookFixturePkgs = []struct{ name, version, arch, status string }{
	{"good", "1.0-1", "any", "ok"},
	{"zlib", "1:1.3.1-2", "x86_64", "ok"},
	{"tampered", "2.0-1", "any", "bad-signature"}, // the db matches the cached file; the .t signs the original
	{"unsigned", "3.0-1", "any", "missing-signature"},
	{"uncached", "4.0-1", "any", "ok"}, // signed and logged, but not in the cache
}

// hookFixtureFiles builds keys, a fake log's bundles (real RFC 6962
// proofs), the cache, `.t` files and the desc files of the sync database
// (the scripts pack it with bsdtar). Every name starts with "gen/".
func hookFixtureFiles(t *testing.T) map[string][]byte {
	log := fakelog.New(t)
	key := newScanKey(t, 7)
	files := map[string][]byte{
		"gen/keys/transparency.pub": key.pk.File(),
		"gen/keys/rekor.pem":        log.KeyPEM,
	}
	var dirs []string
	for _, p := range hookFixturePkgs {
		fn := p.name + "-" + p.version + "-" + p.arch + ".pkg.tar.zst"
		content := []byte("package file " + fn + "\n")
		sha := sha256Of(content)
		switch p.status {
		case "ok":
			s := signAndLog(t, log, key, sha, fn)
			files["gen/sigs/"+fn+".t"], files["gen/sigs/"+fn+".t.bundle"] = s.T, s.Bundle
		case "bad-signature":
			s := signAndLog(t, log, key, sha256Of([]byte("the published "+fn)), fn)
			files["gen/sigs/"+fn+".t"], files["gen/sigs/"+fn+".t.bundle"] = s.T, s.Bundle
		case "missing-signature":
		}
		if p.name != "uncached" {
			files["gen/cache/"+fn] = content
		}
		dir := p.name + "-" + p.version
		dirs = append(dirs, dir)
		md5sum := md5.Sum(content)
		files["gen/dbsrc/core/"+dir+"/desc"] = repodbtest.Desc(repodb.Package{
			Filename: fn, Name: p.name, Base: p.name, Version: p.version, Desc: "test package " + p.name,
			CSize: int64(len(content)), ISize: 4096, MD5Sum: hex.EncodeToString(md5sum[:]), SHA256Sum: sha,
			URL: "https://example.org/" + p.name, License: []string{"MIT"}, Arch: p.arch,
			BuildDate: 1700000000, Packager: "bintrans tests <tests@bintrans.invalid>",
		})
	}
	sort.Strings(dirs)
	files["gen/dbsrc/core.list"] = []byte(strings.Join(dirs, "\n") + "\n")
	return files
}

// TestUpdateHookScriptFixtures rewrites the gen/ files of
// testdata/script/{hook,verify}*.txtar (run with -update-hook-fixtures).
func TestUpdateHookScriptFixtures(t *testing.T) {
	if !*updateHookFixtures {
		t.Skip("run with -update-hook-fixtures to regenerate the hook and verify scripts' fixtures")
	}
	files := hookFixtureFiles(t)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var scripts []string
	for _, g := range []string{"testdata/script/hook*.txtar", "testdata/script/verify*.txtar"} {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		scripts = append(scripts, m...)
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
