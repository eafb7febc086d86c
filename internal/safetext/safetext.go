// Package safetext is bintrans's one sanitiser for untrusted text: file
// names and fields of repository databases, log entries and checkpoints,
// rebuilder answers, audit records, and error messages that quote them.
// Every human output (terminals, journals, CI logs) passes such text
// through Line (or Text, for a message of several lines of our own);
// JSON printed for machines passes through JSON; validators that must
// refuse such text (the audit log) use Check.
//
// # What is escaped
//
// Line makes visible, with a backslash escape, every rune that could change
// how the rest of the output is shown or read:
//
//   - C0 controls (U+0000–U+001F) and DEL: `\t`, `\n`, `\r`, else `\x1b`;
//   - C1 controls (U+0080–U+009F: U+009B is a one-byte CSI): `\u009b`;
//   - format characters (Unicode category Cf), which include every bidi
//     control (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069),
//     zero-width characters and tags: `\u202e`, `\U000e0041`;
//   - the line and paragraph separators U+2028 and U+2029;
//   - bytes that are not UTF-8: `\xff` (always ≥ \x80, so never confused
//     with a C0 escape);
//   - a backslash that would otherwise read as the start of an escape
//     (followed by x, u, U, t, n, r, a backslash or an escaped rune):
//     `\\`, so that a name containing the text `\x1b` cannot pass for one
//     containing ESC. Other backslashes (the `\"` of a quoted string) stand
//     for themselves.
//
// # Workflow commands
//
// The GitHub Actions runner acts on lines of a step's output that start
// (after white space) with `::` and, with its legacy parser, on `##[`
// anywhere in a line. Line therefore also breaks every `::` and `##[` in
// untrusted text: the second colon of `::` becomes `\x3a` and the bracket
// of `##[` becomes `\x5b`. Untrusted text can then neither start a workflow
// command nor contain one, wherever it lands in a line.
//
// The encoding is injective: every escape decodes to exactly one rune or
// byte, and a literal backslash is always escaped (the fuzz target decodes
// every output back to its input).
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unsafe reports whether r is a rune that Line escapes for being invisible
// or able to change the output around it: a C0 or C1 control, DEL, a format
// character (Cf: bidi controls, zero-width characters, tags), U+2028 or
// U+2029, or utf8.RuneError (which stands for invalid UTF-8 in decoded
// text).
func Unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == '\u2028', r == '\u2029', r == utf8.RuneError:
		return true
	case r < 0x80:
		return false
	}
	return unicode.Is(unicode.Cf, r)
}

// Line returns s made safe to print in a line of a terminal or a CI log:
// see the package documentation. Printable text, spaces included, is
// unchanged, except for backslashes and the workflow-command sequences.
func Line(s string) string {
	if plain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	pieces(s, func(p string) bool { b.WriteString(p); return true })
	return b.String()
}

// Message is Line for an error message or a reason: runs of white space
// (spaces, tabs, newlines, carriage returns) become one space and the ends
// are trimmed first, so a multi-line error of bintrans's own reads as one
// line. A newline in untrusted text then reads as a space: use Line for
// names and fields, Message for prose.
func Message(s string) string { return Line(Fold(s)) }

// Fold is the white-space folding of Message, without the escaping (for
// callers that escape later, once, e.g. with Cut).
func Fold(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r != ' ' && unicode.IsSpace(r) }) < 0 && !strings.Contains(s, "  ") &&
		strings.TrimSpace(s) == s {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}

// Cut is Line, cut to at most limit bytes: when the escaped text is longer,
// it ends in "…" (never inside an escape or a rune) and is at most
// max(limit, len("…")) bytes. limit <= 0 means no limit.
func Cut(s string, limit int) string {
	out := Line(s)
	if limit <= 0 || len(out) <= limit {
		return out
	}
	budget := limit - len("…")
	var b strings.Builder
	pieces(s, func(p string) bool {
		if b.Len()+len(p) > budget {
			return false
		}
		b.WriteString(p)
		return true
	})
	return b.String() + "…"
}

// Text is Line for a message of several lines: each line is escaped, and
// the newlines between lines and the tabs that indent them are kept. Use it
// only for messages whose layout is bintrans's own (a SECURITY ERROR with
// two tree heads): in untrusted text a newline is as unsafe as any
// control. A line of Text still cannot start a workflow command.
func Text(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		parts := strings.Split(l, "\t")
		for j, p := range parts {
			parts[j] = Line(p)
		}
		lines[i] = strings.Join(parts, "\t")
	}
	return strings.Join(lines, "\n")
}

// Check returns nil when Line would leave s unchanged except for
// backslashes and workflow-command sequences, that is when s is valid
// UTF-8 and holds no unsafe rune (Unsafe); otherwise an error naming the
// first offending rune (as U+XXXX, or the byte as 0xNN: no backslash, so
// printing the error through Line shows it as it is) and its byte offset.
func Check(s string) error {
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("invalid UTF-8 byte 0x%02X at byte %d", s[i], i)
		}
		if Unsafe(r) {
			return fmt.Errorf("%s %U at byte %d", kind(r), r, i)
		}
	}
	return nil
}

