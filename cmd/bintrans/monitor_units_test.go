package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// unitFile reads a systemd unit into key → values (in order).
func unitFile(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: line %q", path, l)
		}
		m[k] = append(m[k], v)
	}
	return m
}

// The monitor's systemd units: hardened as documented, and the service's
// command line is one the CLI accepts, with the state directory systemd
// creates.
func TestMonitorUnits(t *testing.T) {
	svc := unitFile(t, "../../hooks/bintrans-monitor.service")
	for k, want := range map[string]string{
		"Type":                    "oneshot",
		"DynamicUser":             "yes",
		"StateDirectory":          "bintrans-monitor",
		"StateDirectoryMode":      "0700",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"RestrictNamespaces":      "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
	} {
		if got := svc[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	exec0 := svc["ExecStart"]
	if len(exec0) != 1 {
		t.Fatalf("ExecStart %q", exec0)
	}
	args := strings.Fields(exec0[0])
	if args[0] != "/usr/bin/bintrans" {
		t.Errorf("ExecStart runs %s", args[0])
	}
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("bintrans"), kong.Exit(func(int) { t.Fatal("exit") }),
		kong.Vars{"version": version, "default_log_url": DefaultLogURL})
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(args[1:])
	if err != nil || kctx.Command() != "monitor" {
		t.Fatalf("ExecStart does not parse: %v", err)
	}
	if cli.Monitor.StateDir != "/var/lib/"+svc["StateDirectory"][0] {
		t.Errorf("--state-dir %s is not the StateDirectory", cli.Monitor.StateDir)
	}
	tm := unitFile(t, "../../hooks/bintrans-monitor.timer")
	if len(tm["OnCalendar"]) != 1 || tm["Persistent"][0] != "true" || tm["WantedBy"][0] != "timers.target" {
		t.Errorf("timer %v", tm)
	}

	// systemd's own check, when systemd-analyze is installed.
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: skipping its verify")
		return
	}
	dir := t.TempDir()
	self, _ := os.Executable()
	for _, n := range []string{"bintrans-monitor.service", "bintrans-monitor.timer"} {
		b, err := os.ReadFile("../../hooks/" + n)
		if err != nil {
			t.Fatal(err)
		}
		// An executable that exists here (systemd-analyze checks it).
		b = []byte(strings.Replace(string(b), "/usr/bin/bintrans", self, 1))
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	out, err := exec.Command(sa, "verify", filepath.Join(dir, "bintrans-monitor.service"), filepath.Join(dir, "bintrans-monitor.timer")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
