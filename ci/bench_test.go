package ci

import (
	"fmt"
	"io"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/bintrans/bintrans/verify"
)

// bigReport is a 15 000-package scan (the scale target) with 1% failures.
func bigReport() Report {
	r := Report{Tool: "bintrans", Version: "bench", Mode: ModeOnline, Log: &LogInfo{URL: "http://127.0.0.1:3000", TreeSize: 15000, RootHash: sha('f')}}
	for i := range 15000 {
		res := verify.Result{
			Artifact: verify.Artifact{Repo: []string{"core", "extra"}[i%2], Arch: "x86_64",
				Filename: fmt.Sprintf("pkg%05d-1.0-1-x86_64.pkg.tar.zst", 15000-i), Name: fmt.Sprintf("pkg%05d", i), Version: "1.0-1"},
			Status: verify.StatusOK, SHA256: sha('a'), KeyID: policyKey, Entry: entry(int64(i)),
		}
		if i%100 == 0 {
			res.Status, res.Entry = verify.StatusMissingSignature, nil
			res.Err = &verify.MissingError{What: "signature", Filename: res.Artifact.Filename, Err: verify.ErrNotFound}
		}
		r.Results = append(r.Results, res)
	}
	return r
}

func BenchmarkWriters(b *testing.B) {
	r := bigReport()
	for name, write := range map[string]func(io.Writer) error{
		"json":   func(w io.Writer) error { return WriteJSON(w, r) },
		"junit":  func(w io.Writer) error { return WriteJUnit(w, r) },
		"human":  func(w io.Writer) error { return WriteHuman(w, r, false) },
		"github": func(w io.Writer) error { return writeAnnotations(w, r) },
		"md":     func(w io.Writer) error { return WriteMarkdown(w, r) },
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := write(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzMDCell: a Markdown cell of any text has no unescaped | (the escaping
// of controls, bidi and format characters is safetext's, fuzzed there).
func FuzzMDCell(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\x1b[2J", "ééé", "bad\xff", evilName, "\u202e", "a|b\\|c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cell := mdCell(s)
		if !utf8.ValidString(cell) {
			t.Fatalf("mdCell(%q) = %q: invalid UTF-8", s, cell)
		}
		for _, r := range cell {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("mdCell(%q) = %q keeps %U", s, cell, r)
			}
		}
		for i, r := range cell {
			if r == '|' && (i == 0 || cell[i-1] != '\\') {
				t.Fatalf("mdCell(%q) = %q has an unescaped |", s, cell)
			}
		}
	})
}
