// Command bintrans is binary transparency for pacman: it signs repository
// packages into a Rekor transparency log, refuses packages that are not
// provably logged, scans whole repositories in CI and audits the log.
//
// main.go only assembles the commands; each lives in <name>_cmd.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/bintrans/bintrans/internal/safetext"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// CLI is the whole command-line model.
type CLI struct {
	Globals

	Version  VersionCmd  `cmd:"" help:"Print the version and exit."`
	Hook     HookCmd     `cmd:"" help:"alpm PreTransaction hook (hooks/bintrans.hook): verify a whole pacman transaction; target names on stdin, non-zero exit aborts." set:"deadline_default=5m"`
	Verify   VerifyCmd   `cmd:"" help:"Verify package files, URLs or names (resolved through pacman's sync databases) against the transparency log." set:"deadline_default=5m"`
	Fetch    FetchCmd    `cmd:"" help:"Download one file for pacman (XferCommand = /usr/bin/bintrans fetch -O %o %u …): packages are verified before pacman sees them." set:"deadline_default=5m"`
	CheckDBs CheckDBsCmd `cmd:"" name:"check-dbs" help:"Check pacman's sync databases against their repository statements without a transaction (a frozen or rolled-back mirror); run daily by hooks/bintrans-check-dbs.timer." set:"deadline_default=5m"`
	Scan     ScanCmd     `cmd:"" help:"Check that every package of whole sync databases is signed and provably in the transparency log (CI reports: JSON, JUnit, GitHub)."`
	Monitor  MonitorCmd  `cmd:"" help:"List every log entry signed by the transparency key, verified; incremental, with rollback and split-view detection."`
	Sign     SignCmd     `cmd:"" help:"Repository operator: sign every package of sync databases that its packagers released (GnuPG signatures checked), log each signature in Rekor, publish .t + proof bundle, keep a hash-chained audit log (resumable)."`
	Audit    AuditCmd    `cmd:"" help:"Auditor: check the operator's audit log (verify-chain)."`
	Doctor   DoctorCmd   `cmd:"" help:"Check the configuration, reach the log and each rebuilder, and say what the next upgrade would check."`
	Help     HelpCmd     `cmd:"" help:"Show the help of a command: 'bintrans help scan' prints what 'bintrans scan --help' prints."`
	Docs     DocsCmd     `cmd:"" hidden:"" help:"Write man pages and bash, zsh and fish completions generated from this command line (for packagers)."`
}

const description = `Binary transparency for pacman.

bintrans makes every package provably public: the repository operator signs
each package's sha256 with a minisign transparency key and logs the signature
in a Rekor transparency log; pacman refuses packages whose signature is not
provably in the log.

Exit codes (every command):
  0  everything verified (or the command did what was asked)
  1  at least one package failed verification (audit/monitor: a finding)
  2  usage or configuration error
  3  could not run: I/O error, a service needed in this mode is unreachable,
     or the run's --deadline passed

As root (the pacman hook), the configuration file and every key file it or
the flags name must be root's alone: a file, or a directory above it, that
another user could write is refused (exit 2, naming the file, its owner and
mode).`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run parses args, runs the selected command and returns the exit code. It is
// separate from main so the CLI tests can run it in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cli CLI
	exit := -1
	opts := []kong.Option{
		kong.Name("bintrans"),
		kong.Description(description),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, FlagsLast: true}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
		kong.Vars{"version": version, "default_log_url": DefaultLogURL},
	}
	path, explicit, ignoredEnv := configPath(args)
	if ignoredEnv != "" {
		fmt.Fprintf(stderr, "bintrans: warning: the pacman hook ignores $BINTRANS_CONFIG (%s) and reads %s: its policy is not taken from the environment (put --config in the hook file instead)\n", safetext.Line(ignoredEnv), path)
	}
	resolver, err := loadConfig(path, explicit)
	if err != nil {
		return reportError(stderr, err)
	}
	if resolver != nil {
		opts = append(opts, kong.Resolvers(resolver))
	}
	parser, err := kong.New(&cli, opts...)
	if err != nil {
		return reportError(stderr, err)
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 { // --help or --version already printed
		return exit
	}
	if err != nil {
		return reportError(stderr, usageError{err})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// --deadline bounds the whole run of the commands that take it (fetch
	// applies it itself, after the download).
	if d, ok := selectedDeadline(kctx); ok {
		var cancel context.CancelFunc
		if ctx, cancel, err = withDeadline(ctx, d); err != nil {
			return reportError(stderr, err)
		}
		defer cancel()
	}
	cli.Globals.ctx = ctx
	cli.Globals.Stdin = stdin
	cli.Globals.Stdout = stdout
	cli.Globals.Stderr = stderr
	if err := kctx.Run(&cli.Globals); err != nil {
		return reportError(stderr, deadlineExceeded(ctx, err))
	}
	return ExitOK
}

// selectedDeadline is the --deadline of the command to run, if it applies
// one to its whole run.
func selectedDeadline(kctx *kong.Context) (time.Duration, bool) {
	sel := kctx.Selected()
	if sel == nil || !sel.Target.CanAddr() {
		return 0, false
	}
	d, ok := sel.Target.Addr().Interface().(interface{ runDeadline() time.Duration })
	if !ok {
		return 0, false
	}
	return d.runDeadline(), true
}

// deadlineExceeded makes an error of a run whose --deadline passed say so
// (exit 3, with the deadline's hint), unless it already does or is a
// verification failure (exit 1: its evidence stands).
func deadlineExceeded(ctx context.Context, err error) error {
	var de *deadlineError
	if !errors.As(context.Cause(ctx), &de) || errors.As(err, &de) {
		return err
	}
	var ce *cliError
	if errors.As(err, &ce) && ce.code == ExitFailed {
		return err
	}
	return &cliError{code: ExitInternal, msg: fmt.Sprintf("%v: %v", err, de), hint: de.Hint(), err: err}
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints "bintrans <version>".
func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintf(g.Stdout, "bintrans %s\n", version)
	return nil
}
