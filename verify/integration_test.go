package verify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/enginetest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
	"github.com/jedisct1/go-minisign"
)

// These tests run the engine against the real local Rekor v1.5.4 stack
// (scripts/rekor-stack, BINTRANS_TEST_REKOR_URL/KEY): real uploads, real
// proofs and checkpoints, verified offline and online.

type (
	dirSource = enginetest.Source
	store     = enginetest.Store
)

func newMinisignKey(t *testing.T) (*minisign.PrivateKey, verify.PublicKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], priv)
	rand.Read(sk.KeyId[:])
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), sk.KeyId[:]...), pub...)))
	if err != nil {
		t.Fatal(err)
	}
	return sk, pk
}

type realPkg struct {
	name, sha string
	t         []byte
	entry     *rekorv1.Entry
}

func TestRealRekorEngine(t *testing.T) {
	url, keyPath := testenv.Rekor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log, err := rekorv1.New(url, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := rekorv1.ParseLogKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	sk, pk := newMinisignKey(t)
	src := enginetest.NewSource()
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	var pkgs []*realPkg
	for i := 0; i < 12; i++ {
		p := &realPkg{name: fmt.Sprintf("real%02d-%s-1-any.pkg.tar.zst", i, run)}
		sum := sha256.Sum256([]byte(p.name))
		p.sha = hex.EncodeToString(sum[:])
		if p.t, err = verify.SignPackage(sk, p.sha, p.name); err != nil {
			t.Fatal(err)
		}
		if p.entry, err = log.Upload(ctx, p.t, pk.File(), []byte(p.sha)); err != nil {
			t.Fatal(err)
		}
		src.Sigs[p.name] = p.t
		if i < 8 { // the last four are "seed-signed": no bundle
			b, err := rekorv1.MarshalBundle(p.entry)
			if err != nil {
				t.Fatal(err)
			}
			src.Bundles[p.name] = b
		}
		pkgs = append(pkgs, p)
	}
	arts := make([]verify.Artifact, len(pkgs))
	for i, p := range pkgs {
		arts[i] = verify.Artifact{Filename: p.name, SHA256: p.sha}
	}
	policy := func(offline bool) verify.Policy {
		return verify.Policy{Keys: []verify.PublicKey{pk}, Log: lk, Offline: offline}
	}

	t.Run("bundles verify offline with VerifyEntry", func(t *testing.T) {
		for _, p := range pkgs[:8] {
			b, _ := rekorv1.ParseBundle(src.Bundles[p.name])
			cp, err := rekorv1.VerifyEntry(b, p.t, []verify.PublicKey{pk}, p.sha, p.name, lk)
			if err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			if cp.Size != b.Proof.TreeSize {
				t.Fatal("checkpoint size")
			}
			// The canonical body we rebuild is Rekor's, byte for byte.
			s, _ := verify.ParseSignature(p.t)
			if got := rekorv1.CanonicalBody(s, pk, []byte(p.sha)); string(got) != string(p.entry.Body) {
				t.Fatalf("canonical body differs from Rekor's:\n%s\n%s", got, p.entry.Body)
			}
		}
	})

	t.Run("offline batch", func(t *testing.T) {
		v, _ := verify.NewVerifier(policy(true), src, nil, nil, nil)
		res, err := v.VerifyAll(ctx, arts)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			want := verify.StatusOK
			if i >= 8 {
				want = verify.StatusMissingBundle
			}
			if r.Status != want {
				t.Errorf("%s: %s (%v), want %s", r.Artifact.Filename, r.Status, r.Err, want)
			}
		}
	})

	st := &store{}
	t.Run("online batch, then consistency from the stored checkpoint", func(t *testing.T) {
		v, _ := verify.NewVerifier(policy(false), src, rekorv1.NewOnline(log, lk), st, nil)
		for round := 0; round < 2; round++ {
			res, err := v.VerifyAll(ctx, arts)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !r.OK() {
					t.Errorf("round %d: %s: %s (%v)", round, r.Artifact.Filename, r.Status, r.Err)
				}
			}
			if len(st.CP) == 0 {
				t.Fatal("no checkpoint stored")
			}
			// Grow the log between rounds.
			p := fmt.Sprintf("%064x", time.Now().UnixNano())
			tt, _ := verify.SignPackage(sk, p, "grow.pkg.tar.zst")
			if _, err := log.Upload(ctx, tt, pk.File(), []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("tampered bundle", func(t *testing.T) {
		b, _ := rekorv1.ParseBundle(src.Bundles[pkgs[0].name])
		b.Proof.TreeSize++ // rekor's own VerifyLogEntry misses this (hole 1)
		_, err := rekorv1.VerifyEntry(b, pkgs[0].t, []verify.PublicKey{pk}, pkgs[0].sha, pkgs[0].name, lk)
		var ee *rekorv1.EntryError
		if !errors.As(err, &ee) {
			t.Fatalf("tampered tree size: %v", err)
		}
	})

	t.Run("wrong log key", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(lkCurve(t, lk), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		wrong, _ := rekorv1.ParseLogKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		p := policy(true)
		p.Log = wrong
		v, _ := verify.NewVerifier(p, src, nil, nil, nil)
		res, _ := v.VerifyAll(ctx, arts[:8])
		for _, r := range res {
			if r.Status != verify.StatusBundleInvalid {
				t.Errorf("%s: %s", r.Artifact.Filename, r.Status)
			}
		}
	})

	// Forge tree heads with the stack's own signing key (a test fixture
	// next to the public key): a fork and a rollback must be SECURITY ERRORs.
	signerPEM, err := os.ReadFile(filepath.Join(filepath.Dir(keyPath), "rekor-signer.pem"))
	if err != nil {
		t.Logf("no stack signing key next to %s: fork/rollback against the real log not tested here (%v)", keyPath, err)
		return
	}
	signer := parseSigner(t, signerPEM)
	cur, err := log.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := lk.VerifyCheckpoint(cur)
	if err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int64{"fork": c.Size, "rollback": c.Size + 1000} {
		t.Run(name, func(t *testing.T) {
			root := make([]byte, 32)
			rand.Read(root)
			forged := signNote(t, signer, fmt.Sprintf("%s\n%d\n%s\n", c.Origin, size, base64.StdEncoding.EncodeToString(root)))
			if _, err := lk.VerifyCheckpoint(forged); err != nil {
				t.Fatalf("forged note does not verify: %v\n%s", err, forged)
			}
			st := &store{CP: forged}
			v, _ := verify.NewVerifier(policy(false), src, rekorv1.NewOnline(log, lk), st, nil)
			res, err := v.VerifyAll(ctx, arts)
			var se *verify.SecurityError
			if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "SECURITY ERROR") {
				t.Fatalf("err %v", err)
			}
			if name == "rollback" && !strings.Contains(se.Reason, "ROLLBACK") {
				t.Fatalf("reason %q", se.Reason)
			}
			for _, r := range res {
				if r.Status != verify.StatusLogInconsistent {
					t.Errorf("%s: %s", r.Artifact.Filename, r.Status)
				}
			}
			if string(st.CP) != string(forged) {
				t.Fatal("stored checkpoint replaced after a security error")
			}
		})
	}
}

func lkCurve(t *testing.T, lk *rekorv1.LogKey) elliptic.Curve {
	blk, _ := pem.Decode(lk.PEM())
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		return k.Curve
	}
	return elliptic.P256()
}

func parseSigner(t *testing.T, b []byte) *ecdsa.PrivateKey {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			t.Skip("stack signing key is not a plain PEM ECDSA key")
		}
		if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
			return k
		}
		if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
			if ek, ok := k.(*ecdsa.PrivateKey); ok {
				return ek
			}
		}
	}
}

