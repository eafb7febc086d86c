// Package ustar reads the one tar dialect that every tar reader in sight
// (libarchive 3.6, which libalpm and bsdtar use; Go's archive/tar; GNU tar)
// turns into the same list of entries, and refuses everything else.
//
// Why not archive/tar: pacman reads sync databases and packages with
// libarchive, and on many constructs libarchive and Go disagree on what the
// entries are (measured with libarchive 3.6.2 and Go 1.26; see
// docs/SECURITY.md, "Parser differentials"): a pax "path" next to a GNU
// long name, a header whose magic is "ustar" plus a sixth byte other than
// NUL (Go: V7, prefix ignored; libarchive: prefix used), a
// regular file whose name ends in "/" (libarchive: a directory whose body
// is read as further headers; Go: skipped), a single zero block followed
// by entries (libarchive: the end; Go: an error), GNU.sparse.name, 'X' and
// 'g' headers, and more. A reader that answers for libalpm must see what
// libalpm sees; the only way to be sure is to accept only what has a
// single reading, and no library offers that.
//
// What is accepted is what repo-add (bsdtar's restricted pax format) and
// makepkg write, minus links:
//
//   - every header has magic "ustar\0" and version "00" exactly, a checksum
//     field of octal digits then NULs or spaces whose value is the
//     unsigned byte sum, numeric fields of octal digits then NULs or
//     spaces, NUL-padded name, prefix, uname and gname fields with nothing
//     after the first NUL, an empty linkname and zero padding;
//   - typeflag '0' (regular file) and '5' (directory); the name of a
//     directory ends in "/" and its size is 0, the name of a file does not;
//   - the name is prefix + "/" + name when the prefix is set (the prefix
//     does not end in "/"), and is relative, with no empty, "." or ".."
//     component and no control character;
//   - at most one pax extended header ('x') directly before an entry, with
//     records "path" (printable ASCII, equal to the entry's own name),
//     "uid", "gid" and "mtime" only (what bsdtar adds for large ids), each
//     at most once, in canonical "LEN key=value\n" form;
//   - the archive ends with a zero block, and every byte after it, to the
//     end of the stream, is zero (libarchive stops reading at the first
//     zero block, so nothing may hide behind it); file contents are padded
//     with zeros.
//
// Everything else is refused with an *Error naming the entry, the offset
// and the reason: other magics and versions (GNU, V7, "ustar" with any
// other sixth byte), base-256 and non-canonical numbers, a checksum that
// only the signed sum matches, every other typeflag (links, devices, fifos,
// GNU 'L'/'K'/'S'/'D'/'M'/'N'/'V', pax 'g', Solaris 'X'/'A', contiguous
// files, unknown), stacked extension headers, pax records other than the
// four above (size, linkpath, hdrcharset, GNU.sparse.*, …), a truncated
// archive, and a missing end marker. The bounds of Limits apply.
//
// The differential tests in this package hold every accepted archive
// against libarchive itself (internal/testkit/laoracle).
package ustar

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// BlockSize is the tar block size.
const BlockSize = 512

// Typeflags of the entries Next returns.
const (
	TypeReg = '0'
	TypeDir = '5'
)

// Limits bounds what a Reader accepts. Zero fields take the value of
// DefaultLimits.
type Limits struct {
	// MaxEntries is the largest number of entries (pax headers not
	// counted).
	MaxEntries int64
	// MaxPaxSize is the largest pax extended header body, in bytes
	// (libarchive refuses more than 1 MiB; bsdtar's are under 1 KiB).
	MaxPaxSize int64
	// MaxTotalSize bounds the bytes read from the stream: headers,
	// contents, padding and the zeros after the end marker.
	MaxTotalSize int64
}

