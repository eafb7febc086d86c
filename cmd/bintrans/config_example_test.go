package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const exampleConfig = "../../packaging/bintrans.conf.example"

// commentedSetting is a disabled setting of the example: "#key = value",
// "#key" or "#[repo NAME]" (explanations start with "##" or "# ").
var commentedSetting = regexp.MustCompile(`^#([a-z\[][^ #].*)$`)

// TestConfigExample: the example as installed (every setting commented out)
// and with every setting enabled is accepted by the real loader, and it
// documents every flag of the commands a pacman user configures (hook,
// fetch, verify, doctor, check-dbs).
func TestConfigExample(t *testing.T) {
	orig, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var enabled []string
	for _, line := range strings.Split(string(orig), "\n") {
		if m := commentedSetting.FindStringSubmatch(line); m != nil {
			line = m[1]
		}
		enabled = append(enabled, line)
	}
	all := []byte(strings.Join(enabled, "\n"))

	app := testModel(t)
	keys := map[string]bool{}
	for name, text := range map[string][]byte{"installed": orig, "enabled": all} {
		cr, err := parseConfig(name, bytes.NewReader(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := cr.Validate(app); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "enabled" {
			for k := range cr.values {
				keys[k] = true
			}
		}
	}
	for _, cmd := range []string{"hook", "fetch", "verify", "doctor", "check-dbs"} {
		node := findChild(app.Node, cmd)
		for _, f := range visibleFlags(node) {
			switch f.Name {
			case "help", "config", "output", "json":
				continue // per invocation, not configuration
			}
			if !keys[f.Name] {
				t.Errorf("the example does not document %q (a flag of %s)", f.Name, cmd)
			}
		}
	}

	// The loader the commands use accepts the enabled example: doctor
	// parses it and gets as far as the (absent) key file.
	dir := t.TempDir()
	p := filepath.Join(dir, "bintrans.conf")
	if err := os.WriteFile(p, all, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"--config", p, "doctor"}, nil, &stdout, &stderr)
	if code != ExitUsage || !strings.Contains(stderr.String(), "--pubkey-path") {
		t.Errorf("doctor with the enabled example: exit %d, %q (want the missing key file reported)", code, stderr.String())
	}
}
