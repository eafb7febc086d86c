package witnesstest

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Both witnesses listen on 127.0.0.1 only (omniwitness would bind :8080 and
// :8081 on all interfaces by default) and are gone after Stop.
func TestWitnessesListenOnLoopbackOnly(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	vkey, err := note.NewEd25519VerifierKey("example.org/log", pub)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("needs ss (iproute2)")
	}
	for _, w := range []*Witness{StartSigsum(t, pub), StartOmni(t, Log{Origin: "example.org/log", VKey: vkey})} {
		out, err := exec.Command(ss, "-ltnpH").Output()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.Contains(line, "pid="+strconv.Itoa(w.PID)+",") {
				continue
			}
			n++
			if f := strings.Fields(line); len(f) < 4 || !strings.HasPrefix(f[3], "127.0.0.1:") {
				t.Errorf("%s listens on %q", w.Kind, line)
			}
		}
		if n == 0 {
			t.Errorf("%s: no listener found for pid %d", w.Kind, w.PID)
		}
		addr := strings.TrimPrefix(w.URL, "http://")
		w.Stop()
		w.Stop()
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening on %s after Stop", w.Kind, addr)
		}
	}
}
