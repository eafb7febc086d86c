package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
)

// onlineWorld is n packages signed and logged in a fake log, published
// without proof bundles (so that an online run asks the log for each), in
// pacman's cache and a sync database "core".
type onlineWorld struct {
	dir   string
	log   *fakelog.Log
	names []string // package names, in order
	files []string // cached package files
}

func newOnlineWorld(t *testing.T, n int) *onlineWorld {
	t.Helper()
	w := &onlineWorld{dir: t.TempDir()}
	var key scanKey
	var files map[string][]byte
	w.log, key, files = newFixtureLog(t, 31, "")
	var pkgs []repodb.Package
	for i := range n {
		name := fmt.Sprintf("pkg%02d", i)
		fn := name + "-1.0-1-any.pkg.tar.zst"
		content := []byte("package file " + fn + "\n")
		sha := sha256Of(content)
		addSigned(t, files, w.log, key, "sigs/"+fn, sha, fn, false)
		files["cache/"+fn] = content
		w.names = append(w.names, name)
		w.files = append(w.files, filepath.Join(w.dir, "cache", fn))
		pkgs = append(pkgs, repodb.Package{Filename: fn, Name: name, Base: name, Version: "1.0-1", Arch: "any",
			Desc: "test package", CSize: int64(len(content)), ISize: 4096, SHA256Sum: sha})
	}
	var db bytes.Buffer
	if err := repodbtest.Write(&db, pkgs, repodbtest.Options{}); err != nil {
		t.Fatal(err)
	}
	files["db/sync/core.db"] = db.Bytes()
	files["pacman.conf"] = []byte(fmt.Sprintf("[options]\nDBPath = %s/db/\nCacheDir = %s/cache/\n\n[core]\nServer = file:///nowhere\n", w.dir, w.dir))
	for name, b := range files {
		writeTestFile(t, filepath.Join(w.dir, name), b)
	}
	return w
}

// args are the policy flags of an online run against the world's log.
func (w *onlineWorld) args(cmd string) []string {
	return []string{cmd, "--log-url", w.log.URL, "--log-key", filepath.Join(w.dir, "rekor.pem"),
		"--pubkey-path", filepath.Join(w.dir, "transparency.pub"), "--transparency-url", filepath.Join(w.dir, "sigs"),
		"--state-dir", filepath.Join(w.dir, "state")}
}

