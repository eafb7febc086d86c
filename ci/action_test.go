package ci

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// The composite action's metadata, as much of it as the tests check.
type actionFile struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Author      string `yaml:"author"`
	Branding    struct {
		Icon  string `yaml:"icon"`
		Color string `yaml:"color"`
	} `yaml:"branding"`
	Inputs map[string]struct {
		Description string  `yaml:"description"`
		Required    bool    `yaml:"required"`
		Default     *string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

type actionStep struct {
	Name  string            `yaml:"name"`
	ID    string            `yaml:"id"`
	If    string            `yaml:"if"`
	Uses  string            `yaml:"uses"`
	Run   string            `yaml:"run"`
	Shell string            `yaml:"shell"`
	Env   map[string]string `yaml:"env"`
	With  map[string]string `yaml:"with"`
}

const actionPath = "github/action.yml"

func loadAction(t *testing.T) (actionFile, []byte) {
	t.Helper()
	b, err := os.ReadFile(actionPath)
	if err != nil {
		t.Fatal(err)
	}
	var a actionFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a misspelt key (e.g. "shel") is an error
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("%s: %v", actionPath, err)
	}
	return a, b
}

// TestActionMetadata checks what actionlint does not: the structure of a
// composite action, that inputs reach scripts only through env (never
// ${{ }} inside run:, which would be script injection), that every input
// is declared and used, and that scripts use only variables they are given.
func TestActionMetadata(t *testing.T) {
	a, raw := loadAction(t)
	if a.Name == "" || a.Description == "" {
		t.Error("action needs a name and a description")
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using = %q, want composite", a.Runs.Using)
	}
	ids := map[string]bool{}
	for i, s := range a.Runs.Steps {
		if (s.Uses == "") == (s.Run == "") {
			t.Errorf("step %d (%s): needs exactly one of uses and run", i, s.Name)
		}
		if s.Run != "" && s.Shell != "bash" {
			t.Errorf("step %d (%s): a composite run step needs shell: bash", i, s.Name)
		}
		if strings.Contains(s.Run, "${{") {
			t.Errorf("step %d (%s): expression inside run: (pass it through env)", i, s.Name)
		}
		if s.Uses != "" && !regexp.MustCompile(`^[\w.-]+/[\w.-]+@\S+$`).MatchString(s.Uses) {
			t.Errorf("step %d: uses %q is not owner/repo@ref", i, s.Uses)
		}
		if s.ID != "" {
			ids[s.ID] = true
		}
		if s.Run != "" {
			provided := map[string]bool{}
			for k := range s.Env {
				provided[k] = true
			}
			for _, k := range []string{"RUNNER_TEMP", "GITHUB_OUTPUT", "GITHUB_PATH", "GOBIN", "CGO_ENABLED"} {
				provided[k] = true
			}
			for _, m := range regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(s.Run, -1) {
				if !provided[m[1]] {
					t.Errorf("step %d (%s): script uses $%s, which nothing sets", i, s.Name, m[1])
				}
			}
			for k := range s.Env {
				if !strings.Contains(s.Run, "$"+k) && !strings.Contains(s.Run, "${"+k) {
					t.Errorf("step %d (%s): env %s is never used", i, s.Name, k)
				}
			}
		}
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`inputs\.([a-z0-9-]+)`).FindAllStringSubmatch(string(raw), -1) {
		used[m[1]] = true
		if _, ok := a.Inputs[m[1]]; !ok {
			t.Errorf("inputs.%s is used but not declared", m[1])
		}
	}
	for name, in := range a.Inputs {
		if !used[name] {
			t.Errorf("input %s is declared but never used", name)
		}
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
		if in.Required && in.Default != nil {
			t.Errorf("input %s is required but has a default", name)
		}
	}
	for name, out := range a.Outputs {
		if m := regexp.MustCompile(`steps\.([\w-]+)\.outputs`).FindStringSubmatch(out.Value); m != nil && !ids[m[1]] {
			t.Errorf("output %s refers to step %q, which does not exist", name, m[1])
		}
	}
}

