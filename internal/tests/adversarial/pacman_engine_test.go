package adversarial

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// TestPacmanEngineHardening drives the real pacman 6.0.2 and its bintrans
// hook through the engine's run-wide defences: an offline fork of the
// stored tree size, a configuration others can write (as root), and a log
// that never answers (the run deadline). Each must abort the transaction,
// say why, and leave `pacman -Q` as it was.
func TestPacmanEngineHardening(t *testing.T) {
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
		if err := os.WriteFile(filepath.Join(sigs, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	signed := func(sha, filename string) ([]byte, []byte) {
		t.Helper()
		tf, err := verify.SignPackage(k.sk, sha, filename)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := verify.ParseSignature(tf)
		if err != nil {
			t.Fatal(err)
		}
		return tf, rekorv1.CanonicalBody(sig, k.pk, []byte(sha))
	}
	var pkgs []*sandboxPkg
	var paths []string
	for i, name := range []string{"base", "alpha", "beta"} {
		p := testenv.Pkg{Name: name, Version: "1." + string(rune('0'+i)) + "-1", Size: 1024,
			Files: map[string]string{"usr/share/doc/" + name + "/README": name + "\n"}}
		path := testenv.BuildPackage(t, s.RepoDir("core"), p)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sp := &sandboxPkg{name: name, version: p.Version, filename: filepath.Base(path), path: path, sha256: sum(b), content: b}
		pkgs, paths = append(pkgs, sp), append(paths, path)
		tf, body := signed(sp.sha256, sp.filename)
		publish(sp.filename+verify.SignatureSuffix, tf)
		publish(sp.filename+verify.BundleSuffix, bundleOf(t, lg.Add(body)))
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
	// An honest online transaction stores the log's checkpoint (size 3).
	if res := s.Sync(t, nil, "base"); res.Code != 0 {
		t.Fatalf("honest install failed:\n%s", res)
	}
	alpha := pkgs[1]

	cases := []struct {
		name   string
		damage func(t *testing.T) (undo func())
		lines  [][]string // each: substrings one output line must hold
		within time.Duration
	}{
		{
			// The mirror serves a backdoored alpha, signed with the
			// (stolen) transparency key and "logged" in a fork of the log
			// of exactly the size this machine stored, signed with the
			// (stolen) log key. Offline, the stored checkpoint shows it.
			name: "pacman/offline-fork-at-the-stored-size",
			damage: func(t *testing.T) func() {
				evil := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: alpha.name, Version: alpha.version, Size: 1024,
					Files: map[string]string{"usr/bin/backdoor": "#!/bin/sh\necho pwned\n"}})
				b, err := os.ReadFile(evil)
				if err != nil {
					t.Fatal(err)
				}
				tf, body := signed(sum(b), alpha.filename)
				size := lg.Size()
				lg.Fork(size-1, body)
				c, err := rekorv1.New(lg.URL, nil, rekorv1.WithRetries(0))
				if err != nil {
					t.Fatal(err)
				}
				m, err := c.EntriesByIndex(context.Background(), []int64{size - 1})
				lg.SetLie(fakelog.Honest)
				if err != nil || m[size-1] == nil {
					t.Fatalf("forked entry: %v", err)
				}
				oldT, _ := os.ReadFile(filepath.Join(sigs, alpha.filename+verify.SignatureSuffix))
				oldB, _ := os.ReadFile(filepath.Join(sigs, alpha.filename+verify.BundleSuffix))
				if err := os.WriteFile(alpha.path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				testenv.RepoAdd(t, s.RepoDB("core"), alpha.path)
				publish(alpha.filename+verify.SignatureSuffix, tf)
				publish(alpha.filename+verify.BundleSuffix, bundleOf(t, m[size-1]))
				conf("offline = true")
				return func() {
					if err := os.WriteFile(alpha.path, alpha.content, 0o644); err != nil {
						t.Fatal(err)
					}
					testenv.RepoAdd(t, s.RepoDB("core"), alpha.path)
					publish(alpha.filename+verify.SignatureSuffix, oldT)
					publish(alpha.filename+verify.BundleSuffix, oldB)
					conf()
				}
			},
			lines: [][]string{{"REFUSED", alpha.filename, string(verify.StatusLogInconsistent)}, {"SECURITY ERROR"},
				{"a proof bundle's checkpoint and the stored checkpoint have the same tree size 3 but different roots"},
				{"stored signed tree head:"}, {"signed tree head in the proof bundle of " + alpha.filename}},
		},
		{
			// Anyone may write the configuration: it could name another
			// key, another log, or --unsafe-allow-local.
			name: "pacman/config-writable-by-others",
			damage: func(t *testing.T) func() {
				p := filepath.Join(s.Root, "etc/bintrans.conf")
				if err := os.Chmod(p, 0o666); err != nil {
					t.Fatal(err)
				}
				return func() { os.Chmod(p, 0o644) }
			},
			lines: [][]string{{"bintrans: configuration /etc/bintrans.conf: refusing to use it as root: it is writable by its group and others", "mode 0666"},
				{"hint:", "chmod go-w /etc/bintrans.conf"}},
		},
		{
			name: "pacman/log-key-owned-by-a-user",
			damage: func(t *testing.T) func() {
				p := filepath.Join(s.Root, "etc/bintrans/log.pem")
				if err := os.Chown(p, 65534, 65534); err != nil {
					t.Fatal(err)
				}
				return func() { os.Chown(p, 0, 0) }
			},
			lines: [][]string{{"bintrans: --log-key: /etc/bintrans/log.pem: refusing to use it as root: it is not owned by root", "uid 65534"}},
		},
		{
			// A log that accepts connections and never answers: the run
			// deadline (2 s, under the 5 s per-request timeout) ends the
			// transaction.
			name: "pacman/log-hangs-past-the-deadline",
			damage: func(t *testing.T) func() {
				lg.SetLie(fakelog.LieHang)
				conf("deadline = 2s")
				return func() { lg.SetLie(fakelog.Honest); conf() }
			},
			lines: [][]string{{"REFUSED", alpha.filename, "unavailable", "run deadline of 2s exceeded (--deadline)"},
				{"bintrans: verification did not complete: run deadline of 2s exceeded (--deadline): transaction aborted"}},
			within: 30 * time.Second,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearCache(t, s.CacheDir)
			before := s.Installed(t)
			undo := tc.damage(t)
			defer undo()
			start := time.Now()
			res := s.Sync(t, nil, "alpha", "beta")
			took := time.Since(start)
			out := res.Stdout + res.Stderr
			t.Logf("pacman (%v):\n%s", took.Round(time.Millisecond), out)
			if res.Code == 0 || !strings.Contains(res.Stderr, "failed to run transaction hooks") {
				t.Fatalf("transaction not aborted by the hook:\n%s", res)
			}
			if after := s.Installed(t); !sameSet(before, after) {
				t.Errorf("pacman -Q changed: before %v, after %v", before, after)
			}
			for _, l := range tc.lines {
				if !lineWith(out, l...) {
					t.Errorf("no line with %q", l)
				}
			}
			if _, err := os.Stat(filepath.Join(s.Root, "usr/bin/backdoor")); err == nil {
				t.Error("the backdoor was installed")
			}
			if tc.within > 0 && took > tc.within {
				t.Errorf("the transaction took %v", took)
			}
		})
	}

	// Undamaged again, the same transaction goes through.
	clearCache(t, s.CacheDir)
	if res := s.Sync(t, nil, "alpha", "beta"); res.Code != 0 {
		t.Fatalf("honest transaction after the attacks failed:\n%s", res)
	}
}
