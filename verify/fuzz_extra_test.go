package verify

import (
	"bytes"
	"testing"
)

// FuzzVerifyEntry is the offline verifier (the four steps of VerifyEntry)
// fed with a fuzzed proof bundle and a fuzzed `.t` for one real package of
// a real tree. It must never panic, and it may accept only what proves the
// genuine signature: an accepted input has the genuine signature line, the
// genuine body and a proof to a root the log really had at that size.
func FuzzVerifyEntry(f *testing.F) {
	l := newTestLog(f)
	sk, pk := testKey(f, 1)
	var pkgs []*pkg
	for i := range 5 {
		p := newPkg(f, sk, i)
		l.addSigned(f, p.t, pk, p.sha)
		pkgs = append(pkgs, p)
	}
	p := pkgs[2]
	good, err := MarshalBundle(l.entryAt(2, 5))
	if err != nil {
		f.Fatal(err)
	}
	body := l.entryAt(2, 5).Body
	other, _ := MarshalBundle(l.entryAt(3, 5))
	f.Add(good, p.t)
	f.Add(other, p.t)
	f.Add(good, pkgs[3].t)
	f.Add(bytes.Replace(good, []byte(`"treeSize":5`), []byte(`"treeSize":6`), 1), p.t)
	f.Add([]byte(`{"schema_version":1}`), []byte("untrusted comment: \n"))
	sig, err := ParseSignature(p.t)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, bundle, tfile []byte) {
		e, err := ParseBundle(bundle)
		if err != nil {
			return
		}
		cp, err := VerifyEntry(e, tfile, []PublicKey{pk}, p.sha, p.filename, l.key)
		if err != nil {
			if s := StatusOf(err); s == StatusOK || s == StatusUnavailable {
				t.Fatalf("rejection maps to %q: %v", s, err)
			}
			return
		}
		s, err := ParseSignature(tfile)
		if err != nil {
			t.Fatalf("accepted an unparsable .t: %v", err)
		}
		if !bytes.Equal(s.Line(), sig.Line()) {
			t.Fatalf("accepted another signature line: %x", s.Line())
		}
		if !bytes.Equal(e.Body, body) {
			t.Fatalf("accepted another body: %q", e.Body)
		}
		if cp.Size < 3 || cp.Size > 5 || !bytes.Equal(cp.Root, l.tree.HashAt(uint64(cp.Size))) {
			t.Fatalf("accepted a checkpoint the log never had: size %d root %x", cp.Size, cp.Root)
		}
	})
}
