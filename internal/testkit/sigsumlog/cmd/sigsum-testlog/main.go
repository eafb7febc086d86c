// Command sigsum-testlog serves internal/testkit/sigsumlog as a process: a
// real Sigsum log API (sigsum-go's pkg/server, the wire format of Sigsum's
// log-go) over an RFC 6962 tree from sigsum-go's pkg/merkle, whose tree
// heads are signed with a log key from a file and cosigned by the witnesses
// of a Sigsum policy file (C2SP tlog-witness add-checkpoint, the way
// log-go asks its witnesses). Test and demo use only: scripts/sigsum-stack
// runs it next to real sigsum-witness processes.
//
//	sigsum-testlog --key LOG.key --listen 127.0.0.1:PORT [--witnesses POLICY] [--interval 1s]
//
// The tree is in memory: a restart begins an empty log under the same key
// (witnesses that cosigned the old tree then refuse the new one; the stack
// script gives them fresh state). At start the empty tree is sequenced once
// so that even the first tree head carries cosignatures; afterwards the log
// sequences every --interval when leaves are pending, or when the published
// head lacks a witness's cosignature (offered again: a witness that was down
// cosigns once it is back). SIGTERM or SIGINT stops it.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"sigsum.org/sigsum-go/pkg/server"

	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/witness"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sigsum-testlog: %v\n", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("sigsum-testlog", flag.ContinueOnError)
	keyFile := fs.String("key", "", "the log's Ed25519 private key, OpenSSH format (sigsum-key generate)")
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to serve the Sigsum log API on")
	policyFile := fs.String("witnesses", "", "Sigsum policy file: every 'witness NAME KEY URL' line with a URL is asked to cosign each tree head")
	interval := fs.Duration("interval", time.Second, "sequencing interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *keyFile == "" {
		return errors.New("usage: sigsum-testlog --key FILE --listen 127.0.0.1:PORT [--witnesses POLICY] [--interval 1s]")
	}
	if *interval < 10*time.Millisecond {
		return fmt.Errorf("--interval %v: at least 10ms", *interval)
	}
	priv, err := readKey(*keyFile)
	if err != nil {
		return err
	}
	var ws []witness.Witness
	if *policyFile != "" {
		p, err := witness.ParseFile(*policyFile)
		if err != nil {
			return err
		}
		pub := priv.Public().(ed25519.PublicKey)
		named := len(p.Logs) == 0
		for i := range p.Logs {
			named = named || p.Logs[i].Ed25519().Equal(pub)
		}
		if !named {
			return fmt.Errorf("%s names logs, but not this one (key %x)", *policyFile, []byte(pub))
		}
		for _, w := range p.Witnesses {
			if w.URL != "" {
				ws = append(ws, w)
			}
		}
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: a loopback IP address and port, e.g. 127.0.0.1:3200", *listen)
	}
	l, err := sigsumlog.New(priv, ws)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The first head: the empty tree, cosigned.
	if err := l.Sequence(ctx, true); err != nil {
		return err
	}
	report(l)
	go func() {
		t := time.NewTicker(*interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Pending leaves make a new head; a head that lacks a
				// witness's cosignature (it was down) is offered again.
				before := l.Size()
				cth, _ := l.GetTreeHead(ctx)
				if err := l.Sequence(ctx, len(cth.Cosignatures) < len(ws)); err != nil {
					fmt.Fprintf(os.Stderr, "sigsum-testlog: sequence: %v\n", err)
				}
				if l.Size() != before {
					fmt.Fprintf(os.Stderr, "sigsum-testlog: tree size %d\n", l.Size())
				}
				report(l)
			}
		}
	}()
	srv := &http.Server{Handler: server.NewLog(&server.Config{}, l), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "sigsum-testlog: serving %s on http://%s (%d witnesses, sequencing every %v)\n", l.Origin(), ln.Addr(), len(ws), *interval)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

var lastReport = map[string]bool{}

// report prints the witnesses' refusals since the last call, each once
// while it repeats.
func report(l *sigsumlog.Log) {
	now := map[string]bool{}
	for _, e := range l.WitnessErrors() {
		now[e.Error()] = true
		if !lastReport[e.Error()] {
			fmt.Fprintf(os.Stderr, "sigsum-testlog: witness: %v\n", e)
		}
	}
	lastReport = now
}

func readKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v (want an unencrypted OpenSSH Ed25519 key, as sigsum-key generate writes)", path, err)
	}
	switch k := k.(type) {
	case *ed25519.PrivateKey:
		return *k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%s: a %T key, want Ed25519", path, k)
}
