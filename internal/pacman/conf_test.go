package pacman

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "@DIR@", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// confCases are configurations real pacman accepts; each is checked against
// our expectations and, when pacman-conf is installed, against pacman-conf.
var confCases = []struct {
	name  string
	files map[string]string
	want  Config // Path and Warnings are not compared
}{
	{
		name:  "defaults",
		files: map[string]string{"pacman.conf": "[options]\n"},
		want:  Config{RootDir: "/", DBPath: "/var/lib/pacman/", CacheDirs: []string{"/var/cache/pacman/pkg/"}},
	},
	{
		name: "archlinux-like",
		files: map[string]string{
			"pacman.conf": `#
# comment
[options]
HoldPkg     = pacman glibc
Architecture = x86_64
CheckSpace
ParallelDownloads = 5
SigLevel    = Required DatabaseOptional
LocalFileSigLevel = Optional

[core]
Include = @DIR@/pacman.d/mirrorlist

[extra]
Server = https://first.example/$repo/os/$arch
Include = @DIR@/pacman.d/mirrorlist

# [multilib]
# Include = /etc/pacman.d/mirrorlist
`,
			"pacman.d/mirrorlist": "## Worldwide\nServer = https://geo.mirror.pkgbuild.com/$repo/os/$arch\n#Server = https://commented/$repo\nServer = http://m2.example/archlinux/$repo/os/$arch\n",
		},
		want: Config{
			RootDir: "/", DBPath: "/var/lib/pacman/", CacheDirs: []string{"/var/cache/pacman/pkg/"},
			Architectures: []string{"x86_64"},
			Repos: []Repo{
				{Name: "core", Servers: []string{"https://geo.mirror.pkgbuild.com/core/os/x86_64", "http://m2.example/archlinux/core/os/x86_64"}},
				{Name: "extra", Servers: []string{"https://first.example/extra/os/x86_64", "https://geo.mirror.pkgbuild.com/extra/os/x86_64", "http://m2.example/archlinux/extra/os/x86_64"}},
			},
		},
	},
	{
		name: "rootdir-cachedirs-glob-includes",
		files: map[string]string{
			"pacman.conf":         "[options]\r\nRootDir = /mnt/root/\nDBPath = /first/\nDBPath = /second/\nCacheDir = /c1/ /c2/\nCacheDir = /c3\nArchitecture = x86_64 i686\nFooBar = baz\nInclude = @DIR@/conf.d/*.conf\n[custom]\nServer = file:///srv/$repo/$arch # not a comment\nWeird = 1\n",
			"conf.d/10-a.conf":    "[a]\nServer = http://a/$repo\n",
			"conf.d/20-b.conf":    "[b]\nServer = http://b/$repo\n",
			"conf.d/.hidden.conf": "[hidden]\nServer = http://hidden\n",
			"conf.d/30-c.txt":     "[c]\n",
		},
		want: Config{
			RootDir: "/mnt/root/", DBPath: "/first/", CacheDirs: []string{"/c1/", "/c2/", "/c3"},
			Architectures: []string{"x86_64", "i686"},
			Repos: []Repo{
				{Name: "a", Servers: []string{"http://a/a"}},
				{Name: "b", Servers: []string{"http://b/b"}},
				{Name: "custom", Servers: []string{"file:///srv/custom/x86_64 # not a comment"}},
			},
		},
	},
	{
		name: "rootdir-only-and-section-continues-after-include",
		files: map[string]string{
			"pacman.conf": "[options]\nRootDir = /r\n[a]\nInclude = @DIR@/inc\nServer = http://after\n",
			"inc":         "[b]\nServer = http://inb\n",
		},
		want: Config{
			RootDir: "/r", DBPath: "/r/var/lib/pacman/", CacheDirs: []string{"/var/cache/pacman/pkg/"},
			Repos: []Repo{{Name: "a"}, {Name: "b", Servers: []string{"http://inb", "http://after"}}},
		},
	},
	{
		// Arch Linux's stock pacman.conf and a full mirrorlist: whatever
		// bintrans refuses, it must never refuse this.
		name: "archlinux-stock",
		files: map[string]string{
			"pacman.conf":         archStockConf,
			"pacman.d/mirrorlist": archMirrorlist(),
		},
		want: Config{
			RootDir: "/", DBPath: "/var/lib/pacman/", CacheDirs: []string{"/var/cache/pacman/pkg/"},
			Architectures: []string{autoArch()},
			Repos: []Repo{
				{Name: "core", Servers: []string{"https://geo.mirror.pkgbuild.com/core/os/" + autoArch(), "https://mirror.example.org/archlinux/core/os/" + autoArch()}},
				{Name: "extra", Servers: []string{"https://geo.mirror.pkgbuild.com/extra/os/" + autoArch(), "https://mirror.example.org/archlinux/extra/os/" + autoArch()}},
			},
		},
	},
	{
		// Includes matching several files whose order cannot change a
		// value: repository files, a split mirror list, two files setting
		// the same DBPath, one CacheDir, files with comments only, an
		// Include before any section, a directory (an empty file to
		// pacman).
		name: "include-groups-whose-order-does-not-matter",
		files: map[string]string{
			"pacman.conf":             "Include = @DIR@/top.d/*.conf\n[options]\nInclude = @DIR@/options.d/*\n[core]\nInclude = @DIR@/mirrors.d/*.list\nInclude = @DIR@/repos.d/*.conf\n[after]\nServer = http://after/$repo\n",
			"top.d/a.conf":            "# nothing yet\n",
			"top.d/b.conf":            "\n",
			"options.d/10-db.conf":    "DBPath = /db/\nArchitecture = x86_64 i686\n",
			"options.d/20-cache.conf": "CacheDir = /cache/\nDBPath = /db/\n",
			"options.d/30-misc":       "Color\nArchitecture = x86_64\n",
			"options.d/dir/":          "",
			"mirrors.d/1.list":        "Server = http://m1/$repo\n",
			"mirrors.d/2.list":        "## comment\nServer = http://m2/$repo\n",
			"repos.d/10-a.conf":       "[a]\nServer = http://a/$repo\n",
			"repos.d/20-b.conf":       "# b\n[b]\nServer = http://b/$repo\n[c]\n",
		},
		want: Config{
			RootDir: "/", DBPath: "/db/", CacheDirs: []string{"/cache/"}, Architectures: []string{"x86_64", "i686", "x86_64"},
			Repos: []Repo{
				{Name: "core", Servers: []string{"http://m1/core", "http://m2/core"}},
				{Name: "a", Servers: []string{"http://a/a"}},
				{Name: "b", Servers: []string{"http://b/b"}},
				{Name: "c"},
				{Name: "after", Servers: []string{"http://after/after"}},
			},
		},
	},
}