// DefaultLimits returns generous bounds: a million entries, 64 KiB pax
// headers, 8 GiB of stream.
func DefaultLimits() Limits {
	return Limits{MaxEntries: 1 << 20, MaxPaxSize: 64 << 10, MaxTotalSize: 8 << 30}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxPaxSize <= 0 {
		l.MaxPaxSize = d.MaxPaxSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	return l
}

// Header is an accepted entry. Name is exactly what libarchive's
// archive_entry_pathname returns for it (directories keep their trailing
// "/").
type Header struct {
	Name     string
	Typeflag byte  // TypeReg or TypeDir
	Size     int64 // content bytes (0 for a directory)
	Mode     int64
	UID, GID int64
	ModTime  int64 // Unix seconds (a pax mtime's fraction is dropped)
	Offset   int64 // stream offset of the entry's first header block (its pax header, if any)
}

// Reader reads an archive entry by entry. It streams: memory is one block,
// one pax header and the read-ahead buffer, whatever the archive size.
type Reader struct {
	r   *bufio.Reader
	lim Limits

	off   int64  // bytes consumed from r
	left  int64  // unread content bytes of the current entry
	pad   int64  // zero padding after the current entry's content
	cur   string // current entry
	n     int64  // entries returned
	done  bool
	err   error // sticky
	blk   [BlockSize]byte
	inner [BlockSize]byte
	pax   []byte
}

// NewReader returns a Reader of the tar stream r.
func NewReader(r io.Reader, lim Limits) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 32<<10 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{r: br, lim: lim.withDefaults()}
}

// Next advances to the next entry, skipping what is left of the current
// one's content (which must be followed by zero padding). At the end of the
// archive, after checking the end marker and that only zeros follow it to
// the end of r, it returns io.EOF. Every other error is an *Error, and is
// returned again by every later call.
func (t *Reader) Next() (Header, error) {
	if t.err != nil {
		return Header{}, t.err
	}
	if t.done {
		return Header{}, io.EOF
	}
	h, err := t.next()
	if err != nil {
		if err == io.EOF {
			t.done = true
			return Header{}, io.EOF
		}
		t.err = err
		return Header{}, err
	}
	t.cur = h.Name
	return h, nil
}

// Read reads the current entry's content. It returns io.EOF at the end of
// the content, and an *Error when the stream ends early or fails.
func (t *Reader) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	if t.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n, err := t.r.Read(p)
	t.off += int64(n)
	t.left -= int64(n)
	if err != nil && (t.left > 0 || err != io.EOF) {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		t.err = t.ioErr(t.cur, t.off, err)
		return n, t.err
	}
	return n, nil
}

// Offset is the number of stream bytes consumed so far.
func (t *Reader) Offset() int64 { return t.off }

func (t *Reader) next() (Header, error) {
	if err := t.skipContent(); err != nil {
		return Header{}, err
	}
	start := t.off
	if err := t.readBlock(&t.blk, t.cur, true); err != nil {
		return Header{}, err
	}
	if isZero(t.blk[:]) {
		return Header{}, t.end(start)
	}
	h, err := parse(&t.blk, start)
	if err != nil {
		return Header{}, err
	}
	if h.Typeflag == 'x' {
		var err error
		if h, err = t.paxEntry(h); err != nil {
			return Header{}, err
		}
	}
	if err := h.check(); err != nil {
		return Header{}, err
	}
	t.n++
	if t.n > t.lim.MaxEntries {
		return Header{}, t.limitErr(h.Name, start, "MaxEntries", t.lim.MaxEntries, t.n)
	}
	end := t.off + h.Size + padOf(h.Size)
	if end > t.lim.MaxTotalSize || end < t.off {
		return Header{}, t.limitErr(h.Name, start, "MaxTotalSize", t.lim.MaxTotalSize, end)
	}
	h.Offset = start
	t.left, t.pad = h.Size, padOf(h.Size)
	return h.Header, nil
}

