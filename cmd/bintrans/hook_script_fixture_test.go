package main

import (
	"flag"
	"testing"

	"github.com/bintrans/bintrans/repodb"
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
	log, key, files := newFixtureLog(t, 7, "gen/keys/")
	var dirs []string
	for _, p := range hookFixturePkgs {
		fn := p.name + "-" + p.version + "-" + p.arch + ".pkg.tar.zst"
		content := []byte("package file " + fn + "\n")
		sha := sha256Of(content)
		sigs := "gen/sigs/" + fn
		switch p.status {
		case "ok":
			addSigned(t, files, log, key, sigs, sha, fn, true)
		case "bad-signature":
			addSigned(t, files, log, key, sigs, sha256Of([]byte("the published "+fn)), fn, true)
		case "missing-signature":
		}
		if p.name != "uncached" {
			files["gen/cache/"+fn] = content
		}
		dir := p.name + "-" + p.version
		dirs = append(dirs, dir)
		files["gen/dbsrc/core/"+dir+"/desc"] = fixtureDesc(repodb.Package{
			Filename: fn, Name: p.name, Version: p.version, Desc: "test package " + p.name,
			License: []string{"MIT"}, Arch: p.arch,
		}, content, sha)
	}
	files["gen/dbsrc/core.list"] = fixtureDBList(dirs)
	return files
}

// TestUpdateHookScriptFixtures rewrites the gen/ files of
// testdata/script/{hook,verify}*.txtar (run with -update-hook-fixtures).
func TestUpdateHookScriptFixtures(t *testing.T) {
	if !*updateHookFixtures {
		t.Skip("run with -update-hook-fixtures to regenerate the hook and verify scripts' fixtures")
	}
	updateScriptFixtures(t, hookFixtureFiles(t), []string{"testdata/script/hook*.txtar", "testdata/script/verify*.txtar"}, isGenDir, nil)
}
