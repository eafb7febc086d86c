// Package globoracle runs glibc's glob(3) as pacman calls it for
// `Include = PATTERN` (GLOB_NOCHECK, in the locale of the environment) as a
// test oracle for bintrans's Include expansion. The oracle is a small C
// program (testdata/glob.c) compiled on first use with gcc and kept in
// $HOME/.cache/bintrans/globoracle/<hash of the source>; one long-lived
// process per locale and test binary answers every query.
//
// Without gcc the calling test is skipped, or fails when CI is set
// (scripts/install-deps installs it).
package globoracle

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

//go:embed testdata/glob.c
var source []byte

// Oracle is a running glob(3) process. Its methods are safe for concurrent
// use (queries are serialised).
type Oracle struct {
	// Locale is the LC_ALL the process runs with.
	Locale string

	mu   sync.Mutex
	in   io.WriteCloser
	out  *bufio.Reader
	dead error
}

var (
	mu       sync.Mutex
	running  = map[string]*Oracle{}
	bin      string
	buildErr error
	built    bool
)

// Get returns the oracle of this test process for locale (an LC_ALL value
// such as "C" or "C.UTF-8"), building and starting it on first use.
func Get(t testing.TB, locale string) *Oracle {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !built {
		built = true
		bin, buildErr = build()
	}
	if bin == "" && buildErr == nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI needs gcc (scripts/install-deps installs it)")
		}
		t.Skip("needs gcc (scripts/install-deps installs it)")
	}
	if buildErr != nil {
		t.Fatalf("globoracle: %v", buildErr)
	}
	if o := running[locale]; o != nil {
		return o
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LC_ALL="+locale)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The process ends when its stdin closes: when this test process exits.
	o := &Oracle{Locale: locale, in: in, out: bufio.NewReader(out)}
	running[locale] = o
	return o
}

// build compiles the oracle into the user's cache, once per source
// version; "" with a nil error when gcc is missing.
func build() (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256(source)
	dir := filepath.Join(cache, "bintrans", "globoracle")
	bin := filepath.Join(dir, fmt.Sprintf("glob-%x", sum[:8]))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src := filepath.Join(dir, fmt.Sprintf("glob-%x.c", sum[:8]))
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	if out, err := exec.Command(gcc, "-O1", "-Wall", "-o", tmp, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %v\n%s", err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// Glob returns glob(3)'s return code and its paths, in its order.
func (o *Oracle) Glob(pattern string) (int, []string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dead != nil {
		return 0, nil, o.dead
	}
	if strings.IndexByte(pattern, 0) >= 0 {
		return 0, nil, fmt.Errorf("globoracle: a pattern cannot hold a NUL byte")
	}
	if _, err := fmt.Fprintf(o.in, "%d\n%s", len(pattern), pattern); err != nil {
		o.dead = fmt.Errorf("globoracle: the oracle process is gone: %v", err)
		return 0, nil, o.dead
	}
	rc := -1
	var paths []string
	for {
		line, err := o.out.ReadString('\n')
		if err != nil {
			o.dead = fmt.Errorf("globoracle: the oracle process is gone: %v", err)
			return 0, nil, o.dead
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "END":
			return rc, paths, nil
		case len(f) == 2 && f[0] == "RC":
			if rc, err = strconv.Atoi(f[1]); err != nil {
				return 0, nil, err
			}
		case len(f) == 2 && f[0] == "PATH":
			b, err := hex.DecodeString(f[1])
			if err != nil {
				return 0, nil, err
			}
			paths = append(paths, string(b))
		default:
			return 0, nil, fmt.Errorf("globoracle: bad answer %q", line)
		}
	}
}
