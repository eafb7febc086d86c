// Package pacman reads pacman's configuration and maps the package names of
// a transaction to the files pacman downloaded, as an alpm hook sees them.
//
// The parser follows Debian's pacman 6.0.2 (measured against pacman and
// pacman-conf): lines are read as fgets(3) into a PATH_MAX buffer reads them
// (a longer line is refused), only whole lines starting with '#' are
// comments (a '#' after a value is part of the value), keys and values are
// split at the first '=' and trimmed, Include patterns are expanded as
// glob(3) does (confglob.go; what depends on pacman's locale is refused) and
// a file that cannot be read is an error, unknown directives are warnings,
// DBPath and RootDir keep their first value, CacheDir and Architecture
// accumulate space-separated values, and "auto" is the machine's
// architecture. A configuration whose values would depend on the order in
// which glob(3) returns one Include's files is refused (confgroup.go).
package pacman

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/bintrans/bintrans/internal/durable"
)

// Defaults pacman uses when pacman.conf does not set a path.
const (
	DefaultConfPath = "/etc/pacman.conf"
	DefaultRootDir  = "/"
	DefaultDBPath   = "/var/lib/pacman/"
	DefaultCacheDir = "/var/cache/pacman/pkg/"
)

// Limits bound what the parser reads. The zero value of a field means "use
// the default" (DefaultLimits).
type Limits struct {
	MaxFileSize int64 // bytes per file (pacman.conf or an included file)
	MaxFiles    int   // files read in total, the main file included
	MaxDepth    int   // Include nesting; pacman's own limit is 10
	MaxLineLen  int   // bytes per line, its '\n' included; at most PacmanMaxLine
	MaxRepos    int   // repository sections
	MaxValues   int   // CacheDir, Architecture and Server values in total
}

// PacmanMaxLine is the longest line pacman reads as one: parse_ini reads
// pacman.conf with fgets(line, PATH_MAX) (common/ini.c), at most 4095 bytes
// per call, the '\n' included; the rest of a longer line is read as the
// next line. bintrans refuses any line pacman would split.
const PacmanMaxLine = 4095

// DefaultLimits are generous for any real pacman.conf (a full Arch
// mirrorlist is about 1000 lines) and small enough to keep a hostile
// include tree cheap.
func DefaultLimits() Limits {
	return Limits{
		MaxFileSize: 1 << 20,
		MaxFiles:    256,
		MaxDepth:    10,
		MaxLineLen:  PacmanMaxLine,
		MaxRepos:    256,
		MaxValues:   1 << 16,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxLineLen <= 0 || l.MaxLineLen > PacmanMaxLine {
		l.MaxLineLen = d.MaxLineLen
	}
	if l.MaxRepos <= 0 {
		l.MaxRepos = d.MaxRepos
	}
	if l.MaxValues <= 0 {
		l.MaxValues = d.MaxValues
	}
	return l
}

// Config is what bintrans needs from pacman.conf. Paths are as written in
// the file (host paths); see InRoot for how an alpm hook sees them.
type Config struct {
	// Path is the file that was parsed.
	Path string
	// RootDir, DBPath: pacman's values after defaults (DBPath defaults to
	// RootDir/var/lib/pacman/ when RootDir is set).
	RootDir string
	DBPath  string
	// CacheDirs in the order pacman tries them.
	CacheDirs []string
	// Architectures with "auto" resolved; the first one is $arch.
	Architectures []string
	// Repos in configuration order: pacman's precedence for a name found
	// in several repositories.
	Repos []Repo
	// Warnings are what pacman would warn about (unknown directives,
	// repositories pacman refuses to register); the configuration is still
	// usable, as it is for pacman.
	Warnings []string
}

// rawConf is what a configuration file itself set, before defaults: a
// command line that sets RootDir or DBPath overrides these, and its
// --cachedir values come before them (Frontend.EffectiveConfig).
type rawConf struct {
	root, dbpath string
	cacheDirs    []string
}

// Repo is one repository section.
type Repo struct {
	Name string
	// Servers with $repo and $arch substituted, in configuration order.
	Servers []string
}

// Repo returns the repository named name, or nil.
func (c *Config) Repo(name string) *Repo {
	for i := range c.Repos {
		if c.Repos[i].Name == name {
			return &c.Repos[i]
		}
	}
	return nil
}

// SyncDBPath is the file pacman keeps the sync database of repo in.
func (c *Config) SyncDBPath(repo string) string {
	return filepath.Join(c.DBPath, "sync", repo+".db")
}

// ConfError is a configuration pacman itself would refuse, or one that
// exceeds the parser's limits. File and Line locate it (Line 0: the whole
// file).
type ConfError struct {
	File string
	Line int
	Msg  string
	Err  error
	hint string // what to do, when more specific than Hint's default
}

func (e *ConfError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Err != nil {
		return fmt.Sprintf("pacman config %s: %s: %v", loc, e.Msg, e.Err)
	}
	return fmt.Sprintf("pacman config %s: %s", loc, e.Msg)
}

func (e *ConfError) Unwrap() error { return e.Err }

// Hint says what to do about a broken pacman.conf.
func (e *ConfError) Hint() string {
	if e.hint != "" {
		return e.hint
	}
	return "check it with 'pacman-conf --config " + e.File + "'; bintrans reads it the way pacman does"
}

// ParseFile parses the pacman.conf at path, following Include directives
// on the local file system. A relative path (and a relative Include) is
// taken relative to the working directory, as pacman does.
func ParseFile(path string, lim Limits) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &ConfError{File: path, Msg: "cannot resolve path", Err: err}
	}
	return ParseFS(os.DirFS("/"), abs, lim)
}

