package signer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"
	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// BenchmarkSignRekor measures sign throughput against the local Rekor stack
// (the whole pipeline: sign, intent, upload, verify, audit, publish, and
// the settle at the end) for 60 new packages per iteration with 1 upload in
// flight, 300 with 8 and 16 (as make bench). Each iteration uses a fresh
// random key, so every upload is a new entry. Besides pkgs/s it reports the
// settle phase's duration (settle-ms), the throughput without it
// (pkgs/s-unsettled) and the distinct tree heads of the run's bundles
// after it (heads).
//
//	go test -run '^$' -bench SignRekor -benchtime 3x ./publish
func BenchmarkSignRekor(b *testing.B) {
	url, keyPath := testenv.Rekor(b)
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		b.Fatal(err)
	}
	lk, err := rekorv1.ParseLogKey(pemBytes)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ jobs, n int }{{1, 60}, {8, 300}, {16, 300}} {
		jobs, n := tc.jobs, tc.n
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			c, err := rekorv1.New(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			total, settle, heads := 0.0, 0.0, 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				root := b.TempDir()
				dir := filepath.Join(root, "core", "os", "x86_64")
				os.MkdirAll(dir, 0o755)
				os.MkdirAll(filepath.Join(root, "sig"), 0o755)
				var db bytes.Buffer
				seed := make([]byte, 8)
				rand.Read(seed)
				if err := repodbtest.Generate(&db, n, repodbtest.Options{Seed: uint64(seed[0]) | uint64(seed[1])<<8 | uint64(seed[2])<<16}); err != nil {
					b.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, "core.db"), db.Bytes(), 0o644)
				sk, pub := randomKey(b)
				s, err := New(Options{Key: sk, PublicKey: pub, Log: c, LogKey: lk, LogURL: url,
					SignatureDir: filepath.Join(root, "sig"), AuditLog: filepath.Join(root, "audit.jsonl"),
					StateDir: filepath.Join(root, "state"), Jobs: jobs, Version: "bench",
					Release: ReleaseUnsafeTrustDB}) // upload throughput: no packager signatures involved
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				sum, err := s.Run(context.Background(), Sources(filepath.Join(root, "$repo", "os", "$arch"), []string{"core"}, []string{"x86_64"}))
				b.StopTimer()
				s.Close()
				if err != nil || sum.Failed != 0 || sum.Signed != n || sum.Settled != n {
					b.Fatalf("run: %v %+v", err, sum)
				}
				total += sum.Seconds
				settle += sum.SettleSeconds
				heads = max(heads, sum.BundleCheckpoints)
			}
			b.ReportMetric(float64(n*b.N)/total, "pkgs/s")
			b.ReportMetric(float64(n*b.N)/(total-settle), "pkgs/s-unsettled")
			b.ReportMetric(settle*1000/float64(b.N), "settle-ms")
			b.ReportMetric(float64(heads), "heads")
		})
	}
}

// BenchmarkRawUploadRekor is the floor for BenchmarkSignRekor, measured the
// same way in the same run: only the uploads of 200 pre-signed packages, 8
// in flight, nothing verified or written.
func BenchmarkRawUploadRekor(b *testing.B) {
	url, _ := testenv.Rekor(b)
	c, err := rekorv1.New(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 200
	total := 0.0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sk, pub := randomKey(b)
		ts := make([][]byte, n)
		msgs := make([]string, n)
		for j := range n {
			msgs[j] = fmt.Sprintf("%064x", j)
			if ts[j], err = verify.SignPackage(sk, msgs[j], fmt.Sprintf("p%d-1-1-any.pkg.tar.zst", j)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		var g errgroup.Group
		g.SetLimit(8)
		for j := range n {
			g.Go(func() error {
				_, err := c.Upload(context.Background(), ts[j], pub.File(), []byte(msgs[j]))
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start).Seconds()
		b.StopTimer()
	}
	b.ReportMetric(float64(n*b.N)/total, "pkgs/s")
}

func randomKey(b *testing.B) (*minisign.PrivateKey, verify.PublicKey) {
	b.Helper()
	_, edsk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	rand.Read(sk.KeyId[:])
	mpk := sk.PublicKey()
	pub, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		b.Fatal(err)
	}
	return sk, pub
}

// BenchmarkSignMemLog is the pipeline's own cost (sign, intent, verify,
// audit, publish; fsyncs included) with an in-memory log, per package.
func BenchmarkSignMemLog(b *testing.B) {
	const n = 200
	log := newMemLog(b)
	settle := 0.0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := b.TempDir()
		dir := filepath.Join(root, "core", "os", "x86_64")
		os.MkdirAll(dir, 0o755)
		os.MkdirAll(filepath.Join(root, "sig"), 0o755)
		var db bytes.Buffer
		if err := repodbtest.Generate(&db, n, repodbtest.Options{Seed: uint64(i)}); err != nil {
			b.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "core.db"), db.Bytes(), 0o644)
		sk, pub := randomKey(b)
		s, err := New(Options{Key: sk, PublicKey: pub, Log: log, LogKey: log.key,
			SignatureDir: filepath.Join(root, "sig"), AuditLog: filepath.Join(root, "audit.jsonl"),
			StateDir: filepath.Join(root, "state"), Jobs: 8, Version: "bench",
			Release: ReleaseUnsafeTrustDB}) // pipeline cost without packager signatures
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		sum, err := s.Run(context.Background(), Sources(filepath.Join(root, "$repo", "os", "$arch"), []string{"core"}, []string{"x86_64"}))
		b.StopTimer()
		s.Close()
		if err != nil || sum.Failed != 0 || sum.Signed != n {
			b.Fatalf("run: %v %+v", err, sum)
		}
		settle += sum.SettleSeconds
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N)/1e3, "µs/pkg")
	b.ReportMetric(settle*1e6/float64(n*b.N), "settle-µs/pkg")
}
