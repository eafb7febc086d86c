package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jedisct1/go-minisign"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// TestMonitorScripts runs the testdata/monitor/*.txtar stories: the real
// bintrans process (TestMain) against a fake log started per script, with
// a fresh key in key.pub, the log's key in log.pem and its URL in $LOG_URL.
// The "fakelog" command drives the log:
//
//	fakelog add N       log N signatures by the key
//	fakelog variant     log the first signature with another key id in its line
//	fakelog fork N      serve a history that differs from the N-th entry on
//	fakelog rollback N  serve the tree as it was at size N
//	fakelog honest      tell the truth again
func TestMonitorScripts(t *testing.T) {
	type logState struct {
		log  *fakelog.Log
		sk   *minisign.PrivateKey
		pub  verify.PublicKey
		sigs [][]byte // .t of each signature, in order
		msgs []string
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/monitor",
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			l := fakelog.New(t)
			sk, pub := fakelogKey(t)
			env.Values["log"] = &logState{log: l, sk: sk, pub: pub}
			env.Setenv("LOG_URL", l.URL)
			if err := os.WriteFile(filepath.Join(env.WorkDir, "log.pem"), l.KeyPEM, 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(env.WorkDir, "key.pub"), pub.File(), 0o644)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"fakelog": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) == 0 {
					ts.Fatalf("usage: fakelog add N | variant | fork N | rollback N | honest")
				}
				st := ts.Value("log").(*logState)
				num := func() int64 {
					if len(args) != 2 {
						ts.Fatalf("fakelog %s needs a number", args[0])
					}
					n, err := strconv.ParseInt(args[1], 10, 64)
					ts.Check(err)
					return n
				}
				switch args[0] {
				case "add":
					for range num() {
						i := len(st.msgs)
						msg := fmt.Sprintf("%064x", 0xb1a000+i)
						tb, err := verify.SignPackage(st.sk, msg, fmt.Sprintf("pkg%d-1-1-any.pkg.tar.zst", i))
						ts.Check(err)
						s, err := verify.ParseSignature(tb)
						ts.Check(err)
						st.log.Add(rekorv1.CanonicalBody(s, st.pub, []byte(msg)))
						st.sigs, st.msgs = append(st.sigs, tb), append(st.msgs, msg)
					}
				case "variant":
					s, err := verify.ParseSignature(st.sigs[0])
					ts.Check(err)
					line := bytes.Clone(s.Line())
					line[2] ^= 0x5a
					text := fmt.Sprintf("untrusted comment: x\n%s\ntrusted comment: y\n%s\n", base64.StdEncoding.EncodeToString(line),
						base64.StdEncoding.EncodeToString(make([]byte, 64)))
					v, err := verify.ParseSignature([]byte(text))
					ts.Check(err)
					st.log.Add(rekorv1.CanonicalBody(v, st.pub, []byte(st.msgs[0])))
				case "fork":
					st.log.Fork(num())
				case "rollback":
					st.log.RollbackTo(num())
				case "honest":
					st.log.SetLie(fakelog.Honest)
				default:
					ts.Fatalf("fakelog: unknown %q", args[0])
				}
			},
		},
	})
}