// paxEntry reads the body of the pax header x, then the entry it describes,
// and applies the records.
func (t *Reader) paxEntry(x rawHeader) (rawHeader, error) {
	if x.Size == 0 {
		return x, newErr(ErrExtension, x.Name, x.start, "empty pax extended header")
	}
	if x.Size > t.lim.MaxPaxSize {
		return x, t.limitErr(x.Name, x.start, "MaxPaxSize", t.lim.MaxPaxSize, x.Size)
	}
	if cap(t.pax) < int(x.Size) {
		t.pax = make([]byte, x.Size)
	}
	body := t.pax[:x.Size]
	if err := t.readFull(body, x.Name); err != nil {
		return x, err
	}
	if err := t.readPadding(padOf(x.Size), x.Name); err != nil {
		return x, err
	}
	recs, err := parsePax(body, x)
	if err != nil {
		return x, err
	}
	innerStart := t.off
	if err := t.readBlock(&t.inner, x.Name, false); err != nil {
		return x, err
	}
	if isZero(t.inner[:]) {
		return x, newErr(ErrExtension, x.Name, x.start, "pax extended header followed by the end-of-archive marker, not by its entry")
	}
	h, err := parse(&t.inner, innerStart)
	if err != nil {
		return h, err
	}
	if h.Typeflag == 'x' {
		return h, newErr(ErrExtension, h.Name, innerStart, "two pax extended headers in a row (libarchive merges them in its own way)")
	}
	if recs.path != nil && *recs.path != h.Name {
		return h, newErr(ErrExtension, h.Name, x.start, fmt.Sprintf("pax path %q differs from the header's name %q (readers disagree on which one names the entry)", *recs.path, h.Name))
	}
	if recs.uid >= 0 {
		h.UID = recs.uid
	}
	if recs.gid >= 0 {
		h.GID = recs.gid
	}
	if recs.mtime >= 0 {
		h.ModTime = recs.mtime
	}
	h.start = x.start
	return h, nil
}

// end handles the first zero block (at offset start): everything after it
// must be zero, to the end of the stream.
func (t *Reader) end(start int64) error {
	var buf [32 << 10]byte
	for {
		k, err := t.r.Read(buf[:])
		if !isZero(buf[:k]) {
			at := t.off + int64(firstNonZero(buf[:k]))
			return newErr(ErrTrailingData, t.cur, at, fmt.Sprintf("non-zero data after the end-of-archive marker at byte %d (libarchive stops at the first zero block and never reads it)", start))
		}
		t.off += int64(k)
		if t.off > t.lim.MaxTotalSize {
			return t.limitErr(t.cur, start, "MaxTotalSize", t.lim.MaxTotalSize, t.off)
		}
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return t.ioErr(t.cur, t.off, err)
		}
	}
}

// skipContent consumes the rest of the current entry and its padding.
func (t *Reader) skipContent() error {
	for t.left > 0 {
		n, err := t.r.Discard(int(min(t.left, 1<<30)))
		t.off += int64(n)
		t.left -= int64(n)
		if err != nil && t.left > 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return t.ioErr(t.cur, t.off, err)
		}
	}
	pad := t.pad
	t.pad = 0
	return t.readPadding(pad, t.cur)
}

func (t *Reader) readPadding(n int64, entry string) error {
	if n == 0 {
		return nil
	}
	var p [BlockSize]byte
	at := t.off
	if err := t.readFull(p[:n], entry); err != nil {
		return err
	}
	if !isZero(p[:n]) {
		return newErr(ErrHeader, entry, at+int64(firstNonZero(p[:n])), "non-zero padding after the entry's content")
	}
	return nil
}

