package fetch

import (
	"archive/tar"
	"bytes"
	"path"
	"strconv"
	"testing"
)

// FuzzParseContentRange checks that the Content-Range parsers never panic
// and only accept ranges that make sense (first <= last < total).
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes 100-199/*", "bytes */100", "bytes 9-0/10", "bytes 0-9/9", "bytes -1-9/10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, ok := parseContentRange(s)
		if ok {
			if first < 0 || last < first || (total != -1 && total <= last) {
				t.Fatalf("%q accepted as %d-%d/%d", s, first, last, total)
			}
			back := "bytes " + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) + "/"
			if total == -1 {
				back += "*"
			} else {
				back += strconv.FormatInt(total, 10)
			}
			if f2, l2, t2, ok2 := parseContentRange(back); !ok2 || f2 != first || l2 != last || t2 != total {
				t.Fatalf("%q: round trip %q failed", s, back)
			}
		}
		if n, ok := unsatisfiedTotal(s); ok && n < 0 {
			t.Fatalf("%q: negative total %d", s, n)
		}
	})
}

// FuzzCheckSignature: the OpenPGP packet walk never panics, and what it
// accepts starts with a signature packet header (never a compression or
// archive magic that libalpm could load as a package).
func FuzzCheckSignature(f *testing.F) {
	f.Add([]byte{0x88, 2, 4, 0})
	f.Add([]byte{0xc2, 255, 0, 0, 0, 2, 4, 0})
	f.Add([]byte{0x89, 'L', 'Z', 'O', 0})
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkSignaturePackets(b) != nil {
			return
		}
		switch b[0] {
		case 0x88, 0x89, 0x8a, 0xc2:
		default:
			t.Fatalf("accepted a file starting with %#02x", b[0])
		}
	})
}

// FuzzCheckDatabase: the bounded decompress-and-walk never panics, and
// never accepts an archive whose tar has a .PKGINFO entry.
func FuzzCheckDatabase(f *testing.F) {
	f.Add(tarOf(f, "foo-1.0-1/desc", "%FILENAME%\nfoo\n"))
	f.Add(tarOf(f, ".PKGINFO", "pkgname = x\n"))
	f.Add(compressed(f, "gzip", tarOf(f, "a/desc", "x")))
	f.Add(compressed(f, "zstd", tarOf(f, "a/desc", "x")))
	f.Add(compressed(f, "xz", tarOf(f, "a/desc", "x")))
	f.Add([]byte("BZh91AY&SY"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckPassThrough(KindDatabase, bytes.NewReader(b))
		if err != nil {
			return
		}
		// Accepted: a plain tar among them must not hold .PKGINFO.
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			h, err := tr.Next()
			if err != nil {
				return
			}
			if path.Clean("/"+h.Name) == "/.PKGINFO" {
				t.Fatalf("accepted a tar with %q", h.Name)
			}
		}
	})
}
