package state

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/verify"
)

// TestMain doubles as the helper process of the multi-process tests.
func TestMain(m *testing.M) {
	switch os.Getenv("STATE_TEST_HELPER") {
	case "":
		os.Exit(m.Run())
	case "increment":
		os.Exit(helperIncrement(os.Getenv("STATE_TEST_DIR")))
	case "readonly":
		os.Exit(helperReadOnly(os.Getenv("STATE_TEST_DIR")))
	default:
		os.Exit(99)
	}
}

// note returns a checkpoint note of the given size; fork selects the root.
func note(size uint64, fork int) []byte {
	root := sha256.Sum256([]byte(fmt.Sprintf("%d/%d", size, fork)))
	return []byte(fmt.Sprintf("rekor.local - 7977640121878706669\n%d\n%s\n\n— rekor.local khFCPjBGAiEA%d==\n",
		size, base64.StdEncoding.EncodeToString(root[:]), rand.IntN(1000)))
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func open(t *testing.T, dir string) *Dir {
	t.Helper()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOpenCreates0700(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "b", "state")
	d := open(t, dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
	if d.String() != dir || d.Path("x.json") != filepath.Join(dir, "x.json") {
		t.Errorf("paths: %s %s", d, d.Path("x.json"))
	}
	open(t, dir) // again: fine
}

func TestOpenRefuses(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil {
		t.Error("Open(a file) succeeded")
	}
	for _, mode := range []fs.FileMode{0o770, 0o707, 0o777} {
		dir := filepath.Join(base, fmt.Sprintf("m%o", mode))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir)
		var ie *InsecureDirError
		if !errors.As(err, &ie) || ie.Mode.Perm() != mode {
			t.Errorf("mode %o: got %v, want InsecureDirError", mode, err)
		}
	}
	if os.Geteuid() == 0 {
		dir := filepath.Join(base, "nobodys")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		var ie *InsecureDirError
		if _, err := Open(dir); !errors.As(err, &ie) || ie.UID != 65534 {
			t.Errorf("dir of another user: got %v, want InsecureDirError", err)
		}
	}
}

func TestPathPanicsOnBadNames(t *testing.T) {
	d := open(t, t.TempDir())
	for _, name := range []string{"", ".", "..", "../x", "a/b", ".hidden", "-flag", "a\x00", strings.Repeat("a", 129)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Path(%q) did not panic", name)
				}
			}()
			d.Path(name)
		}()
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir).Checkpoints()
	if cp, err := s.Load(ctx(t)); cp != nil || err != nil {
		t.Fatalf("empty store: %q, %v", cp, err)
	}
	for _, size := range []uint64{1, 5, 5, 1000} {
		cp := note(size, 0)
		if err := s.Store(ctx(t), cp); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx(t))
		if err != nil || string(got) != string(cp) {
			t.Fatalf("size %d: Load = %q, %v", size, got, err)
		}
	}
	// A fresh Open sees it; the file is private; no temp files are left.
	got, err := open(t, dir).Checkpoints().Load(ctx(t))
	if err != nil || !strings.Contains(string(got), "\n1000\n") {
		t.Fatalf("reopen: %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "checkpoint.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("checkpoint.json: %v %v", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestCheckpointsPerLog(t *testing.T) {
	d := open(t, t.TempDir())
	// Rekor log ids: hex sha256 of the log key.
	a, b := d.CheckpointsFor("9211423e90ab321d60d078e0cee28e23267c0b236fb8f81072a28c7ff326de83"), d.CheckpointsFor("c0d23d6ad406973f")
	if err := a.Store(ctx(t), note(10, 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Store(ctx(t), note(3, 1)); err != nil { // smaller, other log: no interference
		t.Fatal(err)
	}
	ga, _ := a.Load(ctx(t))
	gb, _ := b.Load(ctx(t))
	if !strings.Contains(string(ga), "\n10\n") || !strings.Contains(string(gb), "\n3\n") {
		t.Fatalf("a=%q b=%q", ga, gb)
	}
	if cp, _ := d.Checkpoints().Load(ctx(t)); cp != nil {
		t.Fatalf("default store sees %q", cp)
	}
}

func TestStoreNeverMovesBackwards(t *testing.T) {
	s := open(t, t.TempDir()).Checkpoints()
	big := note(100, 0)
	if err := s.Store(ctx(t), big); err != nil {
		t.Fatal(err)
	}
	if err := s.Store(ctx(t), note(50, 0)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx(t)); string(got) != string(big) {
		t.Fatalf("stored checkpoint went backwards: %q", got)
	}
	// Same size, same root, re-signed: replaced.
	resigned := note(100, 0)
	if err := s.Store(ctx(t), resigned); err != nil {
		t.Fatal(err)
	}
	// Same size, other root: a fork, with both notes as evidence.
	forked := note(100, 1)
	err := s.Store(ctx(t), forked)
	var fe *ForkError
	if !errors.As(err, &fe) || fe.Size != 100 || string(fe.Stored) != string(resigned) || string(fe.Given) != string(forked) {
		t.Fatalf("got %v, want ForkError with both notes", err)
	}
	if !strings.HasPrefix(err.Error(), "SECURITY ERROR") {
		t.Errorf("message %q", err)
	}
	if got, _ := s.Load(ctx(t)); string(got) != string(resigned) {
		t.Fatalf("fork replaced the stored checkpoint")
	}
}

func TestStoreRejectsNonCheckpoints(t *testing.T) {
	s := open(t, t.TempDir()).Checkpoints()
	for _, cp := range []string{"", "x", "origin\n12\n", "origin\nabc\nAAAA\n", "origin\n012\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n",
		"origin\n12\nnot-base64\n", "origin\n12\nAAAA\n", strings.Repeat("x", verify.MaxCheckpointSize+1)} {
		if err := s.Store(ctx(t), []byte(cp)); err == nil {
			t.Errorf("Store(%.40q) succeeded", cp)
		}
	}
	if cp, err := s.Load(ctx(t)); cp != nil || err != nil {
		t.Fatalf("something was stored: %q %v", cp, err)
	}
}

func TestCorruptFileIsAnErrorNeverAReset(t *testing.T) {
	valid, err := func() ([]byte, error) {
		dir := t.TempDir()
		if err := open(t, dir).Checkpoints().Store(ctx(t), note(7, 0)); err != nil {
			return nil, err
		}
		return os.ReadFile(filepath.Join(dir, "checkpoint.json"))
	}()
	if err != nil {
		t.Fatal(err)
	}
	v := string(valid)
	cases := map[string]string{
		"empty":         "",
		"whitespace":    " \n",
		"truncated":     v[:len(v)/2],
		"garbage":       "\x00\x01\x02 not json",
		"wrong sha":     strings.Replace(v, `"sha256": "`, `"sha256": "00`, 1),
		"edited size":   strings.Replace(v, `\n7\n`, `\n8\n`, 1),
		"schema 2":      strings.Replace(v, `"schema_version": 1`, `"schema_version": 2`, 1),
		"unknown field": strings.Replace(v, `{`, `{"extra": 1,`, 1),
		"trailing data": v + "{}",
		"array":         "[" + v + "]",
		"huge":          strings.Repeat(" ", maxStateFile+1) + v,
		"no checkpoint": `{"schema_version":1,"checkpoint":"","sha256":""}`,
		"not a note": func() string {
			sum := sha256.Sum256([]byte("hello"))
			return fmt.Sprintf(`{"schema_version":1,"checkpoint":"hello","sha256":"%x"}`, sum)
		}(),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "checkpoint.json")
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s := open(t, dir).Checkpoints()
			cp, err := s.Load(ctx(t))
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != p || cp != nil {
				t.Fatalf("Load = %q, %v; want CorruptError", cp, err)
			}
			// Store refuses too, and leaves the evidence untouched.
			if err := s.Store(ctx(t), note(1000, 0)); !errors.As(err, &ce) {
				t.Fatalf("Store over a corrupt file: %v", err)
			}
			if b, _ := os.ReadFile(p); string(b) != content {
				t.Fatal("corrupt file was modified")
			}
		})
	}
}

func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := Open(dir) // each its own Dir, descriptors and flocks
			if err != nil {
				errs[w] = err
				return
			}
			s := d.Checkpoints()
			for i := range each {
				size := uint64(1 + rand.IntN(writers*each))
				if i == each-1 && w == 0 {
					size = writers*each + 1 // the one maximum
				}
				if err := s.Store(ctx(t), note(size, 0)); err != nil {
					errs[w] = err
					return
				}
				if _, err := s.Load(ctx(t)); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := open(t, dir).Checkpoints().Load(ctx(t))
	if err != nil || !strings.Contains(string(got), fmt.Sprintf("\n%d\n", writers*each+1)) {
		t.Fatalf("final = %q, %v; want the largest tree", got, err)
	}
}

// counterIncrement does one read-modify-write of dir/counter under the
// directory lock, slowly enough that an unserialized run would lose updates.
func counterIncrement(d *Dir) error {
	unlock, err := d.Lock(context.Background())
	if err != nil {
		return err
	}
	defer unlock()
	p := d.Path("counter")
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	n, _ := strconv.Atoi(string(b))
	time.Sleep(time.Millisecond)
	return durable.WriteFile(p, []byte(strconv.Itoa(n+1)), 0o600)
}

func helperIncrement(dir string) int {
	d, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for range 20 {
		if err := counterIncrement(d); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func TestLockSerializesGoroutines(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := Open(dir)
			if err == nil {
				for range 10 {
					if err = counterIncrement(d); err != nil {
						break
					}
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "counter")); string(b) != "60" {
		t.Fatalf("counter = %q, want 60", b)
	}
}

func TestLockSerializesProcesses(t *testing.T) {
	dir := t.TempDir()
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "STATE_TEST_HELPER=increment", "STATE_TEST_DIR="+dir)
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = c
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "counter")); string(b) != strconv.Itoa(procs*20) {
		t.Fatalf("counter = %q, want %d", b, procs*20)
	}
}

func TestLockWaitsForContext(t *testing.T) {
	d := open(t, t.TempDir())
	unlock, err := d.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = open(t, d.String()).Lock(c)
	var le *LockError
	if !errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want LockError wrapping DeadlineExceeded", err)
	}
	unlock()
	unlock() // idempotent
	unlock2, err := open(t, d.String()).Lock(ctx(t))
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}

