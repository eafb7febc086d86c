package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ChainErrorKind says how an audit log is broken.
type ChainErrorKind string

// The ways an audit log can be broken. The values appear in reports: never
// rename one.
const (
	// KindPrevMismatch: the record's prev is not the hash of the line before
	// (an edited, inserted, deleted or reordered record just before it, or
	// a first record whose prev is not GenesisPrev).
	KindPrevMismatch ChainErrorKind = "prev-mismatch"
	// KindTruncated: the last line has no terminating newline (torn write or
	// a truncated file).
	KindTruncated ChainErrorKind = "truncated"
	// KindMalformed: the line is not a valid record (JSON, fields, schema).
	KindMalformed ChainErrorKind = "malformed"
	// KindTooLong: the line is longer than MaxLineSize.
	KindTooLong ChainErrorKind = "too-long"
	// KindHeadMismatch: the chain is intact but does not end where the
	// caller expected (records removed from or appended to the end, or the
	// last record edited).
	KindHeadMismatch ChainErrorKind = "head-mismatch"
)

// ChainError is a broken audit log. Line is the 1-based number of the first
// line found bad; for KindPrevMismatch and KindHeadMismatch, Expected and
// Got are the hashes that differ.
type ChainError struct {
	Line     int
	Kind     ChainErrorKind
	Expected string
	Got      string
	Err      error // the parse error, for KindMalformed
}

func (e *ChainError) Error() string {
	switch e.Kind {
	case KindPrevMismatch:
		return fmt.Sprintf("audit log chain broken at line %d: prev is %s, the line before hashes to %s (a record was edited, inserted, deleted or reordered)", e.Line, e.Got, e.Expected)
	case KindTruncated:
		return fmt.Sprintf("audit log truncated at line %d: the last line has no newline", e.Line)
	case KindTooLong:
		return fmt.Sprintf("audit log line %d is longer than %d bytes", e.Line, MaxLineSize)
	case KindHeadMismatch:
		return fmt.Sprintf("audit log ends at line %d with head %s, expected head %s (records removed from or added at the end, or the last record edited)", e.Line, e.Got, e.Expected)
	default:
		return fmt.Sprintf("audit log line %d is malformed: %v", e.Line, e.Err)
	}
}

func (e *ChainError) Unwrap() error { return e.Err }

// Head identifies the end of a verified chain: the number of records and the
// hash of the last line (GenesisPrev for an empty log). Appending a record
// whose Prev is Head.Hash extends the chain.
type Head struct {
	Records int    `json:"records"`
	Hash    string `json:"hash"`
}

// Scan reads an audit log from r, verifying the chain, every record's
// shape and the line limits as it goes, and calls fn (when not nil) with
// each record in order after its line verified. It stops at the first
// problem and returns a *ChainError naming the line, or fn's error
// unchanged. A record handed to fn has a valid prev but the line after it
// may still break the chain: callers that act on records should do so only
// once Scan returned nil. Memory use is bounded by MaxLineSize.
func Scan(r io.Reader, fn func(line int, rec Record) error) (Head, error) {
	br := bufio.NewReaderSize(r, MaxLineSize+1)
	head := Head{Hash: GenesisPrev}
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return head, &ChainError{Line: n, Kind: KindTooLong}
		case err == io.EOF && len(line) == 0:
			return head, nil
		case err == io.EOF:
			if len(line) > MaxLineSize {
				return head, &ChainError{Line: n, Kind: KindTooLong}
			}
			return head, &ChainError{Line: n, Kind: KindTruncated}
		case err != nil:
			return head, fmt.Errorf("reading audit log line %d: %w", n, err)
		}
		line = line[:len(line)-1]
		if len(line) > MaxLineSize {
			return head, &ChainError{Line: n, Kind: KindTooLong}
		}
		rec, err := parseLine(line)
		if err != nil {
			return head, &ChainError{Line: n, Kind: KindMalformed, Err: err}
		}
		if rec.Prev != head.Hash {
			return head, &ChainError{Line: n, Kind: KindPrevMismatch, Expected: head.Hash, Got: rec.Prev}
		}
		head = Head{Records: n, Hash: LineHash(line)}
		if fn != nil {
			if err := fn(n, rec); err != nil {
				return head, err
			}
		}
	}
}

// VerifyChain checks a whole audit log: every line a valid record, each
// record's prev the hash of the line before, the first one GenesisPrev, and
// the file ending in a newline. It returns nil or the *ChainError of the
// first bad line. It cannot see records removed from the end: see the
// package documentation and VerifyHead.
func VerifyChain(r io.Reader) error {
	_, err := Scan(r, nil)
	return err
}

// VerifyHead is VerifyChain plus a check that the chain ends at want, a head
// kept from an earlier run or published elsewhere. A want.Records of 0 is
// not checked (only the hash is).
func VerifyHead(r io.Reader, want Head) (Head, error) {
	got, err := Scan(r, nil)
	if err != nil {
		return got, err
	}
	if got.Hash != want.Hash || (want.Records != 0 && got.Records != want.Records) {
		return got, &ChainError{Line: got.Records, Kind: KindHeadMismatch,
			Expected: fmt.Sprintf("%s (%d records)", want.Hash, want.Records),
			Got:      fmt.Sprintf("%s (%d records)", got.Hash, got.Records)}
	}
	return got, nil
}

// parseLine decodes and validates one record line strictly: no unknown
// fields, no trailing data, no CR, and byte-for-byte the canonical encoding.
func parseLine(line []byte) (Record, error) {
	var rec Record
	if len(line) == 0 {
		return rec, errors.New("empty line")
	}
	if bytes.IndexByte(line, '\r') >= 0 {
		return rec, errors.New("carriage return in line")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return rec, errors.New("data after the record")
	}
	if err := rec.Validate(); err != nil {
		return rec, err
	}
	// Only the form bintrans writes is accepted: this rules out duplicate
	// keys, keys in another case or order, and escapes that other JSON
	// readers could interpret differently from this one.
	canon, err := rec.marshal()
	if err != nil {
		return rec, err
	}
	if !bytes.Equal(canon, line) {
		return rec, errors.New("record is not in the canonical form bintrans writes")
	}
	return rec, nil
}
