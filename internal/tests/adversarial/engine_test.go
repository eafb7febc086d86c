package adversarial

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/rebuilder"
	"github.com/bintrans/bintrans/internal/sigsource"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/rebuildertest"
	"github.com/bintrans/bintrans/verify"
)

// engineCase is one hostile input met by the engine. prepare damages a
// fresh env (three good packages, an honest checkpoint persisted) and
// returns the run options and the index of the package under attack.
type engineCase struct {
	name    string
	prepare func(t *testing.T, e *env) (runOpts, int)
	// status is the verdict of the attacked package.
	status verify.Status
	// err is a typed nil pointer that Result.Err must hold (errors.As); nil
	// only with status ok.
	err any
	// runErr, when set, is the typed error VerifyAll itself must return
	// (the run failed closed); nil means VerifyAll returns no error.
	runErr any
	// check, when set, inspects the evidence further.
	check func(t *testing.T, e *env, r verify.Result)
}

var (
	sigErr    = (*verify.SignatureError)(nil)
	entryErr  = (*rekorv1.EntryError)(nil)
	bundleErr = (*verify.BundleError)(nil)
	hashErr   = (*verify.HashMismatchError)(nil)
	missErr   = (*verify.MissingError)(nil)
	notInLog  = (*verify.NotInLogError)(nil)
	secErr    = (*verify.SecurityError)(nil)
	unavail   = (*verify.LogUnavailableError)(nil)
	rebErr    = (*verify.RebuildError)(nil)
	tooLarge  = (*sigsource.TooLargeError)(nil)
)

func sigKind(k verify.SignatureErrorKind) func(*testing.T, *env, verify.Result) {
	return func(t *testing.T, _ *env, r verify.Result) {
		v, _ := asType(r.Err, sigErr)
		if se := v.(*verify.SignatureError); se.Kind != k {
			t.Errorf("signature error kind %v, want %v (%v)", se.Kind, k, se)
		}
	}
}

func entryStep(s rekorv1.EntryStep) func(*testing.T, *env, verify.Result) {
	return func(t *testing.T, _ *env, r verify.Result) {
		v, _ := asType(r.Err, entryErr)
		if ee := v.(*rekorv1.EntryError); ee.Step != s {
			t.Errorf("entry error step %q, want %q (%v)", ee.Step, s, ee)
		}
	}
}

// tamperFile rewrites the attacked package's cached file; claim says
// what the repository database claims: the original hash (an honest db,
// a hostile mirror) or the new file's (a hostile mirror with its own db).
func tamperFile(f func([]byte) []byte, dbAgrees bool) func(t *testing.T, e *env) (runOpts, int) {
	return func(t *testing.T, e *env) (runOpts, int) {
		p := e.pkgs[1]
		bad := f(bytes.Clone(p.content))
		e.write(t, p.filename, bad)
		arts := e.artifacts()
		if dbAgrees {
			arts[1].SHA256 = sum(bad)
		}
		return runOpts{arts: arts}, 1
	}
}

// replaceT publishes a `.t` for the attacked package built by f.
func replaceT(f func(t *testing.T, e *env, p *pkgFile) []byte) func(t *testing.T, e *env) (runOpts, int) {
	return func(t *testing.T, e *env) (runOpts, int) {
		p := e.pkgs[1]
		e.writeSig(t, p.filename+verify.SignatureSuffix, f(t, e, p))
		return runOpts{}, 1
	}
}

// relabel changes the algorithm bytes of a `.t`'s signature line.
func relabel(t testing.TB, tf []byte, alg string) []byte {
	t.Helper()
	lines := strings.Split(string(tf), "\n")
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil {
		t.Fatal(err)
	}
	copy(raw, alg)
	lines[1] = base64.StdEncoding.EncodeToString(raw)
	return []byte(strings.Join(lines, "\n"))
}

// replaceBundle publishes a bundle for the attacked package built by f and
// verifies offline (bundles only).
func replaceBundle(f func(t *testing.T, e *env, p *pkgFile) []byte) func(t *testing.T, e *env) (runOpts, int) {
	return func(t *testing.T, e *env) (runOpts, int) {
		p := e.pkgs[1]
		e.writeSig(t, p.filename+verify.BundleSuffix, f(t, e, p))
		return runOpts{offline: true}, 1
	}
}

