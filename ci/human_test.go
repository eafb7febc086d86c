package ci

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
)

// TestHumanSafeAndAligned: without colour no control character reaches the
// terminal (the fixture has an ESC and CR/LF in a file name); the count
// table's rows all have the same width, with or without colour.
func TestHumanSafeAndAligned(t *testing.T) {
	r := fixtureReport()
	r.Databases = nil // packages only: TestDatabasesInReports
	for _, color := range []bool{false, true} {
		var buf bytes.Buffer
		if err := WriteHuman(&buf, r, color); err != nil {
			t.Fatal(err)
		}
		text := buf.String()
		if !color && strings.IndexFunc(text, func(c rune) bool { return c != '\n' && unicode.IsControl(c) }) >= 0 {
			t.Errorf("control character in plain output:\n%q", text)
		}
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		if got := strings.Count(text, "FAIL"); got != r.Failed() {
			t.Errorf("color=%v: %d FAIL lines, want %d", color, got, r.Failed())
		}
		blank := -1
		for i, l := range lines {
			if l == "" {
				blank = i
			}
		}
		table := lines[blank+1:]
		if len(table) < 3 || !strings.HasPrefix(table[0], "status") || !strings.HasPrefix(stripANSI(table[len(table)-1]), "total") {
			t.Fatalf("color=%v: no count table at the end:\n%s", color, text)
		}
		width := len(stripANSI(table[0]))
		for _, l := range table {
			if len(stripANSI(l)) != width {
				t.Errorf("color=%v: misaligned row %q (width %d, want %d)", color, stripANSI(l), len(stripANSI(l)), width)
			}
		}
	}
}

func stripANSI(s string) string {
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], 'm')
		s = s[:i] + s[i+j+1:]
	}
}
