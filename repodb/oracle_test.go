package repodb_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/laoracle"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/repodb"
)

// alpmView is what libalpm knows of a package, in repodb's terms.
func alpmView(p laoracle.Package) repodb.Package {
	l := func(k string) []string {
		if len(p.Lists[k]) == 0 {
			return nil
		}
		return p.Lists[k]
	}
	return repodb.Package{
		Filename: p.Filename, Name: p.Name, Base: p.Base, Version: p.Version, Desc: p.Desc, Groups: l("groups"),
		CSize: p.CSize, ISize: p.ISize, MD5Sum: p.MD5Sum, SHA256Sum: p.SHA256Sum, PGPSig: p.PGPSig, URL: p.URL,
		License: l("licenses"), Arch: p.Arch, BuildDate: p.BuildDate, Packager: p.Packager, Replaces: l("replaces"),
		Conflicts: l("conflicts"), Provides: l("provides"), Depends: l("depends"), OptDepends: l("optdepends"),
		MakeDepends: l("makedepends"), CheckDepends: l("checkdepends"),
	}
}

// agreeDB checks the differential property on one database: repodb
// refuses it, or libalpm loads it (as the sync database of a repository,
// the way pacman -S does) with exactly the packages repodb returns, every
// field equal, and libarchive (set up as libalpm sets it up) lists the
// same tar entries as the strict reader. It returns whether repodb
// accepted.
func agreeDB(t *testing.T, o *laoracle.Oracle, data []byte, files bool) bool {
	t.Helper()
	pkgs, err := repodb.Read(bytes.NewReader(data), repodb.Limits{})
	if err != nil {
		return false
	}
	db, err := o.LoadDB(data, files)
	if err != nil {
		t.Fatal(err)
	}
	if !db.Accepted {
		t.Fatalf("repodb accepted a database libalpm refuses: %s %v", db.Problem, db.Log)
	}
	if len(db.Log) > 0 {
		t.Errorf("libalpm complained about a database repodb accepted: %v", db.Log)
	}
	mine := map[string]repodb.Package{}
	for _, p := range pkgs {
		mine[p.Name] = p
	}
	theirs := map[string]repodb.Package{}
	for _, p := range db.Packages {
		theirs[p.Name] = alpmView(p)
	}
	if !reflect.DeepEqual(mine, theirs) {
		for _, name := range union(mine, theirs) {
			if !reflect.DeepEqual(mine[name], theirs[name]) {
				t.Errorf("%s:\nrepodb %+v\nlibalpm %+v", name, mine[name], theirs[name])
			}
		}
		t.FailNow()
	}
	la, err := o.List(data)
	if err != nil {
		t.Fatal(err)
	}
	if !la.Accepted {
		t.Fatalf("libarchive refuses what libalpm loaded? %s", la.Problem)
	}
	for _, e := range la.Entries {
		if !strings.Contains(e.Format, "ustar") || e.Hardlink != nil || e.Symlink != nil || (e.Type != laoracle.TypeReg && e.Type != laoracle.TypeDir) {
			t.Errorf("libarchive: %q is a %03o in %q", e.Name, e.Type, e.Format)
		}
		dir, file, nested := strings.Cut(e.Name, "/")
		if !nested || strings.Contains(file, "/") || (e.Type == laoracle.TypeDir) != (file == "") {
			t.Errorf("libarchive sees member %q", e.Name)
			continue
		}
		if file == "" {
			continue
		}
		p, ok := mine[splitName(dir)]
		if !ok || p.Name+"-"+p.Version != dir || (file != "desc" && file != "files") {
			t.Errorf("libarchive sees member %q, which is no package's desc or files", e.Name)
		}
	}
	return true
}

// splitName is libalpm's _alpm_splitname: the name is what precedes the
// last two '-'.
func splitName(dir string) string {
	i := strings.LastIndexByte(dir, '-')
	if i < 0 {
		return ""
	}
	j := strings.LastIndexByte(dir[:i], '-')
	if j < 0 {
		return ""
	}
	return dir[:j]
}

