package pacman

import (
	"fmt"
	"strings"
)

// An Include that matches several files reads them in glob(3)'s order,
// which is strcoll(3)'s in pacman's locale: bintrans cannot know it (see
// expandInclude), so it reads them in bytewise order and refuses every
// configuration in which another order would give pacman another value
// that decides which files libalpm installs:
//
//   - RootDir and DBPath (the first one read wins) and the first
//     Architecture, set by two of the files to different values;
//   - CacheDir values added by two of the files (libalpm takes a package
//     from the first cache directory holding it);
//   - the section a file's first directives belong to: a file with a
//     directive (or an Include) before its first [section], while another
//     file of the same Include opens a section (the directive would land in
//     whichever section the file read before it left open);
//   - the section open after the Include: when two files leave different
//     sections open, a directive after the Include (before the next
//     [section]) is refused.
//
// The set of repositories does not depend on the order; which repository
// libalpm takes a package from does, and does not matter to the hook (every
// cached candidate of every repository must verify).

// orderState follows the parse for the order rules.
type orderState struct {
	groups []*includeGroup // Includes matching several files being read, innermost last

	fileHeader   bool // the file being read has had a section header
	fileHeadless bool // ... and a directive or Include before it
	headless     bool // fileHeadless of the file read last
	sections     int  // section headers read

	// ambiguous is "file:line" of the Include after which the current
	// section depends on the order of its files ("": known).
	ambiguous string
}

type includeGroup struct {
	members []groupMember
}

type groupMember struct {
	file      string
	headless  bool              // a directive before the file's first section header
	opened    bool              // the file (or a file it includes) opened a section
	final     string            // the section open after it
	first     map[string]string // first value read of RootDir, DBPath, Architecture
	cacheDirs bool              // it added CacheDir values
}

func (o *orderState) header() {
	o.fileHeader = true
	o.sections++
	o.ambiguous = ""
}

// directive notes a directive line; in a section that depends on the
// order of an Include's files, only an Include (whose own files may open
// sections) is allowed.
func (o *orderState) directive(file string, n int, key string) error {
	if !o.fileHeader {
		o.fileHeadless = true
	}
	if o.ambiguous != "" && key != "Include" {
		return &ConfError{File: file, Line: n,
			Msg:  fmt.Sprintf("directive '%s' belongs to the section that the last file of the Include at %s leaves open, and glob(3) sorts those files in pacman's locale: bintrans cannot tell which section that is", key, o.ambiguous),
			hint: "start a section ([options] or [repository]) before this line"}
	}
	return nil
}

// enterFile starts a file; the returned func ends it.
func (o *orderState) enterFile() func() {
	h, hl := o.fileHeader, o.fileHeadless
	o.fileHeader, o.fileHeadless = false, false
	return func() {
		o.headless = o.fileHeadless
		o.fileHeader, o.fileHeadless = h, hl
	}
}

// option notes an [options] directive for the files being read.
func (o *orderState) option(key, value string) {
	for _, g := range o.groups {
		m := &g.members[len(g.members)-1]
		switch key {
		case "CacheDir":
			if strings.Trim(value, " ") != "" {
				m.cacheDirs = true
			}
		case "RootDir", "DBPath", "Architecture":
			if key == "Architecture" {
				f := strings.FieldsFunc(value, func(r rune) bool { return r == ' ' })
				if len(f) == 0 {
					continue
				}
				value = f[0]
			}
			if _, ok := m.first[key]; !ok {
				if m.first == nil {
					m.first = map[string]string{}
				}
				m.first[key] = value
			}
		}
	}
}

// group reads the files an Include at file:n matched (sorted bytewise)
// and refuses what their order could change.
func (p *parser) group(file string, n int, matches []string, depth int) error {
	o := &p.order
	g := &includeGroup{}
	o.groups = append(o.groups, g)
	defer func() { o.groups = o.groups[:len(o.groups)-1] }()
	set := map[string]bool{"RootDir": p.rootSet, "DBPath": p.dbSet, "Architecture": len(p.archs) > 0}
	for _, m := range matches {
		g.members = append(g.members, groupMember{file: m})
		sections := o.sections
		if err := p.file(m, depth+1); err != nil {
			return err
		}
		gm := &g.members[len(g.members)-1]
		gm.headless, gm.opened, gm.final = o.headless, o.sections > sections, p.section
	}
	refuse := func(format string, args ...any) error {
		return &ConfError{File: file, Line: n,
			Msg:  fmt.Sprintf("Include matches %d files and ", len(matches)) + fmt.Sprintf(format, args...) + "; glob(3) sorts them in pacman's locale (strcoll), so bintrans cannot tell which one pacman reads first",
			hint: "include such files one Include line each, in the order you mean, or move the setting into one file"}
	}
	ms := g.members
	for i, a := range ms {
		if !a.headless {
			continue
		}
		for j, b := range ms {
			if j != i && b.opened {
				return refuse("%s has directives before its first [section] while %s opens a section (they would belong to the section the file read before it leaves open)", a.file, b.file)
			}
		}
	}
	for _, key := range []string{"RootDir", "DBPath", "Architecture"} {
		if set[key] {
			continue // already set: the files' values are ignored
		}
		first := -1
		for i, m := range ms {
			v, ok := m.first[key]
			switch {
			case !ok:
			case first < 0:
				first = i
			case v != ms[first].first[key]:
				return refuse("%s and %s set %s to different values (the first one read wins)", ms[first].file, m.file, key)
			}
		}
	}
	first := -1
	for i, m := range ms {
		switch {
		case !m.cacheDirs:
		case first < 0:
			first = i
		default:
			return refuse("%s and %s both add CacheDir values (libalpm takes a package from the first cache directory holding it)", ms[first].file, m.file)
		}
	}
	opener := -1
	for i, m := range ms {
		switch {
		case !m.opened:
		case opener < 0:
			opener = i
		case m.final != ms[opener].final:
			o.ambiguous = fmt.Sprintf("%s:%d", file, n)
		}
	}
	return nil
}