// readBlock reads one header block. A clean end of the stream where a
// header should start is an error too: repo-add and makepkg always write
// the end marker.
func (t *Reader) readBlock(b *[BlockSize]byte, entry string, atBoundary bool) error {
	if t.off+BlockSize > t.lim.MaxTotalSize {
		return t.limitErr(entry, t.off, "MaxTotalSize", t.lim.MaxTotalSize, t.off+BlockSize)
	}
	n, err := io.ReadFull(t.r, b[:])
	t.off += int64(n)
	switch {
	case err == nil:
		return nil
	case err == io.EOF && atBoundary:
		return newErr(ErrTruncated, entry, t.off, "the archive ends without an end-of-archive marker")
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	return t.ioErr(entry, t.off, err)
}

func (t *Reader) readFull(p []byte, entry string) error {
	if t.off+int64(len(p)) > t.lim.MaxTotalSize {
		return t.limitErr(entry, t.off, "MaxTotalSize", t.lim.MaxTotalSize, t.off+int64(len(p)))
	}
	n, err := io.ReadFull(t.r, p)
	t.off += int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return t.ioErr(entry, t.off, err)
	}
	return nil
}

func (t *Reader) ioErr(entry string, off int64, err error) error {
	if err == io.ErrUnexpectedEOF {
		return newErr(ErrTruncated, entry, off, "the archive is truncated")
	}
	return &Error{Entry: entry, Offset: off, Reason: err.Error(), Err: err}
}

func (t *Reader) limitErr(entry string, off int64, limit string, max, got int64) error {
	le := &LimitError{Limit: limit, Max: max, Got: got}
	return &Error{Entry: entry, Offset: off, Reason: le.Error(), Err: le}
}

func padOf(size int64) int64 { return (BlockSize - size%BlockSize) % BlockSize }

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return len(b)
}

// rawHeader is a parsed header block: an entry's, or a pax header's.
type rawHeader struct {
	Header
	start int64
}

// Field offsets of a ustar header.
const (
	offName     = 0
	offMode     = 100
	offUID      = 108
	offGID      = 116
	offSize     = 124
	offMtime    = 136
	offChksum   = 148
	offTypeflag = 156
	offLinkname = 157
	offMagic    = 257
	offVersion  = 263
	offUname    = 265
	offGname    = 297
	offDevmajor = 329
	offDevminor = 337
	offPrefix   = 345
	offPad      = 500
)

// parse checks one header block (at offset off) and returns its fields.
func parse(b *[BlockSize]byte, off int64) (rawHeader, error) {
	h := rawHeader{start: off}
	// The name as libarchive would print it, for messages, before anything
	// else is trusted; "" when the block is not a header at all.
	name := cstr(b[offName:offMode])
	if prefix := cstr(b[offPrefix:offPad]); prefix != "" && bytes.Equal(b[offMagic:offMagic+5], []byte("ustar")) {
		name = prefix + "/" + name
	}
	if err := checksum(b); err != "" {
		return h, newErr(ErrChecksum, "", off, err)
	}
	h.Name = name
	if m := b[offMagic:offUname]; !bytes.Equal(m, []byte("ustar\x0000")) {
		return h, newErr(ErrHeader, name, off, fmt.Sprintf("magic and version %q, want \"ustar\\x0000\" (%s)", m, magicName(m)))
	}
	h.Typeflag = b[offTypeflag]
	if h.Typeflag != TypeReg && h.Typeflag != TypeDir && h.Typeflag != 'x' {
		return h, &Error{Entry: name, Offset: off, Typeflag: h.Typeflag, Reason: fmt.Sprintf("%s (typeflag %q) not accepted", TypeName(h.Typeflag), h.Typeflag), Err: ErrType}
	}
	for _, f := range [...]struct {
		name     string
		from, to int
		dst      *int64
		empty    bool
	}{
		{"mode", offMode, offUID, &h.Mode, false},
		{"uid", offUID, offGID, &h.UID, false},
		{"gid", offGID, offSize, &h.GID, false},
		{"size", offSize, offMtime, &h.Size, false},
		{"mtime", offMtime, offChksum, &h.ModTime, false},
		{"devmajor", offDevmajor, offDevminor, nil, true},
		{"devminor", offDevminor, offPrefix, nil, true},
	} {
		v, ok := octal(b[f.from:f.to], f.empty)
		if !ok {
			return h, newErr(ErrHeader, name, off+int64(f.from), fmt.Sprintf("%s field %q is not octal digits followed by NULs or spaces", f.name, b[f.from:f.to]))
		}
		if f.dst != nil {
			*f.dst = v
		}
	}
	for _, f := range [...]struct {
		name     string
		from, to int
	}{{"name", offName, offMode}, {"linkname", offLinkname, offMagic}, {"uname", offUname, offGname}, {"gname", offGname, offDevmajor}, {"prefix", offPrefix, offPad}} {
		if i := junkAfterNUL(b[f.from:f.to]); i >= 0 {
			return h, newErr(ErrName, name, off+int64(f.from+i), fmt.Sprintf("%s field has bytes after the NUL that ends it", f.name))
		}
	}
	if b[offLinkname] != 0 {
		return h, newErr(ErrHeader, name, off+offLinkname, "link name set on a file or directory")
	}
	if !isZero(b[offPad:]) {
		return h, newErr(ErrHeader, name, off+offPad, "non-zero bytes in the header's padding")
	}
	if b[offName] == 0 {
		return h, newErr(ErrName, name, off, "empty name field")
	}
	if p := cstr(b[offPrefix:offPad]); p != "" && p[len(p)-1] == '/' {
		return h, newErr(ErrName, name, off+offPrefix, "prefix ends in \"/\" (readers join prefix and name differently)")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return h, newErr(ErrName, name, off, fmt.Sprintf("control character %q in the name", c))
		}
	}
	return h, nil
}