// lyingBundle is the bundle made from what a lying log answers for the
// attacked package's entry (the log's lie as a publisher would store it).
func lyingBundle(lie fakelog.Lie) func(t *testing.T, e *env, p *pkgFile) []byte {
	return func(t *testing.T, e *env, p *pkgFile) []byte {
		e.log.SetLie(lie, fakelog.EndpointEntry)
		defer e.log.SetLie(fakelog.Honest)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		le, err := e.rekorClient(t, nil).EntryByUUID(ctx, p.entry.UUID)
		if err != nil {
			t.Fatalf("lying entry (%v): %v", lie, err)
		}
		return bundleOf(t, le)
	}
}

// lyingLog turns a lie on and verifies online.
func lyingLog(lie fakelog.Lie, only ...fakelog.Endpoint) func(t *testing.T, e *env) (runOpts, int) {
	return func(t *testing.T, e *env) (runOpts, int) {
		e.log.SetLie(lie, only...)
		return runOpts{}, 1
	}
}

// withoutBundle removes the attacked package's bundle so that the engine
// must find its entry in the log.
func withoutBundle(f func(t *testing.T, e *env) (runOpts, int)) func(t *testing.T, e *env) (runOpts, int) {
	return func(t *testing.T, e *env) (runOpts, int) {
		e.writeSig(t, e.pkgs[1].filename+verify.BundleSuffix, nil)
		return f(t, e)
	}
}

// rebuilders serves the packages' verdicts from one fake rebuilderd with
// fault and requires one confirmation.
func rebuilders(fault rebuildertest.Fault, edit func(p *rebuildertest.Package), forged bool) func(t *testing.T, e *env) (runOpts, int) {
	return func(t *testing.T, e *env) (runOpts, int) {
		var opts rebuildertest.Options
		if forged {
			// The rebuilder signs attestations with a key the policy does
			// not pin.
			_, opts.Key, _ = ed25519.GenerateKey(rand.Reader)
		}
		srv := rebuildertest.New(t, opts)
		for _, p := range e.pkgs {
			rp := rebuildertest.Package{Name: p.name, Version: p.version, Arch: "x86_64", Status: "GOOD", Filename: p.filename, SHA256: p.sha256}
			if p == e.pkgs[1] && edit != nil {
				edit(&rp)
			}
			srv.Add(rp)
		}
		srv.SetFault(fault)
		cfg := rebuilder.Config{URLs: []string{srv.URL}, Timeout: 3 * time.Second}
		if forged {
			pinned, _, _ := ed25519.GenerateKey(rand.Reader)
			cfg.Keys = map[string][]ed25519.PublicKey{srv.URL: {pinned}}
		}
		set, err := rebuilder.New(cfg, e.hc)
		if err != nil {
			t.Fatal(err)
		}
		return runOpts{rb: set, required: 1}, 1
	}
}

// signOnly signs without logging.
func signOnly(t testing.TB, k key, sha, comment string) ([]byte, error) {
	t.Helper()
	tf, err := verify.SignPackage(k.sk, sha, comment)
	if err != nil {
		t.Fatal(err)
	}
	return tf, nil
}

func minisignOpts(comment string, hashed bool) minisign.SignOptions {
	return minisign.SignOptions{TrustedComment: comment, Hashed: hashed}
}

