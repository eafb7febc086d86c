package adversarial

// Parser differentials through the real pacman 6.0.2 (issue 16, bypasses
// 1 and 3): databases and downloads that libalpm reads differently from a
// careless reader. Every attack first runs without bintrans, as a control:
// pacman installs the unlogged file, so the case is a real attack; then
// with bintrans (the hook, or fetch as XferCommand) it is refused, nothing
// is installed, and the message names the file and the reason.

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/tarcorpus"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/ustar"
	"github.com/bintrans/bintrans/verify"
)

// parserWorld is a sandbox whose repository core holds foo 1.0-1 and
// bar 2.0-1, logged in a fake log, and serves foo-1.0-1-evil.pkg.tar.zst:
// an unlogged foo 1.0-1 that installs /usr/bin/backdoor. The hook and
// XferCommand are off until a test turns them on.
type parserWorld struct {
	s        *testenv.Sandbox
	lg       *fakelog.Log
	k        key
	hookText string
	foo      *sandboxPkg
	evil     *sandboxPkg
	fetchCmd string // XferCommand running bintrans fetch with the world's policy
}

const evilFile = "foo-1.0-1-evil.pkg.tar.zst"

func newParserWorld(t *testing.T) *parserWorld {
	t.Helper()
	s := testenv.NewSandbox(t, "core")
	w := &parserWorld{s: s, lg: fakelog.New(t), k: newKey(t)}
	bin := bintransBinary(t)
	sigs := filepath.Join(s.WWW, "sigs")
	if err := os.MkdirAll(sigs, 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range []testenv.Pkg{
		{Name: "foo", Version: "1.0-1", Files: map[string]string{"usr/share/doc/foo/README": "foo\n"}},
		{Name: "bar", Version: "2.0-1", Files: map[string]string{"usr/share/doc/bar/README": "bar\n"}},
	} {
		path := testenv.BuildPackage(t, s.RepoDir("core"), p)
		sp := readPkg(t, p, path)
		tf, err := verify.SignPackage(w.k.sk, sp.sha256, sp.filename)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := verify.ParseSignature(tf)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(sigs, sp.filename+verify.SignatureSuffix), tf)
		writeFile(t, filepath.Join(sigs, sp.filename+verify.BundleSuffix), bundleOf(t, w.lg.Add(rekorv1.CanonicalBody(sig, w.k.pk, []byte(sp.sha256)))))
		paths = append(paths, path)
		if p.Name == "foo" {
			w.foo = sp
		}
	}
	testenv.RepoAdd(t, s.RepoDB("core"), paths...)
	evil := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: "foo", Version: "1.0-1",
		Files: map[string]string{"usr/bin/backdoor": "#!/bin/sh\necho pwned\n"}})
	b, err := os.ReadFile(evil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.RepoDir("core"), evilFile), b)
	w.evil = &sandboxPkg{name: "foo", version: "1.0-1", filename: evilFile, sha256: sum(b), content: b}

	hook, err := os.ReadFile("../../../hooks/bintrans.hook")
	if err != nil {
		t.Fatal(err)
	}
	w.hookText = string(hook)
	s.CopyIntoRoot(t, bin, "/usr/bin/bintrans")
	s.InstallFile(t, "/etc/bintrans/log.pem", w.lg.KeyPEM, 0o644)
	conf := []string{"pubkey = " + w.k.pk.Base64(), "transparency-url = " + s.URL + "/sigs", "log-url = " + w.lg.URL,
		"log-key = /etc/bintrans/log.pem", "state-dir = /var/lib/bintrans", "timeout = 5s"}
	s.InstallFile(t, "/etc/bintrans.conf", []byte(strings.Join(conf, "\n")+"\n"), 0o644)

	// fetch runs on the host, not chrooted: host paths, and an empty
	// --config so that the host's /etc/bintrans.conf cannot leak in.
	empty := filepath.Join(s.Dir, "empty.conf")
	logKey := filepath.Join(s.Dir, "log.pem")
	writeFile(t, empty, nil)
	writeFile(t, logKey, w.lg.KeyPEM)
	w.fetchCmd = strings.Join([]string{bin, "fetch", "-O", "%o", "%u", "--config", empty, "--transparency-url", s.URL + "/sigs",
		"--pubkey", w.k.pk.Base64(), "--log-url", w.lg.URL, "--log-key", logKey, "--state-dir", filepath.Join(s.Dir, "fetch-state"), "-v"}, " ")
	return w
}

