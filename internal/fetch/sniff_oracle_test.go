package fetch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/laoracle"
	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// passThroughAgrees checks the pass-through rule against the real
// libarchive, opened as libalpm opens a package: a file CheckPassThrough
// lets through is not an archive at all (a signature) or holds no package
// metadata (a database).
func passThroughAgrees(t *testing.T, o *laoracle.Oracle, k Kind, data []byte) bool {
	t.Helper()
	if CheckPassThrough(k, bytes.NewReader(data)) != nil {
		return false
	}
	la, err := o.List(data)
	if err != nil {
		t.Fatal(err)
	}
	switch k {
	case KindSignature:
		if len(la.Entries) > 0 || !strings.Contains(la.Problem, "Unrecognized archive format") {
			t.Fatalf("passed a signature libarchive reads as an archive:\n%s", la)
		}
	case KindDatabase:
		for _, e := range la.Entries {
			if packageMetadata[e.Name] || !strings.Contains(e.Format, "ustar") {
				t.Fatalf("passed a database in which libarchive finds %q (%s):\n%s", e.Name, e.Format, la)
			}
		}
	}
	return true
}

// TestSignatureArchivesLibarchive: each way of hiding a package in
// signature packets is read as a package by the real libarchive (so the
// packet check alone would have passed a package to pacman), and is
// refused; real GnuPG signatures are no archive to libarchive and pass.
func TestSignatureArchivesLibarchive(t *testing.T) {
	o := laoracle.Get(t)
	for name, sig := range map[string][]byte{"zip inside": zipInSignature(t), "tar header": tarInSignature(t), "lzma header": lzmaInSignature(t)} {
		t.Run(name, func(t *testing.T) {
			if err := checkSignaturePackets(sig); err != nil {
				t.Fatalf("not a valid packet sequence: %v", err)
			}
			la, err := o.List(sig)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range la.Entries {
				found = found || e.Name == ".PKGINFO"
			}
			if !la.Accepted || !found {
				t.Fatalf("libarchive does not read a package from it, the case proves nothing:\n%s", la)
			}
			t.Logf("libarchive reads it as a package:\n%s", la)
			if passThroughAgrees(t, o, KindSignature, sig) {
				t.Fatal("passed through")
			}
		})
	}
	gpg := testenv.Tool(t, "gpg")
	home := t.TempDir()
	gpgRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
	}
	gpgRun("--quick-gen-key", "one <one@bintrans.invalid>", "rsa4096", "sign", "never")
	data := filepath.Join(home, "core.db")
	if err := os.WriteFile(data, []byte("a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	gpgRun("--detach-sign", "--output", data+".sig", data)
	sig, err := os.ReadFile(data + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	if !passThroughAgrees(t, o, KindSignature, sig) {
		t.Fatal("gpg's signature refused")
	}
}

// TestDatabasesLibarchive: every database of the corpus and a package, in
// every compression: what passes through holds no package for libarchive.
func TestDatabasesLibarchive(t *testing.T) {
	o := laoracle.Get(t)
	cases := append(tarcorpus.DBCases(), tarcorpus.Case{Name: "package", Data: pkgTar()})
	for _, c := range cases {
		for _, how := range tarcorpus.Compressions {
			data := compress(t, c.Data, how)
			if got := passThroughAgrees(t, o, KindDatabase, data); got != c.Accept {
				t.Errorf("%s/%s: passed through = %v, want %v", c.Name, how, got, c.Accept)
			}
		}
	}
}

// FuzzPassThroughLibarchive: open-ended, against the real libarchive. The
// input is the body of one signature packet (the first byte picks the
// packet header encoding), so that every input is a valid packet sequence
// and the fuzzer explores what libarchive could bid on; and the same
// bytes are tried as a database.
func FuzzPassThroughLibarchive(f *testing.F) {
	f.Add([]byte{0, 4, 1, 2, 3})
	f.Add(append([]byte{1}, zipInSignature(f)[4:]...))
	f.Add(append([]byte{2}, lzmaInSignature(f)[6:]...))
	f.Add(pkgTar())
	for _, c := range tarcorpus.DBCases()[:8] {
		f.Add(c.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || len(data) > MaxSignatureSize-8 {
			return
		}
		body := append([]byte{4}, data[1:]...)
		var sig []byte
		switch data[0] % 4 {
		case 0:
			sig = sigPacket(body)
		case 1:
			sig = append([]byte{0x8a, 0, 0, byte(len(body) >> 8), byte(len(body))}, body...)
		case 2:
			sig = append([]byte{0xc2, 255, 0, 0, byte(len(body) >> 8), byte(len(body))}, body...)
		case 3:
			sig = append([]byte{0xc2, byte((len(body)-192)>>8) + 192, byte(len(body) - 192)}, body...)
			if len(body) < 192 || len(body) > 8383 {
				sig = sigPacket(body)
			}
		}
		o := laoracle.Get(t)
		passThroughAgrees(t, o, KindSignature, sig)
		passThroughAgrees(t, o, KindDatabase, data)
	})
}
