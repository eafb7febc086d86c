package ci

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bintrans/bintrans/internal/safetext"
)

// ANSI colours of the human report.
const (
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiBold  = "\x1b[1m"
	ansiReset = "\x1b[0m"
)

// WriteHuman writes the report for a person: one line per failed package,
// "FAIL <repo>/<arch> <filename>: <status>: <reason>", in (repo, arch,
// filename) order, then a table of the non-zero counts per status and the
// total, aligned. With color, failures are red and ok green (ANSI); the
// caller decides (a terminal, NO_COLOR). Untrusted text passes through
// safetext, so no control, bidi or format character and no workflow
// command reaches the terminal or a CI log.
func WriteHuman(w io.Writer, r Report, color bool) error {
	bw := bufio.NewWriter(w)
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	failures := 0
	for _, d := range r.Databases {
		switch {
		case d.Failed():
			failures++
			fmt.Fprintf(bw, "%s %s %s: statement %s: %s\n", paint(ansiBold+ansiRed, "FAIL"), safetext.Line(d.Repo), safetext.Line(d.Path),
				safetext.Line(d.Outcome), safetext.Cut(safetext.Fold(d.Reason), MaxReasonLen))
		case d.Outcome != DBOK:
			fmt.Fprintf(bw, "WARN %s %s: statement %s: %s\n", safetext.Line(d.Repo), safetext.Line(d.Path),
				safetext.Line(d.Outcome), safetext.Cut(safetext.Fold(d.Reason), MaxReasonLen))
		}
	}
	for _, res := range r.Sorted() {
		if res.OK() {
			continue
		}
		failures++
		fmt.Fprintf(bw, "%s %s %s: %s: %s\n", paint(ansiBold+ansiRed, "FAIL"),
			safetext.Line(location(res.Artifact)), safetext.Line(res.Artifact.Filename),
			res.Status, Reason(res))
	}
	if failures > 0 {
		fmt.Fprintln(bw)
	}

	type row struct{ name, count, code string }
	rows := []row{{"status", "packages", ""}}
	for _, c := range r.Counts() {
		if c.Count == 0 {
			continue
		}
		code := ansiRed
		if c.Status == "ok" {
			code = ansiGreen
		}
		rows = append(rows, row{safetext.Line(string(c.Status)), strconv.Itoa(c.Count), code})
	}
	rows = append(rows, row{"total", strconv.Itoa(len(r.Results)), ansiBold})
	if n := len(r.Databases); n > 0 {
		code := ansiGreen
		if r.DatabasesFailed() > 0 {
			code = ansiRed
		}
		rows = append(rows, row{"databases refused", strconv.Itoa(r.DatabasesFailed()), code}, row{"databases", strconv.Itoa(n), ansiBold})
	}
	nw, cw := 0, 0
	for _, x := range rows {
		nw = max(nw, len(x.name))
		cw = max(cw, len(x.count))
	}
	for _, x := range rows {
		line := x.name + strings.Repeat(" ", nw-len(x.name)+2) + strings.Repeat(" ", cw-len(x.count)) + x.count
		if x.code != "" {
			line = paint(x.code, line)
		}
		fmt.Fprintln(bw, line)
	}
	return bw.Flush()
}
