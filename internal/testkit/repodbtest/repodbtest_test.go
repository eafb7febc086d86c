package repodbtest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/repodb"
)

func realRepo(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	specs := []testenv.Pkg{
		{Name: "zlib", Version: "1:1.3.1-2", Arch: "x86_64", Desc: "Compression library", License: []string{"Zlib"},
			Provides: []string{"libz.so=1-64"}, Depends: []string{"glibc"}, Size: 1000},
		{Name: "qt6-base", Version: "6.7.2-1", Desc: "A cross-platform framework", Groups: []string{"qt6"},
			OptDepends: []string{"qt6-tools: for tools"}, Conflicts: []string{"qt5"}, Replaces: []string{"qt6-old"},
			MakeDepends: []string{"cmake"}, CheckDepends: []string{"xvfb"}},
		{Name: "qt6-base-docs", Base: "qt6-base", Version: "6.7.2-1", Desc: "Documentation"},
		{Name: "signed", Version: "2.0-1.1", Desc: "Has a signature"},
		// A directory name longer than 100 bytes for the desc path:
		// bsdtar splits it into the ustar prefix field.
		{Name: "a-package-with-a-rather-long-name-to-exercise-the-ustar-prefix-field", Version: "1:2024.01.15+r1234.gabcdef0-12", Desc: "Long name"},
	}
	var paths []string
	for _, s := range specs {
		p := testenv.BuildPackage(t, dir, s)
		if s.Name == "signed" {
			sig := bytes.Repeat([]byte{0x89, 0x02, 0x33}, 150)
			if err := os.WriteFile(p+".sig", sig, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		paths = append(paths, p)
	}
	testenv.RepoAdd(t, filepath.Join(dir, "real.db.tar.gz"), paths...)
	return dir
}

// TestMatchesRepoAdd compares the generator with one database built by
// Debian's repo-add from real packages.
func TestMatchesRepoAdd(t *testing.T) {
	dir := realRepo(t)
	t.Run("db", func(t *testing.T) { testWriteMatchesRepoAdd(t, dir) })
	t.Run("files", func(t *testing.T) { testWriteFilesMatchesRepoAdd(t, dir) })
	t.Run("desc", func(t *testing.T) { testDescMatchesRepoAdd(t, dir) })
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// maskTimes blanks mtime and checksum of every header block (repo-add's
// entries carry the wall-clock time of the run) and returns the header
// offsets it found.
func maskTimes(t *testing.T, b []byte) []int {
	t.Helper()
	var offs []int
	for off := 0; off+512 <= len(b); {
		h := b[off : off+512]
		if bytes.Equal(h, make([]byte, 512)) {
			break
		}
		size, err := strconv.ParseInt(strings.TrimRight(string(h[124:135]), " \x00"), 8, 64)
		if err != nil {
			t.Fatalf("header at %d: size %q", off, h[124:136])
		}
		copy(h[136:156], bytes.Repeat([]byte{'#'}, 20))
		offs = append(offs, off)
		off += 512 + int((size+511)/512*512)
	}
	return offs
}

// testWriteMatchesRepoAdd proves the generator's claim: for the packages
// of a database written by Debian's repo-add, Write produces the identical
// tar stream, every header field and every desc byte, apart from the
// entries' mtimes (the time repo-add ran).
func testWriteMatchesRepoAdd(t *testing.T, dir string) {
	pkgs, err := repodb.ReadFile(filepath.Join(dir, "real.db"), repodb.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	real := gunzip(t, filepath.Join(dir, "real.db.tar.gz"))

	var gen bytes.Buffer
	if err := repodbtest.Write(&gen, pkgs, repodbtest.Options{Compression: "none"}); err != nil {
		t.Fatal(err)
	}
	got := gen.Bytes()
	if len(got) != len(real) {
		t.Fatalf("generated %d bytes, repo-add %d", len(got), len(real))
	}
	realOffs := maskTimes(t, real)
	genOffs := maskTimes(t, got)
	if len(realOffs) != 2*len(pkgs) || len(genOffs) != len(realOffs) {
		t.Fatalf("headers: repo-add %d, generated %d, want %d", len(realOffs), len(genOffs), 2*len(pkgs))
	}
	for i := 0; i < len(real); i += 512 {
		if !bytes.Equal(real[i:i+512], got[i:i+512]) {
			t.Fatalf("block at %d differs:\nrepo-add  %q\ngenerated %q", i, real[i:i+512], got[i:i+512])
		}
	}

	// The generated headers carry a valid checksum (archive/tar checks it)
	// and the desc bytes are repo-add's.
	gen.Reset()
	if err := repodbtest.Write(&gen, pkgs, repodbtest.Options{Compression: "none"}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&gen)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.ModTime.Unix() != repodbtest.DefaultMTime || h.Uname != "root" {
			t.Errorf("%s: mtime %v uname %q", h.Name, h.ModTime, h.Uname)
		}
		n++
	}
	if n != 2*len(pkgs) {
		t.Fatalf("%d entries", n)
	}
}

// testWriteFilesMatchesRepoAdd: a generated .files database parses to the
// same packages as repo-add's and has the same entry names (the order of
// desc and files within a directory is readdir order in repo-add).
func testWriteFilesMatchesRepoAdd(t *testing.T, dir string) {
	realPkgs, err := repodb.ReadFile(filepath.Join(dir, "real.files"), repodb.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var gen bytes.Buffer
	if err := repodbtest.Write(&gen, realPkgs, repodbtest.Options{Files: true}); err != nil {
		t.Fatal(err)
	}
	genBytes := gen.Bytes()
	genPkgs, err := repodb.Read(bytes.NewReader(genBytes), repodb.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(genPkgs) != len(realPkgs) {
		t.Fatalf("%d packages, want %d", len(genPkgs), len(realPkgs))
	}
	for i := range genPkgs {
		if !bytes.Equal(repodbtest.Desc(genPkgs[i]), repodbtest.Desc(realPkgs[i])) {
			t.Errorf("package %d differs", i)
		}
	}
	names := func(r io.Reader) []string {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		var out []string
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, h.Name)
		}
		sort.Strings(out)
		return out
	}
	f, err := os.Open(filepath.Join(dir, "real.files"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if a, b := names(f), names(bytes.NewReader(genBytes)); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("entries differ:\nrepo-add  %q\ngenerated %q", a, b)
	}
}

// testDescMatchesRepoAdd: Desc reproduces each desc file byte for byte.
func testDescMatchesRepoAdd(t *testing.T, dir string) {
	f, err := os.Open(filepath.Join(dir, "real.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, "/desc") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		p, err := repodb.ParseDesc(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := repodbtest.Desc(p); !bytes.Equal(got, b) {
			t.Errorf("%s:\nrepo-add  %q\ngenerated %q", h.Name, b, got)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("%d desc files, want 5", n)
	}
}

func TestPackagesDeterministic(t *testing.T) {
	a := repodbtest.Packages(500, repodbtest.Options{Seed: 3})
	b := repodbtest.Packages(500, repodbtest.Options{Seed: 3})
	var x, y bytes.Buffer
	if err := repodbtest.Write(&x, a, repodbtest.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := repodbtest.Write(&y, b, repodbtest.Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x.Bytes(), y.Bytes()) {
		t.Fatal("same seed, different database")
	}
	epochs, split, big := 0, 0, 0
	for _, p := range a {
		if strings.Contains(p.Version, ":") {
			epochs++
		}
		if p.Base != p.Name {
			split++
		}
		if len(p.Desc) > 1000 {
			big++
		}
	}
	if epochs == 0 || split == 0 {
		t.Fatalf("not real-world shaped: %d epochs, %d split packages", epochs, split)
	}
	t.Logf("500 packages: %d epochs, %d split, %d descs over 1000 bytes, %d bytes gzip'ed", epochs, split, big, x.Len())
}
