package repodb_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/repodb"
)

// FuzzParseDesc: ParseDesc never panics, fails only with a *FieldError, and
// what it accepts satisfies the documented guarantees and survives a round
// trip through repo-add's layout.
func FuzzParseDesc(f *testing.F) {
	f.Add(repodbtest.Desc(fullPackage()))
	f.Add([]byte(desc("a", "1:2.3-4", "a-1:2.3-4-x86_64.pkg.tar.zst")))
	for _, p := range repodbtest.Packages(5, repodbtest.Options{Seed: 1}) {
		f.Add(repodbtest.Desc(p))
	}
	f.Add([]byte("%FILENAME%\n"))
	f.Add([]byte("%NAME%\na\n\n%NAME%\nb\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := repodb.ParseDesc(b)
		if err != nil {
			var fe *repodb.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FieldError: %v", err, err)
			}
			return
		}
		checkInvariants(t, p)
		again, err := repodb.ParseDesc(repodbtest.Desc(p))
		if err != nil {
			t.Fatalf("re-parse of repo-add layout: %v", err)
		}
		if !equalPkg(again, p) {
			t.Fatalf("round trip:\n%+v\n%+v", p, again)
		}
	})
}

func checkInvariants(t *testing.T, p repodb.Package) {
	t.Helper()
	if p.Filename == "" || p.Name == "" || p.Version == "" || len(p.SHA256Sum) != 64 {
		t.Fatalf("accepted without a required field: %+v", p)
	}
	if strings.ContainsAny(p.Filename, "/\\") || p.Filename == "." || p.Filename == ".." {
		t.Fatalf("accepted filename %q", p.Filename)
	}
	if strings.ContainsAny(p.Name, "/ \n") || strings.HasPrefix(p.Name, "-") || strings.HasPrefix(p.Name, ".") {
		t.Fatalf("accepted name %q", p.Name)
	}
	if !strings.Contains(p.Version, "-") || strings.ContainsAny(p.Version, "/ ") {
		t.Fatalf("accepted version %q", p.Version)
	}
	if strings.ToLower(p.SHA256Sum) != p.SHA256Sum || p.CSize < 0 || p.ISize < 0 || p.BuildDate < 0 {
		t.Fatalf("accepted %+v", p)
	}
	for _, s := range append([]string{p.Filename, p.Name, p.Base, p.Version, p.Desc, p.URL, p.Arch, p.Packager, p.PGPSig}, p.Depends...) {
		for _, c := range s {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("accepted control character in %q", s)
			}
		}
	}
}

// fuzzLimits keep each execution small.
var fuzzLimits = repodb.Limits{MaxDescSize: 8 << 10, MaxFilesSize: 64 << 10, MaxEntries: 200, MaxTotalSize: 1 << 20}

// FuzzRead: the archive reader, compression sniffing included, never
// panics, fails only with an *EntryError, and accepts only databases whose
// packages are unique and valid.
func FuzzRead(f *testing.F) {
	for _, comp := range []string{"gzip", "zstd", "xz", "none"} {
		for _, files := range []bool{false, true} {
			var b bytes.Buffer
			if err := repodbtest.Generate(&b, 3, repodbtest.Options{Compression: comp, Files: files, Seed: 2, NoPGPSig: true}); err != nil {
				f.Fatal(err)
			}
			f.Add(b.Bytes())
		}
	}
	f.Add(tarOf(f, pkgEnts("a", "1-1", "a.pkg")...))
	f.Add(tarOf(f, dirEnt("a-1-1/"), ent{name: "a-1-1/desc", typ: '2', linkname: "/etc/passwd"}))
	f.Add(gz(f, tarOf(f, cat(pkgEnts("a", "1-1", "a"), pkgEnts("a", "2-1", "b"))...)))
	f.Add(xzWithDict(f, tarOf(f, pkgEnts("a", "1-1", "a.pkg")...), 40))
	f.Add([]byte("BZh9"))
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := repodb.Read(bytes.NewReader(data), fuzzLimits)
		if err != nil {
			var ee *repodb.EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("error %T is not an *EntryError: %v", err, err)
			}
			if pkgs != nil {
				t.Fatal("packages returned with an error")
			}
			return
		}
		names, files := map[string]bool{}, map[string]bool{}
		for _, p := range pkgs {
			checkInvariants(t, p)
			if names[p.Name] || files[p.Filename] {
				t.Fatalf("duplicate accepted: %s %s", p.Name, p.Filename)
			}
			names[p.Name], files[p.Filename] = true, true
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzRead/real-* and
// testdata/fuzz/FuzzParseDesc/real-* from databases written by Debian's
// repo-add (run with
// BINTRANS_WRITE_FUZZ_SEEDS=1); the committed files are then part of every
// `go test` run as regression inputs.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("BINTRANS_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set BINTRANS_WRITE_FUZZ_SEEDS=1 to regenerate the repo-add seed corpus")
	}
	out := filepath.Join("testdata", "fuzz", "FuzzRead")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	all := realWorldPkgs()
	specs := []testenv.Pkg{all[0], all[5]} // zlib (epoch) and epochpkg: small
	// The desc files of the whole real-world set, as repo-add wrote them
	// (repodbtest.Desc is proven byte-identical to repo-add's).
	descDir := filepath.Join("testdata", "fuzz", "FuzzParseDesc")
	if err := os.MkdirAll(descDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	buildRepo(t, dir, "all.db.tar.gz", all)
	pkgs, err := repodb.ReadFile(filepath.Join(dir, "all.db"), repodb.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if err := os.WriteFile(filepath.Join(descDir, "real-"+p.Name), corpusFile(repodbtest.Desc(p)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, ext := range []string{".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tar"} {
		dir := t.TempDir()
		buildRepo(t, dir, "seed.db"+ext, specs)
		for _, kind := range []string{"db", "files"} {
			b, err := os.ReadFile(filepath.Join(dir, "seed."+kind))
			if err != nil {
				t.Fatal(err)
			}
			name := "real-" + kind + strings.ReplaceAll(ext, ".", "-")
			if err := os.WriteFile(filepath.Join(out, name), corpusFile(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// corpusFile encodes b in the go test fuzz v1 format.
func corpusFile(b []byte) []byte {
	return []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b))
}
