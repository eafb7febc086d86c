// Package gpgtest gives tests real GnuPG packager keys: a fresh GNUPGHOME
// with a generated key (no passphrase), detached signatures made exactly
// as makepkg --sign makes them, databases signed by the real repo-add
// --sign, and keys imported into another keyring untrusted.
//
// Every home lives in a short temporary directory (gpg-agent's socket path
// must fit in 108 bytes) and is removed, its agent stopped by
// `gpgconf --homedir DIR --kill all`, when the test ends.
package gpgtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// T is what the helpers need from a test: a *testing.T, or an adapter for
// a testscript command (Fatalf, and Cleanup as the script's Defer).
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// tool finds a program: through testenv.Tool for a testing.TB (skipped,
// or failed under CI, when missing), else in $PATH or fatally.
func tool(t T, name string) string {
	t.Helper()
	if tb, ok := t.(testing.TB); ok {
		return testenv.Tool(tb, name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("gpgtest: %s: %v", name, err)
	}
	return p
}

// Home is a GnuPG home directory holding one secret key of its own.
type Home struct {
	// Dir is the GNUPGHOME: pubring.kbx and trustdb.gpg, what
	// bintrans sign --keyring reads.
	Dir string
	// Fingerprint is the key's primary fingerprint (upper-case hex).
	Fingerprint string
	// UID is the key's user id.
	UID string
	gpg string
}

// New creates a home with a fresh ed25519 signing key for uid (e.g.
// "Packager One <one@example.org>"); the key is ultimately trusted in its
// own home, as the owner's key is.
func New(t T, uid string) *Home {
	t.Helper()
	gpg := tool(t, "gpg")
	dir, err := os.MkdirTemp("", "gpgt-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatalf("%v", err)
	}
	h := &Home{Dir: dir, UID: uid, gpg: gpg}
	t.Cleanup(func() {
		if gc, err := exec.LookPath("gpgconf"); err == nil {
			cmd := exec.Command(gc, "--homedir", dir, "--kill", "all")
			cmd.Env = h.env()
			_ = cmd.Run()
		}
		os.RemoveAll(dir)
	})
	h.run(t, nil, "--quick-gen-key", uid, "ed25519", "sign", "never")
	out := h.run(t, nil, "--with-colons", "--list-secret-keys", uid)
	m := regexp.MustCompile(`(?m)^fpr:+([0-9A-F]{40,64}):`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("gpgtest: no fingerprint in\n%s", out)
	}
	h.Fingerprint = string(m[1])
	return h
}

func (h *Home) env() []string {
	env := []string{"GNUPGHOME=" + h.Dir, "LC_ALL=C"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GNUPGHOME=") && !strings.HasPrefix(kv, "LC_ALL=") {
			env = append(env, kv)
		}
	}
	return env
}

// run runs gpg in the home, non-interactively, and returns stdout.
func (h *Home) run(t T, stdin []byte, args ...string) []byte {
	t.Helper()
	base := []string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}
	cmd := exec.Command(h.gpg, append(base, args...)...)
	cmd.Env = h.env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// DetachSign writes path+".sig" as makepkg --sign does (create_signature:
// gpg --detach-sign --use-agent --no-armor FILE, with -u KEY) and returns
// the signature's bytes.
func (h *Home) DetachSign(t T, path string) []byte {
	t.Helper()
	os.Remove(path + ".sig")
	h.run(t, nil, "--detach-sign", "--use-agent", "-u", h.Fingerprint, "--no-armor", path)
	b, err := os.ReadFile(path + ".sig")
	if err != nil {
		t.Fatalf("%v", err)
	}
	return b
}

// RepoAddSign adds packages to dbPath with the real repo-add --sign
// (which signs the database with gpg --detach-sign --use-agent -u KEY,
// writing <db>.sig and the <repo>.db.sig symlink) as this home's key, and
// --verify (repo-add checks the database's existing signature first).
func (h *Home) RepoAddSign(t T, dbPath string, pkgPaths ...string) {
	t.Helper()
	repoAdd := tool(t, "repo-add")
	tool(t, "bsdtar")
	args := append([]string{"--nocolor", "-q", "--sign", "--key", h.Fingerprint, dbPath}, pkgPaths...)
	cmd := exec.Command(repoAdd, args...)
	cmd.Env = append(h.env(), "LANG=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("repo-add %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if _, err := os.Stat(dbPath + ".sig"); err != nil {
		t.Fatalf("repo-add --sign wrote no signature: %v\n%s", err, out)
	}
}

// Export returns the public key (binary).
func (h *Home) Export(t T) []byte {
	t.Helper()
	return h.run(t, nil, "--export", h.Fingerprint)
}

// Import adds other's public key to this home's keyring. It is not
// trusted: no key of this keyring certifies it, so GnuPG's web of trust
// (and pacman) consider it unknown until Certify.
func (h *Home) Import(t T, other *Home) {
	t.Helper()
	h.run(t, other.Export(t), "--import")
}

// Certify makes this home's key vouch for other's (already imported) key
// with a local signature, as pacman-key --lsign-key does: the key becomes
// fully valid in this keyring.
func (h *Home) Certify(t T, other *Home) {
	t.Helper()
	h.run(t, nil, "--quick-lsign-key", other.Fingerprint)
	h.run(t, nil, "--check-trustdb")
}

// Keyring returns a directory that holds only the public keyring and the
// trust database of this home (no secret key): what an operator's
// --keyring holds.
func (h *Home) Keyring(t T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gpgt-keyring-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, name := range []string{"pubring.kbx", "pubring.gpg", "trustdb.gpg"} {
		b, err := os.ReadFile(filepath.Join(h.Dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatalf("%v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return dir
}

// Revoke imports other's revocation certificate (the one gpg wrote when
// it generated the key) into this home's keyring: other's key is revoked
// here.
func (h *Home) Revoke(t T, other *Home) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(other.Dir, "openpgp-revocs.d", other.Fingerprint+".rev"))
	if err != nil {
		t.Fatalf("%v", err)
	}
	// gpg writes the certificate with its armor header line prefixed by
	// ":" so that it is not imported by accident.
	b = bytes.Replace(b, []byte(":-----BEGIN PGP PUBLIC KEY BLOCK-----"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"), 1)
	h.run(t, b, "--import")
}