func signNote(t *testing.T, k *ecdsa.PrivateKey, body string) []byte {
	d := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	h := sha256.Sum256(der)
	return []byte(body + "\n\u2014 rekor.local " + base64.StdEncoding.EncodeToString(append(h[:4:4], sig...)) + "\n")
}

// BenchmarkRealRekorOnline500: a 500-package batch with bundles, online
// against the local Rekor (the current checkpoint, one consistency proof).
// Setup uploads 500 entries (8 in parallel); only VerifyAll is timed.
func BenchmarkRealRekorOnline500(b *testing.B) {
	url, keyPath := testenv.Rekor(b)
	ctx := context.Background()
	log, err := rekorv1.New(url, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	pemBytes, _ := os.ReadFile(keyPath)
	lk, err := rekorv1.ParseLogKey(pemBytes)
	if err != nil {
		b.Fatal(err)
	}
	sk, pk := newMinisignKey(&testing.T{})
	src := enginetest.NewSource()
	arts := make([]verify.Artifact, 500)
	run := time.Now().UnixNano()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(arts))
	for i := range arts {
		name := fmt.Sprintf("bench%03d-%d-1-any.pkg.tar.zst", i, run)
		sum := sha256.Sum256([]byte(name))
		arts[i] = verify.Artifact{Filename: name, SHA256: hex.EncodeToString(sum[:])}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			tt, err := verify.SignPackage(sk, arts[i].SHA256, name)
			if err == nil {
				var e *rekorv1.Entry
				if e, err = log.Upload(ctx, tt, pk.File(), []byte(arts[i].SHA256)); err == nil {
					var bb []byte
					if bb, err = rekorv1.MarshalBundle(e); err == nil {
						src.Set(name, tt, bb)
					}
				}
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	for _, offline := range []bool{true, false} {
		b.Run(fmt.Sprintf("offline=%v", offline), func(b *testing.B) {
			v, _ := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{pk}, Log: lk, Offline: offline}, src, rekorv1.NewOnline(log, lk), &store{}, nil)
			for b.Loop() {
				res, err := v.VerifyAll(ctx, arts)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if !r.OK() {
						b.Fatal(r.Err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(len(arts)), "µs/pkg")
		})
	}
}
