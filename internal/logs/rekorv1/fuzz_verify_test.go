package rekorv1_test

import (
	"bytes"
	"testing"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/memlog"
	"github.com/bintrans/bintrans/verify"
)

// The fuzz targets check that the Rekor v1 parsers never panic, stay within
// their bounds, and that what they accept round-trips.

func FuzzParseBundle(f *testing.F) {
	l := memlog.New(f)
	sk, pk := memlog.Key(f, 1)
	p := memlog.NewPackage(f, sk, 0)
	l.AddSigned(f, p.T, pk, p.SHA)
	b, err := rekorv1.MarshalBundle(l.EntryAt(0, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"schema_version":1}`))
	f.Add([]byte(`{"schema_version":2,"x":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := rekorv1.ParseBundle(b)
		if err != nil {
			if s := verify.StatusOf(err); s != verify.StatusBundleInvalid {
				t.Fatalf("parse error maps to %s", s)
			}
			return
		}
		if err := rekorv1.CheckEntryShape(e); err != nil {
			t.Fatalf("accepted a bundle of the wrong shape: %v", err)
		}
		out, err := rekorv1.MarshalBundle(e)
		if err != nil {
			t.Fatalf("accepted bundle does not marshal: %v", err)
		}
		if _, err := rekorv1.ParseBundle(out); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeBody(f *testing.F) {
	sk, pk := memlog.Key(f, 1)
	msg := memlog.HexOf("x")
	t, _ := verify.SignPackage(sk, msg, "x")
	s, _ := verify.ParseSignature(t)
	f.Add(rekorv1.CanonicalBody(s, pk, []byte(msg)))
	f.Add([]byte(`{"apiVersion":"0.0.1","kind":"rekord","spec":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := rekorv1.DecodeBody(b)
		if err != nil {
			return
		}
		if len(body.SigLine) != 74 || len(body.DataSHA256) != 64 || body.Key.IsZero() {
			t.Fatalf("accepted %q as %+v", b, body)
		}
	})
}

// FuzzVerifyEntry is the offline verifier (the four steps of VerifyEntry)
// fed with a fuzzed proof bundle and a fuzzed `.t` for one real package of
// a real tree. It must never panic, and it may accept only what proves the
// genuine signature: an accepted input has the genuine signature line, the
// genuine body and a proof to a root the log really had at that size.
func FuzzVerifyEntry(f *testing.F) {
	l := memlog.New(f)
	sk, pk := memlog.Key(f, 1)
	var pkgs []*memlog.Package
	for i := range 5 {
		p := memlog.NewPackage(f, sk, i)
		l.AddSigned(f, p.T, pk, p.SHA)
		pkgs = append(pkgs, p)
	}
	p := pkgs[2]
	good, err := rekorv1.MarshalBundle(l.EntryAt(2, 5))
	if err != nil {
		f.Fatal(err)
	}
	body := l.EntryAt(2, 5).Body
	other, _ := rekorv1.MarshalBundle(l.EntryAt(3, 5))
	f.Add(good, p.T)
	f.Add(other, p.T)
	f.Add(good, pkgs[3].T)
	f.Add(bytes.Replace(good, []byte(`"treeSize":5`), []byte(`"treeSize":6`), 1), p.T)
	f.Add([]byte(`{"schema_version":1}`), []byte("untrusted comment: \n"))
	sig, err := verify.ParseSignature(p.T)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, bundle, tfile []byte) {
		e, err := rekorv1.ParseBundle(bundle)
		if err != nil {
			return
		}
		cp, err := rekorv1.VerifyEntry(e, tfile, []verify.PublicKey{pk}, p.SHA, p.Filename, l.Key)
		if err != nil {
			if s := verify.StatusOf(&verify.InvalidProofError{Err: err}); s == verify.StatusOK || s == verify.StatusUnavailable {
				t.Fatalf("rejection maps to %q: %v", s, err)
			}
			return
		}
		s, err := verify.ParseSignature(tfile)
		if err != nil {
			t.Fatalf("accepted an unparsable .t: %v", err)
		}
		if !bytes.Equal(s.Line(), sig.Line()) {
			t.Fatalf("accepted another signature line: %x", s.Line())
		}
		if !bytes.Equal(e.Body, body) {
			t.Fatalf("accepted another body: %q", e.Body)
		}
		if cp.Size < 3 || cp.Size > 5 || !bytes.Equal(cp.Root, l.RootAt(cp.Size)) {
			t.Fatalf("accepted a checkpoint the log never had: size %d root %x", cp.Size, cp.Root)
		}
	})
}

// BenchmarkVerifyEntry: the offline bundle verification of one package
// (parse bundle + `.t` + the four steps), hashing excluded, in a tree of
// 1000 entries (10-hash proof).
func BenchmarkVerifyEntry(b *testing.B) {
	l := memlog.New(b)
	sk, pk := memlog.Key(b, 1)
	var p *memlog.Package
	for i := range 1000 {
		q := memlog.NewPackage(b, sk, i)
		l.AddSigned(b, q.T, pk, q.SHA)
		if i == 500 {
			p = q
		}
	}
	bundle, err := rekorv1.MarshalBundle(l.EntryAt(500, 1000))
	if err != nil {
		b.Fatal(err)
	}
	keys := []verify.PublicKey{pk}
	b.ReportAllocs()
	for b.Loop() {
		e, err := rekorv1.ParseBundle(bundle)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rekorv1.VerifyEntry(e, p.T, keys, p.SHA, p.Filename, l.Key); err != nil {
			b.Fatal(err)
		}
	}
}
