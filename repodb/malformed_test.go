package repodb_test

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
	"github.com/bintrans/bintrans/repodb"
	"github.com/ulikunitz/xz"
)

const goodSHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// desc returns a minimal valid desc for name/version with the given filename.
func desc(name, version, filename string, extra ...string) string {
	s := "%FILENAME%\n" + filename + "\n\n%NAME%\n" + name + "\n\n%VERSION%\n" + version + "\n\n%SHA256SUM%\n" + goodSHA + "\n\n"
	for _, e := range extra {
		s += e
	}
	return s
}

type ent struct {
	name     string
	typ      byte
	body     string
	linkname string
}

func dirEnt(name string) ent { return ent{name: name, typ: tar.TypeDir} }
func fileEnt(name, body string) ent {
	return ent{name: name, typ: tar.TypeReg, body: body}
}

// tarOf writes entries as a ustar/pax archive.
func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.linkname, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func pkgEnts(name, version, filename string) []ent {
	d := name + "-" + version
	return []ent{dirEnt(d + "/"), fileEnt(d+"/desc", desc(name, version, filename))}
}

func cat(parts ...[]ent) []ent {
	var out []ent
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// gzipBomb returns a single-member gzip stream of a valid one-package tar
// followed by n MiB of zeros (bsdtar pads with zeros, so the reader must
// drain them): about 1 KiB per MiB on disk. It is built by repeating one
// flushed deflate chunk, so that even a GiB-sized bomb is made instantly.
func gzipBomb(t testing.TB, n int) []byte {
	t.Helper()
	var out bytes.Buffer
	out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3})
	fw, err := flate.NewWriter(&out, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(tarOf(t, pkgEnts("a", "1-1", "a.pkg")...))
	_ = fw.Flush()
	mark := out.Len()
	_, _ = fw.Write(make([]byte, 1<<20))
	_ = fw.Flush()
	chunk := append([]byte(nil), out.Bytes()[mark:]...)
	for range n - 1 {
		out.Write(chunk)
	}
	_ = fw.Close()
	out.Write(make([]byte, 8)) // CRC and size: never reached
	return out.Bytes()
}

// xzWithDict returns an xz stream of b whose block header announces an LZMA2
// dictionary code (40 = 4 GiB), with the header CRC fixed up.
func xzWithDict(t testing.TB, b []byte, code byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := xz.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	s := out.Bytes()
	hsize := (int(s[12]) + 1) * 4
	h := s[12 : 12+hsize]
	// flags, [sizes], filter id 0x21, props size 1, dict code
	i := bytes.Index(h[2:], []byte{0x21, 0x01})
	if i < 0 {
		t.Fatalf("no LZMA2 filter in % x", h)
	}
	h[2+i+2] = code
	binary.LittleEndian.PutUint32(h[hsize-4:], crc32.ChecksumIEEE(h[:hsize-4]))
	return s
}

