package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// demoScript is scripts/demo (`make demo`).
var demoScript = filepath.Join("..", "..", "..", "scripts", "demo")

// TestDemoScriptParses: the demo script, every log kind's branch of it
// (DEMO_LOG_KIND, DEMO_WITNESSES), parses (bash -n) and shellcheck finds
// nothing in it; each variant passes the script's own checks (--check:
// nothing is installed or started) and names the stack it would start.
// The whole story runs end to end in scripts/test (DEMO_LOG_KIND=rekor-v2
// DEMO_WITNESSES=1) and by hand (README).
func TestDemoScriptParses(t *testing.T) {
	bash := testenv.Tool(t, "bash")
	if out, err := exec.Command(bash, "-n", demoScript).CombinedOutput(); err != nil {
		t.Fatalf("bash -n scripts/demo: %v\n%s", err, out)
	}
	sc := testenv.Tool(t, "shellcheck")
	if out, err := exec.Command(sc, "--shell=bash", "--severity=style", demoScript).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck scripts/demo: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "DEMO_LOG_KIND=rekor-v1: scripts/rekor-stack, no witnesses"},
		{[]string{"DEMO_LOG_KIND=rekor-v2"}, "scripts/rekor-v2-stack, no witnesses"},
		{[]string{"DEMO_LOG_KIND=rekor-v2", "DEMO_WITNESSES=1"}, "scripts/rekor-v2-stack, three omniwitness witnesses, 2 of 3"},
		{[]string{"DEMO_LOG_KIND=sigsum"}, "scripts/sigsum-stack, the stack's three sigsum-witness witnesses, 2 of 3"},
		{[]string{"DEMO_LOG_KIND=sigsum", "DEMO_WITNESSES=1", "DEMO_PORTS=22000-22099"}, "ports: 22000-22099"},
		{[]string{"DEMO_LOG_URL=http://127.0.0.1:1", "DEMO_LOG_KEY=/k"}, "the Rekor at http://127.0.0.1:1"},
	} {
		out, code := runDemo(t, tc.env, "--check")
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, output:\n%s\n(want exit 0 and %q)", tc.env, code, out, tc.want)
		}
	}
}

// TestDemoScriptRefusesBadVariants: a log kind or a combination the demo
// cannot run is a usage error (exit 2) that says why, before anything is
// installed, built or started (so it is cheap, and needs no root).
func TestDemoScriptRefusesBadVariants(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"DEMO_LOG_KIND=rekor-v3"}, "use rekor-v1, rekor-v2 or sigsum"},
		{[]string{"DEMO_WITNESSES=yes"}, "DEMO_WITNESSES=yes"},
		{[]string{"DEMO_WITNESSES=1"}, "needs DEMO_LOG_KIND=rekor-v2 or sigsum"},
		{[]string{"DEMO_LOG_KIND=rekor-v1", "DEMO_WITNESSES=1"}, "Rekor v1 has no witnessed checkpoints"},
		{[]string{"DEMO_LOG_KIND=rekor-v2", "DEMO_LOG_URL=http://127.0.0.1:1"}, "DEMO_LOG_URL is for DEMO_LOG_KIND=rekor-v1 only"},
		{[]string{"DEMO_LOG_KIND=rekor-v2", "DEMO_PORTS=22000"}, "want LO-HI"},
		{[]string{"DEMO_PORTS=80-90"}, "want LO-HI"},
		{[]string{"DEMO_PORTS=23000-22000"}, "want LO-HI"},
	} {
		// --check: a regression in these checks still never runs the demo.
		out, code := runDemo(t, tc.env, "--check")
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, output:\n%s\n(want exit 2 and %q)", tc.env, code, out, tc.want)
		}
	}
	if out, code := runDemo(t, nil, "--chek"); code != 2 || !strings.Contains(out, "usage: scripts/demo [--check]") {
		t.Errorf("--chek: exit %d, output:\n%s", code, out)
	}
}

// runDemo runs scripts/demo args with env added to the caller's
// environment stripped of DEMO_ variables (DEMO_DIR: a temporary dir), and
// returns its output and exit code.
func runDemo(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	bash := testenv.Tool(t, "bash")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, append([]string{demoScript}, args...)...)
	cmd.Env = append(demoEnv(), append([]string{"DEMO_DIR=" + filepath.Join(t.TempDir(), "demo")}, env...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("scripts/demo %v: %v\n%s", args, err, out)
	return "", 0
}

// demoEnv is the environment without any DEMO_ variable of the caller's.
func demoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEMO_") {
			env = append(env, kv)
		}
	}
	return env
}
