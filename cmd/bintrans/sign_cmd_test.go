package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

var testenvTool = testenv.Tool

// signCLI is a command-line model holding only the commands of this file,
// so that the tests do not depend on how main.go assembles the commands.
type signCLI struct {
	Globals
	Sign  SignCmd  `cmd:"" help:"Sign repository packages into the transparency log."`
	Audit AuditCmd `cmd:"" help:"Check the operator's audit log."`
}

// runSignCLI runs args through signCLI in-process, like run does for the
// real CLI, and returns the exit code.
func runSignCLI(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cli signCLI
	exit := -1
	parser, err := kong.New(&cli, kong.Name("bintrans"), kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }), kong.Vars{"version": version, "default_log_url": DefaultLogURL})
	if err != nil {
		return reportError(stderr, err)
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 {
		return exit
	}
	if err != nil {
		return reportError(stderr, usageError{err})
	}
	cli.Globals.ctx = context.Background()
	cli.Globals.Stdin, cli.Globals.Stdout, cli.Globals.Stderr = stdin, stdout, stderr
	if err := kctx.Run(&cli.Globals); err != nil {
		return reportError(stderr, err)
	}
	return ExitOK
}

// signRun is the outcome of one command run.
type signRun struct {
	code           int
	stdout, stderr string
}

func signRunIn(t *testing.T, args ...string) signRun {
	t.Helper()
	var out, errb bytes.Buffer
	code := runSignCLI(args, strings.NewReader(""), &out, &errb)
	return signRun{code, out.String(), errb.String()}
}

// The helper process: `go test` re-executes its own binary with
// BINTRANS_SIGN_CHILD=1 and the command line in BINTRANS_SIGN_ARGS (JSON)
// to run the command as a real process that a test can kill -9.
func TestSignHelperProcess(t *testing.T) {
	if os.Getenv("BINTRANS_SIGN_CHILD") != "1" {
		t.Skip("helper process for the kill -9 test")
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv("BINTRANS_SIGN_ARGS")), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(99)
	}
	os.Exit(runSignCLI(args, os.Stdin, os.Stdout, os.Stderr))
}

// signChild returns the command running args in a separate process.
func signChild(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BINTRANS_SIGN_CHILD=1", "BINTRANS_SIGN_ARGS="+string(a))
	return cmd
}

func signWriteFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keyPair makes a minisign key pair with the real CLI (-W: unencrypted).
func keyPair(t *testing.T, dir string) (pub, sec string) {
	t.Helper()
	mini := testenvTool(t, "minisign")
	pub, sec = filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.sec")
	if out, err := exec.Command(mini, "-W", "-G", "-p", pub, "-s", sec).CombinedOutput(); err != nil {
		t.Fatalf("minisign: %v %s", err, out)
	}
	return pub, sec
}

func TestSignUsageErrors(t *testing.T) {
	dir := t.TempDir()
	pub, sec := keyPair(t, dir)
	otherPub, _ := keyPair(t, t.TempDir())
	logKey := filepath.Join("..", "..", "internal", "signer", "testdata", "encrypted.pub") // not a PEM
	encSec := filepath.Join("..", "..", "internal", "signer", "testdata", "encrypted.key")
	encPub := filepath.Join("..", "..", "internal", "signer", "testdata", "encrypted.pub")
	sig := filepath.Join(dir, "sig")
	os.MkdirAll(sig, 0o755)
	base := func(extra ...string) []string {
		return append([]string{"sign", "--repo-url", dir, "--repo-name", "core", "--signature-dir", sig,
			"--state-dir", filepath.Join(dir, "state")}, extra...)
	}
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"non-default log without key", base("--pubkey-path", pub, "--seckey-path", sec, "--log-url", "http://127.0.0.1:1"), "needs --log-key"},
		{"log key not PEM", base("--pubkey-path", pub, "--seckey-path", sec, "--log-url", "http://127.0.0.1:1", "--log-key", logKey), "--log-key"},
		{"secret key of another pair", base("--pubkey-path", otherPub, "--seckey-path", sec), "key id"},
		{"missing secret key", base("--pubkey-path", pub, "--seckey-path", filepath.Join(dir, "nope")), "cannot open"},
		{"encrypted key, no password, no terminal", base("--pubkey-path", encPub, "--seckey-path", encSec), "no password"},
		{"bad jobs", base("--pubkey-path", pub, "--seckey-path", sec, "--jobs", "0"), "--jobs"},
		{"signature dir missing", []string{"sign", "--repo-url", dir, "--repo-name", "core", "--signature-dir", filepath.Join(dir, "nope"),
			"--pubkey-path", pub, "--seckey-path", sec}, "not a directory"},
	}
	t.Setenv("BINTRANS_PASSWORD", "")
	os.Unsetenv("BINTRANS_PASSWORD")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := signRunIn(t, c.args...)
			if res.code != ExitUsage || !strings.Contains(res.stderr, c.msg) || !strings.Contains(res.stderr, "hint: ") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 mentioning %q with a hint", res.code, res.stderr, c.msg)
			}
			if strings.Contains(res.stderr, "RWQAAEIy") || strings.Contains(res.stderr, "RWRTY0Iy") {
				t.Error("secret key bytes on stderr")
			}
		})
	}
}

func TestAuditVerifyChainCmd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	w, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := w.Append(audit.Record{Repo: "core", Arch: "x86_64", Filename: fmt.Sprintf("p%d-1-1-any.pkg.tar.zst", i),
			Name: fmt.Sprintf("p%d", i), Version: "1-1", SHA256: strings.Repeat("a", 64), LogIndex: int64(i),
			UUID: strings.Repeat("b", 64), KeyID: "0123456789ABCDEF"})
		if err != nil {
			t.Fatal(err)
		}
	}
	head := w.Head()
	w.Close()
	res := signRunIn(t, "audit", "verify-chain", path)
	if res.code != 0 || !strings.Contains(res.stdout, fmt.Sprintf("chain ok, 3 records, head 3:%s", head.Hash)) {
		t.Fatalf("%+v", res)
	}
	if res := signRunIn(t, "audit", "verify-chain", "--head", fmt.Sprintf("3:%s", head.Hash), path); res.code != 0 {
		t.Fatalf("--head: %+v", res)
	}
	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	// Records removed from the end: only --head sees it.
	signWriteFile(t, path, lines[0]+lines[1])
	if res := signRunIn(t, "audit", "verify-chain", path); res.code != 0 {
		t.Fatalf("shorter chain: %+v", res)
	}
	res = signRunIn(t, "audit", "verify-chain", "--head", fmt.Sprintf("3:%s", head.Hash), path)
	if res.code != ExitFailed || !strings.Contains(res.stderr, "head") {
		t.Fatalf("--head after truncation: %+v", res)
	}
	// A deleted record in the middle: line 2 is named.
	signWriteFile(t, path, lines[0]+lines[2])
	res = signRunIn(t, "audit", "verify-chain", "--json", path)
	var rep chainReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if res.code != ExitFailed || rep.OK || rep.BadLine != 2 || rep.Kind != "prev-mismatch" || !strings.Contains(res.stderr, "line 2") {
		t.Fatalf("deleted record: %+v %+v", res, rep)
	}
	if res := signRunIn(t, "audit", "verify-chain", filepath.Join(dir, "nope")); res.code != ExitInternal {
		t.Fatalf("missing file: %+v", res)
	}
	if res := signRunIn(t, "audit", "verify-chain", "--head", "xyz", path); res.code != ExitUsage {
		t.Fatalf("bad --head: %+v", res)
	}
}