// The store's own lock is separate from Dir.Lock: a run holding the
// directory lock can store.
func TestStoreUnderDirLock(t *testing.T) {
	d := open(t, t.TempDir())
	unlock, err := d.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := d.Checkpoints().Store(ctx(t), note(3, 0)); err != nil {
		t.Fatal(err)
	}
}

// helperReadOnly runs as an unprivileged user on a directory it cannot
// write: reading works, every write is a clear permission error.
func helperReadOnly(dir string) int {
	fail := func(format string, a ...any) int { fmt.Fprintf(os.Stderr, format+"\n", a...); return 1 }
	d, err := Open(dir)
	if err != nil {
		return fail("Open: %v", err)
	}
	s := d.Checkpoints()
	cp, err := s.Load(context.Background())
	if err != nil || !strings.Contains(string(cp), "\n5\n") {
		return fail("Load: %q %v", cp, err)
	}
	if err := s.Store(context.Background(), note(6, 0)); !errors.Is(err, fs.ErrPermission) {
		return fail("Store: %v, want a permission error", err)
	}
	if _, err := d.Lock(context.Background()); !errors.Is(err, fs.ErrPermission) {
		return fail("Lock: %v, want a permission error", err)
	}
	if err := durable.WriteFile(d.Path("x"), []byte("x"), 0o600); !errors.Is(err, fs.ErrPermission) {
		return fail("durable.WriteFile: %v", err)
	}
	// What offline runs use: reads, and refuses to write before trying.
	ro, err := OpenReadOnly(dir)
	if err != nil {
		return fail("OpenReadOnly: %v", err)
	}
	if cp, err := ro.Checkpoints().Load(context.Background()); err != nil || !strings.Contains(string(cp), "\n5\n") {
		return fail("read-only Load: %q %v", cp, err)
	}
	if err := ro.Checkpoints().Store(context.Background(), note(6, 0)); !errors.Is(err, ErrReadOnly) {
		return fail("read-only Store: %v, want ErrReadOnly", err)
	}
	if private := os.Getenv("STATE_TEST_PRIVATE"); private != "" {
		// root's own state (0700), read by another user: an error, never
		// an empty state.
		if _, err := OpenReadOnly(private); !errors.Is(err, fs.ErrPermission) {
			return fail("OpenReadOnly of a directory this user cannot read: %v, want a permission error", err)
		}
	}
	return 0
}