func TestMalformedArchives(t *testing.T) {
	small := repodb.Limits{MaxDescSize: 200, MaxEntries: 5, MaxTotalSize: 64 << 10, MaxFilesSize: 100}
	valid := tarOf(t, pkgEnts("a", "1-1", "a.pkg")...)
	cases := []struct {
		name      string
		data      []byte
		lim       repodb.Limits
		entry     string
		is        error
		check     func(t *testing.T, err error)
		noPackage bool
	}{
		{name: "zip file", data: []byte("PK\x03\x04 not a database at all"), is: repodb.ErrUnknownCompression,
			check: func(t *testing.T, err error) {
				var ce *repodb.CompressionError
				if !errors.As(err, &ce) || ce.Format != "" || !bytes.Equal(ce.Magic, []byte("PK\x03\x04 not")) {
					t.Errorf("want *CompressionError with the magic, got %#v", ce)
				}
			}},
		{name: "lz4", data: []byte{0x04, 0x22, 0x4d, 0x18, 1, 2, 3}, is: repodb.ErrUnknownCompression,
			check: func(t *testing.T, err error) {
				var ce *repodb.CompressionError
				if !errors.As(err, &ce) || ce.Format != "lz4" {
					t.Errorf("want Format lz4, got %#v", ce)
				}
			}},
		{name: "empty input", data: nil, is: repodb.ErrUnknownCompression},
		{name: "path traversal", data: gz(t, tarOf(t, fileEnt("../a-1-1/desc", desc("a", "1-1", "a.pkg")))),
			entry: "../a-1-1/desc", is: repodb.ErrUnsafePath},
		{name: "traversal inside", data: gz(t, tarOf(t, fileEnt("a-1-1/../../etc/desc", desc("a", "1-1", "a.pkg")))),
			entry: "a-1-1/../../etc/desc", is: repodb.ErrUnsafePath},
		{name: "absolute path", data: gz(t, tarOf(t, fileEnt("/a-1-1/desc", desc("a", "1-1", "a.pkg")))),
			entry: "/a-1-1/desc", is: repodb.ErrUnsafePath},
		{name: "symlink", data: gz(t, tarOf(t, dirEnt("a-1-1/"), ent{name: "a-1-1/desc", typ: tar.TypeSymlink, linkname: "/etc/shadow"})),
			entry: "a-1-1/desc", is: repodb.ErrEntryType, check: wantType("symlink")},
		{name: "hard link", data: gz(t, tarOf(t, dirEnt("a-1-1/"), ent{name: "a-1-1/desc", typ: tar.TypeLink, linkname: "b-1-1/desc"})),
			entry: "a-1-1/desc", is: repodb.ErrEntryType, check: wantType("hard link")},
		{name: "char device", data: gz(t, tarOf(t, ent{name: "a-1-1/desc", typ: tar.TypeChar})),
			entry: "a-1-1/desc", is: repodb.ErrEntryType, check: wantType("character device")},
		{name: "block device", data: gz(t, tarOf(t, ent{name: "a-1-1/desc", typ: tar.TypeBlock})),
			entry: "a-1-1/desc", is: repodb.ErrEntryType, check: wantType("block device")},
		{name: "fifo", data: gz(t, tarOf(t, ent{name: "a-1-1/desc", typ: tar.TypeFifo})),
			entry: "a-1-1/desc", is: repodb.ErrEntryType, check: wantType("fifo")},
		{name: "pax global header", data: gz(t, tarOf(t, ent{typ: tar.TypeXGlobalHeader})),
			entry: "GlobalHead.0.0", is: repodb.ErrEntryType},
		{name: "nested directory", data: gz(t, tarOf(t, fileEnt("a-1-1/sub/desc", desc("a", "1-1", "a.pkg")))),
			entry: "a-1-1/sub/desc", is: repodb.ErrUnexpectedEntry},
		{name: "top-level file", data: gz(t, tarOf(t, fileEnt("README", "hi"))),
			entry: "README", is: repodb.ErrUnexpectedEntry},
		{name: "old depends file", data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a.pkg"), []ent{fileEnt("a-1-1/depends", "%DEPENDS%\nb\n\n")})...)),
			entry: "a-1-1/depends", is: repodb.ErrUnexpectedEntry},
		{name: "duplicate name", data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a1.pkg"), pkgEnts("a", "2-1", "a2.pkg"))...)),
			entry: "a-2-1/desc", is: repodb.ErrDuplicate, check: wantDup("name", "a", "a-1-1/desc")},
		{name: "duplicate filename", data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "same.pkg"), pkgEnts("b", "1-1", "same.pkg"))...)),
			entry: "b-1-1/desc", is: repodb.ErrDuplicate, check: wantDup("filename", "same.pkg", "a-1-1/desc")},
		{name: "duplicate desc entry", data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a.pkg"), []ent{fileEnt("a-1-1/desc", desc("a", "1-1", "a.pkg"))})...)),
			entry: "a-1-1/desc", is: repodb.ErrDuplicate, check: wantDup("entry", "a-1-1/desc", "a-1-1/desc")},
		{name: "duplicate directory entry", data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a.pkg"), []ent{dirEnt("a-1-1/")})...)),
			entry: "a-1-1/", is: repodb.ErrDuplicate},
		{name: "directory not NAME-VERSION", data: gz(t, tarOf(t, dirEnt("b-1-1/"), fileEnt("b-1-1/desc", desc("a", "1-1", "a.pkg")))),
			entry: "b-1-1/desc", is: repodb.ErrDirMismatch, check: func(t *testing.T, err error) {
				var de *repodb.DirMismatchError
				if !errors.As(err, &de) || de.Dir != "b-1-1" || de.Want != "a-1-1" {
					t.Errorf("want DirMismatchError{b-1-1, a-1-1}, got %#v", de)
				}
			}},
		{name: "epoch dropped from directory", data: gz(t, tarOf(t, fileEnt("a-2.0-1/desc", desc("a", "1:2.0-1", "a.pkg")))),
			entry: "a-2.0-1/desc", is: repodb.ErrDirMismatch},
		{name: "directory without desc", data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a.pkg"), []ent{dirEnt("b-1-1/")})...)),
			entry: "b-1-1/", is: repodb.ErrMissingDesc},
		{name: "files without desc", data: gz(t, tarOf(t, dirEnt("b-1-1/"), fileEnt("b-1-1/files", "%FILES%\nusr/\n"))),
			entry: "b-1-1/", is: repodb.ErrMissingDesc},
		{name: "missing FILENAME", data: gz(t, tarOf(t, fileEnt("a-1-1/desc", "%NAME%\na\n\n%VERSION%\n1-1\n\n%SHA256SUM%\n"+goodSHA+"\n\n"))),
			entry: "a-1-1/desc", is: repodb.ErrMissingField, check: wantField("FILENAME")},
		{name: "missing SHA256SUM", data: gz(t, tarOf(t, fileEnt("a-1-1/desc", "%FILENAME%\na.pkg\n\n%NAME%\na\n\n%VERSION%\n1-1\n\n%MD5SUM%\n0123456789abcdef0123456789abcdef\n\n"))),
			entry: "a-1-1/desc", is: repodb.ErrMissingField, check: wantField("SHA256SUM")},
		{name: "uppercase sha256", data: gz(t, tarOf(t, fileEnt("a-1-1/desc", strings.Replace(desc("a", "1-1", "a.pkg"), goodSHA, strings.ToUpper(goodSHA), 1)))),
			entry: "a-1-1/desc", is: repodb.ErrMalformed, check: wantField("SHA256SUM")},
		{name: "short sha256", data: gz(t, tarOf(t, fileEnt("a-1-1/desc", strings.Replace(desc("a", "1-1", "a.pkg"), goodSHA, goodSHA[1:], 1)))),
			entry: "a-1-1/desc", is: repodb.ErrMalformed, check: wantField("SHA256SUM")},
		{name: "unknown field", data: gz(t, tarOf(t, fileEnt("a-1-1/desc", desc("a", "1-1", "a.pkg", "%INSTALLED_DB%\nx\n\n")))),
			entry: "a-1-1/desc", is: repodb.ErrUnknownField, check: wantField("INSTALLED_DB")},
		{name: "terminal escape in desc", data: gz(t, tarOf(t, fileEnt("a-1-1/desc", desc("a", "1-1", "a.pkg", "%DESC%\nnice \x1b[2Jpackage\n\n")))),
			entry: "a-1-1/desc", is: repodb.ErrMalformed, check: wantField("DESC")},
		{name: "desc over MaxDescSize", lim: small, data: gz(t, tarOf(t, fileEnt("a-1-1/desc", desc("a", "1-1", "a.pkg", "%DESC%\n"+strings.Repeat("x", 300)+"\n\n")))),
			entry: "a-1-1/desc", is: repodb.ErrLimit, check: wantLimit("MaxDescSize", 200)},
		{name: "files over MaxFilesSize", lim: small, data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a.pkg"), []ent{fileEnt("a-1-1/files", "%FILES%\n"+strings.Repeat("usr/x\n", 50))})...)),
			entry: "a-1-1/files", is: repodb.ErrLimit, check: wantLimit("MaxFilesSize", 100)},
		{name: "too many entries", lim: small, data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a"), pkgEnts("b", "1-1", "b"), pkgEnts("c", "1-1", "c"))...)),
			entry: "c-1-1/desc", is: repodb.ErrLimit, check: wantLimit("MaxEntries", 5)},
		{name: "zip bomb over MaxTotalSize", lim: repodb.Limits{MaxTotalSize: 8 << 20}, data: gzipBomb(t, 64),
			entry: "a-1-1/desc", is: repodb.ErrLimit, check: wantLimit("MaxTotalSize", 8<<20)},
		{name: "xz dictionary of 4 GiB", data: xzWithDict(t, valid, 40), is: repodb.ErrLimit, check: wantLimit("xz dictionary", 64<<20)},
		{name: "xz dictionary of 1.5 GiB", data: xzWithDict(t, valid, 37), is: repodb.ErrLimit, check: wantLimit("xz dictionary", 64<<20)},
		{name: "garbage after gzip", data: append(gz(t, valid), "trailing"...), entry: "a-1-1/desc", is: repodb.ErrCorrupt},
		{name: "data after tar end", data: gz(t, append(append([]byte{}, valid...), "hidden payload"...)), entry: "a-1-1/desc", is: repodb.ErrCorrupt},
		{name: "truncated gzip", data: func() []byte { b := gz(t, valid); return b[:len(b)-12] }(), entry: "a-1-1/desc", is: repodb.ErrCorrupt},
		{name: "gzip CRC mismatch", data: func() []byte {
			b := gz(t, valid)
			b[len(b)-8] ^= 0xff
			return b
		}(), entry: "a-1-1/desc", is: repodb.ErrCorrupt},
		{name: "truncated tar header", data: gz(t, valid[:700]), entry: "a-1-1/", is: repodb.ErrCorrupt},
		// libalpm reads every desc key from a files member (bypass B7).
		{name: "files carrying desc keys", data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a.pkg"), []ent{fileEnt("a-1-1/files", "%FILENAME%\nevil.pkg\n\n")})...)),
			entry: "a-1-1/files", is: repodb.ErrUnknownField, check: func(t *testing.T, err error) {
				var fe *repodb.FieldError
				if !errors.As(err, &fe) || fe.File != "files" || fe.Field != "FILENAME" || fe.Line != 1 {
					t.Errorf("want FieldError{files, FILENAME, line 1}, got %#v", fe)
				}
			}},
		{name: "files list then keys", data: gz(t, tarOf(t, cat(pkgEnts("a", "1-1", "a.pkg"), []ent{fileEnt("a-1-1/files", "%FILES%\nusr/\n\n%SHA256SUM%\n"+goodSHA+"\n")})...)),
			entry: "a-1-1/files", is: repodb.ErrMalformed, check: func(t *testing.T, err error) {
				var fe *repodb.FieldError
				if !errors.As(err, &fe) || fe.File != "files" || fe.Line != 3 {
					t.Errorf("want FieldError{files, line 3}, got %#v", fe)
				}
			}},
		// Tar constructs readers disagree on (issue 16, bypass 1).
		{name: "GNU long name", data: gz(t, tarcorpus.Cat(tarcorpus.Ext('L', "././@LongLink", []byte("a-1-1/desc\x00")), tarcorpus.File("b-1-1/desc", desc("b", "1-1", "b.pkg")), tarcorpus.End())),
			entry: "././@LongLink", is: repodb.ErrEntryType, check: wantType("GNU long name")},
		{name: "pax path differs from the header", data: gz(t, tarcorpus.Cat(tarcorpus.Pax("path", "a-6.6-1/desc"), tarcorpus.File("a-1-1/desc", desc("a", "1-1", "a.pkg")), tarcorpus.End())),
			entry: "a-1-1/desc", is: repodb.ErrTarFormat, check: func(t *testing.T, err error) {
				var te *repodb.TarError
				if !errors.As(err, &te) || te.Offset != 0 || !strings.Contains(te.Reason, `pax path "a-6.6-1/desc"`) || errors.Is(err, repodb.ErrCorrupt) {
					t.Errorf("want TarError at 0 naming the pax path, got %#v", te)
				}
			}},
		{name: "entry behind one zero block", data: gz(t, tarcorpus.Cat(valid[:1536], make([]byte, 512), tarcorpus.File("b-1-1/desc", desc("b", "1-1", "b.pkg")), tarcorpus.End())),
			entry: "a-1-1/desc", is: repodb.ErrCorrupt},
		{name: "truncated tar content", data: gz(t, valid[:1100]), entry: "a-1-1/desc", is: repodb.ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, err := repodb.Read(bytes.NewReader(tc.data), tc.lim)
			if err == nil {
				t.Fatalf("Read accepted it: %d packages", len(pkgs))
			}
			if pkgs != nil {
				t.Errorf("Read returned %d packages with an error", len(pkgs))
			}
			var ee *repodb.EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("error %T %v is not an *EntryError", err, err)
			}
			if ee.Entry != tc.entry {
				t.Errorf("Entry = %q, want %q (%v)", ee.Entry, tc.entry, err)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			t.Log(err)
		})
	}
	// And the valid archive the cases were cut from is accepted.
	if _, err := repodb.Read(bytes.NewReader(gz(t, valid)), repodb.Limits{}); err != nil {
		t.Fatalf("valid archive: %v", err)
	}
}

