package pacman

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bintrans/bintrans/internal/decompress"
	"github.com/bintrans/bintrans/internal/ustar"
)

// Bounds of ReadPkgInfo. makepkg writes .BUILDINFO, .MTREE and .PKGINFO
// first (C-sorted glob order); .MTREE of a large package is a few MiB.
const (
	pkgInfoMaxEntries = 16
	pkgInfoMaxSize    = 1 << 20
	pkgInfoMaxStream  = 64 << 20
	pkgInfoZstdWindow = 32 << 20
	pkgInfoXZDict     = 64 << 20
)

// PkgInfo is what ReadPkgInfo takes from a package's .PKGINFO.
type PkgInfo struct {
	Name    string // pkgname
	Version string // pkgver ([epoch:]pkgver-pkgrel)
	Arch    string
}

// ReadPkgInfo reads the pkgname, pkgver and arch of the package file r:
// a tar (plain, gzip, zstd, xz or bzip2) whose .PKGINFO comes among the
// first metadata entries, as makepkg writes it. It is bounded in entries,
// sizes and decompressed bytes.
//
// The hook uses it only to learn which target name a `pacman -U` file
// stands for, and that only relaxes a requirement: a name that a -U file
// stands for needs no cached sync candidate. It never removes a check: the
// file is verified as itself, and every cached sync candidate of every
// target name is verified too (BuildPlan). It reads with the strict tar
// reader (internal/ustar), and .PKGINFO as libalpm does (parsePkgInfo);
// anything that could be read two ways is an error, and the file then
// stands for no name.
func ReadPkgInfo(r io.Reader) (PkgInfo, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(6)
	if u := decompress.Unsupported(head); u != "" {
		return PkgInfo{}, fmt.Errorf("the package is %s-compressed: bintrans reads packages compressed with gzip, zstd, xz or bzip2, or none", u)
	}
	var dec io.Reader = io.LimitReader(br, pkgInfoMaxStream) // anything else: read as a plain tar
	if f := decompress.Sniff(head); f != "" {
		z, err := decompress.NewReader(br, f, decompress.Limits{
			MaxZstdWindow: pkgInfoZstdWindow, MaxXZDict: pkgInfoXZDict, MaxOutput: pkgInfoMaxStream})
		if err != nil {
			return PkgInfo{}, fmt.Errorf("reading the package archive: %w", err)
		}
		defer z.Close()
		dec = z
	}
	tr := ustar.NewReader(dec, ustar.Limits{})
	var info []byte
	for i := 0; i < pkgInfoMaxEntries; i++ {
		h, err := tr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return PkgInfo{}, fmt.Errorf("reading the package archive: %w", err)
		}
		name := h.Name
		if name != ".PKGINFO" {
			if !strings.HasPrefix(name, ".") {
				break // past the metadata
			}
			continue
		}
		if info != nil {
			// libalpm parses every .PKGINFO member, each over the last.
			return PkgInfo{}, errors.New("two .PKGINFO members: libalpm reads both")
		}
		if h.Typeflag != ustar.TypeReg || h.Size > pkgInfoMaxSize {
			return PkgInfo{}, fmt.Errorf(".PKGINFO is not a regular file of at most %d bytes", pkgInfoMaxSize)
		}
		if info, err = io.ReadAll(io.LimitReader(tr, pkgInfoMaxSize)); err != nil {
			return PkgInfo{}, fmt.Errorf("reading .PKGINFO: %w", err)
		}
	}
	if info == nil {
		return PkgInfo{}, errors.New("no .PKGINFO among the first entries of the package archive")
	}
	return parsePkgInfo(info)
}

// pkgInfoKeys are the keys bintrans takes from .PKGINFO.
var pkgInfoKeys = map[string]bool{"pkgname": true, "pkgver": true, "arch": true}

// pkgInfoMaxLine is parse_descfile's line limit (512 KiB, the '\0' included).
const pkgInfoMaxLine = 512<<10 - 1