func engineCases() []engineCase {
	flip := func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }
	return []engineCase{
		// --- tampered package ---------------------------------------------
		{name: "package/one-byte-flipped", prepare: tamperFile(flip, false), status: verify.StatusHashMismatch, err: hashErr},
		{name: "package/one-byte-flipped-mirror-db-agrees", prepare: tamperFile(flip, true), status: verify.StatusBadSignature, err: sigErr,
			check: sigKind(verify.SigBadSignature)},
		{name: "package/truncated", prepare: tamperFile(func(b []byte) []byte { return b[:len(b)/2] }, false), status: verify.StatusHashMismatch, err: hashErr},
		{name: "package/truncated-mirror-db-agrees", prepare: tamperFile(func(b []byte) []byte { return b[:len(b)/2] }, true), status: verify.StatusBadSignature, err: sigErr},
		{name: "package/appended", prepare: tamperFile(func(b []byte) []byte { return append(b, "#!/bin/sh evil\n"...) }, false), status: verify.StatusHashMismatch, err: hashErr},
		{name: "package/appended-mirror-db-agrees", prepare: tamperFile(func(b []byte) []byte { return append(b, "#!/bin/sh evil\n"...) }, true), status: verify.StatusBadSignature, err: sigErr},

		// --- .t -----------------------------------------------------------
		{name: "t/signed-by-another-key", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			tf, _ := signOnly(t, newKey(t), p.sha256, p.filename)
			return tf
		}), status: verify.StatusWrongKey, err: sigErr, check: sigKind(verify.SigUnknownKey)},
		{name: "t/another-key-claiming-the-policy-key-id", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			k := newKey(t)
			k.sk.KeyId = e.key.sk.KeyId
			tf, _ := signOnly(t, k, p.sha256, p.filename)
			return tf
		}), status: verify.StatusBadSignature, err: sigErr, check: sigKind(verify.SigBadSignature)},
		{name: "t/policy-key-with-wrong-key-id", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			k := e.key
			sk := *k.sk
			rand.Read(sk.KeyId[:])
			k.sk = &sk
			tf, _ := signOnly(t, k, p.sha256, p.filename)
			return tf
		}), status: verify.StatusWrongKey, err: sigErr, check: sigKind(verify.SigUnknownKey)},
		{name: "t/trusted-comment-names-another-file", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			tf, _ := signOnly(t, e.key, p.sha256, "pkg01-9.9-1-x86_64.pkg.tar.zst")
			return tf
		}), status: verify.StatusCommentMismatch, err: sigErr, check: sigKind(verify.SigCommentMismatch)},
		{name: "t/trusted-comment-edited", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			return bytes.Replace(p.t, []byte("trusted comment: pkg01"), []byte("trusted comment: pkg0l"), 1)
		}), status: verify.StatusBadSignature, err: sigErr, check: sigKind(verify.SigBadGlobalSignature)},
		{name: "t/prehashed-relabelled-legacy", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			return relabel(t, p.t, "Ed")
		}), status: verify.StatusBadSignature, err: sigErr, check: sigKind(verify.SigBadSignature)},
		{name: "t/legacy-relabelled-prehashed", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			sig, err := e.key.sk.Sign([]byte(p.sha256), minisignOpts(p.filename, false))
			if err != nil {
				t.Fatal(err)
			}
			return relabel(t, sig.Encode(), "ED")
		}), status: verify.StatusBadSignature, err: sigErr, check: sigKind(verify.SigBadSignature)},
		{name: "t/1025-bytes", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			pad := verify.MaxSignatureSize + 1 - len(p.t)
			return bytes.Replace(p.t, []byte("untrusted comment: "), []byte("untrusted comment: "+strings.Repeat("x", pad)), 1)
		}), status: verify.StatusMalformedSignature, err: tooLarge},
		{name: "t/binary-garbage", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			b := make([]byte, 300)
			rand.Read(b)
			return b
		}), status: verify.StatusMalformedSignature, err: sigErr, check: sigKind(verify.SigMalformed)},
		{name: "t/empty-file", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte { return []byte{} }),
			status: verify.StatusMalformedSignature, err: sigErr},
		{name: "t/extra-line", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			return append(bytes.Clone(p.t), "trusted comment: pkg00-1.0-1-x86_64.pkg.tar.zst\n"...)
		}), status: verify.StatusMalformedSignature, err: sigErr, check: sigKind(verify.SigMalformed)},
		{name: "t/html-captive-portal", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			return []byte("<!DOCTYPE html><html><body>Please log in to the hotel wifi</body></html>\n")
		}), status: verify.StatusMalformedSignature, err: sigErr},
		{name: "t/missing", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte { return nil }),
			status: verify.StatusMissingSignature, err: missErr},
		{name: "t/trusted-comment-with-trailing-space", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			tf, _ := signOnly(t, e.key, p.sha256, p.filename+" ")
			return tf
		}), status: verify.StatusCommentMismatch, err: sigErr, check: sigKind(verify.SigCommentMismatch)},
		{name: "t/signed-over-uppercase-hex", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			sig, err := e.key.sk.Sign([]byte(strings.ToUpper(p.sha256)), minisignOpts(p.filename, true))
			if err != nil {
				t.Fatal(err)
			}
			return sig.Encode()
		}), status: verify.StatusBadSignature, err: sigErr, check: sigKind(verify.SigBadSignature)},
		{name: "t/path-traversal-in-package-name", prepare: func(t *testing.T, e *env) (runOpts, int) {
			arts := e.artifacts()
			arts[1].Filename = "../" + arts[1].Filename
			return runOpts{arts: arts}, 1
		}, status: verify.StatusUnavailable, err: (*sigsource.FilenameError)(nil)},
		// Decision: a legacy (Ed) signature that is logged is accepted, as
		// the seed's clients accept it.
		{name: "t/legacy-signature-logged-accepted", prepare: func(t *testing.T, e *env) (runOpts, int) {
			p := e.pkgs[1]
			sig, err := e.key.sk.Sign([]byte(p.sha256), minisignOpts(p.filename, false))
			if err != nil {
				t.Fatal(err)
			}
			tf := sig.Encode()
			e.writeSig(t, p.filename+verify.SignatureSuffix, tf)
			e.writeSig(t, p.filename+verify.BundleSuffix, bundleOf(t, e.logSig(t, tf, e.key.pk, p.sha256)))
			return runOpts{offline: true}, 1 // offline: the grown log must not move the stored checkpoint
		}, status: verify.StatusOK},
		// Decision: CRLF line ends are accepted (same bytes under the
		// signatures; minisign's own reader strips '\r' too).
		{name: "t/crlf-line-ends-accepted", prepare: replaceT(func(t *testing.T, e *env, p *pkgFile) []byte {
			return bytes.ReplaceAll(p.t, []byte("\n"), []byte("\r\n"))
		}), status: verify.StatusOK},

		// --- proof bundle (offline) ----------------------------------------
		{name: "bundle/inclusion-proof-for-another-leaf", prepare: replaceBundle(lyingBundle(fakelog.LieProofForOtherLeaf)),
			status: verify.StatusBundleInvalid, err: entryErr, check: entryStep(rekorv1.StepInclusion)},
		{name: "bundle/tree-size-beyond-checkpoint", prepare: replaceBundle(lyingBundle(fakelog.LieProofTreeSize)),
			status: verify.StatusBundleInvalid, err: entryErr},
		{name: "bundle/checkpoint-signed-by-another-key", prepare: replaceBundle(lyingBundle(fakelog.LieOtherSigner)),
			status: verify.StatusBundleInvalid, err: entryErr},
		{name: "bundle/set-for-another-body", prepare: replaceBundle(lyingBundle(fakelog.LieSETForOtherBody)),
			status: verify.StatusBundleInvalid, err: entryErr, check: entryStep(rekorv1.StepSET)},
		{name: "bundle/root-not-the-trees", prepare: replaceBundle(lyingBundle(fakelog.LieWrongRoot)),
			status: verify.StatusBundleInvalid, err: entryErr},
		{name: "bundle/of-another-package", prepare: replaceBundle(func(t *testing.T, e *env, p *pkgFile) []byte { return e.pkgs[0].bundle }),
			status: verify.StatusBundleInvalid, err: entryErr, check: entryStep(rekorv1.StepBody)},
		{name: "bundle/129-hashes", prepare: replaceBundle(func(t *testing.T, e *env, p *pkgFile) []byte {
			return mutateJSON(t, p.bundle, func(m map[string]any) {
				var hs []any
				for i := range verify.MaxProofHashes + 1 {
					hs = append(hs, fmt.Sprintf("%064x", i))
				}
				proofOf(t, m)["hashes"] = hs
			})
		}), status: verify.StatusBundleInvalid, err: bundleErr},
		{name: "bundle/huge-hash-list-over-64KiB", prepare: replaceBundle(func(t *testing.T, e *env, p *pkgFile) []byte {
			return mutateJSON(t, p.bundle, func(m map[string]any) {
				hs := make([]any, 100_000)
				for i := range hs {
					hs[i] = strings.Repeat("ab", 32)
				}
				proofOf(t, m)["hashes"] = hs
			})
		}), status: verify.StatusBundleInvalid, err: tooLarge},
		{name: "bundle/negative-log-index", prepare: replaceBundle(func(t *testing.T, e *env, p *pkgFile) []byte {
			return mutateJSON(t, p.bundle, func(m map[string]any) { proofOf(t, m)["logIndex"] = -1 })
		}), status: verify.StatusBundleInvalid, err: bundleErr},
		{name: "bundle/index-beyond-tree-size", prepare: replaceBundle(func(t *testing.T, e *env, p *pkgFile) []byte {
			return mutateJSON(t, p.bundle, func(m map[string]any) { proofOf(t, m)["logIndex"] = json.Number("9223372036854775807") })
		}), status: verify.StatusBundleInvalid, err: bundleErr},
		{name: "bundle/int64-overflowing-tree-size", prepare: replaceBundle(func(t *testing.T, e *env, p *pkgFile) []byte {
			return mutateJSON(t, p.bundle, func(m map[string]any) { proofOf(t, m)["treeSize"] = json.Number("18446744073709551617") })
		}), status: verify.StatusBundleInvalid, err: bundleErr},
		{name: "bundle/garbage", prepare: replaceBundle(func(t *testing.T, e *env, p *pkgFile) []byte { return []byte("\x00\x01{not json") }),
			status: verify.StatusBundleInvalid, err: bundleErr},
		{name: "bundle/missing-offline", prepare: replaceBundle(func(t *testing.T, e *env, p *pkgFile) []byte { return nil }),
			status: verify.StatusMissingBundle, err: missErr},

		// --- offline: the stored checkpoint and the batch's bundles -------
		// An attacker holding the log key (and the transparency key) shows
		// this client a fork of exactly the size it stored: offline must
		// catch it from the state directory alone.
		{name: "offline/fork-at-the-stored-size", prepare: func(t *testing.T, e *env) (runOpts, int) {
			e.forkedPackage(t, e.log.Size(), "evil", "6.6-1")
			return runOpts{offline: true}, len(e.pkgs) - 1
		}, status: verify.StatusLogInconsistent, err: secErr, runErr: secErr, check: offlineHeads("stored signed tree head", "the stored checkpoint")},
		// The honest log grew past the stored checkpoint; one bundle of the
		// batch proves an honest entry at the new size, another an entry of
		// a fork of that size: the two tree heads contradict each other.
		{name: "offline/fork-within-the-batch", prepare: func(t *testing.T, e *env) (runOpts, int) {
			e.add(t, "honest", "2.0-1", []byte("an honest update\n"))
			e.forkedPackage(t, e.log.Size(), "evil", "6.6-1")
			return runOpts{offline: true}, len(e.pkgs) - 1
		}, status: verify.StatusLogInconsistent, err: secErr, runErr: secErr, check: offlineHeads("proof bundle of", "two proof bundles")},

		// --- the log (online) ----------------------------------------------
		{name: "log/rollback-to-older-checkpoint", prepare: func(t *testing.T, e *env) (runOpts, int) {
			e.log.RollbackTo(e.log.Size() - 1)
			return runOpts{}, 0
		}, status: verify.StatusLogInconsistent, err: secErr, runErr: secErr, check: bothHeads},
		{name: "log/forked-tree", prepare: func(t *testing.T, e *env) (runOpts, int) {
			e.log.Fork(e.log.Size() - 1)
			return runOpts{}, 0
		}, status: verify.StatusLogInconsistent, err: secErr, runErr: secErr, check: bothHeads},
		// The entry of the attacked (last) package lies beyond the tree the
		// log now shows: it must share the run's verdict, not be called
		// "not in log".
		{name: "log/rollback-below-a-bundled-entry", prepare: func(t *testing.T, e *env) (runOpts, int) {
			e.log.RollbackTo(e.log.Size() - 1)
			return runOpts{}, len(e.pkgs) - 1
		}, status: verify.StatusLogInconsistent, err: secErr, runErr: secErr, check: reasonHas("ROLLBACK")},
		{name: "log/fork-below-a-bundled-entry", prepare: func(t *testing.T, e *env) (runOpts, int) {
			e.log.Fork(e.log.Size() - 1)
			return runOpts{}, len(e.pkgs) - 1
		}, status: verify.StatusLogInconsistent, err: secErr, runErr: secErr, check: reasonHas("not consistent")},
		// A consistent log that does not serve an entry its own signed tree
		// contains, or serves it with another proof: the bundle's inclusion
		// proof plus the consistency proof prove the entry in the current
		// tree, and online verification asks the log for neither (issue 17,
		// online at its floor; these were SECURITY ERRORs found by
		// re-fetching every bundled entry). Accepted, with nothing asked of
		// the entry endpoints; such a log is the monitor's to find.
		{name: "log/consistent-tree-without-the-bundled-entry", prepare: func(t *testing.T, e *env) (runOpts, int) {
			return runOpts{log: hideEntries{e.rekorClient(t, nil)}}, 1
		}, status: verify.StatusOK, check: noEntryAsked},
		{name: "log/consistent-tree-serving-another-proof", prepare: lyingLog(fakelog.LieProofForOtherLeaf, fakelog.EndpointRetrieve, fakelog.EndpointEntry),
			status: verify.StatusOK, check: noEntryAsked},
		{name: "log/bad-consistency-proof-after-growth", prepare: func(t *testing.T, e *env) (runOpts, int) {
			e.add(t, "pkg03", "1.3-1", []byte("package 3 payload\n"))
			e.log.SetLie(fakelog.LieBadConsistencyProof)
			return runOpts{}, 0
		}, status: verify.StatusLogInconsistent, err: secErr, runErr: secErr, check: bothHeads},
		// The attacked package has no bundle: the log shows its entry only
		// with another key, so it is not in the log. The bundled ones are
		// not asked for (they were a SECURITY ERROR when the engine re-fetched
		// them, before issue 17): the run itself completes.
		{name: "log/entry-with-another-key", prepare: withoutBundle(lyingLog(fakelog.LieOtherKey, fakelog.EndpointEntry, fakelog.EndpointRetrieve, fakelog.EndpointSearch)),
			status: verify.StatusNotInLog, err: notInLog},
		{name: "log/checkpoint-signed-by-another-key", prepare: lyingLog(fakelog.LieOtherSigner, fakelog.EndpointLogInfo),
			status: verify.StatusUnavailable, err: unavail, runErr: unavail},
		{name: "log/html-502", prepare: lyingLog(fakelog.LieHTML502), status: verify.StatusUnavailable, err: unavail, runErr: unavail},
		{name: "log/200-empty-body", prepare: lyingLog(fakelog.LieEmptyBody), status: verify.StatusUnavailable, err: unavail, runErr: unavail},
		{name: "log/200-garbage", prepare: lyingLog(fakelog.LieGarbageJSON), status: verify.StatusUnavailable, err: unavail, runErr: unavail},
		{name: "log/truncated-json", prepare: lyingLog(fakelog.LieTruncatedJSON), status: verify.StatusUnavailable, err: unavail, runErr: unavail},
		{name: "log/100MB-response", prepare: lyingLog(fakelog.LieOversizedJSON), status: verify.StatusUnavailable, err: unavail, runErr: unavail,
			check: func(t *testing.T, _ *env, r verify.Result) {
				if _, ok := asType(r.Err, (*httpclient.TooLargeError)(nil)); !ok {
					t.Errorf("not stopped by the size limit: %v", r.Err)
				}
			}},
		{name: "log/hangs", prepare: lyingLog(fakelog.LieHang), status: verify.StatusUnavailable, err: unavail, runErr: unavail},
		{name: "log/slowloris", prepare: func(t *testing.T, e *env) (runOpts, int) {
			return runOpts{log: slowloris(t, e)}, 0
		}, status: verify.StatusUnavailable, err: unavail, runErr: unavail},
		{name: "log/connection-refused", prepare: func(t *testing.T, e *env) (runOpts, int) {
			c, err := rekorv1.New("http://127.0.0.1:1", e.hc, rekorv1.WithRetries(0))
			if err != nil {
				t.Fatal(err)
			}
			return runOpts{log: c}, 0
		}, status: verify.StatusUnavailable, err: unavail, runErr: unavail},
		{name: "proxy/down", prepare: func(t *testing.T, e *env) (runOpts, int) {
			hc, err := httpclient.New(httpclient.Options{Timeout: 5 * time.Second, Proxy: "socks5h://127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			return runOpts{log: e.rekorClient(t, hc)}, 0
		}, status: verify.StatusUnavailable, err: unavail, runErr: unavail},

		// --- rebuilders (required confirmations: 1) ------------------------
		{name: "rebuilder/says-bad", prepare: rebuilders(rebuildertest.NoFault, func(p *rebuildertest.Package) { p.Status = "BAD" }, false),
			status: verify.StatusRebuildUnconfirmed, err: rebErr},
		{name: "rebuilder/good-for-another-version", prepare: rebuilders(rebuildertest.NoFault, func(p *rebuildertest.Package) {
			p.Version = "9.9-1"
			p.Filename = ""
		}, false), status: verify.StatusRebuildUnconfirmed, err: rebErr},
		{name: "rebuilder/attestation-by-unpinned-key", prepare: rebuilders(rebuildertest.NoFault, nil, true),
			status: verify.StatusRebuildUnconfirmed, err: rebErr},
		{name: "rebuilder/hangs", prepare: rebuilders(rebuildertest.FaultHang, nil, false), status: verify.StatusRebuildUnconfirmed, err: rebErr,
			check: unreachable},
		{name: "rebuilder/huge-answer", prepare: rebuilders(rebuildertest.FaultHuge, nil, false), status: verify.StatusRebuildUnconfirmed, err: rebErr,
			check: unreachable},
		{name: "rebuilder/html-page", prepare: rebuilders(rebuildertest.FaultHTML, nil, false), status: verify.StatusRebuildUnconfirmed, err: rebErr,
			check: unreachable},
	}
}

