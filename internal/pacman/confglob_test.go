package pacman

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/globoracle"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// globTree is the directory every glob corpus pattern runs in: names
// glob(3) and Go's path.Match read differently, hidden files and
// directories, a directory named like a file, symlinks (one dangling), and
// names holding pattern characters.
var globTree = []string{
	"a.conf", "b.conf", "B.conf", "_template.conf", "!x.conf", "^y.conf", ".hidden.conf",
	"10-core.conf", "9-extra.conf", "a-b.conf", "ab.conf", "x.txt", "conf", "mirrorlist",
	"lit?.conf", "lit*.conf", "lit{a,b}.conf", "~home.conf",
	"sub/r.conf", "sub/s.conf", "sub/.h.conf", "sub/deeper/r.conf",
	".dot/r.conf", "other/r.conf", "empty/", "dir.conf/",
	"link -> sub", "dangling -> nowhere", "dangling.conf -> nowhere.conf", "sub/up.conf -> ../a.conf",
}

// makeTree creates entries ("dir/", "name -> target" symlinks, files
// whose content is a repository section named after them) under dir.
func makeTree(t testing.TB, dir string, entries []string) {
	t.Helper()
	for _, e := range entries {
		name, target, link := strings.Cut(e, " -> ")
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case link:
			err = os.Symlink(target, p)
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, []byte("["+repoOf(name)+"]\nServer = file:///"+hex.EncodeToString([]byte(name))+"\n"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// repoOf names the repository section of a tree file.
func repoOf(name string) string { return "r" + hex.EncodeToString([]byte(name)) }

// globPatterns are relative to the tree; refused says bintrans must refuse
// the pattern (with the reason's key word), "" that it must expand it
// exactly as glob(3) does.
var globPatterns = []struct{ pattern, refused string }{
	{"a.conf", ""}, {"missing.conf", ""}, {"*.conf", ""}, {"*", ""}, {"?.conf", ""},
	{"a*", ""}, {"*.co?f", ""}, {"**.conf", ""}, {"*/r.conf", ""}, {"*/*.conf", ""},
	{"s*/r.conf", ""}, {"sub/*", ""}, {"*/missing.conf", ""}, {"none*", ""}, {"*/none*", ""},
	{"*//r.conf", ""}, {"./*.conf", ""}, {"sub/./r.conf", ""}, {"dangl*", ""}, {"link/*", ""},
	{"*/*/r.conf", ""}, {"*/deeper/*", ""}, {"lit?.conf", ""}, {"lit*.conf", ""}, {"lit{a,b}.conf", ""},
	{"~*", ""}, {"*-*.conf", ""}, {"?0-*", ""}, {"dir.conf", ""}, {"*/up.conf", ""}, {"empty/*", ""},
	{"[!_]*.conf", "bracket"}, {"[^_]*.conf", "bracket"}, {"[[:alpha:]]*.conf", "bracket"}, {"[a-z].conf", "bracket"},
	{"[ab].conf", "bracket"}, {"[.conf", "bracket"}, {"a].conf", "bracket"}, {`\*.conf`, "backslash"}, {`a\.conf`, "backslash"},
	{".*", "starting with '.'"}, {".h*", "starting with '.'"}, {"sub/.*", "starting with '.'"}, {"*/", "trailing '/'"},
	{"sub/../*.conf", "'..'"}, {"../x", "'..'"}, {"é*.conf", "non-ASCII"},
}

// TestIncludeGlobAgreesWithGlibc: every corpus pattern is either refused
// (as listed) or expanded to exactly glob(3)'s paths, in glob(3)'s order
// (the C locale; in another locale the order differs, which the parser's
// order rules take care of).
func TestIncludeGlobAgreesWithGlibc(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, globTree)
	fsys := os.DirFS("/")
	for _, locale := range []string{"C", "C.UTF-8"} {
		o := globoracle.Get(t, locale)
		for _, tc := range globPatterns {
			pattern := dir + "/" + tc.pattern
			got, err := expandInclude(fsys, "pacman.conf", 1, "", pattern)
			if tc.refused != "" {
				var ce *ConfError
				if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tc.refused) || ce.Hint() == "" {
					t.Errorf("%s: err = %v, want a refusal naming %q", tc.pattern, err, tc.refused)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", tc.pattern, err)
				continue
			}
			rc, want, err := o.Glob(pattern)
			if err != nil {
				t.Fatal(err)
			}
			if rc != 0 || !reflect.DeepEqual(clean(got), clean(want)) {
				t.Errorf("%s (%s): bintrans %q\nglob(3) rc %d %q", tc.pattern, locale, rel(dir, got), rc, rel(dir, want))
			}
		}
	}
}

func clean(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = path.Clean(p)
	}
	return out
}

func rel(dir string, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strings.TrimPrefix(p, dir+"/")
	}
	return out
}

