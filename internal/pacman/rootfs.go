package pacman

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FileSystem opens files the way the libalpm front-end (pacman) sees them.
// Paths are absolute in that view.
type FileSystem interface {
	// OpenRegular opens path for reading, following symlinks as the
	// front-end's open(2) and stat(2) would, and fails unless it is a
	// regular file (a FIFO or a device is never opened for reading). An
	// absent file is an error for which IsAbsent is true.
	OpenRegular(path string) (*os.File, error)
	// Stat follows symlinks as stat(2) does in the front-end's view.
	Stat(path string) (fs.FileInfo, error)
}

// IsAbsent reports whether err means "no such file" to libalpm's
// _alpm_filecache_find: ENOENT, or ENOTDIR for a path through a
// non-directory. Any other error (permission, a symlink loop) is not
// absence: the caller must not treat the file as missing.
func IsAbsent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR)
}

// NotRegularError is a path that exists but is not a regular file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is not a regular file (%s)", e.Path, e.Mode.Type())
}

// HostFS is the hook's own view of the file system: the root alpm
// chrooted it into. It is what bintrans sees when it cannot see pacman's
// view (/proc not mounted in the root, or a front-end other than pacman).
type HostFS struct{}

// OpenRegular implements FileSystem.
func (HostFS) OpenRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	return regularOnly(f, p)
}

// Stat implements FileSystem.
func (HostFS) Stat(p string) (fs.FileInfo, error) { return os.Stat(p) }

func regularOnly(f *os.File, p string) (*os.File, error) {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: p, Mode: st.Mode()}
	}
	return f, nil
}

// RootFS is the file system as a process whose root directory is Dir sees
// it, typically Dir = /proc/<pacman's pid>/root: paths are resolved with
// openat2(RESOLVE_IN_ROOT), so absolute symlinks and ".." stay inside that
// root exactly as for the process itself (opening "/proc/<pid>/root/<path>"
// by name would resolve an absolute symlink in the hook's chroot instead).
// Magic links (/proc/self/fd/N) are refused. It implements FileSystem and
// fs.FS (names relative to the root, for the pacman.conf parser).
type RootFS struct {
	dir  string
	root *os.File // O_PATH directory
}

// ErrNoOpenat2 is returned on kernels without openat2 (Linux < 5.6).
var ErrNoOpenat2 = errors.New("the kernel has no openat2 (Linux 5.6 or later is needed to resolve paths in pacman's root)")

// OpenRootFS opens dir (following a magic link such as /proc/<pid>/root)
// as the root of a RootFS.
func OpenRootFS(dir string) (*RootFS, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	r := &RootFS{dir: dir, root: os.NewFile(uintptr(fd), dir)}
	// Probe openat2 once, so that callers learn about an old kernel here
	// and not as a per-file error.
	if f, err := r.openat2(".", unix.O_PATH|unix.O_DIRECTORY); err != nil {
		r.Close()
		return nil, err
	} else {
		unix.Close(f)
	}
	return r, nil
}

// Close releases the root directory.
func (r *RootFS) Close() error { return r.root.Close() }

// Dir is the directory the RootFS was opened at.
func (r *RootFS) Dir() string { return r.dir }

