package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// benchRepo is a transaction for BenchmarkHook: package files in a cache,
// a sync db, and `.t` files and bundles logged in the real Rekor.
type benchRepo struct {
	dir, conf, pacmanConf string
	names                 []string
	files                 []string
	bytes                 int64
}

var (
	benchOnce sync.Once
	bench     *benchRepo
	benchErr  error
)

// benchSizes spreads package sizes like a real transaction: many small
// packages, a few large ones; the mean is about 1.1 MiB.
func benchSize(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 60:
		return 64<<10 + r.IntN(512<<10)
	case x < 95:
		return 1<<20 + r.IntN(2<<20)
	default:
		return 4<<20 + r.IntN(4<<20)
	}
}

// newBenchRepo builds n packages (BINTRANS_BENCH_PACKAGES, default 500)
// totalling at least 500 MB, signs them and logs them in the local Rekor
// (8 uploads in flight).
func newBenchRepo(b *testing.B) *benchRepo {
	benchOnce.Do(func() { _, benchErr = buildBenchRepo(b) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func buildBenchRepo(b *testing.B) (*benchRepo, error) {
	n := 500
	if s := os.Getenv("BINTRANS_BENCH_PACKAGES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("BINTRANS_BENCH_PACKAGES=%q", s)
		}
		n = v
	}
	logURL, logKeyPath := testenv.Rekor(b)
	dir, err := os.MkdirTemp("", "bintrans-bench-")
	if err != nil {
		return nil, err
	}
	r := &benchRepo{dir: dir}
	bench = r // removed by TestMain, also when the setup fails
	for _, d := range []string{"cache", "sigs", "db/sync", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	sk, pub := newKey(b)
	hc, err := httpclient.New(httpclient.Options{Timeout: time.Minute})
	if err != nil {
		return nil, err
	}
	log, err := rekorv1.New(logURL, hc)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'e', 'n', 'c', 'h'}))
	pkgs := make([]repodb.Package, n)
	var total int64
	for i := 0; i < n || total < 500e6; i++ {
		if i >= n {
			pkgs = append(pkgs, repodb.Package{})
		}
		content := make([]byte, benchSize(rng))
		for j := 0; j < len(content); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < len(content); k++ {
				content[j+k] = byte(v >> (8 * k))
			}
		}
		name := fmt.Sprintf("bench%04d", i)
		fn := name + "-1.0-1-x86_64.pkg.tar.zst"
		path := filepath.Join(dir, "cache", fn)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(content)
		md := md5.Sum(content)
		pkgs[i] = repodb.Package{Filename: fn, Name: name, Base: name, Version: "1.0-1", Desc: "benchmark package",
			CSize: int64(len(content)), ISize: int64(len(content)), MD5Sum: hex.EncodeToString(md[:]),
			SHA256Sum: hex.EncodeToString(sum[:]), Arch: "x86_64", BuildDate: 1700000000, Packager: "bench <b@b.invalid>"}
		r.names = append(r.names, name)
		r.files = append(r.files, path)
		total += int64(len(content))
	}
	r.bytes = total
	var db bytes.Buffer
	if err := repodbtest.Write(&db, pkgs, repodbtest.Options{NoPGPSig: true}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "db/sync/core.db"), db.Bytes(), 0o644); err != nil {
		return nil, err
	}

	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(8)
	for _, p := range pkgs {
		g.Go(func() error {
			sig, err := verify.SignPackage(sk, p.SHA256Sum, p.Filename)
			if err != nil {
				return err
			}
			e, err := log.Upload(ctx, sig, pub.File(), []byte(p.SHA256Sum))
			if err != nil {
				return fmt.Errorf("upload %s: %w", p.Filename, err)
			}
			for try := 0; e.Proof == nil; try++ {
				if try > 100 {
					return fmt.Errorf("%s: no inclusion proof", p.Filename)
				}
				time.Sleep(100 * time.Millisecond)
				if e, err = log.EntryByUUID(ctx, e.UUID); err != nil {
					return err
				}
			}
			bundle, err := rekorv1.MarshalBundle(e)
			if err != nil {
				return err
			}
			base := filepath.Join(dir, "sigs", p.Filename)
			if err := os.WriteFile(base+verify.SignatureSuffix, sig, 0o644); err != nil {
				return err
			}
			return os.WriteFile(base+verify.BundleSuffix, bundle, 0o644)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	r.pacmanConf = filepath.Join(dir, "pacman.conf")
	if err := os.WriteFile(r.pacmanConf, []byte(fmt.Sprintf("[options]\nDBPath = %s/db/\nCacheDir = %s/cache/\n[core]\nServer = file:///nowhere\n", dir, dir)), 0o644); err != nil {
		return nil, err
	}
	r.conf = filepath.Join(dir, "bintrans.conf")
	conf := fmt.Sprintf("pubkey = %s\ntransparency-url = %s/sigs\nlog-url = %s\nlog-key = %s\nstate-dir = %s/state\n", pub.Base64(), dir, logURL, logKeyPath, dir)
	if err := os.WriteFile(r.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return r, nil
}

// timeCmd runs a command and returns its wall time and CPU time (user +
// system): on a busy machine the wall time measures the neighbours, the
// CPU time still measures the work.
func timeCmd(b *testing.B, stdin io.Reader, name string, args ...string) (wall, cpu time.Duration) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// BenchmarkHook runs `bintrans hook` on a whole transaction (500 packages,
// ≥ 500 MB, page cache warm) offline and online against the local Rekor,
// and `openssl dgst -sha256` and `sha256sum` over the same files, in one
// run. The metrics are the hook's wall time relative to each.
//
//	go test ./e2e -run '^$' -bench BenchmarkHook -benchtime 3x
func BenchmarkHook(b *testing.B) {
	bin := bintransBinary(b)
	openssl := testenv.Tool(b, "openssl")
	sha256sum := testenv.Tool(b, "sha256sum")
	r := newBenchRepo(b)
	targets := strings.Join(r.names, "\n") + "\n"
	hook := func(offline bool) (time.Duration, time.Duration) {
		args := []string{"--config", r.conf, "hook", "--pacman-conf", r.pacmanConf}
		if offline {
			args = append(args, "--offline")
		}
		return timeCmd(b, strings.NewReader(targets), bin, args...)
	}
	// Warm the page cache and the state (the first online run has no
	// persisted checkpoint).
	timeCmd(b, nil, openssl, append([]string{"dgst", "-sha256"}, r.files...)...)
	hook(false)

	for _, mode := range []string{"offline", "online"} {
		b.Run(mode, func(b *testing.B) {
			var tHook, tSSL, tSum, cHook, cSSL time.Duration
			for b.Loop() {
				w, c := timeCmd(b, nil, openssl, append([]string{"dgst", "-sha256"}, r.files...)...)
				tSSL, cSSL = tSSL+w, cSSL+c
				w, _ = timeCmd(b, nil, sha256sum, r.files...)
				tSum += w
				w, c = hook(mode == "offline")
				tHook, cHook = tHook+w, cHook+c
			}
			b.SetBytes(r.bytes)
			b.ReportMetric(float64(len(r.files)), "packages")
			b.ReportMetric(tHook.Seconds()/float64(b.N), "hook-s/op")
			b.ReportMetric(tSSL.Seconds()/float64(b.N), "openssl-s/op")
			b.ReportMetric(tHook.Seconds()/tSSL.Seconds(), "x-openssl")
			b.ReportMetric(tHook.Seconds()/tSum.Seconds(), "x-sha256sum")
			b.ReportMetric(cHook.Seconds()/float64(b.N), "hook-cpu-s/op")
			b.ReportMetric(cSSL.Seconds()/float64(b.N), "openssl-cpu-s/op")
		})
	}
}