// scanStep returns the script of the step with id "scan".
func scanStep(t *testing.T) actionStep {
	a, _ := loadAction(t)
	for _, s := range a.Runs.Steps {
		if s.ID == "scan" {
			return s
		}
	}
	t.Fatal("no step with id scan")
	return actionStep{}
}

// runScanScript runs the action's scan script with bash, the given step
// env and a stand-in `bintrans` that records its arguments and exits with
// exit. It returns the arguments, the script's exit code and what it wrote
// to $GITHUB_OUTPUT.
func runScanScript(t *testing.T, env map[string]string, exit int) (args []string, code int, output string) {
	t.Helper()
	bash := testenv.Tool(t, "bash")
	step := scanStep(t)
	for k := range step.Env {
		if _, ok := env[k]; !ok {
			env[k] = ""
		}
	}
	for k := range env {
		if _, ok := step.Env[k]; !ok {
			t.Fatalf("the scan step has no env %s", k)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	argsFile := filepath.Join(dir, "args")
	stub := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$ARGS_FILE\"\nexit \"$STUB_EXIT\"\n"
	if err := os.WriteFile(filepath.Join(bin, "bintrans"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "scan.sh")
	if err := os.WriteFile(script, []byte(step.Run), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "github_output")
	cmd := exec.Command(bash, script)
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "RUNNER_TEMP=/runner/tmp", "GITHUB_OUTPUT=" + out,
		"ARGS_FILE=" + argsFile, "STUB_EXIT=" + strconv.Itoa(exit)}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatalf("bintrans was not run: %v\n%s", err, stderr)
	}
	o, _ := os.ReadFile(out)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), code, string(o)
}

// TestScanScriptArguments: inputs become the right flags, word lists are
// split, a pasted .pub file's comment line is dropped, and bintrans's exit
// code reaches both the step output and the step's own status.
func TestScanScriptArguments(t *testing.T) {
	env := map[string]string{
		"DATABASES":        "core.db\n  https://mirror.example/extra/os/x86_64/extra.db  \n",
		"TRANSPARENCY_URL": "https://mirror.example/t",
		"PUBKEYS":          "untrusted comment: minisign public key E6A93C80B7A9E2C4\nRWTEopy3gDyp5sQ8ZzzQJZUwQr0SyJgy4r9VQ0ws/yd6kGNuW2crFk4x\n\n RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3 \n",
		"LOG_URL":          "http://127.0.0.1:3000",
		"LOG_KEY":          ".bintrans/rekor.pub",
		"OFFLINE":          "false",
		"DOWNLOAD":         "true",
		"JUNIT_FILE":       "junit.xml",
		"JSON_FILE":        "report.json",
		"EXTRA_ARGS":       "--required-rebuild-confirms 1",
	}
	want := []string{
		"scan", "--github", "--junit", "junit.xml", "--json", "report.json", "--state-dir", "/runner/tmp/bintrans-state",
		"--transparency-url", "https://mirror.example/t",
		"--log-url", "http://127.0.0.1:3000", "--log-key", ".bintrans/rekor.pub",
		"--download",
		"--pubkey", "RWTEopy3gDyp5sQ8ZzzQJZUwQr0SyJgy4r9VQ0ws/yd6kGNuW2crFk4x",
		"--pubkey", "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3",
		"--required-rebuild-confirms", "1",
		"core.db", "https://mirror.example/extra/os/x86_64/extra.db",
	}
	for _, exit := range []int{0, 1} {
		got, code, out := runScanScript(t, maps.Clone(env), exit)
		if !slices.Equal(got, want) {
			t.Errorf("bintrans called with\n%q\nwant\n%q", got, want)
		}
		if code != exit || out != fmt.Sprintf("exit-code=%d\n", exit) {
			t.Errorf("bintrans exit %d: script exit %d, GITHUB_OUTPUT %q", exit, code, out)
		}
	}
}

