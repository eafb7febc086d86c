package pacman

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Bounds on the target list an alpm hook reads from stdin.
const (
	// MaxTargets is far above any real transaction (a full Arch install is
	// about 2000 packages; all of core+extra about 15 000).
	MaxTargets = 100000
	// MaxNameLen bounds one package name (alpm has no limit; real names
	// are under 100 bytes).
	MaxNameLen = 256
)

// TargetsError is a target list that is not what alpm writes.
type TargetsError struct {
	Line int
	Msg  string
}

func (e *TargetsError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("hook targets, line %d: %s", e.Line, e.Msg)
	}
	return "hook targets: " + e.Msg
}

// ParseTargets reads the package names alpm writes to a NeedsTargets hook:
// one name per line. Surrounding white space and empty lines are ignored,
// duplicates are dropped, order is kept. A name holding white space, '/',
// or a control character, a name longer than MaxNameLen, or more than
// MaxTargets names is an error: alpm never writes them.
func ParseTargets(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), MaxNameLen+64)
	var names []string
	seen := map[string]bool{}
	n := 0
	for sc.Scan() {
		n++
		name := trim(sc.Text())
		if name == "" {
			continue
		}
		if len(name) > MaxNameLen {
			return nil, &TargetsError{Line: n, Msg: fmt.Sprintf("package name longer than %d bytes", MaxNameLen)}
		}
		if i := strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }); i >= 0 {
			return nil, &TargetsError{Line: n, Msg: fmt.Sprintf("%q is not a package name", name)}
		}
		if seen[name] {
			continue
		}
		if len(names) >= MaxTargets {
			return nil, &TargetsError{Line: n, Msg: fmt.Sprintf("more than %d targets", MaxTargets)}
		}
		seen[name] = true
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, &TargetsError{Line: n + 1, Msg: fmt.Sprintf("package name longer than %d bytes", MaxNameLen)}
		}
		return nil, &TargetsError{Msg: err.Error()}
	}
	return names, nil
}
