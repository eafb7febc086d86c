// Package witnesstest runs real C2SP tlog-witness processes for tests:
// sigsum-witness (sigsum.org/sigsum-go v0.14.1, one Sigsum log per process)
// and omniwitness (github.com/transparency-dev/witness, any signed-note log:
// Ed25519, Rekor v1 ECDSA), both built by scripts/install-deps into
// $BINTRANS_CACHE/bin. Each witness gets a fresh key and fresh state in a
// temporary directory, listens on 127.0.0.1 only and is stopped by PID when
// the test ends. A missing binary skips the test, except under CI=true.
//
// Ports: the kernel picks a free one, unless BINTRANS_TEST_PORTS=LO-HI
// confines them to a range (engineers sharing a machine).
package witnesstest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"

	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// Kinds of witness.
const (
	SigsumWitness = "sigsum-witness"
	Omniwitness   = "omniwitness"
)

// Witness is a running witness process.
type Witness struct {
	Kind    string
	URL     string // submission prefix: POST URL + "/add-checkpoint"
	KeyName string // note key name on its cosignature lines
	Key     ed25519.PublicKey
	VKey    string // cosignature/v1 verifier key (type 0x04)
	Dir     string // key, state, output
	PID     int

	cmd     *exec.Cmd
	out     *os.File
	stopped sync.Once
	done    chan struct{}
}

// Hex is the witness key in Sigsum's hex form.
func (w *Witness) Hex() string { return hex.EncodeToString(w.Key) }

// PolicyLine is "witness NAME VKEY URL" (C2SP tlog-policy).
func (w *Witness) PolicyLine(name string) string {
	return fmt.Sprintf("witness %s %s %s", name, w.VKey, w.URL)
}

// SigsumPolicyLine is "witness NAME HEX URL" (Sigsum policy syntax).
func (w *Witness) SigsumPolicyLine(name string) string {
	return fmt.Sprintf("witness %s %s %s", name, w.Hex(), w.URL)
}

// Output is what the process wrote so far (for failure messages).
func (w *Witness) Output() string {
	b, _ := os.ReadFile(filepath.Join(w.Dir, "output"))
	return string(b)
}

// Stop kills the process (SIGKILL, by PID) and waits for it: a witness that
// is down. Safe to call twice; t.Cleanup calls it too.
func (w *Witness) Stop() {
	w.stopped.Do(func() {
		if w.cmd.Process != nil {
			_ = w.cmd.Process.Signal(syscall.SIGKILL)
		}
		<-w.done
		w.out.Close()
	})
}

// Binary returns the path of a witness binary: $BINTRANS_CACHE/bin (default
// ~/.cache/bintrans/bin), then PATH; skips (fails under CI) when missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	cache := os.Getenv("BINTRANS_CACHE")
	if cache == "" {
		if h, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(h, ".cache", "bintrans")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "bin", name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("needs %s (run scripts/install-deps)", name)
	if os.Getenv("CI") != "" {
		t.Fatal("CI " + msg)
	}
	t.Skip(msg)
	return ""
}

// StartSigsum starts a sigsum-witness for the Sigsum log with key logKey.
// Its cosignature lines are named "sigsum.org/v1/witness/<hex sha256(key)>".
func StartSigsum(t testing.TB, logKey ed25519.PublicKey) *Witness {
	t.Helper()
	bin := Binary(t, SigsumWitness)
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "witness.key"), pem.EncodeToMemory(blk), 0o600)
	sp, err := ssh.NewPublicKey(logKey)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "log.pub"), ssh.MarshalAuthorizedKey(sp), 0o644)
	h := sha256.Sum256(pub)
	w := &Witness{Kind: SigsumWitness, Dir: dir, Key: pub, KeyName: "sigsum.org/v1/witness/" + hex.EncodeToString(h[:])}
	w.VKey = cosignVKey(t, w.KeyName, pub)
	start(t, w, func(port int) []string {
		return []string{bin, "--signing-key", filepath.Join(dir, "witness.key"), "--log-key", filepath.Join(dir, "log.pub"),
			"--state-file", filepath.Join(dir, "state"), fmt.Sprintf("127.0.0.1:%d", port)}
	})
	return w
}

