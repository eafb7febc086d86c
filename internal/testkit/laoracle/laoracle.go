// Package laoracle runs Debian's real libarchive (3.6) and libalpm (13) as
// test oracles for bintrans's own readers: what does libalpm see in these
// bytes? The oracle is a small C program (testdata/oracle.c) compiled on
// first use against libarchive-dev and libalpm-dev and kept in
// $HOME/.cache/bintrans/laoracle/<hash of the source>; one long-lived
// process per test binary answers every query (a process per query costs
// 40-60 ms, far too much for a fuzz target), each query on a fresh
// libarchive or libalpm handle and a real file, as libalpm opens it.
//
// Why not bsdtar: its exit status is 0 after a damaged header that it
// skipped ("Retrying..."), and its listings lose information (escaping,
// sorting in mtree mode). The oracle reports exactly what libalpm's loops
// would: the entries up to the first header return code other than
// ARCHIVE_OK, and whether libalpm would accept the archive at all.
//
// Without gcc and the two -dev packages the calling test is skipped, or
// fails when CI is set (scripts/install-deps installs them).
package laoracle

import (
	"bufio"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"crypto/sha256"
)

//go:embed testdata/oracle.c
var source []byte

// Entry is one archive member as libarchive returns it.
type Entry struct {
	Format   string // archive_format_name after the header, e.g. "POSIX ustar format"
	Type     uint32 // archive_entry_filetype >> 12: 010 regular, 004 directory, 012 symlink, 0 hard link
	Size     int64
	Name     string
	Hardlink *string
	Symlink  *string
	Data     []byte
}

// File types of Entry.Type.
const (
	TypeReg = 010
	TypeDir = 004
)

// Listing is libarchive's reading of one input.
type Listing struct {
	// Accepted: libalpm would accept the archive (every header ARCHIVE_OK
	// up to ARCHIVE_EOF, every content read without error).
	Accepted bool
	Entries  []Entry
	Filters  []string // e.g. ["gzip", "none"]
	// Problem is the return code and message that stopped the walk, when
	// not accepted.
	Problem string
}

func (l Listing) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "accepted=%v filters=%v %s\n", l.Accepted, l.Filters, l.Problem)
	for _, e := range l.Entries {
		fmt.Fprintf(&b, "  %-22s type=%03o size=%d %q sha256=%x\n", e.Format, e.Type, e.Size, e.Name, sha256.Sum256(e.Data))
	}
	return b.String()
}

// Package is one package of a sync database as libalpm loaded it.
type Package struct {
	Name, Version, Filename, SHA256Sum, MD5Sum, PGPSig string
	Base, Arch, Desc, URL, Packager                    string
	CSize, ISize, BuildDate                            int64
	Lists                                              map[string][]string // groups, licenses, depends, …, files
}

// DB is libalpm's reading of a sync database.
type DB struct {
	// Accepted: alpm_db_get_pkgcache succeeded.
	Accepted bool
	Packages []Package
	// Log holds libalpm's errors and warnings ("database is inconsistent",
	// "could not parse package description file", …).
	Log     []string
	Problem string
}

// Oracle is a running oracle process. Its methods are safe for concurrent
// use (queries are serialised).
type Oracle struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	dead error
}

var (
	once     sync.Once
	shared   *Oracle
	startErr error
	missing  string
)

// Get returns the oracle of this test process, building and starting it on
// first use. When gcc, libarchive-dev or libalpm-dev is missing the test is
// skipped (failed under CI).
func Get(t testing.TB) *Oracle {
	t.Helper()
	once.Do(func() { shared, startErr = start() })
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs %s (scripts/install-deps installs it)", missing)
		}
		t.Skipf("needs %s (scripts/install-deps installs it)", missing)
	}
	if startErr != nil {
		t.Fatalf("laoracle: %v", startErr)
	}
	return shared
}

func start() (*Oracle, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		missing = "gcc"
		return nil, nil
	}
	for hdr, pkg := range map[string]string{"/usr/include/archive.h": "libarchive-dev", "/usr/include/alpm.h": "libalpm-dev"} {
		if _, err := os.Stat(hdr); err != nil {
			missing = pkg
			return nil, nil
		}
	}
	bin, err := build(gcc)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// The process ends, removing its temporary directory, when its stdin
	// closes: when this test process exits.
	return &Oracle{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}, nil
}

