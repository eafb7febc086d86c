package durable

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, p); got != "two" {
		t.Fatalf("content %q", got)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 (chmod, not the umask)", fi.Mode().Perm())
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"state.json"}) {
		t.Errorf("directory holds %q, want only the file", names)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write into a missing directory: %v", err)
	}
}

// WriteFileFrom streams into the temp file; an error of the writer is
// returned as it is and leaves the old file, with no temp file, even
// after part of the content was written.
func TestWriteFileFrom(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "report.json")
	if err := WriteFileFrom(p, 0o644, func(w io.Writer) error {
		for i := range 3 {
			fmt.Fprintf(w, "line %d\n", i)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("report writer failed")
	if err := WriteFileFrom(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("half a rep"))
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the writer's", err)
	}
	if got := readString(t, p); got != "line 0\nline 1\nline 2\n" {
		t.Errorf("content %q, want the first report", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"report.json"}) {
		t.Errorf("directory holds %q, want only the file", names)
	}
}

// A failure at every step of WriteFile leaves the old file and no temp
// file; only a failed directory fsync comes after the replacement.
func TestWriteFileFailureAtEachStep(t *testing.T) {
	boom := errors.New("injected")
	for _, s := range []step{stepCreate, stepWrite, stepChmod, stepSync, stepClose, stepRename, stepSyncDir} {
		t.Run(string(s), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if err := WriteFile(p, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			failAt = func(at step) error {
				if at == s {
					return boom
				}
				return nil
			}
			defer func() { failAt = nil }()
			if err := WriteFile(p, []byte("new"), 0o600); !errors.Is(err, boom) {
				t.Fatalf("err = %v, want the injected failure", err)
			}
			want := "old"
			if s == stepSyncDir {
				want = "new" // renamed, not yet known to be durable
			}
			if got := readString(t, p); got != want {
				t.Errorf("content %q, want %q", got, want)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"f"}) {
				t.Errorf("directory holds %q, want only the file", names)
			}
		})
	}
}

// crashEnv names the file the crash child rewrites, forever.
const crashEnv = "BINTRANS_DURABLE_CRASH_FILE"

// Two contents of different sizes and bytes: a mix of them, or a prefix
// of either, is neither.
var crashContents = [2][]byte{bytes.Repeat([]byte("a"), 1<<20), bytes.Repeat([]byte("b"), 3<<20)}

// firstWrite closes done when the child reports its first completed write.
type firstWrite struct {
	once sync.Once
	done chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.done) })
	return len(p), nil
}

// TestWriteFileCrashChild is the writer that TestWriteFileKilled kills: it
// only runs in the child process.
func TestWriteFileCrashChild(t *testing.T) {
	p := os.Getenv(crashEnv)
	if p == "" {
		t.Skip("the child of TestWriteFileKilled")
	}
	for i := 0; ; i++ {
		if err := WriteFile(p, crashContents[i%2], 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Println(i) // the parent kills after the first write
	}
}

// A writer killed (SIGKILL) at a random point leaves the old content or
// the new one, never a mix or a prefix, and at most temp files, which
// RemoveStaleTemps removes. (What a kill cannot show, a power loss between
// the rename and the directory fsync, is what the fsyncs are for.)
func TestWriteFileKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 20 child processes")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	if err := WriteFile(p, crashContents[0], 0o600); err != nil {
		t.Fatal(err)
	}
	seen := map[byte]bool{}
	for i := 0; i < 20; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileCrashChild$")
		cmd.Env = append(os.Environ(), crashEnv+"="+p)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		wrote := &firstWrite{done: make(chan struct{})}
		cmd.Stdout = wrote
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-wrote.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the child wrote nothing: %s", stderr.Bytes())
		}
		time.Sleep(time.Duration(rand.IntN(20000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.Bytes())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, crashContents[0]) && !bytes.Equal(b, crashContents[1]) {
			t.Fatalf("after kill %d: %d bytes that are neither content", i, len(b))
		}
		seen[b[0]] = true
		n, err := RemoveStaleTemps(dir, func(target string) bool { return target == "state" })
		if err != nil {
			t.Fatal(err)
		}
		if names := dirNames(t, dir); !slices.Equal(names, []string{"state"}) {
			t.Fatalf("after removing %d temp files the directory holds %q", n, names)
		}
	}
	t.Logf("contents seen after kills: %q", slices.Sorted(func(yield func(byte) bool) {
		for b := range seen {
			if !yield(b) {
				return
			}
		}
	}))
}

