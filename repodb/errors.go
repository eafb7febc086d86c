package repodb

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel causes. Every error that Walk, Read and ReadFile produce is an
// *EntryError, except an error returned by the caller's fn (passed through
// unchanged) and ReadFile's failure to open the file (*fs.PathError). An
// *EntryError's chain matches one of these sentinels with errors.Is, or is
// the caller's reader's own I/O error; the typed errors below carry the
// evidence.
var (
	// ErrUnknownCompression: the stream starts with no magic bytes that
	// repo-add writes (gzip, zstd, xz, bzip2, plain tar). See *CompressionError.
	ErrUnknownCompression = errors.New("unknown compression")
	// ErrCorrupt: the compressed stream or the tar framing is damaged
	// (bad checksum, truncated, trailing garbage).
	ErrCorrupt = errors.New("corrupt archive")
	// ErrLimit: a bound in Limits was exceeded. See *LimitError.
	ErrLimit = errors.New("limit exceeded")
	// ErrUnsafePath: an absolute tar path or one with a ".." component.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrEntryType: a tar entry that is neither a regular file nor a
	// directory (symlink, hard link, device, fifo, …). See *EntryTypeError.
	ErrEntryType = errors.New("forbidden entry type")
	// ErrUnexpectedEntry: a tar entry repo-add never writes, such as a
	// top-level file, a nested directory or the pre-2014 "depends" file.
	ErrUnexpectedEntry = errors.New("unexpected entry")
	// ErrDuplicate: a package name, filename or tar entry occurs twice.
	// See *DuplicateError.
	ErrDuplicate = errors.New("duplicate")
	// ErrDirMismatch: a desc lives in a directory other than NAME-VERSION.
	// See *DirMismatchError.
	ErrDirMismatch = errors.New("directory does not match package")
	// ErrMissingDesc: a package directory without a desc file.
	ErrMissingDesc = errors.New("directory without desc")
	// ErrTarFormat: a tar construct that repo-add does not write and that
	// tar readers may read differently (extension headers, non-standard
	// magic or numbers, ambiguous names, …): refused so that what bintrans
	// reads is what libalpm reads. See *TarError.
	ErrTarFormat = errors.New("tar construct refused")

	// The causes of a *FieldError (ParseDesc).

	// ErrMissingField: a required field (%FILENAME%, %NAME%, %VERSION%,
	// %SHA256SUM%) is absent.
	ErrMissingField = errors.New("required field missing")
	// ErrUnknownField: a %FIELD% that repo-add does not write.
	ErrUnknownField = errors.New("unknown field")
	// ErrDuplicateField: a field occurs twice in one desc.
	ErrDuplicateField = errors.New("field repeated")
	// ErrMalformed: the desc syntax or a field value is invalid.
	ErrMalformed = errors.New("malformed")
)

// EntryError is the error type of Walk, Read and ReadFile. Entry is the tar
// entry name being processed; when the failure is in the archive itself
// (compression, tar framing) it is the last entry read before the failure,
// or "" when none was.
type EntryError struct {
	Entry string
	Err   error
}

func (e *EntryError) Error() string {
	if e.Entry == "" {
		return "repodb: " + e.Err.Error()
	}
	return "repodb: entry " + strconv.Quote(e.Entry) + ": " + e.Err.Error()
}

func (e *EntryError) Unwrap() error { return e.Err }

// CompressionError reports a stream whose leading bytes match no format that
// repo-add writes. Format names a recognised but unsupported compressor
// (lz4, lzip, lzop, compress, lrzip) or is "" when the magic is unknown.
type CompressionError struct {
	Format string
	Magic  []byte // up to the first 8 bytes of the stream
}

func (e *CompressionError) Error() string {
	if e.Format != "" {
		return fmt.Sprintf("unknown compression: %s is not a format repo-add databases use (magic % x)", e.Format, e.Magic)
	}
	if len(e.Magic) == 0 {
		return "unknown compression: empty input"
	}
	return fmt.Sprintf("unknown compression: magic bytes % x are not gzip, zstd, xz, bzip2 or tar", e.Magic)
}

