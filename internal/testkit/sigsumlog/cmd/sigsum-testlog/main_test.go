package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// The flags that keep the test log a loopback-only, single-key process
// refuse what they must before anything listens. (scripts/sigsum-stack-test
// runs the command itself, with witnesses, judged by sigsum-submit and
// sigsum-verify.)
func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "log.key")
	write(t, key, string(pem.EncodeToMemory(blk)))
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPolicy := filepath.Join(dir, "other.policy")
	write(t, otherPolicy, fmt.Sprintf("log %x http://127.0.0.1:1\nquorum none\n", []byte(other)))
	ownPolicy := filepath.Join(dir, "own.policy")
	write(t, ownPolicy, fmt.Sprintf("log %x http://127.0.0.1:1\nquorum none\n", []byte(pub)))
	notKey := filepath.Join(dir, "not.key")
	write(t, notKey, "hello\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "127.0.0.1:0"}, "usage"},
		{[]string{"--key", key, "extra"}, "usage"},
		{[]string{"--key", key, "--listen", "0.0.0.0:0"}, "loopback"},
		{[]string{"--key", key, "--listen", "localhost:0"}, "loopback"},
		{[]string{"--key", key, "--listen", "192.0.2.1:80"}, "loopback"},
		{[]string{"--key", notKey}, "OpenSSH Ed25519"},
		{[]string{"--key", key, "--witnesses", otherPolicy}, "not this one"},
		{[]string{"--key", key, "--interval", "1ms"}, "at least 10ms"},
	} {
		err := run(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %q: %v, want an error with %q", c.args, err, c.want)
		}
	}
	// The policy naming this log is accepted up to listening: a port in use
	// is the first error left.
	if err := run([]string{"--key", key, "--witnesses", ownPolicy, "--listen", "127.0.0.1:-1"}); err == nil || strings.Contains(err.Error(), "not this one") {
		t.Errorf("own policy: %v", err)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
