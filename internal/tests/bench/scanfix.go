package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/jedisct1/go-minisign"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// The scan fixtures (1 500 / 15 000 / 150 000 packages) are too large to
// log in the local Rekor in a benchmark's time (150 000 uploads ≈ 40 min),
// so they are logged in an in-memory log that writes exactly what Rekor
// answers: canonical rekord body, RFC 6962 inclusion proof
// (transparency-dev/merkle), a checkpoint signed note and a SET, both ECDSA
// P-256 (as internal/fakelog, which the engine's tests check against
// Rekor's own verifier). Scan cost does not depend on who computed the
// proofs.
//
// The repository is signed the way `bintrans sign` publishes it: in runs of
// scanSignRun packages, each run's bundles settled on the tree at the end
// of that run (one checkpoint per run), so a 15 000-package db carries 15
// distinct checkpoints, as if it had grown over 15 sign runs.

const scanFixtureVersion = "v2"

// scanSignRun is the number of packages per simulated sign run.
const scanSignRun = 1000

// scanFixture is a generated sync db of n packages shaped like Arch's
// extra (repodbtest) with a .t and a bundle for each, cached in dir.
type scanFixture struct {
	Dir, DB, Sigs, Pub, LogKey string
	N                          int
}

func loadOrMakeScanFixture(root string, n int) (*scanFixture, error) {
	dir := filepath.Join(root, fmt.Sprintf("scan-%s-%d", scanFixtureVersion, n))
	fx := &scanFixture{Dir: dir, DB: filepath.Join(dir, "extra.db"), Sigs: filepath.Join(dir, "sigs"),
		Pub: filepath.Join(dir, "transparency.pub"), LogKey: filepath.Join(dir, "rekor.pem"), N: n}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return fx, nil
	}
	start := time.Now()
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "sigs"), 0o755); err != nil {
		return nil, err
	}
	l, err := newScanLog()
	if err != nil {
		return nil, err
	}
	pkgs := repodbtest.Packages(n, repodbtest.Options{Seed: 15000})
	// Sign in parallel; append to the tree in order; render the proofs in
	// parallel (the tree is read-only by then).
	ts, bodies, err := l.sign(pkgs)
	if err != nil {
		return nil, err
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	roots := make([][]byte, n)
	for i := range bodies {
		tree.AppendData(bodies[i])
		roots[i] = tree.Hash()
	}
	checkpoints, err := l.checkpoints(roots)
	if err != nil {
		return nil, err
	}
	if err := l.writeSignatures(filepath.Join(tmp, "sigs"), pkgs, ts, bodies, tree, roots, checkpoints); err != nil {
		return nil, err
	}
	if err := l.writeFixtureFiles(tmp, pkgs); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	logf("generated the %d-package scan fixture in %v", n, time.Since(start).Round(time.Millisecond))
	return fx, nil
}

// scanLog is the in-memory log of the scan fixture: a fixed transparency
// key and a fresh log key.
type scanLog struct {
	sk     *minisign.PrivateKey
	pk     verify.PublicKey
	lk     *ecdsa.PrivateKey
	der    []byte // the log key, PKIX
	logID  [32]byte
	treeID int64
	origin string
}

func newScanLog() (*scanLog, error) {
	// A fixed minisign key (the fixture is deterministic but for ECDSA nonces).
	seed := sha256.Sum256([]byte("bintrans bench scan key"))
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], ed25519.NewKeyFromSeed(seed[:]))
	copy(sk.KeyId[:], seed[:8])
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		return nil, err
	}
	lk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&lk.PublicKey)
	if err != nil {
		return nil, err
	}
	treeID := int64(0x62656e6368)
	return &scanLog{sk: sk, pk: pk, lk: lk, der: der, logID: sha256.Sum256(der), treeID: treeID,
		origin: fmt.Sprintf("rekor.local - %d", treeID)}, nil
}