// check applies the rules on entries (not pax headers) to h.
func (h *rawHeader) check() error {
	name := h.Name
	if name[0] == '/' {
		return &Error{Entry: name, Offset: h.start, Reason: "absolute path", Err: ErrUnsafeName}
	}
	rest := name
	switch h.Typeflag {
	case TypeDir:
		if name[len(name)-1] != '/' {
			return newErr(ErrName, name, h.start, "directory name without a trailing \"/\"")
		}
		if h.Size != 0 {
			return newErr(ErrHeader, name, h.start, fmt.Sprintf("directory with size %d (libarchive reads the content as headers)", h.Size))
		}
		rest = name[:len(name)-1]
	case TypeReg:
		if name[len(name)-1] == '/' {
			return newErr(ErrName, name, h.start, "regular file whose name ends in \"/\" (libarchive reads it as a directory and its content as headers)")
		}
	}
	for {
		part, after, more := cut(rest, '/')
		switch part {
		case "..":
			return &Error{Entry: name, Offset: h.start, Reason: `".." component`, Err: ErrUnsafeName}
		case "":
			return newErr(ErrName, name, h.start, "empty path component")
		case ".":
			return newErr(ErrName, name, h.start, `"." component`)
		}
		if !more {
			return nil
		}
		rest = after
	}
}

func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// checksum returns "" when the checksum field is canonical and equals the
// unsigned sum of the block (the field counted as spaces), else the reason.
func checksum(b *[BlockSize]byte) string {
	f := b[offChksum:offTypeflag]
	v, ok := octal(f, false)
	if !ok {
		return fmt.Sprintf("checksum field %q is not octal digits followed by NULs or spaces", f)
	}
	var u, s int64
	for i, c := range b {
		if i >= offChksum && i < offTypeflag {
			c = ' '
		}
		u += int64(c)
		s += int64(int8(c))
	}
	switch v {
	case u:
		return ""
	case s:
		return "checksum matches only the signed byte sum (pre-POSIX writers)"
	}
	return fmt.Sprintf("header checksum %d, want %d (a damaged or hand-made header)", v, u)
}

// octal parses a numeric field: one or more octal digits, then only NULs
// and spaces. With empty set, a field of only NULs and spaces is 0.
func octal(f []byte, empty bool) (int64, bool) {
	var v int64
	i := 0
	for ; i < len(f) && f[i] >= '0' && f[i] <= '7'; i++ {
		v = v<<3 | int64(f[i]-'0')
	}
	if i == 0 && !empty {
		return 0, false
	}
	for ; i < len(f); i++ {
		if f[i] != 0 && f[i] != ' ' {
			return 0, false
		}
	}
	return v, true
}

