package gpgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// The helpers make what makepkg --sign and repo-add --sign make, and gpgv
// accepts them with the home's public key.
func TestSignaturesVerify(t *testing.T) {
	h := New(t, "Test Packager <test@example.org>")
	dir := t.TempDir()
	pkg := testenv.BuildPackage(t, dir, testenv.Pkg{Name: "gpgtest", Version: "1.0-1"})
	h.DetachSign(t, pkg)
	db := filepath.Join(dir, "test.db.tar.gz")
	h.RepoAddSign(t, db, pkg)
	link, err := os.Readlink(filepath.Join(dir, "test.db.sig"))
	if err != nil || link != "test.db.tar.gz.sig" {
		t.Errorf("repo-add --sign: test.db.sig -> %q, %v", link, err)
	}
	kr := filepath.Join(t.TempDir(), "keyring.gpg")
	if err := os.WriteFile(kr, h.Export(t), 0o644); err != nil {
		t.Fatal(err)
	}
	gpgv := testenv.Tool(t, "gpgv")
	for _, f := range []string{pkg, filepath.Join(dir, "test.db")} {
		if out, err := exec.Command(gpgv, "--keyring", kr, f+".sig", f).CombinedOutput(); err != nil {
			t.Errorf("gpgv %s: %v\n%s", f, err, out)
		}
	}
	other := New(t, "Other <other@example.org>")
	h.Import(t, other)
	h.Certify(t, other)
	h.Revoke(t, other)
}
