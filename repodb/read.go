// Package repodb reads pacman sync databases (core.db, extra.files, …) as
// Debian's repo-add (pacman 6.0.2) writes them, strictly and within bounds,
// and only when libalpm would read the same packages from them.
//
// A database is a tar archive, compressed with gzip, zstd, xz or bzip2 or
// not at all; the format is sniffed from the magic bytes, never from the file
// name (the ".db" name is a symlink to any of them). It holds one directory
// NAME-VERSION/ per package with a desc file, and in a ".files" database also
// a files list.
//
// What libalpm does with a database (be_sync.c, measured with pacman
// 6.0.2): it takes a package's name and version from the member's
// directory name, reads the "desc", "depends" and "files" members of that
// directory and accepts every key in each, the last one winning; a second
// directory with the same package name merges into the first package. So a
// genuine desc followed by a "files" member carrying %FILENAME% and
// %SHA256SUM% makes pacman install a file no desc names (verified). repodb
// therefore accepts only databases where libalpm's reading and its own
// cannot differ: the tar archive is read by internal/ustar, which refuses
// every construct tar readers disagree on; a "files" member is "%FILES%"
// and non-empty lines only (no empty line after which libalpm would read
// keys again); a "depends" member (repo-add stopped writing it in pacman
// 4.2) is refused; every directory is NAME-VERSION of the one desc in it,
// and package names are unique.
//
// What is checked: everything ParseDesc checks, plus the archive shape
// (only directories and regular files, only "DIR/", "DIR/desc" and
// "DIR/files", no absolute or ".." paths, DIR = NAME-VERSION, every DIR has a
// desc), the files lists, uniqueness of tar entries, package names and
// filenames, the compressed stream's own checksum, that nothing but zero
// padding follows the tar end, and the bounds of Limits. What is trusted:
// the values themselves; a sync database is only as authentic as its
// source (callers verify packages against %SHA256SUM% and the transparency
// log, not the other way round).
//
// Decided leniencies, each where repo-add versions differ: %PGPSIG% is
// optional (pacman 6.1's repo-add omits it unless --include-sigs); the
// NAME-VERSION/ directory entries may be absent (bsdtar writes them, other
// archivers may not); field order inside a desc is free. Not accepted:
// the "depends" and "deltas" files of repo-add before pacman 4.2 / 5.2, and
// desc fields other than the 23 repo-add writes.
package repodb

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/bintrans/bintrans/internal/ustar"
)

// Limits bounds what a database may contain. Zero fields take the value of
// DefaultLimits; there is no "unlimited".
type Limits struct {
	// MaxDescSize is the largest desc file accepted, in bytes.
	MaxDescSize int64
	// MaxFilesSize is the largest "files" list of a .files database.
	MaxFilesSize int64
	// MaxEntries is the largest number of tar entries (directories and
	// files; a .files database has three per package).
	MaxEntries int64
	// MaxTotalSize bounds the decompressed stream (tar headers, contents
	// and padding together): it stops decompression bombs.
	MaxTotalSize int64
}

// Bounds on a repository's files as bintrans fetches them whole (the
// signer and the CI scanner), before Read sees them: the one place for
// both. Limits bound a database's content once decompressed.
const (
	// DefaultMaxDBSize bounds one sync database as fetched (compressed).
	// Arch's largest, extra.files, is about 60 MiB; extra.db about 8 MiB.
	DefaultMaxDBSize = 256 << 20
	// DefaultMaxPackageSize bounds one package file read to be hashed (or
	// streamed into gpg to check its signature).
	DefaultMaxPackageSize = 16 << 30
)

// DefaultLimits returns limits sized for real Arch Linux databases with
// room to grow: extra has about 15 000 packages with desc files of a few
// KiB (the largest part a %PGPSIG%, which repo-add caps at 16 KiB of
// signature, 21 848 bytes of base64); extra.files decompresses to a few
// hundred MiB, with single file lists up to a few MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxDescSize:  64 << 10,
		MaxFilesSize: 64 << 20,
		MaxEntries:   300_000,
		MaxTotalSize: 2 << 30,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDescSize <= 0 {
		l.MaxDescSize = d.MaxDescSize
	}
	if l.MaxFilesSize <= 0 {
		l.MaxFilesSize = d.MaxFilesSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	return l
}

// ReadFile reads the database at path (following a ".db" symlink) with Read.
// The file is streamed, never held in memory.
func ReadFile(path string, lim Limits) ([]Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, lim)
}

