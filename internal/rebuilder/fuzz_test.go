package rebuilder

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ (the documented examples of
// docs/rebuilderd-api.md, a signed link, and broken variants).

func FuzzParseV0List(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := ParseV0List(b)
		if err != nil {
			return
		}
		if len(rows) > MaxRecords {
			t.Fatalf("%d rows accepted", len(rows))
		}
		for _, r := range rows {
			if r.Name == "" || r.Version == "" || len(r.Name) > maxFieldLen || len(r.ArtifactURL) > maxFieldLen {
				t.Fatalf("row accepted: %+v", r)
			}
		}
	})
}

func FuzzParseV1Page(f *testing.F) {
	f.Add([]byte(`{"total":0,"records":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseV1Page(b)
		if err != nil {
			return
		}
		if len(p.Records) > MaxRecords || p.Total < int64(len(p.Records)) {
			t.Fatalf("page accepted: total %d, %d records", p.Total, len(p.Records))
		}
		for _, r := range p.Records {
			if r.Name == "" || r.Version == "" || len(r.Name) > maxFieldLen {
				t.Fatalf("record accepted: %+v", r)
			}
			_ = v1Row(r)
		}
	})
}

func FuzzParseAttestation(f *testing.F) {
	f.Add([]byte(`{"signatures":[{"keyid":"00","sig":"00"}],"signed":{"_type":"link"}}`))
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAttestation(b)
		if err != nil {
			return
		}
		if len(a.Signatures) == 0 || len(a.Signatures) > maxSignatures {
			t.Fatalf("%d signatures accepted", len(a.Signatures))
		}
		// No signature by the all-zero seed's key can be in a fuzzed input
		// unless the fuzzer forged Ed25519.
		if err := a.Verify(key, "x.pkg.tar.zst", "00"); err == nil {
			t.Fatal("attestation verified under an unrelated key")
		}
	})
}

func FuzzCanonicalJSON(f *testing.F) {
	f.Add([]byte(`{"b":[1,-2,"\u0001\n"],"a":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := CanonicalJSON(b)
		if err != nil {
			return
		}
		again, err := CanonicalJSON(c)
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", c, err)
		}
		if !bytes.Equal(c, again) {
			t.Fatalf("not idempotent: %q -> %q", c, again)
		}
	})
}

// FuzzNormalizeURL: a configured rebuilder URL either is refused or
// normalizes to a base that is a fixed point (normalizing it again gives
// it back, with the same host), so that two spellings of one rebuilder
// always compare equal.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{"https://rb.example/", "http://RB.Example.:80/a/../b//c", "https://bücher.example/",
		"http://[::ffff:127.0.0.1]:8080/", "https://xn--bcher-kva.example./x/./y", "http://[fe80::1%25eth0]/", "http://a..b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := normalizeURL(raw)
		if err != nil {
			return
		}
		again, err := normalizeURL(n.base)
		if err != nil {
			t.Fatalf("%q → %q, which is refused: %v", raw, n.base, err)
		}
		if again != n {
			t.Fatalf("%q → %+v → %+v: not a fixed point", raw, n, again)
		}
		if h, err := NormalizeHost(n.host); err != nil || h != n.host {
			t.Fatalf("host %q normalizes to %q (%v)", n.host, h, err)
		}
	})
}