// parsePkgInfo reads .PKGINFO as libalpm's parse_descfile (be_package.c)
// does: lines end at '\n'; an empty line or one starting with '#' is
// skipped; any other line must be "key = value", the first space of the
// line starting " = ", or it is a syntax error libalpm ignores; the value
// is the rest of the line, not trimmed; a repeated key overwrites.
//
// What could be read two ways is refused: pkgname, pkgver or arch given
// twice (libalpm takes the last, a first-value reader the first), a line
// that names one of them but is not exactly "key = value" (libalpm ignores
// it, a lenient reader does not), a NUL byte (libalpm's line reader and C
// strings end there), and a name or version makepkg cannot write (a '\r'
// or a space would be part of libalpm's name).
func parsePkgInfo(b []byte) (PkgInfo, error) {
	if bytes.IndexByte(b, 0) >= 0 {
		return PkgInfo{}, errors.New(".PKGINFO contains a NUL byte")
	}
	var pi PkgInfo
	seen := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		if len(line) > pkgInfoMaxLine {
			return PkgInfo{}, fmt.Errorf(".PKGINFO line %d is longer than libalpm's %d bytes", n, pkgInfoMaxLine)
		}
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.IndexByte(line, ' ')
		if sp < 0 || !strings.HasPrefix(line[sp:], " = ") || !pkgInfoKeys[line[:sp]] {
			tok := strings.TrimLeft(line, " \t")
			if j := strings.IndexAny(tok, " \t="); j >= 0 {
				tok = tok[:j]
			}
			if pkgInfoKeys[tok] && (sp < 0 || line[:sp] != tok || !strings.HasPrefix(line[sp:], " = ")) {
				return PkgInfo{}, fmt.Errorf(".PKGINFO line %d %q is not \"%s = value\": libalpm ignores it, another reader may not", n, line, tok)
			}
			continue // a key bintrans does not use, or a syntax error libalpm ignores
		}
		key, value := line[:sp], line[sp+len(" = "):]
		if seen[key] > 0 {
			return PkgInfo{}, fmt.Errorf(".PKGINFO gives %s twice (lines %d and %d): libalpm takes the last", key, seen[key], n)
		}
		seen[key] = n
		switch key {
		case "pkgname":
			pi.Name = value
		case "pkgver":
			pi.Version = value
		case "arch":
			pi.Arch = value
		}
	}
	if !validPkgName(pi.Name) {
		return PkgInfo{}, fmt.Errorf(".PKGINFO has no usable pkgname (%q)", pi.Name)
	}
	// libalpm refuses a missing version, and one without a '-'
	// (_alpm_pkg_load_internal).
	if !validPkgVersion(pi.Version) {
		return PkgInfo{}, fmt.Errorf(".PKGINFO has no usable pkgver (%q)", pi.Version)
	}
	if strings.ContainsFunc(pi.Arch, func(r rune) bool {
		return !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		return PkgInfo{}, fmt.Errorf(".PKGINFO has an arch makepkg cannot write (%q)", pi.Arch)
	}
	return pi, nil
}

// validPkgName is makepkg's rule for pkgname: alphanumerics and @._+-,
// not starting with '-' or '.'.
func validPkgName(s string) bool {
	if s == "" || len(s) > MaxNameLen || s[0] == '-' || s[0] == '.' {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@._+-", r))
	})
}

// validPkgVersion is [epoch:]pkgver-pkgrel as makepkg writes it: epoch
// digits, pkgver printable ASCII without ':', '/', '-' or a space, pkgrel
// digits and '.'.
func validPkgVersion(s string) bool {
	if len(s) > MaxNameLen {
		return false
	}
	rest := s
	if e, v, ok := strings.Cut(s, ":"); ok {
		if e == "" || strings.ContainsFunc(e, func(r rune) bool { return r < '0' || r > '9' }) {
			return false
		}
		rest = v
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 || i == len(rest)-1 {
		return false
	}
	ver, rel := rest[:i], rest[i+1:]
	return !strings.ContainsFunc(ver, func(r rune) bool {
		return r <= ' ' || r > '~' || strings.ContainsRune(":/-", r)
	}) && !strings.ContainsFunc(rel, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
}
