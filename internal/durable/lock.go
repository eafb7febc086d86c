package durable

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// ErrLocked is returned (wrapped in an *fs.PathError) by TryLock and
// TryLockFile when another open file description holds the lock: another
// process, or this one through another descriptor (flock locks of one
// process on two descriptors conflict).
var ErrLocked = errors.New("locked by another process")

// Lock waits for an exclusive flock(2) on the file at path (created, mode
// 0600, when missing), polling until the lock is free or ctx ends (the
// error is then context.Cause(ctx)). The kernel releases the lock when
// the process dies.
func Lock(ctx context.Context, path string) (*Locked, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	wait := 5 * time.Millisecond
	for {
		err := TryLockFile(f)
		if err == nil {
			return &Locked{f: f}, nil
		}
		if !errors.Is(err, ErrLocked) {
			f.Close()
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// TryLock takes an exclusive flock(2) on the file at path (created, mode
// 0600, when missing) without waiting: an error wrapping ErrLocked when
// it is held.
func TryLock(path string) (*Locked, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := TryLockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return &Locked{f: f}, nil
}

// TryLockFile takes an exclusive flock(2) on the open file f without
// waiting: an error wrapping ErrLocked when it is held. The lock lasts
// until CloseLocked(f) (or the process's end).
func TryLockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return &os.PathError{Op: "flock", Path: f.Name(), Err: ErrLocked}
		}
		return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
}

// CloseLocked releases the lock on f and closes it, excluding a
// concurrent fork (syscall.ForkLock): a child being started (gpg, by
// this process) holds a copy of every descriptor until it execs, and a
// close alone would leave the lock held by that copy, so a run started
// right after this one ended would find the lock taken. (LOCK_UN releases
// the lock of the open file description, copies included.)
func CloseLocked(f *os.File) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return f.Close()
}

// Locked is a lock held by Lock or TryLock.
type Locked struct {
	f    *os.File
	once sync.Once
	err  error
}

// Unlock releases the lock (see CloseLocked). It is idempotent.
func (l *Locked) Unlock() error {
	l.once.Do(func() { l.err = CloseLocked(l.f) })
	return l.err
}
