package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PrivateRekorV2 is a real Rekor v2 of one test's own (rekor-tiles `posix`
// and its tile server, started by scripts/rekor-v2-stack in a fresh
// directory, on ports from FreePort): a second log, a log of another
// origin (a shard), or a log that asks witnesses to cosign its checkpoints.
// The shared stack (RekorV2) is never touched.
type PrivateRekorV2 struct {
	RekorV2Stack
	// Dir is the stack's data directory.
	Dir string

	script  string
	started bool
}

// InitRekorV2 creates the identity of a private Rekor v2 with origin
// (`scripts/rekor-v2-stack init`): its key (KeyPath, VKey) and origin are
// known before it starts, for the witnesses it will ask. Start starts it.
// A missing `posix` skips the test (fails it under CI).
func InitRekorV2(t testing.TB, origin string) *PrivateRekorV2 {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv("BINTRANS_CACHE")
	if cache == "" {
		h, _ := os.UserHomeDir()
		cache = filepath.Join(h, ".cache", "bintrans")
	}
	if _, err := os.Stat(filepath.Join(cache, "bin", "posix")); err != nil {
		missing(t, "rekor-tiles' posix server in "+filepath.Join(cache, "bin")+" (run scripts/install-deps)")
	}
	for _, tool := range []string{"openssl", "python3", "curl", "ss", "setsid"} {
		Tool(t, tool)
	}
	p := &PrivateRekorV2{Dir: filepath.Join(t.TempDir(), "rekor-v2"), script: filepath.Join(root, "scripts", "rekor-v2-stack")}
	out := p.run(t, []string{"REKORV2_ORIGIN=" + origin}, "init")
	vars := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			vars[k] = v
		}
	}
	p.KeyPath, p.VKey, p.Origin = vars["REKORV2_KEY"], vars["REKORV2_VKEY"], vars["REKORV2_ORIGIN"]
	if p.KeyPath == "" || p.VKey == "" || p.Origin != origin {
		t.Fatalf("rekor-v2-stack init printed:\n%s", out)
	}
	t.Cleanup(func() {
		if p.started {
			if _, err := p.exec(nil, "stop", "--purge"); err != nil {
				t.Errorf("rekor-v2-stack stop %s: %v", p.Dir, err)
			}
		}
	})
	return p
}

// Start starts the stack, asking the witnesses of the C2SP tlog-policy file
// witnessPolicy ("": none) to cosign each checkpoint. It is stopped (by
// the PIDs the script recorded) when the test ends.
func (p *PrivateRekorV2) Start(t testing.TB, witnessPolicy string) {
	t.Helper()
	env := []string{
		fmt.Sprintf("REKORV2_HTTP_PORT=%d", FreePort(t)), fmt.Sprintf("REKORV2_GRPC_PORT=%d", FreePort(t)),
		fmt.Sprintf("REKORV2_METRICS_PORT=%d", FreePort(t)), fmt.Sprintf("REKORV2_TILE_PORT=%d", FreePort(t)),
	}
	if witnessPolicy != "" {
		env = append(env, "REKORV2_WITNESS_POLICY="+witnessPolicy)
	}
	p.started = true
	t0 := time.Now()
	out := p.run(t, env, "start")
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			switch k {
			case "REKORV2_URL":
				p.URL = v
			case "REKORV2_READ_URL":
				p.ReadURL = v
			}
		}
	}
	if p.URL == "" || p.ReadURL == "" {
		t.Fatalf("rekor-v2-stack start printed:\n%s", out)
	}
	t.Logf("private Rekor v2 %s at %s (tiles %s) in %v", p.Origin, p.URL, p.ReadURL, time.Since(t0).Round(time.Millisecond))
}

// Log is the posix server's log so far (for failure messages).
func (p *PrivateRekorV2) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "log", "posix.log"))
	return string(b)
}

func (p *PrivateRekorV2) run(t testing.TB, env []string, args ...string) string {
	t.Helper()
	out, err := p.exec(env, args...)
	if err != nil {
		t.Fatalf("rekor-v2-stack %s %s: %v\n%s", strings.Join(args, " "), p.Dir, err, out)
	}
	return out
}

func (p *PrivateRekorV2) exec(env []string, args ...string) (string, error) {
	cmd := exec.Command(p.script, append(args, p.Dir)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// repoRoot is the directory of the module's go.mod, above the working
// directory (a test runs in its package's directory).
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		d = up
	}
}