// TestOpenReadOnly: offline runs read the state without creating, locking
// or writing anything, and without waiting for a run that holds the lock.
func TestOpenReadOnly(t *testing.T) {
	// A missing directory is an empty state, and stays missing.
	missing := filepath.Join(t.TempDir(), "nope", "state")
	d, err := OpenReadOnly(missing)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := d.CheckpointsFor("abc").Load(ctx(t)); cp != nil || err != nil {
		t.Fatalf("Load on a missing directory: %q %v", cp, err)
	}
	if err := d.CheckpointsFor("abc").Store(ctx(t), note(1, 0)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Store: %v", err)
	}
	if _, err := d.Lock(ctx(t)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Lock: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly created something: %v", err)
	}

	// An existing directory whose lock another run holds: reading does
	// not wait, and creates no file.
	dir := filepath.Join(t.TempDir(), "state")
	w := open(t, dir)
	if err := w.Checkpoints().Store(ctx(t), note(7, 0)); err != nil {
		t.Fatal(err)
	}
	unlock, err := w.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before, _ := os.ReadDir(dir)
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ro.Checkpoints().Load(c)
	if err != nil || !strings.Contains(string(cp), "\n7\n") || c.Err() != nil {
		t.Fatalf("Load under another run's lock: %q %v %v", cp, err, c.Err())
	}
	after, _ := os.ReadDir(dir)
	if len(before) != len(after) {
		t.Fatalf("read-only use changed the directory: %v → %v", before, after)
	}

	// The same ownership and mode rules as Open.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var ie *InsecureDirError
	if _, err := OpenReadOnly(dir); !errors.As(err, &ie) {
		t.Fatalf("world-writable directory: %v", err)
	}
}

