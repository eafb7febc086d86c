package signer

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/verify"
)

// Through the real Rekor client over HTTP, against the fault-injecting log:
// the packages' signatures are already logged (an earlier run, or anyone
// replaying them), so each upload answers 409 and the client fetches the
// existing entry — and the log lies in that answer. Whatever the lie,
// nothing is published and nothing is audited; once the log is honest a
// re-run finishes the job without a new entry.
func TestLyingLogOverHTTP(t *testing.T) {
	for _, lie := range fakelog.Lies() {
		switch lie {
		case fakelog.LieBadConsistencyProof, fakelog.LieStaleCheckpoint, fakelog.LieForkedTree:
			// A rollback or a fork serves entries with valid proofs in a
			// validly signed tree: only consistency with a persisted
			// checkpoint shows it (the online verifier and the monitor
			// do that). sign verifies each entry offline.
			continue
		}
		t.Run(lie.String(), func(t *testing.T) {
			t.Parallel()
			fl := fakelog.New(t)
			lk, err := rekorv1.ParseLogKey(fl.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			hc, err := httpclient.New(httpclient.Options{Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			c, err := rekorv1.New(fl.URL, hc, rekorv1.WithRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, 6)
			use := func(o *Options) { o.Log, o.LogKey = c, lk }
			for _, p := range e.pkgs {
				tf, err := verify.SignPackage(e.sk, p.SHA256Sum, p.Filename)
				if err != nil {
					t.Fatal(err)
				}
				sig, _ := verify.ParseSignature(tf)
				fl.Add(rekorv1.CanonicalBody(sig, e.pub, []byte(p.SHA256Sum)))
			}
			fl.SetLie(lie, fakelog.EndpointUpload, fakelog.EndpointEntry)
			sum := e.run([]string{"core"}, use)
			if sum.Failed != 6 || sum.Signed != 0 || sum.AuditRecords != 0 {
				t.Fatalf("with the log lying (%s): %+v", lie, sum)
			}
			for _, f := range sum.Failures {
				if f.Stage != StageUpload && f.Stage != StageVerify {
					t.Errorf("failure %+v", f)
				}
			}
			if names, _ := os.ReadDir(e.sigDir); len(names) != 0 {
				t.Fatalf("published %d files from a lying log", len(names))
			}
			fl.SetLie(fakelog.Honest)
			sum = e.run([]string{"core"}, use)
			if sum.Failed != 0 || sum.Recovered+sum.Signed != 6 || sum.AuditRecords != 6 {
				t.Fatalf("honest re-run: %+v", sum)
			}
			lkSize := fl.Size()
			if sum, _ := runOnce(e, use); sum.AlreadyPublished != 6 || fl.Size() != lkSize {
				t.Fatalf("third run: %+v, log grew %d → %d", sum, lkSize, fl.Size())
			}
			// Exactly one entry per package: the lies did not make the
			// signer log anything twice.
			bodies := map[string]bool{}
			for i := range fl.Size() {
				bodies[rekorv1.LeafHash(fl.Entry(i).Body)] = true
			}
			if fl.Size() != 6 || len(bodies) != 6 {
				t.Fatalf("log has %d entries (%d distinct) for 6 packages", fl.Size(), len(bodies))
			}
			checkPublished(t, e, lk)
		})
	}
}

func runOnce(e *env, mod ...func(*Options)) (*Summary, error) {
	s := e.signer(mod...)
	defer s.Close()
	return s.Run(context.Background(), Sources(e.repoURL, []string{"core"}, []string{"x86_64"}))
}

// checkPublished verifies every package's .t and bundle under lk.
func checkPublished(t *testing.T, e *env, lk *rekorv1.LogKey) {
	t.Helper()
	s := e.signer(func(o *Options) { o.LogKey = lk })
	defer s.Close()
	for _, p := range e.pkgs {
		if _, ok := s.published(p.Filename, p.SHA256Sum); !ok {
			t.Errorf("%s: not published", p.Filename)
		}
	}
}
