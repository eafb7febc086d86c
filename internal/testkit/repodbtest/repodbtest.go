// Package repodbtest writes pacman sync databases the way repo-add does,
// for tests and benchmarks that need large or hand-made databases without
// building thousands of packages.
//
// The tar stream is byte for byte what repo-add 6.0.2 (bsdtar 3.6, run with
// LC_ALL=C and umask 022) writes for the same entries: the same desc layout,
// the same ustar headers (bsdtar's number formatting, root:root, 0755
// directories, 0644 files), the same order (directories bytewise sorted,
// "NAME-VERSION/" before its files) and the same padding to 10 KiB records.
// Only the compressed container differs in its bytes (Go's encoders, not
// GNU gzip's or zstd's), not in its format. The tests of this package prove
// the equality against the real repo-add.
package repodbtest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/bintrans/bintrans/repodb"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Options controls Generate, Write and Packages. The zero value writes a
// gzip'ed .db with repo-add's defaults.
type Options struct {
	// Compression: "gzip" (default), "zstd", "xz" or "none" (plain tar).
	// bzip2 has no Go encoder: build such databases with testenv.RepoAdd.
	Compression string
	// Files writes a .files database: each directory also holds a
	// "files" list after its desc.
	Files bool
	// MTime of every tar entry, Unix seconds; default 1700000000.
	MTime int64
	// Seed varies the synthetic packages of Packages and Generate.
	Seed uint64
	// NoPGPSig leaves %PGPSIG% out of synthetic packages (as pacman 6.1's
	// repo-add does by default); with it false every package carries a
	// 566-byte signature, as Arch's databases written by repo-add 6.0.2 do.
	NoPGPSig bool
}

// DefaultMTime is the entry mtime when Options.MTime is zero.
const DefaultMTime = 1700000000

// Generate writes a database of n synthetic packages: it is
// Write(w, Packages(n, o), o).
func Generate(w io.Writer, n int, o Options) error {
	return Write(w, Packages(n, o), o)
}

