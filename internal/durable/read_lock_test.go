package durable

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// Exactly at the limit is read whole; one byte more is a *TooLargeError,
// for a regular file, a pipe and a stream.
func TestReadLimit(t *testing.T) {
	dir := t.TempDir()
	const limit = 100
	at := filepath.Join(dir, "at")
	over := filepath.Join(dir, "over")
	os.WriteFile(at, bytes.Repeat([]byte("x"), limit), 0o600)
	os.WriteFile(over, bytes.Repeat([]byte("x"), limit+1), 0o600)
	for _, read := range []struct {
		name string
		fn   func(string, int64) ([]byte, error)
	}{{"ReadFile", ReadFile}, {"ReadRegularFile", ReadRegularFile}} {
		b, err := read.fn(at, limit)
		if err != nil || len(b) != limit {
			t.Errorf("%s at the limit: %d bytes, %v", read.name, len(b), err)
		}
		b, err = read.fn(over, limit)
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Path != over || tl.Limit != limit || b != nil {
			t.Errorf("%s over the limit: %d bytes, %v", read.name, len(b), err)
		}
		if _, err := read.fn(filepath.Join(dir, "missing"), limit); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of a missing file: %v", read.name, err)
		}
	}
	for _, n := range []int{limit, limit + 1} {
		b, err := ReadAll(iotest.OneByteReader(bytes.NewReader(make([]byte, n))), "stream", limit)
		var tl *TooLargeError
		switch {
		case n == limit && (err != nil || len(b) != limit):
			t.Errorf("ReadAll of %d: %d bytes, %v", n, len(b), err)
		case n > limit && (!errors.As(err, &tl) || tl.Path != "stream" || b != nil):
			t.Errorf("ReadAll of %d: %d bytes, %v", n, len(b), err)
		}
	}
	if _, err := ReadAll(iotest.ErrReader(errors.New("boom")), "s", 1); err == nil || err.Error() != "boom" {
		t.Errorf("read error: %v", err)
	}
	if got := (&TooLargeError{Path: "/p", Limit: 3}).Error(); got != "/p: larger than 3 bytes" {
		t.Errorf("message %q", got)
	}
}

// ReadFile reads what is not a regular file (a pipe, /dev/null);
// ReadRegularFile refuses it without blocking, even a FIFO nobody writes.
func TestReadSpecialFiles(t *testing.T) {
	b, err := ReadFile(os.DevNull, 10)
	if err != nil || len(b) != 0 {
		t.Errorf("ReadFile(/dev/null): %q %v", b, err)
	}
	var nr *NotRegularError
	if _, err := ReadRegularFile(os.DevNull, 10); !errors.As(err, &nr) {
		t.Errorf("ReadRegularFile(/dev/null): %v", err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadRegularFile(fifo, 10); done <- err }()
	select {
	case err := <-done:
		if !errors.As(err, &nr) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadRegularFile blocked on a FIFO")
	}
	if _, err := ReadRegularFile(t.TempDir(), 10); !errors.As(err, &nr) {
		t.Errorf("directory: %v", err)
	}
	// A pipe with more than the limit in it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(make([]byte, 11)); w.Close() }()
	defer r.Close()
	var tl *TooLargeError
	if _, err := ReadFile("/dev/fd/"+strconv.Itoa(int(r.Fd())), 10); !errors.As(err, &tl) {
		t.Errorf("pipe over the limit: %v", err)
	}
}

func TestTryLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v %v", fi, err)
	}
	// flock locks of two descriptors conflict, even in one process.
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil { // idempotent
		t.Fatal(err)
	}
	l2, err := TryLock(p)
	if err != nil {
		t.Fatalf("after Unlock: %v", err)
	}
	l2.Unlock()
	if _, err := TryLock(filepath.Join(t.TempDir(), "missing", "lock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock in a missing directory: %v", err)
	}
}

// Lock waits for the holder and ends with the context: its cause is the
// error.
func TestLockWaitsAndCancels(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	held, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("gave up")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	start := time.Now()
	if _, err := Lock(ctx, p); !errors.Is(err, cause) {
		t.Fatalf("Lock on a held lock: %v, want the context's cause", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 5*time.Second {
		t.Errorf("cancelled after %v", d)
	}
	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		l, err := Lock(context.Background(), p)
		if err == nil {
			l.Unlock()
		}
		got <- err
	}()
	time.Sleep(30 * time.Millisecond)
	held.Unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the lock")
	}
}

// A lock held by another process is seen; it is released when that
// process dies.
func TestLockAcrossProcesses(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command("flock", "--exclusive", p, "sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // flock and its sleep: one group to kill
	if err := cmd.Start(); err != nil {
		t.Skipf("flock(1): %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := TryLock(p)
		if errors.Is(err, ErrLocked) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		l.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	// The kernel closes the dead sleep's descriptors as it reaps it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l, err := TryLock(p)
		if err == nil {
			l.Unlock()
			break
		}
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("after the holder died: %v", err)
		}
	}
}

// CloseLocked releases the lock even while a copy of the descriptor lives
// on (a child between fork and exec holds one): LOCK_UN releases the open
// file description's lock.
func TestCloseLockedReleasesCopies(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := TryLockFile(f); err != nil {
		t.Fatal(err)
	}
	dup, err := syscall.Dup(int(f.Fd())) // what a forked child would hold
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dup)
	if err := CloseLocked(f); err != nil {
		t.Fatal(err)
	}
	l, err := TryLock(p)
	if err != nil {
		t.Fatalf("lock still held through the copy: %v", err)
	}
	l.Unlock()
}
