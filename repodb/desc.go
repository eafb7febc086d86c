package repodb

import (
	"strconv"
	"strings"
)

// Package is one entry of a sync database: the fields of its desc file, as
// written by repo-add (pacman 6.0.2). Empty strings and nil slices stand
// for fields repo-add left out (it omits every field without a value).
//
// ParseDesc guarantees: Filename, Name, Version and SHA256Sum are present;
// Filename is a single path element (no "/", not "." or ".."); Name and
// Base follow makepkg's pkgname rules; Version is [epoch:]pkgver-pkgrel,
// kept verbatim (epoch included, e.g. "1:2.3-4"); SHA256Sum is 64 and MD5Sum
// 32 lowercase hex digits; no value contains a control character. The
// values are otherwise what the repository claims: nothing here has been
// checked against a package file.
type Package struct {
	Filename     string   // %FILENAME%: package file name in the repository
	Name         string   // %NAME%
	Base         string   // %BASE%: pkgbase, differs from Name for split packages
	Version      string   // %VERSION%: [epoch:]pkgver-pkgrel
	Desc         string   // %DESC%
	Groups       []string // %GROUPS%
	CSize        int64    // %CSIZE%: package file size in bytes
	ISize        int64    // %ISIZE%: installed size in bytes
	MD5Sum       string   // %MD5SUM%: lowercase hex
	SHA256Sum    string   // %SHA256SUM%: lowercase hex of the package file
	PGPSig       string   // %PGPSIG%: base64 detached signature (pacman ≥ 6.1 omits it by default)
	URL          string   // %URL%
	License      []string // %LICENSE%
	Arch         string   // %ARCH%
	BuildDate    int64    // %BUILDDATE%: Unix seconds
	Packager     string   // %PACKAGER%
	Replaces     []string // %REPLACES%
	Conflicts    []string // %CONFLICTS%
	Provides     []string // %PROVIDES%
	Depends      []string // %DEPENDS%
	OptDepends   []string // %OPTDEPENDS%
	MakeDepends  []string // %MAKEDEPENDS%
	CheckDepends []string // %CHECKDEPENDS%
}

// field describes one %FIELD% of a desc.
type field struct {
	multi bool
	set   func(p *Package, vals []string, line int) error
}

func str(get func(p *Package) *string, check func(string) string) field {
	return field{set: func(p *Package, vals []string, line int) error {
		if check != nil {
			if reason := check(vals[0]); reason != "" {
				return &FieldError{Line: line, Value: cut(vals[0]), Reason: reason, Err: ErrMalformed}
			}
		}
		*get(p) = vals[0]
		return nil
	}}
}

func num(get func(p *Package) *int64) field {
	return field{set: func(p *Package, vals []string, line int) error {
		v := vals[0]
		if !isDigits(v) {
			return &FieldError{Line: line, Value: cut(v), Reason: "want a decimal number", Err: ErrMalformed}
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return &FieldError{Line: line, Value: cut(v), Reason: "number out of range", Err: ErrMalformed}
		}
		*get(p) = n
		return nil
	}}
}

func list(get func(p *Package) *[]string) field {
	return field{multi: true, set: func(p *Package, vals []string, line int) error {
		*get(p) = vals
		return nil
	}}
}

