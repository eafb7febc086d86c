package repodb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/bintrans/bintrans/internal/decompress"
)

// Bounds on the history a zstd or xz stream may make the decoder allocate.
// They are not part of Limits: they protect memory, not the content, and
// every database repo-add writes with default settings is far below them.
var decoderLimits = decompress.Limits{
	// `zstd -1…-20` need at most 32 MiB (repo-add's default `zstd -c -z
	// -q -` is level 3, 2-8 MiB); --ultra -21/-22 and --long are refused.
	MaxZstdWindow: 32 << 20,
	// xz presets -0…-9 use at most 64 MiB (repo-add's default `xz -c -z
	// -` is -6, 8 MiB); a larger dictionary is refused before the decoder
	// allocates it.
	MaxXZDict: 64 << 20,
	// repo-add's gzip writes one member; anything after it is refused as
	// trailing data.
	SingleGzipMember: true,
}

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

// Format names the compression of a database stream from its first bytes
// ("gzip", "zstd", "xz", "bzip2", "tar"), or returns a *CompressionError.
// It needs up to 512 bytes (fewer when the stream is shorter).
func Format(head []byte) (string, error) {
	if f := decompress.Sniff(head); f != "" {
		return f, nil
	}
	switch {
	case len(head) >= 263 && bytes.Equal(head[257:262], []byte("ustar")):
		return "tar", nil
	case len(head) >= 512 && allZero(head[:512]):
		return "tar", nil // an empty archive: repo-add's "-T /dev/null"
	}
	m := head[:min(len(head), 8)]
	m = append([]byte(nil), m...)
	return "", &CompressionError{Format: decompress.Unsupported(head), Magic: m}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func decompressed(br *bufio.Reader) (*decoder, error) {
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
	if format == "tar" {
		return &decoder{Reader: br, finish: noTrailer}, nil
	}
	zr, err := decompress.NewReader(br, format, decoderLimits)
	if err != nil {
		return nil, decoderErr(err)
	}
	return &decoder{Reader: zr, close: zr.Close, finish: noTrailer}, nil
}

func corrupt(msg string) error { return fmt.Errorf("%w: %s", ErrCorrupt, msg) }

// decoderErr turns the decompressor's typed errors into repodb's.
func decoderErr(err error) error {
	var le *decompress.LimitError
	var ce *decompress.CorruptError
	var se *sourceError
	switch {
	case errors.As(err, &le):
		return &LimitError{Limit: le.What, Max: le.Max, Got: le.Got}
	case errors.As(err, &se):
		return se.err
	case errors.As(err, &ce):
		return corrupt(ce.Error())
	}
	return err
}

// streamErr classifies an error from the decompressor or the tar reader.
func streamErr(err error) error {
	var le *LimitError
	var se *sourceError
	var dle *decompress.LimitError
	var dce *decompress.CorruptError
	switch {
	case errors.As(err, &le):
		return le
	case errors.As(err, &se):
		return se.err
	case errors.As(err, &dle), errors.As(err, &dce):
		return decoderErr(err)
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrLimit):
		return err
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return corrupt("truncated")
	}
	return corrupt(err.Error())
}