// ParseFS parses the pacman.conf at the absolute path name, reading it and
// every included file from fsys, which stands for the file system root
// ("/etc/pacman.conf" is "etc/pacman.conf" in fsys).
func ParseFS(fsys fs.FS, name string, lim Limits) (*Config, error) {
	c, _, err := parseFS(fsys, name, "", lim)
	return c, err
}

// parseFS is ParseFS with the working directory against which relative
// Include patterns are resolved ("": this process's).
func parseFS(fsys fs.FS, name, wd string, lim Limits) (*Config, rawConf, error) {
	p := &parser{fsys: fsys, lim: lim.withDefaults(), cfg: &Config{Path: name}, wd: wd}
	if err := p.file(name, 0); err != nil {
		return nil, rawConf{}, err
	}
	raw := p.raw
	raw.cacheDirs = append([]string(nil), p.cfg.CacheDirs...)
	c, err := p.finish()
	return c, raw, err
}

type parser struct {
	fsys    fs.FS
	lim     Limits
	cfg     *Config
	files   int
	values  int
	section string // current section: "" none yet, "options", or a repo name
	repo    *Repo  // nil unless the current repo section is being kept
	seen    map[string]bool

	rootSet, dbSet bool
	archs          []string
	wd             string // for relative Includes; "" = os.Getwd
	raw            rawConf

	order orderState // what the order of an Include's matches could change
}

func (p *parser) warnf(file string, line int, format string, args ...any) {
	if len(p.cfg.Warnings) < 100 {
		p.cfg.Warnings = append(p.cfg.Warnings, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, args...))
	}
}