func TestParseFile(t *testing.T) {
	for _, tc := range confCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			got, err := ParseFile(filepath.Join(dir, "pacman.conf"), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got.Path, got.Warnings = "", nil
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// TestParseFileAgreesWithPacmanConf is the differential test: Debian's
// pacman-conf (the same parser as pacman) must see what we see.
func TestParseFileAgreesWithPacmanConf(t *testing.T) {
	pc := testenv.Tool(t, "pacman-conf")
	for _, tc := range confCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			conf := filepath.Join(dir, "pacman.conf")
			out, err := exec.Command(pc, "--config", conf).Output()
			if err != nil {
				t.Fatalf("pacman-conf: %v", err)
			}
			ref := parsePacmanConfOutput(string(out))
			got, err := ParseFile(conf, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got.Path, got.Warnings = "", nil
			if len(got.Architectures) == 0 {
				got.Architectures = nil
			}
			if !reflect.DeepEqual(*got, ref) {
				t.Errorf("bintrans   %+v\npacman-conf %+v", *got, ref)
			}
		})
	}
}

// parsePacmanConfOutput reads what `pacman-conf` prints: one normalised
// "Key = Value" per value.
func parsePacmanConfOutput(s string) Config {
	var c Config
	var repo *Repo
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "[") {
			name := strings.TrimSuffix(strings.TrimPrefix(line, "["), "]")
			if name == "options" {
				continue
			}
			c.Repos = append(c.Repos, Repo{Name: name})
			repo = &c.Repos[len(c.Repos)-1]
			continue
		}
		k, v, _ := strings.Cut(line, " = ")
		switch {
		case repo != nil && k == "Server":
			repo.Servers = append(repo.Servers, v)
		case repo == nil && k == "RootDir":
			c.RootDir = v
		case repo == nil && k == "DBPath":
			c.DBPath = v
		case repo == nil && k == "CacheDir":
			c.CacheDirs = append(c.CacheDirs, v)
		case repo == nil && k == "Architecture":
			c.Architectures = append(c.Architectures, v)
		}
	}
	return c
}