func TestTempTarget(t *testing.T) {
	for name, want := range map[string]string{
		".foo-1.0-1-x86_64.pkg.tar.zst.t.tmp-12345":       "foo-1.0-1-x86_64.pkg.tar.zst.t",
		".foo-1.0-1-x86_64.pkg.tar.zst.t.bundle.tmp-4294": "foo-1.0-1-x86_64.pkg.tar.zst.t.bundle",
		".checkpoint.tmp-1":                               "checkpoint",
		"..x.tmp-1":                                       ".x",
	} {
		if got, ok := TempTarget(name); !ok || got != want {
			t.Errorf("TempTarget(%q) = %q %v, want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{
		".hidden", "foo.t.tmp-123", ".foo.t.tmp-12a", ".foo.t.tmp-", ".foo.t.tmp-12345678901", ".tmp-1", ".a/b.tmp-1", "",
	} {
		if got, ok := TempTarget(name); ok {
			t.Errorf("TempTarget(%q) = %q, want not a temp file", name, got)
		}
	}
	// What CreateTemp makes from the pattern is recognised.
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, tempPattern("x.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got, ok := TempTarget(filepath.Base(f.Name())); !ok || got != "x.json" {
		t.Errorf("CreateTemp's %q: %q %v", f.Name(), got, ok)
	}
}

// FuzzTempTarget: a name is a temp file exactly when it is a dot, a
// target without '/', ".tmp-" and 1-10 digits; the target comes back.
func FuzzTempTarget(f *testing.F) {
	for _, s := range []string{".a.tmp-1", ".a.tmp-", "a.tmp-1", "..tmp-1", ".a/b.tmp-9", ".x.tmp-00000000000", ".é.tmp-4294967295"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		target, ok := TempTarget(name)
		if !ok {
			return
		}
		if target == "" || strings.Contains(target, "/") {
			t.Fatalf("%q: target %q", name, target)
		}
		digits, found := strings.CutPrefix(name, "."+target+".tmp-")
		if !found || len(digits) < 1 || len(digits) > 10 || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("%q: target %q, rest %q", name, target, digits)
		}
	})
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale := []string{".a.t.tmp-12345", ".a.t.bundle.tmp-4294967295"}
	kept := []string{".hidden", ".a.pkg.tmp-1", "a.t.tmp-1", ".a.t.tmp-1x", ".a.t.tmp-12345678901", "README"}
	for _, n := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, ".d.t.tmp-5", "x"), 0o755)
	os.Symlink(filepath.Join(dir, "README"), filepath.Join(dir, ".l.t.tmp-6"))
	keep := func(target string) bool {
		return strings.HasSuffix(target, ".t") || strings.HasSuffix(target, ".t.bundle")
	}
	n, err := RemoveStaleTemps(dir, keep)
	if err != nil || n != len(stale) {
		t.Fatalf("removed %d, %v", n, err)
	}
	want := append(slices.Clone(kept), ".d.t.tmp-5", ".l.t.tmp-6")
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("left %q, want %q", got, want)
	}
	if _, err := RemoveStaleTemps(filepath.Join(dir, "missing"), keep); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
}

func TestDirWriteFileAndSync(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			name := fmt.Sprintf("f%02d", i)
			if errs[i] = d.WriteFile(name, []byte(name), 0o644); errs[i] == nil {
				errs[i] = d.Sync()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		name := fmt.Sprintf("f%02d", i)
		if got := readString(t, filepath.Join(dir, name)); got != name {
			t.Errorf("%s holds %q", name, got)
		}
	}
	if len(dirNames(t, dir)) != len(errs) {
		t.Errorf("directory holds %q", dirNames(t, dir))
	}
}

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

func TestBatch(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b"} {
		os.WriteFile(filepath.Join(dir, n), []byte("old "+n), 0o644)
	}
	if err := os.Mkdir(filepath.Join(dir, "c"), 0o755); err != nil { // a rename over a directory fails
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "c", "x"), nil, 0o644)
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := d.Batch()
	idx := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range []string{"a", "b", "c", "new"} {
		wg.Go(func() {
			i, err := b.Add(n, []byte("new "+n), 0o644)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			idx[n] = i
			mu.Unlock()
		})
	}
	wg.Wait()
	// Before the commit: the old files, and a temp file for each.
	if got := readString(t, filepath.Join(dir, "a")); got != "old a" {
		t.Fatalf("a before commit: %q", got)
	}
	if len(dirNames(t, dir)) != 3+4 {
		t.Fatalf("before commit: %q", dirNames(t, dir))
	}
	errs, dirErr := b.Commit()
	if dirErr != nil || len(errs) != 4 {
		t.Fatalf("commit: %v %v", errs, dirErr)
	}
	for _, n := range []string{"a", "b", "new"} {
		if errs[idx[n]] != nil {
			t.Errorf("%s: %v", n, errs[idx[n]])
		}
		if got := readString(t, filepath.Join(dir, n)); got != "new "+n {
			t.Errorf("%s holds %q", n, got)
		}
	}
	if errs[idx["c"]] == nil {
		t.Error("the rename over a directory succeeded")
	}
	want := []string{"a", "b", "c", "new"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after commit: %q, want %q (no temp files)", got, want)
	}
	// An empty batch commits nothing; Abort removes the temp files.
	if errs, dirErr := b.Commit(); len(errs) != 0 || dirErr != nil {
		t.Errorf("empty commit: %v %v", errs, dirErr)
	}
	if _, err := b.Add("a", []byte("never"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after abort: %q", got)
	}
	if got := readString(t, filepath.Join(dir, "a")); got != "new a" {
		t.Errorf("a after abort: %q", got)
	}
}

// A failed data sync renames nothing and removes every temp file.
func TestBatchSyncFailure(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("old"), 0o644)
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := d.Batch()
	b.Add("a", []byte("x"), 0o644)
	b.Add("b", []byte("y"), 0o644)
	boom := errors.New("injected")
	failAt = func(s step) error {
		if s == stepSyncFiles {
			return boom
		}
		return nil
	}
	defer func() { failAt = nil }()
	errs, dirErr := b.Commit()
	var se *SyncError
	for i, err := range errs {
		if !errors.As(err, &se) || !errors.Is(err, boom) {
			t.Errorf("file %d: %v, want a *SyncError", i, err)
		}
	}
	if len(errs) != 2 || dirErr != nil {
		t.Errorf("errs %v, dirErr %v", errs, dirErr)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"a"}) {
		t.Errorf("left %q", names)
	}
	if got := readString(t, filepath.Join(dir, "a")); got != "old" {
		t.Errorf("a holds %q", got)
	}
}