// sign makes each package's .t and its canonical rekord body, in
// parallel.
func (l *scanLog) sign(pkgs []repodb.Package) (ts, bodies [][]byte, err error) {
	ts = make([][]byte, len(pkgs))
	bodies = make([][]byte, len(pkgs))
	err = parallel(len(pkgs), func(i int) error {
		t, err := verify.SignPackage(l.sk, pkgs[i].SHA256Sum, pkgs[i].Filename)
		if err != nil {
			return err
		}
		s, err := verify.ParseSignature(t)
		if err != nil {
			return err
		}
		ts[i], bodies[i] = t, rekorv1.CanonicalBody(s, l.pk, []byte(pkgs[i].SHA256Sum))
		return nil
	})
	return ts, bodies, err
}

// runEnd is the tree size at the end of the sign run of entry i (of n).
func runEnd(i, n int) int { return min((i/scanSignRun+1)*scanSignRun, n) }

// checkpoints signs one checkpoint per sign run: the tree at the run's
// last entry (roots[i] is the root of the tree of size i+1).
func (l *scanLog) checkpoints(roots [][]byte) ([]string, error) {
	n := len(roots)
	checkpoints := make([]string, (n+scanSignRun-1)/scanSignRun)
	for r := range checkpoints {
		size := runEnd(r*scanSignRun, n)
		text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(roots[size-1]))
		d := sha256.Sum256([]byte(text))
		cpSig, err := ecdsa.SignASN1(rand.Reader, l.lk, d[:])
		if err != nil {
			return nil, err
		}
		checkpoints[r] = text + "\n— rekor.local " + base64.StdEncoding.EncodeToString(append(l.logID[:4:4], cpSig...)) + "\n"
	}
	return checkpoints, nil
}

// writeSignatures writes each package's .t and bundle into dir, in
// parallel: the entry with its SET and its inclusion proof at the end of
// its sign run, with that run's checkpoint.
func (l *scanLog) writeSignatures(dir string, pkgs []repodb.Package, ts, bodies [][]byte, tree *testonly.Tree, roots [][]byte, checkpoints []string) error {
	n := len(pkgs)
	logID := hex.EncodeToString(l.logID[:])
	integrated := time.Now().Unix()
	return parallel(n, func(i int) error {
		size := int64(runEnd(i, n))
		proof, err := tree.InclusionProof(uint64(i), uint64(size))
		if err != nil {
			return err
		}
		cp := checkpoints[i/scanSignRun]
		payload, err := json.Marshal(struct {
			Body           string `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogID          string `json:"logID"`
			LogIndex       int64  `json:"logIndex"`
		}{base64.StdEncoding.EncodeToString(bodies[i]), integrated, logID, int64(i)})
		if err != nil {
			return err
		}
		ds := sha256.Sum256(payload)
		set, err := ecdsa.SignASN1(rand.Reader, l.lk, ds[:])
		if err != nil {
			return err
		}
		e := &rekorv1.Entry{
			UUID:     fmt.Sprintf("%016x%x", l.treeID, rfc6962.DefaultHasher.HashLeaf(bodies[i])),
			LogIndex: int64(i), LogID: logID, IntegratedTime: integrated, Body: bodies[i],
			Proof: &rekorv1.InclusionProof{LogIndex: int64(i), RootHash: roots[size-1],
				TreeSize: size, Hashes: proof, Checkpoint: []byte(cp)},
			SET: set,
		}
		bundle, err := rekorv1.MarshalBundle(e)
		if err != nil {
			return err
		}
		base := filepath.Join(dir, pkgs[i].Filename)
		if err := os.WriteFile(base+verify.SignatureSuffix, ts[i], 0o644); err != nil {
			return err
		}
		return os.WriteFile(base+verify.BundleSuffix, bundle, 0o644)
	})
}

// writeFixtureFiles writes the sync db, the two public keys and, last,
// the "complete" marker into dir.
func (l *scanLog) writeFixtureFiles(dir string, pkgs []repodb.Package) error {
	f, err := os.Create(filepath.Join(dir, "extra.db"))
	if err != nil {
		return err
	}
	if err := repodbtest.Write(f, pkgs, repodbtest.Options{}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "transparency.pub"), l.pk.File(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "rekor.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: l.der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644)
}

// parallel runs fn(0..n-1) on every core and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}