// fields lists every field repo-add 6.0.2 writes, in its order. The set is
// also what repo-add 6.1/7.0 write (6.1 made %PGPSIG% optional), so no
// leniency is needed for desc fields: anything else is ErrUnknownField.
var fields = map[string]field{
	"FILENAME":     str(func(p *Package) *string { return &p.Filename }, checkFilename),
	"NAME":         str(func(p *Package) *string { return &p.Name }, checkPkgname),
	"BASE":         str(func(p *Package) *string { return &p.Base }, checkPkgname),
	"VERSION":      str(func(p *Package) *string { return &p.Version }, checkVersion),
	"DESC":         str(func(p *Package) *string { return &p.Desc }, nil),
	"GROUPS":       list(func(p *Package) *[]string { return &p.Groups }),
	"CSIZE":        num(func(p *Package) *int64 { return &p.CSize }),
	"ISIZE":        num(func(p *Package) *int64 { return &p.ISize }),
	"MD5SUM":       str(func(p *Package) *string { return &p.MD5Sum }, hexCheck(32)),
	"SHA256SUM":    str(func(p *Package) *string { return &p.SHA256Sum }, hexCheck(64)),
	"PGPSIG":       str(func(p *Package) *string { return &p.PGPSig }, checkBase64),
	"URL":          str(func(p *Package) *string { return &p.URL }, nil),
	"LICENSE":      list(func(p *Package) *[]string { return &p.License }),
	"ARCH":         str(func(p *Package) *string { return &p.Arch }, checkArch),
	"BUILDDATE":    num(func(p *Package) *int64 { return &p.BuildDate }),
	"PACKAGER":     str(func(p *Package) *string { return &p.Packager }, nil),
	"REPLACES":     list(func(p *Package) *[]string { return &p.Replaces }),
	"CONFLICTS":    list(func(p *Package) *[]string { return &p.Conflicts }),
	"PROVIDES":     list(func(p *Package) *[]string { return &p.Provides }),
	"DEPENDS":      list(func(p *Package) *[]string { return &p.Depends }),
	"OPTDEPENDS":   list(func(p *Package) *[]string { return &p.OptDepends }),
	"MAKEDEPENDS":  list(func(p *Package) *[]string { return &p.MakeDepends }),
	"CHECKDEPENDS": list(func(p *Package) *[]string { return &p.CheckDepends }),
}

// required are the fields without which a package cannot be verified.
var required = [...]string{"FILENAME", "NAME", "VERSION", "SHA256SUM"}

// ParseDesc parses a sync database desc file in exactly the layout repo-add
// writes: blocks of "%FIELD%\n", one or more non-empty value lines, and an
// empty line, the last block included. It rejects (with a *FieldError)
// unknown, repeated or empty fields, several values for a single-valued
// field, missing required fields, invalid names, versions, numbers and
// checksums, and control characters (C0 or DEL) anywhere in a value, which
// repo-add's whitespace normalisation never leaves and which could inject
// terminal escapes into reports. Field order is not checked.
//
// The returned strings share one copy of b; b may be reused afterwards.
func ParseDesc(b []byte) (Package, error) {
	return parseDesc(string(b))
}

func parseDesc(s string) (Package, error) {
	var p Package
	var seen [len(fieldOrder)]bool
	line := 0
	next := func() (string, bool) {
		if s == "" {
			return "", false
		}
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			l := s
			s = ""
			line++
			return l, false // a final line without newline: reported by the caller
		}
		l := s[:i]
		s = s[i+1:]
		line++
		return l, true
	}
	var buf [8]string
	for s != "" {
		hdr, ok := next()
		if !ok {
			return p, &FieldError{Line: line, Value: cut(hdr), Reason: "missing newline at end of desc", Err: ErrMalformed}
		}
		if len(hdr) < 3 || hdr[0] != '%' || hdr[len(hdr)-1] != '%' {
			reason := "want a %FIELD% line"
			if hdr == "" {
				reason = "extra empty line"
			}
			return p, &FieldError{Line: line, Value: cut(hdr), Reason: reason, Err: ErrMalformed}
		}
		name := hdr[1 : len(hdr)-1]
		hdrLine := line
		f, known := fields[name]
		if !known {
			return p, &FieldError{Field: cut(name), Line: line, Err: ErrUnknownField}
		}
		idx := fieldIndex[name]
		if seen[idx] {
			return p, &FieldError{Field: name, Line: line, Err: ErrDuplicateField}
		}
		seen[idx] = true
		vals := buf[:0]
		for {
			v, ok := next()
			if !ok {
				l := line
				if v == "" {
					l++ // the missing line
				}
				return p, &FieldError{Field: name, Line: l, Value: cut(v), Reason: "desc ends inside the field (want an empty line after its values)", Err: ErrMalformed}
			}
			if v == "" {
				break
			}
			if c := controlChar(v); c >= 0 {
				return p, &FieldError{Field: name, Line: line, Value: cut(v), Reason: "control character " + strconv.QuoteRune(rune(c)) + " in value", Err: ErrMalformed}
			}
			vals = append(vals, v)
		}
		if len(vals) == 0 {
			return p, &FieldError{Field: name, Line: hdrLine, Reason: "field without a value (repo-add omits empty fields)", Err: ErrMalformed}
		}
		if !f.multi && len(vals) > 1 {
			return p, &FieldError{Field: name, Line: hdrLine + 2, Value: cut(vals[1]), Reason: "several values for a single-valued field", Err: ErrMalformed}
		}
		if f.multi {
			vals = append([]string(nil), vals...) // escape buf
		}
		if err := f.set(&p, vals, hdrLine+1); err != nil {
			fe := err.(*FieldError)
			fe.Field = name
			return p, fe
		}
	}
	for _, name := range required {
		if !seen[fieldIndex[name]] {
			return p, &FieldError{Field: name, Err: ErrMissingField}
		}
	}
	return p, nil
}

