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

func FuzzParseBundle(f *testing.F) {
	l := newTestLog(f)
	sk, pk := testKey(f, 1)
	p := newPkg(f, sk, 0)
	l.addSigned(f, p.t, pk, p.sha)
	b, err := MarshalBundle(l.entryAt(0, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"schema_version":1}`))
	f.Add([]byte(`{"schema_version":2,"x":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseBundle(b)
		if err != nil {
			if StatusOf(err) != StatusBundleInvalid {
				t.Fatalf("parse error maps to %s", StatusOf(err))
			}
			return
		}
		if err := CheckEntryShape(e); err != nil {
			t.Fatalf("accepted a bundle of the wrong shape: %v", err)
		}
		out, err := MarshalBundle(e)
		if err != nil {
			t.Fatalf("accepted bundle does not marshal: %v", err)
		}
		if _, err := ParseBundle(out); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	l := newTestLog(f)
	sk, pk := testKey(f, 1)
	p := newPkg(f, sk, 0)
	l.addSigned(f, p.t, pk, p.sha)
	f.Add(l.checkpointAt(1))
	f.Add([]byte("o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 n AAAAAAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		if c.Size < 0 || len(c.Root) != 32 || c.Origin == "" || len(c.sigs) == 0 || len(b) > MaxCheckpointSize {
			t.Fatalf("accepted %q as %+v", b, c)
		}
		// A fuzzed note is never signed by the test log's key (the seed is
		// signed; any change to the body breaks it).
		if vc, err := l.key.VerifyCheckpoint(b); err == nil && (vc.Size != 1 || !bytes.Equal(vc.Root, l.tree.HashAt(1))) {
			t.Fatalf("forged checkpoint verified: %q", b)
		}
	})
}

func FuzzDecodeBody(f *testing.F) {
	sk, pk := testKey(f, 1)
	msg := hexOf("x")
	t, _ := SignPackage(sk, msg, "x")
	s, _ := ParseSignature(t)
	f.Add(CanonicalBody(s, pk, []byte(msg)))
	f.Add([]byte(`{"apiVersion":"0.0.1","kind":"rekord","spec":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := DecodeBody(b)
		if err != nil {
			return
		}
		if len(body.SigLine) != 74 || !isSHA256Hex(body.DataSHA256) || body.Key.IsZero() {
			t.Fatalf("accepted %q as %+v", b, body)
		}
	})
}