func TestParseWarnings(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"pacman.conf": "[options]\nFooBar = 1\nColor\n[]\n[local]\n[a/b]\n[x]\nServer = http://1\nBogus\n[x]\nServer = http://2\n"})
	c, err := ParseFile(filepath.Join(dir, "pacman.conf"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Repo{{Name: "x", Servers: []string{"http://1"}}}; !reflect.DeepEqual(c.Repos, want) {
		t.Errorf("repos %+v, want %+v", c.Repos, want)
	}
	w := strings.Join(c.Warnings, "\n")
	for _, s := range []string{":2: directive 'FooBar'", ":4: pacman cannot register a repository with an empty name", ":5: 'local'", ":6: pacman cannot register repository \"a/b\"", ":9: directive 'Bogus' in section 'x'", ":10: repository \"x\" defined twice"} {
		if !strings.Contains(w, s) {
			t.Errorf("warnings lack %q:\n%s", s, w)
		}
	}
	if strings.Contains(w, "Color") {
		t.Errorf("Color is a pacman option, not worth a warning:\n%s", w)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		lim     Limits
		wantMsg string
		line    int
	}{
		{"directive outside section", map[string]string{"pacman.conf": "# c\nCacheDir = /x\n"}, Limits{}, "All directives must belong to a section", 2},
		{"include without value", map[string]string{"pacman.conf": "[options]\nInclude\n"}, Limits{}, "needs a value", 2},
		{"server without value", map[string]string{"pacman.conf": "[a]\nServer\n"}, Limits{}, "needs a value", 2},
		{"include missing file", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/nope\n"}, Limits{}, "could not be read", 0},
		{"include glob matches nothing", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/none*.conf\n"}, Limits{}, "could not be read", 0},
		{"include cycle", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/b\n", "b": "Include = @DIR@/pacman.conf\n"}, Limits{}, "nested deeper than 10", 2},
		{"too many files", map[string]string{"pacman.conf": "[options]\nInclude = @DIR@/i*\n", "i1": "", "i2": "", "i3": ""}, Limits{MaxFiles: 3}, "more than 3 files", 0},
		{"file too large", map[string]string{"pacman.conf": "[options]\n" + strings.Repeat("# filler\n", 20)}, Limits{MaxFileSize: 64}, "larger than 64 bytes", 0},
		{"line too long", map[string]string{"pacman.conf": "[options]\nCacheDir = /" + strings.Repeat("x", 100) + "\n"}, Limits{MaxLineLen: 50}, "line of 113 bytes, its end of line included: pacman reads at most 50 bytes", 2},
		{"empty RootDir", map[string]string{"pacman.conf": "[options]\nRootDir =\n"}, Limits{}, "'RootDir' needs a value", 2},
		{"empty DBPath", map[string]string{"pacman.conf": "[options]\nDBPath\n"}, Limits{}, "'DBPath' needs a value", 2},
		{"too many cache dirs", map[string]string{"pacman.conf": "[options]\nCacheDir = /a /b /c\n"}, Limits{MaxValues: 2}, "more than 2 values", 2},
		{"NUL byte", map[string]string{"pacman.conf": "[options]\nCacheDir = /x\x00y\n"}, Limits{}, "NUL", 0},
		{"too many repos", map[string]string{"pacman.conf": "[a]\n[b]\n[c]\n"}, Limits{MaxRepos: 2}, "more than 2 repositories", 3},
		{"RootDir too long for the default DBPath", map[string]string{"pacman.conf": "[options]\nRootDir = /" + strings.Repeat("r", 4079) + "\n"}, Limits{}, "RootDir of 4080 bytes: pacman truncates the DBPath under it", 0},
		{"too many servers", map[string]string{"pacman.conf": "[a]\nServer = 1\nServer = 2\nServer = 3\n"}, Limits{MaxValues: 2}, "more than 2 values", 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			_, err := ParseFile(filepath.Join(dir, "pacman.conf"), tc.lim)
			var ce *ConfError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *ConfError", err)
			}
			if !strings.Contains(ce.Msg, tc.wantMsg) || ce.Line != tc.line {
				t.Errorf("err = %q (line %d), want %q at line %d", err, ce.Line, tc.wantMsg, tc.line)
			}
			if ce.Hint() == "" {
				t.Error("no hint")
			}
		})
	}
}

func TestInRoot(t *testing.T) {
	c := &Config{
		RootDir:   "/tmp/sb/root/",
		DBPath:    "/tmp/sb/root/var/lib/pacman/",
		CacheDirs: []string{"/elsewhere/pkg", "/tmp/sb/root/var/cache/pacman/pkg/", "/tmp/sb/rootless/pkg"},
		Repos:     []Repo{{Name: "a"}},
	}
	in, err := c.InRoot()
	if err != nil {
		t.Fatal(err)
	}
	if in.RootDir != "/" || in.DBPath != "/var/lib/pacman" || !reflect.DeepEqual(in.CacheDirs, []string{"/var/cache/pacman/pkg"}) {
		t.Errorf("InRoot = %+v", in)
	}
	if len(in.Warnings) != 2 {
		t.Errorf("want 2 warnings for the cache dirs outside the root, got %q", in.Warnings)
	}
	if in.SyncDBPath("a") != "/var/lib/pacman/sync/a.db" {
		t.Errorf("SyncDBPath = %s", in.SyncDBPath("a"))
	}
	if c.CacheDirs[0] != "/elsewhere/pkg" {
		t.Error("InRoot modified its receiver")
	}

	c.DBPath = "/var/lib/pacman"
	if _, err := c.InRoot(); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("DBPath outside root: err = %v, want ErrOutsideRoot", err)
	}

	sys := &Config{RootDir: "/", DBPath: "/var/lib/pacman/", CacheDirs: []string{"/var/cache/pacman/pkg/"}}
	in, err = sys.InRoot()
	if err != nil || in.DBPath != "/var/lib/pacman" || in.CacheDirs[0] != "/var/cache/pacman/pkg" {
		t.Errorf("RootDir /: %+v, %v", in, err)
	}
}

func FuzzParseConf(f *testing.F) {
	for _, tc := range confCases {
		f.Add([]byte(tc.files["pacman.conf"]))
	}
	f.Add([]byte("[options]\nInclude = /etc/pacman.conf\n"))
	f.Add([]byte("[options]\nInclude = /etc/pacman.d/*\n[core]\nInclude = /etc/pacman.d/mirrorlist\n"))
	f.Add([]byte("[]\n[local]\n[a/b]\n[a]\n[a]\nServer\n"))
	f.Add([]byte("[options]\nRootDir=/r\nDBPath\nCacheDir = \t/a /b  /c\nArchitecture = auto\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"etc/pacman.conf":         {Data: data},
			"etc/pacman.d/mirrorlist": {Data: []byte("Server = http://m/$repo/os/$arch\n")},
			"etc/pacman.d/again.conf": {Data: data},
		}
		lim := Limits{MaxFiles: 20, MaxRepos: 50, MaxValues: 200}
		c, err := ParseFS(fsys, "/etc/pacman.conf", lim)
		if err != nil {
			var ce *ConfError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *ConfError: %T %v", err, err)
			}
			return
		}
		if c.DBPath == "" || c.RootDir == "" || len(c.CacheDirs) == 0 {
			t.Fatalf("defaults missing: %+v", c)
		}
		if len(c.Repos) > lim.MaxRepos {
			t.Fatalf("%d repos", len(c.Repos))
		}
		seen := map[string]bool{}
		n := len(c.CacheDirs) + len(c.Architectures)
		for _, r := range c.Repos {
			if r.Name == "" || r.Name == "local" || strings.Contains(r.Name, "/") || seen[r.Name] {
				t.Fatalf("repository name %q kept", r.Name)
			}
			seen[r.Name] = true
			n += len(r.Servers)
		}
		if n > lim.MaxValues+2 {
			t.Fatalf("%d values kept", n)
		}
	})
}

