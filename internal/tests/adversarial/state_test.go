package adversarial

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// stateCase is a hostile condition of the state directory while the engine
// runs online against a log that grew since the last run (so that a run
// would store a new checkpoint).
type stateCase struct {
	name string
	// during damages the directory and returns a function undoing it (run
	// after VerifyAll, before the checks).
	during func(t *testing.T, e *env) (undo func())
	// runErr is the typed error (or errno) VerifyAll must return.
	runErr any
	errno  syscall.Errno
	// unchanged: the checkpoint file is byte-for-byte the old one.
	unchanged bool
	// offline runs the engine offline (the stored checkpoint is read, never
	// written); ok means the run must then succeed.
	offline, ok bool
}

func TestStateAdversarial(t *testing.T) {
	cases := []stateCase{
		{name: "state/disk-full-while-storing", during: func(t *testing.T, e *env) func() {
			// RLIMIT_FSIZE makes every write past 64 bytes fail with EFBIG,
			// as a full disk fails with ENOSPC: the temp file cannot be
			// written. (The Go runtime ignores SIGXFSZ.)
			var old syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
			lim := old
			lim.Cur = 64
			drainTestLog()
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
				t.Skipf("setrlimit: %v", err)
			}
			return func() {
				if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
					t.Fatal(err)
				}
			}
		}, errno: syscall.EFBIG, unchanged: true},
		{name: "state/read-only-directory", during: func(t *testing.T, e *env) func() {
			dir := filepath.Dir(e.stateCP)
			if os.Geteuid() != 0 {
				if err := os.Chmod(dir, 0o500); err != nil {
					t.Fatal(err)
				}
				return func() { os.Chmod(dir, 0o700) }
			}
			// root ignores modes: make the directory immutable instead.
			if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
				t.Skipf("chattr +i: %v %s", err, out)
			}
			undo := func() { exec.Command("chattr", "-i", dir).Run() }
			t.Cleanup(undo)
			return undo
		}, errno: syscall.EPERM, unchanged: true},
		{name: "state/corrupt-checkpoint-file", during: func(t *testing.T, e *env) func() {
			b, err := os.ReadFile(e.stateCP)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte(`"checkpoint": "`), []byte(`"checkpoint": "x`), 1)
			if err := os.WriteFile(e.stateCP, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}, runErr: (*state.CorruptError)(nil), unchanged: true},
		{name: "state/checkpoint-of-another-log", during: func(t *testing.T, e *env) func() {
			// The user switched logs (or the file was swapped): the stored
			// checkpoint is validly signed, by a log that is not the pinned one.
			other := fakelog.New(t)
			for range 9 {
				other.Add([]byte(`{"fakelog":"other log"}`))
			}
			if err := os.Remove(e.stateCP); err != nil {
				t.Fatal(err)
			}
			if err := e.state.Checkpoints().Store(context.Background(), other.Checkpoint()); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}, runErr: (*verify.CheckpointError)(nil), unchanged: true},
	}
	// Offline, the same damage: a state that cannot be trusted fails the
	// run as online does; one that cannot be written does not matter.
	for _, tc := range cases {
		if tc.name == "state/disk-full-while-storing" {
			continue
		}
		tc.name = "state/offline-" + strings.TrimPrefix(tc.name, "state/")
		tc.offline = true
		if tc.name == "state/offline-read-only-directory" {
			tc.ok, tc.errno = true, 0
		}
		cases = append(cases, tc)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 3)
			e.add(t, "pkg03", "1.3-1", []byte("package 3 payload\n")) // the log grew
			undo := tc.during(t, e)
			before, _ := os.ReadFile(e.stateCP)
			res, err := e.run(t, runOpts{offline: tc.offline})
			undo()
			if tc.ok {
				if err != nil {
					t.Fatalf("VerifyAll: %v", err)
				}
				for _, r := range res {
					if !r.OK() {
						t.Errorf("%s: %s: %v", r.Artifact.Filename, r.Status, r.Err)
					}
				}
				if after, _ := os.ReadFile(e.stateCP); !bytes.Equal(before, after) {
					t.Errorf("an offline run changed the checkpoint file")
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifyAll succeeded with a state directory that cannot hold the checkpoint")
			}
			t.Logf("VerifyAll: %v", err)
			if tc.errno != 0 && !errors.Is(err, tc.errno) {
				t.Errorf("error %v, want errno %v in its chain", err, tc.errno)
			}
			if tc.runErr != nil {
				if _, ok := asType(err, tc.runErr); !ok {
					t.Errorf("error %v (%T), want %s", err, err, typeName(tc.runErr))
				}
			}
			after, _ := os.ReadFile(e.stateCP)
			if tc.unchanged && !bytes.Equal(before, after) {
				t.Errorf("checkpoint file changed:\n%s\n---\n%s", before, after)
			}
			// No temp file is left behind.
			ents, _ := os.ReadDir(filepath.Dir(e.stateCP))
			for _, de := range ents {
				if filepath.Ext(de.Name()) != ".json" && de.Name() != "lock" && de.Name() != "checkpoint.json.lock" {
					t.Errorf("left in the state directory: %s", de.Name())
				}
			}
			for _, r := range res {
				if r.OK() && tc.runErr != nil {
					// A corrupt state is refused before anything is judged.
					t.Errorf("%s accepted with a corrupt state", r.Artifact.Filename)
				}
			}
		})
	}
}

// TestConcurrentHookRuns: eight engine runs (as eight concurrent pacman
// hooks would make) share one state directory while the log grows; each
// takes the directory lock. The checkpoint file always parses and ends at
// the largest verified tree.
func TestConcurrentHookRuns(t *testing.T) {
	e := newEnv(t, 3)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.run(t, runOpts{arts: e.artifacts()[:3]})
			if err == nil {
				for _, r := range res {
					if !r.OK() {
						err = r.Err
					}
				}
			}
			errs[i] = err
		}()
		if i%2 == 0 {
			e.log.Add([]byte(`{"fakelog":"unrelated entry"}`)) // the log grows while hooks run
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	cp, err := e.state.Checkpoints().Load(context.Background())
	if err != nil {
		t.Fatalf("state after concurrent runs: %v", err)
	}
	lines := bytes.SplitN(cp, []byte("\n"), 3)
	if len(lines) < 3 {
		t.Fatalf("stored checkpoint %q", cp)
	}
	t.Logf("stored tree size %s of %d", lines[1], e.log.Size())
	if string(lines[1]) != strconv.FormatInt(e.log.Size(), 10) {
		t.Errorf("stored tree size %s, log size %d: a later run's checkpoint was lost", lines[1], e.log.Size())
	}
}

// TestStateLockHeldByAnotherProcess: flock(1) holds the state lock as a
// concurrent hook in another process would; a run waits and gives up
// with *state.LockError when its context ends, touching nothing.
func TestStateLockHeldByAnotherProcess(t *testing.T) {
	flockTool, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock(1) not installed")
	}
	dir := filepath.Join(t.TempDir(), "state")
	d, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command(flockTool, filepath.Join(dir, "lock"), "sleep", "60")
	stdin, _ := holder.StdinPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); holder.Process.Kill(); holder.Wait() }()
	// Wait until the other process holds it.
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		unlock, err := d.Lock(ctx)
		cancel()
		if err != nil {
			break
		}
		unlock()
		if i > 500 {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = d.Lock(ctx)
	var le *state.LockError
	if !errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while another process holds it: %v, want *state.LockError wrapping the deadline", err)
	}
	if _, err := os.Stat(d.Path("checkpoint.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint written without the lock: %v", err)
	}
}
