package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"
)

// hashBufSize is the copy buffer of HashReader: large enough that a read
// syscall moves a useful amount of data, small enough to keep one per worker.
const hashBufSize = 256 << 10

var hashBufs = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

// HashReader streams r into sha256 and returns the lowercase hex digest and
// the number of bytes read. It never holds more than one buffer of r in
// memory. It is the project's one hashing helper for package files: every
// command that hashes a package calls it.
func HashReader(r io.Reader) (hexSum string, n int64, err error) {
	h := sha256.New()
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	// io.CopyBuffer would use r's WriterTo (an *os.File has one that ignores
	// the buffer); wrap r so the big buffer is always used.
	n, err = io.CopyBuffer(h, struct{ io.Reader }{r}, *bp)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// isSHA256Hex reports whether s is 64 lowercase hex digits: the form of
// every message this project signs.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
