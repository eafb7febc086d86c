package adversarial

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// bintransBinary builds cmd/bintrans statically (the sandbox root has no
// libc), once per test binary, as e2e/ does.
func bintransBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bintrans-adversarial-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "bintrans")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "../../../cmd/bintrans")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/bintrans: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// sandboxPkg is a real package of the sandbox repository.
type sandboxPkg struct {
	name, version, filename, path, sha256 string
	content                               []byte
}

// TestPacmanAdversarial runs the real pacman 6.0.2 with the bintrans hook
// against a repository whose signatures are logged in a fake log: each
// hostile case must abort the transaction with the package's verdict in
// pacman's output and leave `pacman -Q` exactly as it was.
func TestPacmanAdversarial(t *testing.T) {
	if testing.Short() {
		t.Skip("real pacman transactions")
	}
	s := testenv.NewSandbox(t, "core")
	bin := bintransBinary(t)
	lg := fakelog.New(t)
	k := newKey(t)
	sigs := filepath.Join(s.WWW, "sigs")
	if err := os.MkdirAll(sigs, 0o755); err != nil {
		t.Fatal(err)
	}
	publish := func(name string, b []byte) {
		t.Helper()
		p := filepath.Join(sigs, name)
		if b == nil {
			os.Remove(p)
			return
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var pkgs []*sandboxPkg
	var paths []string
	for i, name := range []string{"base", "alpha", "beta"} {
		p := testenv.Pkg{Name: name, Version: fmt.Sprintf("1.%d-1", i), Size: 1024,
			Files: map[string]string{"usr/share/doc/" + name + "/README": name + "\n"}}
		path := testenv.BuildPackage(t, s.RepoDir("core"), p)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sp := &sandboxPkg{name: name, version: p.Version, filename: filepath.Base(path), path: path, sha256: sum(b), content: b}
		pkgs = append(pkgs, sp)
		paths = append(paths, path)
		tf, err := verify.SignPackage(k.sk, sp.sha256, sp.filename)
		if err != nil {
			t.Fatal(err)
		}
		s1, err := verify.ParseSignature(tf)
		if err != nil {
			t.Fatal(err)
		}
		publish(sp.filename+verify.SignatureSuffix, tf)
		publish(sp.filename+verify.BundleSuffix, bundleOf(t, lg.Add(rekorv1.CanonicalBody(s1, k.pk, []byte(sp.sha256)))))
	}
	testenv.RepoAdd(t, s.RepoDB("core"), paths...)

	hookText, err := os.ReadFile("../../../hooks/bintrans.hook")
	if err != nil {
		t.Fatal(err)
	}
	s.InstallHook(t, "bintrans", string(hookText))
	s.CopyIntoRoot(t, bin, "/usr/bin/bintrans")
	s.InstallFile(t, "/etc/bintrans/log.pem", lg.KeyPEM, 0o644)
	conf := func(extra ...string) {
		t.Helper()
		lines := []string{"pubkey = " + k.pk.Base64(), "transparency-url = " + s.URL + "/sigs", "log-url = " + lg.URL,
			"log-key = /etc/bintrans/log.pem", "state-dir = /var/lib/bintrans", "timeout = 5s"}
		s.InstallFile(t, "/etc/bintrans.conf", []byte(strings.Join(append(lines, extra...), "\n")+"\n"), 0o644)
	}
	conf()

	// An honest first transaction: base is installed, the log's checkpoint
	// is persisted in the root's state directory.
	res := s.Sync(t, nil, "base")
	if res.Code != 0 {
		t.Fatalf("honest install failed:\n%s", res)
	}
	installed := s.Installed(t)
	if installed["base"] != pkgs[0].version {
		t.Fatalf("installed %v after the honest transaction", installed)
	}
	alpha, beta := pkgs[1], pkgs[2]

	cases := []struct {
		name    string
		damage  func(t *testing.T) (undo func())
		target  *sandboxPkg
		status  verify.Status
		anyLine string // for run-level failures: a line of the output
	}{
		{name: "pacman/mirror-serves-a-rebuilt-package", target: alpha, status: verify.StatusBadSignature, damage: func(t *testing.T) func() {
			evil := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: alpha.name, Version: alpha.version, Size: 1024,
				Files: map[string]string{"usr/bin/backdoor": "#!/bin/sh\necho pwned\n"}})
			b, err := os.ReadFile(evil)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(alpha.path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			testenv.RepoAdd(t, s.RepoDB("core"), alpha.path) // the mirror's db matches the evil file
			return func() {
				if err := os.WriteFile(alpha.path, alpha.content, 0o644); err != nil {
					t.Fatal(err)
				}
				testenv.RepoAdd(t, s.RepoDB("core"), alpha.path)
			}
		}},
		{name: "pacman/t-signed-by-another-key", target: beta, status: verify.StatusWrongKey, damage: func(t *testing.T) func() {
			tf, err := verify.SignPackage(newKey(t).sk, beta.sha256, beta.filename)
			if err != nil {
				t.Fatal(err)
			}
			old, _ := os.ReadFile(filepath.Join(sigs, beta.filename+verify.SignatureSuffix))
			publish(beta.filename+verify.SignatureSuffix, tf)
			return func() { publish(beta.filename+verify.SignatureSuffix, old) }
		}},
		{name: "pacman/t-binary-garbage", target: alpha, status: verify.StatusMalformedSignature, damage: func(t *testing.T) func() {
			old, _ := os.ReadFile(filepath.Join(sigs, alpha.filename+verify.SignatureSuffix))
			publish(alpha.filename+verify.SignatureSuffix, []byte("\x7fELF\x02\x01\x01\x00garbage"))
			return func() { publish(alpha.filename+verify.SignatureSuffix, old) }
		}},
		{name: "pacman/offline-bundle-checkpoint-by-another-key", target: beta, status: verify.StatusBundleInvalid, damage: func(t *testing.T) func() {
			old, _ := os.ReadFile(filepath.Join(sigs, beta.filename+verify.BundleSuffix))
			s.InstallFile(t, "/etc/bintrans/log.pem", lg.OtherKeyPEM, 0o644)
			conf("offline = true")
			return func() {
				publish(beta.filename+verify.BundleSuffix, old)
				s.InstallFile(t, "/etc/bintrans/log.pem", lg.KeyPEM, 0o644)
				conf()
			}
		}},
		{name: "pacman/log-answers-html-502", target: alpha, status: verify.StatusUnavailable, damage: func(t *testing.T) func() {
			lg.SetLie(fakelog.LieHTML502)
			return func() { lg.SetLie(fakelog.Honest) }
		}},
		{name: "pacman/log-rolled-back", target: alpha, status: verify.StatusLogInconsistent, anyLine: "SECURITY ERROR", damage: func(t *testing.T) func() {
			lg.RollbackTo(lg.Size() - 1)
			return func() { lg.SetLie(fakelog.Honest) }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearCache(t, s.CacheDir)
			before := s.Installed(t)
			undo := tc.damage(t)
			defer undo()
			res := s.Sync(t, nil, "alpha", "beta")
			after := s.Installed(t)
			out := res.Stdout + res.Stderr
			if res.Code == 0 || !strings.Contains(res.Stderr, "failed to run transaction hooks") {
				t.Fatalf("transaction not aborted by the hook:\n%s", res)
			}
			if !sameSet(before, after) {
				t.Errorf("pacman -Q changed: before %v, after %v", before, after)
			}
			if !lineWith(out, tc.target.filename, string(tc.status)) {
				t.Errorf("no line naming %s with %q:\n%s", tc.target.filename, tc.status, out)
			}
			if tc.anyLine != "" && !strings.Contains(out, tc.anyLine) {
				t.Errorf("output lacks %q:\n%s", tc.anyLine, out)
			}
			if _, err := os.Stat(filepath.Join(s.Root, "usr/bin/backdoor")); err == nil {
				t.Error("the backdoor was installed")
			}
			t.Logf("pacman:\n%s", out)
		})
	}

	// Undamaged again, the same transaction goes through.
	clearCache(t, s.CacheDir)
	res = s.Sync(t, nil, "alpha", "beta")
	if res.Code != 0 {
		t.Fatalf("honest transaction after the attacks failed:\n%s", res)
	}
}

func clearCache(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

func sameSet(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

func lineWith(out string, subs ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}