func fsPath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (p *parser) file(name string, depth int) error {
	p.files++
	if p.files > p.lim.MaxFiles {
		return &ConfError{File: name, Msg: fmt.Sprintf("more than %d files included", p.lim.MaxFiles)}
	}
	defer p.order.enterFile()()
	f, err := p.fsys.Open(fsPath(name))
	if err != nil {
		return &ConfError{File: name, Msg: "could not be read", Err: err}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil // fopen(3) opens it, fgets(3) fails at once: an empty file to pacman
	}
	data, err := durable.ReadAll(f, name, p.lim.MaxFileSize)
	var tl *durable.TooLargeError
	if errors.As(err, &tl) {
		return &ConfError{File: name, Msg: fmt.Sprintf("larger than %d bytes", p.lim.MaxFileSize)}
	}
	if err != nil {
		return &ConfError{File: name, Msg: "could not be read", Err: err}
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return &ConfError{File: name, Msg: "contains a NUL byte: not a text file"}
	}
	for lineNo := 1; len(data) > 0; lineNo++ {
		// A line as fgets(3) reads it: up to and including '\n'; a '\r'
		// before it is part of the line (and counts).
		n := bytes.IndexByte(data, '\n') + 1
		if n == 0 {
			n = len(data)
		}
		if n > p.lim.MaxLineLen {
			return &ConfError{File: name, Line: lineNo, Msg: fmt.Sprintf("line of %d bytes, its end of line included: pacman reads at most %d bytes per line and would read the rest as another line", n, p.lim.MaxLineLen),
				hint: "shorten the line (split a long value into several directives)"}
		}
		line := string(bytes.TrimSuffix(data[:n], []byte("\n")))
		data = data[n:]
		if err := p.line(name, lineNo, line, depth); err != nil {
			return err
		}
	}
	return nil
}

// isSpace is C's isspace, which pacman's strtrim uses.
func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
}

func trim(s string) string { return strings.TrimFunc(s, isSpace) }

func (p *parser) line(file string, n int, raw string, depth int) error {
	line := trim(raw)
	if line == "" || line[0] == '#' {
		return nil
	}
	if line[0] == '[' && line[len(line)-1] == ']' && len(line) >= 2 {
		p.order.header()
		return p.startSection(file, n, line[1:len(line)-1])
	}
	key, value, hasValue := strings.Cut(line, "=")
	key, value = trim(key), trim(value)
	if err := p.order.directive(file, n, key); err != nil {
		return err
	}
	// pacman processes Include before it looks at the section
	// (conf.c _parse_directive): an Include may come before any section.
	if key == "Include" {
		if !hasValue {
			return &ConfError{File: file, Line: n, Msg: "directive 'Include' needs a value"}
		}
		return p.include(file, n, value, depth)
	}
	if p.section == "" {
		return &ConfError{File: file, Line: n, Msg: "All directives must belong to a section"}
	}
	if p.section == "options" {
		return p.option(file, n, key, value, hasValue)
	}
	return p.repoDirective(file, n, key, value, hasValue)
}

