package ustar_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
	"github.com/bintrans/bintrans/internal/ustar"
)

// entry is what the reader returns for one member.
type entry struct {
	hdr  ustar.Header
	data []byte
}

// list reads the whole archive.
func list(data []byte, lim ustar.Limits) ([]entry, error) {
	r := ustar.NewReader(bytes.NewReader(data), lim)
	var out []entry
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return out, err
		}
		out = append(out, entry{h, b})
	}
}

// TestCorpus: every legitimate construct of the corpus is accepted and
// every hostile one refused, with an *Error that carries a sentinel.
func TestCorpus(t *testing.T) {
	sentinels := []error{ustar.ErrChecksum, ustar.ErrHeader, ustar.ErrType, ustar.ErrExtension, ustar.ErrName,
		ustar.ErrUnsafeName, ustar.ErrTruncated, ustar.ErrTrailingData, ustar.ErrLimit}
	for _, c := range tarcorpus.TarCases() {
		t.Run(c.Name, func(t *testing.T) {
			ents, err := list(c.Data, ustar.Limits{MaxTotalSize: 1 << 30})
			if c.Accept {
				if err != nil {
					t.Fatalf("refused a legitimate archive (%s): %v", c.Why, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted (%s): %d entries", c.Why, len(ents))
			}
			var e *ustar.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *ustar.Error: %v", err, err)
			}
			known := false
			for _, s := range sentinels {
				known = known || errors.Is(err, s)
			}
			if !known {
				t.Errorf("error %v matches no sentinel", err)
			}
			t.Logf("%s: %v", c.Why, err)
		})
	}
}

func TestAcceptedFields(t *testing.T) {
	long := strings.Repeat("d", 90) + "/" + strings.Repeat("f", 60)
	data := tarcorpus.Cat(tarcorpus.Dir("a/"), tarcorpus.Pax("uid", "3000000", "mtime", "1700000001.5"),
		tarcorpus.File("a/desc", "hello\n"), tarcorpus.FileH(tarcorpus.Hdr{Name: long[91:], Prefix: long[:90]}, "x"), tarcorpus.End())
	ents, err := list(data, ustar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, e := range ents {
		got = append(got, fmt.Sprintf("%c %s %d uid=%d mtime=%d %q", e.hdr.Typeflag, e.hdr.Name, e.hdr.Size, e.hdr.UID, e.hdr.ModTime, e.data))
	}
	want := []string{
		`5 a/ 0 uid=0 mtime=1700000000 ""`,
		`0 a/desc 6 uid=3000000 mtime=1700000001 "hello\n"`,
		`0 ` + long + ` 1 uid=0 mtime=1700000000 "x"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ents[1].hdr.Offset != 512 {
		t.Errorf("a/desc Offset = %d, want 512 (its pax header)", ents[1].hdr.Offset)
	}
}

// TestErrorsNameEntry: the error names the entry, the offset and the
// reason, and the type for a refused typeflag.
func TestErrorsNameEntry(t *testing.T) {
	data := tarcorpus.Cat(tarcorpus.File("a/desc", "A\n"), tarcorpus.FileH(tarcorpus.Hdr{Name: "b/desc", Typeflag: '2', Linkname: "/etc/shadow"}, ""), tarcorpus.End())
	_, err := list(data, ustar.Limits{})
	var e *ustar.Error
	if !errors.As(err, &e) || e.Entry != "b/desc" || e.Offset != 1024 || e.Typeflag != '2' || !errors.Is(err, ustar.ErrType) {
		t.Fatalf("got %#v", e)
	}
	if msg := err.Error(); msg != `tar entry "b/desc" at byte 1024: symlink (typeflag '2') not accepted` {
		t.Errorf("message %q", msg)
	}
	// The pax bypass names the entry and both names.
	data = tarcorpus.Cat(tarcorpus.Pax("path", "foo-6.6-1/desc"), tarcorpus.File("foo-1.0-1/desc", "X\n"), tarcorpus.End())
	_, err = list(data, ustar.Limits{})
	if !errors.As(err, &e) || e.Entry != "foo-1.0-1/desc" || !errors.Is(err, ustar.ErrExtension) || !strings.Contains(err.Error(), `"foo-6.6-1/desc"`) {
		t.Fatalf("got %v", err)
	}
}

func TestLimits(t *testing.T) {
	three := tarcorpus.Cat(tarcorpus.File("a", "1"), tarcorpus.File("b", "2"), tarcorpus.File("c", "3"), tarcorpus.End())
	for _, tc := range []struct {
		name  string
		data  []byte
		lim   ustar.Limits
		limit string
		entry string
	}{
		{"entries", three, ustar.Limits{MaxEntries: 2}, "MaxEntries", "c"},
		{"total", three, ustar.Limits{MaxTotalSize: 2000}, "MaxTotalSize", "b"},
		{"total claimed", tarcorpus.Cat(tarcorpus.Hdr{Name: "big", Size: 1 << 40}.Block(), tarcorpus.End()), ustar.Limits{}, "MaxTotalSize", "big"},
		{"pax", tarcorpus.Cat(tarcorpus.Pax("path", strings.Repeat("p", 200)), tarcorpus.File(strings.Repeat("p", 200), ""), tarcorpus.End()), ustar.Limits{MaxPaxSize: 100}, "MaxPaxSize", "PaxHeader/x"},
		{"zeros after the end", tarcorpus.Cat(tarcorpus.File("a", "1"), make([]byte, 1<<20)), ustar.Limits{MaxTotalSize: 64 << 10}, "MaxTotalSize", "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := list(tc.data, tc.lim)
			var le *ustar.LimitError
			var e *ustar.Error
			if !errors.As(err, &le) || le.Limit != tc.limit || le.Got <= le.Max || !errors.Is(err, ustar.ErrLimit) || !errors.As(err, &e) || e.Entry != tc.entry {
				t.Fatalf("got %v (%#v), want a %s LimitError for %q", err, le, tc.limit, tc.entry)
			}
		})
	}
}

// TestUnderlyingError: a read error of the source comes through as itself.
func TestUnderlyingError(t *testing.T) {
	boom := errors.New("disk on fire")
	data := tarcorpus.Cat(tarcorpus.File("a/desc", strings.Repeat("x", 5000)), tarcorpus.End())
	r := ustar.NewReader(io.MultiReader(bytes.NewReader(data[:3000]), errReader{boom}), ustar.Limits{})
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := io.ReadAll(r)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if _, err2 := r.Next(); !errors.Is(err2, boom) {
		t.Fatalf("error not sticky: %v", err2)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestSkipUnread: Next skips content the caller did not read, and still
// checks its padding.
func TestSkipUnread(t *testing.T) {
	data := tarcorpus.Cat(tarcorpus.File("a", strings.Repeat("x", 70000)), tarcorpus.File("b", "y"), tarcorpus.End())
	r := ustar.NewReader(bytes.NewReader(data), ustar.Limits{})
	var names []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != "a,b" || r.Offset() != int64(len(data)) {
		t.Fatalf("names %v, offset %d of %d", names, r.Offset(), len(data))
	}
	bad := append([]byte(nil), data...)
	bad[512+70000+3] = 'z' // in a's padding
	r = ustar.NewReader(bytes.NewReader(bad), ustar.Limits{})
	r.Next()
	if _, err := r.Next(); !errors.Is(err, ustar.ErrHeader) {
		t.Fatalf("padding junk: %v", err)
	}
}