// TestScanScriptRepoURL: the mirror-template form, offline, with a local
// signature directory and a key file; exit 3 (could not run) passes through.
func TestScanScriptRepoURL(t *testing.T) {
	got, code, out := runScanScript(t, map[string]string{
		"REPO_URL":      "https://mirror.example/$repo/os/$arch",
		"REPO_NAMES":    "core extra",
		"ARCHITECTURES": "x86_64\naarch64",
		"SIGNATURE_DIR": "sigs",
		"PUBKEY_PATH":   "keys/transparency.pub",
		"OFFLINE":       "true",
		"DOWNLOAD":      "false",
		"JUNIT_FILE":    "j.xml",
		"JSON_FILE":     "-",
	}, 3)
	want := []string{
		"scan", "--github", "--junit", "j.xml", "--json", "-", "--state-dir", "/runner/tmp/bintrans-state",
		"--signature-dir", "sigs", "--pubkey-path", "keys/transparency.pub", "--offline",
		"--repo-url", "https://mirror.example/$repo/os/$arch",
		"--repo-name", "core", "--repo-name", "extra", "--architecture", "x86_64", "--architecture", "aarch64",
	}
	if !slices.Equal(got, want) {
		t.Errorf("bintrans called with\n%q\nwant\n%q", got, want)
	}
	if code != 3 || out != "exit-code=3\n" {
		t.Errorf("script exit %d, GITHUB_OUTPUT %q; want 3", code, out)
	}
}

// TestActionlint lints the example workflow with actionlint, once as
// shipped and once in a scratch project where it uses the action from
// ./ci/github, so that actionlint also parses action.yml and checks the
// inputs the workflow passes against it. A deliberately wrong input must
// then be reported, which shows the action was really read.
func TestActionlint(t *testing.T) {
	actionlint := testenv.Tool(t, "actionlint")
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command(actionlint, append([]string{"-no-color"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(".", "github/example-workflow.yml"); err != nil {
		t.Errorf("actionlint github/example-workflow.yml: %v\n%s", err, out)
	}

	example, err := os.ReadFile("github/example-workflow.yml")
	if err != nil {
		t.Fatal(err)
	}
	action, err := os.ReadFile(actionPath)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`uses: bintrans/bintrans/ci/github@\S+`)
	if !re.Match(example) {
		t.Fatal("example workflow does not use bintrans/bintrans/ci/github")
	}
	local := re.ReplaceAll(example, []byte("uses: ./ci/github"))
	proj := t.TempDir()
	for path, b := range map[string][]byte{
		".github/workflows/scan.yml":  local,
		".github/workflows/wrong.yml": bytes.Replace(local, []byte("transparency-url:"), []byte("transparency-ur1:"), 1),
		"ci/github/action.yml":        action,
		".git/HEAD":                   []byte("ref: refs/heads/main\n"), // actionlint finds the project root by .git
	} {
		p := filepath.Join(proj, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := run(proj, ".github/workflows/scan.yml"); err != nil {
		t.Errorf("actionlint with the local action: %v\n%s", err, out)
	}
	out, err := run(proj, ".github/workflows/wrong.yml")
	if err == nil || !strings.Contains(out, `input "transparency-ur1" is not defined in action "bintrans scan"`) {
		t.Errorf("actionlint did not check inputs against action.yml (err %v):\n%s", err, out)
	}
}

// TestActionScriptsShellcheck runs shellcheck over every run: script of the
// action (actionlint checks only workflow files' scripts).
func TestActionScriptsShellcheck(t *testing.T) {
	shellcheck := testenv.Tool(t, "shellcheck")
	a, _ := loadAction(t)
	for i, s := range a.Runs.Steps {
		if s.Run == "" {
			continue
		}
		cmd := exec.Command(shellcheck, "--shell=bash", "--severity=style", "-")
		cmd.Stdin = strings.NewReader(s.Run)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("step %d (%s): shellcheck: %v\n%s", i, s.Name, err, out)
		}
	}
}
