package adversarial

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/fetch"
	"github.com/bintrans/bintrans/internal/httpclient"
)

// TestCacheAdversarial: pacman's XferCommand download (fetch.Download) into
// the package cache under hostile conditions. The file pacman would rename
// is never complete, and nothing outside the cache is written.
func TestCacheAdversarial(t *testing.T) {
	payload := bytes.Repeat([]byte("P"), 1<<20)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stall/pkg-1-1-any.pkg.tar.zst":
			w.WriteHeader(200)
			w.Write(payload[:10])
			w.(http.Flusher).Flush()
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(200) // no Content-Length: the limit must hold while streaming
			w.(http.Flusher).Flush()
			w.Write(payload)
		}
	}))
	t.Cleanup(srv.Close)
	hc, err := httpclient.New(httpclient.Options{Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.URL + "/repo/pkg-1-1-any.pkg.tar.zst"

	cases := []struct {
		name  string
		url   string
		setup func(t *testing.T, dst string) (undo func())
		opts  fetch.Options
		typed any
		errno syscall.Errno
		// maxLeft bounds what may remain at dst (-1: dst must be untouched).
		maxLeft int64
	}{
		{name: "cache/disk-full-during-download", url: url, errno: syscall.EFBIG, maxLeft: 64 << 10,
			setup: func(t *testing.T, dst string) func() {
				var old syscall.Rlimit
				if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
					t.Fatal(err)
				}
				lim := old
				lim.Cur = 64 << 10
				drainTestLog()
				if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
					t.Skipf("setrlimit: %v", err)
				}
				return func() { syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old) }
			}},
		{name: "cache/larger-than-allowed", url: url, opts: fetch.Options{MaxSize: 4 << 10},
			typed: (*httpclient.TooLargeError)(nil), maxLeft: 4 << 10},
		{name: "cache/mirror-stalls", url: srv.URL + "/stall/pkg-1-1-any.pkg.tar.zst", opts: fetch.Options{StallTimeout: 500 * time.Millisecond},
			typed: (*fetch.StallError)(nil), maxLeft: 10},
		{name: "cache/symlink-planted-at-destination", url: url, typed: (*fetch.PathError)(nil), maxLeft: -1,
			setup: func(t *testing.T, dst string) func() {
				victim := filepath.Join(t.TempDir(), "victim")
				if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(victim, dst); err != nil {
					t.Fatal(err)
				}
				return func() {
					if b, _ := os.ReadFile(victim); string(b) != "precious" {
						t.Errorf("the symlink's target was written: %q", b)
					}
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "pkg-1-1-any.pkg.tar.zst.part")
			undo := func() {}
			if tc.setup != nil {
				undo = tc.setup(t, dst)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_, err := fetch.Download(ctx, hc, tc.url, dst, tc.opts)
			cancel()
			undo()
			if err == nil {
				t.Fatal("download succeeded")
			}
			t.Logf("%v", err)
			if tc.errno != 0 && !errors.Is(err, tc.errno) {
				t.Errorf("error %v, want errno %v", err, tc.errno)
			}
			if tc.typed != nil {
				if _, ok := asType(err, tc.typed); !ok {
					t.Errorf("error %v (%T), want %s", err, err, typeName(tc.typed))
				}
			}
			if tc.maxLeft >= 0 {
				if st, err := os.Lstat(dst); err == nil && st.Size() > tc.maxLeft {
					t.Errorf("%d bytes left at %s, at most %d expected", st.Size(), dst, tc.maxLeft)
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "pkg-1-1-any.pkg.tar.zst")); err == nil {
				t.Error("a complete package file appeared in the cache")
			}
		})
	}
}
