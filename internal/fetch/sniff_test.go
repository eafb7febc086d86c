package fetch

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// tarOf is a tar archive with the given regular files (name → content).
func tarOf(t testing.TB, files ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[i+1])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressed(t testing.TB, how string, b []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch how {
	case "plain":
		return b
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zstd":
		w, err = zstd.NewWriter(&buf)
	case "xz":
		w, err = xz.NewWriter(&buf)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckDatabase(t *testing.T) {
	db := tarOf(t, "foo-1.0-1/desc", "%FILENAME%\nfoo-1.0-1-any.pkg.tar.zst\n", "foo-1.0-1/files", "%FILES%\nusr/\n")
	pkg := tarOf(t, ".BUILDINFO", "x", ".MTREE", "x", ".PKGINFO", "pkgname = evil\n", "usr/bin/backdoor", "#!/bin/sh\n")
	dotSlash := tarOf(t, "./.PKGINFO", "pkgname = evil\n")
	for _, how := range []string{"plain", "gzip", "zstd", "xz"} {
		if err := CheckPassThrough(KindDatabase, bytes.NewReader(compressed(t, how, db))); err != nil {
			t.Errorf("%s database: %v", how, err)
		}
		for name, p := range map[string][]byte{"package": pkg, "./.PKGINFO": dotSlash} {
			var de *DisguisedPackageError
			if err := CheckPassThrough(KindDatabase, bytes.NewReader(compressed(t, how, p))); !errors.As(err, &de) {
				t.Errorf("%s %s: %v, want *DisguisedPackageError", how, name, err)
			}
		}
	}
	for name, b := range map[string][]byte{
		"lz4":       append([]byte{0x04, 0x22, 0x4d, 0x18}, make([]byte, 100)...),
		"zip":       []byte("PK\x03\x04 a zip archive libarchive could read"),
		"text":      []byte("not an archive"),
		"empty":     nil,
		"truncated": compressed(t, "gzip", pkg)[:40],
	} {
		var fe *FormatError
		if err := CheckPassThrough(KindDatabase, bytes.NewReader(b)); !errors.As(err, &fe) {
			t.Errorf("%s: %v, want *FormatError", name, err)
		}
	}
}

// TestCheckDatabaseRealTools: a repo-add database passes; a real package
// (bsdtar + zstd, as makepkg builds it) under a database name does not.
func TestCheckDatabaseRealTools(t *testing.T) {
	dir := t.TempDir()
	p := testenv.BuildPackage(t, dir, testenv.Pkg{Name: "evil", Version: "1.0-1", Files: map[string]string{"usr/bin/backdoor": "x"}})
	dbPath := filepath.Join(dir, "core.db.tar.gz")
	testenv.RepoAdd(t, dbPath, p)
	f, err := os.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := CheckPassThrough(KindDatabase, f); err != nil {
		t.Errorf("repo-add's database: %v", err)
	}
	g, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var de *DisguisedPackageError
	if err := CheckPassThrough(KindDatabase, g); !errors.As(err, &de) || de.Entry != ".PKGINFO" {
		t.Errorf("a package named like a database: %v", err)
	}
	g.Seek(0, io.SeekStart)
	var fe *FormatError
	if err := CheckPassThrough(KindSignature, g); !errors.As(err, &fe) {
		t.Errorf("a package named like a signature: %v", err)
	}
}

func TestBoundedReader(t *testing.T) {
	b := &boundedReader{r: bytes.NewReader(make([]byte, 100)), left: 10}
	n, err := io.Copy(io.Discard, b)
	if n != 10 || !errors.Is(err, errScanLimit) {
		t.Errorf("read %d, %v", n, err)
	}
}

func TestCheckSignature(t *testing.T) {
	body := func(n int) []byte {
		b := bytes.Repeat([]byte{0x42}, n)
		b[0] = 4 // version
		return b
	}
	good := map[string][]byte{
		"old 1-byte":       append([]byte{0x88, 10}, body(10)...),
		"old 2-byte":       append([]byte{0x89, 0x01, 0x10}, body(0x110)...),
		"old 4-byte":       append([]byte{0x8a, 0, 0, 0, 20}, body(20)...),
		"new 1-byte":       append([]byte{0xc2, 100}, body(100)...),
		"new 2-byte":       append([]byte{0xc2, 192, 8}, body(200)...),
		"new 5-byte":       append([]byte{0xc2, 255, 0, 0, 1, 0}, body(256)...),
		"two signatures":   append(append([]byte{0x88, 10}, body(10)...), append([]byte{0xc2, 5}, body(5)...)...),
		"version 3":        {0x88, 2, 3, 0},
		"version 6 (v6)":   {0xc2, 2, 6, 0},
		"exactly the size": append([]byte{0x89, 0x3f, 0xfd}, body(MaxSignatureSize-3)...),
	}
	for name, b := range good {
		if err := CheckPassThrough(KindSignature, bytes.NewReader(b)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := map[string][]byte{
		"empty":             nil,
		"not a packet":      []byte("-----BEGIN PGP SIGNATURE-----\n"),
		"gzip":              {0x1f, 0x8b, 8, 0},
		"zstd":              {0x28, 0xb5, 0x2f, 0xfd, 0},
		"xz":                {0xfd, '7', 'z', 'X', 'Z', 0},
		"lzop":              append([]byte{0x89, 'L', 'Z', 'O', 0, '\r', '\n', 0x1a, '\n'}, body(100)...),
		"public key packet": append([]byte{0x99, 0, 10}, body(10)...),
		"trailing byte":     append(append([]byte{0x88, 10}, body(10)...), 0),
		"truncated":         append([]byte{0x88, 10}, body(9)...),
		"version 7":         {0x88, 2, 7, 0},
		"zero length":       {0x88, 0},
		"partial length":    append([]byte{0xc2, 224}, body(1)...),
		"indeterminate":     append([]byte{0x8b}, body(10)...),
		"too large":         append([]byte{0x8a, 0, 0, 0x40, 0}, body(MaxSignatureSize)...),
	}
	for name, b := range bad {
		var fe *FormatError
		if err := CheckPassThrough(KindSignature, bytes.NewReader(b)); !errors.As(err, &fe) {
			t.Errorf("%s: %v, want *FormatError", name, err)
		}
	}
	if err := CheckPassThrough(KindPackage, bytes.NewReader(nil)); err == nil {
		t.Error("a package was passed through")
	}
}

// TestCheckSignatureRealGPG: detached signatures made by GnuPG (binary,
// one and two signers) pass.
func TestCheckSignatureRealGPG(t *testing.T) {
	gpg := testenv.Tool(t, "gpg")
	home := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
	}
	run("--quick-gen-key", "one <one@bintrans.invalid>", "ed25519", "sign", "never")
	run("--quick-gen-key", "two <two@bintrans.invalid>", "rsa2048", "sign", "never")
	data := filepath.Join(home, "core.db")
	if err := os.WriteFile(data, []byte("a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, signers := range map[string][]string{"ed25519": {"one"}, "two signers": {"one", "two"}} {
		sig := filepath.Join(home, name+".sig")
		args := []string{"--detach-sign", "--output", sig}
		for _, s := range signers {
			args = append(args, "--local-user", s)
		}
		run(append(args, data)...)
		b, err := os.ReadFile(sig)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPassThrough(KindSignature, bytes.NewReader(b)); err != nil {
			t.Errorf("%s: gpg's signature refused: %v (% x…)", name, err, b[:min(8, len(b))])
		}
	}
}
