package pacman

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	got, err := ParseTargets(strings.NewReader("acl\n  bash \n\nglibc\r\nacl\nlib32-gcc-libs\npython-foo.bar@2+x\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"acl", "bash", "glibc", "lib32-gcc-libs", "python-foo.bar@2+x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, err := ParseTargets(strings.NewReader("")); err != nil || len(got) != 0 {
		t.Errorf("empty input: %q, %v", got, err)
	}
}

func TestParseTargetsRejects(t *testing.T) {
	cases := map[string]struct {
		in   string
		line int
	}{
		"space inside":   {"a\nfoo bar\n", 2},
		"slash":          {"core/foo\n", 1},
		"control":        {"a\nb\x1b[31m\n", 2},
		"too long":       {"a\n" + strings.Repeat("x", MaxNameLen+1) + "\n", 2},
		"very long line": {strings.Repeat("x", 10*MaxNameLen), 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseTargets(strings.NewReader(tc.in))
			var te *TargetsError
			if !errors.As(err, &te) || te.Line != tc.line {
				t.Fatalf("err = %v, want *TargetsError at line %d", err, tc.line)
			}
		})
	}
}

func TestParseTargetsMax(t *testing.T) {
	var b strings.Builder
	for i := 0; i <= MaxTargets; i++ {
		b.WriteString("p" + strconv.Itoa(i) + "\n")
	}
	_, err := ParseTargets(strings.NewReader(b.String()))
	var te *TargetsError
	if !errors.As(err, &te) || !strings.Contains(te.Msg, "more than") {
		t.Fatalf("err = %v, want too many targets", err)
	}
}

func FuzzParseTargets(f *testing.F) {
	f.Add([]byte("acl\nbash\nglibc\n"))
	f.Add([]byte("a\n\n a \r\nb\x00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		names, err := ParseTargets(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" || len(n) > MaxNameLen || strings.ContainsAny(n, " /\t\n\r") || seen[n] {
				t.Fatalf("bad name %q", n)
			}
			seen[n] = true
		}
	})
}
