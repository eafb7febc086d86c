package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bintrans/bintrans/internal/signer"
)

// The packager's side of the data set: a GnuPG key that releases the
// databases (repo-add --sign's gpg --detach-sign) and, for the release
// measurement, the main batch's packages (makepkg --sign's).

// gpgRun runs gpg in the bench's packager home.
func (b *bench) gpgRun(args ...string) error {
	cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+b.gnupg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gpg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// packagerKey creates the packager's GnuPG home (cached with the data).
func (b *bench) packagerKey() error {
	b.gnupg = filepath.Join(b.root, "keys", "gnupg")
	if _, err := os.Stat(filepath.Join(b.gnupg, "trustdb.gpg")); err == nil {
		return nil
	}
	if err := os.MkdirAll(b.gnupg, 0o700); err != nil {
		return err
	}
	return b.gpgRun("--quick-gen-key", "bintrans-bench packager <bench@example.org>", "ed25519", "sign", "never")
}

// detachSign writes sig, a detached binary signature of path, as makepkg
// and repo-add make them.
func (b *bench) detachSign(path, sig string) error {
	os.Remove(sig)
	return b.gpgRun("--detach-sign", "--no-armor", "-o", sig, path)
}

// stopAgent stops the gpg-agent the signatures started.
func (b *bench) stopAgent() {
	if b.gnupg != "" {
		cmd := exec.Command("gpgconf", "--homedir", b.gnupg, "--kill", "all")
		_ = cmd.Run()
	}
}

// release: the cost of sign's per-package release check (--release-
// signatures package: each package's detached signature verified with
// GnuPG while its sha256 is computed, one package at a time), next to
// openssl dgst -sha256 of the same files, the floor of reading them.
func (b *bench) release() error {
	files := b.core.paths()
	sigDir := filepath.Join(b.root, "release-sigs")
	if err := os.MkdirAll(sigDir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		sig := filepath.Join(sigDir, filepath.Base(f)+".sig")
		if _, err := os.Stat(sig); err == nil {
			continue
		}
		if err := b.detachSign(f, sig); err != nil {
			return err
		}
	}
	res, err := b.rounds([]contender{
		{"release-verify", b.proc(runSpec{Name: b.self, Args: append([]string{"relverify", b.gnupg, sigDir}, files...)})},
		{"openssl", b.proc(runSpec{Name: "openssl", Args: append([]string{"dgst", "-sha256"}, files...)})},
	})
	if err != nil {
		return err
	}
	b.rep.release, b.rep.releaseN, b.rep.releaseBytes = res, len(files), b.core.Bytes
	return nil
}

// relverify is `bintrans-bench relverify KEYRING SIGDIR FILE…`: what sign
// does for each package under --release-signatures package (its
// signer.Keyring, the sha256 computed from the same stream), one file at a
// time.
func relverify(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bintrans-bench relverify KEYRING SIGDIR FILE…")
		return 2
	}
	k, err := signer.OpenKeyring(args[0], "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "relverify:", err)
		return 1
	}
	defer k.Close()
	for _, path := range args[2:] {
		sig, err := os.ReadFile(filepath.Join(args[1], filepath.Base(path)+".sig"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "relverify:", err)
			return 1
		}
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "relverify:", err)
			return 1
		}
		h := sha256.New()
		_, err = k.Verify(context.Background(), filepath.Base(path), sig, io.TeeReader(f, h))
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "relverify:", err)
			return 1
		}
	}
	return 0
}