// TestIncludeGlobRelative: a relative pattern is taken against pacman's
// working directory, whose own characters are not glob syntax.
func TestIncludeGlobRelative(t *testing.T) {
	base := filepath.Join(t.TempDir(), "w*[d]?")
	makeTree(t, base, []string{"a.conf", "b.conf", "sub/c.conf"})
	got, err := expandInclude(os.DirFS("/"), "pacman.conf", 3, base, "*.conf")
	if err != nil || !reflect.DeepEqual(got, []string{base + "/a.conf", base + "/b.conf"}) {
		t.Errorf("got %q, %v", got, err)
	}
	got, err = expandInclude(os.DirFS("/"), "pacman.conf", 3, base+"/", "sub/c.conf")
	if err != nil || !reflect.DeepEqual(got, []string{base + "/sub/c.conf"}) {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestIncludeGlobNonASCIINames: a non-ASCII name where a wildcard is
// matched is refused (what '?' matches depends on the locale), one that no
// wildcard could match ('.' first) or in a literal component is not.
func TestIncludeGlobNonASCIINames(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, []string{"a.conf", "caf\xc3\xa9.conf", ".\xe9.conf", "d\xe9j\xe0/r.conf", "plain/r.conf"})
	fsys := os.DirFS("/")
	for pattern, refused := range map[string]bool{"*.conf": true, "?.conf": true, "a.conf": false, "d\xe9j\xe0/*.conf": false, "plain/*.conf": false, "*/r.conf": true} {
		_, err := expandInclude(fsys, "pacman.conf", 1, "", dir+"/"+pattern)
		var ce *ConfError
		if got := errors.As(err, &ce) && strings.Contains(ce.Msg, "non-ASCII"); got != refused {
			t.Errorf("%q: err = %v, refused = %v, want %v", pattern, err, got, refused)
		}
	}
}

// TestIncludeGlobAgreesWithPacmanConf runs the corpus through Debian's
// real pacman-conf: `Include = PATTERN` in [options]; every tree file is a
// repository section of its own, so the repositories pacman-conf lists are
// the files pacman read, in its order. bintrans reads the same files in
// the same order, or refuses; a configuration pacman refuses, bintrans
// refuses too.
func TestIncludeGlobAgreesWithPacmanConf(t *testing.T) {
	pc := testenv.Tool(t, "pacman-conf")
	dir := t.TempDir()
	makeTree(t, filepath.Join(dir, "t"), globTree)
	for i, tc := range globPatterns {
		conf := filepath.Join(dir, "pacman"+strings.Repeat("x", i)+".conf")
		text := "[options]\nInclude = " + dir + "/t/" + tc.pattern + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(pc, "--config", conf, "--repo-list")
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, pacErr := cmd.Output()
		got, err := ParseFile(conf, Limits{})
		var ce *ConfError
		switch {
		case err != nil && !errors.As(err, &ce):
			t.Errorf("%s: error is not a *ConfError: %v", tc.pattern, err)
		case tc.refused != "":
			if err == nil {
				t.Errorf("%s: accepted, want a refusal", tc.pattern)
			}
		case pacErr != nil:
			if err == nil {
				t.Errorf("%s: pacman-conf fails (%v), bintrans accepts: %+v", tc.pattern, pacErr, got.Repos)
			}
		case err != nil:
			t.Errorf("%s: pacman-conf reads it, bintrans refuses: %v", tc.pattern, err)
		default:
			var names []string
			for _, r := range got.Repos {
				names = append(names, r.Name)
			}
			// pacman registers the first section of a name (a file
			// read twice through a symlink); --repo-list lists both.
			var want []string
			for _, n := range strings.Fields(string(out)) {
				if !slices.Contains(want, n) {
					want = append(want, n)
				}
			}
			if !slices.Equal(names, want) {
				t.Errorf("%s: bintrans reads %q, pacman-conf %q", tc.pattern, names, want)
			}
		}
	}
}

// FuzzIncludeGlob: for a random tree and pattern, bintrans either refuses
// the pattern or expands it to exactly what glob(3) returns. The input is
// the pattern, a NUL, then the tree's entries separated by NULs (a trailing
// '/' makes a directory, "name -> target" a symlink).
func FuzzIncludeGlob(f *testing.F) {
	for _, tc := range globPatterns {
		f.Add([]byte(tc.pattern + "\x00" + strings.Join(globTree, "\x00")))
	}
	f.Add([]byte("*\x00a\x00.b\x00c/d\x00c/.e\x00f -> c"))
	f.Add([]byte("?/?\x00a/b\x00\xc3\xa9/b\x00b\x00"))
	o := globoracle.Get(f, "C.UTF-8")
	root := f.TempDir()
	fsys := os.DirFS("/")
	f.Fuzz(func(t *testing.T, data []byte) {
		parts := strings.Split(string(data), "\x00")
		pattern := parts[0]
		if strings.HasPrefix(pattern, "/") || len(parts) > 64 {
			return
		}
		dir, err := os.MkdirTemp(root, "t")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		for _, e := range parts[1:] {
			name, target, link := strings.Cut(e, " -> ")
			if name == "" || len(name) > 200 || strings.Contains("/"+name+"/", "/../") || strings.Contains("/"+name+"/", "/./") || strings.Contains(name, "//") || strings.HasPrefix(name, "/") {
				continue
			}
			p := filepath.Join(dir, name)
			if os.MkdirAll(filepath.Dir(p), 0o755) != nil {
				continue
			}
			switch {
			case link:
				_ = os.Symlink(target, p)
			case strings.HasSuffix(name, "/"):
				_ = os.MkdirAll(p, 0o755)
			default:
				_ = os.WriteFile(p, nil, 0o644)
			}
		}
		got, err := expandInclude(fsys, "pacman.conf", 1, "", dir+"/"+pattern)
		if err != nil {
			var ce *ConfError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *ConfError: %T %v", err, err)
			}
			if errors.Is(err, syscall.ENAMETOOLONG) || errors.Is(err, syscall.ELOOP) {
				return
			}
			if !strings.Contains(ce.Msg, "Include pattern") {
				t.Fatalf("not a refusal of the pattern: %v", err)
			}
			return
		}
		rc, want, err := o.Glob(dir + "/" + pattern)
		if err != nil {
			t.Fatal(err)
		}
		if rc != 0 || !reflect.DeepEqual(clean(got), clean(want)) {
			t.Fatalf("pattern %q: bintrans %q\nglob(3) rc %d %q", pattern, rel(dir, got), rc, rel(dir, want))
		}
	})
}