// Read returns every package of the database in r, in archive order. It
// returns packages only when the whole database is valid.
func Read(r io.Reader, lim Limits) ([]Package, error) {
	var pkgs []Package
	err := Walk(r, lim, func(p Package) error {
		pkgs = append(pkgs, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pkgs, nil
}

// Walk streams the database in r and calls fn for each package, in archive
// order, as soon as its desc is parsed; memory stays bounded by one desc and
// the decompressor's window, whatever the database size.
//
// fn may have been called for packages before Walk finds that a later part
// of the database is invalid; a caller that must not act on an invalid
// database collects first (as Read does) and acts only after Walk returned
// nil. An error returned by fn stops the walk and is returned unchanged;
// every other error is an *EntryError (see the sentinels for the causes).
func Walk(r io.Reader, lim Limits, fn func(Package) error) error {
	lim = lim.withDefaults()
	w := walker{lim: lim, fn: fn}
	return w.run(r)
}

type walker struct {
	lim Limits
	fn  func(Package) error

	last    string            // last tar entry read
	entries map[string]uint8  // directory → entryDir|entryDesc|entryFiles
	order   []string          // directories in order of appearance
	names   map[string]string // package name → its desc entry
	files   map[string]string // package filename → its desc entry
	buf     []byte
	fbuf    []byte // files lists are streamed through it
}

const (
	entryDir uint8 = 1 << iota
	entryDesc
	entryFiles
)

func (w *walker) fail(entry string, err error) error {
	return &EntryError{Entry: entry, Err: err}
}

func (w *walker) run(r io.Reader) error {
	br := bufio.NewReaderSize(sourceReader{r}, 64<<10)
	dec, err := decompressed(br)
	if err != nil {
		return w.fail("", err)
	}
	defer dec.Close()
	cr := &countingReader{r: dec, max: w.lim.MaxTotalSize}
	// The tar reader checks, past the end marker, that only zero padding
	// follows (bsdtar fills the last 10 KiB record) to the end of the
	// decompressed stream, whose checksum the decompressor verifies on
	// the way.
	tr := ustar.NewReader(bufio.NewReaderSize(cr, 64<<10), ustar.Limits{MaxEntries: w.lim.MaxEntries, MaxTotalSize: w.lim.MaxTotalSize})
	w.entries = make(map[string]uint8)
	w.names = make(map[string]string)
	w.files = make(map[string]string)

	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return w.tarFail(err)
		}
		w.last = hdr.Name
		if err := w.entry(tr, hdr); err != nil {
			return err
		}
	}
	for _, dir := range w.order {
		if w.entries[dir]&entryDesc == 0 {
			return w.fail(dir+"/", ErrMissingDesc)
		}
	}
	if err := dec.finish(); err != nil {
		return w.fail(w.last, err)
	}
	return nil
}

// tarFail turns an error of the tar reader into an *EntryError.
func (w *walker) tarFail(err error) error {
	var te *ustar.Error
	if !errors.As(err, &te) {
		return w.fail(w.last, streamErr(err))
	}
	entry := te.Entry
	if entry == "" {
		entry = w.last
	}
	var le *ustar.LimitError
	switch {
	case errors.As(te.Err, &le):
		return w.fail(entry, &LimitError{Limit: le.Limit, Max: le.Max, Got: le.Got})
	case errors.Is(te.Err, ustar.ErrType):
		return w.fail(entry, &EntryTypeError{Typeflag: te.Typeflag, Type: ustar.TypeName(te.Typeflag)})
	case errors.Is(te.Err, ustar.ErrUnsafeName):
		return w.fail(entry, &UnsafePathError{Reason: te.Reason})
	case errors.Is(te.Err, ustar.ErrTruncated), errors.Is(te.Err, ustar.ErrTrailingData), errors.Is(te.Err, ustar.ErrChecksum):
		return w.fail(entry, &TarError{Offset: te.Offset, Reason: te.Reason, Corrupt: true})
	case errors.Is(te.Err, ustar.ErrHeader), errors.Is(te.Err, ustar.ErrExtension), errors.Is(te.Err, ustar.ErrName):
		return w.fail(entry, &TarError{Offset: te.Offset, Reason: te.Reason})
	}
	return w.fail(entry, streamErr(te.Err)) // the decompressor's or the source's
}

func (w *walker) entry(tr *ustar.Reader, hdr ustar.Header) error {
	name := hdr.Name
	if err := checkPath(name); err != nil {
		return w.fail(name, err)
	}
	if hdr.Typeflag == ustar.TypeDir { // the only other type ustar returns is a regular file
		dir := strings.TrimSuffix(name, "/")
		if strings.Contains(dir, "/") || dir == "" || dir == "." {
			return w.fail(name, ErrUnexpectedEntry)
		}
		return w.mark(name, dir, entryDir)
	}
	dir, file := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || dir == "." || strings.Contains(dir, "/") {
		return w.fail(name, ErrUnexpectedEntry)
	}
	switch file {
	case "files":
		if hdr.Size > w.lim.MaxFilesSize {
			return w.fail(name, &LimitError{Limit: "MaxFilesSize", Max: w.lim.MaxFilesSize, Got: hdr.Size})
		}
		if err := w.mark(name, dir, entryFiles); err != nil {
			return err
		}
		if w.fbuf == nil {
			w.fbuf = make([]byte, 32<<10)
		}
		if err := checkFilesList(tr, w.fbuf); err != nil {
			if _, ok := err.(*FieldError); ok {
				return w.fail(name, err)
			}
			return w.tarFail(err)
		}
		return nil
	case "desc":
	default:
		return w.fail(name, ErrUnexpectedEntry)
	}
	if hdr.Size > w.lim.MaxDescSize {
		return w.fail(name, &LimitError{Limit: "MaxDescSize", Max: w.lim.MaxDescSize, Got: hdr.Size})
	}
	if err := w.mark(name, dir, entryDesc); err != nil {
		return err
	}
	if int64(cap(w.buf)) < hdr.Size {
		w.buf = make([]byte, hdr.Size)
	}
	b := w.buf[:hdr.Size]
	if _, err := io.ReadFull(tr, b); err != nil {
		return w.tarFail(err)
	}
	p, err := ParseDesc(b)
	if err != nil {
		return w.fail(name, err)
	}
	if want := p.Name + "-" + p.Version; dir != want {
		return w.fail(name, &DirMismatchError{Dir: dir, Want: want})
	}
	if first, dup := w.names[p.Name]; dup {
		return w.fail(name, &DuplicateError{Kind: "name", Value: p.Name, First: first})
	}
	if first, dup := w.files[p.Filename]; dup {
		return w.fail(name, &DuplicateError{Kind: "filename", Value: p.Filename, First: first})
	}
	w.names[p.Name] = name
	w.files[p.Filename] = name
	return w.fn(p)
}

// mark records that entry (of kind bit) exists in dir, refusing repeats.
func (w *walker) mark(entry, dir string, bit uint8) error {
	have, ok := w.entries[dir]
	if have&bit != 0 {
		return w.fail(entry, &DuplicateError{Kind: "entry", Value: entry, First: entry})
	}
	if !ok {
		w.order = append(w.order, dir)
	}
	w.entries[dir] = have | bit
	return nil
}

// checkPath refuses names that could escape an extraction directory.
func checkPath(name string) error {
	if strings.HasPrefix(name, "/") {
		return &UnsafePathError{Reason: "absolute path"}
	}
	for rest := name; rest != ""; {
		part, after, _ := strings.Cut(rest, "/")
		if part == ".." {
			return &UnsafePathError{Reason: `".." component`}
		}
		rest = after
	}
	if name == "" || strings.ContainsRune(name, '\\') || controlChar(name) >= 0 {
		return ErrUnexpectedEntry
	}
	return nil
}

// countingReader fails once more than max bytes were read through it.
type countingReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.max {
		// Allow a zero-length probe at exactly max; anything more is over.
		var one [1]byte
		if k, err := c.r.Read(one[:]); k > 0 {
			return 0, &LimitError{Limit: "MaxTotalSize", Max: c.max, Got: c.n + 1}
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if rem := c.max - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// maxLine is libalpm's longest line in a sync database member
// (_alpm_archive_fgets with buf.max_line_size = 512 KiB, be_sync.c): a
// longer one fails pacman's reading of the database.
const maxLine = 512<<10 - 1

// checkFilesList reads the content of a "files" member from r and accepts
// exactly what repo-add writes there: "%FILES%", then one package path per
// line, each line non-empty, without control characters, ending in a
// newline. libalpm reads the member with the desc parser: the file list
// ends at the first empty line (or the end), and every key after it counts,
// so anything else could override %FILENAME% or %SHA256SUM% behind the
// desc's back (bypass B7).
func checkFilesList(r io.Reader, buf []byte) error {
	var head []byte // the first line, up to 64 bytes
	inHead := true
	line, col := 1, 0
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if inHead {
				if c != '\n' {
					if head = append(head, c); len(head) > 64 {
						return filesHeadError(head)
					}
					continue
				}
				if string(head) != "%FILES%" {
					return filesHeadError(head)
				}
				inHead = false
				continue
			}
			switch {
			case c == '\n':
				if col == 0 {
					return &FieldError{File: "files", Field: "FILES", Line: line + 1, Reason: "empty line: libalpm ends the file list there and reads what follows as desc keys", Err: ErrMalformed}
				}
				line++
				col = 0
			case c < 0x20 || c == 0x7f:
				return &FieldError{File: "files", Field: "FILES", Line: line + 1, Reason: "control character " + strconv.QuoteRune(rune(c)) + " in a file name", Err: ErrMalformed}
			default:
				col++
				if col > maxLine {
					return &FieldError{File: "files", Field: "FILES", Line: line + 1, Reason: "line longer than libalpm reads (512 KiB)", Err: ErrMalformed}
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if inHead {
		return filesHeadError(head)
	}
	if col != 0 {
		return &FieldError{File: "files", Field: "FILES", Line: line + 1, Reason: "missing newline at the end", Err: ErrMalformed}
	}
	return nil
}

func filesHeadError(b []byte) error {
	l := string(b)
	if len(l) >= 3 && l[0] == '%' && l[len(l)-1] == '%' {
		return &FieldError{File: "files", Field: cut(l[1 : len(l)-1]), Line: 1, Reason: "a files list starts with %FILES%: libalpm would read any desc key here", Err: ErrUnknownField}
	}
	return &FieldError{File: "files", Line: 1, Value: cut(l), Reason: "want %FILES% on the first line", Err: ErrMalformed}
}
