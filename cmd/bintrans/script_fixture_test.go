package main

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
)

// What the generators of the txtar scripts' fixtures share
// (fetch_script_fixture_test.go, hook_script_fixture_test.go,
// scan_script_fixture_test.go): files keyed by their txtar name.

// newFixtureLog starts a fake log and derives the transparency key from
// seed; the files start with the key (<dir>transparency.pub) and the
// log's key (<dir>rekor.pem).
func newFixtureLog(t *testing.T, seed byte, dir string) (*fakelog.Log, scanKey, map[string][]byte) {
	log := fakelog.New(t)
	key := newScanKey(t, seed)
	return log, key, map[string][]byte{
		dir + "transparency.pub": key.pk.File(),
		dir + "rekor.pem":        log.KeyPEM,
	}
}

// addSigned signs sha256Hex for comment with k, logs it in l (real
// RFC 6962 proofs) and adds <prefix>.t and, when withBundle,
// <prefix>.t.bundle to files.
func addSigned(t testing.TB, files map[string][]byte, l *fakelog.Log, k scanKey, prefix, sha256Hex, comment string, withBundle bool) signed {
	t.Helper()
	s := signAndLog(t, l, k, sha256Hex, comment)
	files[prefix+".t"] = s.T
	if withBundle {
		files[prefix+".t.bundle"] = s.Bundle
	}
	return s
}

// fixtureDesc is the desc file repo-add writes for a package file of
// content (p's Filename, Name, Version, Arch, Desc, License set by the
// caller; sizes, md5 and the fixed build facts filled in here). sha256Hex
// is the %SHA256SUM% the database claims.
func fixtureDesc(p repodb.Package, content []byte, sha256Hex string) []byte {
	md5sum := md5.Sum(content)
	p.Base = p.Name
	p.CSize, p.ISize = int64(len(content)), 4096
	p.MD5Sum, p.SHA256Sum = hex.EncodeToString(md5sum[:]), sha256Hex
	p.URL = "https://example.org/" + p.Name
	p.BuildDate, p.Packager = 1700000000, "bintrans tests <tests@bintrans.invalid>"
	return repodbtest.Desc(p)
}

// fixtureDBList is the list of a database's package directories, sorted,
// one a line: what the scripts feed bsdtar.
func fixtureDBList(dirs []string) []byte {
	sort.Strings(dirs)
	return []byte(strings.Join(dirs, "\n") + "\n")
}

// updateScriptFixtures replaces, in every script matching one of globs,
// the files generated reports as generated with files (sorted by name).
// A script for which owns returns false is left alone (nil: all are
// owned).
func updateScriptFixtures(t *testing.T, files map[string][]byte, globs []string, generated func(name string) bool, owns func(*txtar.Archive) bool) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var scripts []string
	for _, g := range globs {
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
		if owns != nil && !owns(a) {
			continue
		}
		var kept []txtar.File
		for _, f := range a.Files {
			if !generated(f.Name) {
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

// isGenDir reports whether a txtar file name is under gen/ (the fetch,
// hook and verify scripts' generated files).
func isGenDir(name string) bool { return strings.HasPrefix(name, "gen/") }
