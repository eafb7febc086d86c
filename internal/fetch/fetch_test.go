package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
)

func TestClassify(t *testing.T) {
	cases := map[string]Kind{
		"foo-1.0-1-x86_64.pkg.tar.zst":     KindPackage,
		"foo-1.0-1-x86_64.pkg.tar.xz":      KindPackage,
		"foo-1.0-1-any.pkg.tar":            KindPackage,
		"foo-1:2.0-1-any.pkg.tar.gz":       KindPackage,
		"foo-1.0-1-any.pkg.tar.lz4":        KindPackage, // unknown compression: still verified
		"foo-1.0-1-any.pkg.tar.zst.part":   KindPackage, // fails closed
		"foo-1.0-1-x86_64.pkg.tar.zst.sig": KindSignature,
		"core.db":                          KindDatabase,
		"core.files":                       KindDatabase,
		"core.db.tar.gz":                   KindDatabase,
		"core.files.tar.zst":               KindDatabase,
		"core.db.sig":                      KindSignature,
		"core.files.sig":                   KindSignature,
		"mirrorlist":                       KindPackage, // unknown: verified
		"evil":                             KindPackage,
	}
	for name, want := range cases {
		if got := Classify(name); got != want {
			t.Errorf("Classify(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestMaxSize(t *testing.T) {
	for _, c := range []struct {
		k    Kind
		user int64
		want int64
	}{
		{KindPackage, 0, DefaultMaxSize},
		{KindPackage, 100, 100},
		{KindDatabase, 0, MaxDatabaseSize},
		{KindDatabase, 100, 100},
		{KindSignature, 0, MaxSignatureSize},
		{KindPackage, 5 << 30, 5 << 30},
	} {
		if got := MaxSize(c.k, c.user); got != c.want {
			t.Errorf("MaxSize(%v, %d) = %d, want %d", c.k, c.user, got, c.want)
		}
	}
}

func TestFilename(t *testing.T) {
	good := map[string]string{
		"http://m.example/core/os/x86_64/foo-1.0-1-x86_64.pkg.tar.zst": "foo-1.0-1-x86_64.pkg.tar.zst",
		"https://m.example/a/core.db?x=1":                              "core.db",
		"file:///srv/repo/foo%2Bbar-1-1-any.pkg.tar.zst":               "foo+bar-1-1-any.pkg.tar.zst",
		"file://localhost/srv/repo/core.db":                            "core.db",
	}
	for u, want := range good {
		got, err := Filename(u)
		if err != nil || got != want {
			t.Errorf("Filename(%q) = %q, %v; want %q", u, got, err, want)
		}
	}
	for _, u := range []string{"ftp://m.example/core.db", "http:///core.db", "https://m.example/", "file://otherhost/x.db", "foo-1-1-any.pkg.tar.zst", "http://m.example"} {
		if got, err := Filename(u); err == nil {
			t.Errorf("Filename(%q) = %q, want an error", u, got)
		}
	}
}

// origin is a file server that records the Range header of each request
// and can be told to ignore Range or to misreport Content-Range.
type origin struct {
	*httptest.Server
	mu        sync.Mutex
	ranges    []string
	content   []byte
	mode      string // "", "ignore-range", "bad-range", "416-wrong-total"
	chunked   bool
	stallFrom int // bytes after which the body hangs (0: never)
}

func newOrigin(t *testing.T, content []byte) *origin {
	o := &origin{content: content}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.ranges = append(o.ranges, r.Header.Get("Range"))
	mode, content, stallFrom := o.mode, o.content, o.stallFrom
	o.mu.Unlock()
	if r.URL.Path == "/missing.sig" {
		http.NotFound(w, r)
		return
	}
	rng := r.Header.Get("Range")
	switch {
	case mode == "416-wrong-total" && rng != "":
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(content)+7))
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	case mode == "bad-range" && rng != "":
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(content)-1, len(content)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(content)
		return
	case mode == "ignore-range" || rng == "":
		if !o.chunked {
			w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		}
		w.WriteHeader(http.StatusOK)
		if stallFrom > 0 {
			w.Write(content[:stallFrom])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		w.Write(content)
		return
	}
	http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
}

func (o *origin) Ranges() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ranges...)
}

