package fetch

import (
	"bytes"
	"errors"
	"path"
	"strconv"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
	"github.com/bintrans/bintrans/internal/ustar"
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

// FuzzCheckDatabase: the check never panics, fails only with its typed
// errors, and never accepts an archive whose tar holds package metadata
// (the differential property against libarchive itself is
// FuzzPassThroughLibarchive).
func FuzzCheckDatabase(f *testing.F) {
	for _, c := range tarcorpus.DBCases() {
		f.Add(c.Data)
	}
	f.Add(pkgTar())
	f.Add(strictDB(f, "gzip", false))
	f.Add(strictDB(f, "zstd", true))
	f.Add(strictDB(f, "xz", false))
	f.Add([]byte("BZh91AY&SY"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckPassThrough(KindDatabase, bytes.NewReader(b))
		var fe *FormatError
		var de *DisguisedPackageError
		if err != nil && !errors.As(err, &fe) && !errors.As(err, &de) {
			t.Fatalf("error %T: %v", err, err)
		}
		if err != nil || !bytes.Contains(b[:min(len(b), 512)], []byte("ustar")) {
			return
		}
		r := ustar.NewReader(bytes.NewReader(b), ustar.Limits{})
		for {
			h, err := r.Next()
			if err != nil {
				return
			}
			if packageMetadata[path.Base(h.Name)] {
				t.Fatalf("accepted a tar with %q", h.Name)
			}
		}
	})
}