func (p *parser) startSection(file string, n int, name string) error {
	p.section = name
	p.repo = nil
	if name == "options" {
		return nil
	}
	switch {
	case name == "":
		p.warnf(file, n, "pacman cannot register a repository with an empty name; ignored")
		return nil
	case name == "local":
		p.warnf(file, n, "'local' is pacman's own database, not a repository; ignored")
		return nil
	case strings.ContainsRune(name, '/'):
		p.warnf(file, n, "pacman cannot register repository %q (contains '/'); ignored", name)
		return nil
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[name] {
		p.warnf(file, n, "repository %q defined twice: pacman uses the first definition", name)
		return nil
	}
	if len(p.cfg.Repos) >= p.lim.MaxRepos {
		return &ConfError{File: file, Line: n, Msg: fmt.Sprintf("more than %d repositories", p.lim.MaxRepos)}
	}
	p.seen[name] = true
	p.cfg.Repos = append(p.cfg.Repos, Repo{Name: name})
	p.repo = &p.cfg.Repos[len(p.cfg.Repos)-1]
	return nil
}

func (p *parser) include(file string, n int, pattern string, depth int) error {
	// pacman refuses an Include in a file nested 10 deep (conf.c
	// process_include: config_max_recursion).
	if depth >= p.lim.MaxDepth {
		return &ConfError{File: file, Line: n, Msg: fmt.Sprintf("Include nested deeper than %d files (a cycle?)", p.lim.MaxDepth)}
	}
	wd := ""
	if !path.IsAbs(pattern) {
		var err error
		if wd = p.wd; wd == "" {
			wd, err = os.Getwd()
		}
		if err != nil {
			return &ConfError{File: file, Line: n, Msg: "relative Include without a working directory", Err: err}
		}
	}
	matches, err := expandInclude(p.fsys, file, n, wd, pattern)
	if err != nil {
		return err
	}
	if len(matches) > 1 {
		return p.group(file, n, matches, depth)
	}
	// Sections opened by an included file stay open after it, as in pacman.
	return p.file(matches[0], depth+1)
}

// knownOptions are the [options] directives of pacman 6.0 that bintrans does
// not need; they are accepted silently, as pacman accepts them.
var knownOptions = map[string]bool{
	"LogFile": true, "GPGDir": true, "HookDir": true, "HoldPkg": true,
	"IgnorePkg": true, "IgnoreGroup": true, "XferCommand": true,
	"CleanMethod": true, "NoUpgrade": true, "NoExtract": true,
	"SigLevel": true, "LocalFileSigLevel": true, "RemoteFileSigLevel": true,
	"UseSyslog": true, "Color": true, "NoProgressBar": true,
	"CheckSpace": true, "VerbosePkgLists": true, "DisableDownloadTimeout": true,
	"ParallelDownloads": true, "ILoveCandy": true, "DisableSandbox": true,
}

func (p *parser) addValues(file string, n int, dst *[]string, value string) error {
	for _, v := range strings.FieldsFunc(value, func(r rune) bool { return r == ' ' }) {
		p.values++
		if p.values > p.lim.MaxValues {
			return &ConfError{File: file, Line: n, Msg: fmt.Sprintf("more than %d values", p.lim.MaxValues)}
		}
		*dst = append(*dst, v)
	}
	return nil
}

func (p *parser) option(file string, n int, key, value string, hasValue bool) error {
	if (key == "RootDir" || key == "DBPath") && value == "" {
		// pacman-conf prints it; pacman then fails to initialise alpm.
		return &ConfError{File: file, Line: n, Msg: fmt.Sprintf("directive '%s' needs a value", key)}
	}
	if !hasValue {
		if !knownOptions[key] {
			p.warnf(file, n, "directive '%s' in section 'options' not recognized", key)
		}
		return nil
	}
	p.order.option(key, value)
	switch key {
	case "RootDir":
		if !p.rootSet {
			p.cfg.RootDir, p.rootSet = value, true
			p.raw.root = value
		}
	case "DBPath":
		if !p.dbSet {
			p.cfg.DBPath, p.dbSet = value, true
			p.raw.dbpath = value
		}
	case "CacheDir":
		return p.addValues(file, n, &p.cfg.CacheDirs, value)
	case "Architecture":
		return p.addValues(file, n, &p.archs, value)
	default:
		if !knownOptions[key] {
			p.warnf(file, n, "directive '%s' in section 'options' not recognized", key)
		}
	}
	return nil
}

func (p *parser) repoDirective(file string, n int, key, value string, hasValue bool) error {
	switch key {
	case "Server":
		if !hasValue {
			return &ConfError{File: file, Line: n, Msg: "directive 'Server' needs a value"}
		}
		if p.repo == nil {
			return nil // a section pacman ignores
		}
		p.values++
		if p.values > p.lim.MaxValues {
			return &ConfError{File: file, Line: n, Msg: fmt.Sprintf("more than %d values", p.lim.MaxValues)}
		}
		p.repo.Servers = append(p.repo.Servers, value)
	case "SigLevel", "Usage":
	default:
		p.warnf(file, n, "directive '%s' in section '%s' not recognized", key, p.section)
	}
	return nil
}

// autoArch is what `uname -m` prints for the architectures Go builds for.
func autoArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "386":
		return "i686"
	case "arm64":
		return "aarch64"
	case "arm":
		return "armv7l"
	default:
		return runtime.GOARCH
	}
}

