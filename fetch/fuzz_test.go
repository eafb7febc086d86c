package fetch

import (
	"strconv"
	"testing"
)

// FuzzParseContentRange checks that the Content-Range parsers never panic
// and only accept ranges that make sense (first <= last < total).
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes 100-199/*", "bytes */100", "bytes 9-0/10", "bytes 0-9/9", "bytes -1-9/10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, ok := parseContentRange(s)
		if ok {
			if first < 0 || last < first || (total != -1 && total <= last) {
				t.Fatalf("%q accepted as %d-%d/%d", s, first, last, total)
			}
			back := "bytes " + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) + "/"
			if total == -1 {
				back += "*"
			} else {
				back += strconv.FormatInt(total, 10)
			}
			if f2, l2, t2, ok2 := parseContentRange(back); !ok2 || f2 != first || l2 != last || t2 != total {
				t.Fatalf("%q: round trip %q failed", s, back)
			}
		}
		if n, ok := unsatisfiedTotal(s); ok && n < 0 {
			t.Fatalf("%q: negative total %d", s, n)
		}
	})
}
