package repodb_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/repodb"
)

// realWorldPkgs is a small repository shaped like Arch's: epochs, a split
// package family sharing a pkgbase, a several-KiB description, many
// dependencies, optdepends with descriptions, provides/conflicts/replaces,
// groups, several licenses, and one package with a detached signature
// (repo-add turns it into %PGPSIG%).
func realWorldPkgs() []testenv.Pkg {
	// Longer than most real descriptions, but not much: repo-add normalises
	// whitespace with a bash extglob whose cost explodes with length and
	// word count (measured: 1.2 KiB in 12 words takes it over 30 s, 100
	// words 9 s). Several-KiB descs are tested with repodbtest databases.
	long := strings.TrimSpace(strings.Repeat("A longer description  ", 10))
	var many []string
	for i := range 50 {
		many = append(many, "libdep"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+">=1."+string(rune('0'+i%10)))
	}
	return []testenv.Pkg{
		{Name: "zlib", Version: "1:1.3.1-2", Arch: "x86_64", Desc: "Compression library implementing the deflate compression method found in gzip and PKZIP",
			License: []string{"Zlib"}, Provides: []string{"libz.so=1-64"}, Depends: []string{"glibc"}, Size: 2048,
			Files: map[string]string{"usr/lib/libz.so.1": "not really a library\n"}},
		{Name: "python-foo", Version: "2.0.1-1", Desc: long, Depends: many, Groups: []string{"python-modules", "bintrans-test"},
			License: []string{"MIT", "Apache-2.0"}, OptDepends: []string{"python-bar: for bar support", "python-baz: for baz"},
			MakeDepends: []string{"python-build", "python-installer"}, CheckDepends: []string{"python-pytest"}},
		{Name: "qt6-base", Base: "qt6-base", Version: "6.7.2-1", Arch: "x86_64", Desc: "A cross-platform application and UI framework", Size: 4096,
			Conflicts: []string{"qt6-base-git"}, Replaces: []string{"qt6-base-old"}},
		{Name: "qt6-base-docs", Base: "qt6-base", Version: "6.7.2-1", Desc: "Documentation for qt6-base"},
		{Name: "qt6-base-examples", Base: "qt6-base", Version: "6.7.2-1", Desc: "Examples for qt6-base"},
		{Name: "epochpkg", Version: "3:0.9+r12.gabcdef-1.1", Desc: "An epoch and a dotted pkgrel"},
		{Name: "signed", Version: "1.0-1", Desc: "Has a detached signature"},
		{Name: "meta", Version: "1-1", Desc: "A metapackage without files", Depends: []string{"zlib", "python-foo"}},
	}
}

type built struct {
	path string
	spec testenv.Pkg
}

// buildRepo builds pkgs into dir and runs repo-add for db (e.g. "core.db.tar.zst").
func buildRepo(t *testing.T, dir, db string, specs []testenv.Pkg) []built {
	t.Helper()
	var out []built
	var paths []string
	for _, s := range specs {
		p := testenv.BuildPackage(t, dir, s)
		if s.Name == "signed" {
			sig := make([]byte, 566)
			r := rand.NewChaCha8([32]byte{1})
			_, _ = io.ReadFull(r, sig)
			sig[0] = 0x89 // a binary OpenPGP packet, as repo-add requires
			if err := os.WriteFile(p+".sig", sig, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, built{path: p, spec: s})
		paths = append(paths, p)
	}
	testenv.RepoAdd(t, filepath.Join(dir, db), paths...)
	return out
}

// expected computes what the desc of b must say.
func expected(t *testing.T, b built) repodb.Package {
	t.Helper()
	data, err := os.ReadFile(b.path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	md := md5.Sum(data)
	s := b.spec
	arch := s.Arch
	if arch == "" {
		arch = "any"
	}
	base := s.Base
	if base == "" {
		base = s.Name
	}
	var isize int64
	for _, c := range s.Files {
		isize += int64(len(c))
	}
	isize += int64(s.Size)
	p := repodb.Package{
		Filename: filepath.Base(b.path), Name: s.Name, Base: base, Version: s.Version,
		Desc: strings.Join(strings.Fields(s.Desc), " "), Groups: s.Groups,
		CSize: int64(len(data)), ISize: isize,
		MD5Sum: hex.EncodeToString(md[:]), SHA256Sum: hex.EncodeToString(sum[:]),
		URL: "https://example.org/" + s.Name, License: s.License, Arch: arch,
		BuildDate: testenv.DefaultBuildDate, Packager: "bintrans tests <tests@bintrans.invalid>",
		Replaces: s.Replaces, Conflicts: s.Conflicts, Provides: s.Provides, Depends: s.Depends,
		OptDepends: s.OptDepends, MakeDepends: s.MakeDepends, CheckDepends: s.CheckDepends,
	}
	if s.Name == "signed" {
		sig, err := os.ReadFile(b.path + ".sig")
		if err != nil {
			t.Fatal(err)
		}
		p.PGPSig = base64.StdEncoding.EncodeToString(sig)
	}
	return p
}

func byName(pkgs []repodb.Package) map[string]repodb.Package {
	m := map[string]repodb.Package{}
	for _, p := range pkgs {
		m[p.Name] = p
	}
	return m
}

// TestRealRepoAdd reads databases written by Debian's repo-add in every
// compression it supports, through the .db/.files symlinks (whose names say
// nothing about the compression), and checks every field against the
// packages.
func TestRealRepoAdd(t *testing.T) {
	for _, tc := range []struct {
		ext, format string
		n           int // packages: all for the common formats, fewer for the rest (repo-add is slow)
	}{
		{".tar.gz", "gzip", 99}, {".tar.zst", "zstd", 99}, {".tar.xz", "xz", 2}, {".tar.bz2", "bzip2", 2}, {".tar", "tar", 2},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dir := t.TempDir()
			specs := realWorldPkgs()
			specs = specs[:min(tc.n, len(specs))]
			pkgs := buildRepo(t, dir, "real.db"+tc.ext, specs)
			for _, kind := range []string{"real.db", "real.files"} {
				head := make([]byte, 512)
				f, err := os.Open(filepath.Join(dir, kind))
				if err != nil {
					t.Fatal(err)
				}
				n, _ := io.ReadFull(f, head)
				f.Close()
				if got, err := repodb.Format(head[:n]); err != nil || got != tc.format {
					t.Fatalf("%s: Format = %q, %v; want %q", kind, got, err, tc.format)
				}
				got, err := repodb.ReadFile(filepath.Join(dir, kind), repodb.DefaultLimits())
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				if len(got) != len(pkgs) {
					t.Fatalf("%s: %d packages, want %d", kind, len(got), len(pkgs))
				}
				m := byName(got)
				for _, b := range pkgs {
					want := expected(t, b)
					if !reflect.DeepEqual(m[b.spec.Name], want) {
						t.Errorf("%s: %s:\n got %+v\nwant %+v", kind, b.spec.Name, m[b.spec.Name], want)
					}
				}
			}
		})
	}
}

