package fetch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/repodb"
)

// Why pass-through files are inspected: pacman (measured with 6.0.2, and
// repo-add accepts it) installs whatever file a sync database's
// %FILENAME% names, whatever the name, and libalpm opens packages and
// databases alike with every libarchive format and filter
// (archive_read_support_format_all + filter_all): a package repacked as
// zip, cpio, 7z, iso9660, gnutar or v7 tar installs, under any name. A
// hostile mirror can list a package as "evil.db" or "evil.sig"; a
// downloader that decided by the name alone (as the original
// pacman-bintrans did) would let it through unverified, and so would one
// that searched the content for a package with a reader other than
// libarchive. So the rule is positive, and fails closed:
//
//   - a database is passed through only when it reads completely as a
//     strict sync database (repodb: one of the compressions repo-add
//     writes, the tar subset internal/ustar accepts, only NAME-VERSION/desc
//     and files members). Such a file holds no .PKGINFO member for any tar
//     reader, and no other libarchive format outbids a valid ustar header
//     (tar bids 106, the others at most 64);
//   - a signature is passed through only when it is OpenPGP signature
//     packets filling the file exactly and nothing in it makes a libarchive
//     reader bid (see checkNotArchive).

// Bounds of CheckPassThrough.
const (
	maxScanBytes   = 2 << 30 // decompressed database stream (extra.files: a few hundred MiB)
	maxScanEntries = 1_000_000
)

// DisguisedPackageError is a file with a database name whose content is a
// package (its archive holds package metadata such as ".PKGINFO").
type DisguisedPackageError struct {
	Kind  Kind
	Entry string // the archive entry that makes it a package
}

func (e *DisguisedPackageError) Error() string {
	return fmt.Sprintf("named like a %s but is a package (archive entry %q): it would be installed unverified", e.Kind, e.Entry)
}

// FormatError is a pass-through file whose content is not what its name
// says: not a strict sync database, or not OpenPGP signature packets
// only, or signature packets that a libarchive reader would also take for
// an archive. pacman could load such a file as a package, so it is refused.
type FormatError struct {
	Kind   Kind
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("not a %s: %s", e.Kind, e.Reason)
}

