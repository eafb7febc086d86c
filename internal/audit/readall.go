package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Bounds of ReadAll.
const (
	// MaxRecords bounds the records ReadAll returns.
	MaxRecords = 10_000_000
	// MaxBreaks bounds the chain errors ReadAll collects; after that it
	// stops reading (the file is not an audit log worth cross-checking).
	MaxBreaks = 1000
)

// LineRecord is a record with its place in the file.
type LineRecord struct {
	Line int
	Record
	// AfterBreak is set when an earlier line broke the chain: the record
	// parsed, but the chain no longer vouches for it.
	AfterBreak bool
}

// ReadResult is a whole audit log read leniently.
type ReadResult struct {
	// Records are every line that parsed as a record, in file order.
	Records []LineRecord
	// Breaks are every problem found, in file order (empty: the chain
	// verifies, as VerifyChain would say).
	Breaks []*ChainError
	// Head is the hash of the last line read and the number of lines.
	Head Head
}

// ReadAll reads a whole audit log like Scan, but does not stop at the first
// problem: a line that breaks the chain is reported and reading goes on
// from it (the next record's prev must be that line's hash), a malformed or
// too long line is reported and skipped, a torn last line is reported. So a
// cross-check still sees every record, and every edit is reported where it
// is. Memory: the records, and one line of at most MaxLineSize. The error
// is non-nil only when reading fails or the limits are exceeded.
func ReadAll(r io.Reader) (*ReadResult, error) {
	br := bufio.NewReaderSize(r, MaxLineSize+1)
	res := &ReadResult{Head: Head{Hash: GenesisPrev}}
	prev := GenesisPrev
	broken := false
	addBreak := func(e *ChainError) error {
		broken = true
		res.Breaks = append(res.Breaks, e)
		if len(res.Breaks) >= MaxBreaks {
			return fmt.Errorf("audit log: more than %d broken lines, stopped reading", MaxBreaks)
		}
		return nil
	}
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of the over-long line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return res, fmt.Errorf("reading audit log line %d: %w", n, err)
			}
			if e := addBreak(&ChainError{Line: n, Kind: KindTooLong}); e != nil {
				return res, e
			}
			prev = "" // the next line's prev cannot be checked
			if err == io.EOF {
				return res, nil
			}
			continue
		}
		switch {
		case err == io.EOF && len(line) == 0:
			return res, nil
		case err == io.EOF:
			kind := KindTruncated
			if len(line) > MaxLineSize {
				kind = KindTooLong
			}
			return res, addBreak(&ChainError{Line: n, Kind: kind})
		case err != nil:
			return res, fmt.Errorf("reading audit log line %d: %w", n, err)
		}
		line = line[:len(line)-1]
		hash := LineHash(line)
		res.Head = Head{Records: n, Hash: hash}
		if len(line) > MaxLineSize {
			if e := addBreak(&ChainError{Line: n, Kind: KindTooLong}); e != nil {
				return res, e
			}
			prev = hash
			continue
		}
		rec, perr := parseLine(line)
		if perr != nil {
			if e := addBreak(&ChainError{Line: n, Kind: KindMalformed, Err: perr}); e != nil {
				return res, e
			}
			prev = hash
			continue
		}
		if prev != "" && rec.Prev != prev {
			if e := addBreak(&ChainError{Line: n, Kind: KindPrevMismatch, Expected: prev, Got: rec.Prev}); e != nil {
				return res, e
			}
		}
		if len(res.Records) >= MaxRecords {
			return res, fmt.Errorf("audit log: more than %d records", MaxRecords)
		}
		res.Records = append(res.Records, LineRecord{Line: n, Record: rec, AfterBreak: broken})
		prev = hash
	}
}
