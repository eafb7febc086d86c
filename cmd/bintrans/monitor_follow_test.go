package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/monitor"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds (the follow loop runs on its own
// clock; no assertion depends on timing, only on eventually).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --follow: one JSON report per run; new entries show up in the next run;
// a log that goes down is retried with backoff (and comes back); an
// interrupt ends it with exit 0; a SECURITY ERROR ends it with exit 1.
func TestMonitorFollow(t *testing.T) {
	l := fakelog.New(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "log.pem"), l.KeyPEM, 0o644)
	sk, pub := fakelogKey(t)
	os.WriteFile(filepath.Join(dir, "key.pub"), pub.File(), 0o644)
	add := func(n int) {
		for range n {
			msg := fmt.Sprintf("%064x", l.Size()+1)
			tb, err := verify.SignPackage(sk, msg, "p.pkg.tar.zst")
			if err != nil {
				t.Fatal(err)
			}
			s, _ := verify.ParseSignature(tb)
			l.Add(rekorv1.CanonicalBody(s, pub, []byte(msg)))
		}
	}
	add(3)
	start := func() (*syncBuffer, *syncBuffer, context.CancelFunc, chan int) {
		var cli monitorCLI
		parser, err := kong.New(&cli, kong.Name("bintrans"), kong.Vars{"version": version, "default_log_url": DefaultLogURL})
		if err != nil {
			t.Fatal(err)
		}
		kctx, err := parser.Parse([]string{"monitor", "--pubkey-path", filepath.Join(dir, "key.pub"), "--log-url", l.URL,
			"--log-key", filepath.Join(dir, "log.pem"), "--state-dir", filepath.Join(dir, "state"), "--follow", "--interval", "1s", "--json", "--timeout", "2s"})
		if err != nil {
			t.Fatal(err)
		}
		out, errb := &syncBuffer{}, &syncBuffer{}
		ctx, cancel := context.WithCancel(context.Background())
		cli.Globals.ctx, cli.Globals.Stdout, cli.Globals.Stderr = ctx, out, errb
		done := make(chan int, 1)
		go func() {
			code := ExitOK
			if err := kctx.Run(&cli.Globals); err != nil {
				code = reportError(errb, err)
			}
			done <- code
		}()
		return out, errb, cancel, done
	}
	reports := func(out *syncBuffer) []monitor.Report {
		var reps []monitor.Report
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if line == "" {
				continue
			}
			var r monitor.Report
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("--follow --json line %q: %v", line, err)
			}
			reps = append(reps, r)
		}
		return reps
	}

	out, errb, cancel, done := start()
	waitFor(t, "the first report", func() bool { return len(reports(out)) >= 1 })
	if r := reports(out)[0]; r.New != 3 {
		t.Errorf("first report: new %d", r.New)
	}
	add(2)
	waitFor(t, "a report of the 2 new entries", func() bool {
		for _, r := range reports(out) {
			if r.New == 2 && r.Total == 5 {
				return true
			}
		}
		return false
	})
	l.SetLie(fakelog.LieHTML502)
	waitFor(t, "a retry with backoff", func() bool { return strings.Contains(errb.String(), "(next try in 2s)") })
	l.SetLie(fakelog.Honest)
	add(1)
	waitFor(t, "recovery", func() bool {
		for _, r := range reports(out) {
			if r.Total == 6 {
				return true
			}
		}
		return false
	})
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("interrupted follow: exit %d\n%s", code, errb.String())
	}

	// A SECURITY ERROR ends the watch.
	out, errb, cancel, done = start()
	defer cancel()
	waitFor(t, "a report", func() bool { return len(reports(out)) >= 1 })
	l.Fork(2)
	select {
	case code := <-done:
		if code != ExitFailed || !strings.Contains(errb.String(), "SECURITY ERROR") {
			t.Errorf("forked log under --follow: exit %d\n%s", code, errb.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("--follow kept running against a forked log")
	}
}
