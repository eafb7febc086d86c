// Package durable is bintrans's one layer for files that must survive a
// crash and for files it must not read without a bound: atomic replacement
// (WriteFile, WriteFileFrom), directories whose renames are made durable together (Dir,
// GroupSync, Batch), bounded whole-file reads (ReadFile, ReadRegularFile,
// ReadAll), advisory locks (Lock, TryLock) and the removal of the temp files
// a killed writer left (RemoveStaleTemps).
//
// Guarantees, on a POSIX file system that honours fsync:
//   - a file written by WriteFile (or Dir.WriteFile, Batch) is replaced by
//     rename(2): a reader, and the file system after a crash, sees the old
//     content or the new one, never a mix and never a prefix;
//   - WriteFile returns only once the data and the rename are on stable
//     storage (fsync of the file, then of its directory). Dir.WriteFile
//     leaves the directory fsync to Dir.Sync, so that concurrent writers
//     share it;
//   - every temp file is named TempName(target, digits) in the target's
//     directory, so RemoveStaleTemps can find exactly those of a writer that
//     was killed, and nothing else;
//   - a bounded read never returns a truncated file: a file longer than the
//     limit is a *TooLargeError.
//
// The package knows nothing of what the files mean; callers wrap its errors
// with their own context.
package durable

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// step names a point of WriteFile at which a test can inject a failure.
type step string

const (
	stepCreate  step = "create"
	stepWrite   step = "write"
	stepChmod   step = "chmod"
	stepSync    step = "sync"
	stepClose   step = "close"
	stepRename  step = "rename"
	stepSyncDir step = "syncdir"
	// stepSyncFiles is a Batch's data sync.
	stepSyncFiles step = "syncfiles"
)

// failAt, when set (tests only), is called before each step of a write;
// a non-nil error makes the step fail with it.
var failAt func(step) error

func inject(s step) error {
	if failAt != nil {
		return failAt(s)
	}
	return nil
}

// tempPattern is the os.CreateTemp pattern of target's temp files: a dot
// (hidden), the target's name, ".tmp-" and the random decimal CreateTemp
// puts at the '*'.
func tempPattern(target string) string { return "." + target + ".tmp-*" }

// tempRE matches the names tempPattern yields: CreateTemp's random part is
// a decimal uint32.
var tempRE = regexp.MustCompile(`^\.(.+)\.tmp-[0-9]{1,10}$`)

// TempTarget returns the name of the file a temp file named name would
// have replaced, and whether name is such a temp file at all.
func TempTarget(name string) (target string, ok bool) {
	m := tempRE.FindStringSubmatch(name)
	if m == nil || strings.Contains(m[1], "/") {
		return "", false
	}
	return m[1], true
}

// WriteFile replaces the file at path with data, atomically and durably:
// a temp file in the same directory, write, chmod perm, fsync, rename over
// path, fsync of the directory. On any error the temp file is removed and
// path is left as it was (or, when only the directory fsync failed, already
// replaced but perhaps not durably).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return WriteFileFrom(path, perm, writeBytes(data))
}

// WriteFileFrom is WriteFile for content too large to hold in memory: write
// streams it into the temp file. An error of write is returned as it is,
// and path is left as it was.
func WriteFileFrom(path string, perm fs.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := replace(dir, filepath.Base(path), write, perm, true); err != nil {
		return err
	}
	if err := inject(stepSyncDir); err != nil {
		return err
	}
	return SyncDir(dir)
}

// replace writes dir/name through a temp file, fsync'ed (when syncData)
// before the rename. It does not sync the directory.
func replace(dir, name string, write func(io.Writer) error, perm fs.FileMode, syncData bool) (err error) {
	tmp, err := writeTemp(dir, name, write, perm, syncData)
	if err != nil {
		return err
	}
	if err = inject(stepRename); err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// writeTemp writes the content write produces to a new temp file for
// dir/name (fsync'ed when syncData) and returns its path; on error nothing
// is left behind.
func writeTemp(dir, name string, write func(io.Writer) error, perm fs.FileMode, syncData bool) (path string, err error) {
	if err := inject(stepCreate); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, tempPattern(name))
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = inject(stepWrite); err != nil {
		return "", err
	}
	if err = write(f); err != nil {
		return "", err
	}
	if err = inject(stepChmod); err != nil {
		return "", err
	}
	if err = f.Chmod(perm); err != nil {
		return "", err
	}
	if syncData {
		if err = inject(stepSync); err != nil {
			return "", err
		}
		if err = f.Sync(); err != nil {
			return "", err
		}
	}
	if err = inject(stepClose); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// SyncDir fsyncs the directory dir, making the creations, renames and
// removals in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// RemoveStaleTemps removes from dir the regular files that are temp files
// of this package for a target name that keep accepts: what a writer that
// was killed left behind. Nothing else is touched: not other dot files,
// not directories or symbolic links of such a name. The caller must hold
// whatever lock excludes a live writer in dir. It returns how many files
// it removed.
func RemoveStaleTemps(dir string, keep func(target string) bool) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	var errs []error
	for {
		ents, err := d.ReadDir(1024)
		for _, e := range ents {
			target, ok := TempTarget(e.Name())
			if !ok || !e.Type().IsRegular() || !keep(target) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, errors.Join(errs...)
}
