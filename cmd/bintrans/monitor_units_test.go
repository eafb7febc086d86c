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

// The check-dbs and sign units: check-dbs runs daily as root with only the
// hook's state directory writable, its command line one the CLI accepts;
// sign runs hourly from its own configuration; systemd verifies all four.
func TestCheckDBsAndSignUnits(t *testing.T) {
	svc := unitFile(t, "../../hooks/bintrans-check-dbs.service")
	for k, want := range map[string]string{
		"Type": "oneshot", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/bintrans",
		"NoNewPrivileges": "yes", "PrivateTmp": "yes", "RestrictNamespaces": "yes",
	} {
		if got := svc[k]; len(got) != 1 || got[0] != want {
			t.Errorf("check-dbs: %s=%q, want %q", k, got, want)
		}
	}
	if _, dyn := svc["DynamicUser"]; dyn {
		t.Error("check-dbs must run as root: the configuration and the state are root's")
	}
	args := strings.Fields(svc["ExecStart"][0])
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("bintrans"), kong.Exit(func(int) { t.Fatal("exit") }),
		kong.Vars{"version": version, "default_log_url": DefaultLogURL})
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(args[1:])
	if err != nil || kctx.Command() != "check-dbs" || args[0] != "/usr/bin/bintrans" {
		t.Fatalf("check-dbs ExecStart %q: %v", args, err)
	}
	if cli.CheckDBs.StateDir != svc["ReadWritePaths"][0] {
		t.Errorf("--state-dir %s is not the writable path", cli.CheckDBs.StateDir)
	}
	if tm := unitFile(t, "../../hooks/bintrans-check-dbs.timer"); tm["OnCalendar"][0] != "daily" || tm["Persistent"][0] != "true" {
		t.Errorf("check-dbs timer %v", tm)
	}
	sign := unitFile(t, "../../hooks/bintrans-sign.service")
	if f := strings.Fields(sign["ExecStart"][0]); len(f) < 2 || f[1] != "sign" {
		t.Errorf("sign ExecStart %q", sign["ExecStart"])
	}
	if tm := unitFile(t, "../../hooks/bintrans-sign.timer"); tm["OnCalendar"][0] != "hourly" {
		t.Errorf("sign timer %v", tm)
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: skipping its verify")
		return
	}
	dir := t.TempDir()
	self, _ := os.Executable()
	var paths []string
	for _, n := range []string{"bintrans-check-dbs.service", "bintrans-check-dbs.timer", "bintrans-sign.service", "bintrans-sign.timer"} {
		b, err := os.ReadFile("../../hooks/" + n)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), "/usr/bin/bintrans", self, 1))
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
		paths = append(paths, filepath.Join(dir, n))
	}
	out, err := exec.Command(sa, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
