package witness

import (
	"testing"
	"time"
)

func BenchmarkVerifyCheckpoint3Cosignatures(b *testing.B) {
	p := policy3(b, "group g 2 w1 w2 w3\nquorum g\n")
	now := uint64(time.Now().Unix())
	cp := signedCheckpoint(b, testOrigin, 1000)
	cp = withLines(cp, cosign(b, "w1", cp, now), cosign(b, "w2", cp, now), cosign(b, "w3", cp, now))
	for b.Loop() {
		if _, err := p.VerifyCheckpoint(cp, Options{MaxAge: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePolicy(b *testing.B) {
	text := []byte("log " + logVKey(b, testOrigin) + "\nwitness w1 " + witVKey(b, "w1") + "\nwitness w2 " + witVKey(b, "w2") +
		"\nwitness w3 " + hexOf("w3") + "\ngroup g 2 w1 w2 w3\nquorum g\n")
	for b.Loop() {
		if _, err := Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}
