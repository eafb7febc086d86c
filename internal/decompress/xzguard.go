package decompress

import "io"

// xzGuard sits between the compressed stream and the xz decoder and refuses
// a block whose LZMA2 dictionary is larger than maxDict before the decoder
// can see the complete block header: github.com/ulikunitz/xz allocates the
// dictionary the header announces (up to 4 GiB) as soon as it has parsed it.
//
// It follows the .xz container (stream header, block headers, LZMA2 chunk
// headers — self-delimiting without decompression —, block padding and
// check, index, stream footer, stream padding) as bytes pass through, and
// withholds the last byte of every block header until it has checked it.
// Anything it cannot follow is reported as corrupt; the decoder would refuse
// it too.
type xzGuard struct {
	r       io.Reader
	maxDict int64
	err     error

	st      int
	need    int64  // bytes still to pass in the current state
	hdr     []byte // block header or chunk header being collected
	hdrLen  int
	check   int   // size of the block check, from the stream flags
	blkSize int64 // unpadded block size so far
	idxSize int64 // index size so far
	records uint64
	mbi     uint64
	mbiN    int
	mbiDone bool
}

const (
	xzStreamHeader = iota
	xzBlockOrIndex
	xzBlockHeader
	xzChunkControl
	xzChunkHeader
	xzChunkData
	xzBlockPadding
	xzCheck
	xzIndexCount
	xzIndexRecords
	xzIndexPadding
	xzIndexCRC
	xzFooter
	xzStreamPadding
)

var xzCheckSizes = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}

func (g *xzGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i := 0; i < n; i++ {
		if e := g.step(p[i]); e != nil {
			g.err = e
			// Pass what precedes the offending byte; the decoder cannot
			// act on an incomplete header.
			return i, nil
		}
	}
	return n, err
}

func (g *xzGuard) fail(msg string) error { return &CorruptError{Format: XZ, Reason: msg} }

// step advances the container state machine by one byte.
func (g *xzGuard) step(c byte) error {
	switch g.st {
	case xzChunkData: // nearly every byte: handled here, without a call
		g.blkSize++
		g.need--
		if g.need == 0 {
			g.st = xzChunkControl
		}
		return nil
	case xzStreamHeader, xzBlockOrIndex, xzFooter, xzStreamPadding:
		return g.stepStream(c)
	case xzBlockHeader, xzChunkControl, xzChunkHeader, xzBlockPadding, xzCheck:
		return g.stepBlock(c)
	case xzIndexCount, xzIndexRecords, xzIndexPadding, xzIndexCRC:
		return g.stepIndex(c)
	}
	return nil
}

// stepStream is step in the stream's own parts: its header (the check
// size), the byte that starts a block or the index, its footer, and the
// stream padding before the next stream.
func (g *xzGuard) stepStream(c byte) error {
	switch g.st {
	case xzStreamHeader:
		g.hdr = append(g.hdr, c)
		if len(g.hdr) == 12 {
			if g.hdr[6] != 0 || g.hdr[7] > 0x0f {
				return g.fail("unsupported stream flags")
			}
			g.check = xzCheckSizes[g.hdr[7]]
			g.hdr = g.hdr[:0]
			g.st = xzBlockOrIndex
		}
	case xzBlockOrIndex:
		if c == 0 { // index indicator
			g.idxSize = 1
			g.resetMBI()
			g.st = xzIndexCount
			return nil
		}
		g.hdrLen = (int(c) + 1) * 4
		g.hdr = append(g.hdr[:0], c)
		g.st = xzBlockHeader
	case xzFooter:
		g.need--
		if g.need == 0 {
			g.need = 0
			g.st = xzStreamPadding
		}
	case xzStreamPadding:
		if c == 0 {
			return nil
		}
		// The next stream's header; the decoder checks the padding length.
		g.hdr = append(g.hdr[:0], c)
		g.st = xzStreamHeader
	}
	return nil
}

