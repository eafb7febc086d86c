package main

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// maximalSearch is a search answer a hostile log can send within the
// client's per-request limit: a valid JSON array of distinct entry ids,
// just under rekorv1.MaxSearchResponseSize.
var maximalSearch = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	b.Grow(rekorv1.MaxSearchResponseSize)
	b.WriteByte('[')
	for i := 0; b.Len() < rekorv1.MaxSearchResponseSize-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%016x%064x"`, 1, i)
	}
	b.WriteString("]\n")
	return b.Bytes()
})

// hostileLog is a fake log (real proofs and checkpoints) behind a front
// that answers every index search with maximalSearch.
func hostileLog(t *testing.T) (*fakelog.Log, string) {
	l := fakelog.New(t)
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the client hangs up on purpose
	body := maximalSearch()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/index/retrieve" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return l, srv.URL
}

// budgetRun is one `bintrans verify` process against the hostile log: n
// signed packages whose entries the log does not have (no bundles, so
// each is looked up, and searched for), --jobs jobs.
type budgetRun struct {
	code   int
	stderr string
	maxRSS int64 // KiB
	took   time.Duration
}

func runAgainstHostileLog(t *testing.T, bin string, n, jobs int) budgetRun {
	t.Helper()
	l, logURL := hostileLog(t)
	key := newScanKey(t, 21)
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "key.pub"), key.pk.File())
	writeTestFile(t, filepath.Join(dir, "log.pem"), l.KeyPEM)
	args := []string{"verify", "--log-url", logURL, "--log-key", filepath.Join(dir, "log.pem"),
		"--pubkey-path", filepath.Join(dir, "key.pub"), "--transparency-url", filepath.Join(dir, "sigs"),
		"--state-dir", filepath.Join(dir, "state"), "--jobs", fmt.Sprint(jobs), "--timeout", "2m"}
	for i := range n {
		fn := fmt.Sprintf("pkg%02d-1.0-1-any.pkg.tar.zst", i)
		content := []byte("package " + fn + "\n")
		tf, err := verify.SignPackage(key.sk, sha256Of(content), fn)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(dir, "sigs", fn+".t"), tf)
		writeTestFile(t, filepath.Join(dir, "pkgs", fn), content)
		args = append(args, filepath.Join(dir, "pkgs", fn))
	}
	cmd := exec.Command(bin, args...)
	writeTestFile(t, filepath.Join(dir, "empty.conf"), nil)
	cmd.Env = append(os.Environ(), "BINTRANS_CONFIG="+filepath.Join(dir, "empty.conf"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := budgetRun{stderr: stderr.String(), took: time.Since(start)}
	if cmd.ProcessState == nil {
		t.Fatalf("%s: %v", bin, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss
	}
	return r
}

// selfAsBintrans is this test binary under the name "bintrans", which
// makes it run the CLI (TestMain).
func selfAsBintrans(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bintrans")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestRunMemoryBudget: a log that answers every search with 32 MiB of
// valid entry ids (the per-request limit) while 16 packages are looked up
// at --jobs 8 used to hold eight such answers at once (1.2 GB). The run's
// budget bounds what is held at once: the run fails closed (exit 3) with
// the budget named, and its peak RSS stays bounded.
//
// BINTRANS_BUDGET_BIN=/path/to/bintrans runs another build instead (to
// measure one without the budget).
func TestRunMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a bintrans process that reads hundreds of MiB")
	}
	bin := os.Getenv("BINTRANS_BUDGET_BIN")
	if bin == "" {
		bin = selfAsBintrans(t)
	}
	r := runAgainstHostileLog(t, bin, 16, 8)
	t.Logf("16 packages, --jobs 8, 32 MiB search answers: exit %d in %v, peak RSS %d MiB\n%s", r.code, r.took.Round(time.Millisecond), r.maxRSS>>10, lastLines(r.stderr, 3))
	if os.Getenv("BINTRANS_BUDGET_BIN") != "" {
		return // a measurement of another build
	}
	if r.code != ExitInternal || !strings.Contains(r.stderr, "memory budget") {
		t.Errorf("exit %d, want 3 naming the memory budget:\n%s", r.code, r.stderr)
	}
	if limit := int64(400 << 10); r.maxRSS > limit && !raceEnabled {
		t.Errorf("peak RSS %d MiB, want at most %d MiB", r.maxRSS>>10, limit>>10)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