func unreachable(t *testing.T, _ *env, r verify.Result) {
	if r.Rebuild == nil || len(r.Rebuild.Unreachable) != 1 || len(r.Rebuild.Confirmed) != 0 {
		t.Errorf("rebuilder verdict %+v, want one unreachable rebuilder", r.Rebuild)
	}
}

// bothHeads: a SECURITY ERROR carries both signed tree heads.
// offlineHeads: an offline SECURITY ERROR with two distinct tree heads,
// one of them labelled label, whose reason names what.
func offlineHeads(label, what string) func(*testing.T, *env, verify.Result) {
	return func(t *testing.T, e *env, r verify.Result) {
		bothHeads(t, e, r)
		v, _ := asType(r.Err, secErr)
		se := v.(*verify.SecurityError)
		if !strings.Contains(se.OldLabel+se.NewLabel, label) || !strings.Contains(se.Reason, what) || !strings.Contains(se.Reason, "same tree size") {
			t.Errorf("offline security error: reason %q, labels %q / %q; want %q and a label %q", se.Reason, se.OldLabel, se.NewLabel, what, label)
		}
		if !strings.Contains(se.Error(), label) {
			t.Errorf("the message does not say where a tree head comes from:\n%s", se.Error())
		}
	}
}

// forkedPackage publishes a package signed with the transparency key whose
// bundle proves it in a fork of the log of the given size (the real log's
// first size-1 entries, then this package's), served by the fake log with
// valid signatures and proofs; the log is honest again afterwards.
func (e *env) forkedPackage(t *testing.T, size int64, name, version string) *pkgFile {
	t.Helper()
	filename := name + "-" + version + "-x86_64.pkg.tar.zst"
	content := []byte("unlogged " + name + " payload\n")
	p := &pkgFile{name: name, version: version, filename: filename, content: content, sha256: sum(content)}
	tf, err := verify.SignPackage(e.key.sk, p.sha256, filename)
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.ParseSignature(tf)
	if err != nil {
		t.Fatal(err)
	}
	e.log.Fork(size-1, rekorv1.CanonicalBody(s, e.key.pk, []byte(p.sha256)))
	m, err := e.rekorClient(t, nil).EntriesByIndex(context.Background(), []int64{size - 1})
	e.log.SetLie(fakelog.Honest)
	if err != nil || m[size-1] == nil {
		t.Fatalf("forked entry: %v", err)
	}
	p.t, p.entry, p.bundle = tf, m[size-1], bundleOf(t, m[size-1])
	if got := p.entry.Proof.TreeSize; got != size {
		t.Fatalf("forked entry proven at size %d, want %d", got, size)
	}
	e.write(t, filename, content)
	e.writeSig(t, filename+verify.SignatureSuffix, p.t)
	e.writeSig(t, filename+verify.BundleSuffix, p.bundle)
	e.pkgs = append(e.pkgs, p)
	return p
}

