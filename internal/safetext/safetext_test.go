package safetext

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// unquote inverts Line: the proof that the escaping is unambiguous.
func unquote(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			b.WriteByte('\\') // a trailing backslash stands for itself
			i++
			continue
		}
		switch s[i+1] {
		case '\\':
			b.WriteByte('\\')
			i += 2
		case 't':
			b.WriteByte('\t')
			i += 2
		case 'n':
			b.WriteByte('\n')
			i += 2
		case 'r':
			b.WriteByte('\r')
			i += 2
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[s[i+1]]
			if i+2+n > len(s) {
				return "", errors.New("short escape")
			}
			v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32)
			if err != nil {
				return "", err
			}
			if s[i+1] == 'x' {
				b.WriteByte(byte(v))
			} else {
				b.WriteRune(rune(v))
			}
			i += 2 + n
		default: // any other backslash stands for itself
			b.WriteByte('\\')
			i++
		}
	}
	return b.String(), nil
}

func TestLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"foo-1.0-1-x86_64.pkg.tar.zst", "foo-1.0-1-x86_64.pkg.tar.zst"},
		{"a b  c", "a b  c"},
		{"\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`},
		{"tab\tnl\ncr\r", `tab\tnl\ncr\r`},
		{"del\x7f", `del\x7f`},
		{"csi\u009b31m", `csi\u009b31m`},
		{"evil\u202egpj.exe", `evil\u202egpj.exe`},
		{"\u2066\u2067\u2068\u2069\u200e\u200f\u061c", `\u2066\u2067\u2068\u2069\u200e\u200f\u061c`},
		{"zero\u200bwidth\ufeff", `zero\u200bwidth\ufeff`},
		{"tag\U000E0041", `tag\U000e0041`},
		{"ls\u2028ps\u2029", `ls\u2028ps\u2029`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{`back\slash \x1b`, `back\slash \\x1b`},
		{`quoted "a \"b\"" \\ end\`, `quoted "a \"b\"" \\\ end\`},
		{"\\\x1b", `\\\x1b`},
		{`\::`, `\:\x3a`},
		{"::add-mask::secret", `:\x3aadd-mask:\x3asecret`},
		{":::", `:\x3a:`},
		{"x ##[set-output name=a;]b", `x ##\x5bset-output name=a;]b`},
		{"###[", `###\x5b`},
		{"café ünïcode ✓ 日本", "café ünïcode ✓ 日本"},
		{"", ""},
	} {
		got := Line(c.in)
		if got != c.want {
			t.Errorf("Line(%q) = %q, want %q", c.in, got, c.want)
		}
		if back, err := unquote(got); err != nil || back != c.in {
			t.Errorf("unquote(Line(%q)) = %q, %v", c.in, back, err)
		}
	}
}

func TestCut(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456…"},
		{"\x1b\x1b\x1b\x1b", 10, `\x1b…`}, // never inside an escape
		{"ééééé", 6, "é…"},                // never inside a rune
		{"abc", 0, "abc"},
	} {
		got := Cut(c.in, c.limit)
		if got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.in, c.limit, got, c.want)
		}
		if c.limit > 0 && len(got) > max(c.limit, len("…")) {
			t.Errorf("Cut(%q, %d) is %d bytes", c.in, c.limit, len(got))
		}
	}
}

func TestText(t *testing.T) {
	in := "SECURITY ERROR\n\tlog\x1b[31m - 1\n\t::warning::x"
	want := "SECURITY ERROR\n\tlog\\x1b[31m - 1\n\t:\\x3awarning:\\x3ax"
	if got := Text(in); got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
}

func TestCheck(t *testing.T) {
	for _, s := range []string{"ok name", "café", `back\slash`, "::"} {
		if err := Check(s); err != nil {
			t.Errorf("Check(%q) = %v", s, err)
		}
	}
	for s, want := range map[string]string{
		"a\x1b[2J":   "control character U+001B at byte 1",
		"ab\u202ec":  "bidi control U+202E at byte 2",
		"\u009b":     "C1 control character U+009B at byte 0",
		"x\u200b":    "format character U+200B at byte 1",
		"bad\xff":    "invalid UTF-8 byte 0xFF at byte 3",
		"l\u2028":    "line separator U+2028 at byte 1",
		"r\ufffd":    "replacement character U+FFFD at byte 1",
		"del\x7fend": "control character U+007F at byte 3",
	} {
		err := Check(s)
		if err == nil || err.Error() != want {
			t.Errorf("Check(%q) = %v, want %s", s, err, want)
		}
	}
}

