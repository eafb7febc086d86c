package pacman

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestResolve uses real packages and real repo-add databases laid out as
// pacman keeps them.
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	build := filepath.Join(dir, "build")
	dbpath := filepath.Join(dir, "db")
	cache1, cache2 := filepath.Join(dir, "cache1"), filepath.Join(dir, "cache2")
	mk := func(repo string, pkgs ...testenv.Pkg) map[string]string {
		paths := map[string]string{}
		var all []string
		if err := os.MkdirAll(filepath.Join(build, repo), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			path := testenv.BuildPackage(t, filepath.Join(build, repo), p)
			paths[p.Name] = path
			all = append(all, path)
		}
		db := filepath.Join(build, repo, repo+".db.tar.gz")
		testenv.RepoAdd(t, db, all...)
		copyFile(t, db, filepath.Join(dbpath, "sync", repo+".db"))
		return paths
	}
	core := mk("core", testenv.Pkg{Name: "glibc", Version: "2.40-1", Arch: "x86_64"}, testenv.Pkg{Name: "both", Version: "1-1"}, testenv.Pkg{Name: "uncached", Version: "1:0.1-3"})
	extra := mk("extra", testenv.Pkg{Name: "both", Version: "2-1"}, testenv.Pkg{Name: "onlyextra", Version: "5-1"})
	copyFile(t, core["glibc"], filepath.Join(cache2, filepath.Base(core["glibc"])))
	copyFile(t, extra["both"], filepath.Join(cache2, filepath.Base(extra["both"])))
	copyFile(t, extra["onlyextra"], filepath.Join(cache1, filepath.Base(extra["onlyextra"])))
	copyFile(t, extra["onlyextra"], filepath.Join(cache2, filepath.Base(extra["onlyextra"])))

	c := &Config{DBPath: dbpath, CacheDirs: []string{cache1, cache2}, Repos: []Repo{{Name: "core"}, {Name: "extra"}, {Name: "gone"}}}
	got, err := Resolve(c, []string{"glibc", "both", "uncached", "onlyextra", "local-only"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Name: "glibc", Repo: "core", Arch: "x86_64", Filename: "glibc-2.40-1-x86_64.pkg.tar.zst", Version: "2.40-1", SHA256: sha256File(t, core["glibc"]), Path: filepath.Join(cache2, "glibc-2.40-1-x86_64.pkg.tar.zst")},
		// in core and extra: extra's file is the one in the cache
		{Name: "both", Repo: "extra", Arch: "any", Filename: "both-2-1-any.pkg.tar.zst", Version: "2-1", SHA256: sha256File(t, extra["both"]), Path: filepath.Join(cache2, "both-2-1-any.pkg.tar.zst")},
		{Name: "uncached", Repo: "core", Arch: "any", Filename: "uncached-1:0.1-3-any.pkg.tar.zst", Version: "1:0.1-3", SHA256: sha256File(t, core["uncached"])},
		// first cache dir wins
		{Name: "onlyextra", Repo: "extra", Arch: "any", Filename: "onlyextra-5-1-any.pkg.tar.zst", Version: "5-1", SHA256: sha256File(t, extra["onlyextra"]), Path: filepath.Join(cache1, "onlyextra-5-1-any.pkg.tar.zst")},
		{Name: "local-only", NotInSyncDB: true},
	}
	if !reflect.DeepEqual(got, want) {
		for i := range got {
			t.Errorf("got  %+v\nwant %+v", got[i], want[i])
		}
	}
	if got[2].Cached() || !got[0].Cached() {
		t.Error("Cached() wrong")
	}

	// Neither cached: the first repository in configuration order.
	os.Remove(filepath.Join(cache2, filepath.Base(extra["both"])))
	got, err = Resolve(c, []string{"both"})
	if err != nil || got[0].Repo != "core" || got[0].Cached() {
		t.Errorf("uncached in two repos: %+v, %v", got, err)
	}

	// An unreadable sync database fails closed.
	if err := os.WriteFile(filepath.Join(dbpath, "sync", "extra.db"), []byte("garbage, not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(c, []string{"glibc"})
	var de *DBError
	if !errors.As(err, &de) || de.Repo != "extra" {
		t.Errorf("corrupt db: err = %v, want *DBError for extra", err)
	}
}

// TestResolveAfterRealPacmanDownload lets Debian's pacman fill the cache
// (pacman -Syw) and checks that Resolve finds exactly what it downloaded.
func TestResolveAfterRealPacmanDownload(t *testing.T) {
	s := testenv.NewSandbox(t, "core", "extra")
	var paths []string
	for _, p := range []testenv.Pkg{{Name: "a", Version: "1-1"}, {Name: "b", Version: "1.2-3", Depends: []string{"a"}}} {
		paths = append(paths, testenv.BuildPackage(t, s.RepoDir("extra"), p))
	}
	testenv.RepoAdd(t, s.RepoDB("extra"), paths...)
	testenv.RepoAdd(t, s.RepoDB("core"), testenv.BuildPackage(t, s.RepoDir("core"), testenv.Pkg{Name: "c", Version: "9-9"}))
	if res := s.Pacman(t, nil, "-Syw", "b"); res.Code != 0 {
		t.Fatal(res)
	}
	conf, err := ParseFile(s.Conf, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(conf, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Path != filepath.Join(s.CacheDir, "a-1-1-any.pkg.tar.zst") || got[1].Path != filepath.Join(s.CacheDir, "b-1.2-3-any.pkg.tar.zst") ||
		got[0].SHA256 != sha256File(t, paths[0]) || sha256File(t, got[1].Path) != got[1].SHA256 {
		t.Errorf("downloaded targets: %+v", got)
	}
	if got[2].Repo != "core" || got[2].Cached() {
		t.Errorf("c was not downloaded: %+v", got[2])
	}

	// What the chrooted hook sees: the same targets under root-relative paths.
	in, err := conf.InRoot()
	if err != nil {
		t.Fatal(err)
	}
	if in.DBPath != "/var/lib/pacman" || in.CacheDirs[0] != "/var/cache/pacman/pkg" {
		t.Errorf("InRoot: %+v", in)
	}
}
