package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bintrans/bintrans/internal/signer"
)

// signPTY opens a pseudo-terminal pair (master, slave).
func signPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// On a terminal the password is prompted for on stderr and read with echo
// off: what the terminal shows holds the prompt, never the password.
func TestPasswordPromptOnTerminal(t *testing.T) {
	os.Unsetenv(passwordEnv)
	master, slave := signPTY(t)
	c := &SignCmd{SeckeyPath: "key.sec"}
	g := &Globals{Stdin: slave, Stdout: io.Discard, Stderr: slave}
	type result struct {
		pw  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		pw, err := c.password(g)()
		done <- result{pw, err}
	}()
	// Type only once echo is off, as a person would after the prompt.
	deadline := time.Now().Add(10 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo never turned off")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := master.Write([]byte("hunter2\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.pw != "hunter2" {
		t.Fatalf("password() = %q, %v", r.pw, r.err)
	}
	slave.Close()
	shown, _ := io.ReadAll(master) // EIO once the slave is closed
	if !bytes.Contains(shown, []byte("Password for key.sec: ")) {
		t.Errorf("no prompt on the terminal: %q", shown)
	}
	if bytes.Contains(shown, []byte("hunter2")) {
		t.Errorf("the password was echoed: %q", shown)
	}
}

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from-file\r\nsecond line ignored\n"), 0o600)
	t.Setenv(passwordEnv, "from-env")
	g := &Globals{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}

	// --password-file wins; only its first line, without CR.
	if pw, err := (&SignCmd{PasswordFile: file}).password(g)(); err != nil || pw != "from-file" {
		t.Fatalf("file: %q %v", pw, err)
	}
	// Then the environment, which is then removed from it.
	if pw, err := (&SignCmd{}).password(g)(); err != nil || pw != "from-env" {
		t.Fatalf("env: %q %v", pw, err)
	}
	if _, ok := os.LookupEnv(passwordEnv); ok {
		t.Error(passwordEnv + " still set after use")
	}
	// Nothing, and stdin is not a terminal.
	if _, err := (&SignCmd{}).password(g)(); !errors.Is(err, signer.ErrNoPassword) {
		t.Fatalf("no source: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, maxPasswordFile+1), 0o600)
	if _, err := (&SignCmd{PasswordFile: big}).password(g)(); err == nil {
		t.Fatal("oversized password file accepted")
	}
}
