// Package rootfile refuses, when bintrans runs as root, to trust a file
// that someone other than root could have written: the configuration
// (/etc/bintrans.conf), the keys it names (transparency, log, rebuilder
// keys), sign's secret key and password file, and the state directory.
// Whoever can write one of them can make the pacman hook accept what it
// must refuse (another key, another log, --unsafe-allow-local, offline
// without a stored checkpoint) — with root's authority.
//
// The rule, as sudo applies it to sudoers and OpenSSH (StrictModes) to
// authorized_keys, but up to "/":
//
//   - the file is owned by root and not writable by its group or others;
//   - every directory on the way to it, from "/" down, is owned by root and
//     not writable by its group or others — except a sticky directory
//     (such as /tmp, mode 1777), whose entries only their owner can
//     remove or rename: it is accepted when the entry bintrans goes
//     through next is owned by root;
//   - symbolic links are followed (at most 40), and the directories of
//     each link's target are held to the same rule as those of the path.
//
// Group-writable counts as writable by others even when the group is root
// (on Debian /usr/local is root:staff, mode 2775: its members are then
// refused). The null device is accepted (--config /dev/null reads nothing,
// whoever writes to it). When bintrans does not run as root (euid != 0), nothing is
// checked: an unprivileged user's own files are theirs to trust.
package rootfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxLinks bounds the symbolic links followed in one path (as Linux's
// MAXSYMLINKS).
const maxLinks = 40

// InsecureError is a file bintrans refuses to use as root, with the
// evidence: which path on the way to it fails the rule, its owner and mode.
type InsecureError struct {
	// Path is the file (or directory) that was to be used.
	Path string
	// Culprit is the path that fails: Path itself, a directory above it, or
	// the entry of a sticky directory.
	Culprit string
	UID     int
	Mode    fs.FileMode
	// Reason says what is wrong ("is writable by its group and others").
	Reason string
}

func (e *InsecureError) Error() string {
	what := "it"
	if e.Culprit != e.Path {
		what = e.Culprit
	}
	s := fmt.Sprintf("%s: refusing to use it as root: %s %s (owner %s, mode %s)", e.Path, what, e.Reason, owner(e.UID), modeString(e.Mode))
	return s
}

// Hint says how to fix it.
func (e *InsecureError) Hint() string {
	q := shellQuote(e.Culprit)
	switch {
	case e.UID != 0 && e.Mode.Perm()&0o022 != 0:
		return fmt.Sprintf("root must be the only one able to change what it trusts: chown root:root %s && chmod go-w %s", q, q)
	case e.UID != 0:
		return fmt.Sprintf("root must be the only one able to change what it trusts: chown root:root %s (or move the file where only root can write)", q)
	default:
		return fmt.Sprintf("root must be the only one able to change what it trusts: chmod go-w %s (or move the file where only root can write)", q)
	}
}

func owner(uid int) string {
	s := "uid " + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		s += " (" + u.Username + ")"
	}
	return s
}

func modeString(m fs.FileMode) string {
	return fmt.Sprintf("%04o %s", uint32(m.Perm())|specialBits(m), m.String())
}

func specialBits(m fs.FileMode) uint32 {
	var b uint32
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '+' || r == ':' || r == '@' ||
			('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Enforced reports whether the checks apply: bintrans runs as root.
func Enforced() bool { return os.Geteuid() == 0 }

// Check applies the rule to path (a file or a directory) when running as
// root; otherwise it returns nil. A path that does not exist is reported as
// the *fs.PathError of the first missing component (errors.Is
// fs.ErrNotExist), after the directories above it passed.
func Check(path string) error {
	if !Enforced() {
		return nil
	}
	return CheckAlways(path)
}

// CheckAlways applies the rule whoever runs bintrans (tests; tools that
// want it for an unprivileged user too).
func CheckAlways(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return walk(abs)
}

// walk resolves abs one component at a time from "/", following symbolic
// links, and applies the rule to every directory it goes through and to
// the final file.
func walk(abs string) error {
	root, err := os.Lstat("/")
	if err != nil {
		return err
	}
	type dir struct {
		path string
		fi   fs.FileInfo
	}
	cur := dir{"/", root}
	todo := split(abs)
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			parent := filepath.Dir(cur.path)
			fi, err := os.Lstat(parent)
			if err != nil {
				return err
			}
			cur = dir{parent, fi}
			continue
		}
		next := filepath.Join(cur.path, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return err
		}
		if err := checkDir(abs, cur.path, cur.fi, next, fi); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return &fs.PathError{Op: "resolve", Path: abs, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				cur = dir{"/", root}
			}
			todo = append(split(target), todo...)
			continue
		}
		if len(todo) > 0 && !fi.IsDir() && !onlyDots(todo) {
			return &fs.PathError{Op: "resolve", Path: abs, Err: syscall.ENOTDIR}
		}
		cur = dir{next, fi}
	}
	// The file itself.
	if isNullDevice(cur.fi) {
		return nil // reads nothing whoever writes it: --config /dev/null
	}
	uid := ownerOf(cur.fi)
	switch {
	case uid != 0:
		return &InsecureError{Path: abs, Culprit: cur.path, UID: uid, Mode: cur.fi.Mode(), Reason: "is not owned by root"}
	case cur.fi.Mode().Perm()&0o022 != 0:
		return &InsecureError{Path: abs, Culprit: cur.path, UID: uid, Mode: cur.fi.Mode(), Reason: "is writable by " + writers(cur.fi.Mode())}
	}
	return nil
}

// checkDir applies the rule to directory d (info di), through which the
// walk goes to its entry next (info ni).
func checkDir(abs, d string, di fs.FileInfo, next string, ni fs.FileInfo) error {
	uid := ownerOf(di)
	if uid != 0 {
		return &InsecureError{Path: abs, Culprit: d, UID: uid, Mode: di.Mode(), Reason: "(a directory on the way to it) is not owned by root"}
	}
	if di.Mode().Perm()&0o022 == 0 {
		return nil
	}
	if di.Mode()&fs.ModeSticky == 0 {
		return &InsecureError{Path: abs, Culprit: d, UID: uid, Mode: di.Mode(), Reason: "(a directory on the way to it) is writable by " + writers(di.Mode())}
	}
	// Sticky: only the entry's owner (or root) can remove or rename it.
	if nu := ownerOf(ni); nu != 0 {
		return &InsecureError{Path: abs, Culprit: next, UID: nu, Mode: ni.Mode(),
			Reason: "is not owned by root, in a directory others can write (" + d + ", sticky)"}
	}
	return nil
}

// isNullDevice reports whether fi is the null device (character device
// 1:3 on Linux).
func isNullDevice(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0x103
}

func writers(m fs.FileMode) string {
	switch p := m.Perm(); {
	case p&0o022 == 0o022:
		return "its group and others"
	case p&0o020 != 0:
		return "its group"
	}
	return "others"
}

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

func split(p string) []string {
	return strings.Split(p, "/")
}

func onlyDots(parts []string) bool {
	for _, p := range parts {
		if p != "" && p != "." {
			return false
		}
	}
	return true
}

// IsInsecure reports whether err is (or wraps) an *InsecureError.
func IsInsecure(err error) bool {
	var ie *InsecureError
	return errors.As(err, &ie)
}
