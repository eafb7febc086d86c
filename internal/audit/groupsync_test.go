package audit

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Concurrent Syncs all succeed and cost fewer fsyncs than callers; after
// the file fails (here: closed under it) every later Sync fails too, even
// though a retry of fsync might "succeed".
func TestGroupSync(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGroupSync(f)
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() {
			f.Write([]byte("x"))
			errs[i] = g.Sync()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g.synced != g.gen || g.gen != 32 {
		t.Fatalf("synced %d of %d calls", g.synced, g.gen)
	}
	f.Close()
	if err := g.Sync(); err == nil {
		t.Fatal("Sync on a closed file succeeded")
	}
	g.f, _ = os.Create(filepath.Join(t.TempDir(), "g")) // a working file again
	if err := g.Sync(); err == nil || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("error not sticky: %v", err)
	}
}