func union(a, b map[string]repodb.Package) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TestLibalpmAgreement: every database of the corpus, in every compression
// repo-add writes, and databases written by the real repo-add (every
// compression, .db and .files), through repodb and through libalpm itself:
// what repodb accepts, libalpm loads with the same packages and fields;
// the legitimate ones are accepted; every hostile one (B7, B8, the two-faced
// tar constructs, …) is refused, and the log shows what libalpm would have
// made of it.
func TestLibalpmAgreement(t *testing.T) {
	o := laoracle.Get(t)
	testenv.Tool(t, "bzip2")
	for _, c := range tarcorpus.DBCases() {
		for _, comp := range tarcorpus.Compressions {
			t.Run(c.Name+"/"+comp, func(t *testing.T) {
				data, err := tarcorpus.Compress(c.Data, comp)
				if err != nil {
					t.Fatal(err)
				}
				files := strings.Contains(c.Name, "files")
				accepted := agreeDB(t, o, data, files)
				if accepted != c.Accept {
					_, err := repodb.Read(bytes.NewReader(data), repodb.Limits{})
					t.Fatalf("accepted = %v, want %v (%s): %v", accepted, c.Accept, c.Why, err)
				}
				if accepted || comp != "none" {
					return
				}
				db, err := o.LoadDB(data, files)
				if err != nil {
					t.Fatal(err)
				}
				_, rerr := repodb.Read(bytes.NewReader(data), repodb.Limits{})
				t.Logf("%s\n  repodb: %v\n  libalpm: accepted=%v %s %v", c.Why, rerr, db.Accepted, db.Problem, db.Log)
				for _, p := range db.Packages {
					t.Logf("  libalpm: %s %s %s %s", p.Name, p.Version, p.Filename, p.SHA256Sum)
				}
				if c.Evil != "" {
					// The attack is real: pacman would take this file for foo.
					got := ""
					for _, p := range db.Packages {
						if p.Name == "foo" {
							got = p.Filename
						}
					}
					if !db.Accepted || got != c.Evil {
						t.Errorf("libalpm reads foo's file as %q, want %q: the case does not attack what it says", got, c.Evil)
					}
				}
			})
		}
	}
	t.Run("repodbtest", func(t *testing.T) {
		for _, comp := range []string{"gzip", "zstd", "xz", "none"} {
			for _, files := range []bool{false, true} {
				var b bytes.Buffer
				if err := repodbtest.Generate(&b, 50, repodbtest.Options{Compression: comp, Files: files, Seed: 3}); err != nil {
					t.Fatal(err)
				}
				if !agreeDB(t, o, b.Bytes(), files) {
					t.Errorf("%s files=%v: refused", comp, files)
				}
			}
		}
	})
	if testing.Short() {
		return
	}
	for _, ext := range []string{".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tar"} {
		t.Run("repo-add"+ext, func(t *testing.T) {
			dir := t.TempDir()
			buildRepo(t, dir, "real.db"+ext, realWorldPkgs()[:3])
			for _, kind := range []string{"db", "files"} {
				b, err := os.ReadFile(filepath.Join(dir, "real."+kind))
				if err != nil {
					t.Fatal(err)
				}
				if !agreeDB(t, o, b, kind == "files") {
					t.Errorf("real.%s: refused", kind)
				}
			}
		})
	}
}

// FuzzLibalpm is the open-ended differential test of the database layer:
// for every input (a plain tar whose header checksums are fixed up, so
// that fuzzing explores the content), repodb refuses it or libalpm loads
// the same packages.
func FuzzLibalpm(f *testing.F) {
	for _, c := range tarcorpus.DBCases() {
		f.Add(c.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 256<<10 {
			return
		}
		data = tarcorpus.FixChecksums(data)
		if _, err := repodb.Read(bytes.NewReader(data), fuzzLimits); err != nil {
			return
		}
		agreeDB(t, laoracle.Get(t), data, false)
	})
}