// stepBlock is step in a block: its header (checked for the dictionary
// size once complete), its LZMA2 chunk headers (their data is counted in
// step), its padding and its check.
func (g *xzGuard) stepBlock(c byte) error {
	switch g.st {
	case xzBlockHeader:
		g.hdr = append(g.hdr, c)
		if len(g.hdr) == g.hdrLen {
			if err := g.checkBlockHeader(); err != nil {
				return err
			}
			g.blkSize = int64(g.hdrLen)
			g.st = xzChunkControl
		}
	case xzChunkControl:
		g.blkSize++
		switch {
		case c == 0:
			g.need = (4 - g.blkSize%4) % 4
			g.st = xzBlockPadding
			if g.need == 0 {
				g.afterPadding()
			}
		case c == 1 || c == 2:
			g.hdr = append(g.hdr[:0], c)
			g.hdrLen = 3
			g.st = xzChunkHeader
		case c >= 0x80:
			g.hdr = append(g.hdr[:0], c)
			g.hdrLen = 5
			if c >= 0xc0 {
				g.hdrLen = 6 // with a properties byte
			}
			g.st = xzChunkHeader
		default:
			return g.fail("invalid LZMA2 chunk")
		}
	case xzChunkHeader:
		g.blkSize++
		g.hdr = append(g.hdr, c)
		if len(g.hdr) == g.hdrLen {
			if g.hdr[0] < 0x80 {
				g.need = int64(g.hdr[1])<<8 | int64(g.hdr[2]) + 1
			} else {
				g.need = int64(g.hdr[3])<<8 | int64(g.hdr[4]) + 1
			}
			g.st = xzChunkData
		}
	case xzBlockPadding:
		if c != 0 {
			return g.fail("non-zero block padding")
		}
		g.need--
		if g.need == 0 {
			g.afterPadding()
		}
	case xzCheck:
		g.need--
		if g.need == 0 {
			g.st = xzBlockOrIndex
		}
	}
	return nil
}

// stepIndex is step in the index: its record count, its records, its
// padding and its CRC.
func (g *xzGuard) stepIndex(c byte) error {
	switch g.st {
	case xzIndexCount, xzIndexRecords:
		g.idxSize++
		if err := g.addMBI(c); err != nil {
			return err
		}
		if !g.mbiDone {
			return nil
		}
		if g.st == xzIndexCount {
			g.records = 2 * g.mbi // unpadded and uncompressed size per record
			g.st = xzIndexRecords
		} else {
			g.records--
		}
		g.resetMBI()
		if g.records == 0 {
			g.need = (4 - g.idxSize%4) % 4
			g.st = xzIndexPadding
			if g.need == 0 {
				g.need = 4
				g.st = xzIndexCRC
			}
		}
	case xzIndexPadding:
		if c != 0 {
			return g.fail("non-zero index padding")
		}
		g.need--
		if g.need == 0 {
			g.need = 4
			g.st = xzIndexCRC
		}
	case xzIndexCRC:
		g.need--
		if g.need == 0 {
			g.need = 12
			g.st = xzFooter
		}
	}
	return nil
}

func (g *xzGuard) afterPadding() {
	g.need = int64(g.check)
	g.st = xzCheck
	if g.need == 0 {
		g.st = xzBlockOrIndex
	}
}

func (g *xzGuard) resetMBI() { g.mbi, g.mbiN, g.mbiDone = 0, 0, false }

// addMBI accumulates one byte of an xz variable-length integer.
func (g *xzGuard) addMBI(c byte) error {
	if g.mbiN == 9 {
		return g.fail("integer too long")
	}
	g.mbi |= uint64(c&0x7f) << (7 * g.mbiN)
	g.mbiN++
	g.mbiDone = c&0x80 == 0
	if g.records > 1<<40 || g.mbi > 1<<62 {
		return g.fail("index too large")
	}
	return nil
}

// checkBlockHeader refuses filters other than one LZMA2 filter and a
// dictionary larger than maxDict.
func (g *xzGuard) checkBlockHeader() error {
	h := g.hdr[:len(g.hdr)-4] // without CRC32
	if len(h) < 2 {
		return g.fail("short block header")
	}
	flags := h[1]
	if flags&0x3c != 0 {
		return g.fail("reserved block flags")
	}
	if flags&0x03 != 0 {
		return g.fail("more than one filter (only LZMA2 is supported)")
	}
	i := 2
	readMBI := func() (uint64, bool) {
		var v uint64
		for n := 0; n < 9 && i < len(h); n++ {
			c := h[i]
			i++
			v |= uint64(c&0x7f) << (7 * n)
			if c&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	if flags&0x40 != 0 { // compressed size
		if _, ok := readMBI(); !ok {
			return g.fail("bad block header")
		}
	}
	if flags&0x80 != 0 { // uncompressed size
		if _, ok := readMBI(); !ok {
			return g.fail("bad block header")
		}
	}
	id, ok1 := readMBI()
	size, ok2 := readMBI()
	if !ok1 || !ok2 || id != 0x21 || size != 1 || i >= len(h) {
		return g.fail("filter other than LZMA2")
	}
	code := h[i]
	if code > 40 {
		return g.fail("invalid LZMA2 dictionary size")
	}
	dict := int64(1)<<32 - 1
	if code < 40 {
		dict = int64(2|code&1) << (code/2 + 11)
	}
	if dict > g.maxDict {
		return &LimitError{What: "xz dictionary", Max: g.maxDict, Got: dict}
	}
	return nil
}
