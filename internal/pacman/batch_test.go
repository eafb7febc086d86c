package pacman

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bintrans/bintrans/verify"
)

func TestBatch(t *testing.T) {
	dir := t.TempDir()
	cached := filepath.Join(dir, "a-1-1-any.pkg.tar.zst")
	if err := os.WriteFile(cached, []byte("package bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := []Target{
		{Name: "local", NotInSyncDB: true},
		{Name: "a", Repo: "core", Arch: "any", Filename: "a-1-1-any.pkg.tar.zst", Version: "1-1", SHA256: "ab", Path: cached},
		{Name: "b", Repo: "core", Arch: "any", Filename: "b-1-1-any.pkg.tar.zst", Version: "1-1", SHA256: "cd"},
	}
	b := NewBatch(ts, BatchOptions{CacheDirs: []string{dir}})
	if len(b.Artifacts) != 1 || b.Artifacts[0].Filename != "a-1-1-any.pkg.tar.zst" || b.Artifacts[0].SHA256 != "ab" || b.Artifacts[0].Repo != "core" || b.Artifacts[0].Open == nil {
		t.Fatalf("artifacts %+v", b.Artifacts)
	}
	rc, err := b.Artifacts[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "package bytes" {
		t.Errorf("Open read %q", got)
	}
	if _, err := b.Results(nil); err == nil {
		t.Error("Results accepted a wrong number of engine results")
	}
	rs, err := b.Results([]verify.Result{{Artifact: b.Artifacts[0], Status: verify.StatusOK}})
	if err != nil {
		t.Fatal(err)
	}
	var nr *NotInRepositoryError
	var nc *NotCachedError
	if rs[0].Status != verify.StatusNotInRepository || !errors.As(rs[0].Err, &nr) || nr.Name != "local" {
		t.Errorf("local: %+v", rs[0])
	}
	if rs[1].Status != verify.StatusOK || rs[1].Artifact.Name != "a" {
		t.Errorf("a: %+v", rs[1])
	}
	if rs[2].Status != verify.StatusUnavailable || !errors.As(rs[2].Err, &nc) || nc.Filename != "b-1-1-any.pkg.tar.zst" || rs[2].Artifact.Open != nil {
		t.Errorf("b: %+v", rs[2])
	}
	if b.Skipped(0) {
		t.Error("skipped without the unsafe option")
	}

	b = NewBatch(ts, BatchOptions{UnsafeAllowLocal: true})
	rs, _ = b.Results([]verify.Result{{Status: verify.StatusBadSignature}})
	if rs[0].Status != verify.StatusOK || !b.Skipped(0) || rs[1].Status != verify.StatusBadSignature || rs[2].Status != verify.StatusUnavailable {
		t.Errorf("unsafe-allow-local: %+v", rs)
	}
}

func TestBatchVerifyUncachedClaim(t *testing.T) {
	ts := []Target{{Name: "b", Repo: "core", Filename: "b-1-1-any.pkg.tar.zst", Version: "1-1", SHA256: "cd"}}
	b := NewBatch(ts, BatchOptions{VerifyUncachedClaim: true})
	if len(b.Artifacts) != 1 || b.Artifacts[0].Open != nil || b.Artifacts[0].SHA256 != "cd" {
		t.Fatalf("uncached claim: %+v", b.Artifacts)
	}
}
