package repodb

import (
	"strings"
	"testing"
)

// The union of what the two former parsers were tested with
// (internal/pacman's, strict, and internal/rebuilder's, lax), and one
// test per input the lax one accepted and the strict one refuses, each
// decided.
func TestParseFilename(t *testing.T) {
	for in, want := range map[string][3]string{
		"glibc-2.40+r16-1-x86_64.pkg.tar.zst":              {"glibc", "2.40+r16-1", "x86_64"},
		"lib32-gcc-libs-1:14.2.1-3-x86_64.pkg.tar.xz":      {"lib32-gcc-libs", "1:14.2.1-3", "x86_64"},
		"lib32-gcc-libs-1:14.2.1+r730-1-x86_64.pkg.tar.xz": {"lib32-gcc-libs", "1:14.2.1+r730-1", "x86_64"},
		"filesystem-2025.10.12-1-any.pkg.tar.zst":          {"filesystem", "2025.10.12-1", "any"},
		"foo-1-1-any.pkg.tar":                              {"foo", "1-1", "any"},
		"a-1-2-any.pkg.tar":                                {"a", "1-2", "any"},
		"foo-1-1-any.pkg.tar.gz":                           {"foo", "1-1", "any"},
	} {
		n, v, a, ok := ParseFilename(in)
		if !ok || [3]string{n, v, a} != want {
			t.Errorf("ParseFilename(%q) = %q %q %q %v, want %q", in, n, v, a, ok, want)
		}
	}
	// Refused by both.
	for _, bad := range []string{"", "foo.pkg.tar.zst", "foo-1-any.pkg.tar.zst", "a-1-any.pkg.tar.zst", "-1-1-any.pkg.tar.zst",
		"foo-1-1-any.tar.zst", "a-1-1-x86_64.tar.zst", "foo--1-any.pkg.tar.zst", ".pkg.tar.zst"} {
		if _, _, _, ok := ParseFilename(bad); ok {
			t.Errorf("ParseFilename(%q) ok", bad)
		}
	}
}

// Each input the lax parser accepted that is not a package file name, and
// why refusing it is right. (A refused name is not an error for the
// callers: the rebuilder then takes name, version and architecture from
// the database entry; verify and fetch label the file without them.)
func TestParseFilenameRefusesWhatTheLaxOneAccepted(t *testing.T) {
	for in, why := range map[string]string{
		"a/b-1-1-any.pkg.tar.zst":      "a path, not a file name: the name would be \"a/b\"",
		"../x-1-1-any.pkg.tar.zst":     "a path leaving the directory",
		"a\x00b-1-1-any.pkg.tar.zst":   "a NUL: no file system or libalpm name has one",
		"foo-1-1-any.pkg.tar.zst.sig":  "a detached signature of the package, not the package",
		"foo-1-1-any.pkg.tar.":         "an empty compression extension",
		"foo-1-1-any.pkg.tarx":         "not the .pkg.tar suffix",
		"foo-1-1-any.pkg.tar.zst-copy": "a '-' in the extension: not a compressor's",
		"foo-1-1-any.pkg.tar.zst.part": "a partial download (pacman's .part)",
	} {
		if n, v, a, ok := ParseFilename(in); ok {
			t.Errorf("ParseFilename(%q) = %q %q %q, want refused: %s", in, n, v, a, why)
		}
	}
}

// FuzzParseFilename: what is accepted puts back together into the input,
// as one plain file name with a package suffix.
func FuzzParseFilename(f *testing.F) {
	for _, s := range []string{"glibc-2.40+r16-1-x86_64.pkg.tar.zst", "a-1-1-any.pkg.tar", "a/b-1-1-any.pkg.tar", "x-1-1-any.pkg.tar.zst.sig", "--1-1.pkg.tar", "a-b-c-d-e.pkg.tar.xz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, v, a, ok := ParseFilename(s)
		if !ok {
			return
		}
		if strings.ContainsAny(s, "/\x00") || n == "" || v == "" || a == "" {
			t.Fatalf("%q: %q %q %q", s, n, v, a)
		}
		if !strings.HasPrefix(s, n+"-"+v+"-"+a+".pkg.tar") {
			t.Fatalf("%q does not start with %q-%q-%q.pkg.tar", s, n, v, a)
		}
	})
}
