package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/signer"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// TestOperatorScripts runs the testdata/operator/*.txtar stories: the
// issue's attacks on the operator's and the auditor's side, through the
// real bintrans process (TestMain), real GnuPG, repo-add and minisign, and
// a fake log per script (its URL in $LOG_URL, its key in log.pem). Each
// script starts with real packages in pkgs/ (built once, as makepkg
// builds them). Commands:
//
//	gpgkey NAME                  a GnuPG home with a fresh key: $GNUPG_NAME, $FPR_NAME
//	evildb DB FILENAME SHA256    add an entry to the database DB (rewritten, its
//	                             signature untouched); FILENAME may be a Go
//	                             "quoted string" (escapes allowed)
//	fakelog add N                log N signatures by key.sec (minisign -G in the script)
//	fakelog hidden               log one more, left out of the search index
//	fakelog other                log a signature by another key
//	fakelog substitute I J       serve entry J when index I is read
//	fakelog honest               stop substituting
func TestOperatorScripts(t *testing.T) {
	testenv.Tool(t, "gpg")
	testenv.Tool(t, "repo-add")
	testenv.Tool(t, "minisign")
	pkgDir := t.TempDir()
	var pkgs []string
	for _, p := range []testenv.Pkg{
		{Name: "hello", Version: "1.0-1", Arch: "x86_64", Files: map[string]string{"usr/share/hello/README": "hello\n"}},
		{Name: "world", Version: "2.1-3", Arch: "x86_64", Files: map[string]string{"usr/share/world/README": "world\n"}},
		{Name: "extra", Version: "0.9-1", Arch: "any", Files: map[string]string{"usr/share/extra/README": "extra\n"}},
	} {
		pkgs = append(pkgs, testenv.BuildPackage(t, pkgDir, p))
	}
	type logState struct {
		log *fakelog.Log
		n   int
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/operator",
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			l := fakelog.New(t)
			env.Values["log"] = &logState{log: l}
			env.Setenv("LOG_URL", l.URL)
			if err := os.MkdirAll(filepath.Join(env.WorkDir, "pkgs"), 0o755); err != nil {
				return err
			}
			for _, p := range pkgs {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(env.WorkDir, "pkgs", filepath.Base(p)), b, 0o644); err != nil {
					return err
				}
			}
			return os.WriteFile(filepath.Join(env.WorkDir, "log.pem"), l.KeyPEM, 0o644)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"gpgkey": cmdGPGKey,
			"evildb": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 3 {
					ts.Fatalf("usage: evildb DB FILENAME SHA256")
				}
				name := args[1]
				if strings.HasPrefix(name, `"`) {
					var err error
					name, err = strconv.Unquote(name)
					ts.Check(err)
				}
				path := ts.MkAbs(args[0])
				pkgs, err := repodb.ReadFile(path, repodb.DefaultLimits())
				ts.Check(err)
				evil := repodbtest.Packages(1, repodbtest.Options{Seed: 66, NoPGPSig: true})[0]
				evil.Filename, evil.Name, evil.Version, evil.SHA256Sum = name, "evil", "1.0-1", args[2]
				var b bytes.Buffer
				ts.Check(repodbtest.Write(&b, append(pkgs, evil), repodbtest.Options{}))
				real, err := filepath.EvalSymlinks(path)
				ts.Check(err)
				ts.Check(os.WriteFile(real, b.Bytes(), 0o644))
			},
			"fakelog": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) == 0 {
					ts.Fatalf("usage: fakelog add N | hidden | other | substitute I J | honest")
				}
				st := ts.Value("log").(*logState)
				sign := func() []byte {
					sk, err := signer.ReadSecretKey(ts.MkAbs("key.sec"), nil)
					ts.Check(err)
					pub, err := verify.ParsePublicKey(ts.ReadFile("key.pub"))
					ts.Check(err)
					st.n++
					msg := fmt.Sprintf("%064x", 0xc0de000+st.n)
					tb, err := verify.SignPackage(sk, msg, fmt.Sprintf("logged-%d-1-1-any.pkg.tar.zst", st.n))
					ts.Check(err)
					s, err := verify.ParseSignature(tb)
					ts.Check(err)
					return rekorv1.CanonicalBody(s, pub, []byte(msg))
				}
				switch args[0] {
				case "add":
					n, err := strconv.Atoi(args[1])
					ts.Check(err)
					for range n {
						st.log.Add(sign())
					}
				case "hidden":
					i := st.log.AddUnindexed(sign())
					ts.Logf("hidden entry at index %d", i)
				case "other":
					sk, pub := fakelogKey(t)
					msg := fmt.Sprintf("%064x", 0xfeed)
					tb, err := verify.SignPackage(sk, msg, "other-1-1-any.pkg.tar.zst")
					ts.Check(err)
					s, err := verify.ParseSignature(tb)
					ts.Check(err)
					st.log.Add(rekorv1.CanonicalBody(s, pub, []byte(msg)))
				case "substitute":
					i, err := strconv.ParseInt(args[1], 10, 64)
					ts.Check(err)
					j, err := strconv.ParseInt(args[2], 10, 64)
					ts.Check(err)
					st.log.Substitute(i, j)
				case "honest":
					st.log.ClearSubstitutions()
				default:
					ts.Fatalf("fakelog: unknown %q", args[0])
				}
			},
		},
	})
}
