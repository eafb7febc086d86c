package decompress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os/exec"
	"testing"

	"github.com/bintrans/bintrans/internal/testkit/testenv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

var lim = Limits{MaxZstdWindow: 32 << 20, MaxXZDict: 64 << 20}

func gz(t testing.TB, members ...[]byte) []byte {
	var out bytes.Buffer
	for _, m := range members {
		zw := gzip.NewWriter(&out)
		zw.Write(m)
		zw.Close()
	}
	return out.Bytes()
}

func zst(t testing.TB, b []byte, opts ...zstd.EOption) []byte {
	zw, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

func xzOf(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw, err := xz.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// xzWithDict rewrites the LZMA2 dictionary code of an xz stream's first
// block header (code 40: 4 GiB), with a valid header CRC.
func xzWithDict(t testing.TB, b []byte, code byte) []byte {
	s := xzOf(t, b)
	hsize := (int(s[12]) + 1) * 4
	h := s[12 : 12+hsize]
	i := bytes.Index(h[2:], []byte{0x21, 0x01}) // filter id LZMA2, props size 1
	if i < 0 {
		t.Fatalf("no LZMA2 filter in % x", h)
	}
	h[2+i+2] = code
	binary.LittleEndian.PutUint32(h[hsize-4:], crc32.ChecksumIEEE(h[:hsize-4]))
	return s
}

// tool compresses b with a real compressor, reading a pipe (the size is
// unknown to it, as in repo-add).
func tool(t *testing.T, name string, b []byte, args ...string) []byte {
	cmd := exec.Command(testenv.Tool(t, name), args...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out
}

func decode(t testing.TB, b []byte, l Limits) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(b), Sniff(b), l)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestSniffAndDecode(t *testing.T) {
	data := bytes.Repeat([]byte("pacman sync database "), 1000)
	for format, b := range map[string][]byte{
		Gzip:  gz(t, data),
		Zstd:  zst(t, data),
		XZ:    xzOf(t, data),
		Bzip2: tool(t, "bzip2", data, "-c"),
	} {
		if got := Sniff(b); got != format {
			t.Errorf("Sniff(%s) = %q", format, got)
		}
		got, err := decode(t, b, lim)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, %v", format, len(got), err)
		}
	}
	for _, head := range [][]byte{nil, []byte("ustar"), []byte("BZh"), []byte("BZhx"), {0x28, 0xb5, 0x2f}, []byte("LZIP"), {0x1f, 0x9d}} {
		if f := Sniff(head); f != "" {
			t.Errorf("Sniff(% x) = %q", head, f)
		}
	}
	for _, f := range []string{"", "lz4", "tar", "GZIP"} {
		if _, err := NewReader(bytes.NewReader(gz(t, data)), f, lim); err == nil {
			t.Errorf("NewReader of format %q", f)
		}
	}
}

// The compressions makepkg can write and bintrans does not decode are
// named, by the magic of a real compressor where one is installed.
func TestUnsupported(t *testing.T) {
	for name, head := range map[string][]byte{
		"lz4":      {0x04, 0x22, 0x4d, 0x18, 0x64},
		"lzip":     []byte("LZIP\x01"),
		"lzop":     {0x89, 'L', 'Z', 'O', 0},
		"lrzip":    []byte("LRZI\x00"),
		"compress": {0x1f, 0x9d, 0x90},
	} {
		if got := Unsupported(head); got != name {
			t.Errorf("Unsupported(% x) = %q, want %q", head, got, name)
		}
		if got := Sniff(head); got != "" {
			t.Errorf("Sniff(%s) = %q", name, got)
		}
	}
	for _, b := range [][]byte{nil, gz(t, []byte("a")), zst(t, []byte("a")), xzOf(t, []byte("a")), []byte("BZh9"), {0x1f}, []byte("LZI")} {
		if got := Unsupported(b); got != "" {
			t.Errorf("Unsupported(% x) = %q", b, got)
		}
	}
	if _, err := exec.LookPath("lz4"); err == nil {
		if got := Unsupported(tool(t, "lz4", []byte("a"), "-c")); got != "lz4" {
			t.Errorf("Unsupported(lz4 -c) = %q", got)
		}
	}
}

// MaxOutput: exactly MaxOutput bytes decode; one more is a *LimitError,
// whatever the compression, never a silent truncation.
func TestMaxOutput(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for format, b := range map[string][]byte{
		Gzip:  gz(t, data),
		Zstd:  zst(t, data),
		XZ:    xzOf(t, data),
		Bzip2: tool(t, "bzip2", data, "-c"),
	} {
		l := lim
		l.MaxOutput = int64(len(data))
		if got, err := decode(t, b, l); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s at the bound: %d bytes, %v", format, len(got), err)
		}
		l.MaxOutput = int64(len(data)) - 1
		got, err := decode(t, b, l)
		var le *LimitError
		if !errors.As(err, &le) || le.What != "decompressed size" || le.Max != l.MaxOutput || le.Got != l.MaxOutput+1 {
			t.Errorf("%s one byte past the bound: %v", format, err)
		}
		if int64(len(got)) != l.MaxOutput {
			t.Errorf("%s: %d bytes returned before the error, want %d", format, len(got), l.MaxOutput)
		}
	}
	// A bomb: 64 MiB of zeros in a few KiB of zstd stops at the bound.
	bomb := zst(t, make([]byte, 64<<20))
	l := lim
	l.MaxOutput = 1 << 20
	if n, err := io.Copy(io.Discard, must(t, bomb, l)); n != 1<<20 || err == nil {
		t.Errorf("zstd bomb: %d bytes, %v", n, err)
	}
}