func readPkg(t *testing.T, p testenv.Pkg, path string) *sandboxPkg {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &sandboxPkg{name: p.Name, version: p.Version, filename: filepath.Base(path), path: path, sha256: sum(b), content: b}
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setHook installs or removes the bintrans hook.
func (w *parserWorld) setHook(t *testing.T, on bool) {
	t.Helper()
	p := filepath.Join(w.s.HookDir, "bintrans.hook")
	if on {
		w.s.InstallHook(t, "bintrans", w.hookText)
		return
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// setFetch makes bintrans fetch pacman's XferCommand, or pacman's own
// downloader the one.
func (w *parserWorld) setFetch(t *testing.T, on bool) {
	t.Helper()
	if on {
		w.s.SetOption(t, "XferCommand", w.fetchCmd)
		return
	}
	b, err := os.ReadFile(w.s.Conf)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "XferCommand") {
			kept = append(kept, l)
		}
	}
	writeFile(t, w.s.Conf, []byte(strings.Join(kept, "\n")))
}

// serveDB replaces what the mirror serves as core.db.
func (w *parserWorld) serveDB(t *testing.T, b []byte) {
	t.Helper()
	p := filepath.Join(w.s.RepoDir("core"), "core.db")
	os.Remove(p)
	writeFile(t, p, b)
}

// genuineTar is repo-add's core database as a tar stream without its end
// marker, ready for more members.
func (w *parserWorld) genuineTar(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(w.s.RepoDB("core"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	// Walk the headers (plain ustar, as repo-add writes) to the end marker.
	off := 0
	for off+512 <= len(raw) && !bytes.Equal(raw[off:off+512], make([]byte, 512)) {
		var size int64
		fmt.Sscanf(strings.TrimRight(string(raw[off+124:off+136]), " \x00"), "%o", &size)
		off += 512 + int(size+511)/512*512
	}
	return raw[:off]
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// attempt runs `pacman -Syy name` after clearing the cache and returns the
// result, the installed set before and after, and whether the backdoor
// landed in the root.
func (w *parserWorld) attempt(t *testing.T, name string) (res testenv.PacmanResult, before, after map[string]string, backdoor bool) {
	t.Helper()
	clearCache(t, w.s.CacheDir)
	before = w.s.Installed(t)
	res = w.s.Sync(t, nil, name)
	after = w.s.Installed(t)
	_, err := os.Stat(filepath.Join(w.s.Root, "usr/bin/backdoor"))
	return res, before, after, err == nil
}

// uninstall removes name again (after a control run installed it).
func (w *parserWorld) uninstall(t *testing.T, name string) {
	t.Helper()
	if res := w.s.Pacman(t, nil, "-R", name); res.Code != 0 {
		t.Fatalf("pacman -R %s: %s", name, res)
	}
}

// TestPacmanTwoFacedDatabase: sync databases that libalpm reads one way and
// a careless reader another (bypass 1: a pax path next to a GNU long name;
// a "ustar" magic with another sixth byte; a regular file named "dir/"
// whose body libarchive reads as headers) or that use libalpm's own
// leniency (B7: a files member carrying %FILENAME% and %SHA256SUM%). Each
// points foo 1.0-1 at the unlogged foo-1.0-1-evil.pkg.tar.zst. Without
// bintrans pacman installs it; with the hook, the transaction is aborted
// before anything is installed, and the hook names the database, the
// member and the reason.
func TestPacmanTwoFacedDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("real pacman transactions")
	}
	w := newParserWorld(t)
	override := "%FILENAME%\n" + evilFile + "\n\n%SHA256SUM%\n" + w.evil.sha256 + "\n\n"
	smuggled := tarcorpus.File("foo-1.0-1/files", "%FILES%\n\n"+override)
	for _, tc := range []struct {
		name, member, reason string
		hostile              []byte
	}{
		{"pax-path-and-gnu-long-name", "././@LongLink", "GNU long name",
			tarcorpus.Cat(tarcorpus.Pax("path", "foo-1.0-1/files"), tarcorpus.Ext('L', "././@LongLink", []byte("bar-2.0-1/files\x00")), tarcorpus.File("bar-2.0-1/files", override))},
		{"ustar-magic-with-sixth-byte", "foo-1.0-1/bar-2.0-1/files", `magic and version "ustarX00"`,
			tarcorpus.FileH(tarcorpus.Hdr{Name: "bar-2.0-1/files", Prefix: "foo-1.0-1", Magic: "ustarX"}, override)},
		{"regular-file-named-dir-smuggles-member", "bar-2.0-1/", "regular file whose name ends in",
			tarcorpus.Cat(tarcorpus.Hdr{Name: "bar-2.0-1/", Size: int64(len(smuggled))}.Block(), smuggled)},
		{"b7-files-member-overrides-desc", "foo-1.0-1/files", "files line 1: %FILENAME%: unknown field",
			tarcorpus.File("foo-1.0-1/files", override)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := gz(t, tarcorpus.Record(tarcorpus.Cat(w.genuineTar(t), tc.hostile, tarcorpus.End())))
			w.serveDB(t, db)

			// Control: pacman alone installs the unlogged file.
			w.setHook(t, false)
			res, _, after, backdoor := w.attempt(t, "foo")
			if res.Code != 0 || after["foo"] != "1.0-1" || !backdoor {
				t.Fatalf("control: pacman did not install the evil foo, so the case proves nothing:\n%s", res)
			}
			w.uninstall(t, "foo")

			// With the hook: refused.
			w.setHook(t, true)
			res, before, after, backdoor := w.attempt(t, "foo")
			out := res.Stdout + res.Stderr
			t.Logf("pacman:\n%s", out)
			if res.Code == 0 || !strings.Contains(res.Stderr, "failed to run transaction hooks") {
				t.Fatalf("transaction not aborted by the hook:\n%s", res)
			}
			if !sameSet(before, after) || backdoor {
				t.Errorf("installed something: before %v, after %v, backdoor %v", before, after, backdoor)
			}
			if !lineWith(out, "bintrans: sync database of [core]", fmt.Sprintf("%q", tc.member), tc.reason) {
				t.Errorf("no line naming core's database, member %q and %q", tc.member, tc.reason)
			}
			if !lineWith(out, "hint: this database is not what repo-add writes") {
				t.Error("no hint to distrust the mirror")
			}
		})
	}

	// The genuine database again: the logged foo installs.
	w.serveDB(t, gz(t, tarcorpus.Record(tarcorpus.Cat(w.genuineTar(t), tarcorpus.End()))))
	res, _, after, backdoor := w.attempt(t, "foo")
	if res.Code != 0 || after["foo"] != "1.0-1" || backdoor {
		t.Fatalf("the genuine foo did not install:\n%s", res)
	}
}

// packageEntries lists a package built by testenv.BuildPackage (a zstd'ed
// tar): name, typeflag, content.
func packageEntries(t *testing.T, path string) [][3]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := ustar.NewReader(bytes.NewReader(raw), ustar.Limits{})
	var out [][3]string
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [3]string{h.Name, string(h.Typeflag), string(c)})
	}
}

