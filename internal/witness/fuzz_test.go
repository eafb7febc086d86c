package witness

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"sigsum.org/sigsum-go/pkg/policy"
)

func FuzzParse(f *testing.F) {
	w1, w2 := witVKey(f, "w1"), witVKey(f, "w2")
	for _, s := range []string{
		"quorum none\n",
		"log " + logVKey(f, testOrigin) + " https://log.example/\nwitness a " + w1 + "\nwitness b " + w2 + " http://b/\ngroup g 2 a b\nquorum g\n",
		"log " + hexOf("l") + "\nwitness a " + hexOf("a") + "\nwitness b " + hexOf("b") + "\ngroup g any a b\ngroup h all g\nquorum h\n",
		"log " + rekorVKey(f) + "\nquorum none\n",
		"# c\n\t witness a " + hexOf("a") + "\t\nquorum a",
		"witness a " + hexOf("a") + "\ngroup g 1 a a\nquorum g\n",
		"group g 0 a\n",
		"quorum none\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("policy and error")
			}
			return
		}
		if p.Quorum != QuorumNone && p.Witness(p.Quorum) == nil && p.group(p.Quorum) == nil {
			t.Fatalf("quorum %q undefined", p.Quorum)
		}
		member := map[string]bool{}
		for _, g := range p.Groups {
			if g.K < 1 || g.K > len(g.Members) {
				t.Fatalf("group %s: k=%d n=%d", g.Name, g.K, len(g.Members))
			}
			for _, m := range g.Members {
				if member[m] {
					t.Fatalf("%s a member twice", m)
				}
				member[m] = true
			}
		}
		// Differential: whatever we accept, sigsum-go's builder accepts, and
		// a hex-only file sigsum-go's parser reads too.
		ed := false
		for _, l := range p.Logs {
			ed = ed || l.Ed25519() != nil
		}
		if ed {
			if _, err := p.SigsumPolicy(); err != nil {
				t.Fatalf("sigsum-go builder: %v", err)
			}
		}
		if !bytes.Contains(data, []byte("+")) {
			if _, err := policy.ParseConfig(bytes.NewReader(data)); err != nil {
				t.Fatalf("sigsum-go parser refuses what we accept: %v", err)
			}
		}
	})
}

func FuzzVerifyCheckpoint(f *testing.F) {
	p := policy3(f, "group g 2 w1 w2 w3\nquorum g\n")
	cp := signedCheckpoint(f, testOrigin, 10)
	f.Add(withLines(cp, cosign(f, "w1", cp, 1700000000), cosign(f, "w2", cp, 1700000001)))
	f.Add(withLines(cp, cosign(f, "w1", cp, 1700000000)))
	f.Add(signedCheckpoint(f, testOrigin, 1, "Timestamp: 1"))
	f.Add([]byte("o\n1\nAAAA\n\n— o AAAAAAAAAAA=\n"))
	now := time.Unix(1700000100, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := p.VerifyCheckpoint(data, Options{MaxAge: time.Hour, Now: now})
		if err != nil {
			return
		}
		if len(c.Cosignatures) < 2 || c.Origin != testOrigin || !bytes.HasPrefix(data, c.Text) {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func FuzzMergeCosignatures(f *testing.F) {
	cp := signedCheckpoint(f, testOrigin, 10)
	f.Add(cp, []byte(cosign(f, "w1", cp, 5)+cosign(f, "w2", cp, 6)))
	f.Add(withLines(cp, cosign(f, "w1", cp, 5)), []byte(cosign(f, "w1", cp, 7)))
	f.Add([]byte("a\n\n— a AAAAAAAA\n"), []byte("— b AAAAAAAA\n— a AAAAAAAA\n"))
	f.Fuzz(func(t *testing.T, base, extra []byte) {
		m, err := MergeCosignatures(base, extra)
		if err != nil {
			return
		}
		again, err := MergeCosignatures(m, extra)
		if err != nil || !bytes.Equal(again, m) {
			t.Fatalf("not idempotent: %v\n%q\n%q", err, m, again)
		}
		first := func(n []byte) string {
			_, sigs, _ := strings.Cut(string(n[bytes.LastIndex(n, []byte("\n\n")):]), "\n\n")
			l, _, _ := strings.Cut(sigs, "\n")
			return l
		}
		if first(m) != first(base) {
			t.Fatalf("log signature line moved: %q -> %q", first(base), first(m))
		}
	})
}
