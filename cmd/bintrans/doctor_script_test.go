package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
)

// TestDoctorScripts runs the testdata/doctor/*.txtar stories: the real
// bintrans process against a fake log (real RFC 6962 proofs, ECDSA-signed
// checkpoints) holding three entries. Files: key.pub (a transparency key),
// log.pem (the log's key), other.pem (a key that did not sign the log).
// $LOG_URL is the log, $REBUILDER_URL a rebuilderd that answers "[]".
// Commands:
//
//	fakelog add N         append N entries
//	fakelog rollback N    serve the tree as it was at size N
//	storecheckpoint DIR   store the log's current checkpoint in state DIR,
//	                      as a hook run would
func TestDoctorScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/doctor",
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			l := fakelog.New(t)
			for i := range 3 {
				l.Add([]byte(`{"doctor":` + strconv.Itoa(i) + `}`))
			}
			rb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte("[]\n"))
			}))
			env.Defer(rb.Close)
			env.Values["log"] = l
			env.Setenv("LOG_URL", l.URL)
			env.Setenv("REBUILDER_URL", rb.URL)
			_, pub := fakelogKey(t)
			for name, b := range map[string][]byte{"log.pem": l.KeyPEM, "other.pem": l.OtherKeyPEM, "key.pub": pub.File()} {
				if err := os.WriteFile(filepath.Join(env.WorkDir, name), b, 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"fakelog": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: fakelog add N | rollback N")
				}
				l := ts.Value("log").(*fakelog.Log)
				n, err := strconv.ParseInt(args[1], 10, 64)
				ts.Check(err)
				switch args[0] {
				case "add":
					for i := range n {
						l.Add([]byte(`{"doctor-more":` + strconv.FormatInt(i, 10) + `}`))
					}
				case "rollback":
					l.RollbackTo(n)
				default:
					ts.Fatalf("fakelog: unknown %q", args[0])
				}
			},
			"storecheckpoint": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: storecheckpoint DIR")
				}
				l := ts.Value("log").(*fakelog.Log)
				lk, err := rekorv1.ParseLogKey(l.KeyPEM)
				ts.Check(err)
				sd, err := state.Open(ts.MkAbs(args[0]))
				ts.Check(err)
				ts.Check(sd.CheckpointsFor(lk.ID()).Store(context.Background(), l.Checkpoint()))
			},
		},
	})
}
