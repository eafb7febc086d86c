package testenv

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Pkg describes a pacman package for BuildPackage. Name and Version
// ([epoch:]pkgver-pkgrel) are required; every other field is optional.
type Pkg struct {
	Name    string
	Version string            // [epoch:]pkgver-pkgrel, e.g. "1:2.3-4"
	Arch    string            // default "any" (installable on every Architecture)
	Desc    string            // pkgdesc; keep it under ~200 bytes if the package goes through RepoAdd (see there)
	Files   map[string]string // relative path (e.g. "usr/share/foo/README") → content
	Depends []string
	// Size adds usr/share/<name>/payload.bin with Size pseudo-random
	// (incompressible) bytes, deterministic from Name, so that packages
	// have realistic compressed sizes.
	Size int

	// Optional .PKGINFO fields; BuildPackage fills the defaults noted.
	Base         string // pkgbase; default Name (set it for split packages)
	URL          string // default "https://example.org/<name>"
	License      []string
	Groups       []string
	Provides     []string
	Conflicts    []string
	Replaces     []string
	OptDepends   []string
	MakeDepends  []string
	CheckDepends []string
	Packager     string // default "bintrans tests <tests@bintrans.invalid>"
	BuildDate    int64  // Unix seconds; default 1700000000 (also every mtime)
}

// DefaultBuildDate is the builddate and file mtime of packages whose Pkg
// leaves BuildDate zero: fixed so that a package is the same bytes on every
// build.
const DefaultBuildDate = 1700000000

// BuildPackage builds a real pacman package in dir and returns its path,
// dir/<name>-<version>-<arch>.pkg.tar.zst. It lays the package out as
// makepkg 6.0.2 does (checked against a makepkg build): a .PKGINFO with the
// same keys in the same order, a gzip'ed .MTREE made by bsdtar's mtree
// writer with makepkg's options, all entries owned by root:root with one
// mtime, the file list sorted bytewise with the metadata files first, tar
// written by bsdtar and compressed by `zstd -c -z -q -`. It has no
// .BUILDINFO (pacman does not need one). The same Pkg gives the same bytes.
// It needs bsdtar, gzip and zstd.
func BuildPackage(t testing.TB, dir string, p Pkg) string {
	t.Helper()
	bsdtar := Tool(t, "bsdtar")
	zstd := Tool(t, "zstd")
	gzip := Tool(t, "gzip")
	p.fillDefaults(t)
	mtime := time.Unix(p.BuildDate, 0)

	root := t.TempDir()
	files, size := p.writeFiles(t, root)
	writeFile(t, root, ".PKGINFO", p.pkginfo(t, size))
	list := entries(t, root, files, mtime)
	owner := []string{"--uid", "0", "--gid", "0", "--uname", "root", "--gname", "root"}
	writeMTree(t, root, list, owner, mtime, bsdtar, gzip)

	full := append([]string{".MTREE"}, list...)
	sort.Strings(full)
	out := filepath.Join(dir, p.Name+"-"+p.Version+"-"+p.Arch+".pkg.tar.zst")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	tarArgs := append([]string{bsdtar, "--no-fflags", "--no-read-sparse", "-cnf", "-"}, owner...)
	tarArgs = append(tarArgs, "--null", "--files-from", "-")
	pipeline(t, root, nulList(full), f, tarArgs, []string{zstd, "-c", "-z", "-q", "-"})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fillDefaults checks Name and Version and fills in what p leaves empty.
func (p *Pkg) fillDefaults(t testing.TB) {
	t.Helper()
	if p.Name == "" || p.Version == "" || strings.Count(p.Version, "-") < 1 {
		t.Fatalf("testenv.BuildPackage: need Name and Version ([epoch:]pkgver-pkgrel), got %q %q", p.Name, p.Version)
	}
	if p.Arch == "" {
		p.Arch = "any"
	}
	if p.Base == "" {
		p.Base = p.Name
	}
	if p.URL == "" {
		p.URL = "https://example.org/" + p.Name
	}
	if p.Packager == "" {
		p.Packager = "bintrans tests <tests@bintrans.invalid>"
	}
	if p.BuildDate == 0 {
		p.BuildDate = DefaultBuildDate
	}
}

// writeFiles writes p's files (and its payload, with Size) under root:
// the package's files by slash-separated path, and their total size.
func (p *Pkg) writeFiles(t testing.TB, root string) (map[string]string, int64) {
	t.Helper()
	files := map[string]string{}
	for name, content := range p.Files {
		clean := filepath.Clean(name)
		if filepath.IsAbs(name) || clean == "." || strings.HasPrefix(clean, "..") || strings.HasPrefix(clean, ".") {
			t.Fatalf("testenv.BuildPackage: bad file path %q", name)
		}
		files[filepath.ToSlash(clean)] = content
	}
	var size int64
	for name, content := range files {
		writeFile(t, root, name, []byte(content))
		size += int64(len(content))
	}
	if p.Size > 0 {
		name := "usr/share/" + p.Name + "/payload.bin"
		writeFile(t, root, name, payload(p.Name, p.Size))
		files[name] = ""
		size += int64(p.Size)
	}
	return files, size
}

// pkginfo is p's .PKGINFO: makepkg's keys in makepkg's order, empty
// values left out.
func (p *Pkg) pkginfo(t testing.TB, size int64) []byte {
	t.Helper()
	var info bytes.Buffer
	kv := func(key string, vals ...string) {
		for _, v := range vals {
			if v == "" {
				continue
			}
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("testenv.BuildPackage: newline in %s %q", key, v)
			}
			fmt.Fprintf(&info, "%s = %s\n", key, v)
		}
	}
	info.WriteString("# Generated by bintrans testenv (layout of makepkg 6.0.2)\n")
	kv("pkgname", p.Name)
	kv("pkgbase", p.Base)
	kv("pkgver", p.Version)
	kv("pkgdesc", strings.Join(strings.Fields(p.Desc), " "))
	kv("url", p.URL)
	kv("builddate", strconv.FormatInt(p.BuildDate, 10))
	kv("packager", p.Packager)
	kv("size", strconv.FormatInt(size, 10))
	kv("arch", p.Arch)
	kv("license", p.License...)
	kv("replaces", p.Replaces...)
	kv("group", p.Groups...)
	kv("conflict", p.Conflicts...)
	kv("provides", p.Provides...)
	kv("depend", p.Depends...)
	kv("optdepend", p.OptDepends...)
	kv("makedepend", p.MakeDepends...)
	kv("checkdepend", p.CheckDepends...)
	return info.Bytes()
}

