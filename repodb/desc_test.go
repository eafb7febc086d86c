package repodb_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
)

// equalPkg compares packages treating nil and empty slices alike.
func equalPkg(a, b repodb.Package) bool {
	norm := func(p *repodb.Package) {
		for _, s := range []*[]string{&p.Groups, &p.License, &p.Replaces, &p.Conflicts, &p.Provides, &p.Depends, &p.OptDepends, &p.MakeDepends, &p.CheckDepends} {
			if len(*s) == 0 {
				*s = nil
			}
		}
	}
	norm(&a)
	norm(&b)
	return reflect.DeepEqual(a, b)
}

func fullPackage() repodb.Package {
	return repodb.Package{
		Filename: "qt6-base-docs-1:6.7.2-1.1-x86_64.pkg.tar.zst", Name: "qt6-base-docs", Base: "qt6-base", Version: "1:6.7.2-1.1",
		Desc: "Documentation, with – UTF-8 and   inner  spaces kept as given", Groups: []string{"qt6", "docs"},
		CSize: 123456789, ISize: 987654321, MD5Sum: "0123456789abcdef0123456789abcdef", SHA256Sum: goodSHA,
		PGPSig: "iQIzBAABCAAdFiEE+w==", URL: "https://www.qt.io", License: []string{"GPL-3.0-only", "LGPL-3.0-only", "custom"},
		Arch: "x86_64", BuildDate: 1719000000, Packager: "Antonio Rojas <arojas@archlinux.org>",
		Replaces: []string{"qt6-doc"}, Conflicts: []string{"qt6-doc<6"}, Provides: []string{"qt6-docs=6.7.2"},
		Depends: []string{"qt6-base=6.7.2", "libfoo.so=1-64"}, OptDepends: []string{"qt6-tools: for Assistant"},
		MakeDepends: []string{"cmake", "ninja"}, CheckDepends: []string{"xorg-server-xvfb"},
	}
}

// TestParseDescAllFields: every field repo-add writes, in its layout.
func TestParseDescAllFields(t *testing.T) {
	want := fullPackage()
	b := repodbtest.Desc(want)
	for _, f := range repodb.FieldOrder() {
		if !strings.Contains(string(b), "%"+f+"%\n") {
			t.Fatalf("fixture lacks %%%s%%", f)
		}
	}
	got, err := repodb.ParseDesc(b)
	if err != nil {
		t.Fatal(err)
	}
	if !equalPkg(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// The parse does not alias the caller's buffer.
	for i := range b {
		b[i] = 'X'
	}
	if got.Name != "qt6-base-docs" || got.Depends[1] != "libfoo.so=1-64" {
		t.Fatal("ParseDesc result aliases its input")
	}
}

func TestParseDescVersions(t *testing.T) {
	for _, v := range []string{"1-1", "1:2.3-4", "12:0.1+r5.gabc_def~rc1-1.5", "2024.01.15-1", "1.0.0beta-3"} {
		p, err := repodb.ParseDesc([]byte(desc("a", v, "a.pkg")))
		if err != nil || p.Version != v {
			t.Errorf("%q: got %q, %v", v, p.Version, err)
		}
	}
}

func TestParseDescRejects(t *testing.T) {
	base := desc("a", "1-1", "a.pkg")
	cases := []struct {
		name  string
		in    string
		is    error
		field string
		line  int
	}{
		{"empty", "", repodb.ErrMissingField, "FILENAME", 0},
		{"no trailing empty line", strings.TrimSuffix(base, "\n"), repodb.ErrMalformed, "SHA256SUM", 12},
		{"no trailing newline", strings.TrimSuffix(base, "\n\n"), repodb.ErrMalformed, "SHA256SUM", 11},
		{"extra empty line", base + "\n", repodb.ErrMalformed, "", 13},
		{"field without value", base + "%DESC%\n\n", repodb.ErrMalformed, "DESC", 13},
		{"text outside fields", base + "hello\n", repodb.ErrMalformed, "", 13},
		{"unknown field", base + "%SIZE%\n5\n\n", repodb.ErrUnknownField, "SIZE", 13},
		{"lower-case field", base + "%desc%\nx\n\n", repodb.ErrUnknownField, "desc", 13},
		{"repeated field", base + "%NAME%\nb\n\n", repodb.ErrDuplicateField, "NAME", 13},
		{"two values for NAME", strings.Replace(base, "%NAME%\na\n", "%NAME%\na\nb\n", 1), repodb.ErrMalformed, "NAME", 6},
		{"CR line ending", strings.Replace(base, "a.pkg\n", "a.pkg\r\n", 1), repodb.ErrMalformed, "FILENAME", 2},
		{"NUL in value", base + "%DESC%\na\x00b\n\n", repodb.ErrMalformed, "DESC", 14},
		{"filename with slash", desc("a", "1-1", "../a.pkg"), repodb.ErrMalformed, "FILENAME", 2},
		{"filename dot-dot", desc("a", "1-1", ".."), repodb.ErrMalformed, "FILENAME", 2},
		{"name with space", desc("a b", "1-1", "a.pkg"), repodb.ErrMalformed, "NAME", 5},
		{"name starting with dash", desc("-a", "1-1", "a.pkg"), repodb.ErrMalformed, "NAME", 5},
		{"name with slash", desc("a/b", "1-1", "a.pkg"), repodb.ErrMalformed, "NAME", 5},
		{"version without pkgrel", desc("a", "1.0", "a.pkg"), repodb.ErrMalformed, "VERSION", 8},
		{"version with letters in pkgrel", desc("a", "1.0-x", "a.pkg"), repodb.ErrMalformed, "VERSION", 8},
		{"version with dash in pkgver", desc("a", "1-0-1", "a.pkg"), repodb.ErrMalformed, "VERSION", 8},
		{"bad epoch", desc("a", "x:1.0-1", "a.pkg"), repodb.ErrMalformed, "VERSION", 8},
		{"empty pkgver", desc("a", "1:-1", "a.pkg"), repodb.ErrMalformed, "VERSION", 8},
		{"two colons", desc("a", "1:2:3-1", "a.pkg"), repodb.ErrMalformed, "VERSION", 8},
		{"CSIZE not a number", base + "%CSIZE%\n12k\n\n", repodb.ErrMalformed, "CSIZE", 14},
		{"CSIZE negative", base + "%CSIZE%\n-1\n\n", repodb.ErrMalformed, "CSIZE", 14},
		{"ISIZE overflows", base + "%ISIZE%\n99999999999999999999\n\n", repodb.ErrMalformed, "ISIZE", 14},
		{"MD5SUM too long", base + "%MD5SUM%\n" + goodSHA + "\n\n", repodb.ErrMalformed, "MD5SUM", 14},
		{"PGPSIG not base64", base + "%PGPSIG%\nnot base64!\n\n", repodb.ErrMalformed, "PGPSIG", 14},
		{"ARCH with space", base + "%ARCH%\nx86 64\n\n", repodb.ErrMalformed, "ARCH", 14},
		{"only a header", "%FILENAME%\n", repodb.ErrMalformed, "FILENAME", 2},
		{"percent alone", "%%\nx\n\n", repodb.ErrMalformed, "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := repodb.ParseDesc([]byte(tc.in))
			var fe *repodb.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want *FieldError", err)
			}
			if !errors.Is(err, tc.is) || fe.Field != tc.field || fe.Line != tc.line {
				t.Errorf("got %v (field %q line %d), want %v field %q line %d", err, fe.Field, fe.Line, tc.is, tc.field, tc.line)
			}
		})
	}
}
