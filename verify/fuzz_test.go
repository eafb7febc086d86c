package verify

import (
	"bytes"
	"testing"
)

// The fuzz targets check that parsers never panic, stay within their
// bounds, and that what they accept round-trips.

func FuzzParseSignature(f *testing.F) {
	sk, _ := testKey(f, 1)
	t, _ := SignPackage(sk, hexOf("x"), "x-1-1-any.pkg.tar.zst")
	f.Add(t)
	f.Add(bytes.ReplaceAll(t, []byte("\n"), []byte("\r\n")))
	f.Add([]byte("untrusted comment: \nRUQ=\ntrusted comment: \nAA==\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		if err != nil {
			if StatusOf(err) != StatusMalformedSignature {
				t.Fatalf("parse error maps to %s", StatusOf(err))
			}
			return
		}
		if len(b) > MaxSignatureSize || len(s.Line()) != 74 || (s.Algorithm() != "ED" && s.Algorithm() != "Ed") {
			t.Fatalf("accepted %q", b)
		}
		if bytes.ContainsAny([]byte(s.TrustedComment()), "\r\n") {
			t.Fatalf("trusted comment with a line break: %q", s.TrustedComment())
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	k := newNoteKey(1)
	root := make([]byte, 32)
	root[0] = 7
	f.Add(k.note("log.test - 1", 1, root))
	f.Add([]byte("o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 n AAAAAAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		if c.Size < 0 || len(c.Root) != 32 || c.Origin == "" || len(c.sigs) == 0 || len(b) > MaxCheckpointSize {
			t.Fatalf("accepted %q as %+v", b, c)
		}
		// A fuzzed note is never signed by the key (the seed is signed;
		// any change to the body breaks it).
		if c.SignedBy(k.hint, k.check) && (c.Size != 1 || !bytes.Equal(c.Root, root) || c.Origin != "log.test - 1") {
			t.Fatalf("forged checkpoint verified: %q", b)
		}
	})
}
