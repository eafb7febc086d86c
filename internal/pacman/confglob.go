package pacman

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
)

// pacman expands `Include = PATTERN` with glibc's glob(3), flags
// GLOB_NOCHECK only (conf.c process_include), in the user's locale
// (pacman calls setlocale(LC_ALL, "")). bintrans expands the part of that
// language whose meaning does not depend on the locale, exactly, and
// refuses the rest (includeRefusal):
//
//   - `*` and `?` in a path component match any string / any one character
//     of a name, except a leading '.' (no GLOB_PERIOD); components without
//     them are literal;
//   - bracket expressions (`[a-z]`, `[!_]`, `[[:alpha:]]`: negation,
//     ranges, classes and collating elements depend on glibc and the
//     locale) and backslash escapes are refused, as are '..' components
//     (the kernel resolves them after symlinks, a path reader lexically),
//     a wildcard component starting with '.' (glob(3) then also returns
//     "." and ".."), a trailing '/' (glob(3) then returns directories, which
//     pacman reads as empty files) and non-ASCII bytes in a wildcard
//     component or in a name a wildcard is matched against (`?` is one
//     byte or one multibyte character depending on the locale);
//   - without wildcards the pattern is the one path; a wildcard pattern that
//     matches nothing is the pattern itself (GLOB_NOCHECK), which pacman
//     then fails to open: both are opened as written;
//   - a wildcard component matches the entries of every directory matched
//     so far; a literal component after a wildcard one keeps the paths that
//     exist (as lstat(2) sees them: a dangling symlink counts).
//
// glob(3) sorts the matches with strcoll(3), in pacman's locale: the order
// of several included files is unknown to bintrans (in en_US.UTF-8
// "a.conf" < "B.conf", in C the reverse). The matches are returned sorted
// bytewise (the C locale's order) and the parser refuses a configuration in
// which their order decides a value (parser.group).

// maxGlobEntries bounds the directory entries one Include reads.
const maxGlobEntries = 1 << 16

// includeRefusal is an Include pattern bintrans does not expand.
func includeRefusal(file string, line int, pattern, why string) *ConfError {
	return &ConfError{File: file, Line: line,
		Msg:  fmt.Sprintf("Include pattern %q: %s; pacman expands it with glob(3) in its locale, so bintrans cannot tell which files pacman reads", pattern, why),
		hint: "list the files one Include each, or use only '*' and '?' wildcards (bintrans expands those exactly)"}
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// expandInclude expands pattern as glob(3) with GLOB_NOCHECK would. A
// relative pattern is taken relative to the directory base (pacman's
// working directory), whose own characters are not pattern syntax. The
// results are absolute paths, sorted bytewise.
func expandInclude(fsys fs.FS, file string, line int, base, pattern string) ([]string, error) {
	refuse := func(why string) ([]string, error) { return nil, includeRefusal(file, line, pattern, why) }
	switch {
	case pattern == "":
		return nil, &ConfError{File: file, Line: line, Msg: "directive 'Include' needs a value"}
	case strings.ContainsAny(pattern, "[]"):
		return refuse("a bracket expression ('[...]': negation, ranges and classes are glob(3)'s and the locale's)")
	case strings.Contains(pattern, `\`):
		return refuse("a backslash escape")
	case strings.HasSuffix(pattern, "/"):
		return refuse("a trailing '/' (glob(3) then matches directories, which pacman reads as empty files)")
	}
	comps := strings.Split(pattern, "/")
	for _, c := range comps {
		switch {
		case c == "..":
			return refuse("a '..' component (the kernel resolves it after symlinks)")
		case hasWildcard(c) && strings.HasPrefix(c, "."):
			return refuse("a wildcard component starting with '.' (glob(3) also matches \".\" and \"..\")")
		case hasWildcard(c) && !isASCII(c):
			return refuse("non-ASCII bytes next to a wildcard (what '?' matches depends on the locale)")
		}
	}
	abs := pattern
	if !path.IsAbs(pattern) {
		abs = strings.TrimSuffix(base, "/") + "/" + pattern
	}
	if !hasWildcard(pattern) {
		return []string{abs}, nil
	}
	// dirs are the paths matched so far, starting from the literal
	// directory before the first wildcard component.
	first := slices.IndexFunc(comps, hasWildcard)
	prefix := strings.Join(comps[:first], "/")
	switch {
	case path.IsAbs(pattern) && prefix == "":
		prefix = "/"
	case !path.IsAbs(pattern):
		prefix = strings.TrimSuffix(strings.TrimSuffix(base, "/")+"/"+prefix, "/")
	}
	dirs := []string{prefix}
	entries := 0
	for _, c := range comps[first:] {
		if c == "" || c == "." {
			continue // the same directory
		}
		var next []string
		for _, d := range dirs {
			names, err := readDirNames(fsys, d, &entries)
			if errors.Is(err, errTooManyEntries) {
				return refuse(fmt.Sprintf("more than %d directory entries to match", maxGlobEntries))
			}
			if err != nil {
				if isNotDir(err) {
					continue // opendir fails for pacman too: no match
				}
				return nil, &ConfError{File: file, Line: line, Msg: fmt.Sprintf("Include pattern %q: cannot read directory %s", pattern, d), Err: err}
			}
			for _, name := range names {
				if !hasWildcard(c) {
					if name == c {
						next = append(next, joinPath(d, name))
					}
					continue
				}
				if strings.HasPrefix(name, ".") {
					continue // no wildcard matches a leading '.'
				}
				if !isASCII(name) {
					return refuse(fmt.Sprintf("the name %q in %s has non-ASCII bytes (whether a wildcard matches it depends on the locale)", name, d))
				}
				if ok, _ := path.Match(c, name); ok {
					next = append(next, joinPath(d, name))
				}
			}
		}
		dirs = next
	}
	if len(dirs) == 0 {
		return []string{abs}, nil // GLOB_NOCHECK
	}
	slices.Sort(dirs)
	return dirs, nil
}

func joinPath(dir, name string) string {
	return strings.TrimSuffix(dir, "/") + "/" + name
}

var errTooManyEntries = errors.New("too many directory entries")

// readDirNames lists the directory d (absolute) of fsys, counting the
// entries against *n.
func readDirNames(fsys fs.FS, d string, n *int) ([]string, error) {
	name := fsPath(d)
	if name == "" {
		name = "."
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd, ok := f.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: d, Err: errNotDir}
	}
	var names []string
	for {
		ents, err := rd.ReadDir(1024)
		for _, e := range ents {
			*n++
			if *n > maxGlobEntries {
				return nil, errTooManyEntries
			}
			names = append(names, e.Name())
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

var errNotDir = errors.New("not a directory")

// isNotDir reports an error for which glob(3)'s opendir fails quietly: the
// path does not exist or is not a directory.
func isNotDir(err error) bool {
	var nr *NotRegularError
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) || errors.Is(err, syscall.ENOTDIR) || errors.As(err, &nr)
}
