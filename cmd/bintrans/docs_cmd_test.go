package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// testModel is the command-line model exactly as run builds it.
func testModel(t *testing.T) *kong.Application {
	t.Helper()
	var cli CLI
	k, err := kong.New(&cli, kong.Name("bintrans"), kong.Description(description),
		kong.Exit(func(int) {}), kong.Vars{"version": version, "default_log_url": DefaultLogURL})
	if err != nil {
		t.Fatal(err)
	}
	return k.Model
}

// TestManPagesMentionEveryFlag: every visible command has a page that names
// each of its flags (inherited ones included) and arguments, and bintrans(1)
// lists every command.
func TestManPagesMentionEveryFlag(t *testing.T) {
	app := testModel(t)
	files := GenerateDocs(app)
	cmds := visibleCommands(app.Node)
	if len(cmds) < 10 {
		t.Fatalf("only %d commands in the model", len(cmds))
	}
	main := string(files["man/bintrans.1"])
	for _, f := range visibleFlags(app.Node) {
		if !strings.Contains(main, `\-\-`+roff(f.Name)) {
			t.Errorf("bintrans.1 does not mention --%s", f.Name)
		}
	}
	for _, c := range cmds {
		if c.Name == "docs" {
			t.Errorf("hidden command docs documented")
		}
		if !strings.Contains(main, `\fBbintrans `+roff(commandPath(c))+`\fR`) {
			t.Errorf("bintrans.1 does not list %q", commandPath(c))
		}
		page, ok := files["man/"+manName(c)+".1"]
		if !ok {
			t.Errorf("no man page for %q", commandPath(c))
			continue
		}
		for _, f := range visibleFlags(c) {
			if !bytes.Contains(page, []byte(`\fB`+roff(f.String())+`\fR`)) {
				t.Errorf("%s.1 does not document --%s", manName(c), f.Name)
			}
		}
		for _, p := range c.Positional {
			if !bytes.Contains(page, []byte(roff(p.Summary()))) {
				t.Errorf("%s.1 does not document argument %s", manName(c), p.Name)
			}
		}
	}
	if again := GenerateDocs(app); len(again) != len(files) {
		t.Fatal("not deterministic")
	} else {
		for name, b := range files {
			if !bytes.Equal(again[name], b) {
				t.Errorf("%s differs between two runs", name)
			}
		}
	}
}

// TestManPagesRender: groff reads every page without a warning.
func TestManPagesRender(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("groff missing")
		}
		t.Skip("groff missing")
	}
	dir := t.TempDir()
	var pages []string
	for name, b := range GenerateDocs(testModel(t)) {
		if !strings.HasPrefix(name, "man/") {
			continue
		}
		p := filepath.Join(dir, filepath.Base(name))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	out, err := exec.Command(groff, append([]string{"-man", "-Tutf8", "-ww", "-z"}, pages...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("groff: %v\n%s", err, out)
	}
}

// TestCompletions: every completion script names every command and flag;
// bash parses its script and completes sub-commands and flags.
func TestCompletions(t *testing.T) {
	app := testModel(t)
	files := GenerateDocs(app)
	for _, name := range []string{"completions/bintrans.bash", "completions/_bintrans", "completions/bintrans.fish"} {
		script := string(files[name])
		for _, c := range visibleCommands(app.Node) {
			if !strings.Contains(script, c.Name) {
				t.Errorf("%s: no command %q", name, c.Name)
			}
			for _, f := range visibleFlags(c) {
				if !strings.Contains(script, f.Name) {
					t.Errorf("%s: no flag --%s of %q", name, f.Name, commandPath(c))
				}
			}
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash missing")
	}
	p := filepath.Join(t.TempDir(), "bintrans.bash")
	if err := os.WriteFile(p, files["completions/bintrans.bash"], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ words, want string }{
		{"bintrans do", "doctor"},
		{"bintrans audit ver", "verify-chain"},
		{"bintrans audit verify-chain --h", "--help --head"},
		{"bintrans doctor --offl", "--offline"},
		{"bintrans --config x.conf scan --signa", "--signature-dir"},
	} {
		script := `source "$1"; COMP_WORDS=(` + tc.words + `); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _bintrans; echo "${COMPREPLY[*]}"`
		out, err := exec.Command(bash, "-c", script, "bash", p).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.words, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("completing %q: got %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestHelpCommandMatchesFlag: 'bintrans help CMD' prints exactly what
// 'bintrans CMD --help' prints, for every command.
func TestHelpCommandMatchesFlag(t *testing.T) {
	t.Setenv("BINTRANS_CONFIG", "")
	app := testModel(t)
	paths := [][]string{nil}
	for _, c := range visibleCommands(app.Node) {
		paths = append(paths, strings.Fields(commandPath(c)))
	}
	for _, path := range paths {
		var viaHelp, viaFlag, stderr bytes.Buffer
		if code := run(append([]string{"help"}, path...), nil, &viaHelp, &stderr); code != 0 {
			t.Fatalf("help %v: exit %d: %s", path, code, stderr.String())
		}
		if code := run(append(append([]string{}, path...), "--help"), nil, &viaFlag, &stderr); code != 0 {
			t.Fatalf("%v --help: exit %d: %s", path, code, stderr.String())
		}
		if viaHelp.String() != viaFlag.String() || viaHelp.Len() == 0 {
			t.Errorf("help %v differs from --help:\n%s\n----\n%s", path, viaHelp.String(), viaFlag.String())
		}
	}
	var out, stderr bytes.Buffer
	if code := run([]string{"help", "audit", "nope"}, nil, &out, &stderr); code != ExitUsage || !strings.Contains(stderr.String(), `unknown command "audit nope"`) {
		t.Errorf("help audit nope: exit %d, %q", code, stderr.String())
	}
}
