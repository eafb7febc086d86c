package main

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
)

// pkgFile is one generated package file.
type pkgFile struct {
	Name     string `json:"name"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	MD5      string `json:"md5"`
}

// batch is a set of package files in one directory (a pacman CacheDir),
// described by index.json, written last so a half-generated batch is redone.
type batch struct {
	Repo  string    `json:"repo"`
	Dir   string    `json:"-"`
	Files []pkgFile `json:"files"`
	Bytes int64     `json:"bytes"`
}

func (b *batch) paths() []string {
	p := make([]string, len(b.Files))
	for i, f := range b.Files {
		p[i] = filepath.Join(b.Dir, f.Filename)
	}
	return p
}

func (b *batch) names(n int) string {
	var sb strings.Builder
	for _, f := range b.Files[:n] {
		sb.WriteString(f.Name)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// sizeMix draws package sizes shaped like an Arch upgrade: most packages
// small, some of a few MiB, a few large (firmware, toolchains). Mean ≈ 1.3 MiB.
func sizeMix(r *rand.Rand) int64 {
	switch x := r.IntN(100); {
	case x < 60:
		return 16<<10 + r.Int64N(496<<10)
	case x < 88:
		return 512<<10 + r.Int64N(1536<<10)
	case x < 98:
		return 2<<20 + r.Int64N(4<<20)
	default:
		return 6<<20 + r.Int64N(24<<20)
	}
}

// smallMix: 2–30 KiB (the 5 000-package growth point).
func smallMix(r *rand.Rand) int64 { return 2<<10 + r.Int64N(28<<10) }

// loadOrMakeBatch returns the batch in dir, generating n random package
// files (incompressible: ChaCha8 output) whose sizes come from mix, scaled
// up so that they total at least minTotal bytes.
func loadOrMakeBatch(dir, repo, prefix string, n int, mix func(*rand.Rand) int64, minTotal int64) (*batch, error) {
	idx := filepath.Join(dir, "index.json")
	if b, err := readBatch(idx); err == nil && len(b.Files) == n && b.Repo == repo {
		b.Dir = dir
		return b, nil
	}
	start := time.Now()
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(uint64(n), 0x62656e6368))
	sizes := make([]int64, n)
	var total int64
	for i := range sizes {
		sizes[i] = mix(r)
		total += sizes[i]
	}
	if total < minTotal {
		f := float64(minTotal)/float64(total) + 0.001
		total = 0
		for i := range sizes {
			sizes[i] = int64(float64(sizes[i]) * f)
			total += sizes[i]
		}
	}
	var seed [32]byte
	copy(seed[:], prefix)
	src := rand.NewChaCha8(seed)
	b := &batch{Repo: repo, Dir: dir, Bytes: total}
	buf := make([]byte, 1<<20)
	for i, size := range sizes {
		name := fmt.Sprintf("%s%05d", prefix, i)
		fn := name + "-1.0-1-x86_64.pkg.tar.zst"
		f, err := os.Create(filepath.Join(dir, fn))
		if err != nil {
			return nil, err
		}
		hs, hm := sha256.New(), md5.New()
		w := io.MultiWriter(f, hs, hm)
		for left := size; left > 0; {
			k := min(left, int64(len(buf)))
			src.Read(buf[:k])
			if _, err := w.Write(buf[:k]); err != nil {
				f.Close()
				return nil, err
			}
			left -= k
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		b.Files = append(b.Files, pkgFile{Name: name, Filename: fn, Size: size,
			SHA256: hex.EncodeToString(hs.Sum(nil)), MD5: hex.EncodeToString(hm.Sum(nil))})
	}
	if err := writeJSON(idx, b); err != nil {
		return nil, err
	}
	logf("generated %d %s packages (%.0f MB) in %v", n, repo, float64(total)/1e6, time.Since(start).Round(time.Millisecond))
	return b, nil
}

// loadOrMakeBig is one package of size bytes: 1 MiB of random data, then
// a hole (a sparse file: it costs no disk, but every byte is read and hashed).
func loadOrMakeBig(dir string, size int64) (*batch, error) {
	idx := filepath.Join(dir, "index.json")
	if b, err := readBatch(idx); err == nil && len(b.Files) == 1 && b.Bytes == size {
		b.Dir = dir
		return b, nil
	}
	start := time.Now()
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := "bigpkg"
	fn := name + "-1.0-1-x86_64.pkg.tar.zst"
	path := filepath.Join(dir, fn)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{'b', 'i', 'g'}).Read(head)
	if _, err := f.Write(head); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	// Hash it the way any reader sees it.
	f, err = os.Open(path)
	if err != nil {
		return nil, err
	}
	hs, hm := sha256.New(), md5.New()
	_, err = io.Copy(io.MultiWriter(hs, hm), f)
	f.Close()
	if err != nil {
		return nil, err
	}
	b := &batch{Repo: "big", Dir: dir, Bytes: size, Files: []pkgFile{{Name: name, Filename: fn, Size: size,
		SHA256: hex.EncodeToString(hs.Sum(nil)), MD5: hex.EncodeToString(hm.Sum(nil))}}}
	if err := writeJSON(idx, b); err != nil {
		return nil, err
	}
	logf("generated a %d MiB sparse package in %v", size>>20, time.Since(start).Round(time.Millisecond))
	return b, nil
}

func readBatch(path string) (*batch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b batch
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return writeFile(path, data)
}

// writeFile replaces path (creating its directory) atomically.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return durable.WriteFile(path, data, 0o644)
}

// dbPackages is the sync db content of a batch (what repo-add writes for
// these files: real sizes and checksums).
func dbPackages(b *batch) []repodb.Package {
	pkgs := make([]repodb.Package, len(b.Files))
	for i, f := range b.Files {
		pkgs[i] = repodb.Package{Filename: f.Filename, Name: f.Name, Base: f.Name, Version: "1.0-1",
			Desc: "bintrans benchmark package", CSize: f.Size, ISize: f.Size * 3, MD5Sum: f.MD5,
			SHA256Sum: f.SHA256, Arch: "x86_64", BuildDate: 1700000000, Packager: "bench <bench@bintrans.invalid>",
			License: []string{"MIT"}, URL: "https://bintrans.invalid/"}
	}
	return pkgs
}

// fillerPackages are db entries without files (random sha256s): they only
// make the monitor's key own more log entries.
func fillerPackages(n int, seed uint64) []repodb.Package {
	pkgs := repodbtest.Packages(n, repodbtest.Options{Seed: seed, NoPGPSig: true})
	r := rand.New(rand.NewPCG(seed, 0x66696c6c))
	for i := range pkgs {
		var h [32]byte
		for j := range h {
			h[j] = byte(r.Uint32())
		}
		pkgs[i].SHA256Sum = hex.EncodeToString(h[:])
	}
	return pkgs
}

func writeDB(path string, pkgs []repodb.Package) error {
	var buf bytes.Buffer
	if err := repodbtest.Write(&buf, pkgs, repodbtest.Options{NoPGPSig: true}); err != nil {
		return err
	}
	return writeFile(path, buf.Bytes())
}