// CheckPassThrough inspects r, the content of a file of kind k that is
// about to be handed to pacman unverified. It returns nil when the content
// is what the kind says in the strict sense above, a *DisguisedPackageError
// when a database's archive holds package metadata, and a *FormatError for
// anything else (fail closed). A KindPackage file is never passed through:
// it is an error to ask.
func CheckPassThrough(k Kind, r io.Reader) error {
	switch k {
	case KindSignature:
		b, err := durable.ReadAll(r, "signature", MaxSignatureSize)
		var tl *durable.TooLargeError
		if errors.As(err, &tl) {
			return &FormatError{Kind: k, Reason: fmt.Sprintf("larger than %d bytes", MaxSignatureSize)}
		}
		if err != nil {
			return err
		}
		if err := checkSignaturePackets(b); err != nil {
			return &FormatError{Kind: k, Reason: err.Error()}
		}
		if err := checkNotArchive(b); err != nil {
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

// checkDatabase reads r completely as a strict sync database.
func checkDatabase(r io.Reader) error {
	lim := repodb.DefaultLimits()
	lim.MaxTotalSize, lim.MaxEntries = maxScanBytes, maxScanEntries
	err := repodb.Walk(r, lim, func(repodb.Package) error { return nil })
	if err == nil {
		return nil
	}
	var ee *repodb.EntryError
	if errors.As(err, &ee) && errors.Is(err, repodb.ErrUnexpectedEntry) && packageMetadata[path.Base(ee.Entry)] {
		return &DisguisedPackageError{Kind: KindDatabase, Entry: ee.Entry}
	}
	if !errors.As(err, &ee) { // the file could not be read
		return err
	}
	return &FormatError{Kind: KindDatabase, Reason: strings.TrimPrefix(err.Error(), "repodb: ")}
}

// packageMetadata are the members makepkg puts at the top of a package.
var packageMetadata = map[string]bool{".PKGINFO": true, ".BUILDINFO": true, ".MTREE": true, ".INSTALL": true, ".CHANGELOG": true}

// checkNotArchive refuses signature packets in which a libarchive reader
// would find an archive. libalpm opens every file it loads with all of
// libarchive's filters and formats, and the highest bidder reads it; the
// content of a signature packet after its version byte is not checked by
// anyone before pacman loads the file, so it can carry an archive. What
// libarchive 3.6.2 bids on (archive_read_support_{filter,format}_*.c),
// given that the first byte is a signature packet header (0x88-0x8a old
// format, 0xc2 new format):
//
//   - the seekable zip reader searches the last 16 KiB of the file (all of
//     a signature) for an end-of-central-directory record "PK\x05\x06" and
//     reads a zip from the central directory before it, wherever it is:
//     refused when those four bytes occur anywhere;
//   - the tar reader takes any first 512-byte block whose checksum field
//     holds octal digits, spaces and NULs only and matches its unsigned or
//     signed byte sum (a V7 header needs no magic): refused when the first
//     block passes that test;
//   - the raw LZMA filter bids on a first byte up to 224 (every packet
//     header) followed by a little-endian dictionary size from its list;
//     "0x8a 00 00 01 00" is both an old-format packet of 256 bytes and an
//     LZMA stream with a 64 KiB dictionary: refused when bytes 1-4 are one
//     of those sizes;
//   - the uu filter needs a "begin " line preceded by ASCII lines only, and
//     mtree ASCII or "#mtree" from the first byte: a packet header byte is
//     neither; iso9660 needs 32 KiB, more than a signature may have; every
//     other filter and format (gzip, bzip2, xz, zstd, lz4, lzip, lzop,
//     lrzip, grzip, compress, rpm, ar, cpio, 7z, cab, lha, rar, xar, warc,
//     streaming zip) needs its magic at offset 0, which a packet header
//     byte is not (lzop's 0x89 "LZO" would be a 19 546-byte packet, over
//     the limit), or an "MZ"/ELF executable header there.
//
// The differential test (sniff_oracle_test.go) holds each of these against
// the real libarchive.
func checkNotArchive(b []byte) error {
	if i := bytes.Index(b, []byte("PK\x05\x06")); i >= 0 {
		return fmt.Errorf("holds a zip end-of-central-directory record at byte %d: libarchive would read a zip archive from it", i)
	}
	if len(b) >= 512 && tarChecksumOK(b[:512]) {
		return errors.New("its first 512 bytes are a valid tar header: libarchive would read it as a tar archive")
	}
	if len(b) >= 14 && b[0] <= 224 && lzmaDictSizes[binary.LittleEndian.Uint32(b[1:5])] {
		return errors.New("its first bytes are a raw LZMA stream header: libarchive would decompress it")
	}
	return nil
}

// lzmaDictSizes are the dictionary sizes libarchive's raw LZMA bidder
// accepts whatever the other header bytes (lzma_bidder_bid; the sizes it
// accepts only with a first byte of 0x5d or 0x5e cannot follow a packet
// header).
var lzmaDictSizes = func() map[uint32]bool {
	m := map[uint32]bool{}
	for s := uint32(1 << 12); s <= 1<<27; s <<= 1 {
		m[s] = true
	}
	return m
}()

// tarChecksumOK is libarchive's test of a tar header block (checksum() in
// archive_read_support_format_tar.c).
func tarChecksumOK(h []byte) bool {
	for _, c := range h[148:156] {
		if c != ' ' && c != 0 && (c < '0' || c > '7') {
			return false
		}
	}
	f := h[148:156]
	i := 0
	for i < len(f) && (f[i] == ' ' || f[i] == '\t') {
		i++
	}
	var sum int64
	for ; i < len(f) && f[i] >= '0' && f[i] <= '7'; i++ {
		sum = sum<<3 | int64(f[i]-'0')
	}
	var u, s int64
	for i, c := range h {
		if i >= 148 && i < 156 {
			c = ' '
		}
		u += int64(c)
		s += int64(int8(c))
	}
	return sum == u || sum == s
}
