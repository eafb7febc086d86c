package ustar_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/bintrans/bintrans/internal/testkit/laoracle"
	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/ustar"
)

// agree checks the differential property on one archive: the strict reader
// refuses it, or libarchive (set up as libalpm sets it up) accepts it as a
// plain tar and lists exactly the same entries: names, types, sizes and
// contents. It returns whether the reader accepted.
func agree(t *testing.T, o *laoracle.Oracle, data []byte) bool {
	t.Helper()
	ents, err := list(data, ustar.Limits{MaxTotalSize: 1 << 30})
	if err != nil {
		return false // refusing is always allowed
	}
	la, err := o.List(data)
	if err != nil {
		t.Fatal(err)
	}
	mine := describe(ents)
	if !la.Accepted {
		t.Fatalf("accepted an archive libalpm refuses (%s)\nustar:\n%s\nlibarchive:\n%s", la.Problem, mine, la)
	}
	var theirs []string
	for _, e := range la.Entries {
		typ := byte('?')
		switch {
		case e.Type == laoracle.TypeReg && e.Hardlink == nil && e.Symlink == nil:
			typ = ustar.TypeReg
		case e.Type == laoracle.TypeDir:
			typ = ustar.TypeDir
		}
		if !strings.Contains(e.Format, "tar") && !strings.Contains(e.Format, "pax") {
			t.Errorf("libarchive read it as %q, not as tar", e.Format)
		}
		theirs = append(theirs, fmt.Sprintf("%c %q %d %x", typ, e.Name, e.Size, e.Data))
	}
	if strings.Join(mine, "\n") != strings.Join(theirs, "\n") || len(la.Filters) != 1 || la.Filters[0] != "none" {
		t.Fatalf("readers disagree\nustar:\n%s\nlibarchive (filters %v):\n%s", strings.Join(mine, "\n"), la.Filters, strings.Join(theirs, "\n"))
	}
	return true
}

func describe(ents []entry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, fmt.Sprintf("%c %q %d %x", e.hdr.Typeflag, e.hdr.Name, e.hdr.Size, e.data))
	}
	return out
}

// TestLibarchiveAgreement runs the corpus and real archives written by
// repo-add and by bsdtar the way makepkg runs it through the reader and
// through libarchive: whatever the reader accepts, libarchive lists
// identically; the legitimate cases are accepted; every hostile one is
// refused, and the log shows what libarchive would have made of it.
func TestLibarchiveAgreement(t *testing.T) {
	o := laoracle.Get(t)
	cases := append(tarcorpus.TarCases(), realArchives(t)...)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			accepted := agree(t, o, c.Data)
			if accepted != c.Accept {
				t.Errorf("accepted = %v, want %v (%s)", accepted, c.Accept, c.Why)
			}
			if !accepted {
				la, _ := o.List(c.Data)
				t.Logf("refused; libarchive: %s", la)
			}
		})
	}
}

// realArchives builds a repository with Debian's repo-add (an uncompressed
// .db.tar, and its .files) and packages as makepkg lays them out, and
// returns their tar streams.
func realArchives(t *testing.T) []tarcorpus.Case {
	t.Helper()
	if testing.Short() {
		return nil
	}
	dir := t.TempDir()
	deep := "usr/share/" + strings.Repeat("deep/", 25) + "file.txt" // > 100 bytes: prefix field
	var paths []string
	for _, p := range []testenv.Pkg{
		{Name: "plain", Version: "1.0-1", Files: map[string]string{"usr/bin/plain": "#!/bin/sh\n", deep: "deep\n"}},
		{Name: "epoch", Version: "2:0.1-3", Files: map[string]string{"etc/epoch.conf": "x=1\n"}, Size: 3000},
	} {
		paths = append(paths, testenv.BuildPackage(t, dir, p))
	}
	testenv.RepoAdd(t, filepath.Join(dir, "real.db.tar"), paths...)
	var out []tarcorpus.Case
	for _, name := range []string{"real.db.tar", "real.files.tar"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarcorpus.Case{Name: "repo-add-" + name, Data: b, Accept: true, Why: "written by repo-add"})
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := dec.DecodeAll(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarcorpus.Case{Name: "package-" + filepath.Base(p), Data: raw, Accept: true, Why: "a package as makepkg writes it"})
	}
	// A file name bsdtar cannot convert under LANG=C (as makepkg runs it):
	// it writes a pax header with hdrcharset=BINARY, which is refused.
	odd := testenv.BuildPackage(t, dir, testenv.Pkg{Name: "odd", Version: "1-1", Files: map[string]string{"usr/share/odd/caf\xe9": "x"}})
	b, err := os.ReadFile(odd)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dec.DecodeAll(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("hdrcharset=BINARY")) {
		t.Fatalf("bsdtar wrote no hdrcharset record for a non-UTF-8 name")
	}
	out = append(out, tarcorpus.Case{Name: "package-hdrcharset", Data: raw, Why: "bsdtar's hdrcharset=BINARY pax header for a non-UTF-8 name"})
	return out
}

// FuzzLibarchive is the open-ended differential test: for every input (its
// header checksums fixed up), the reader refuses it or libarchive lists
// exactly what the reader lists. The oracle is one process for the whole
// run (about 10 µs per query plus libarchive's own work).
func FuzzLibarchive(f *testing.F) {
	for _, c := range tarcorpus.TarCases() {
		if len(c.Data) < 64<<10 {
			f.Add(c.Data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		agree(t, laoracle.Get(t), tarcorpus.FixChecksums(data))
	})
}

// FuzzReader: the reader never panics, fails only with *Error, consumes
// exactly the input when it accepts, and what it accepts obeys the rules
// on names and types.
func FuzzReader(f *testing.F) {
	for _, c := range tarcorpus.TarCases() {
		if len(c.Data) < 64<<10 {
			f.Add(c.Data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = tarcorpus.FixChecksums(data)
		r := ustar.NewReader(bytes.NewReader(data), ustar.Limits{MaxTotalSize: 1 << 20, MaxEntries: 1000})
		for {
			h, err := r.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					if r.Offset() != int64(len(data)) {
						t.Fatalf("accepted after %d of %d bytes", r.Offset(), len(data))
					}
					return
				}
				if _, ok := err.(*ustar.Error); !ok {
					t.Fatalf("error %T: %v", err, err)
				}
				return
			}
			n := h.Name
			if n == "" || n[0] == '/' || strings.Contains(n, "//") || strings.Contains("/"+n+"/", "/../") ||
				strings.Contains("/"+n+"/", "/./") || (h.Typeflag == ustar.TypeDir) != strings.HasSuffix(n, "/") ||
				(h.Typeflag != ustar.TypeDir && h.Typeflag != ustar.TypeReg) || (h.Typeflag == ustar.TypeDir && h.Size != 0) {
				t.Fatalf("accepted %q typeflag %q size %d", n, h.Typeflag, h.Size)
			}
			for i := 0; i < len(n); i++ {
				if n[i] < 0x20 || n[i] == 0x7f {
					t.Fatalf("accepted control character in %q", n)
				}
			}
		}
	})
}
