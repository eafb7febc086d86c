// Package tarcorpus builds hostile and legitimate tar archives and sync
// databases byte by byte, for the differential tests of internal/ustar,
// repodb and internal/fetch against the real libarchive and libalpm
// (internal/testkit/laoracle), and for their fuzz seed corpora.
//
// Every construct of the measured libarchive/Go disagreement table (issue
// 16; docs/SECURITY.md, "Parser differentials") is here, and more: stacked
// extension headers in both orders, non-standard magics with a prefix,
// trailing-slash regular entries and directories whose bodies smuggle
// headers, a single zero block followed by entries, signed and malformed
// checksums, base-256 and non-canonical numbers, pax records that rename,
// resize or sparsify, and, at the database level, desc/files/depends key
// overrides and duplicate package directories (bypasses B7 and B8).
package tarcorpus

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Hdr describes one 512-byte header block. Zero fields take bsdtar's
// values (mode 0644, root:root, mtime 1700000000, magic "ustar\0" "00",
// the unsigned checksum).
type Hdr struct {
	Name     string
	Prefix   string
	Typeflag byte // default '0'
	Size     int64
	Linkname string
	Mode     int64
	Magic    string // 6 bytes; default "ustar\x00"
	Version  string // 2 bytes; default "00"
	// Checksum: "" (the unsigned sum), "signed" (the signed sum, which
	// old writers used), "bad" (off by one), "spaces" (the unsigned sum
	// right-aligned with leading spaces).
	Checksum string
	// Edit changes the block after the fields are written and before the
	// checksum is computed (raw fields: base-256, junk after NULs, …).
	Edit func(b []byte)
}

// Block returns the header block h.
func (h Hdr) Block() []byte {
	b := make([]byte, 512)
	copy(b[0:100], h.Name)
	mode := h.Mode
	if mode == 0 {
		mode = 0o644
		if h.Typeflag == '5' {
			mode = 0o755
		}
	}
	num := func(off, digits int, v int64, term string) {
		s := strconv.FormatInt(v, 8)
		s = strings.Repeat("0", max(0, digits-len(s))) + s + term
		copy(b[off:], s)
	}
	// bsdtar's formatting (repodbtest proves it against the real one).
	num(100, 6, mode, " \x00")
	num(108, 6, 0, " \x00")
	num(116, 6, 0, " \x00")
	num(124, 11, h.Size, " ")
	num(136, 11, 1700000000, " ")
	tf := h.Typeflag
	if tf == 0 {
		tf = '0'
	}
	b[156] = tf
	copy(b[157:257], h.Linkname)
	magic, version := h.Magic, h.Version
	if magic == "" {
		magic = "ustar\x00"
	}
	if version == "" {
		version = "00"
	}
	copy(b[257:263], magic)
	copy(b[263:265], version)
	copy(b[265:297], "root")
	copy(b[297:329], "root")
	num(329, 6, 0, " \x00")
	num(337, 6, 0, " \x00")
	copy(b[345:500], h.Prefix)
	if h.Edit != nil {
		h.Edit(b)
	}
	copy(b[148:156], "        ")
	var u, s int64
	for _, c := range b {
		u += int64(c)
		s += int64(int8(c))
	}
	sum := u
	switch h.Checksum {
	case "signed":
		sum = s
	case "bad":
		sum = u + 1
	}
	if h.Checksum == "spaces" {
		copy(b[148:156], fmt.Sprintf("%6o\x00 ", sum))
		return b
	}
	num(148, 6, sum&0o777777, "\x00 ")
	return b
}

// Pad pads b with zeros to a multiple of 512.
func Pad(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

// File is a regular file entry: header and padded content.
func File(name, content string) []byte {
	return append(Hdr{Name: name, Size: int64(len(content))}.Block(), Pad([]byte(content))...)
}

// FileH is a regular file entry with header h (Size set from content).
func FileH(h Hdr, content string) []byte {
	h.Size = int64(len(content))
	return append(h.Block(), Pad([]byte(content))...)
}

// Dir is a directory entry (name should end in "/").
func Dir(name string) []byte { return Hdr{Name: name, Typeflag: '5'}.Block() }

// PaxBody encodes pax records ("LEN key=value\n"), in order.
func PaxBody(kv ...string) []byte {
	var out []byte
	for i := 0; i+1 < len(kv); i += 2 {
		line := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(line) + 1
		for len(strconv.Itoa(n))+len(line) != n {
			n++
		}
		out = append(out, strconv.Itoa(n)+line...)
	}
	return out
}

// Ext is an extension header of typeflag typ (x, g, X, L, K, …) with the
// given body.
func Ext(typ byte, name string, body []byte) []byte {
	return append(Hdr{Name: name, Typeflag: typ, Size: int64(len(body))}.Block(), Pad(body)...)
}

// Pax is an 'x' header with records kv, named as bsdtar names them.
func Pax(kv ...string) []byte { return Ext('x', "PaxHeader/x", PaxBody(kv...)) }

// End is the end-of-archive marker (two zero blocks).
func End() []byte { return make([]byte, 1024) }

// Record pads an archive to a multiple of 10240 bytes, as bsdtar does.
func Record(b []byte) []byte {
	return append(b, make([]byte, (10240-len(b)%10240)%10240)...)
}

// FixChecksums returns data with the checksum of every 512-byte block that
// looks like a ustar header (magic "ustar" at byte 257) recomputed, so
// that a fuzzer explores the fields rather than the checksum.
func FixChecksums(data []byte) []byte {
	out := append([]byte(nil), data...)
	for off := 0; off+512 <= len(out); off += 512 {
		b := out[off : off+512]
		if !bytes.Equal(b[257:262], []byte("ustar")) {
			continue
		}
		copy(b[148:156], "        ")
		var sum int64
		for _, c := range b {
			sum += int64(c)
		}
		copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	}
	return out
}

// Cat concatenates parts.
func Cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Case is one archive of the corpus.
type Case struct {
	Name string
	Data []byte
	// Accept: the strict reader must accept it (a legitimate construct);
	// otherwise it must refuse it.
	Accept bool
	// Why says what the case exercises.
	Why string
	// Evil, for a database case, is the %FILENAME% libalpm itself takes
	// for package foo from it (checked against the real libalpm): the
	// proof that the case is an attack, not only an oddity.
	Evil string
}

// Compressions are the compressions repo-add writes (and repodb reads).
var Compressions = []string{"none", "gzip", "zstd", "xz", "bzip2"}

// Compress compresses b with how ("none", "gzip", "zstd", "xz", "bzip2";
// bzip2 runs the bzip2 program, which has no Go encoder).
func Compress(b []byte, how string) ([]byte, error) {
	var buf bytes.Buffer
	switch how {
	case "none", "":
		return b, nil
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(b)
		if err := w.Close(); err != nil {
			return nil, err
		}
	case "zstd":
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		w.Write(b)
		if err := w.Close(); err != nil {
			return nil, err
		}
	case "xz":
		w, err := xz.NewWriter(&buf)
		if err != nil {
			return nil, err
		}
		w.Write(b)
		if err := w.Close(); err != nil {
			return nil, err
		}
	case "bzip2":
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("bzip2: %v", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("tarcorpus: unknown compression %q", how)
	}
	return buf.Bytes(), nil
}
