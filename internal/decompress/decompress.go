// Package decompress is the one place bintrans recognises and decodes the
// compressions of pacman's files (sync databases, packages): gzip, zstd,
// xz and bzip2, by their magic bytes, with decoders whose memory is
// bounded by the caller's Limits before they allocate it (a zstd window,
// an xz dictionary announced by a hostile stream is refused, not
// allocated).
//
// The decompressed size is bounded too when the caller sets
// Limits.MaxOutput. What it does not do: decide what an unrecognised
// stream is (plain tar, or an error: Unsupported names the compressions
// pacman's libarchive reads and bintrans refuses), or check what follows a
// compressed stream (the caller peeks at its reader afterwards).
package decompress

import (
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// The formats, as Sniff names them.
const (
	Gzip  = "gzip"
	Zstd  = "zstd"
	XZ    = "xz"
	Bzip2 = "bzip2"
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXZ    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magicBzip2 = []byte("BZh")
)

// Sniff names the compression a stream starting with head uses, or ""
// when it is none of these four. It needs at most 6 bytes.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return Gzip
	case bytes.HasPrefix(head, magicZstd):
		return Zstd
	case bytes.HasPrefix(head, magicXZ):
		return XZ
	case bytes.HasPrefix(head, magicBzip2) && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		return Bzip2
	}
	return ""
}

// unsupported lists compressions makepkg can write (PKGEXT, and so
// libarchive reads) that bintrans does not decode.
var unsupported = []struct {
	name  string
	magic []byte
}{
	{"lz4", []byte{0x04, 0x22, 0x4d, 0x18}},
	{"lzip", []byte("LZIP")},
	{"lzop", []byte{0x89, 'L', 'Z', 'O'}},
	{"lrzip", []byte("LRZI")},
	{"compress", []byte{0x1f, 0x9d}},
}

// Unsupported names the compression a stream starting with head uses when
// it is one pacman (libarchive) reads but bintrans does not decode: lz4,
// lzip, lzop, lrzip or compress; "" otherwise. The caller refuses such a
// stream instead of reading it as something else.
func Unsupported(head []byte) string {
	for _, u := range unsupported {
		if bytes.HasPrefix(head, u.magic) {
			return u.name
		}
	}
	return ""
}

// Limits bound what a decoder may allocate and produce.
type Limits struct {
	// MaxZstdWindow bounds a zstd frame's window (and the decoder's
	// memory); a larger one is a *LimitError "zstd window".
	MaxZstdWindow uint64
	// MaxXZDict bounds an xz block's LZMA2 dictionary; a larger one is a
	// *LimitError "xz dictionary" before the decoder allocates it.
	MaxXZDict int64
	// SingleGzipMember stops a gzip stream after its first member (what
	// repo-add writes), leaving what follows unread for the caller to
	// refuse; otherwise concatenated members are read as one stream (what
	// gzip(1) and libarchive do).
	SingleGzipMember bool
	// MaxOutput bounds the decompressed bytes: reading past it is a
	// *LimitError "decompressed size" (Got is MaxOutput+1), never a silent
	// truncation. 0 leaves the count to the caller.
	MaxOutput int64
}

// LimitError is a stream whose decoder would need more memory than
// Limits allow. Got is the size announced, -1 when the decoder does not
// say.
type LimitError struct {
	What     string // "zstd window", "xz dictionary", "decompressed size"
	Max, Got int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("limit exceeded: %s is %d, got %d", e.What, e.Max, e.Got)
}

// CorruptError is a compressed stream that does not decode.
type CorruptError struct {
	Format string
	Reason string
}

func (e *CorruptError) Error() string { return e.Format + ": " + e.Reason }

// Reader is the decompressed view of one stream.
type Reader struct {
	r     io.Reader
	close func()
	xz    *xzGuard
	lim   Limits
	n     int64 // decompressed bytes returned so far
}

// NewReader returns the decoder of format (one of Sniff's names) reading
// r, bounded by lim. The stream's header is read and checked now: a
// damaged one is a *CorruptError, one beyond lim a *LimitError. Close it
// after use.
func NewReader(r io.Reader, format string, lim Limits) (*Reader, error) {
	switch format {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, &CorruptError{Format: Gzip, Reason: err.Error()}
		}
		zr.Multistream(!lim.SingleGzipMember)
		return &Reader{r: zr, lim: lim}, nil
	case Zstd:
		zr, err := getZstd(r, lim.MaxZstdWindow)
		if err != nil {
			return nil, &CorruptError{Format: Zstd, Reason: err.Error()}
		}
		return &Reader{r: zr, close: func() { putZstd(zr, lim.MaxZstdWindow) }, lim: lim}, nil
	case XZ:
		g := &xzGuard{r: r, maxDict: lim.MaxXZDict}
		zr, err := xz.NewReader(g)
		if err != nil {
			if g.err != nil {
				return nil, g.err
			}
			return nil, &CorruptError{Format: XZ, Reason: err.Error()}
		}
		return &Reader{r: zr, xz: g, lim: lim}, nil
	case Bzip2:
		return &Reader{r: bzip2.NewReader(r), lim: lim}, nil
	}
	return nil, fmt.Errorf("decompress: unknown format %q (gzip, zstd, xz or bzip2)", format)
}

// Read reads decompressed bytes. Errors of the decoder are reported as
// *LimitError (a zstd window beyond the limit, an xz dictionary, more
// than MaxOutput bytes) or as the decoder's; errors of the underlying
// reader as they are.
func (r *Reader) Read(p []byte) (int, error) {
	if max := r.lim.MaxOutput; max > 0 {
		if r.n >= max {
			// Past the bound only if the stream has more to give.
			var one [1]byte
			for range 100 {
				k, err := r.read(one[:])
				if k > 0 {
					return 0, &LimitError{What: "decompressed size", Max: max, Got: max + 1}
				}
				if err != nil {
					return 0, err
				}
			}
			return 0, io.ErrNoProgress
		}
		if int64(len(p)) > max-r.n {
			p = p[:max-r.n]
		}
	}
	n, err := r.read(p)
	r.n += int64(n)
	return n, err
}

func (r *Reader) read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	if r.xz != nil && r.xz.err != nil {
		return n, r.xz.err // the guard's typed error, not the decoder's rewording
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return n, &LimitError{What: "zstd window", Max: int64(r.lim.MaxZstdWindow), Got: -1}
	}
	return n, err
}

// Close releases the decoder (a zstd decoder returns to a pool).
func (r *Reader) Close() {
	if r.close != nil {
		r.close()
		r.close = nil
	}
}

// zstdPools keep decoders (and their window buffers) between streams, per
// window limit: creating one costs more than decoding a small database.
var zstdPools sync.Map // uint64 → *sync.Pool

func zstdPool(window uint64) *sync.Pool {
	p, _ := zstdPools.LoadOrStore(window, &sync.Pool{})
	return p.(*sync.Pool)
}

func getZstd(r io.Reader, window uint64) (*zstd.Decoder, error) {
	if d, ok := zstdPool(window).Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err == nil {
			return d, nil
		}
		d.Close()
	}
	return zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1), // synchronous: no goroutines
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(window),
		zstd.WithDecoderMaxMemory(window))
}

func putZstd(d *zstd.Decoder, window uint64) {
	if d.Reset(nil) == nil { // drops the reference to the stream
		zstdPool(window).Put(d)
	}
}
