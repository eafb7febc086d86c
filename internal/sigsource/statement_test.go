package sigsource

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/verify"
)

var (
	dbHash    = strings.Repeat("0f", 32)
	stmtPath  = freshness.Path(dbHash)
	stmtBytes = []byte("bintrans-repository-statement v1\n")
)

// TestStatementLayout: a statement, its .t and its bundle are under
// <base>/statements/, over http(s) and in a directory, and per repository.
func TestStatementLayout(t *testing.T) {
	s := newServer(t, map[string][]byte{
		"/core/" + stmtPath:                          stmtBytes,
		"/core/" + stmtPath + verify.SignatureSuffix: sigBytes,
		"/core/" + stmtPath + verify.BundleSuffix:    bundleBytes,
	})
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "statements"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{stmtPath: stmtBytes, stmtPath + ".t": sigBytes, stmtPath + ".t.bundle": bundleBytes} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hs, err := New(s.URL+"/core/", client(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := New("file://"+dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	per := PerRepo(map[string]verify.SignatureSource{"core": hs}, ds)
	a := verify.Artifact{Filename: stmtPath, Repo: "core"}
	for name, src := range map[string]verify.SignatureSource{"http": hs, "dir": ds, "per-repo": per, "per-repo fallback": per} {
		a := a
		if name == "per-repo fallback" {
			a.Repo = "extra"
		}
		ss, ok := src.(StatementSource)
		if !ok {
			t.Fatalf("%s: not a StatementSource", name)
		}
		if b, err := ss.Statement(ctx(t), a); err != nil || string(b) != string(stmtBytes) {
			t.Errorf("%s: Statement = %q, %v", name, b, err)
		}
		if b, err := src.Signature(ctx(t), a); err != nil || string(b) != string(sigBytes) {
			t.Errorf("%s: Signature = %q, %v", name, b, err)
		}
		if b, err := src.Bundle(ctx(t), a); err != nil || string(b) != string(bundleBytes) {
			t.Errorf("%s: Bundle = %q, %v", name, b, err)
		}
	}
	// The '/' of a statement path is a path separator on the wire, not %2F.
	for len(s.paths) > 0 {
		if p := <-s.paths; !strings.HasPrefix(p, "/core/statements/"+dbHash+".stmt") {
			t.Errorf("requested path %q", p)
		}
	}

	// Another hash: missing, as for a package.
	other := verify.Artifact{Filename: freshness.Path(strings.Repeat("1e", 32)), Repo: "core"}
	for name, src := range map[string]StatementSource{"http": hs.(StatementSource), "dir": ds.(StatementSource)} {
		if _, err := src.Statement(ctx(t), other); !errors.Is(err, verify.ErrNotFound) {
			t.Errorf("%s: missing statement: %v", name, err)
		}
	}
}

// TestStatementNames: only statements/<64 lowercase hex>.stmt is a
// statement; nothing else with a '/' reaches a server or a directory.
func TestStatementNames(t *testing.T) {
	s := newServer(t, nil)
	hs, err := New(s.URL, client(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"statements/" + strings.ToUpper(dbHash) + ".stmt", "statements/" + dbHash, "statements/../" + dbHash + ".stmt",
		"statements/" + dbHash + ".stmt/..", "other/" + dbHash + ".stmt", pkg, "statements/" + dbHash[:63] + ".stmt",
	} {
		for name, src := range map[string]verify.SignatureSource{"http": hs, "dir": ds} {
			var fe *FilenameError
			if _, err := src.(StatementSource).Statement(ctx(t), verify.Artifact{Filename: bad}); !errors.As(err, &fe) {
				t.Errorf("%s: Statement(%q): %v, want a FilenameError", name, bad, err)
			}
			if strings.Contains(bad, "/") {
				if _, err := src.Signature(ctx(t), verify.Artifact{Filename: bad}); !errors.As(err, &fe) {
					t.Errorf("%s: Signature(%q): %v, want a FilenameError", name, bad, err)
				}
			}
		}
	}
	if n := s.requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

func TestStatementTooLarge(t *testing.T) {
	s := newServer(t, map[string][]byte{"/" + stmtPath: []byte(strings.Repeat("x", freshness.MaxSize+1))})
	hs, err := New(s.URL, client(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var tl *TooLargeError
	if _, err := hs.(StatementSource).Statement(ctx(t), verify.Artifact{Filename: stmtPath}); !errors.As(err, &tl) {
		t.Fatalf("got %v, want TooLargeError", err)
	}
}