// Log is a log an omniwitness accepts.
type Log struct {
	Origin string
	VKey   string // note verifier key: 0x01 Ed25519, 0x02 ECDSA (Rekor v1)
}

// StartOmni starts an omniwitness for logs, its key named
// "bintrans-test-omni-<random>". Both listeners (API and metrics) are on
// 127.0.0.1; its built-in public logs get no traffic (no feeders).
func StartOmni(t testing.TB, logs ...Log) *Witness {
	t.Helper()
	bin := Binary(t, Omniwitness)
	dir := t.TempDir()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "bintrans-test-omni-" + hex.EncodeToString(rnd[:])
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "witness.skey"), []byte(skey+"\n"), 0o600)
	_, key64, _ := strings.Cut(strings.TrimPrefix(vkey, name+"+"), "+")
	raw, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		t.Fatalf("generated vkey %q: %v", vkey, err)
	}
	var y strings.Builder
	y.WriteString("Logs:\n")
	for _, l := range logs {
		fmt.Fprintf(&y, "  - Origin: %s\n    URL: http://127.0.0.1:1/unused\n    PublicKey: %s\n", strconv.Quote(l.Origin), strconv.Quote(l.VKey))
	}
	write(t, filepath.Join(dir, "logs.yaml"), []byte(y.String()), 0o644)
	w := &Witness{Kind: Omniwitness, Dir: dir, Key: ed25519.PublicKey(raw[1:]), KeyName: name}
	if w.VKey, err = fnote.VKeyToCosignatureV1(vkey); err != nil {
		t.Fatal(err)
	}
	start(t, w, func(port int) []string {
		mport := FreePort(t)
		return []string{bin, fmt.Sprintf("--listen=127.0.0.1:%d", port), fmt.Sprintf("--metrics_listen=127.0.0.1:%d", mport),
			"--db_file=" + filepath.Join(dir, "w.db"), "--private_key_path=" + filepath.Join(dir, "witness.skey"),
			"--additional_logs=" + filepath.Join(dir, "logs.yaml")}
	})
	return w
}

// start runs the command args(port) until it accepts connections on port,
// retrying with another port when the process dies first (a port taken
// between choosing and binding).
func start(t testing.TB, w *Witness, args func(port int) []string) {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := FreePort(t)
		argv := args(port)
		out, err := os.OpenFile(filepath.Join(w.Dir, "output"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = w.Dir
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = append(os.Environ(), "HOME="+w.Dir)
		if err := cmd.Start(); err != nil {
			out.Close()
			t.Fatalf("start %s: %v", w.Kind, err)
		}
		w.cmd, w.out, w.PID, w.done = cmd, out, cmd.Process.Pid, make(chan struct{})
		w.stopped = sync.Once{}
		go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(w.done)
		if lastErr = waitPort(port, w.done, 30*time.Second); lastErr == nil {
			w.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
			t.Logf("%s pid %d listening on %s after %v", w.Kind, w.PID, w.URL, time.Since(t0).Round(time.Millisecond))
			t.Cleanup(w.Stop)
			return
		}
		w.Stop()
	}
	t.Fatalf("%s did not start: %v\n%s", w.Kind, lastErr, w.Output())
}

func waitPort(port int, done <-chan struct{}, max time.Duration) error {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return errors.New("the process exited")
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("127.0.0.1:%d not listening after %s", port, max)
}

// FreePort returns a port free on 127.0.0.1 now: testenv.FreePort (from
// BINTRANS_TEST_PORTS=LO-HI when set, else one the kernel picks).
func FreePort(t testing.TB) int { t.Helper(); return testenv.FreePort(t) }

func cosignVKey(t testing.TB, name string, pub ed25519.PublicKey) string {
	t.Helper()
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return cv
}

func write(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}
