package fetch

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Why pass-through files are inspected: pacman (measured with 6.0.2, and
// repo-add accepts it) installs whatever file a sync database's
// %FILENAME% names, whatever the name: a hostile mirror can list a
// package as "evil.db" or "evil.sig". A downloader that decided by the
// name alone (as the original pacman-bintrans did) would let it through
// unverified. So a file is passed through only when its content cannot be
// loaded by pacman as a package: a database must be a tar (plain, gzip,
// zstd, xz or bzip2) without a ".PKGINFO" entry, which libalpm needs to
// load a package; a signature must be OpenPGP signature packets and
// nothing else.

// Bounds of CheckPassThrough.
const (
	maxScanBytes   = 2 << 30 // decompressed database stream (extra.files: a few hundred MiB)
	maxScanEntries = 1_000_000
	maxZstdWindow  = 32 << 20
	maxXZDict      = 64 << 20
)

// DisguisedPackageError is a file with a database or signature name whose
// content is a package (it has a ".PKGINFO" entry).
type DisguisedPackageError struct {
	Kind  Kind
	Entry string // the archive entry that makes it a package
}

func (e *DisguisedPackageError) Error() string {
	return fmt.Sprintf("named like a %s but is a package (archive entry %q): it would be installed unverified", e.Kind, e.Entry)
}

// FormatError is a pass-through file whose content is not what its name
// says: not an OpenPGP signature, or not a tar archive in a compression
// bintrans can inspect (so it cannot rule out a package).
type FormatError struct {
	Kind   Kind
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("not a %s: %s", e.Kind, e.Reason)
}

// CheckPassThrough inspects r, the content of a file of kind k that is
// about to be handed to pacman unverified. It returns nil when pacman
// cannot load it as a package, a *DisguisedPackageError when it can, and a
// *FormatError when the content is not what the kind promises (fail
// closed). A KindPackage file is never passed through: it is an error to
// ask.
func CheckPassThrough(k Kind, r io.Reader) error {
	switch k {
	case KindSignature:
		b, err := io.ReadAll(io.LimitReader(r, MaxSignatureSize+1))
		if err != nil {
			return err
		}
		if len(b) > MaxSignatureSize {
			return &FormatError{Kind: k, Reason: fmt.Sprintf("larger than %d bytes", MaxSignatureSize)}
		}
		if err := checkSignaturePackets(b); err != nil {
			return &FormatError{Kind: k, Reason: err.Error()}
		}
		return nil
	case KindDatabase:
		return checkDatabase(r)
	default:
		return fmt.Errorf("fetch: CheckPassThrough(%v): packages are verified, never passed through", k)
	}
}

// checkSignaturePackets accepts a sequence of OpenPGP signature packets
// (RFC 4880 §4.2, tag 2; versions 3 to 6) that fill b exactly: what
// `gpg --detach-sign` writes, one packet per signature.
func checkSignaturePackets(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty")
	}
	for n := 0; len(b) > 0; n++ {
		if n >= 64 {
			return errors.New("more than 64 packets")
		}
		h := b[0]
		if h&0x80 == 0 {
			return fmt.Errorf("byte %#02x is not an OpenPGP packet header", h)
		}
		var tag int
		var hdr, size int
		if h&0x40 != 0 { // new format
			tag = int(h & 0x3f)
			if len(b) < 2 {
				return errors.New("truncated packet header")
			}
			switch l := int(b[1]); {
			case l < 192:
				hdr, size = 2, l
			case l < 224:
				if len(b) < 3 {
					return errors.New("truncated packet header")
				}
				hdr, size = 3, (l-192)<<8+int(b[2])+192
			case l == 255:
				if len(b) < 6 {
					return errors.New("truncated packet header")
				}
				v := uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
				if v > MaxSignatureSize {
					return errors.New("packet longer than the file")
				}
				hdr, size = 6, int(v)
			default:
				return errors.New("partial body length (not used for signatures)")
			}
		} else { // old format
			tag = int(h>>2) & 0x0f
			switch h & 3 {
			case 0:
				if len(b) < 2 {
					return errors.New("truncated packet header")
				}
				hdr, size = 2, int(b[1])
			case 1:
				if len(b) < 3 {
					return errors.New("truncated packet header")
				}
				hdr, size = 3, int(b[1])<<8|int(b[2])
			case 2:
				if len(b) < 5 {
					return errors.New("truncated packet header")
				}
				v := uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
				if v > MaxSignatureSize {
					return errors.New("packet longer than the file")
				}
				hdr, size = 5, int(v)
			default:
				return errors.New("indeterminate packet length")
			}
		}
		if tag != 2 {
			return fmt.Errorf("packet tag %d, want 2 (signature)", tag)
		}
		if size < 1 || hdr+size > len(b) {
			return errors.New("packet length does not match the file")
		}
		if v := b[hdr]; v < 3 || v > 6 {
			return fmt.Errorf("signature packet version %d", v)
		}
		b = b[hdr+size:]
	}
	return nil
}

// checkDatabase decompresses r (plain tar, gzip, zstd, xz or bzip2,
// sniffed from the magic bytes) and walks the tar, bounded, looking for
// the ".PKGINFO" entry every package has.
func checkDatabase(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var dec io.Reader
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return &FormatError{Kind: KindDatabase, Reason: "gzip: " + err.Error()}
		}
		defer z.Close()
		dec = z
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return &FormatError{Kind: KindDatabase, Reason: "zstd: " + err.Error()}
		}
		defer z.Close()
		dec = z
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		z, err := xz.ReaderConfig{DictCap: maxXZDict}.NewReader(br)
		if err != nil {
			return &FormatError{Kind: KindDatabase, Reason: "xz: " + err.Error()}
		}
		dec = z
	case bytes.HasPrefix(head, []byte("BZh")):
		dec = bzip2.NewReader(br)
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		dec = br
	default:
		return &FormatError{Kind: KindDatabase, Reason: "not a tar archive compressed with gzip, zstd, xz or bzip2 (other formats cannot be inspected, so they are refused)"}
	}
	tr := tar.NewReader(bufio.NewReaderSize(&boundedReader{r: dec, left: maxScanBytes}, 64<<10))
	for n := 0; ; n++ {
		if n >= maxScanEntries {
			return &FormatError{Kind: KindDatabase, Reason: fmt.Sprintf("more than %d archive entries", maxScanEntries)}
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, errScanLimit) {
			return &FormatError{Kind: KindDatabase, Reason: fmt.Sprintf("decompresses to more than %d bytes", int64(maxScanBytes))}
		}
		if err != nil {
			return &FormatError{Kind: KindDatabase, Reason: "archive: " + err.Error()}
		}
		if name := path.Clean("/" + h.Name); name == "/.PKGINFO" {
			return &DisguisedPackageError{Kind: KindDatabase, Entry: h.Name}
		}
	}
}

var errScanLimit = errors.New("scan limit")

// boundedReader fails with errScanLimit once more than left bytes were
// read (a decompression bomb), instead of truncating silently.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errScanLimit
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
