package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/rootfile"
)

// TestRootRefusesFilesOthersCanWrite: as root, the configuration file and
// every key file a policy names are refused (exit 2) when someone other
// than root could have written them or a directory above them; the
// message names the file, its owner and mode, the hint the fix.
func TestRootRefusesFilesOthersCanWrite(t *testing.T) {
	if !rootfile.Enforced() {
		t.Skip("the checks apply to root only")
	}
	base, pkgFile := offlineVerifyArgs(t)
	flag := func(name string) string {
		for i, a := range base {
			if a == name {
				return base[i+1]
			}
		}
		t.Fatalf("no %s in %q", name, base)
		return ""
	}
	if code, out, errOut := runCLI(append(base, pkgFile)...); code != ExitOK {
		t.Fatalf("root-owned files: exit %d\n%s%s", code, out, errOut)
	}
	dir := filepath.Dir(filepath.Dir(filepath.Dir(flag("--pubkey-path")))) // the fixture's root
	conf := filepath.Join(dir, "bintrans.conf")
	writeTestFile(t, conf, []byte("offline = true\n"))

	type step struct {
		name  string
		path  string
		apply func(p string) error
		args  []string
		want  []string
	}
	chmod := func(m os.FileMode) func(string) error { return func(p string) error { return os.Chmod(p, m) } }
	chown := func(uid int) func(string) error { return func(p string) error { return os.Lchown(p, uid, -1) } }
	rbKey := filepath.Join(dir, "rebuilder.pem")
	writeTestFile(t, rbKey, []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n"))
	rbArgs := []string{"--rebuilder", "http://127.0.0.1:9/", "--rebuilder-key", "http://127.0.0.1:9/=" + rbKey}
	for _, s := range []step{
		{"config world-writable", conf, chmod(0o666), []string{"--config", conf},
			[]string{"bintrans: configuration " + conf + ": refusing to use it as root: it is writable by its group and others (owner uid 0 (root), mode 0666", "hint: root must be the only one able to change what it trusts: chmod go-w " + conf}},
		{"config not root's", conf, chown(65534), []string{"--config", conf},
			[]string{"it is not owned by root (owner uid 65534", "hint: root must be the only one able to change what it trusts: chown root:root " + conf}},
		{"log key group-writable", flag("--log-key"), chmod(0o664), nil,
			[]string{"bintrans: --log-key: " + flag("--log-key") + ": refusing to use it as root: it is writable by its group", "chmod go-w"}},
		{"transparency key in a directory others can write", filepath.Dir(flag("--pubkey-path")), chmod(0o777), nil,
			[]string{"bintrans: --pubkey-path: " + flag("--pubkey-path") + ": refusing to use it as root: " + filepath.Dir(flag("--pubkey-path")) + " (a directory on the way to it) is writable by its group and others", "chmod go-w " + filepath.Dir(flag("--pubkey-path"))}},
		{"rebuilder key not root's", rbKey, chown(65534), rbArgs,
			[]string{"bintrans: --rebuilder-key: " + rbKey + ": refusing to use it as root: it is not owned by root", "chown root:root " + rbKey}},
	} {
		t.Run(s.name, func(t *testing.T) {
			fi, err := os.Lstat(s.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.apply(s.path); err != nil {
				t.Fatal(err)
			}
			defer func() {
				os.Chmod(s.path, fi.Mode().Perm())
				os.Lchown(s.path, 0, -1)
			}()
			var args []string
			if len(s.args) > 0 && s.args[0] == "--config" { // a global flag: before the command
				args = append(append([]string(nil), s.args...), base...)
			} else {
				args = append(append([]string(nil), base...), s.args...)
			}
			code, out, errOut := runCLI(append(args, pkgFile)...)
			t.Logf("%s", errOut)
			if code != ExitUsage {
				t.Errorf("exit %d, want 2\n%s%s", code, out, errOut)
			}
			for _, w := range s.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestRootRefusesSignSecrets: as root, sign refuses a secret key or a
// password file others could have written before reading either.
func TestRootRefusesSignSecrets(t *testing.T) {
	if !rootfile.Enforced() {
		t.Skip("the checks apply to root only")
	}
	dir := t.TempDir()
	key := newScanKey(t, 41)
	pub := filepath.Join(dir, "key.pub")
	writeTestFile(t, pub, key.pk.File())
	sec := filepath.Join(dir, "key.sec")
	writeTestFile(t, sec, []byte("not even a key\n"))
	pw := filepath.Join(dir, "password")
	writeTestFile(t, pw, []byte("secret\n"))
	args := []string{"sign", "--repo-url", dir, "--repo-name", "core", "--signature-dir", dir, "--pubkey-path", pub,
		"--seckey-path", sec, "--password-file", pw, "--state-dir", filepath.Join(dir, "state"),
		"--log-url", "http://127.0.0.1:9", "--log-key", pub}
	for _, p := range []string{sec, pw} {
		if err := os.Chmod(p, 0o646); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCLI(args...)
		if code != ExitUsage || !strings.Contains(errOut, p+": refusing to use it as root: it is writable by others") {
			t.Errorf("%s mode 0646: exit %d\n%s", p, code, errOut)
		}
		os.Chmod(p, 0o600)
	}
}
