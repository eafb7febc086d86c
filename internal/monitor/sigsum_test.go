package monitor

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// RunSigsum over two in-process Sigsum logs (sigsum-go's log server over
// internal/testkit/sigsumlog): the key's leaves are listed from both, each
// with the log it came from, incrementally with a state per log; a log
// that cannot be read does not stop the other (incomplete, exit 3 upstream,
// the other stored); a log that rolls back is a SECURITY ERROR and nothing
// is stored.

type sigsumFixture struct {
	srvs []*sigsumlog.Server
	key  key
	opts SigsumOptions
}

func newSigsumFixture(t *testing.T, extra ...string) *sigsumFixture {
	t.Helper()
	f := &sigsumFixture{key: newKey(t)}
	text := ""
	for range 2 {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		l, err := sigsumlog.New(priv, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := sigsumlog.Serve(t, l, 20*time.Millisecond)
		f.srvs = append(f.srvs, s)
		text += s.PolicyLine() + "\n"
	}
	for _, e := range extra {
		text += e + "\n"
	}
	sd, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f.opts = SigsumOptions{Keys: []verify.PublicKey{f.key.pub}, State: sd, Config: sigsum.Config{Policy: mustPolicy(t, text+"quorum none\n")}}
	return f
}

func mustPolicy(t *testing.T, text string) *witness.Policy {
	t.Helper()
	p, err := witness.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return p
}

// submit logs n leaves signed by priv in log i only, and returns their
// checksums (hex).
func (f *sigsumFixture) submit(t *testing.T, i int, priv ed25519.PrivateKey, n int) []string {
	t.Helper()
	cfg := sigsum.Config{Policy: mustPolicy(t, f.srvs[i].PolicyLine()+"\nquorum none\n"), PollDelay: 10 * time.Millisecond, Timeout: 20 * time.Second}
	var ms [][32]byte
	var out []string
	for range n {
		m := sha256.Sum256([]byte(randSHA()))
		ms = append(ms, m)
		c := sigsum.Checksum(m)
		out = append(out, hex.EncodeToString(c[:]))
	}
	if _, err := sigsum.Submit(context.Background(), cfg, priv, ms); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *sigsumFixture) priv() ed25519.PrivateKey { return ed25519.PrivateKey(f.key.sk.SecretKey[:]) }

func (f *sigsumFixture) origin(i int) string { return witness.SigsumOrigin(f.srvs[i].Log.PublicKey()) }

func TestRunSigsumTwoLogs(t *testing.T) {
	f := newSigsumFixture(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	want := map[string]string{} // checksum -> origin
	for i, n := range []int{2, 3} {
		f.submit(t, i, other, 2) // another key's leaves: not listed
		for _, c := range f.submit(t, i, f.priv(), n) {
			want[c] = f.origin(i)
		}
	}
	ctx := context.Background()
	rep, err := RunSigsum(ctx, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.New != 5 || rep.Total != 5 || len(rep.Findings) != 0 || len(rep.Logs) != 2 || rep.Incomplete {
		t.Fatalf("first run: new %d total %d findings %v logs %+v", rep.New, rep.Total, rep.Findings, rep.Logs)
	}
	for _, e := range rep.Entries {
		if want[e.SigsumChecksum] == "" || want[e.SigsumChecksum] != e.Log {
			t.Fatalf("entry %+v: want log %q", e, want[e.SigsumChecksum])
		}
	}
	for i, lr := range rep.Logs {
		if lr.Origin != f.origin(i) || lr.URL != f.srvs[i].URL || lr.Previous != nil || lr.Current == nil || lr.New != 2+i || lr.Error != "" {
			t.Fatalf("log %d: %+v", i, lr)
		}
	}

	// Incremental, per log: one new leaf in the second log.
	c := f.submit(t, 1, f.priv(), 1)[0]
	rep, err = RunSigsum(ctx, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.New != 1 || rep.Total != 6 || rep.Entries[0].SigsumChecksum != c || rep.Entries[0].Log != f.origin(1) ||
		rep.Logs[0].New != 0 || rep.Logs[1].New != 1 || rep.Logs[1].Previous == nil || rep.Logs[1].Previous.Size+1 != rep.Logs[1].Current.Size {
		t.Fatalf("second run: new %d total %d entries %+v logs %+v", rep.New, rep.Total, rep.Entries, rep.Logs)
	}
	if all := rep.AllEntries(); len(all) != 6 {
		t.Fatalf("all entries: %d", len(all))
	}

	// A rollback of the second log: a SECURITY ERROR, and the first log's
	// new leaf is not stored either.
	f.submit(t, 0, f.priv(), 1)
	st0 := f.opts.State.Path("monitor-sigsum-" + hex.EncodeToString(f.opts.Config.Policy.Logs[0].KeyHash[:])[:16] + ".json")
	before, err := os.ReadFile(st0)
	if err != nil {
		t.Fatal(err)
	}
	h := f.srvs[1].Log.History()
	f.srvs[1].Log.Publish(h[len(h)-2])
	_, err = RunSigsum(ctx, f.opts)
	var sec *verify.SecurityError
	if !errors.As(err, &sec) {
		t.Fatalf("rollback: %v", err)
	}
	if after, _ := os.ReadFile(st0); string(after) != string(before) {
		t.Fatal("a run that found a rollback stored the other log's state")
	}
	f.srvs[1].Log.Publish(h[len(h)-1])
	rep, err = RunSigsum(ctx, f.opts)
	if err != nil || rep.New != 1 || rep.Entries[0].Log != f.origin(0) {
		t.Fatalf("after the rollback ended: %v %+v", err, rep)
	}
}

// TestRunSigsumOneLogDown: a third log of the policy that does not answer
// leaves the run incomplete with a *verify.LogUnavailableError; the two
// others are read, reported and stored (the next run has nothing new).
func TestRunSigsumOneLogDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	deadPub, _, _ := ed25519.GenerateKey(rand.Reader)
	f := newSigsumFixture(t, fmt.Sprintf("log %x %s", deadPub[:], dead))
	f.submit(t, 0, f.priv(), 1)
	f.submit(t, 1, f.priv(), 2)
	rep, err := RunSigsum(context.Background(), f.opts)
	var lu *verify.LogUnavailableError
	if !errors.As(err, &lu) || rep == nil || !rep.Incomplete || rep.New != 3 || len(rep.Logs) != 3 || rep.Logs[2].Error == "" || rep.Logs[2].URL != dead {
		t.Fatalf("one log down: %v %+v", err, rep)
	}
	rep, err = RunSigsum(context.Background(), f.opts)
	if !errors.As(err, &lu) || rep.New != 0 || rep.Total != 3 {
		t.Fatalf("again: %v new %d total %d", err, rep.New, rep.Total)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(f.opts.State.Path("x")), "monitor-sigsum-*.json")); len(m) != 2 {
		t.Fatalf("state files %v", m)
	}
}
