package main

import (
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/bintrans/bintrans/internal/testkit/gpgtest"
)

// scriptT adapts a testscript to gpgtest.T.
type scriptT struct{ ts *testscript.TestScript }

func (s scriptT) Helper()                           {}
func (s scriptT) Fatalf(format string, args ...any) { s.ts.Fatalf(format, args...) }
func (s scriptT) Cleanup(f func())                  { s.ts.Defer(f) }

// cmdGPGKey is `gpgkey NAME`: a GnuPG home with a fresh ed25519 key (no
// passphrase, ultimately trusted in its own home) in $GNUPG_NAME, its
// fingerprint in $FPR_NAME. The script signs with it as makepkg and
// repo-add do (env GNUPGHOME=$GNUPG_NAME, exec gpg / repo-add --sign), and
// gives the home to bintrans sign as --keyring.
func cmdGPGKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gpgkey NAME")
	}
	h := gpgtest.New(scriptT{ts}, args[0]+" <"+args[0]+"@example.org>")
	ts.Setenv("GNUPG_"+args[0], h.Dir)
	ts.Setenv("FPR_"+args[0], h.Fingerprint)
}