func wantType(typ string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var te *repodb.EntryTypeError
		if !errors.As(err, &te) || te.Type != typ {
			t.Errorf("want EntryTypeError %q, got %#v", typ, te)
		}
	}
}

func wantDup(kind, value, first string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var de *repodb.DuplicateError
		if !errors.As(err, &de) || de.Kind != kind || de.Value != value || de.First != first {
			t.Errorf("want DuplicateError{%s %s %s}, got %#v", kind, value, first, de)
		}
	}
}

func wantField(field string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var fe *repodb.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("want FieldError for %s, got %#v", field, fe)
		}
	}
}

func wantLimit(limit string, max int64) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var le *repodb.LimitError
		if !errors.As(err, &le) || le.Limit != limit || le.Max != max || le.Got <= le.Max {
			t.Errorf("want LimitError{%s %d}, got %#v", limit, max, le)
		}
	}
}

// TestGeneratedRoundTrip: what repodbtest writes, repodb reads back
// unchanged, in every compression and as a .files database.
func TestGeneratedRoundTrip(t *testing.T) {
	for _, comp := range []string{"gzip", "zstd", "xz", "none"} {
		for _, files := range []bool{false, true} {
			o := repodbtest.Options{Compression: comp, Files: files, Seed: 7}
			var b bytes.Buffer
			if err := repodbtest.Generate(&b, 120, o); err != nil {
				t.Fatal(err)
			}
			got, err := repodb.Read(&b, repodb.Limits{})
			if err != nil {
				t.Fatalf("%s files=%v: %v", comp, files, err)
			}
			want := byName(repodbtest.Packages(120, o))
			if len(got) != 120 || len(want) != 120 {
				t.Fatalf("%s: %d packages, want 120", comp, len(got))
			}
			for _, p := range got {
				if w := want[p.Name]; !equalPkg(p, w) {
					t.Fatalf("%s: %s:\n got %+v\nwant %+v", comp, p.Name, p, w)
				}
			}
		}
	}
}