// Desc returns the desc file repo-add writes for p: each field in
// repo-add's order as "%FIELD%\n" + one line per value + "\n", a field left
// out when it has no value (for lists: when the first value is empty, as
// repo-add's format_entry tests only $1). %CSIZE%, %ISIZE% and %BUILDDATE%
// are always written: makepkg always sets size and builddate.
func Desc(p repodb.Package) []byte {
	var b bytes.Buffer
	entry := func(name string, vals ...string) {
		if len(vals) == 0 || vals[0] == "" {
			return
		}
		b.WriteString("%" + name + "%\n")
		for _, v := range vals {
			b.WriteString(v)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	entry("FILENAME", p.Filename)
	entry("NAME", p.Name)
	entry("BASE", p.Base)
	entry("VERSION", p.Version)
	entry("DESC", p.Desc)
	entry("GROUPS", p.Groups...)
	entry("CSIZE", num(p.CSize))
	entry("ISIZE", num(p.ISize))
	entry("MD5SUM", p.MD5Sum)
	entry("SHA256SUM", p.SHA256Sum)
	entry("PGPSIG", p.PGPSig)
	entry("URL", p.URL)
	entry("LICENSE", p.License...)
	entry("ARCH", p.Arch)
	entry("BUILDDATE", num(p.BuildDate))
	entry("PACKAGER", p.Packager)
	entry("REPLACES", p.Replaces...)
	entry("CONFLICTS", p.Conflicts...)
	entry("PROVIDES", p.Provides...)
	entry("DEPENDS", p.Depends...)
	entry("OPTDEPENDS", p.OptDepends...)
	entry("MAKEDEPENDS", p.MakeDepends...)
	entry("CHECKDEPENDS", p.CheckDepends...)
	return b.Bytes()
}

// FilesList returns the "files" entry of a .files database for p: repo-add
// writes "%FILES%" and the package's paths; these are synthetic.
func FilesList(p repodb.Package) []byte {
	var b bytes.Buffer
	b.WriteString("%FILES%\n")
	b.WriteString("usr/\nusr/bin/\nusr/bin/" + p.Name + "\nusr/share/\nusr/share/doc/\nusr/share/doc/" + p.Name + "/\nusr/share/doc/" + p.Name + "/README\n")
	return b.Bytes()
}

// Write writes a database of pkgs as repo-add does (see the package doc):
// directories NAME-VERSION sorted bytewise. It fails on two packages with
// the same directory and on names longer than ustar holds (repo-add would
// use pax headers there; Write does not).
func Write(w io.Writer, pkgs []repodb.Package, o Options) error {
	if o.MTime == 0 {
		o.MTime = DefaultMTime
	}
	sorted := make([]repodb.Package, len(pkgs))
	copy(sorted, pkgs)
	sort.Slice(sorted, func(i, j int) bool { return dirOf(sorted[i]) < dirOf(sorted[j]) })
	for i := 1; i < len(sorted); i++ {
		if dirOf(sorted[i]) == dirOf(sorted[i-1]) {
			return fmt.Errorf("repodbtest: two packages in directory %q", dirOf(sorted[i]))
		}
	}

	cw, finish, err := compressor(w, o.Compression)
	if err != nil {
		return err
	}
	tw := &tarWriter{w: cw, mtime: o.MTime}
	for _, p := range sorted {
		dir := dirOf(p)
		if err := tw.header(dir+"/", '5', 0o755, 0); err != nil {
			return err
		}
		if err := tw.file(dir+"/desc", Desc(p)); err != nil {
			return err
		}
		if o.Files {
			if err := tw.file(dir+"/files", FilesList(p)); err != nil {
				return err
			}
		}
	}
	if err := tw.close(); err != nil {
		return err
	}
	return finish()
}

func dirOf(p repodb.Package) string { return p.Name + "-" + p.Version }

func compressor(w io.Writer, kind string) (io.Writer, func() error, error) {
	switch kind {
	case "", "gzip":
		zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err != nil {
			return nil, nil, err
		}
		zw.OS = 3 // Unix, as GNU gzip -n writes (no name, mtime 0)
		return zw, zw.Close, nil
	case "zstd":
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zw, zw.Close, nil
	case "xz":
		zw, err := xz.NewWriter(w)
		if err != nil {
			return nil, nil, err
		}
		return zw, zw.Close, nil
	case "none":
		return w, func() error { return nil }, nil
	case "bzip2":
		return nil, nil, errors.New("repodbtest: no bzip2 encoder in Go; use testenv.RepoAdd with a .db.tar.bz2 name")
	}
	return nil, nil, fmt.Errorf("repodbtest: unknown compression %q", kind)
}

// tarWriter writes ustar headers formatted as bsdtar (libarchive 3.6)
// formats them, and pads the archive to 10240-byte records.
type tarWriter struct {
	w     io.Writer
	mtime int64
	n     int64
	blk   [512]byte
}

func (t *tarWriter) write(b []byte) error {
	k, err := t.w.Write(b)
	t.n += int64(k)
	return err
}

// octal formats v in width-2 digits followed by term (bsdtar: " \x00" for
// mode/uid/gid/dev, " " for size/mtime in a width-12 field).
func octal(dst []byte, v int64, digits int, term string) {
	s := strconv.FormatInt(v, 8)
	s = strings.Repeat("0", digits-len(s)) + s + term
	copy(dst, s)
}

func (t *tarWriter) header(name string, typ byte, mode, size int64) error {
	h := t.blk[:]
	clear(h)
	if len(name) <= 100 {
		copy(h[0:100], name)
	} else {
		i := strings.LastIndexByte(name[:min(len(name), 156)], '/')
		if i <= 0 || len(name)-i-1 > 100 || len(name)-i-1 == 0 {
			return fmt.Errorf("repodbtest: %q needs a pax header (not supported)", name)
		}
		copy(h[345:500], name[:i])
		copy(h[0:100], name[i+1:])
	}
	octal(h[100:108], mode, 6, " \x00")
	octal(h[108:116], 0, 6, " \x00")
	octal(h[116:124], 0, 6, " \x00")
	octal(h[124:136], size, 11, " ")
	octal(h[136:148], t.mtime, 11, " ")
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	copy(h[265:297], "root")
	copy(h[297:329], "root")
	octal(h[329:337], 0, 6, " \x00")
	octal(h[337:345], 0, 6, " \x00")
	copy(h[148:156], "        ")
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	octal(h[148:156], sum, 6, "\x00 ")
	return t.write(h)
}

func (t *tarWriter) file(name string, content []byte) error {
	if err := t.header(name, '0', 0o644, int64(len(content))); err != nil {
		return err
	}
	if err := t.write(content); err != nil {
		return err
	}
	if pad := (512 - len(content)%512) % 512; pad > 0 {
		return t.write(make([]byte, pad))
	}
	return nil
}

func (t *tarWriter) close() error {
	end := 1024 + (10240-(t.n+1024)%10240)%10240
	return t.write(make([]byte, end))
}

// Packages returns n synthetic packages shaped like Arch Linux's extra
// repository, deterministic for (n, o.Seed): about a tenth with an epoch,
// split packages sharing a %BASE%, x86_64 and any, descriptions of a
// typical length with a few of several KiB, 0-60 dependencies, optdepends
// with descriptions, provides/conflicts/replaces, groups, licenses,
// %PGPSIG% unless o.NoPGPSig. Checksums are derived from the name, so they
// match no real file.
func Packages(n int, o Options) []repodb.Package {
	r := rand.New(rand.NewPCG(o.Seed, 0x62696e7472616e73))
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	pkgs := make([]repodb.Package, 0, n)
	for i := 0; len(pkgs) < n; i++ {
		base := pick(prefixes) + "-" + pick(words) + strconv.Itoa(i)
		if r.IntN(6) == 0 {
			base = pick(words) + strconv.Itoa(i)
		}
		version := pick(versions(r))
		if r.IntN(10) == 0 {
			version = strconv.Itoa(1+r.IntN(3)) + ":" + version
		}
		version += "-" + strconv.Itoa(1+r.IntN(3))
		if r.IntN(20) == 0 {
			version += ".1"
		}
		arch := "x86_64"
		if r.IntN(7) == 0 {
			arch = "any"
		}
		split := 1
		if r.IntN(8) == 0 {
			split = 2 + r.IntN(3)
		}
		for s := 0; s < split && len(pkgs) < n; s++ {
			name := base
			if s > 0 {
				name = base + "-" + pick(splitSuffixes) + strconv.Itoa(s)
			}
			pkgs = append(pkgs, synth(r, name, base, version, arch, o))
		}
	}
	return pkgs
}

func synth(r *rand.Rand, name, base, version, arch string, o Options) repodb.Package {
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	filename := name + "-" + version + "-" + arch + ".pkg.tar.zst"
	sha := sha256.Sum256([]byte("repodbtest\x00" + filename))
	md := md5.Sum([]byte("repodbtest\x00" + filename))
	p := repodb.Package{
		Filename:  filename,
		Name:      name,
		Base:      base,
		Version:   version,
		Desc:      sentence(r, 4+r.IntN(10)),
		CSize:     int64(8<<10 + r.IntN(40<<20)),
		MD5Sum:    hex.EncodeToString(md[:]),
		SHA256Sum: hex.EncodeToString(sha[:]),
		URL:       "https://example.org/" + base,
		License:   []string{pick(licenses)},
		Arch:      arch,
		BuildDate: int64(1_600_000_000 + r.IntN(150_000_000)),
		Packager:  pick(packagers),
	}
	p.ISize = p.CSize * int64(2+r.IntN(3))
	if r.IntN(100) == 0 {
		p.Desc = sentence(r, 300+r.IntN(400)) // a few KiB, as some real ones
	}
	if r.IntN(4) == 0 {
		p.License = append(p.License, pick(licenses))
	}
	if r.IntN(10) == 0 {
		p.Groups = []string{pick(groups)}
	}
	if !o.NoPGPSig {
		sig := make([]byte, 566) // an RSA-4096 OpenPGP signature packet
		for i := range sig {
			sig[i] = byte(r.Uint32())
		}
		p.PGPSig = base64.StdEncoding.EncodeToString(sig)
	}
	deps := r.IntN(12)
	if r.IntN(20) == 0 {
		deps = 30 + r.IntN(30)
	}
	for j := 0; j < deps; j++ {
		p.Depends = append(p.Depends, dep(r))
	}
	if r.IntN(3) == 0 {
		for j := 0; j < 1+r.IntN(5); j++ {
			p.OptDepends = append(p.OptDepends, pick(words)+": "+sentence(r, 3))
		}
	}
	for j := 0; j < r.IntN(6); j++ {
		p.MakeDepends = append(p.MakeDepends, dep(r))
	}
	for j := 0; j < r.IntN(3); j++ {
		p.CheckDepends = append(p.CheckDepends, pick(words))
	}
	if r.IntN(6) == 0 {
		p.Provides = []string{"lib" + name + ".so=" + strconv.Itoa(1+r.IntN(9)) + "-64", name + "-git"}
		p.Conflicts = []string{name + "-git"}
	}
	if r.IntN(30) == 0 {
		p.Replaces = []string{name + "-old"}
	}
	return p
}

func dep(r *rand.Rand) string {
	d := words[r.IntN(len(words))]
	switch r.IntN(5) {
	case 0:
		d += ">=" + strconv.Itoa(r.IntN(5)) + "." + strconv.Itoa(r.IntN(20))
	case 1:
		d = "lib" + d + ".so=" + strconv.Itoa(1+r.IntN(9)) + "-64"
	}
	return d
}

func sentence(r *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = words[r.IntN(len(words))]
	}
	s := strings.Join(w, " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

func versions(r *rand.Rand) []string {
	return []string{
		strconv.Itoa(r.IntN(10)) + "." + strconv.Itoa(r.IntN(30)) + "." + strconv.Itoa(r.IntN(10)),
		strconv.Itoa(2000+r.IntN(26)) + "." + strconv.Itoa(1+r.IntN(12)) + "." + strconv.Itoa(1+r.IntN(28)),
		"r" + strconv.Itoa(r.IntN(3000)) + ".g" + strconv.FormatUint(r.Uint64()>>36, 16),
		strconv.Itoa(r.IntN(5)) + "." + strconv.Itoa(r.IntN(100)) + "+" + strconv.Itoa(r.IntN(9)) + "+g" + strconv.FormatUint(r.Uint64()>>40, 16),
		strconv.Itoa(r.IntN(200)),
	}
}

var (
	prefixes      = []string{"python", "perl", "ruby", "haskell", "lib", "kde", "gnome", "xorg", "lua", "rust", "go", "nodejs", "texlive", "qt6", "ttf"}
	splitSuffixes = []string{"docs", "libs", "utils", "devel", "bin", "data"}
	words         = []string{"alpha", "bravo", "core", "delta", "echo", "fox", "glib", "hash", "icu", "json", "kernel", "linux", "media", "net", "openssl", "pango", "qt", "regex", "ssl", "tiff", "utf", "vulkan", "wayland", "xml", "yaml", "zlib", "audio", "video", "crypto", "font", "image", "shell"}
	licenses      = []string{"GPL-2.0-or-later", "GPL-3.0-only", "LGPL-2.1-or-later", "MIT", "BSD-3-Clause", "Apache-2.0", "MPL-2.0", "custom:bintrans-test"}
	groups        = []string{"kde-applications", "gnome", "xorg", "texlive", "base-devel"}
	packagers     = []string{"Alice Example <alice@example.org>", "Bob Builder <bob@example.org>", "Carol Packager <carol@example.org>", "CI Build Bot <ci@example.org>"}
)