func bothHeads(t *testing.T, _ *env, r verify.Result) {
	v, _ := asType(r.Err, secErr)
	se := v.(*verify.SecurityError)
	if len(se.Old) == 0 || len(se.New) == 0 || bytes.Equal(se.Old, se.New) {
		t.Errorf("security error without two distinct tree heads:\nold %q\nnew %q", se.Old, se.New)
	}
}

// reasonHas: a SECURITY ERROR with both tree heads whose reason says want.
func reasonHas(want string) func(*testing.T, *env, verify.Result) {
	return func(t *testing.T, e *env, r verify.Result) {
		bothHeads(t, e, r)
		v, _ := asType(r.Err, secErr)
		if se := v.(*verify.SecurityError); !strings.Contains(se.Reason, want) {
			t.Errorf("reason %q, want %q", se.Reason, want)
		}
		if _, ok := asType(r.Err, notInLog); ok {
			t.Errorf("judged alone as not in the log: %v", r.Err)
		}
	}
}

// noEntryAsked: the package was verified without asking the log for any
// entry (its bundle was).
func noEntryAsked(t *testing.T, e *env, r verify.Result) {
	if n := e.log.Requests(fakelog.EndpointEntry) + e.log.Requests(fakelog.EndpointRetrieve); n != e.entryRequests {
		t.Errorf("%d entry requests during the run", n-e.entryRequests)
	}
}

