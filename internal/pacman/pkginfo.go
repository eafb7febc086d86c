package pacman

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

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
// stands for: the file is verified as itself whatever it says, and a name
// it gets wrong is checked against the sync databases instead (stricter).
// It reads with the strict tar reader (internal/ustar): what it accepts,
// libarchive reads the same way; anything else is an error, and the file
// is then only verified as itself.
func ReadPkgInfo(r io.Reader) (PkgInfo, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(6)
	var dec io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(pkgInfoZstdWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return PkgInfo{}, err
		}
		defer z.Close()
		dec = z
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		g, err := gzip.NewReader(br)
		if err != nil {
			return PkgInfo{}, err
		}
		defer g.Close()
		dec = g
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		cfg := xz.ReaderConfig{DictCap: pkgInfoXZDict}
		x, err := cfg.NewReader(br)
		if err != nil {
			return PkgInfo{}, err
		}
		dec = x
	case bytes.HasPrefix(head, []byte("BZh")):
		dec = bzip2.NewReader(br)
	}
	tr := ustar.NewReader(io.LimitReader(dec, pkgInfoMaxStream), ustar.Limits{})
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
		if h.Typeflag != ustar.TypeReg || h.Size > pkgInfoMaxSize {
			return PkgInfo{}, fmt.Errorf(".PKGINFO is not a regular file of at most %d bytes", pkgInfoMaxSize)
		}
		b, err := io.ReadAll(io.LimitReader(tr, pkgInfoMaxSize))
		if err != nil {
			return PkgInfo{}, fmt.Errorf("reading .PKGINFO: %w", err)
		}
		return parsePkgInfo(b)
	}
	return PkgInfo{}, errors.New("no .PKGINFO among the first entries of the package archive")
}

// parsePkgInfo reads "key = value" lines; the first of each key counts.
func parsePkgInfo(b []byte) (PkgInfo, error) {
	var pi PkgInfo
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "pkgname" && pi.Name == "":
			pi.Name = v
		case k == "pkgver" && pi.Version == "":
			pi.Version = v
		case k == "arch" && pi.Arch == "":
			pi.Arch = v
		}
	}
	if pi.Name == "" || strings.ContainsAny(pi.Name, "/ \t\x00") || len(pi.Name) > MaxNameLen {
		return PkgInfo{}, fmt.Errorf(".PKGINFO has no usable pkgname (%q)", pi.Name)
	}
	return pi, nil
}
