package witness

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"sigsum.org/sigsum-go/pkg/policy"
)

// testKey is a deterministic Ed25519 key for label.
func testKey(label string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(label))
	return ed25519.NewKeyFromSeed(s[:])
}

func pubOf(label string) ed25519.PublicKey { return testKey(label).Public().(ed25519.PublicKey) }

func logVKey(t testing.TB, origin string) string {
	t.Helper()
	v, err := Ed25519VKey(origin, pubOf(origin))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func witVKey(t testing.TB, name string) string {
	t.Helper()
	v, err := CosignatureVKey(name, pubOf(name))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hexOf(label string) string { return hex.EncodeToString(pubOf(label)) }

func TestParseC2SPAndSigsumSyntax(t *testing.T) {
	c2sp := fmt.Sprintf(`# C2SP tlog-policy
log %s https://log.example/
  # an indented comment
witness	w1	%s	https://w1.example/
witness w2 %s
witness w3 %s https://w3.example/prefix
group g 2 w1 w2 w3
quorum g
`, logVKey(t, "example.org/log"), witVKey(t, "w1.example"), witVKey(t, "w2.example"), witVKey(t, "w3.example"))
	p, err := Parse([]byte(c2sp))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Logs) != 1 || p.Logs[0].Name != "example.org/log" || p.Logs[0].URL != "https://log.example/" || p.Logs[0].Line != 2 {
		t.Errorf("logs %+v", p.Logs)
	}
	if len(p.Witnesses) != 3 || p.Witnesses[1].URL != "" || p.Witnesses[0].KeyName != "w1.example" || !p.Witnesses[2].Key.Equal(pubOf("w3.example")) {
		t.Errorf("witnesses %+v", p.Witnesses)
	}
	if len(p.Groups) != 1 || p.Groups[0].K != 2 || p.Quorum != "g" {
		t.Errorf("groups %+v quorum %q", p.Groups, p.Quorum)
	}

	sigsum := fmt.Sprintf("log %s https://log.example/\nwitness w1 %s https://w1.example/\nwitness w2 %s\nwitness w3 %s\ngroup g 2 w1 w2 w3\nquorum g\n",
		hexOf("log"), hexOf("w1"), hexOf("w2"), hexOf("w3"))
	p, err = Parse([]byte(sigsum))
	if err != nil {
		t.Fatal(err)
	}
	if p.Logs[0].Name != SigsumOrigin(pubOf("log")) || p.Logs[0].KeyHash != sha256.Sum256(pubOf("log")) || p.Witnesses[0].KeyName != "" {
		t.Errorf("sigsum syntax: %+v", p)
	}
	// sigsum-go reads the same file, and our policy feeds its builder
	if _, err := policy.ParseConfig(strings.NewReader(sigsum)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SigsumPolicy(); err != nil {
		t.Fatal(err)
	}
}

func TestParseAccepts(t *testing.T) {
	w1, w2, w3 := witVKey(t, "w1"), witVKey(t, "w2"), witVKey(t, "w3")
	for name, text := range map[string]string{
		"quorum none alone":       "quorum none\n",
		"no final newline":        "quorum none",
		"single witness quorum":   "witness a " + w1 + "\nquorum a\n",
		"any and all, nested":     fmt.Sprintf("witness a %s\nwitness b %s\nwitness c %s\ngroup ab any a b\ngroup top all ab c\nquorum top\n", w1, w2, w3),
		"0x01 witness key":        "witness a " + logVKey(t, "w1") + "\nquorum a\n",
		"mixed hex and vkey":      fmt.Sprintf("log %s\nlog %s\nwitness a %s\nwitness b %s\ngroup g 2 a b\nquorum g\n", hexOf("l1"), logVKey(t, "l2"), hexOf("a"), w2),
		"quorum over used member": fmt.Sprintf("witness a %s\nwitness b %s\ngroup g any a b\nquorum a\n", w1, w2),
		"non-ASCII names":         "witness K\u212a " + w1 + "\nquorum K\u212a\n",
		"Rekor v1 ECDSA log":      "log " + rekorVKey(t) + "\nquorum none\n",
	} {
		if _, err := Parse([]byte(text)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func rekorVKey(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := RekorV1VKey("rekor.example", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseRejects(t *testing.T) {
	w1, w2 := witVKey(t, "w1"), witVKey(t, "w2")
	wa := "witness a " + w1 + "\n"
	wab := wa + "witness b " + w2 + "\n"
	badHash := withHash(w1, "00000000")
	for _, c := range []struct{ name, text, want string }{
		{"empty", "", "no quorum line"},
		{"comment only", "# nothing\n", "no quorum line"},
		{"two quorums", "quorum none\nquorum none\n", "line 2: second quorum line (the first is on line 1)"},
		{"threshold 0", wab + "group g 0 a b\nquorum g\n", "threshold 0 out of range 1..2"},
		{"threshold > n", wab + "group g 3 a b\nquorum g\n", "threshold 3 out of range 1..2"},
		{"threshold +1", wab + "group g +1 a b\nquorum g\n", "not a decimal number"},
		{"threshold huge", wab + "group g 99999999999999999999 a b\nquorum g\n", "out of range"},
		{"member twice", wab + "group g 2 a a b\nquorum g\n", `"a" listed twice`},
		{"member of two groups", wab + "group g any a\ngroup h any a b\nquorum h\n", `"a" is already a member of group g`},
		{"undefined member", wa + "group g any a b\nquorum g\n", `"b" is not defined on an earlier line`},
		{"forward reference", "group g any a\n" + wa + "quorum g\n", `"a" is not defined on an earlier line`},
		{"quorum before definition", "quorum a\n" + wa, `quorum "a" is not defined`},
		{"none as member", wa + "group g any a none\nquorum g\n", `"none" cannot be a group member`},
		{"none as a name", "witness none " + w1 + "\nquorum none\n", `"none" is reserved`},
		{"duplicate name", wab + "group a any b\nquorum a\n", `name "a" already defined`},
		{"group as own member", wab + "group g any a g\nquorum g\n", "a group cannot be its own member"},
		{"duplicate witness name", wa + "witness a " + w2 + "\nquorum a\n", `name "a" already defined`},
		{"duplicate witness key", wa + "witness b " + hex.EncodeToString(pubOf("w1")) + "\nquorum a\n", "key already listed on line 1"},
		{"duplicate log key", "log " + hexOf("l") + "\nlog " + mustVKey(t, SigsumOrigin(pubOf("l")), pubOf("l")) + "\nquorum none\n", "log key already listed on line 1"},
		{"trailing comment", "witness a " + w1 + " # first\nquorum a\n", "comment must be on its own line"},
		{"CRLF", "quorum none\r\n", "carriage return"},
		{"control character", "quorum\x00 none\n", "control character 0x00"},
		{"DEL", "quorum none\x7f\n", "control character 0x7f"},
		{"unknown keyword", "logs " + hexOf("l") + "\nquorum none\n", `unknown keyword "logs"`},
		{"log without key", "log\nquorum none\n", "want: log <key> [<url>]"},
		{"witness extra field", "witness a " + w1 + " https://a/ extra\nquorum a\n", "want: witness"},
		{"group without members", wa + "group g any\nquorum g\n", "want: group"},
		{"quorum two names", wab + "quorum a b\n", "want: quorum"},
		{"URL without scheme", "witness a " + w1 + " a.example\nquorum a\n", "want http(s)://"},
		{"ftp URL", "log " + hexOf("l") + " ftp://l.example/\nquorum none\n", "want http(s)://"},
		{"URL with query", "witness a " + w1 + " https://a.example/?x=1\nquorum a\n", "want http(s)://"},
		{"vkey bad hash", "witness a " + badHash + "\nquorum a\n", "key hash"},
		{"vkey 63 hex", "witness a " + hexOf("a")[:63] + "\nquorum a\n", "not a verifier key"},
		{"ECDSA witness", "witness a " + rekorVKey(t) + "\nquorum a\n", "witness key type 0x02 is not supported"},
		{"cosignature key as log", "log " + w1 + "\nquorum none\n", "log key type 0x04 is not supported"},
		{"log vkey bad hash", "log " + withHash(logVKey(t, "l"), "00000000") + "\nquorum none\n", "log key"},
		{"line too long", "# " + strings.Repeat("x", MaxLineLength) + "\nquorum none\n", "longer than 4096 bytes"},
		{"file too large", strings.Repeat("#\n", MaxPolicySize/2+1) + "quorum none\n", "larger than"},
	} {
		_, err := Parse([]byte(c.text))
		var pe *PolicyError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// withHash replaces a vkey's key hash.
func withHash(vkey, hash string) string {
	p := strings.SplitN(vkey, "+", 3)
	return p[0] + "+" + hash + "+" + p[2]
}

func mustVKey(t testing.TB, name string, pub ed25519.PublicKey) string {
	t.Helper()
	v, err := Ed25519VKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseLimits(t *testing.T) {
	var b strings.Builder
	for i := 0; i <= MaxWitnesses; i++ {
		fmt.Fprintf(&b, "witness w%d %s\n", i, hexOf(fmt.Sprint(i)))
	}
	b.WriteString("quorum w0\n")
	if _, err := Parse([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "more than 256 witnesses") {
		t.Errorf("witnesses: %v", err)
	}
	b.Reset()
	for i := 0; i <= MaxLogs; i++ {
		fmt.Fprintf(&b, "log %s\n", hexOf(fmt.Sprint("log", i)))
	}
	b.WriteString("quorum none\n")
	if _, err := Parse([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "more than 64 logs") {
		t.Errorf("logs: %v", err)
	}
}

func TestParseFileNamesTheFile(t *testing.T) {
	p := t.TempDir() + "/bad.policy"
	if err := os.WriteFile(p, []byte("quorum none\nquorum none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(p)
	if err == nil || !strings.Contains(err.Error(), "witness policy "+p+" line 2: ") {
		t.Fatalf("got %v", err)
	}
}

// Every policy block in docs/WITNESSES.md parses, and the Sigsum-syntax
// ones are read by sigsum-go too.
func TestDocExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../../docs/WITNESSES.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```policy\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("%d policy blocks in docs/WITNESSES.md", len(blocks))
	}
	for i, b := range blocks {
		p, err := Parse(b[1])
		if err != nil {
			t.Errorf("block %d: %v\n%s", i, err, b[1])
			continue
		}
		if len(p.Logs) > 0 && p.Logs[0].Ed25519() != nil {
			if _, err := p.SigsumPolicy(); err != nil {
				t.Errorf("block %d: %v", i, err)
			}
		}
	}
}

func TestWithLogs(t *testing.T) {
	p, err := Parse([]byte("witness a " + witVKey(t, "w1") + "\nquorum a\n"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.WithLogs(logVKey(t, testOrigin), rekorVKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Logs) != 0 || len(q.Logs) != 2 || q.Logs[0].Name != testOrigin || q.Witness("a") == nil {
		t.Fatalf("%+v", q)
	}
	if _, err := q.VerifyCheckpoint(signedCheckpoint(t, testOrigin, 1), Options{}); err == nil || errors.Is(err, ErrLogSignature) {
		t.Fatalf("want a quorum error after the log signature verified, got %v", err)
	}
	if _, err := q.WithLogs(mustVKey(t, testOrigin, pubOf(testOrigin))); err == nil {
		t.Error("duplicate log accepted")
	}
	if _, err := p.WithLogs("nonsense"); err == nil {
		t.Error("bad key accepted")
	}
}