// hideEntries is a log that serves no entry at all (what a log hiding
// entries from one client does).
type hideEntries struct{ rekorv1.API }

func (hideEntries) EntryByUUID(_ context.Context, uuid string) (*rekorv1.Entry, error) {
	return nil, fmt.Errorf("entry %s: %w", uuid, verify.ErrNotFound)
}

// slowloris is a log that answers every request with headers and then one
// byte every 100 ms, forever.
func slowloris(t *testing.T, e *env) rekorv1.API {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		w.Write([]byte("{"))
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	c, err := rekorv1.New(srv.URL, e.hc, rekorv1.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEngineAdversarial(t *testing.T) {
	for _, tc := range engineCases() {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 3)
			before, err := os.ReadFile(e.stateCP)
			if err != nil {
				t.Fatal(err)
			}
			o, target := tc.prepare(t, e)
			e.entryRequests = e.log.Requests(fakelog.EndpointEntry) + e.log.Requests(fakelog.EndpointRetrieve)
			res, runErr := e.run(t, o)

			if tc.runErr == nil && runErr != nil {
				t.Errorf("VerifyAll: unexpected error %v", runErr)
			}
			if tc.runErr != nil {
				if _, ok := asType(runErr, tc.runErr); !ok {
					t.Errorf("VerifyAll error %v (%T), want %s", runErr, runErr, typeName(tc.runErr))
				}
			}
			if len(res) != len(o.artsOr(e)) {
				t.Fatalf("%d results for %d packages", len(res), len(o.artsOr(e)))
			}
			r := res[target]
			if r.Status != tc.status {
				t.Errorf("status %q, want %q (err %v)", r.Status, tc.status, r.Err)
			}
			if tc.status == verify.StatusOK {
				if !r.OK() || r.Err != nil {
					t.Errorf("not accepted: %v", r.Err)
				}
				if tc.check != nil {
					tc.check(t, e, r)
				}
			} else {
				if r.OK() {
					t.Errorf("accepted")
				}
				if _, ok := asType(r.Err, tc.err); !ok {
					t.Errorf("error %v (%T), want %s in its chain", r.Err, r.Err, typeName(tc.err))
				} else if tc.check != nil {
					tc.check(t, e, r)
				}
				if verify.StatusOf(r.Err) != r.Status {
					t.Errorf("StatusOf(err) = %q, result says %q", verify.StatusOf(r.Err), r.Status)
				}
				t.Logf("%s: %v", r.Status, r.Err)
			}
			// Nothing cached: the persisted checkpoint is untouched.
			after, err := os.ReadFile(e.stateCP)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("the persisted checkpoint changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func (o runOpts) artsOr(e *env) []verify.Artifact {
	if o.arts != nil {
		return o.arts
	}
	return e.artifacts()
}