func (p *parser) finish() (*Config, error) {
	c := p.cfg
	if !p.rootSet {
		c.RootDir = DefaultRootDir
	}
	if !p.dbSet {
		if p.rootSet {
			db, err := rootDBPath(c.RootDir)
			if err != nil {
				return nil, &ConfError{File: c.Path, Msg: err.Error(), hint: "set DBPath in pacman.conf"}
			}
			c.DBPath = db
		} else {
			c.DBPath = DefaultDBPath
		}
	}
	if len(c.CacheDirs) == 0 {
		c.CacheDirs = []string{DefaultCacheDir}
	}
	for _, a := range p.archs {
		if a == "auto" {
			a = autoArch()
		}
		c.Architectures = append(c.Architectures, a)
	}
	arch := ""
	if len(c.Architectures) > 0 {
		arch = c.Architectures[0]
	}
	for i := range c.Repos {
		r := &c.Repos[i]
		for j, s := range r.Servers {
			s = strings.ReplaceAll(s, "$repo", r.Name)
			if arch != "" {
				s = strings.ReplaceAll(s, "$arch", arch)
			}
			r.Servers[j] = s
		}
	}
	return c, nil
}

// rootDBPath is pacman's DBPath under a RootDir when none is set:
// setdefaults (conf.c) writes it with snprintf(path, PATH_MAX, "%s/%s",
// root, "var/lib/pacman/"), which silently truncates a longer path.
func rootDBPath(root string) (string, error) {
	p := root + "/" + DefaultDBPath[1:]
	if len(p) > PacmanMaxLine {
		return "", fmt.Errorf("RootDir of %d bytes: pacman truncates the DBPath under it (%s) to %d bytes", len(root), "<RootDir>"+DefaultDBPath, PacmanMaxLine)
	}
	return p, nil
}

// ErrOutsideRoot is wrapped by InRoot when a path pacman uses is not inside
// RootDir, so a process chrooted into RootDir cannot see it.
var ErrOutsideRoot = errors.New("outside RootDir")

// InRoot returns the configuration as a process chrooted into RootDir sees
// it: alpm runs every hook chrooted into RootDir with the working directory
// "/", so a DBPath of /mnt/var/lib/pacman under RootDir /mnt is
// /var/lib/pacman to the hook. Cache directories outside RootDir are
// dropped (the hook cannot read them; it reports those packages as not
// cached); a DBPath outside RootDir is an error wrapping ErrOutsideRoot.
// With RootDir "/" it returns an unchanged copy.
func (c *Config) InRoot() (*Config, error) {
	out := *c
	out.CacheDirs = nil
	out.Repos = append([]Repo(nil), c.Repos...)
	root := filepath.Clean(c.RootDir)
	db, ok := underRoot(root, c.DBPath)
	if !ok {
		return nil, fmt.Errorf("DBPath %s is %w %s: a hook chrooted into RootDir cannot read the sync databases", c.DBPath, ErrOutsideRoot, c.RootDir)
	}
	out.DBPath = db
	for _, d := range c.CacheDirs {
		if in, ok := underRoot(root, d); ok {
			out.CacheDirs = append(out.CacheDirs, in)
		} else {
			out.Warnings = append(out.Warnings, fmt.Sprintf("CacheDir %s is outside RootDir %s: invisible to the hook", d, c.RootDir))
		}
	}
	out.RootDir = "/"
	return &out, nil
}

func underRoot(root, p string) (string, bool) {
	p = filepath.Clean(p)
	if root == "/" {
		return p, true // chroot("/") changes nothing
	}
	if p == root {
		return "/", true
	}
	rest, ok := strings.CutPrefix(p, root+"/")
	if !ok {
		return "", false
	}
	return "/" + rest, true
}