func (r *RootFS) openat2(p string, flags int) (int, error) {
	flags |= unix.O_CLOEXEC
	if flags&unix.O_PATH == 0 {
		flags |= unix.O_NOCTTY // openat2 refuses O_PATH with other flags
	}
	how := unix.OpenHow{
		Flags:   uint64(flags),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 {
		fd, err := unix.Openat2(int(r.root.Fd()), p, &how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue // a concurrent rename during ".." resolution
		case errors.Is(err, unix.ENOSYS):
			return -1, ErrNoOpenat2
		default:
			return -1, &fs.PathError{Op: "open", Path: p, Err: err}
		}
	}
	return -1, &fs.PathError{Op: "open", Path: p, Err: unix.EAGAIN}
}

// OpenRegular implements FileSystem.
func (r *RootFS) OpenRegular(p string) (*os.File, error) {
	fd, err := r.openat2(p, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return regularOnly(os.NewFile(uintptr(fd), p), p)
}

// Stat implements FileSystem.
func (r *RootFS) Stat(p string) (fs.FileInfo, error) {
	fd, err := r.openat2(p, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	return f.Stat()
}

// Open implements fs.FS: name is relative to the root ("etc/pacman.conf").
// Directories can be read (fs.Glob); other files must be regular.
func (r *RootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	fd, err := r.openat2("/"+name, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "/"+name)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: "/" + name, Mode: st.Mode()}
	}
	return f, nil
}

// Bounds of PathOf: directory depth and entries read per directory.
const (
	maxPathDepth  = 1024
	maxDirEntries = 1 << 20
)

// PathOf returns the absolute path, inside the root, of the open directory
// dir (for pacman's saved working directory): it walks up with ".."
// until it meets the root, naming each step by the directory entry whose
// device and inode match, as getcwd(3) does in user space. A directory that
// is not under the root is an error.
//
// A process chrooted below the root (the hook, chrooted into pacman's
// RootDir) cannot walk above its own root with "..": when the walk meets
// this process's own root directory, ownRoot must be the path of that
// directory inside the root (pacman's RootDir); it is checked (same device
// and inode) and the walk ends there. "" means unknown: then such a
// directory has no path.
func (r *RootFS) PathOf(dir *os.File, ownRoot string) (string, error) {
	var rootSt, selfSt unix.Stat_t
	if err := unix.Fstat(int(r.root.Fd()), &rootSt); err != nil {
		return "", err
	}
	if err := unix.Stat("/", &selfSt); err != nil {
		return "", err
	}
	cur, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &fs.PathError{Op: "open", Path: dir.Name(), Err: err}
	}
	defer func() { unix.Close(cur) }()
	var names []string
	suffix := func() string {
		var b strings.Builder
		for i := len(names) - 1; i >= 0; i-- {
			b.WriteString("/" + names[i])
		}
		return b.String()
	}
	for range maxPathDepth {
		var st unix.Stat_t
		if err := unix.Fstat(cur, &st); err != nil {
			return "", err
		}
		if st.Dev == rootSt.Dev && st.Ino == rootSt.Ino {
			if p := suffix(); p != "" {
				return p, nil
			}
			return "/", nil
		}
		if st.Dev == selfSt.Dev && st.Ino == selfSt.Ino {
			// ".." stops here for this process: name this directory by
			// ownRoot, if ownRoot is this directory in the root.
			if ownRoot == "" || !path.IsAbs(ownRoot) {
				return "", fmt.Errorf("directory %s is inside this process's root directory, whose path in %s is unknown", dir.Name(), r.dir)
			}
			var ost unix.Stat_t
			ofd, err := r.openat2(ownRoot, unix.O_PATH|unix.O_DIRECTORY)
			if err == nil {
				err = unix.Fstat(ofd, &ost)
				unix.Close(ofd)
			}
			if err != nil || ost.Dev != st.Dev || ost.Ino != st.Ino {
				return "", fmt.Errorf("directory %s is inside this process's root directory, which is not %s in %s", dir.Name(), ownRoot, r.dir)
			}
			return strings.TrimSuffix(ownRoot, "/") + suffix(), nil
		}
		parent, err := unix.Openat(cur, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		var pst unix.Stat_t
		if err := unix.Fstat(parent, &pst); err != nil {
			unix.Close(parent)
			return "", err
		}
		if pst.Dev == st.Dev && pst.Ino == st.Ino {
			unix.Close(parent)
			return "", fmt.Errorf("directory %s is not under %s", dir.Name(), r.dir)
		}
		name, err := entryOf(parent, st)
		if err != nil {
			unix.Close(parent)
			return "", fmt.Errorf("naming %s: %w", dir.Name(), err)
		}
		names = append(names, name)
		unix.Close(cur)
		cur = parent
	}
	return "", fmt.Errorf("directory %s is more than %d levels deep", dir.Name(), maxPathDepth)
}

// entryOf names the entry of directory fd dir whose stat (mounts followed,
// symlinks not) is st.
func entryOf(dir int, st unix.Stat_t) (string, error) {
	d, err := unix.Dup(dir)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(d), "..")
	defer f.Close()
	seen := 0
	for {
		ents, err := f.ReadDir(256)
		for _, e := range ents {
			seen++
			if seen > maxDirEntries {
				return "", fmt.Errorf("more than %d entries in a parent directory", maxDirEntries)
			}
			if e.Type()&fs.ModeSymlink != 0 {
				continue
			}
			var est unix.Stat_t
			if unix.Fstatat(dir, e.Name(), &est, unix.AT_SYMLINK_NOFOLLOW) == nil && est.Dev == st.Dev && est.Ino == st.Ino {
				return e.Name(), nil
			}
		}
		if err != nil {
			return "", fmt.Errorf("no entry of the parent directory is the child (removed meanwhile?)")
		}
	}
}

// join makes p absolute against cwd ("" when cwd is unknown and p is
// relative), without cleaning it: ".." is resolved on the file system.
func join(cwd, p string) (string, bool) {
	if path.IsAbs(p) {
		return p, true
	}
	if cwd == "" {
		return "", false
	}
	if strings.HasSuffix(cwd, "/") {
		return cwd + p, true
	}
	return cwd + "/" + p, true
}

// fdName is the base name of the file open as f, from /proc/self/fd (the
// final component after symlinks), or "" when /proc is not readable.
func fdName(f *os.File) string {
	l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !strings.HasPrefix(l, "/") || strings.HasSuffix(l, " (deleted)") {
		return ""
	}
	return path.Base(l)
}