// TestIncludeOrderRefusals: an Include matching several files whose order
// (strcoll in pacman's locale: "a.conf" < "B.conf" in en_US.UTF-8, the
// reverse in C) would change a value that decides which files libalpm
// installs is refused at the Include's line, naming two of the files.
func TestIncludeOrderRefusals(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		line  int
		want  []string
	}{
		{"DBPath", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/o/*.conf\n", "o/a.conf": "DBPath = /a/\n", "o/B.conf": "DBPath = /b/\n"},
			2, []string{"o/B.conf and ", "o/a.conf set DBPath to different values"}},
		{"RootDir in a nested Include", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/o/*.conf\n", "o/a.conf": "Include = @DIR@/r/a\n", "o/b.conf": "RootDir = /b/\n", "r/a": "RootDir = /a/\n"},
			2, []string{"set RootDir to different values"}},
		{"first Architecture", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/o/*\n", "o/a": "Architecture = i686\n", "o/b": "Architecture = x86_64 i686\n"},
			2, []string{"set Architecture to different values"}},
		{"CacheDir", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/o/*\n", "o/a": "CacheDir = /c1/\n", "o/b": "# c\nCacheDir = /c2/\n"},
			2, []string{"both add CacheDir values"}},
		{"directives before the first section", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/r/*.conf\n", "r/a.conf": "[evil]\nServer = http://evil/\n", "r/b.conf": "DBPath = /evil/\n[b]\n"},
			2, []string{"r/b.conf has directives before its first [section] while ", "r/a.conf opens a section"}},
		{"an Include before the first section", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/r/*.conf\n", "r/a.conf": "[x]\n", "r/b.conf": "Include = @DIR@/other\n", "other": "CacheDir = /c/\n"},
			2, []string{"r/b.conf has directives before its first [section]"}},
		{"a directive in the section the last file leaves open", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/r/*.conf\nDBPath = /x/\n", "r/a.conf": "[a]\n", "r/b.conf": "[options]\n"},
			3, []string{"directive 'DBPath' belongs to the section that the last file of the Include at ", "pacman.conf:2 leaves open"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			_, err := ParseFile(filepath.Join(dir, "pacman.conf"), Limits{})
			var ce *ConfError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if ce.File != filepath.Join(dir, "pacman.conf") || ce.Line != tc.line || ce.Hint() == "" || strings.HasPrefix(ce.Hint(), "check it with") {
				t.Errorf("refusal at %s:%d, hint %q; want pacman.conf:%d and a specific hint", ce.File, ce.Line, ce.Hint(), tc.line)
			}
			for _, w := range tc.want {
				if !strings.Contains(ce.Msg, w) {
					t.Errorf("%q lacks %q", ce.Msg, w)
				}
			}
		})
	}

	// Already set before the Include: the files' values are ignored, in
	// any order; a section after the Include ends the ambiguity.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"pacman.conf": "[options]\nDBPath = /db/\nArchitecture = x86_64\nInclude = @DIR@/o/*\nInclude = @DIR@/r/*\n[options]\nCacheDir = /c/\n",
		"o/a":         "DBPath = /a/\nArchitecture = i686\n", "o/b": "DBPath = /b/\n",
		"r/a": "[a]\n", "r/b": "[b]\n",
	})
	c, err := ParseFile(filepath.Join(dir, "pacman.conf"), Limits{})
	if err != nil || c.DBPath != "/db/" || c.Architectures[0] != "x86_64" || !slices.Equal(c.CacheDirs, []string{"/c/"}) {
		t.Errorf("got %+v, %v", c, err)
	}
}
