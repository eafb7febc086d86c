package ci

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/bintrans/bintrans/internal/safetext"
)

// GitHub limits (docs: "workflow commands", "adding a job summary"): a step
// shows at most 10 error annotations and a job 50; a step summary is at most
// 1 MiB. The writers stay well inside them.
const (
	// MaxAnnotations is how many ::error commands WriteGitHub prints; the
	// rest are counted in one ::warning pointing at the job summary.
	MaxAnnotations = 50
	// MaxSummaryRows is how many failures the job summary lists.
	MaxSummaryRows = 500
)

// WriteGitHub reports r to GitHub Actions. On stdout it prints one
// `::error title=…::…` workflow command per failed package (at most
// MaxAnnotations, then one ::warning with the number left out) and a final
// ::notice with the totals. When summaryPath is not empty (the value of
// $GITHUB_STEP_SUMMARY) it appends a Markdown job summary to that file,
// creating it if needed: a table of counts per status and a table of the
// failures. Untrusted text is escaped so that it can neither start another
// workflow command nor inject Markdown or HTML.
func WriteGitHub(stdout io.Writer, summaryPath string, r Report) error {
	if err := writeAnnotations(stdout, r); err != nil {
		return err
	}
	if summaryPath == "" {
		return nil
	}
	f, err := os.OpenFile(summaryPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = WriteMarkdown(f, r)
	return errors.Join(err, f.Close())
}

func writeAnnotations(w io.Writer, r Report) error {
	bw := bufio.NewWriter(w)
	for _, d := range r.Databases {
		kind, title := "warning", "bintrans: sync database without a checked statement"
		switch {
		case d.Outcome == DBOK:
			continue
		case d.Failed():
			kind, title = "error", "bintrans: sync database refused"
		}
		writeCommand(bw, kind, title+" ("+safetext.Line(d.Repo)+")", fmt.Sprintf("%s: %s: %s", safetext.Line(d.Path), safetext.Line(d.Outcome), safetext.Cut(safetext.Fold(d.Reason), MaxReasonLen)))
	}
	shown, failed := 0, 0
	for _, res := range r.Sorted() {
		if res.OK() {
			continue
		}
		failed++
		if shown == MaxAnnotations {
			continue
		}
		shown++
		a := res.Artifact
		title := fmt.Sprintf("bintrans: %s (%s)", safetext.Line(string(res.Status)), safetext.Line(location(a)))
		msg := fmt.Sprintf("%s: %s", safetext.Line(a.Filename), Reason(res))
		writeCommand(bw, "error", title, msg)
	}
	if failed > shown {
		writeCommand(bw, "warning", "bintrans",
			fmt.Sprintf("%d more failed packages are not annotated: see the job summary or the JSON/JUnit report", failed-shown))
	}
	writeCommand(bw, "notice", "bintrans", verdictLine(r))
	return bw.Flush()
}

// writeCommand prints one workflow command with a title property.
func writeCommand(w io.Writer, cmd, title, msg string) {
	fmt.Fprintf(w, "::%s title=%s::%s\n", cmd, EscapeProperty(title), EscapeData(msg))
}

// EscapeData escapes a workflow command's message the way the Actions
// runner unescapes it (actions/toolkit command.ts): % → %25, \r → %0D,
// \n → %0A. The result is a single line.
func EscapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// EscapeProperty escapes a workflow command's property value: as EscapeData
// plus : → %3A and , → %2C, which would otherwise end the value.
func EscapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// verdictLine is the one-sentence result: "200 packages verified" or
// "3 of 200 packages failed verification".
func verdictLine(r Report) string {
	n, f := len(r.Results), r.Failed()
	s := fmt.Sprintf("%d %s verified", n, plural(n, "package", "packages"))
	if f > 0 {
		s = fmt.Sprintf("%d of %d %s failed verification", f, n, plural(n, "package", "packages"))
	}
	if d := r.DatabasesFailed(); d > 0 {
		s += fmt.Sprintf("; %d of %d sync %s refused", d, len(r.Databases), plural(len(r.Databases), "database", "databases"))
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WriteMarkdown writes the Markdown job summary of r: a heading with the
// verdict, the mode and tree head, a table of the non-zero counts per status
// and a table of at most MaxSummaryRows failures.
func WriteMarkdown(w io.Writer, r Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "### %s: %s\n\n", mdCell(cmp.Or(r.Tool, "bintrans")), verdictLine(r))
	var facts []string
	if r.Mode != "" {
		facts = append(facts, "mode: "+mdCell(r.Mode))
	}
	if r.Version != "" {
		facts = append(facts, "version: "+mdCell(r.Version))
	}
	if l := r.Log; l != nil {
		facts = append(facts, fmt.Sprintf("log: %s at tree size %d, root %s", mdCell(l.URL), l.TreeSize, mdCell(l.RootHash)))
	}
	if len(facts) > 0 {
		fmt.Fprintf(bw, "%s\n\n", strings.Join(facts, " · "))
	}
	fmt.Fprintf(bw, "| status | packages |\n| :-- | --: |\n")
	for _, c := range r.Counts() {
		if c.Count > 0 {
			fmt.Fprintf(bw, "| %s | %d |\n", mdCell(string(c.Status)), c.Count)
		}
	}
	fmt.Fprintf(bw, "| **total** | **%d** |\n", len(r.Results))
	if len(r.Databases) > 0 {
		fmt.Fprintf(bw, "\n#### Sync databases (repository statements)\n\n| repository | database | outcome | statement | reason |\n| :-- | :-- | :-- | :-- | :-- |\n")
		for _, d := range r.Databases {
			st := ""
			if d.Counter > 0 {
				st = fmt.Sprintf("%d, issued %s", d.Counter, d.Issued.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %s | %s |\n", mdCell(d.Repo), mdCell(d.Path), mdCell(d.Outcome), mdCell(st), mdCell(d.Reason))
		}
	}
	if f := r.Failed(); f > 0 {
		fmt.Fprintf(bw, "\n#### Failed packages\n\n| repository | package | status | reason |\n| :-- | :-- | :-- | :-- |\n")
		rows := 0
		for _, res := range r.Sorted() {
			if res.OK() {
				continue
			}
			if rows == MaxSummaryRows {
				break
			}
			rows++
			fmt.Fprintf(bw, "| %s | %s | %s | %s |\n", mdCell(location(res.Artifact)),
				mdCell(res.Artifact.Filename), mdCell(string(res.Status)), mdCell(rawReason(res)))
		}
		if f > rows {
			fmt.Fprintf(bw, "\n_… and %d more: see the JSON or JUnit report._\n", f-rows)
		}
	}
	fmt.Fprintln(bw)
	return bw.Flush()
}

// mdCell makes untrusted text safe inside a Markdown table cell: one line
// (safetext.Cut), and every character that could open inline Markdown or HTML
// syntax, an entity, or end the cell is backslash-escaped (CommonMark
// allows escaping any ASCII punctuation). An underscore between two
// letters or digits ("x86_64") cannot start emphasis and stays as it is.
func mdCell(s string) string {
	rs := []rune(safetext.Cut(safetext.Fold(s), MaxReasonLen))
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == '_' && i > 0 && i+1 < len(rs) && isAlnum(rs[i-1]) && isAlnum(rs[i+1]):
		case strings.ContainsRune("\\`*_[]<>|~&!", r):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