// build compiles the oracle into the user's cache, once per source
// version.
func build(gcc string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256(source)
	dir := filepath.Join(cache, "bintrans", "laoracle")
	bin := filepath.Join(dir, fmt.Sprintf("oracle-%x", sum[:8]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src := filepath.Join(dir, fmt.Sprintf("oracle-%x.c", sum[:8]))
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	out, err := exec.Command(gcc, "-O1", "-Wall", "-o", tmp, src, "-larchive", "-lalpm").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gcc: %v\n%s", err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// List walks data as libalpm walks a package or a sync database.
func (o *Oracle) List(data []byte) (Listing, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	recs, bad, err := o.query(fmt.Sprintf("A %d", len(data)), data)
	if err != nil {
		return Listing{}, err
	}
	l := Listing{Accepted: !bad}
	for _, r := range recs {
		switch r[0] {
		case "ENTRY":
			if len(r) != 8 {
				return l, fmt.Errorf("laoracle: bad record %q", r)
			}
			typ, err1 := strconv.ParseUint(r[2], 8, 32)
			size, err2 := strconv.ParseInt(r[3], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				return l, err
			}
			e := Entry{Format: str(r[1]), Type: uint32(typ), Size: size, Name: str(r[4]), Hardlink: opt(r[5]), Symlink: opt(r[6]), Data: raw(r[7])}
			l.Entries = append(l.Entries, e)
		case "FILTERS":
			for _, f := range r[1:] {
				l.Filters = append(l.Filters, str(f))
			}
		case "RC":
			l.Problem = "rc " + r[1] + ": " + str(r[2])
		case "DATAERR", "OPENFAIL":
			l.Problem = strings.ToLower(r[0]) + ": " + str(r[1])
		}
	}
	return l, nil
}

// LoadDB loads data as the sync database of a repository with libalpm;
// files selects the ".files" database extension.
func (o *Oracle) LoadDB(data []byte, files bool) (DB, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ext := ".db"
	if files {
		ext = ".files"
	}
	recs, bad, err := o.query(fmt.Sprintf("D %s %d", ext, len(data)), data)
	if err != nil {
		return DB{}, err
	}
	db := DB{Accepted: !bad}
	byName := map[string]int{}
	for _, r := range recs {
		switch r[0] {
		case "PKG":
			if len(r) != 15 {
				return db, fmt.Errorf("laoracle: bad record %q", r)
			}
			p := Package{Name: str(r[1]), Version: str(r[2]), Filename: str(r[3]), SHA256Sum: str(r[4]), MD5Sum: str(r[5]),
				PGPSig: str(r[6]), Base: str(r[7]), Arch: str(r[8]), Desc: str(r[9]), URL: str(r[10]), Packager: str(r[11]),
				Lists: map[string][]string{}}
			var err1, err2, err3 error
			p.CSize, err1 = strconv.ParseInt(r[12], 10, 64)
			p.ISize, err2 = strconv.ParseInt(r[13], 10, 64)
			p.BuildDate, err3 = strconv.ParseInt(r[14], 10, 64)
			if err := errors.Join(err1, err2, err3); err != nil {
				return db, err
			}
			byName[p.Name] = len(db.Packages)
			db.Packages = append(db.Packages, p)
		case "LIST":
			i, ok := byName[str(r[1])]
			if !ok || len(r) < 3 {
				return db, fmt.Errorf("laoracle: bad record %q", r)
			}
			var vals []string
			for _, v := range r[3:] {
				vals = append(vals, str(v))
			}
			db.Packages[i].Lists[r[2]] = vals
		case "LOG":
			db.Log = append(db.Log, strings.TrimSpace(str(r[2])))
		case "DBFAIL", "INITFAIL":
			db.Problem = strings.ToLower(r[0]) + ": " + str(r[1])
		}
	}
	return db, nil
}

// FilePackage is a package file as libalpm loads it for pacman -U.
type FilePackage struct {
	// Loaded: alpm_pkg_load succeeded; Problem says why not.
	Loaded              bool
	Name, Version, Arch string
	Problem             string
	Log                 []string
}

// LoadPackage loads data as a package file with libalpm (alpm_pkg_load,
// reading the whole archive, no signature check), as pacman -U does.
func (o *Oracle) LoadPackage(data []byte) (FilePackage, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	recs, bad, err := o.query(fmt.Sprintf("P %d", len(data)), data)
	if err != nil {
		return FilePackage{}, err
	}
	p := FilePackage{Loaded: !bad}
	for _, r := range recs {
		switch {
		case r[0] == "FILEPKG" && len(r) == 4:
			p.Name, p.Version, p.Arch = str(r[1]), str(r[2]), str(r[3])
		case r[0] == "LOG" && len(r) == 3:
			p.Log = append(p.Log, strings.TrimSpace(str(r[2])))
		case r[0] == "PKGFAIL" || r[0] == "INITFAIL":
			p.Problem = strings.ToLower(r[0]) + ": " + str(r[1])
		default:
			return p, fmt.Errorf("laoracle: bad record %q", r)
		}
	}
	return p, nil
}

// query sends one request and returns its records (split into fields) and
// whether the oracle's END said libalpm would refuse.
func (o *Oracle) query(req string, data []byte) ([][]string, bool, error) {
	if o.dead != nil {
		return nil, false, o.dead
	}
	if _, err := o.in.Write(append([]byte(req+"\n"), data...)); err != nil {
		o.dead = fmt.Errorf("laoracle: the oracle process is gone: %v", err)
		return nil, false, o.dead
	}
	var recs [][]string
	for {
		line, err := o.out.ReadString('\n')
		if err != nil {
			o.dead = fmt.Errorf("laoracle: the oracle process is gone (it crashed on the input?): %v", err)
			return nil, false, o.dead
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "END" && len(f) == 2 {
			return recs, f[1] != "0", nil
		}
		recs = append(recs, f)
	}
}

func raw(s string) []byte {
	if s == "-" || !strings.HasPrefix(s, "x") {
		return nil
	}
	b, err := hex.DecodeString(s[1:])
	if err != nil {
		panic("laoracle: bad hex " + s)
	}
	return b
}

func str(s string) string { return string(raw(s)) }

func opt(s string) *string {
	if s == "-" {
		return nil
	}
	v := str(s)
	return &v
}
