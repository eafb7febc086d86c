package repodb

import (
	"bufio"
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

// Bounds on the history a zstd or xz stream may make the decoder allocate.
// They are not part of Limits: they protect memory, not the content, and
// every database repo-add writes with default settings is far below them.
const (
	// maxZstdWindow: `zstd -1…-20` need at most 32 MiB (repo-add's default
	// `zstd -c -z -q -` is level 3, 2-8 MiB); --ultra -21/-22 and --long
	// are refused.
	maxZstdWindow = 32 << 20
	// maxXZDict: xz presets -0…-9 use at most 64 MiB (repo-add's default
	// `xz -c -z -` is -6, 8 MiB); a larger dictionary is refused before
	// the decoder allocates it.
	maxXZDict = 64 << 20
)

// decoder is a decompressed view of a database stream.
type decoder struct {
	io.Reader
	close  func()
	finish func() error // after EOF of Reader: refuse trailing bytes
}

func (d *decoder) Close() {
	if d.close != nil {
		d.close()
	}
}

// sourceError marks a read error of the caller's reader, so that it is
// reported as it is and not as a corrupt archive.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXZ    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magicBzip2 = []byte("BZh")
)

// unsupported lists compressors makepkg knows but whose databases we refuse.
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

// Format names the compression of a database stream from its first bytes
// ("gzip", "zstd", "xz", "bzip2", "tar"), or returns a *CompressionError.
// It needs up to 512 bytes (fewer when the stream is shorter).
func Format(head []byte) (string, error) {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return "gzip", nil
	case bytes.HasPrefix(head, magicZstd):
		return "zstd", nil
	case bytes.HasPrefix(head, magicXZ):
		return "xz", nil
	case bytes.HasPrefix(head, magicBzip2) && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		return "bzip2", nil
	case len(head) >= 263 && bytes.Equal(head[257:262], []byte("ustar")):
		return "tar", nil
	case len(head) >= 512 && allZero(head[:512]):
		return "tar", nil // an empty archive: repo-add's "-T /dev/null"
	}
	m := head[:min(len(head), 8)]
	m = append([]byte(nil), m...)
	for _, u := range unsupported {
		if bytes.HasPrefix(head, u.magic) {
			return "", &CompressionError{Format: u.name, Magic: m}
		}
	}
	return "", &CompressionError{Magic: m}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func decompress(br *bufio.Reader) (*decoder, error) {
	head, err := br.Peek(512)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		var se *sourceError
		if errors.As(err, &se) {
			return nil, se.err
		}
		return nil, err
	}
	format, err := Format(head)
	if err != nil {
		return nil, err
	}
	noTrailer := func() error {
		if _, err := br.Peek(1); err != io.EOF {
			return corrupt("data after the compressed stream")
		}
		return nil
	}
	switch format {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, corrupt("gzip: " + err.Error())
		}
		zr.Multistream(false) // repo-add's gzip writes one member
		return &decoder{Reader: zr, finish: noTrailer}, nil
	case "zstd":
		zr, err := getZstd(br)
		if err != nil {
			return nil, corrupt("zstd: " + err.Error())
		}
		return &decoder{Reader: zr, close: func() { putZstd(zr) }, finish: noTrailer}, nil
	case "xz":
		g := &xzGuard{r: br, maxDict: maxXZDict}
		zr, err := xz.NewReader(g)
		if err != nil {
			if g.err != nil {
				return nil, g.err
			}
			return nil, corrupt("xz: " + err.Error())
		}
		return &decoder{Reader: &xzReader{zr: zr, g: g}, finish: noTrailer}, nil
	case "bzip2":
		return &decoder{Reader: bzip2.NewReader(br), finish: noTrailer}, nil
	default: // tar
		return &decoder{Reader: br, finish: noTrailer}, nil
	}
}

// zstdPool keeps decoders (and their window buffers) between databases:
// creating one costs more than decoding a small database.
var zstdPool sync.Pool

func getZstd(r io.Reader) (*zstd.Decoder, error) {
	if d, ok := zstdPool.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err == nil {
			return d, nil
		}
		d.Close()
	}
	return zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1), // synchronous: no goroutines
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecoderMaxMemory(maxZstdWindow))
}

func putZstd(d *zstd.Decoder) {
	if d.Reset(nil) == nil { // drops the reference to the stream
		zstdPool.Put(d)
	}
}

// xzReader reports the guard's typed error instead of the decoder's
// rewording of it.
type xzReader struct {
	zr io.Reader
	g  *xzGuard
}

func (x *xzReader) Read(p []byte) (int, error) {
	n, err := x.zr.Read(p)
	if err != nil && err != io.EOF && x.g.err != nil {
		err = x.g.err
	}
	return n, err
}

func corrupt(msg string) error { return fmt.Errorf("%w: %s", ErrCorrupt, msg) }

// streamErr classifies an error from the decompressor or the tar reader.
func streamErr(err error) error {
	var le *LimitError
	var se *sourceError
	switch {
	case errors.As(err, &le):
		return le
	case errors.As(err, &se):
		return se.err
	case errors.Is(err, zstd.ErrWindowSizeExceeded):
		return &LimitError{Limit: "zstd window", Max: maxZstdWindow, Got: -1}
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrLimit):
		return err
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return corrupt("truncated")
	}
	return corrupt(err.Error())
}