// cstr is the field up to its first NUL.
func cstr(f []byte) string {
	if i := bytes.IndexByte(f, 0); i >= 0 {
		f = f[:i]
	}
	return string(f)
}

// junkAfterNUL returns the index of the first non-NUL byte after the first
// NUL of f, or -1.
func junkAfterNUL(f []byte) int {
	i := bytes.IndexByte(f, 0)
	if i < 0 {
		return -1
	}
	for j := i + 1; j < len(f); j++ {
		if f[j] != 0 {
			return j
		}
	}
	return -1
}

func magicName(m []byte) string {
	switch {
	case bytes.Equal(m, []byte("ustar  \x00")):
		return "GNU tar: libarchive ignores the prefix field, other readers do not"
	case bytes.HasPrefix(m, []byte("ustar")):
		return "non-standard ustar: libarchive uses the prefix field, Go's archive/tar does not"
	case isZero(m):
		return "pre-POSIX V7 tar"
	}
	return "unknown"
}

// TypeName names a typeflag for messages.
func TypeName(typeflag byte) string {
	switch typeflag {
	case '0':
		return "regular file"
	case '5':
		return "directory"
	case 0:
		return "pre-POSIX regular file"
	case '1':
		return "hard link"
	case '2':
		return "symlink"
	case '3':
		return "character device"
	case '4':
		return "block device"
	case '6':
		return "fifo"
	case '7':
		return "contiguous file"
	case 'x':
		return "pax extended header"
	case 'g':
		return "pax global header"
	case 'X':
		return "Solaris extended header"
	case 'A':
		return "Solaris ACL"
	case 'L':
		return "GNU long name"
	case 'K':
		return "GNU long link name"
	case 'S':
		return "sparse file"
	case 'D':
		return "GNU directory dump"
	case 'M':
		return "GNU multi-volume continuation"
	case 'N':
		return "old GNU long name"
	case 'V':
		return "GNU volume header"
	}
	return "unknown"
}

// paxRecords are the accepted records of one pax header; -1 and nil mean
// absent.
type paxRecords struct {
	path            *string
	uid, gid, mtime int64
}

// parsePax parses the body of the pax header x strictly.
func parsePax(body []byte, x rawHeader) (paxRecords, error) {
	recs := paxRecords{uid: -1, gid: -1, mtime: -1}
	seen := map[string]bool{}
	at := x.start + BlockSize
	fail := func(reason string) (paxRecords, error) {
		return recs, newErr(ErrExtension, x.Name, at, reason)
	}
	for len(body) > 0 {
		sp := bytes.IndexByte(body, ' ')
		if sp <= 0 || sp > 7 {
			return fail("pax record without a decimal length")
		}
		n, err := strconv.Atoi(string(body[:sp]))
		if err != nil || body[0] == '0' || body[0] == '+' || body[0] == '-' {
			return fail(fmt.Sprintf("pax record length %q is not a canonical decimal number", body[:sp]))
		}
		if n > len(body) || n < sp+3 || body[n-1] != '\n' {
			return fail("pax record length does not match the record")
		}
		rec := body[sp+1 : n-1]
		if i := bytes.IndexByte(rec, 0); i >= 0 {
			return fail("NUL byte in a pax record (libarchive cuts the value there)")
		}
		eq := bytes.IndexByte(rec, '=')
		if eq <= 0 {
			return fail("pax record without key=value")
		}
		key, val := string(rec[:eq]), string(rec[eq+1:])
		if seen[key] {
			return fail(fmt.Sprintf("pax record %q repeated", key))
		}
		seen[key] = true
		switch key {
		case "path":
			for i := 0; i < len(val); i++ {
				if c := val[i]; c < 0x20 || c >= 0x7f {
					return fail(fmt.Sprintf("pax path with byte %#02x: only printable ASCII is accepted (libarchive converts pax names from UTF-8 to the locale)", c))
				}
			}
			v := val
			recs.path = &v
		case "uid", "gid":
			v, ok := decimal(val)
			if !ok {
				return fail(fmt.Sprintf("pax %s %q is not a decimal number", key, val))
			}
			if key == "uid" {
				recs.uid = v
			} else {
				recs.gid = v
			}
		case "mtime":
			sec, frac, dot := cut(val, '.')
			v, ok := decimal(sec)
			if !ok || (dot && !digits(frac, 18)) {
				return fail(fmt.Sprintf("pax mtime %q is not seconds[.fraction]", val))
			}
			recs.mtime = v
		default:
			return fail(fmt.Sprintf("pax record %q not accepted (only path, uid, gid and mtime: others change what readers see in ways they do not agree on)", key))
		}
		at += int64(n)
		body = body[n:]
	}
	return recs, nil
}

