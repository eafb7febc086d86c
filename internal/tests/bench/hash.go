package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// hashFiles is the true floor of the hook: it only hashes the files, on
// every core (one worker per CPU, 1 MiB read buffer each), and prints
// "<sha256>  <path>" lines like sha256sum. `bintrans-bench hash FILE…`.
func hashFiles(paths []string) int {
	sums := make([]string, len(paths))
	errs := make([]error, len(paths))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(paths) {
					return
				}
				sums[i], errs[i] = hashFile(paths[i], buf)
			}
		}()
	}
	wg.Wait()
	code := 0
	for i, p := range paths {
		if errs[i] != nil {
			fmt.Fprintln(os.Stderr, "hash:", errs[i])
			code = 1
			continue
		}
		fmt.Printf("%s  %s\n", sums[i], p)
	}
	return code
}

func hashFile(path string, buf []byte) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, onlyReader{f}, buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// onlyReader hides *os.File's WriteTo so that CopyBuffer uses buf.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