// TestHookRunDeadline: a log that never answers holds the hook for
// --deadline, not for packages × --timeout: exit 3 (the transaction is
// aborted), every package refused with the deadline as the cause.
func TestHookRunDeadline(t *testing.T) {
	w := newOnlineWorld(t, 6)
	var out, errOut bytes.Buffer
	args := append(w.args("hook"), "--pacman-conf", filepath.Join(w.dir, "pacman.conf"))
	if code := run(args, strings.NewReader(strings.Join(w.names, "\n")+"\n"), &out, &errOut); code != ExitOK {
		t.Fatalf("honest log: exit %d\n%s", code, &errOut)
	}

	w.log.SetLie(fakelog.LieHang)
	errOut.Reset()
	start := time.Now()
	code := run(append(args, "--deadline", "1s", "--timeout", "1m"), strings.NewReader(strings.Join(w.names, "\n")+"\n"), &out, &errOut)
	took := time.Since(start)
	stderr := errOut.String()
	t.Logf("exit %d after %v:\n%s", code, took.Round(time.Millisecond), stderr)
	if code != ExitInternal {
		t.Errorf("exit %d, want 3", code)
	}
	if took > 5*time.Second {
		t.Errorf("the hook took %v with --deadline 1s", took)
	}
	if n := strings.Count(stderr, ": unavailable: not verified: run deadline of 1s exceeded (--deadline)"); n != len(w.names) {
		t.Errorf("%d packages refused with the deadline as the cause, want %d", n, len(w.names))
	}
	for _, want := range []string{
		"bintrans: verification did not complete: run deadline of 1s exceeded (--deadline): transaction aborted\n",
		"hint: raise --deadline",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(stderr, "verified (") {
		t.Error("a success line after the deadline")
	}
}

// TestLogTimeoutsDoNotAddUp: without a deadline, 16 packages at --jobs 2
// against a log that never answers take one --timeout, not eight: the
// first package to find the log unavailable cancels the batch (exit 3).
func TestLogTimeoutsDoNotAddUp(t *testing.T) {
	w := newOnlineWorld(t, 16)
	w.log.SetLie(fakelog.LieHang)
	var out, errOut bytes.Buffer
	start := time.Now()
	code := run(append(append(w.args("verify"), "--timeout", "1s", "--jobs", "2", "--deadline", "0"), w.files...), nil, &out, &errOut)
	took := time.Since(start)
	t.Logf("16 packages, --jobs 2, --timeout 1s: exit %d after %v\n%s%s", code, took.Round(time.Millisecond), &out, &errOut)
	if code != ExitInternal {
		t.Errorf("exit %d, want 3", code)
	}
	if took > 4*time.Second {
		t.Errorf("took %v: the log timeouts added up", took)
	}
	if n := strings.Count(out.String(), ": unavailable: "); n != 16 {
		t.Errorf("%d packages unavailable, want 16", n)
	}
	if n := strings.Count(out.String(), ": unavailable: not verified: transparency log unavailable"); n < 14 {
		t.Errorf("%d packages unverified with the first failure as the cause, want at least 14", n)
	}
}

// TestDeadlineDefaults: the hook, verify and fetch stop after 5 minutes by
// default, scan does not; the config file's "deadline" applies to all; a
// negative value is a usage error.
func TestDeadlineDefaults(t *testing.T) {
	parse := func(t *testing.T, conf string, args ...string) *CLI {
		t.Helper()
		var cli CLI
		opts := []kong.Option{kong.Name("bintrans"), kong.Exit(func(int) {}),
			kong.Vars{"version": version, "default_log_url": DefaultLogURL}}
		if conf != "" {
			r, err := parseConfig("test.conf", strings.NewReader(conf))
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, kong.Resolvers(r))
		}
		p, err := kong.New(&cli, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(args); err != nil {
			t.Fatal(err)
		}
		return &cli
	}
	for cmd, want := range map[string]time.Duration{"hook": 5 * time.Minute, "verify": 5 * time.Minute, "fetch": 5 * time.Minute, "scan": 0} {
		args := []string{cmd}
		switch cmd {
		case "verify":
			args = append(args, "x")
		case "fetch":
			args = append(args, "-O", "x.part", "https://example.org/x")
		}
		cli := parse(t, "", args...)
		got := map[string]time.Duration{"hook": cli.Hook.Deadline, "verify": cli.Verify.Deadline, "fetch": cli.Fetch.Deadline, "scan": cli.Scan.Deadline}[cmd]
		if got != want {
			t.Errorf("%s: default --deadline %v, want %v", cmd, got, want)
		}
		if c := parse(t, "deadline = 90s\n", args...); map[string]time.Duration{"hook": c.Hook.Deadline, "verify": c.Verify.Deadline, "fetch": c.Fetch.Deadline, "scan": c.Scan.Deadline}[cmd] != 90*time.Second {
			t.Errorf("%s: the config file's deadline was not applied", cmd)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"verify", "--deadline=-1s", "x"}, nil, &out, &errOut); code != ExitUsage || !strings.Contains(errOut.String(), "--deadline -1s is negative") {
		t.Errorf("negative deadline: exit %d\n%s", code, &errOut)
	}
}

// TestFetchDeadline: fetch's --deadline starts once the package is
// downloaded (a slow mirror does not count) and bounds its verification:
// a log that never answers refuses the download (exit 3) within it, and
// nothing is left for pacman.
func TestFetchDeadline(t *testing.T) {
	e := newFetchEnv(t)
	good := bytes.Repeat([]byte("good package bytes\n"), 100)
	e.publish(t, "core", "good-1.0-1-any.pkg.tar.zst", good, good, "core")
	os.Remove(filepath.Join(e.www, "sigs", "core", "good-1.0-1-any.pkg.tar.zst.t.bundle")) // ask the log
	part := filepath.Join(t.TempDir(), "good-1.0-1-any.pkg.tar.zst.part")
	e.log.SetLie(fakelog.LieHang)
	start := time.Now()
	code, stderr := runFetch(t, e.args(t, "-O", part, e.mirror.URL+"/core/good-1.0-1-any.pkg.tar.zst",
		"--transparency-url", e.mirror.URL+"/sigs/core", "--deadline", "1s", "--timeout", "1m"))
	took := time.Since(start)
	if code != ExitInternal || took > 5*time.Second ||
		!strings.Contains(stderr, "bintrans: refused good-1.0-1-any.pkg.tar.zst: verification did not complete: run deadline of 1s exceeded (--deadline)") ||
		!strings.Contains(stderr, "hint: raise --deadline") {
		t.Fatalf("exit %d after %v:\n%s", code, took, stderr)
	}
	if _, err := os.Lstat(part); err == nil {
		t.Error("the unverified download is still there")
	}
}