func must(t *testing.T, b []byte, l Limits) io.Reader {
	r, err := NewReader(bytes.NewReader(b), Sniff(b), l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// The bounds hold before the decoder allocates: a zstd window or an xz
// dictionary beyond them is a *LimitError.
func TestLimits(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	var le *LimitError
	big := tool(t, "zstd", data, "-c", "-z", "-q", "--long=26", "-") // a 64 MiB window
	if _, err := decode(t, big, lim); !errors.As(err, &le) || le.What != "zstd window" || le.Max != 32<<20 {
		t.Errorf("zstd window of 64 MiB: %v", err)
	}
	if got, err := decode(t, big, Limits{MaxZstdWindow: 64 << 20, MaxXZDict: lim.MaxXZDict}); err != nil || len(got) != len(data) {
		t.Errorf("zstd window of 64 MiB within a 64 MiB limit: %d %v", len(got), err)
	}
	for _, code := range []byte{40, 37} { // 4 GiB, 1.5 GiB
		if _, err := decode(t, xzWithDict(t, data, code), lim); !errors.As(err, &le) || le.What != "xz dictionary" || le.Max != 64<<20 || le.Got <= 64<<20 {
			t.Errorf("xz dictionary code %d: %v", code, err)
		}
	}
}

// Concatenated gzip members: one stream, or (SingleGzipMember) the first
// member only, the rest left in the reader.
func TestGzipMembers(t *testing.T) {
	b := gz(t, []byte("one"), []byte("two"))
	if got, err := decode(t, b, lim); err != nil || string(got) != "onetwo" {
		t.Errorf("multistream: %q %v", got, err)
	}
	single := lim
	single.SingleGzipMember = true
	if got, err := decode(t, b, single); err != nil || string(got) != "one" {
		t.Errorf("single member: %q %v", got, err)
	}
}

func TestCorrupt(t *testing.T) {
	var ce *CorruptError
	for format, b := range map[string][]byte{
		Gzip: {0x1f, 0x8b, 0xff},
		Zstd: {0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff},
		XZ:   append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	} {
		r, err := NewReader(bytes.NewReader(b), format, lim)
		if err == nil {
			_, err = io.ReadAll(r)
			r.Close()
		}
		if err == nil {
			t.Errorf("%s: a damaged stream decoded", format)
		}
		if format != Zstd && !errors.As(err, &ce) { // zstd reads its frame header lazily
			t.Errorf("%s: %v, want a *CorruptError", format, err)
		}
	}
	// A truncated stream is an error, never a short success.
	for _, b := range [][]byte{gz(t, []byte("hello world")), zst(t, []byte("hello world")), xzOf(t, []byte("hello world"))} {
		if got, err := decode(t, b[:len(b)-4], lim); err == nil {
			t.Errorf("%s truncated: %q, no error", Sniff(b), got)
		}
	}
}

// FuzzDecode: any input either decodes or fails with an error; the
// bounds hold (no allocation of an announced window or dictionary, never
// more than MaxOutput bytes), and a stream that is none of the four
// formats is refused, never decoded as one.
func FuzzDecode(f *testing.F) {
	f.Add(gz(f, []byte("a")))
	f.Add(zst(f, []byte("a")))
	f.Add(xzOf(f, []byte("a")))
	f.Add(xzWithDict(f, []byte("a"), 40))
	f.Add([]byte("BZh91AY&SY"))
	f.Add(zst(f, make([]byte, 1<<16)))
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7})
	const maxOut = 4096
	f.Fuzz(func(t *testing.T, b []byte) {
		format := Sniff(b)
		if u := Unsupported(b); u != "" && format != "" {
			t.Fatalf("both %s and unsupported %s", format, u)
		}
		small := Limits{MaxZstdWindow: 1 << 20, MaxXZDict: 1 << 20, MaxOutput: maxOut}
		if format == "" {
			// A stream without a format's magic is not decoded as it (zstd
			// aside: its decoder also reads skippable frames, which Sniff
			// does not recognise, so such a stream is never given to it).
			for _, other := range []string{Gzip, XZ, Bzip2} {
				if r, err := NewReader(bytes.NewReader(b), other, small); err == nil {
					n, err := io.Copy(io.Discard, r)
					r.Close()
					if err == nil && n > 0 {
						t.Fatalf("%d bytes without magic decoded as %s", n, other)
					}
				}
			}
		}
		if format == "" {
			return
		}
		r, err := NewReader(bytes.NewReader(b), format, small)
		if err != nil {
			return
		}
		defer r.Close()
		n, err := io.Copy(io.Discard, r)
		if n > maxOut {
			t.Fatalf("%s: %d bytes decoded past MaxOutput %d", format, n, maxOut)
		}
		var le *LimitError
		if n == maxOut && errors.As(err, &le) && le.What != "decompressed size" && le.What != "zstd window" && le.What != "xz dictionary" {
			t.Fatalf("unexpected limit %q", le.What)
		}
	})
}