// entries lists every entry under root, directories included, bytewise
// sorted as makepkg's LC_COLLATE=C glob lists them, and gives each its
// mode (independent of the umask) and mtime.
func entries(t testing.TB, root string, files map[string]string, mtime time.Time) []string {
	t.Helper()
	seen := map[string]bool{".PKGINFO": true}
	for name := range files {
		for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
			seen[d] = true
		}
		seen[name] = true
	}
	list := make([]string, 0, len(seen))
	for name := range seen {
		list = append(list, name)
	}
	sort.Strings(list)
	for _, name := range list {
		path := filepath.Join(root, name)
		mode := os.FileMode(0o644)
		if _, isFile := files[name]; !isFile && name != ".PKGINFO" {
			mode = 0o755 // a directory: independent of the umask
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return list
}

// writeMTree writes root/.MTREE of the entries in list: bsdtar's mtree
// writer with makepkg's options, gzip'ed.
func writeMTree(t testing.TB, root string, list, owner []string, mtime time.Time, bsdtar, gzip string) {
	t.Helper()
	mtreeArgs := append([]string{"-cnf", "-", "--format=mtree",
		"--options=!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link"}, owner...)
	mtreeArgs = append(mtreeArgs, "--null", "--files-from", "-", "--exclude", ".MTREE")
	mtree, err := os.Create(filepath.Join(root, ".MTREE"))
	if err != nil {
		t.Fatal(err)
	}
	pipeline(t, root, nulList(list), mtree,
		append([]string{bsdtar}, mtreeArgs...),
		[]string{gzip, "-c", "-f", "-n"})
	if err := mtree.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(root, ".MTREE"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// RepoAdd adds packages to the database dbPath (e.g. dir/test.db.tar.gz;
// the extension picks the compression) with Debian's repo-add, which also
// writes the .files database and the .db/.files symlinks. It runs with
// LC_ALL=C so that entries are in bytewise order.
//
// repo-add normalises the whitespace of every .PKGINFO value with a bash
// extglob whose cost explodes with the value's length and word count
// (measured with pacman 6.0.2: a 1.2 KiB pkgdesc of 12 words takes over 30 s,
// 100 short words 9 s); real descriptions are short. Databases with
// several-KiB descriptions come from repodb/repodbtest instead.
func RepoAdd(t testing.TB, dbPath string, pkgPaths ...string) {
	t.Helper()
	repoAdd := Tool(t, "repo-add")
	Tool(t, "bsdtar")
	args := append([]string{"--nocolor", "-q", dbPath}, pkgPaths...)
	cmd := exec.Command(repoAdd, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("repo-add %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeFile(t testing.TB, root, name string, b []byte) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// payload returns n pseudo-random bytes determined by name.
func payload(name string, n int) []byte {
	seed := sha256.Sum256([]byte("bintrans testenv payload\x00" + name))
	r := rand.NewChaCha8(seed)
	b := make([]byte, n)
	_, _ = io.ReadFull(r, b)
	return b
}

func nulList(names []string) []byte {
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0)
	}
	return b.Bytes()
}

// pipeline runs first | second in dir with stdin and writes second's output
// to out, failing the test on any error.
func pipeline(t testing.TB, dir string, stdin []byte, out io.Writer, first, second []string) {
	t.Helper()
	c1 := exec.Command(first[0], first[1:]...)
	c1.Dir = dir
	c1.Env = append(os.Environ(), "LANG=C", "LC_ALL=C")
	c1.Stdin = bytes.NewReader(stdin)
	var e1, e2 bytes.Buffer
	c1.Stderr = &e1
	c2 := exec.Command(second[0], second[1:]...)
	c2.Dir = dir
	c2.Stderr = &e2
	c2.Stdout = out
	pr, err := c1.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c2.Stdin = pr
	if err := c1.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Start(); err != nil {
		_ = c1.Process.Kill()
		_ = c1.Wait()
		t.Fatal(err)
	}
	err1 := c1.Wait()
	err2 := c2.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("%s | %s: %v %v\n%s%s", filepath.Base(first[0]), filepath.Base(second[0]), err1, err2, e1.String(), e2.String())
	}
}