func client(t *testing.T) *http.Client {
	c, err := httpclient.New(httpclient.Options{Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func requireFile(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, want %d (content differs: %v)", p, len(got), len(want), len(got) == len(want))
	}
}

const pkgName = "/foo-1.0-1-any.pkg.tar.zst"

func TestDownloadFresh(t *testing.T) {
	content := payload(100_000)
	o := newOrigin(t, content)
	dst := filepath.Join(t.TempDir(), "foo.part")
	res, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(content)) || res.Resumed != 0 || res.Status != 200 {
		t.Errorf("result %+v", res)
	}
	requireFile(t, dst, content)
	if r := o.Ranges(); len(r) != 1 || r[0] != "" {
		t.Errorf("Range headers %q, want one request without Range", r)
	}
}

func TestDownloadResumesWithRange(t *testing.T) {
	content := payload(100_000)
	o := newOrigin(t, content)
	dst := filepath.Join(t.TempDir(), "foo.part")
	if err := os.WriteFile(dst, content[:40_000], 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 40_000 || res.Size != 100_000 || res.Status != http.StatusPartialContent {
		t.Errorf("result %+v", res)
	}
	requireFile(t, dst, content)
	if r := o.Ranges(); len(r) != 1 || r[0] != "bytes=40000-" {
		t.Errorf("Range headers %q, want [bytes=40000-]", r)
	}
}

func TestDownloadWithoutResumeStartsOver(t *testing.T) {
	content := payload(5000)
	o := newOrigin(t, content)
	dst := filepath.Join(t.TempDir(), "core.db.part")
	if err := os.WriteFile(dst, []byte("stale database from an older mirror state, longer than nothing"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Download(context.Background(), client(t), o.URL+"/core.db", dst, Options{}); err != nil {
		t.Fatal(err)
	}
	requireFile(t, dst, content)
	if r := o.Ranges(); len(r) != 1 || r[0] != "" {
		t.Errorf("Range headers %q, want none", r)
	}
}

func TestDownloadServerIgnoresRange(t *testing.T) {
	content := payload(30_000)
	o := newOrigin(t, content)
	o.mode = "ignore-range"
	dst := filepath.Join(t.TempDir(), "foo.part")
	// A partial file whose prefix differs: a 200 must replace it, not be
	// appended to it.
	if err := os.WriteFile(dst, bytes.Repeat([]byte{'x'}, 10_000), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 0 || res.Status != 200 {
		t.Errorf("result %+v", res)
	}
	requireFile(t, dst, content)
	if r := o.Ranges(); len(r) != 1 || r[0] != "bytes=10000-" {
		t.Errorf("Range headers %q", r)
	}
}

func TestDownload416Complete(t *testing.T) {
	content := payload(20_000)
	o := newOrigin(t, content)
	dst := filepath.Join(t.TempDir(), "foo.part")
	if err := os.WriteFile(dst, content, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusRequestedRangeNotSatisfiable || res.Size != 20_000 || res.Resumed != 20_000 {
		t.Errorf("result %+v", res)
	}
	requireFile(t, dst, content)
}

func TestDownload416OtherSizeRestarts(t *testing.T) {
	content := payload(20_000)
	o := newOrigin(t, content)
	o.mode = "416-wrong-total"
	dst := filepath.Join(t.TempDir(), "foo.part")
	if err := os.WriteFile(dst, payload(25_000), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 0 || res.Status != 200 {
		t.Errorf("result %+v", res)
	}
	requireFile(t, dst, content)
	if r := o.Ranges(); len(r) != 2 || r[0] != "bytes=25000-" || r[1] != "" {
		t.Errorf("Range headers %q, want a Range request then a whole one", r)
	}
}

func TestDownloadWrongContentRange(t *testing.T) {
	content := payload(20_000)
	o := newOrigin(t, content)
	o.mode = "bad-range"
	dst := filepath.Join(t.TempDir(), "foo.part")
	if err := os.WriteFile(dst, content[:5000], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{Resume: true})
	var re *RangeError
	if !errors.As(err, &re) || re.Offset != 5000 || !strings.HasPrefix(re.ContentRange, "bytes 0-") {
		t.Fatalf("err = %v, want *RangeError at 5000", err)
	}
	requireFile(t, dst, content[:5000]) // untouched
}

func TestDownloadNotFound(t *testing.T) {
	o := newOrigin(t, nil)
	dst := filepath.Join(t.TempDir(), "missing.sig.part")
	_, err := Download(context.Background(), client(t), o.URL+"/missing.sig", dst, Options{})
	var se *httpclient.StatusError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("err = %v, want a 404 wrapping fs.ErrNotExist", err)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a 404 created %s", dst)
	}
}

func TestDownloadTooLarge(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprint("chunked=", chunked), func(t *testing.T) {
			o := newOrigin(t, payload(10_000))
			o.chunked = chunked
			dst := filepath.Join(t.TempDir(), "foo.part")
			res, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{MaxSize: 4096})
			var tl *httpclient.TooLargeError
			if !errors.As(err, &tl) || tl.Limit != 4096 {
				t.Fatalf("err = %v, want *httpclient.TooLargeError", err)
			}
			if res.Size > 4096 {
				t.Errorf("wrote %d bytes past the limit", res.Size)
			}
			if st, err := os.Stat(dst); err == nil && st.Size() > 4096 {
				t.Errorf("file holds %d bytes past the limit", st.Size())
			}
		})
	}
}

func TestDownloadStall(t *testing.T) {
	o := newOrigin(t, payload(10_000))
	o.stallFrom = 1000
	o.chunked = true
	dst := filepath.Join(t.TempDir(), "foo.part")
	res, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{StallTimeout: 200 * time.Millisecond})
	var se *StallError
	if !errors.As(err, &se) || se.After != 1000 {
		t.Fatalf("err = %v (%+v), want *StallError after 1000 bytes", err, res)
	}
	// The partial file stays for a resume.
	requireFile(t, dst, payload(10_000)[:1000])
}

func TestDownloadRefusesSymlinkDestination(t *testing.T) {
	o := newOrigin(t, payload(100))
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "foo.part")
	if err := os.Symlink(victim, dst); err != nil {
		t.Fatal(err)
	}
	_, err := Download(context.Background(), client(t), o.URL+pkgName, dst, Options{Resume: true})
	var pe *PathError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PathError", err)
	}
	if err := Discard(dst); !errors.As(err, &pe) {
		t.Fatalf("Discard(symlink) = %v, want *PathError", err)
	}
	requireFile(t, victim, []byte("keep me"))
}

