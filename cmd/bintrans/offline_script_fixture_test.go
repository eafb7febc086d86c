package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

var updateOfflineFixtures = flag.Bool("update-offline-fixtures", false, "regenerate the gen/ files of testdata/script/offline*.txtar")

// offlineFixtureFiles is a log of two honest entries (good at index 0,
// other at 1) whose size-2 checkpoint an earlier online run stored
// (gen/state), and a package evil that a holder of the log key (and of
// the transparency key) logged in a fork of the same size 2: the real
// first entry, then evil. Its bundle is valid on its own (signed
// checkpoint, inclusion proof): only the comparison with another tree
// head of size 2 shows the fork.
func offlineFixtureFiles(t *testing.T) map[string][]byte {
	log, key, files := newFixtureLog(t, 11, "gen/keys/")
	var dirs []string
	add := func(name string, logIt func(prefix, sha, fn string)) {
		fn := name + "-1.0-1-any.pkg.tar.zst"
		if name == "evil" {
			fn = name + "-6.6-1-any.pkg.tar.zst"
		}
		content := []byte("package file " + fn + "\n")
		sha := sha256Of(content)
		logIt("gen/sigs/"+fn, sha, fn)
		files["gen/cache/"+fn] = content
		name, ver, arch, _ := repodb.ParseFilename(fn)
		dir := name + "-" + ver
		dirs = append(dirs, dir)
		files["gen/dbsrc/core/"+dir+"/desc"] = fixtureDesc(repodb.Package{
			Filename: fn, Name: name, Version: ver, Desc: "test package " + name, License: []string{"MIT"}, Arch: arch,
		}, content, sha)
	}
	honest := func(prefix, sha, fn string) { addSigned(t, files, log, key, prefix, sha, fn, true) }
	add("good", honest)
	add("other", honest)

	// The checkpoint an online run stored, in the state file format.
	lk, err := rekorv1.ParseLogKey(log.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := state.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.CheckpointsFor(lk.ID()).Store(context.Background(), log.Checkpoint()); err != nil {
		t.Fatal(err)
	}
	name := "checkpoint-" + lk.ID() + ".json"
	b, err := os.ReadFile(sd.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	files["gen/state/"+name] = b

	add("evil", func(prefix, sha, fn string) {
		tf, err := verify.SignPackage(key.sk, sha, fn)
		if err != nil {
			t.Fatal(err)
		}
		s, err := verify.ParseSignature(tf)
		if err != nil {
			t.Fatal(err)
		}
		size := log.Size()
		log.Fork(size-1, rekorv1.CanonicalBody(s, key.pk, []byte(sha)))
		defer log.SetLie(fakelog.Honest)
		c, err := rekorv1.New(log.URL, nil, rekorv1.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.EntriesByIndex(context.Background(), []int64{size - 1})
		if err != nil || m[size-1] == nil || m[size-1].Proof.TreeSize != size {
			t.Fatalf("the forked entry: %v %+v", err, m)
		}
		bundle, err := rekorv1.MarshalBundle(m[size-1])
		if err != nil {
			t.Fatal(err)
		}
		files[prefix+".t"], files[prefix+".t.bundle"] = tf, bundle
	})
	files["gen/dbsrc/core.list"] = fixtureDBList(dirs)
	return files
}

// TestUpdateOfflineScriptFixtures rewrites the gen/ files of
// testdata/script/offline*.txtar (run with -update-offline-fixtures).
func TestUpdateOfflineScriptFixtures(t *testing.T) {
	if !*updateOfflineFixtures {
		t.Skip("run with -update-offline-fixtures to regenerate the offline scripts' fixtures")
	}
	updateScriptFixtures(t, offlineFixtureFiles(t), []string{"testdata/script/offline*.txtar"}, isGenDir, nil)
}