func (e *CompressionError) Is(target error) bool { return target == ErrUnknownCompression }

// LimitError reports a bound of Limits that the input exceeded: Limit is
// the Limits field name, Max its value, Got the size or count seen (for a
// stream this is the first value past Max).
type LimitError struct {
	Limit string
	Max   int64
	Got   int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("limit exceeded: %s is %d, got %d", e.Limit, e.Max, e.Got)
}

func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// UnsafePathError reports a tar path that could escape an extraction
// directory.
type UnsafePathError struct {
	Reason string // "absolute path" or "\"..\" component"
}

func (e *UnsafePathError) Error() string { return "unsafe path: " + e.Reason }

func (e *UnsafePathError) Is(target error) bool { return target == ErrUnsafePath }

// EntryTypeError reports a tar entry type other than regular file or
// directory.
type EntryTypeError struct {
	Typeflag byte
	Type     string // "symlink", "hard link", "character device", …
}

func (e *EntryTypeError) Error() string {
	return fmt.Sprintf("forbidden entry type: %s (typeflag %q)", e.Type, e.Typeflag)
}

func (e *EntryTypeError) Is(target error) bool { return target == ErrEntryType }

// DuplicateError reports a second occurrence of a package name ("name"),
// package filename ("filename") or tar entry ("entry"). First is the tar
// entry where Value was seen first.
type DuplicateError struct {
	Kind  string
	Value string
	First string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("duplicate %s %q (first in entry %q)", e.Kind, e.Value, e.First)
}

func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// DirMismatchError reports a desc whose directory is not NAME-VERSION.
type DirMismatchError struct {
	Dir  string // the directory the desc is in
	Want string // NAME-VERSION from the desc
}

func (e *DirMismatchError) Error() string {
	return fmt.Sprintf("desc in directory %q describes %q", e.Dir, e.Want)
}

func (e *DirMismatchError) Is(target error) bool { return target == ErrDirMismatch }

// TarError reports the tar framing of a database: a construct refused by
// the strict tar reader (errors.Is ErrTarFormat), or a damaged archive
// (Corrupt: bad header checksum, truncated, data after the end marker;
// errors.Is ErrCorrupt). Offset is the byte of the decompressed stream at
// fault.
type TarError struct {
	Offset  int64
	Reason  string
	Corrupt bool
}

func (e *TarError) Error() string {
	return "tar at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Reason
}

// Is reports ErrCorrupt or ErrTarFormat.
func (e *TarError) Is(target error) bool {
	if e.Corrupt {
		return target == ErrCorrupt
	}
	return target == ErrTarFormat
}

// FieldError reports a problem with one field of a desc file, or of the
// files list of a .files database (File "files"). Field is the field name
// without the percent signs ("" for a syntax error outside any field),
// Line the 1-based line of the offending text (0 for a missing field),
// Value the offending value (cut to 120 bytes), Reason a short
// explanation, and Err one of ErrMissingField, ErrUnknownField,
// ErrDuplicateField, ErrMalformed.
type FieldError struct {
	File   string // "" for desc, "files"
	Field  string
	Line   int
	Value  string
	Reason string
	Err    error
}

func (e *FieldError) Error() string {
	s := e.Err.Error()
	if e.Field != "" {
		s = "%" + e.Field + "%: " + s
	}
	file := e.File
	if file == "" {
		file = "desc"
	}
	if e.Line > 0 {
		s = file + " line " + strconv.Itoa(e.Line) + ": " + s
	} else {
		s = file + ": " + s
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Value != "" {
		s += " (got " + strconv.Quote(e.Value) + ")"
	}
	return s
}

func (e *FieldError) Unwrap() error { return e.Err }

func cut(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