func TestDownloadFileURL(t *testing.T) {
	content := payload(50_000)
	dir := t.TempDir()
	src := filepath.Join(dir, "foo-1.0-1-any.pkg.tar.zst")
	if err := os.WriteFile(src, content, 0o644); err != nil {
		t.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: src}).String()
	dst := filepath.Join(dir, "out.part")

	// Resume from a partial file.
	if err := os.WriteFile(dst, content[:12_345], 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Download(context.Background(), nil, u, dst, Options{Resume: true})
	if err != nil || res.Resumed != 12_345 || res.Size != 50_000 {
		t.Fatalf("resume: %+v, %v", res, err)
	}
	requireFile(t, dst, content)

	// Complete already.
	res, err = Download(context.Background(), nil, u, dst, Options{Resume: true})
	if err != nil || res.Resumed != 50_000 {
		t.Fatalf("complete: %+v, %v", res, err)
	}

	// A partial file longer than the source starts over.
	if err := os.WriteFile(dst, payload(60_000), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = Download(context.Background(), nil, u, dst, Options{Resume: true})
	if err != nil || res.Resumed != 0 {
		t.Fatalf("restart: %+v, %v", res, err)
	}
	requireFile(t, dst, content)

	_, err = Download(context.Background(), nil, "file://"+filepath.Join(dir, "nope.db.sig"), dst, Options{})
	var nf *NotFoundError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &nf) {
		t.Fatalf("missing file: %v", err)
	}
	_, err = Download(context.Background(), nil, u, dst, Options{MaxSize: 100})
	var tl *httpclient.TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("too large: %v", err)
	}
}

func TestDiscard(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.part")
	if err := Discard(p); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Discard(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("still there: %v", err)
	}
	var pe *PathError
	if err := Discard(dir); !errors.As(err, &pe) {
		t.Errorf("Discard(dir) = %v, want *PathError", err)
	}
}

func TestParseContentRange(t *testing.T) {
	good := map[string][3]int64{
		"bytes 0-9/10":             {0, 9, 10},
		"bytes 100-199/*":          {100, 199, -1},
		" bytes 5-5/6 ":            {5, 5, 6},
		"bytes 40000-99999/100000": {40000, 99999, 100000},
	}
	for s, want := range good {
		a, b, c, ok := parseContentRange(s)
		if !ok || [3]int64{a, b, c} != want {
			t.Errorf("parseContentRange(%q) = %d %d %d %v", s, a, b, c, ok)
		}
	}
	for _, s := range []string{"", "bytes */10", "bytes 9-0/10", "bytes 0-9/9", "bytes -1-9/10", "items 0-9/10", "bytes 0-9", "bytes 0-9/x", "bytes 0-99999999999999999999/1"} {
		if _, _, _, ok := parseContentRange(s); ok {
			t.Errorf("parseContentRange(%q) accepted", s)
		}
	}
}