// digits reports whether s is 1 to max ASCII digits.
func digits(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decimal parses a canonical non-negative decimal number of up to 18
// digits.
func decimal(s string) (int64, bool) {
	if !digits(s, 18) || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		v = v*10 + int64(s[i]-'0')
	}
	return v, true
}

// Sentinel causes of an *Error (errors.Is).
var (
	// ErrChecksum: a block that is not a valid header (checksum field
	// malformed or wrong). libarchive reports it as ARCHIVE_RETRY, which
	// libalpm treats as an error and bsdtar skips.
	ErrChecksum = errors.New("bad header checksum")
	// ErrHeader: a header field that is not in the canonical form or
	// holds what repo-add and makepkg never write (magic, numbers, link
	// name, padding, a directory with a size).
	ErrHeader = errors.New("header not accepted")
	// ErrType: a typeflag other than '0', '5' and 'x'. *Error.Typeflag
	// holds it.
	ErrType = errors.New("entry type not accepted")
	// ErrExtension: a pax extended header that is malformed, stacked,
	// holds a record outside the accepted four, or names the entry
	// differently from its header.
	ErrExtension = errors.New("extension header not accepted")
	// ErrName: a name that is ambiguous or that tools may read differently
	// (bytes after its NUL, control characters, empty or "." components,
	// a trailing "/" that disagrees with the type, a prefix ending in "/").
	ErrName = errors.New("name not accepted")
	// ErrUnsafeName: an absolute name or one with a ".." component.
	ErrUnsafeName = errors.New("unsafe name")
	// ErrTruncated: the stream ends inside a block, inside content, or
	// without an end-of-archive marker.
	ErrTruncated = errors.New("truncated archive")
	// ErrTrailingData: non-zero bytes after the end-of-archive marker.
	ErrTrailingData = errors.New("data after the end-of-archive marker")
	// ErrLimit: a bound of Limits was exceeded. See *LimitError.
	ErrLimit = errors.New("limit exceeded")
)

// Error is every error of Reader other than io.EOF. Entry is the name of
// the entry (or extension header) concerned as far as it is known ("" when
// the block is not a header at all), Offset the stream offset of the
// header or byte at fault, Reason what is wrong and why it matters. Err is
// a sentinel above, a *LimitError, or the underlying reader's error.
type Error struct {
	Entry    string
	Offset   int64
	Typeflag byte // with ErrType
	Reason   string
	Err      error
}

func newErr(sentinel error, entry string, off int64, reason string) *Error {
	return &Error{Entry: entry, Offset: off, Reason: reason, Err: sentinel}
}

func (e *Error) Error() string {
	s := "tar"
	if e.Entry != "" {
		s += " entry " + strconv.Quote(e.Entry)
	}
	return fmt.Sprintf("%s at byte %d: %s", s, e.Offset, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// LimitError reports a bound of Limits: Limit names the field, Max its
// value, Got the count or size seen.
type LimitError struct {
	Limit string
	Max   int64
	Got   int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("limit exceeded: %s is %d, got %d", e.Limit, e.Max, e.Got)
}

// Is reports ErrLimit.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }
