package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

func TestRepoName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"core.db", "core"},
		{"core.files", "core"},
		{"extra.db.tar.gz", "extra"},
		{"extra.db.tar.zst", "extra"},
		{"multilib-testing.files.tar.xz", "multilib-testing"},
		{"my.repo.db", "my.repo"},
		{"core.db.tar", "core"},
	} {
		got, err := RepoName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("RepoName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "core", "core.tar.gz", ".db", "..db", "a b.db", "a\x00.db", "$repo.db", "x\\y.db", strings.Repeat("a", MaxRepoNameLength+1) + ".db"} {
		if got, err := RepoName(bad); err == nil {
			t.Errorf("RepoName(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzRepoName(f *testing.F) {
	for _, s := range []string{"core.db", "extra.files.tar.zst", "a.db.tar.gz", ".db", "x/y.db", "é.db", "core.db.db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		repo, err := RepoName(file)
		if err != nil {
			return
		}
		if repo == "" || len(repo) > MaxRepoNameLength || strings.ContainsAny(repo, "/\\$ \t\n\x00") {
			t.Fatalf("RepoName(%q) = %q", file, repo)
		}
		if !strings.HasPrefix(file, repo+".") {
			t.Fatalf("RepoName(%q) = %q is not a prefix", file, repo)
		}
		if again, err := RepoName(repo + ".db"); err != nil || again != repo {
			t.Fatalf("RepoName(%q.db) = %q, %v", repo, again, err)
		}
	})
}

func TestFromLocation(t *testing.T) {
	for _, tc := range []struct{ in, repo, base string }{
		{"/srv/repo/core/os/x86_64/core.db", "core", "/srv/repo/core/os/x86_64"},
		{"core.db", "core", "."},
		{"https://mirror.example/extra/os/x86_64/extra.files", "extra", "https://mirror.example/extra/os/x86_64"},
		{"file:///srv/x/testing.db.tar.zst", "testing", "file:///srv/x"},
	} {
		db, err := FromLocation(tc.in)
		if err != nil || db.Repo != tc.repo || db.PackageBase != tc.base || db.URL != tc.in || db.Arch != "" {
			t.Errorf("FromLocation(%q) = %+v, %v; want repo %q base %q", tc.in, db, err, tc.repo, tc.base)
		}
	}
	for _, bad := range []string{"", "ftp://x/core.db", "https://x/core.db?a=b", "https://u:p@x/core.db", "https://x/", "/srv/notadb.txt"} {
		var le *LocationError
		if db, err := FromLocation(bad); !errors.As(err, &le) {
			t.Errorf("FromLocation(%q) = %+v, %v; want a *LocationError", bad, db, err)
		}
	}
}

func FuzzFromLocation(f *testing.F) {
	for _, s := range []string{"core.db", "/srv/x/core.files", "https://m.example/a/b/extra.db", "file:///x/y.db.tar.zst", "http://[::1]:80/%2e%2e/x.db", "ftp://x/y.db", "https://x/y.db?q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		db, err := FromLocation(loc)
		if err != nil {
			var le *LocationError
			if !errors.As(err, &le) {
				t.Fatalf("FromLocation(%q): error %T, want *LocationError", loc, err)
			}
			return
		}
		if db.URL != loc || db.Repo == "" || db.PackageBase == "" || db.Arch != "" {
			t.Fatalf("FromLocation(%q) = %+v", loc, db)
		}
		if _, err := RepoName(db.Repo + ".db"); err != nil {
			t.Fatalf("FromLocation(%q): repo %q: %v", loc, db.Repo, err)
		}
	})
}

func TestFromTemplate(t *testing.T) {
	got := FromTemplate("https://m.example/$repo/os/$arch/", []string{"core", "extra"}, []string{"x86_64", "aarch64"})
	want := []DB{
		{URL: "https://m.example/core/os/x86_64/core.db", Repo: "core", Arch: "x86_64", PackageBase: "https://m.example/core/os/x86_64/"},
		{URL: "https://m.example/core/os/aarch64/core.db", Repo: "core", Arch: "aarch64", PackageBase: "https://m.example/core/os/aarch64/"},
		{URL: "https://m.example/extra/os/x86_64/extra.db", Repo: "extra", Arch: "x86_64", PackageBase: "https://m.example/extra/os/x86_64/"},
		{URL: "https://m.example/extra/os/aarch64/extra.db", Repo: "extra", Arch: "aarch64", PackageBase: "https://m.example/extra/os/aarch64/"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d databases, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("db %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// writeDB writes a database of pkgs and returns its path.
func writeDB(t *testing.T, dir, name string, pkgs []repodb.Package, o repodbtest.Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := repodbtest.Write(&b, pkgs, o); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadRealWorldShaped: databases shaped like Arch's (split packages,
// epochs, descriptions of several KiB, %PGPSIG%, .files databases with file
// lists, every compression) load completely, in (repo, arch, filename)
// order, with a .db and its .files given together counted once.
func TestLoadRealWorldShaped(t *testing.T) {
	dir := t.TempDir()
	pkgs := repodbtest.Packages(1200, repodbtest.Options{Seed: 42})
	long, epochs := 0, 0
	for _, p := range pkgs {
		if len(p.Desc) > 2048 {
			long++
		}
		if strings.Contains(p.Version, ":") {
			epochs++
		}
	}
	if long == 0 || epochs == 0 {
		t.Fatalf("fixture has %d long descriptions and %d epochs: not real-world shaped", long, epochs)
	}
	core := pkgs[:300]
	extra := pkgs[300:]
	dbs := []DB{
		{URL: writeDB(t, dir, "core.db", core, repodbtest.Options{Compression: "zstd"}), Repo: "core"},
		{URL: writeDB(t, dir, "core.files", core, repodbtest.Options{Files: true, Compression: "xz"}), Repo: "core"},
		{URL: writeDB(t, dir, "extra.files", extra, repodbtest.Options{Files: true}), Repo: "extra", Arch: "x86_64"},
	}
	arts, err := Load(context.Background(), dbs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != len(pkgs) {
		t.Fatalf("%d artifacts, want %d", len(arts), len(pkgs))
	}
	byFile := map[string]repodb.Package{}
	for _, p := range pkgs {
		byFile[p.Filename] = p
	}
	for i, a := range arts {
		if i > 0 && compareArtifacts(arts[i-1], a) >= 0 {
			t.Fatalf("artifacts %d and %d out of order: %+v, %+v", i-1, i, arts[i-1], a)
		}
		p, ok := byFile[a.Filename]
		if !ok || a.SHA256 != p.SHA256Sum || a.Name != p.Name || a.Version != p.Version || a.Open != nil {
			t.Fatalf("artifact %+v does not match package %+v", a, p)
		}
		wantArch := p.Arch
		if a.Repo == "extra" {
			wantArch = "x86_64" // the database's, not the package's "any"
		}
		if a.Arch != wantArch {
			t.Fatalf("%s: arch %q, want %q", a.Filename, a.Arch, wantArch)
		}
	}
}

// TestLoadFailsWhole: one bad database fails the load, naming it.
func TestLoadFailsWhole(t *testing.T) {
	dir := t.TempDir()
	good := writeDB(t, dir, "good.db", repodbtest.Packages(5, repodbtest.Options{}), repodbtest.Options{})
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(context.Background(), []DB{{URL: good, Repo: "good"}, {URL: bad, Repo: "bad"}}, Options{})
	var de *DBError
	if !errors.As(err, &de) || de.URL != bad || !errors.Is(err, repodb.ErrUnknownCompression) || de.Hint() == "" {
		t.Fatalf("err = %v, want a *DBError for %s with a hint", err, bad)
	}
	_, err = Load(context.Background(), []DB{{URL: filepath.Join(dir, "none.db"), Repo: "none"}}, Options{})
	if !errors.As(err, &de) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(de.Hint(), "path or URL") {
		t.Fatalf("missing file: err = %v", err)
	}
	// A directory is not a database.
	if _, err := Load(context.Background(), []DB{{URL: dir, Repo: "x"}}, Options{}); !errors.As(err, &de) {
		t.Fatalf("directory: err = %v", err)
	}
}

// TestLoadHTTP: databases over HTTP, streamed and bounded (announced and
// actual length), and package downloads hashed through Open.
func TestLoadHTTP(t *testing.T) {
	pkgs := repodbtest.Packages(20, repodbtest.Options{NoPGPSig: true})
	files := map[string][]byte{}
	for i := range pkgs {
		content := []byte("package " + pkgs[i].Filename)
		sum := sha256.Sum256(content)
		pkgs[i].SHA256Sum = hex.EncodeToString(sum[:])
		files[pkgs[i].Filename] = content
	}
	var db bytes.Buffer
	if err := repodbtest.Write(&db, pkgs, repodbtest.Options{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/repo/")
		switch {
		case name == "extra.db":
			w.Write(db.Bytes())
		case name == "chunked.db": // no Content-Length
			w.Header().Set("Content-Type", "application/octet-stream")
			for b := db.Bytes(); len(b) > 0; b = b[min(len(b), 512):] {
				w.Write(b[:min(len(b), 512)])
				w.(http.Flusher).Flush()
			}
		case files[name] != nil:
			w.Write(files[name])
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	hc, err := httpclient.New(httpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db1, err := FromLocation(srv.URL + "/repo/extra.db")
	if err != nil {
		t.Fatal(err)
	}
	arts, err := Load(ctx, []DB{db1}, Options{HTTP: hc, Download: true})
	if err != nil || len(arts) != len(pkgs) {
		t.Fatalf("Load: %d artifacts, %v", len(arts), err)
	}
	for _, a := range arts {
		rc, err := a.Open()
		if err != nil {
			t.Fatalf("%s: open: %v", a.Filename, err)
		}
		sum, _, err := verify.HashReader(rc)
		rc.Close()
		if err != nil || sum != a.SHA256 {
			t.Fatalf("%s: hash %s, %v; want %s", a.Filename, sum, err, a.SHA256)
		}
	}

	// Bounded: by the announced length and by what is actually sent.
	var tl *httpclient.TooLargeError
	for _, name := range []string{"extra.db", "chunked.db"} {
		d, _ := FromLocation(srv.URL + "/repo/" + name)
		_, err := Load(ctx, []DB{d}, Options{HTTP: hc, MaxDBSize: int64(db.Len() - 1)})
		if !errors.As(err, &tl) {
			t.Errorf("%s over the limit: err = %v, want a TooLargeError", name, err)
		}
		if _, err := Load(ctx, []DB{d}, Options{HTTP: hc, MaxDBSize: int64(db.Len())}); err != nil {
			t.Errorf("%s at the limit: %v", name, err)
		}
	}
	// A package larger than MaxPackageSize fails its Open's reads.
	arts, err = Load(ctx, []DB{db1}, Options{HTTP: hc, Download: true, MaxPackageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := arts[0].Open()
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if !errors.As(err, &tl) {
		t.Fatalf("package over the limit: err = %v", err)
	}
	// 404.
	d, _ := FromLocation(srv.URL + "/repo/core.db")
	var se *httpclient.StatusError
	if _, err := Load(ctx, []DB{d}, Options{HTTP: hc}); !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("404: err = %v", err)
	}
	// A missing package file is an Open error (the engine reports it).
	delete(files, arts[1].Filename)
	if _, err := arts[1].Open(); err == nil {
		t.Fatalf("Open of a missing package succeeded")
	}
}

// TestLoadLocalDownload: package files next to a local database, by path
// and by file:// URL.
func TestLoadLocalDownload(t *testing.T) {
	dir := t.TempDir()
	pkgs := repodbtest.Packages(3, repodbtest.Options{})
	for i := range pkgs {
		content := []byte(strconv.Itoa(i) + pkgs[i].Filename)
		sum := sha256.Sum256(content)
		pkgs[i].SHA256Sum = hex.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(dir, pkgs[i].Filename), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := writeDB(t, dir, "local.db", pkgs, repodbtest.Options{})
	for _, loc := range []string{p, "file://" + p} {
		db, err := FromLocation(loc)
		if err != nil {
			t.Fatal(err)
		}
		arts, err := Load(context.Background(), []DB{db}, Options{Download: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range arts {
			rc, err := a.Open()
			if err != nil {
				t.Fatalf("%s: %v", loc, err)
			}
			sum, _, err := verify.HashReader(rc)
			rc.Close()
			if err != nil || sum != a.SHA256 {
				t.Fatalf("%s %s: %s %v", loc, a.Filename, sum, err)
			}
		}
	}
}

// TestLoadDigests: the digest of each database is of its bytes as fetched,
// every byte (the reader drains what the tar reader leaves), in argument
// order.
func TestLoadDigests(t *testing.T) {
	dir := t.TempDir()
	pkgs := repodbtest.Packages(20, repodbtest.Options{Seed: 3})
	a := writeDB(t, dir, "core.db", pkgs[:10], repodbtest.Options{Compression: "gzip"})
	b := writeDB(t, dir, "extra.db", pkgs[10:], repodbtest.Options{Compression: "zstd"})
	arts, ds, err := LoadDigests(context.Background(), []DB{{URL: b, Repo: "extra"}, {URL: a, Repo: "core"}}, Options{})
	if err != nil || len(arts) != 20 || len(ds) != 2 {
		t.Fatalf("%v %d %d", err, len(arts), len(ds))
	}
	for i, p := range []string{b, a} {
		raw, _ := os.ReadFile(p)
		if want := freshness.DigestOf(raw); ds[i] != want {
			t.Errorf("%s: digest %+v, want %+v", p, ds[i], want)
		}
	}
}