// TestLineLengthAgreesWithPacmanConf: pacman reads pacman.conf with
// fgets(line, PATH_MAX): at most 4095 bytes per line, the end of line
// included. bintrans reads every line of at most 4095 bytes exactly as
// pacman-conf does, and refuses every longer one: pacman splits it (and
// sees a shorter value when the cut falls before the end of line; when
// only "\n" or "\r\n" is cut off, the rest is a blank line to pacman, and
// bintrans still refuses: it does not judge which splits are harmless).
func TestLineLengthAgreesWithPacmanConf(t *testing.T) {
	pc := testenv.Tool(t, "pacman-conf")
	dir := t.TempDir()
	for n := 4090; n <= 4100; n++ {
		for _, end := range []string{"\n", "\r\n", ""} {
			value := "/" + strings.Repeat("x", n-len("CacheDir = /")-len(end))
			line := "CacheDir = " + value + end
			if len(line) != n {
				t.Fatal(len(line))
			}
			text := "[options]\n" + line
			if end != "" {
				text += "DBPath = /db/\n"
			}
			conf := filepath.Join(dir, "pacman.conf")
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(pc, "--config", conf, "CacheDir").Output()
			if err != nil {
				t.Fatalf("pacman-conf: %v", err)
			}
			whole := strings.TrimSpace(string(out)) == value
			if cut := n-len(end) > PacmanMaxLine; cut == whole {
				t.Fatalf("%d bytes (end %q): pacman-conf reads CacheDir %q: the premise of the test is wrong", n, end, out)
			}
			got, err := ParseFile(conf, Limits{})
			switch {
			case err != nil && n <= PacmanMaxLine:
				t.Errorf("%d bytes (end %q): pacman reads the line in one piece, bintrans refuses: %v", n, end, err)
			case err == nil && n > PacmanMaxLine:
				t.Errorf("%d bytes (end %q): pacman reads the line in two pieces, bintrans accepts it", n, end)
			case err == nil && !whole:
				t.Errorf("%d bytes (end %q): pacman splits the line (CacheDir %d bytes), bintrans reads it whole", n, end, len(strings.TrimSpace(string(out))))
			case err == nil && (len(got.CacheDirs) != 1 || got.CacheDirs[0] != value):
				t.Errorf("%d bytes (end %q): CacheDirs %d values", n, end, len(got.CacheDirs))
			case err != nil:
				var ce *ConfError
				if !errors.As(err, &ce) || ce.Line != 2 || !strings.Contains(ce.Msg, "pacman reads at most 4095 bytes per line") {
					t.Errorf("%d bytes (end %q): %v, want a refusal of line 2", n, end, err)
				}
			}
		}
	}
}