// TestRealEmptyDB: repo-add writes an empty archive when the last package
// is removed; that is a valid database with no packages.
func TestRealEmptyDB(t *testing.T) {
	dir := t.TempDir()
	pkgs := buildRepo(t, dir, "empty.db.tar.zst", realWorldPkgs()[:1])
	_ = pkgs
	cmd := testenv.Tool(t, "repo-remove")
	if out, err := runCmd(cmd, "-q", filepath.Join(dir, "empty.db.tar.zst"), "zlib"); err != nil {
		t.Fatalf("repo-remove: %v\n%s", err, out)
	}
	got, err := repodb.ReadFile(filepath.Join(dir, "empty.db"), repodb.Limits{})
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadFile(empty) = %d packages, %v", len(got), err)
	}
}

// TestWalkStopsOnCallbackError: fn's error comes back unchanged.
func TestWalkStopsOnCallbackError(t *testing.T) {
	dir := t.TempDir()
	buildRepo(t, dir, "cb.db.tar.gz", realWorldPkgs()[:3])
	f, err := os.Open(filepath.Join(dir, "cb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := errors.New("stop")
	calls := 0
	err = repodb.Walk(f, repodb.Limits{}, func(repodb.Package) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Walk = %v after %d calls; want the callback's error after 1", err, calls)
	}
}

// TestSourceErrorReported: an I/O error of the caller's reader is reported
// as itself (wrapped in *EntryError), not as a corrupt archive.
func TestSourceErrorReported(t *testing.T) {
	dir := t.TempDir()
	buildRepo(t, dir, "io.db.tar.gz", realWorldPkgs())
	data, err := os.ReadFile(filepath.Join(dir, "io.db"))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	r := io.MultiReader(bytes.NewReader(data[:len(data)/2]), errReader{boom})
	_, err = repodb.Read(r, repodb.Limits{})
	var ee *repodb.EntryError
	if !errors.As(err, &ee) || !errors.Is(err, boom) || errors.Is(err, repodb.ErrCorrupt) {
		t.Fatalf("Read = %v; want *EntryError wrapping the reader's error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestRealCompressorVariants feeds the reader what the real xz and zstd
// tools write with settings other than repo-add's defaults: multi-block
// and multi-threaded xz (block headers with sizes), every xz check type,
// high zstd levels; and refuses a zstd window beyond the bound.
func TestRealCompressorVariants(t *testing.T) {
	var tarball bytes.Buffer
	if err := repodbtest.Generate(&tarball, 120, repodbtest.Options{Compression: "none", Seed: 9}); err != nil {
		t.Fatal(err)
	}
	compress := func(tool string, args ...string) []byte {
		cmd := exec.Command(testenv.Tool(t, tool), args...)
		cmd.Stdin = bytes.NewReader(tarball.Bytes()) // a pipe: the size is unknown to the tool
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v", tool, args, err)
		}
		return out
	}
	for _, tc := range []struct {
		tool string
		args []string
	}{
		{"xz", []string{"-c", "-z", "-T2", "--block-size=65536", "-"}},
		{"xz", []string{"-c", "-z", "--check=sha256", "-"}},
		{"xz", []string{"-c", "-z", "--check=none", "-"}},
		{"xz", []string{"-c", "-z", "-1e", "--lzma2=dict=64MiB", "-"}}, // the largest dictionary accepted
		{"zstd", []string{"-c", "-z", "-q", "-19", "-"}},
		{"zstd", []string{"-c", "-z", "-q", "-T2", "--no-check", "-"}},
		{"gzip", []string{"-c", "-9", "-"}},
		{"bzip2", []string{"-c", "-1"}},
	} {
		if _, err := repodb.Read(bytes.NewReader(compress(tc.tool, tc.args...)), repodb.Limits{}); err != nil {
			t.Errorf("%s %v: %v", tc.tool, tc.args, err)
		}
	}
	_, err := repodb.Read(bytes.NewReader(compress("zstd", "-c", "-z", "-q", "--long=28", "-")), repodb.Limits{})
	var le *repodb.LimitError
	if !errors.As(err, &le) || le.Limit != "zstd window" {
		t.Errorf("zstd --long=28: %v, want a zstd window LimitError", err)
	}
}
