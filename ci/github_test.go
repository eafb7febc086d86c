package ci

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/verify"
)

// runnerUnescape undoes EscapeData/EscapeProperty the way the Actions runner
// does (ActionCommand.cs: the mappings in order, "%25" last).
func runnerUnescape(s string) string {
	for _, m := range [][2]string{{"%0D", "\r"}, {"%0A", "\n"}, {"%3A", ":"}, {"%2C", ","}, {"%25", "%"}} {
		s = strings.ReplaceAll(s, m[0], m[1])
	}
	return s
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, data, prop string }{
		{"plain", "plain", "plain"},
		{"100%", "100%25", "100%25"},
		{"a\r\nb", "a%0D%0Ab", "a%0D%0Ab"},
		{"k: v, w", "k: v, w", "k%3A v%2C w"},
		{"%0A", "%250A", "%250A"},
		{"::error::x", "::error::x", "%3A%3Aerror%3A%3Ax"},
	} {
		if got := EscapeData(tc.in); got != tc.data {
			t.Errorf("EscapeData(%q) = %q, want %q", tc.in, got, tc.data)
		}
		if got := EscapeProperty(tc.in); got != tc.prop {
			t.Errorf("EscapeProperty(%q) = %q, want %q", tc.in, got, tc.prop)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "%", "%0A", "a\r\nb", "k:v,w", "%252%0A", evilName} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, p := EscapeData(s), EscapeProperty(s)
		if strings.ContainsAny(d, "\r\n") || strings.ContainsAny(p, "\r\n:,") {
			t.Fatalf("escaped %q to %q / %q", s, d, p)
		}
		if runnerUnescape(d) != s || runnerUnescape(p) != s {
			t.Fatalf("round trip of %q: data %q, property %q", s, runnerUnescape(d), runnerUnescape(p))
		}
	})
}

var commandLine = regexp.MustCompile(`^::(error|warning|notice) title=([^:\r\n]*)::([^\r\n]*)$`)

// TestAnnotationsAreCommands: every stdout line is one well-formed workflow
// command, one ::error per failure, and the hostile file name comes back
// intact after the runner's unescaping.
func TestAnnotationsAreCommands(t *testing.T) {
	r := fixtureReport()
	r.Databases = nil // packages only: TestDatabasesInReports
	var out bytes.Buffer
	if err := WriteGitHub(&out, "", r); err != nil {
		t.Fatal(err)
	}
	errs := 0
	sawEvil := false
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		m := commandLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("not a workflow command: %q", sc.Text())
		}
		if m[1] == "error" {
			errs++
			if strings.Contains(runnerUnescape(m[3]), `\x1b[2J\r\n:\x3aerror:\x3apwned`) {
				sawEvil = true
			}
		}
	}
	if errs != r.Failed() {
		t.Errorf("%d ::error lines, want %d", errs, r.Failed())
	}
	if !sawEvil {
		t.Error("the hostile file name was not reported in one annotation")
	}
}

func manyFailures(n int) Report {
	r := Report{Tool: "bintrans", Mode: ModeOffline}
	for i := range n {
		r.Results = append(r.Results, verify.Result{
			Artifact: verify.Artifact{Repo: "core", Arch: "x86_64", Filename: fmt.Sprintf("p%05d-1-1-x86_64.pkg.tar.zst", i)},
			Status:   verify.StatusMissingSignature,
		})
	}
	return r
}

func TestAnnotationCap(t *testing.T) {
	var out bytes.Buffer
	if err := WriteGitHub(&out, "", manyFailures(MaxAnnotations+7)); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if n := strings.Count(text, "::error "); n != MaxAnnotations {
		t.Errorf("%d ::error lines, want %d", n, MaxAnnotations)
	}
	if !strings.Contains(text, "::warning title=bintrans::7 more failed packages") {
		t.Errorf("no warning about the 7 packages left out:\n%s", text[strings.LastIndex(text, "::error"):])
	}
}

func TestSummaryAppendsAndCaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary")
	if err := os.WriteFile(path, []byte("earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteGitHub(&out, path, manyFailures(MaxSummaryRows+5)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	if !strings.HasPrefix(md, "earlier step\n### bintrans: 505 of 505 packages failed verification\n") {
		t.Errorf("summary does not append after the earlier content:\n%.200s", md)
	}
	if n := strings.Count(md, "| core/x86\\_64 |"); n != 0 {
		t.Errorf("underscore between letters escaped %d times", n)
	}
	if n := strings.Count(md, "| core/x86_64 |"); n != MaxSummaryRows {
		t.Errorf("%d failure rows, want %d", n, MaxSummaryRows)
	}
	if !strings.Contains(md, "… and 5 more") {
		t.Error("summary does not say how many failures it left out")
	}
	if len(b) > 1<<20 {
		t.Errorf("summary is %d bytes, over GitHub's 1 MiB limit", len(b))
	}
}

func TestMarkdownCell(t *testing.T) {
	for in, want := range map[string]string{
		"x86_64":                 "x86_64",
		"_emph_ and *strong*":    `\_emph\_ and \*strong\*`,
		"a|b":                    `a\|b`,
		"<img src=x>":            `\<img src=x\>`,
		"[link](javascript:x)":   `\[link\](javascript:x)`,
		"&amp; `code` ~~s~~ !":   `\&amp; \` + "`code\\`" + ` \~\~s\~\~ \!`,
		"back\\slash":            `back\\slash`,         // a lone backslash stands for itself, escaped for Markdown
		"two\nlines\r\nand\x1b.": `two lines and\\x1b.`, // renders as safetext's "two lines and\x1b."
	} {
		if got := mdCell(in); got != want {
			t.Errorf("mdCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteGitHubSummaryError(t *testing.T) {
	var out bytes.Buffer
	err := WriteGitHub(&out, filepath.Join(t.TempDir(), "missing-dir", "summary"), fixtureReport())
	if err == nil {
		t.Fatal("no error for a summary path that cannot be created")
	}
	if !strings.Contains(out.String(), "::error ") {
		t.Error("annotations are not written before the summary fails")
	}
}

// TestNoWorkflowCommandFromUntrustedText: with --github, stdout carries the
// annotations and the human report. The runner acts on "::cmd" at the start
// of a line (after white space) and on "##[cmd]" anywhere in a line: no
// line may hold "##[", and "::" only in the writer's own command prefix.
func TestNoWorkflowCommandFromUntrustedText(t *testing.T) {
	var out bytes.Buffer
	r := fixtureReport()
	if err := WriteGitHub(&out, "", r); err != nil {
		t.Fatal(err)
	}
	if err := WriteHuman(&out, r, false); err != nil {
		t.Fatal(err)
	}
	own := regexp.MustCompile(`^::(error|warning|notice) title=[^:]*::`)
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "##[") {
			t.Errorf("legacy workflow command in %q", line)
		}
		rest := own.ReplaceAllString(line, "")
		if strings.Contains(rest, "::") {
			t.Errorf("untrusted \"::\" in %q", line)
		}
		for _, r := range line {
			if r == 0x1b || r == 0x9b || r == 0x202e || r == '\r' {
				t.Errorf("unescaped %U in %q", r, line)
			}
		}
	}
	if !strings.Contains(out.String(), `##\x5badd-mask]hidden \u202e\u009b.pkg`) {
		t.Errorf("the hostile name is not shown escaped:\n%s", out.String())
	}
}