// TestIncludeDepthAndPlacementAgreeWithPacmanConf: pacman reads an
// Include before any section, and files nested 10 Includes deep, but no
// Include inside those.
func TestIncludeDepthAndPlacementAgreeWithPacmanConf(t *testing.T) {
	pc := testenv.Tool(t, "pacman-conf")
	for _, depth := range []int{10, 11} {
		dir := t.TempDir()
		files := map[string]string{"pacman.conf": "Include = @DIR@/i1\n"}
		for i := 1; i < depth; i++ {
			files[fmt.Sprintf("i%d", i)] = fmt.Sprintf("Include = @DIR@/i%d\n", i+1)
		}
		files[fmt.Sprintf("i%d", depth)] = "[deep]\nServer = http://deep/\n"
		writeFiles(t, dir, files)
		conf := filepath.Join(dir, "pacman.conf")
		out, pacErr := exec.Command(pc, "--config", conf, "--repo-list").Output()
		c, err := ParseFile(conf, Limits{})
		switch {
		case (pacErr == nil) != (err == nil):
			t.Errorf("depth %d: pacman-conf %v (%q), bintrans %v", depth, pacErr, out, err)
		case err == nil && (len(c.Repos) != 1 || strings.TrimSpace(string(out)) != "deep"):
			t.Errorf("depth %d: bintrans %+v, pacman-conf %q", depth, c.Repos, out)
		}
	}
}