// fieldOrder is repo-add's field order; fieldIndex maps names to positions.
var fieldOrder = [...]string{
	"FILENAME", "NAME", "BASE", "VERSION", "DESC", "GROUPS", "CSIZE", "ISIZE",
	"MD5SUM", "SHA256SUM", "PGPSIG", "URL", "LICENSE", "ARCH", "BUILDDATE",
	"PACKAGER", "REPLACES", "CONFLICTS", "PROVIDES", "DEPENDS", "OPTDEPENDS",
	"MAKEDEPENDS", "CHECKDEPENDS",
}

var fieldIndex = func() map[string]int {
	m := make(map[string]int, len(fieldOrder))
	for i, n := range fieldOrder {
		m[n] = i
	}
	return m
}()

// FieldOrder returns the %FIELD% names in the order repo-add writes them.
func FieldOrder() []string { return append([]string(nil), fieldOrder[:]...) }

func controlChar(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return int(c)
		}
	}
	return -1
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func hexCheck(n int) func(string) string {
	reason := "want " + strconv.Itoa(n) + " lowercase hex digits"
	return func(s string) string {
		if len(s) != n {
			return reason
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return reason
			}
		}
		return ""
	}
}

// checkFilename: one path element, as repo-add takes it from ${1##*/}.
func checkFilename(s string) string {
	switch {
	case s == "." || s == "..":
		return "not a file name"
	case strings.ContainsAny(s, "/\\"):
		return "file name with a path separator"
	case len(s) > 255:
		return "file name longer than 255 bytes"
	}
	return ""
}

// checkPkgname applies makepkg's rule: alphanumerics and @._+-, not starting
// with a hyphen or a period.
func checkPkgname(s string) string {
	if s[0] == '-' || s[0] == '.' {
		return "package name starts with '-' or '.'"
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && !strings.ContainsRune("@._+-", rune(s[i])) {
			return "package name with a character other than alphanumerics and @._+-"
		}
	}
	return ""
}

// checkVersion applies makepkg's rules to [epoch:]pkgver-pkgrel: epoch
// decimal, pkgver printable ASCII without whitespace, ':', '/' or '-',
// pkgrel decimal with at most one dot.
func checkVersion(s string) string {
	rest, rel, ok := cutLast(s, '-')
	if !ok {
		return "want [epoch:]pkgver-pkgrel"
	}
	if a, b, dot := strings.Cut(rel, "."); !isDigits(a) || (dot && !isDigits(b)) {
		return "pkgrel is not a decimal number"
	}
	if epoch, ver, ok := strings.Cut(rest, ":"); ok {
		if !isDigits(epoch) {
			return "epoch is not a decimal number"
		}
		rest = ver
	}
	if rest == "" {
		return "empty pkgver"
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c <= ' ' || c >= 0x7f || c == ':' || c == '/' || c == '-' {
			return "pkgver with whitespace, ':', '/', '-' or non-ASCII"
		}
	}
	return ""
}

func checkArch(s string) string {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' {
			return "architecture with a character other than alphanumerics and _"
		}
	}
	return ""
}

func checkBase64(s string) string {
	if len(s)%4 != 0 {
		return "not base64"
	}
	body := strings.TrimSuffix(strings.TrimSuffix(s, "="), "=")
	for i := 0; i < len(body); i++ {
		if !base64Chars[body[i]] {
			return "not base64"
		}
	}
	return ""
}

var base64Chars = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = true
	}
	return t
}()

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func cutLast(s string, sep byte) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