// TestFetchDisguisedPackages: bintrans fetch as XferCommand (bypass 3). A
// hostile database lists a package under a name fetch passes through
// unverified, its content dressed up so that a careless check takes it for
// what the name says: evil.db, a package whose .PKGINFO is named by a pax
// path while a GNU long name gives Go's archive/tar another name;
// evil.sig, OpenPGP signature packets with the package as a zip inside
// (libarchive's seekable zip reader finds the end-of-central-directory
// record). repo-add accepts both (it reads packages with libarchive), and
// pacman alone installs them; through bintrans fetch both are refused and
// nothing is installed.
func TestFetchDisguisedPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("real pacman transactions")
	}
	w := newParserWorld(t)
	built := testenv.BuildPackage(t, t.TempDir(), testenv.Pkg{Name: "evil", Version: "1.0-1",
		Files: map[string]string{"usr/bin/backdoor": "#!/bin/sh\necho pwned\n"}})
	ents := packageEntries(t, built)

	// evil.db: the package as a tar whose .PKGINFO hides behind a GNU
	// long name (what Go's archive/tar reports) and a pax path (what
	// libarchive reports).
	var twoFaced []byte
	for _, e := range ents {
		switch {
		case e[0] == ".PKGINFO":
			twoFaced = append(twoFaced, tarcorpus.Cat(tarcorpus.Pax("path", ".PKGINFO"),
				tarcorpus.Ext('L', "././@LongLink", []byte("usr/share/doc/evil/notes\x00")),
				tarcorpus.File("usr/share/doc/evil/notes", e[2]))...)
		case e[1] == "5":
			twoFaced = append(twoFaced, tarcorpus.Dir(e[0])...)
		default:
			twoFaced = append(twoFaced, tarcorpus.File(e[0], e[2])...)
		}
	}
	evilDB := gz(t, tarcorpus.Record(tarcorpus.Cat(twoFaced, tarcorpus.End())))

	// evil.sig: one signature packet (old format, 2-byte length, version
	// 4) whose body is the package as a zip.
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	for _, e := range ents {
		if e[1] == "5" {
			if _, err := zw.Create(e[0]); err != nil {
				t.Fatal(err)
			}
			continue
		}
		f, err := zw.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(f, e[2])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	body := append([]byte{4}, z.Bytes()...)
	evilSig := append([]byte{0x89, byte(len(body) >> 8), byte(len(body))}, body...)
	if len(evilSig) > 16<<10 {
		t.Fatalf("the zip is %d bytes, over a signature's 16 KiB", len(evilSig))
	}

	for _, tc := range []struct {
		file   string
		data   []byte
		reason string
	}{
		{"evil.db", evilDB, "named like a sync database but is a package"},
		{"evil.sig", evilSig, "not a signature: holds a zip end-of-central-directory record"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join(w.s.RepoDir("core"), tc.file)
			writeFile(t, p, tc.data)
			defer os.Remove(p)
			testenv.RepoAdd(t, w.s.RepoDB("core"), p) // repo-add takes it for a package (it replaces the previous case's)

			// Control: pacman's own downloader, no hook: installed.
			w.setHook(t, false)
			w.setFetch(t, false)
			res, _, after, backdoor := w.attempt(t, "evil")
			if res.Code != 0 || after["evil"] != "1.0-1" || !backdoor {
				t.Fatalf("control: pacman did not install %s, so the case proves nothing:\n%s", tc.file, res)
			}
			w.uninstall(t, "evil")

			// Through bintrans fetch: refused.
			w.setFetch(t, true)
			defer w.setFetch(t, false)
			res, before, after, backdoor := w.attempt(t, "evil")
			t.Logf("pacman:\n%s", res)
			if res.Code == 0 || !sameSet(before, after) || backdoor {
				t.Fatalf("installed: before %v, after %v, backdoor %v\n%s", before, after, backdoor, res)
			}
			if !lineWith(res.Stderr, "bintrans: refused "+tc.file+": "+tc.reason) || !strings.Contains(res.Stderr, "\nhint: ") {
				t.Errorf("no refusal line for %s with %q and a hint", tc.file, tc.reason)
			}
			if _, err := os.Lstat(filepath.Join(w.s.CacheDir, tc.file+".part")); err == nil {
				t.Errorf("%s.part left in the cache", tc.file)
			}
		})
	}
}