// FuzzParseConfAgainstPacmanConf: whatever pacman.conf bintrans accepts,
// Debian's pacman-conf (pacman's own parser) either refuses too or reads
// the same RootDir, DBPath, cache directories (in order) and repositories
// (in order). Relative Includes find inc/a.conf ([a]), inc/b.conf
// (CacheDir), inc/c.conf (DBPath) and mirrorlist (Server lines).
func FuzzParseConfAgainstPacmanConf(f *testing.F) {
	pc := testenv.Tool(f, "pacman-conf")
	for _, tc := range confCases {
		f.Add([]byte(tc.files["pacman.conf"]))
	}
	f.Add([]byte("Include = inc/*.conf\n[options]\nDBPath = /x/\n"))
	f.Add([]byte("[options]\nInclude = inc/?.conf\n[core]\nInclude = mirrorlist\n"))
	f.Add([]byte("[options]\n" + strings.Repeat(" ", 4093) + "[x]\nDBPath = /hidden/\n[options]\n"))
	f.Add([]byte("[options]\r\nRootDir = /r\r\n[a]\r\nServer = s\r\n[ b ]\n[c]]\n[]\n"))
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		dir, err := os.MkdirTemp(root, "c")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		writeFiles(t, dir, map[string]string{
			"pacman.conf": string(data),
			"inc/a.conf":  "[a]\nServer = http://a/$repo\n",
			"inc/b.conf":  "CacheDir = /b/\n",
			"inc/c.conf":  "DBPath = /c/\n",
			"mirrorlist":  "## m\nServer = http://m/$repo\n",
		})
		conf := filepath.Join(dir, "pacman.conf")
		got, _, err := parseFS(os.DirFS("/"), conf, dir, Limits{})
		if err != nil {
			var ce *ConfError
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *ConfError: %T %v", err, err)
			}
			return
		}
		cmd := exec.Command(pc, "--config", conf)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err := cmd.Output()
		if err != nil {
			return // pacman refuses what bintrans accepts: pacman does not run
		}
		ref := parsePacmanConfOutput(string(out))
		var names, refNames []string
		for _, r := range got.Repos {
			names = append(names, r.Name)
		}
		for _, r := range ref.Repos {
			if !slices.Contains(refNames, r.Name) {
				refNames = append(refNames, r.Name) // pacman registers the first of a name
			}
		}
		// pacman-conf lists the sections pacman cannot register too.
		refNames = slices.DeleteFunc(refNames, func(n string) bool { return n == "" || n == "local" || strings.Contains(n, "/") })
		if got.RootDir != ref.RootDir || got.DBPath != ref.DBPath || !slices.Equal(got.CacheDirs, ref.CacheDirs) || !slices.Equal(names, refNames) {
			t.Fatalf("bintrans: root %q db %q cache %q repos %q\npacman-conf: root %q db %q cache %q repos %q", got.RootDir, got.DBPath, got.CacheDirs, names, ref.RootDir, ref.DBPath, ref.CacheDirs, refNames)
		}
	})
}
