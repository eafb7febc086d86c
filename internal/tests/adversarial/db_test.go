package adversarial

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
)

// tarEntry is one member of a hand-made database archive.
type tarEntry struct {
	name     string
	typeflag byte
	body     []byte
	size     int64 // header size when body is nil (a claim the stream may not keep)
	link     string
}

func goodDesc(t testing.TB, i int) (dir string, desc []byte) {
	t.Helper()
	p := repodbtest.Packages(i+1, repodbtest.Options{NoPGPSig: true})[i]
	return p.Name + "-" + p.Version, repodbtest.Desc(p)
}

// dbArchive writes the entries as a gzip'ed tar, as repo-add would.
func dbArchive(t testing.TB, ents []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Linkname: e.link, Format: tar.FormatUSTAR}
		if e.typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		h.Size = int64(len(e.body))
		if e.body == nil && e.size > 0 {
			h.Size = e.size // ustar holds up to 8 GiB
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != nil {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		} else if e.size > 0 {
			// Stream the claimed size as zeros (a bomb: gzip shrinks it to
			// about 1/1000).
			zero := make([]byte, 1<<20)
			for left := e.size; left > 0; left -= int64(len(zero)) {
				if _, err := tw.Write(zero[:min(left, int64(len(zero)))]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDatabaseAdversarial(t *testing.T) {
	dir0, desc0 := goodDesc(t, 0)
	dir1, desc1 := goodDesc(t, 1)
	good := []tarEntry{{name: dir0 + "/", typeflag: tar.TypeDir}, {name: dir0 + "/desc", body: desc0}}
	withGood := func(ents ...tarEntry) []byte { return dbArchive(t, append(append([]tarEntry(nil), good...), ents...)) }

	// Another version of package 0 (its own directory and file name): two
	// packages with one name.
	p0 := repodbtest.Packages(1, repodbtest.Options{NoPGPSig: true})[0]
	p0.Version, p0.Filename = "99.0-1", p0.Name+"-99.0-1-x86_64.pkg.tar.zst"
	dupDir, dupDesc := p0.Name+"-"+p0.Version, repodbtest.Desc(p0)

	cases := []struct {
		name string
		db   []byte
		lim  repodb.Limits
		// sentinel is matched with errors.Is; typed, when set, with errors.As.
		sentinel error
		typed    any
	}{
		{name: "db/path-traversal", db: withGood(tarEntry{name: "../../etc/cron.d/", typeflag: tar.TypeDir}),
			sentinel: repodb.ErrUnsafePath, typed: (*repodb.UnsafePathError)(nil)},
		{name: "db/path-traversal-inside-name", db: withGood(tarEntry{name: dir1 + "/../../desc", body: desc1}),
			sentinel: repodb.ErrUnsafePath, typed: (*repodb.UnsafePathError)(nil)},
		{name: "db/absolute-path", db: withGood(tarEntry{name: "/" + dir1 + "/desc", body: desc1}),
			sentinel: repodb.ErrUnsafePath, typed: (*repodb.UnsafePathError)(nil)},
		{name: "db/symlink-entry", db: withGood(tarEntry{name: dir1 + "/desc", typeflag: tar.TypeSymlink, link: "/etc/shadow"}),
			sentinel: repodb.ErrEntryType, typed: (*repodb.EntryTypeError)(nil)},
		{name: "db/symlink-directory", db: withGood(tarEntry{name: dir1, typeflag: tar.TypeSymlink, link: "/"}),
			sentinel: repodb.ErrEntryType, typed: (*repodb.EntryTypeError)(nil)},
		{name: "db/hardlink-entry", db: withGood(tarEntry{name: dir1 + "/desc", typeflag: tar.TypeLink, link: dir0 + "/desc"}),
			sentinel: repodb.ErrEntryType, typed: (*repodb.EntryTypeError)(nil)},
		{name: "db/device-entry", db: withGood(tarEntry{name: dir1 + "/desc", typeflag: tar.TypeChar}),
			sentinel: repodb.ErrEntryType, typed: (*repodb.EntryTypeError)(nil)},
		{name: "db/duplicate-tar-entry", db: withGood(tarEntry{name: dir0 + "/desc", body: desc0}),
			sentinel: repodb.ErrDuplicate, typed: (*repodb.DuplicateError)(nil)},
		{name: "db/duplicate-package-name", db: withGood(tarEntry{name: dupDir + "/", typeflag: tar.TypeDir}, tarEntry{name: dupDir + "/desc", body: dupDesc}),
			sentinel: repodb.ErrDuplicate, typed: (*repodb.DuplicateError)(nil)},
		{name: "db/desc-in-wrong-directory", db: withGood(tarEntry{name: dir1 + "/", typeflag: tar.TypeDir}, tarEntry{name: dir1 + "/desc", body: desc0}),
			sentinel: repodb.ErrDirMismatch, typed: (*repodb.DirMismatchError)(nil)},
		// A desc whose tar header claims 4 GiB (and is cut short): refused
		// from the header, before any byte is read or allocated.
		{name: "db/desc-claims-4GiB", db: claimHuge(t, good, dir1+"/desc", 4<<30),
			sentinel: repodb.ErrLimit, typed: (*repodb.LimitError)(nil)},
		{name: "db/zip-bomb-files-list", db: withGood(tarEntry{name: dir0 + "/files", size: 20 << 20}),
			lim: repodb.Limits{MaxFilesSize: 16 << 20}, sentinel: repodb.ErrLimit, typed: (*repodb.LimitError)(nil)},
		{name: "db/zip-bomb-total-size", db: withGood(tarEntry{name: dir0 + "/files", size: 20 << 20}),
			lim: repodb.Limits{MaxTotalSize: 8 << 20}, sentinel: repodb.ErrLimit, typed: (*repodb.LimitError)(nil)},
		{name: "db/too-many-entries", db: func() []byte {
			var ents []tarEntry
			for i := range 12 {
				d, desc := goodDesc(t, i)
				ents = append(ents, tarEntry{name: d + "/", typeflag: tar.TypeDir}, tarEntry{name: d + "/desc", body: desc})
			}
			return dbArchive(t, ents)
		}(), lim: repodb.Limits{MaxEntries: 10}, sentinel: repodb.ErrLimit, typed: (*repodb.LimitError)(nil)},
		{name: "db/unknown-compression-zip", db: []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00 not a db"),
			sentinel: repodb.ErrUnknownCompression, typed: (*repodb.CompressionError)(nil)},
		{name: "db/truncated-gzip", db: func() []byte { b := withGood(); return b[:len(b)/2] }(), sentinel: repodb.ErrCorrupt},
		{name: "db/trailing-garbage", db: append(withGood(), "<html>mirror error page</html>"...), sentinel: repodb.ErrCorrupt},
		{name: "db/top-level-file", db: withGood(tarEntry{name: "desc", body: desc1}), sentinel: repodb.ErrUnexpectedEntry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, err := repodb.Read(bytes.NewReader(tc.db), tc.lim)
			if err == nil {
				t.Fatalf("accepted (%d packages)", len(pkgs))
			}
			t.Logf("%v", err)
			// Nothing half-read is handed to the caller.
			if len(pkgs) != 0 {
				t.Errorf("%d packages returned with the error", len(pkgs))
			}
			var ee *repodb.EntryError
			if !errors.As(err, &ee) {
				t.Errorf("error %v (%T) is not a *repodb.EntryError", err, err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("error %v does not match %v", err, tc.sentinel)
			}
			if tc.typed != nil {
				if _, ok := asType(err, tc.typed); !ok {
					t.Errorf("error %v (%T), want %s in its chain", err, err, typeName(tc.typed))
				}
			}
		})
	}
}

// claimHuge writes good entries, then a tar header for name claiming size
// bytes, followed by a few bytes and the end of the gzip stream.
func claimHuge(t testing.TB, good []tarEntry, name string, size int64) []byte {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, e := range good {
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("%NAME%\n")) // and nothing more: the stream ends
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	return buf.Bytes()
}