// kind names the class of an unsafe rune for error messages.
func kind(r rune) string {
	switch {
	case r < 0x20 || r == 0x7f:
		return "control character"
	case r >= 0x80 && r <= 0x9f:
		return "C1 control character"
	case r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
		return "bidi control"
	case r == '\u2028' || r == '\u2029':
		return "line separator"
	case r == utf8.RuneError:
		return "replacement character"
	}
	return "format character"
}

// plain reports whether Line(s) == s: printable ASCII without `\`, `::`
// or `##[` (the common case, checked without allocating).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c >= 0x7f || c == '\\':
			return false
		case c == ':' && i > 0 && s[i-1] == ':':
			return false
		case c == '[' && i > 1 && s[i-1] == '#' && s[i-2] == '#':
			return false
		}
	}
	return true
}

// pieces calls yield with the escaped form of s, one rune (or escape) at a
// time, until yield returns false.
func pieces(s string, yield func(piece string) bool) {
	var p1, p2 rune // the last two runes written literally (for `::`, `##[`)
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		var piece string
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\\' && escapesBackslash(s[i+1:]):
			piece = `\\`
		case Unsafe(r):
			piece = escapeRune(r)
		case r == ':' && p1 == ':':
			piece = `\x3a`
		case r == '[' && p1 == '#' && p2 == '#':
			piece = `\x5b`
		default:
			piece = s[i : i+size]
		}
		if len(piece) == size && piece == s[i:i+size] {
			p1, p2 = r, p1
		} else {
			p1, p2 = 0, 0
		}
		if !yield(piece) {
			return
		}
	}
}

// escapesBackslash reports whether a backslash followed by rest must be
// written `\\`: when what follows it in the output would make it read as
// an escape, that is when the next rune is itself written with a leading
// backslash (a backslash, an unsafe rune, invalid UTF-8) or is one of the
// escape letters x u U t n r. Otherwise the backslash stands for itself
// (so the `\"` of a quoted string in an error message stays readable).
func escapesBackslash(rest string) bool {
	if rest == "" {
		return false
	}
	r, size := utf8.DecodeRuneInString(rest)
	switch {
	case r == utf8.RuneError && size == 1, r == '\\', Unsafe(r):
		return true
	}
	return strings.ContainsRune("xuUtnr", r)
}

// escapeRune is the escape of an unsafe rune: \t \n \r, \xNN for the rest
// of C0 and DEL, \uNNNN, \UNNNNNNNN beyond the BMP.
func escapeRune(r rune) string {
	switch {
	case r == '\t':
		return `\t`
	case r == '\n':
		return `\n`
	case r == '\r':
		return `\r`
	case r < 0x80:
		return fmt.Sprintf(`\x%02x`, r)
	case r <= 0xffff:
		return fmt.Sprintf(`\u%04x`, r)
	}
	return fmt.Sprintf(`\U%08x`, r)
}

// JSON rewrites JSON text (as encoding/json writes it) so that no string in
// it holds an unsafe rune or a workflow-command sequence, without changing
// what it decodes to: DEL and unsafe runes above it become \uXXXX escapes
// (surrogate pairs beyond the BMP), the second colon of `::` becomes
// \u003a and the bracket of `##[` becomes \u005b. encoding/json already
// escapes C0 controls inside strings; outside strings JSON is ASCII
// punctuation, digits, literals and white space, none of which this
// changes. b must be whole JSON values (or whole members); the result is a
// new slice when anything changed, else b.
func JSON(b []byte) []byte {
	if jsonPlain(b) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	var p1, p2 byte // the previous two bytes as written
	for i, w := 0, 0; i < len(b); i += w {
		r, size := utf8.DecodeRune(b[i:])
		w = size
		switch {
		case (r >= 0x80 || r == 0x7f) && Unsafe(r) && !(r == utf8.RuneError && size == 1):
			if r > 0xffff {
				hi, lo := utf16Pair(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
			p1, p2 = 0, 0
			continue
		case r == ':' && p1 == ':':
			out = append(out, `\u003a`...)
			p1, p2 = 0, 0
			continue
		case r == '[' && p1 == '#' && p2 == '#':
			out = append(out, `\u005b`...)
			p1, p2 = 0, 0
			continue
		}
		out = append(out, b[i:i+size]...)
		if size == 1 {
			p1, p2 = b[i], p1
		} else {
			p1, p2 = 0, 0
		}
	}
	return out
}

// jsonPlain reports whether JSON(b) would return b unchanged.
func jsonPlain(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 0x7f:
			return false
		case c == ':' && i > 0 && b[i-1] == ':':
			return false
		case c == '[' && i > 1 && b[i-1] == '#' && b[i-2] == '#':
			return false
		}
	}
	return true
}

// utf16Pair is the UTF-16 surrogate pair of a rune beyond the BMP.
func utf16Pair(r rune) (hi, lo rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}
