package cmdline

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func argv(s string) []string { return append([]string{"pacman"}, strings.Fields(s)...) }

// TestParseMeasured replays the command lines of the notes' experiments
// (out/cmdline.txt, out/sysroot.txt, out/hookenv.txt: pacman 6.0.2 -Qv
// printing Root, DB Path, Cache Dirs and Targets) and checks the model
// reads them as pacman did.
func TestParseMeasured(t *testing.T) {
	cases := []struct {
		args  string
		posix bool
		want  Invocation
	}{
		{args: "-Qv", want: Invocation{Op: OpQuery}},
		{args: "-Qv --cachedir /X/ --cachedir /Y/", want: Invocation{Op: OpQuery, CacheDirs: []string{"/X/", "/Y/"}}},
		{args: "-Qv --cach=/X/", want: Invocation{Op: OpQuery, CacheDirs: []string{"/X/"}}},
		{args: "-Qv --cache /X/", want: Invocation{Op: OpQuery, CacheDirs: []string{"/X/"}}},
		{args: "-Qv --ro R/", want: Invocation{Op: OpQuery, Root: "R/"}},
		{args: "-Qv -rR/", want: Invocation{Op: OpQuery, Root: "R/"}},
		{args: "-Qvr R/", want: Invocation{Op: OpQuery, Root: "R/"}},
		{args: "-Qv --dbp B/", want: Invocation{Op: OpQuery, DBPath: "B/"}},
		{args: "-Qv -bB/ --logf /L --gpg /G --hookd /H/", want: Invocation{Op: OpQuery, DBPath: "B/"}},
		{args: "-Qv -- --root R/ tgt", want: Invocation{Op: OpQuery, Targets: []string{"--root", "R/", "tgt"}}},
		{args: "-Qv tgt --root R/", want: Invocation{Op: OpQuery, Root: "R/", Targets: []string{"tgt"}}},
		{args: "-Qv tgt --root R/", posix: true, want: Invocation{Op: OpQuery, Targets: []string{"tgt", "--root", "R/"}, PosixlyCorrect: true}},
		{args: "-Qv --root=R/ --root R2/", want: Invocation{Op: OpQuery, Root: "R2/"}},
		{args: "-Qv --debug=1 x", want: Invocation{Op: OpQuery, Targets: []string{"x"}}},
		{args: "-Qv --debug 1 x", want: Invocation{Op: OpQuery, Targets: []string{"1", "x"}}},
		{args: "-Qvq --arch x86_64 --ar x86_64", want: Invocation{Op: OpQuery}},
		// out/hookenv.txt: the sandboxed pacman of the hook experiments.
		{args: "--config /s/pacman.conf --root /s/root --dbpath /s/root/var/lib/pacman/ --cachedir /s/cache/ --hookdir /s/hooks/ --gpgdir /s/gpg/ --logfile /s/pacman.log --noconfirm --noprogressbar -U ./foo-2.0-1-any.pkg.tar.zst",
			want: Invocation{Op: OpUpgrade, Config: "/s/pacman.conf", Root: "/s/root", DBPath: "/s/root/var/lib/pacman/", CacheDirs: []string{"/s/cache/"}, Targets: []string{"./foo-2.0-1-any.pkg.tar.zst"}}},
		// out/sysroot.txt: targets from stdin.
		{args: "--sysroot /s -U -", want: Invocation{Op: OpUpgrade, Sysroot: "/s", Targets: []string{"-"}}},
		{args: "-Syu", want: Invocation{Op: OpSync}},
		{args: "-S extra/foo core/bar>=2 --needed", want: Invocation{Op: OpSync, Targets: []string{"extra/foo", "core/bar>=2"}}},
		{args: "--sync --refresh --sysupgrade", want: Invocation{Op: OpSync}},
		{args: "-Udd --overwrite * a.pkg", want: Invocation{Op: OpUpgrade, Targets: []string{"a.pkg"}}},
		{args: "-U --asdeps --ask=4 a.pkg", want: Invocation{Op: OpUpgrade, Targets: []string{"a.pkg"}}},
		{args: "-Sh", want: Invocation{Op: OpSync, Help: true}},
		{args: "--version", want: Invocation{Op: OpNone, Version: true}},
		{args: "", want: Invocation{Op: OpNone}},
		{args: "--file -Qo /x", want: Invocation{Op: OpQuery, Targets: []string{"/x"}}}, // exact --file beats --files
		{args: "-S --root -- foo", want: Invocation{Op: OpSync, Root: "--", Targets: []string{"foo"}}},
		{args: "-S foo -- -U", want: Invocation{Op: OpSync, Targets: []string{"foo", "-U"}}},
		{args: "-S --config=/a --config /b", want: Invocation{Op: OpSync, Config: "/b"}},
		{args: "-S --root= -rR/", want: Invocation{Op: OpSync, Root: "R/"}}, // only the last value counts
		{args: "-S --sysr=/mnt foo", want: Invocation{Op: OpSync, Sysroot: "/mnt", Targets: []string{"foo"}}},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			got, err := Parse(argv(tc.args), tc.posix)
			if err != nil {
				t.Fatal(err)
			}
			if got.Targets == nil {
				got.Targets = []string{}
			}
			if tc.want.Targets == nil {
				tc.want.Targets = []string{}
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// TestParseRefused: command lines pacman 6.0.2 refuses (it prints an error
// and exits, so no hook ever runs under them).
func TestParseRefused(t *testing.T) {
	cases := map[string]string{
		"-Qv --db B/":             "ambiguous option; possibilities: --dbpath --dbonly",
		"-Qv --sys /S":            "ambiguous option; possibilities: --sysroot --sysupgrade",
		"-Qv --conf /c":           "ambiguous option; possibilities: --confirm --config",
		"-Qv --confi /c":          "ambiguous option; possibilities: --confirm --config",
		"-U --up":                 "ambiguous option; possibilities: --upgrade --upgrades",
		"-Q -S":                   "only one operation may be used at a time",
		"-SS foo":                 "only one operation may be used at a time",
		"-S --sync foo":           "only one operation may be used at a time",
		"-S --frobnicate":         "unrecognized option",
		"-S -Z":                   "invalid option -- 'Z'",
		"-S --root":               "option '--root' requires an argument",
		"-S -r":                   "option requires an argument -- 'r'",
		"-Sb":                     "option requires an argument -- 'b'",
		"-S --needed=yes":         "option '--needed' doesn't allow an argument",
		"-S --=x":                 "ambiguous option",
		"-S --root=":              "empty --root",
		"-S --cachedir=":          "empty --cachedir",
		"-U --config= a.pkg":      "empty --config",
		"-U --sysroot= a.pkg":     "empty --sysroot",
		"-U -b B a.pkg --dbpath=": "empty --dbpath",
	}
	for args, msg := range cases {
		t.Run(args, func(t *testing.T) {
			_, err := Parse(argv(args), false)
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(ce.Msg, msg) {
				t.Errorf("got %v, want an *Error with %q", err, msg)
			}
		})
	}
	if _, err := Parse(nil, false); err == nil {
		t.Error("empty argv accepted")
	}
	if _, err := Parse(append([]string{"pacman", "-S"}, make([]string, MaxArgs)...), false); err == nil {
		t.Error("more than MaxArgs accepted")
	}
	if _, err := Parse([]string{"pacman", "-S", strings.Repeat("x", MaxBytes)}, false); err == nil {
		t.Error("more than MaxBytes accepted")
	}
}

func TestEveryLongOptionAbbreviates(t *testing.T) {
	// Each long option is found by its name and by its shortest unique
	// prefix; no two entries share a name.
	seen := map[string]bool{}
	for _, o := range longOpts {
		if seen[o.name] {
			t.Fatalf("duplicate %s", o.name)
		}
		seen[o.name] = true
		if got, err := lookupLong(o.name); err != nil || got.name != o.name {
			t.Errorf("--%s: %v %v", o.name, got.name, err)
		}
		for n := 1; n < len(o.name); n++ {
			got, err := lookupLong(o.name[:n])
			if err == nil {
				if got.name != o.name && got.name != o.name[:n] { // an exact name wins (--file, not --files)
					t.Errorf("--%s resolves to --%s", o.name[:n], got.name)
				}
				break
			}
		}
	}
	if len(longOpts) != 64 {
		t.Errorf("%d long options; pacman 6.0.2 has 64", len(longOpts))
	}
}

func TestTargets(t *testing.T) {
	inv, err := Parse(argv("-U ./a.pkg.tar.zst /abs/b.pkg file:///c/d.pkg https://e/f.pkg?x=1 - rel/g"), false)
	if err != nil {
		t.Fatal(err)
	}
	files, urls := inv.Upgrade()
	if want := []string{"./a.pkg.tar.zst", "/abs/b.pkg", "rel/g"}; !reflect.DeepEqual(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	if want := []string{"file:///c/d.pkg", "https://e/f.pkg?x=1"}; !reflect.DeepEqual(urls, want) {
		t.Errorf("urls %q, want %q", urls, want)
	}
	if !inv.StdinTargets() {
		t.Error("'-' not seen")
	}
	if inv.RepoTargets() != nil {
		t.Error("repo targets of -U")
	}

	inv, err = Parse(argv("-S extra/foo core/bar>=2 /abs foo x/y/z 'l/n: desc' g/"), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []RepoTarget{{"extra/foo", "extra", "foo"}, {"core/bar>=2", "core", "bar"}, {"x/y/z", "x", "y/z"}, {"'l/n:", "'l", "n:"}, {"g/", "g", ""}}
	if got := inv.RepoTargets(); !reflect.DeepEqual(got, want) {
		t.Errorf("repo targets\n got %q\nwant %q", got, want)
	}
	if f, u := inv.Upgrade(); f != nil || u != nil {
		t.Error("upgrade targets of -S")
	}
	if inv.StdinTargets() {
		t.Error("no '-' given")
	}
	for dep, name := range map[string]string{"foo": "foo", "foo>=2": "foo", "foo<2": "foo", "foo=1:2-3": "foo", "foo: why": "foo", "foo>1: x": "foo", "": ""} {
		if got := DepName(dep); got != name {
			t.Errorf("DepName(%q) = %q, want %q", dep, got, name)
		}
	}
}

func TestEnvPosixlyCorrect(t *testing.T) {
	if EnvPosixlyCorrect([]string{"PATH=/bin", "POSIXLY_CORRECTX=1"}) {
		t.Error("a longer name matched")
	}
	if !EnvPosixlyCorrect([]string{"PATH=/bin", "POSIXLY_CORRECT="}) {
		t.Error("empty value must count (getenv != NULL)")
	}
	if !EnvPosixlyCorrect([]string{"POSIXLY_CORRECT"}) {
		t.Error("bare name")
	}
}

// FuzzParse: Parse never panics, and what it accepts is stable: every
// target came from argv, every path option's value is non-empty, and
// re-parsing the canonical form (options first, "--", targets) gives the
// same invocation.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"-Syu", "-U\x00./a.pkg", "-Qv\x00--cach=/X/\x00--cachedir\x00/Y/", "-S\x00--\x00-U",
		"--sysroot\x00/s\x00-U\x00-", "-rR/\x00-Qv", "--db\x00B/", "-S\x00extra/foo>=2",
		"-U\x00file:///a/b.pkg\x00https://x/y?z", "--debug=2\x00-S\x00--debug\x001",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, posix bool) {
		args := append([]string{"pacman"}, strings.Split(s, "\x00")...)
		inv, err := Parse(args, posix)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		in := map[string]bool{}
		for _, a := range args[1:] {
			in[a] = true
		}
		for _, tg := range inv.Targets {
			if !in[tg] {
				t.Fatalf("target %q not in argv", tg)
			}
		}
		for _, v := range append([]string{}, inv.CacheDirs...) {
			if v == "" {
				t.Fatal("empty cache dir accepted")
			}
		}
		canon := []string{"pacman"}
		if op := map[Op]string{OpDatabase: "-D", OpFiles: "-F", OpQuery: "-Q", OpRemove: "-R", OpSync: "-S", OpDeptest: "-T", OpUpgrade: "-U"}[inv.Op]; op != "" {
			canon = append(canon, op)
		}
		for _, kv := range [][2]string{{"--config", inv.Config}, {"--root", inv.Root}, {"--dbpath", inv.DBPath}, {"--sysroot", inv.Sysroot}} {
			if kv[1] != "" {
				canon = append(canon, kv[0]+"="+kv[1])
			}
		}
		for _, c := range inv.CacheDirs {
			canon = append(canon, "--cachedir="+c)
		}
		if inv.Help {
			canon = append(canon, "-h")
		}
		if inv.Version {
			canon = append(canon, "-V")
		}
		canon = append(append(canon, "--"), inv.Targets...)
		again, err := Parse(canon, posix)
		if err != nil {
			t.Fatalf("canonical form %q refused: %v", canon, err)
		}
		again.PosixlyCorrect = inv.PosixlyCorrect
		if !reflect.DeepEqual(again, inv) {
			t.Fatalf("canonical form %q\n gives %+v\n   was %+v", canon, again, inv)
		}
	})
}