func TestReadOnlyDir(t *testing.T) {
	dir, err := os.MkdirTemp("", "state-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700); os.RemoveAll(dir) })
	if err := open(t, dir).Checkpoints().Store(ctx(t), note(5, 0)); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		if code := helperReadOnly(dir); code != 0 {
			t.Fatal("read-only checks failed")
		}
		return
	}
	// root writes anywhere: run the checks as nobody, on a root-owned
	// directory nobody can read but not write, with a copy of this test
	// binary nobody can execute.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "checkpoint.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	binDir, err := os.MkdirTemp("", "state-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(binDir, "state.test")
	if err := copyFile(os.Args[0], exe); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(dir, "private")
	if err := open(t, private).Checkpoints().Store(ctx(t), note(5, 0)); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(exe, "-test.run=^$")
	c.Env = []string{"STATE_TEST_HELPER=readonly", "STATE_TEST_DIR=" + dir, "STATE_TEST_PRIVATE=" + private, "PATH=/usr/bin:/bin"}
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// FuzzDecode: the state file parser never panics, and whatever it accepts
// is a bounded checkpoint that parses as a tree head.
func FuzzDecode(f *testing.F) {
	dir := f.TempDir()
	d, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	if err := d.Checkpoints().Store(context.Background(), note(42, 0)); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(filepath.Join(dir, "checkpoint.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"schema_version":1,"checkpoint":"a\n1\nAAAA\n","sha256":""}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, data, reason := decode(b)
		if reason != "" {
			if cp != nil || data != nil {
				t.Fatal("checkpoint returned with a reason")
			}
			return
		}
		if len(cp) == 0 || len(cp) > verify.MaxCheckpointSize {
			t.Fatalf("accepted a checkpoint of %d bytes", len(cp))
		}
		if _, _, err := treeHead(cp); err != nil {
			t.Fatalf("accepted %q: %v", cp, err)
		}
	})
}