// TestPacmanRealDatabasesEveryCompression: the positive side. Databases
// written by Debian's repo-add in every compression it supports, .db and
// .files, pass bintrans fetch (as XferCommand) and the hook, and the logged
// packages install; `pacman -Fy` downloads the .files database through
// fetch.
func TestPacmanRealDatabasesEveryCompression(t *testing.T) {
	if testing.Short() {
		t.Skip("real pacman transactions")
	}
	w := newParserWorld(t)
	w.setHook(t, true)
	w.setFetch(t, true)
	dir := w.s.RepoDir("core")
	for _, ext := range []string{".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tar"} {
		t.Run(strings.TrimPrefix(ext, "."), func(t *testing.T) {
			testenv.RepoAdd(t, filepath.Join(dir, "core.db"+ext), w.foo.path)
			for _, kind := range []string{"db", "files"} {
				link := filepath.Join(dir, "core."+kind)
				os.Remove(link)
				if err := os.Symlink("core."+kind+ext, link); err != nil {
					t.Fatal(err)
				}
			}
			res, _, after, backdoor := w.attempt(t, "foo")
			if res.Code != 0 || after["foo"] != "1.0-1" || backdoor {
				t.Fatalf("the logged foo did not install:\n%s", res)
			}
			if !strings.Contains(res.Stderr, "bintrans: core.db: sync database, passed through unverified") {
				t.Errorf("the database did not go through bintrans fetch:\n%s", res)
			}
			if !lineWith(res.Stdout+res.Stderr, "bintrans: 1 packages verified") || !lineWith(res.Stderr, "bintrans: verified "+w.foo.filename) {
				t.Errorf("the hook or fetch did not verify foo:\n%s", res)
			}
			files := w.s.Pacman(t, nil, "-Fyy")
			if files.Code != 0 || !strings.Contains(files.Stderr, "bintrans: core.files: sync database, passed through unverified") {
				t.Errorf("pacman -Fyy through fetch:\n%s", files)
			}
			w.uninstall(t, "foo")
		})
	}
}