func TestJSON(t *testing.T) {
	v := map[string]string{
		"name": "evil\u202e\u009b::add-mask::x ##[set-output]y \U000E0041 \u2028 ok",
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out := JSON(b)
	checkJSONSafe(t, out)
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["name"] != v["name"] {
		t.Fatalf("JSON changed the value: %q, %v", back, err)
	}
	plain := []byte(`{"a": "b"}`)
	if got := JSON(plain); &got[0] != &plain[0] {
		t.Errorf("JSON copied plain input")
	}
}

func checkJSONSafe(t testing.TB, out []byte) {
	t.Helper()
	if strings.Contains(string(out), "::") || strings.Contains(string(out), "##[") {
		t.Errorf("workflow command sequence survives: %s", out)
	}
	for _, r := range string(out) {
		if Unsafe(r) && r != '\n' && r != '\t' && r != '\r' {
			t.Errorf("unsafe rune %U survives: %s", r, out)
		}
	}
}

// FuzzLine: the output of Line is valid UTF-8 with no unsafe rune, no
// workflow-command sequence, and decodes back to its input (injective);
// Cut is a prefix of it within the limit; JSON keeps a JSON string's value
// and makes it safe.
func FuzzLine(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[2J", "\u202e", "\u009b", "::x::", "##[add-mask]", "\\x1b", "\xff",
		"\U000E0041", "a\u2028b", ":#:#[##[", "é\\", "\t\n\r"} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		out := Line(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Line(%q) = %q: not UTF-8", s, out)
		}
		for _, r := range out {
			if Unsafe(r) || unicode.Is(unicode.Cf, r) || unicode.IsControl(r) {
				t.Fatalf("Line(%q) = %q holds %U", s, out, r)
			}
		}
		if strings.Contains(out, "::") || strings.Contains(out, "##[") {
			t.Fatalf("Line(%q) = %q holds a workflow command sequence", s, out)
		}
		if back, err := unquote(out); err != nil || back != s {
			t.Fatalf("unquote(Line(%q)) = %q, %v", s, back, err)
		}
		if Check(s) == nil {
			for _, r := range s {
				if Unsafe(r) {
					t.Fatalf("Check(%q) = nil but it holds %U", s, r)
				}
			}
		} else if utf8.ValidString(s) && !strings.ContainsFunc(s, Unsafe) {
			t.Fatalf("Check(%q) = %v", s, Check(s))
		}
		if m := Message(s); strings.ContainsAny(m, "\t\n\r") || strings.Contains(m, "::") {
			t.Fatalf("Message(%q) = %q", s, m)
		}
		limit = int(uint(limit)%200) + 1
		c := Cut(s, limit)
		if len(c) > max(limit, len("…")) {
			t.Fatalf("Cut(%q, %d) = %q: %d bytes", s, limit, c, len(c))
		}
		if c != out && !strings.HasPrefix(out, strings.TrimSuffix(c, "…")) {
			t.Fatalf("Cut(%q, %d) = %q is not a prefix of %q", s, limit, c, out)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		j := JSON(b)
		checkJSONSafe(t, j)
		var back string
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatalf("JSON(%s) = %s: %v", b, j, err)
		}
		var want string
		json.Unmarshal(b, &want)
		if back != want {
			t.Fatalf("JSON(%s) = %s decodes to %q, want %q", b, j, back, want)
		}
	})
}

func TestMessage(t *testing.T) {
	for in, want := range map[string]string{
		"SECURITY ERROR\nThe log\n\n\tearlier:\n\t200": "SECURITY ERROR The log earlier: 200",
		"  padded  \r\n":             "padded",
		"name \x1b[2J\u202e::x":      `name \x1b[2J\u202e:\x3ax`,
		`trusted comment "a, \"b\""`: `trusted comment "a, \"b\""`,
	} {
		if got := Message(in); got != want {
			t.Errorf("Message(%q) = %q, want %q", in, got, want)
		}
	}
}
