package fetch

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz/lzma"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// pkgTar is a minimal package as a plain tar: what libalpm needs to load
// one (.PKGINFO) and a payload.
func pkgTar() []byte {
	return tarcorpus.Cat(tarcorpus.File(".PKGINFO", "pkgname = evil\npkgver = 1.0-1\narch = any\nsize = 10\n"),
		tarcorpus.Dir("usr/"), tarcorpus.Dir("usr/bin/"), tarcorpus.File("usr/bin/backdoor", "#!/bin/sh\necho pwned\n"), tarcorpus.End())
}

// strictDB is a database as repo-add writes it, compressed with how.
func strictDB(t testing.TB, how string, files bool) []byte {
	t.Helper()
	if how == "bzip2" {
		var b bytes.Buffer
		if err := repodbtest.Generate(&b, 3, repodbtest.Options{Compression: "none", Files: files, NoPGPSig: true}); err != nil {
			t.Fatal(err)
		}
		out, err := tarcorpus.Compress(b.Bytes(), "bzip2")
		if err != nil {
			t.Skip(err)
		}
		return out
	}
	var b bytes.Buffer
	if err := repodbtest.Generate(&b, 3, repodbtest.Options{Compression: how, Files: files, NoPGPSig: true}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func compress(t testing.TB, b []byte, how string) []byte {
	t.Helper()
	out, err := tarcorpus.Compress(b, how)
	if err != nil {
		t.Skip(err)
	}
	return out
}

func TestCheckDatabase(t *testing.T) {
	for _, how := range tarcorpus.Compressions {
		for _, files := range []bool{false, true} {
			if err := CheckPassThrough(KindDatabase, bytes.NewReader(strictDB(t, how, files))); err != nil {
				t.Errorf("%s files=%v: %v", how, files, err)
			}
		}
		var de *DisguisedPackageError
		if err := CheckPassThrough(KindDatabase, bytes.NewReader(compress(t, pkgTar(), how))); !errors.As(err, &de) || de.Entry != ".PKGINFO" {
			t.Errorf("%s package: %v, want *DisguisedPackageError for .PKGINFO", how, err)
		}
	}
	// Anything that is not a strict sync database is refused, whatever
	// it is: libalpm reads every libarchive format.
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create(".PKGINFO")
	io.WriteString(w, "pkgname = evil\n")
	zw.Close()
	for name, b := range map[string][]byte{
		"zip":                 zipped.Bytes(),
		"lz4":                 append([]byte{0x04, 0x22, 0x4d, 0x18}, make([]byte, 100)...),
		"text":                []byte("not an archive"),
		"empty":               nil,
		"./.PKGINFO":          compress(t, tarcorpus.Cat(tarcorpus.File("./.PKGINFO", "pkgname = evil\n"), tarcorpus.End()), "gzip"),
		"gnu tar package":     tarcorpus.Cat(tarcorpus.FileH(tarcorpus.Hdr{Name: ".PKGINFO", Magic: "ustar ", Version: " \x00"}, "pkgname = evil\n"), tarcorpus.End()),
		"truncated":           compress(t, pkgTar(), "gzip")[:40],
		"b7 files override":   compress(t, tarcorpus.DBCases()[7].Data, "zstd"),
		"two-faced pax and L": compress(t, dbCase(t, "pax-path-then-L"), "gzip"),
	} {
		var fe *FormatError
		if err := CheckPassThrough(KindDatabase, bytes.NewReader(b)); !errors.As(err, &fe) {
			t.Errorf("%s: %v, want *FormatError", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func dbCase(t testing.TB, name string) []byte {
	for _, c := range tarcorpus.DBCases() {
		if c.Name == name {
			return c.Data
		}
	}
	t.Fatalf("no db case %q", name)
	return nil
}

// TestCheckDatabaseRealTools: databases written by repo-add pass, in every
// compression, .db and .files; a real package (bsdtar + zstd, as makepkg
// builds it) under a database name does not.
func TestCheckDatabaseRealTools(t *testing.T) {
	dir := t.TempDir()
	p := testenv.BuildPackage(t, dir, testenv.Pkg{Name: "evil", Version: "1.0-1", Files: map[string]string{"usr/bin/backdoor": "x"}})
	for _, ext := range []string{".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tar"} {
		sub := filepath.Join(dir, strings.ReplaceAll(ext, ".", "_"))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.RepoAdd(t, filepath.Join(sub, "core.db"+ext), p)
		for _, name := range []string{"core.db", "core.files"} {
			f, err := os.Open(filepath.Join(sub, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckPassThrough(KindDatabase, f); err != nil {
				t.Errorf("repo-add's %s (%s): %v", name, ext, err)
			}
			f.Close()
		}
	}
	g, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var de *DisguisedPackageError
	if err := CheckPassThrough(KindDatabase, g); !errors.As(err, &de) || !packageMetadata[de.Entry] {
		t.Errorf("a package named like a database: %v", err)
	}
	g.Seek(0, io.SeekStart)
	var fe *FormatError
	if err := CheckPassThrough(KindSignature, g); !errors.As(err, &fe) {
		t.Errorf("a package named like a signature: %v", err)
	}
}

// sigPacket wraps body in one old-format signature packet with a 2-byte
// length (what gpg writes): 0x89, length, then body (whose first byte is
// the signature version).
func sigPacket(body []byte) []byte {
	return append([]byte{0x89, byte(len(body) >> 8), byte(len(body))}, body...)
}

// zipInSignature is a signature packet whose body, after the version
// byte, is a zip archive of a package: libarchive's seekable zip reader
// finds its end-of-central-directory record at the end of the file.
func zipInSignature(t testing.TB) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	for _, f := range [][2]string{{".PKGINFO", "pkgname = evil\npkgver = 1.0-1\narch = any\nsize = 10\n"}, {"usr/bin/backdoor", "#!/bin/sh\necho pwned\n"}} {
		w, err := zw.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f[1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return sigPacket(append([]byte{4}, z.Bytes()...))
}

// tarInSignature is one signature packet that is also a tar archive of a
// package: the packet header (0x89, length, version 4) is the name of a
// first, empty entry, and the checksums are valid.
func tarInSignature(t testing.TB) []byte {
	t.Helper()
	rest := pkgTar()
	n := 512 + len(rest) - 3 // the packet's length
	first := tarcorpus.Hdr{Name: string([]byte{0x89, byte(n >> 8), byte(n), 4})}.Block()
	return append(first, rest...)
}

// lzmaInSignature is one old-format signature packet with a 4-byte length
// whose header is also a raw LZMA stream header: 0x8a (LZMA properties
// lc=3 lp=0 pb=3) and 00 00 01 00 (length 256 to OpenPGP, a 64 KiB
// dictionary to LZMA), then the version byte 4, which is the low byte of
// the LZMA stream's size, and the compressed package.
func lzmaInSignature(t testing.TB) []byte {
	t.Helper()
	data := pkgTar()
	data = append(data, make([]byte, (4-len(data)%256+256)%256)...) // size ≡ 4 (the version) mod 256
	for dict := 1 << 16; dict <= 1<<21; dict <<= 1 {
		var out bytes.Buffer
		w, err := lzma.WriterConfig{Properties: &lzma.Properties{LC: 3, LP: 0, PB: 3}, DictCap: dict, Size: int64(len(data))}.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		b := out.Bytes()
		plen := dict >> 8
		if b[0] != 0x8a || b[5] != 4 || len(b) > 5+plen {
			continue
		}
		return append(b, make([]byte, 5+plen-len(b))...)
	}
	t.Fatal("the package does not compress into a signature-sized LZMA stream")
	return nil
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
		"PK without EOCD":  append([]byte{0x88, 10, 4, 'P', 'K', 3, 4}, bytes.Repeat([]byte{0x42}, 5)...),
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
		// Signature packets on the outside, an archive to libarchive.
		"zip inside":  zipInSignature(t),
		"tar header":  tarInSignature(t),
		"lzma header": lzmaInSignature(t),
	}
	for name, b := range bad {
		var fe *FormatError
		if err := CheckPassThrough(KindSignature, bytes.NewReader(b)); !errors.As(err, &fe) {
			t.Errorf("%s: %v, want *FormatError", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	for name, b := range map[string][]byte{"zip inside": zipInSignature(t), "tar header": tarInSignature(t), "lzma header": lzmaInSignature(t)} {
		if err := checkSignaturePackets(b); err != nil {
			t.Errorf("%s is not even a valid packet sequence (%v): the case proves nothing", name, err)
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
	run("--quick-gen-key", "three <three@bintrans.invalid>", "rsa4096", "sign", "never")
	data := filepath.Join(home, "core.db")
	if err := os.WriteFile(data, []byte("a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, signers := range map[string][]string{"ed25519": {"one"}, "two signers": {"one", "two"}, "rsa4096": {"three"}} {
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
