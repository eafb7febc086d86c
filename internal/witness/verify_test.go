package witness

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.org/log"

// signedCheckpoint is a checkpoint body signed by the test log key.
func signedCheckpoint(t testing.TB, origin string, size uint64, extra ...string) []byte {
	t.Helper()
	body := string(flog.Checkpoint{Origin: origin, Size: size, Hash: root(size)}.Marshal())
	for _, e := range extra {
		body += e + "\n"
	}
	return signNote(t, body, logSigner(t, origin))
}

func root(size uint64) []byte { h := sha256.Sum256([]byte(fmt.Sprint("root", size))); return h[:] }

func logSigner(t testing.TB, origin string) note.Signer {
	t.Helper()
	return edSigner(t, origin, testKey(origin), algEd25519)
}

// edSigner is a note signer for an Ed25519 key of type alg (0x01).
func edSigner(t testing.TB, name string, priv ed25519.PrivateKey, alg byte) note.Signer {
	t.Helper()
	pub := priv.Public().(ed25519.PublicKey)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, noteKeyHash(name, append([]byte{alg}, pub...)),
		base64.StdEncoding.EncodeToString(append([]byte{alg}, priv.Seed()...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signNote(t testing.TB, body string, s ...note.Signer) []byte {
	t.Helper()
	n, err := note.Sign(&note.Note{Text: body}, s...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// cosign returns witness name's cosignature/v1 line over the checkpoint's
// body at time ts, made by hand (cross-checked against formats' signer in
// TestCosignHelperMatchesFormats).
func cosign(t testing.TB, name string, cp []byte, ts uint64) string {
	t.Helper()
	body, _, _ := strings.Cut(string(cp), "\n\n")
	body += "\n"
	priv := testKey(name)
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, body)
	sig := binary.BigEndian.AppendUint32(nil, noteKeyHash(name, append([]byte{algCosignV1}, priv.Public().(ed25519.PublicKey)...)))
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(priv, []byte(msg))...)
	return "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

func withLines(cp []byte, lines ...string) []byte {
	return []byte(string(cp) + strings.Join(lines, ""))
}

func TestCosignHelperMatchesFormats(t *testing.T) {
	priv := testKey("w1")
	skey := fmt.Sprintf("PRIVATE+KEY+w1+%08x+%s", noteKeyHash("w1", append([]byte{algCosignV1}, priv.Public().(ed25519.PublicKey)...)),
		base64.StdEncoding.EncodeToString(append([]byte{algCosignV1}, priv.Seed()...)))
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cp := signedCheckpoint(t, testOrigin, 7)
	body, _, _ := strings.Cut(string(cp), "\n\n")
	lib := signNote(t, body+"\n", s)
	_, libSig, _ := strings.Cut(string(lib), "\n\n")
	raw, _ := base64.StdEncoding.DecodeString(strings.Fields(libSig)[2])
	ts := binary.BigEndian.Uint64(raw[4:12])
	if got := cosign(t, "w1", cp, ts); got != libSig {
		t.Fatalf("helper %q, formats %q", got, libSig)
	}
}

func policy3(t testing.TB, group string) *Policy {
	t.Helper()
	text := "log " + logVKey(t, testOrigin) + "\n"
	for _, w := range []string{"w1", "w2", "w3"} {
		text += "witness " + w + " " + witVKey(t, w) + "\n"
	}
	p, err := Parse([]byte(text + group))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyCheckpointQuorum(t *testing.T) {
	p := policy3(t, "group g 2 w1 w2 w3\nquorum g\n")
	now := uint64(time.Now().Unix())
	cp := signedCheckpoint(t, testOrigin, 10)
	ok := withLines(cp, cosign(t, "w1", cp, now), cosign(t, "w3", cp, now-5))
	c, err := p.VerifyCheckpoint(ok, Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 10 || c.Origin != testOrigin || string(c.Hash[:]) != string(root(10)) || c.Log != &p.Logs[0] ||
		len(c.Cosignatures) != 2 || c.Cosignatures[0].Witness != "w1" || c.Cosignatures[1].Time.Unix() != int64(now-5) {
		t.Fatalf("%+v", c)
	}

	for _, tc := range []struct {
		name  string
		cp    []byte
		want  []Status
		unkn  int
		opts  Options
		match string
	}{
		{"one cosignature", withLines(cp, cosign(t, "w2", cp, now)), []Status{Missing, OK, Missing}, 0, Options{}, `witness quorum "g" not met: g has 1 of the 2`},
		{"same witness twice counts once", withLines(cp, cosign(t, "w1", cp, now), cosign(t, "w1", cp, now-1)), []Status{OK, Missing, Missing}, 0, Options{}, "w1: ok; w2: missing"},
		{"unknown witness", withLines(cp, cosign(t, "w1", cp, now), cosign(t, "stranger", cp, now)), []Status{OK, Missing, Missing}, 1, Options{}, "1 cosignature(s) by witnesses not in the policy"},
		{"other checkpoint", withLines(cp, cosign(t, "w1", cp, now), cosign(t, "w2", signedCheckpoint(t, testOrigin, 11), now)), []Status{OK, BadSignature, Missing}, 0, Options{}, "w2: bad signature"},
		{"stale", withLines(cp, cosign(t, "w1", cp, now), cosign(t, "w2", cp, now-7200)), []Status{OK, Stale, Missing}, 0, Options{MaxAge: time.Hour}, "w2: stale, cosigned"},
		{"future", withLines(cp, cosign(t, "w1", cp, now), cosign(t, "w2", cp, now+3600)), []Status{OK, Future, Missing}, 0, Options{MaxAge: time.Hour}, "dated in the future"},
		{"beyond int64", withLines(cp, cosign(t, "w1", cp, now), cosign(t, "w2", cp, 1<<63)), []Status{OK, Future, Missing}, 0, Options{}, "w2: dated in the future"},
	} {
		_, err := p.VerifyCheckpoint(tc.cp, tc.opts)
		var qe *QuorumError
		if !errors.As(err, &qe) {
			t.Errorf("%s: got %v", tc.name, err)
			continue
		}
		for i, r := range qe.Witnesses {
			if r.Status != tc.want[i] {
				t.Errorf("%s: %s is %v, want %v", tc.name, r.Witness, r.Status, tc.want[i])
			}
		}
		if qe.Unknown != tc.unkn || !strings.Contains(err.Error(), tc.match) {
			t.Errorf("%s: unknown %d, message %q", tc.name, qe.Unknown, err)
		}
	}
	// NoCosignatures: a log that gathers none, not witnesses that refused.
	for _, tc := range []struct {
		name string
		cp   []byte
		want bool
	}{
		{"bare checkpoint", cp, true},
		{"one witness", withLines(cp, cosign(t, "w2", cp, now)), false},
		{"a stranger only", withLines(cp, cosign(t, "stranger", cp, now)), false},
		{"another checkpoint's", withLines(cp, cosign(t, "w1", signedCheckpoint(t, testOrigin, 11), now)), false},
	} {
		_, err := p.VerifyCheckpoint(tc.cp, Options{})
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.NoCosignatures() != tc.want {
			t.Errorf("%s: NoCosignatures of %v, want %v", tc.name, err, tc.want)
		}
	}
	// within the skew is fine
	if _, err := p.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now+60), cosign(t, "w2", cp, now)), Options{MaxAge: time.Hour}); err != nil {
		t.Errorf("60 s ahead: %v", err)
	}
	// a stale line does not hide a fresh one by the same witness
	if _, err := p.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now-9000), cosign(t, "w1", cp, now), cosign(t, "w2", cp, now)), Options{MaxAge: time.Hour}); err != nil {
		t.Errorf("stale then fresh: %v", err)
	}
}

func TestVerifyCheckpointNestedAndSingle(t *testing.T) {
	now := uint64(time.Now().Unix())
	cp := signedCheckpoint(t, testOrigin, 3)
	p := policy3(t, "group b any w2 w3\ngroup top all w1 b\nquorum top\n")
	_, err := p.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now)), Options{})
	var qe *QuorumError
	if !errors.As(err, &qe) || len(qe.Groups) != 2 || qe.Groups[0] != (GroupResult{"b", 0, 1}) || qe.Groups[1] != (GroupResult{"top", 1, 2}) {
		t.Fatalf("%v", err)
	}
	if _, err := p.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now), cosign(t, "w3", cp, now)), Options{}); err != nil {
		t.Fatal(err)
	}
	single := policy3(t, "quorum w2\n")
	_, err = single.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now)), Options{})
	if !errors.As(err, &qe) || qe.Groups[0] != (GroupResult{"w2", 0, 1}) || len(qe.Witnesses) != 1 {
		t.Fatalf("%v %+v", err, qe)
	}
	none := policy3(t, "quorum none\n")
	c, err := none.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now)), Options{})
	if err != nil || len(c.Cosignatures) != 1 {
		t.Fatalf("quorum none: %v %+v", err, c)
	}
}

func TestVerifyCheckpointLogAndOrigin(t *testing.T) {
	p := policy3(t, "quorum none\n")
	for _, tc := range []struct {
		name string
		cp   []byte
		opts Options
		sig  bool
		want string
	}{
		{"other log key", signNote(t, string(flog.Checkpoint{Origin: testOrigin, Size: 1, Hash: root(1)}.Marshal()), edSigner(t, testOrigin, testKey("other"), algEd25519)), Options{}, true, "not signed by any log of the policy"},
		{"bad log signature", corruptSig(signedCheckpoint(t, testOrigin, 1)), Options{}, true, "invalid signature by log key"},
		{"origin differs from key name", signNote(t, string(flog.Checkpoint{Origin: "evil", Size: 1, Hash: root(1)}.Marshal()), logSigner(t, testOrigin)), Options{}, false, "origin is not the log key's name"},
		{"explicit origin", signedCheckpoint(t, testOrigin, 1), Options{Origin: "something else"}, false, `origin is not something else`},
		{"leading zero size", signNote(t, testOrigin+"\n01\n"+base64.StdEncoding.EncodeToString(root(1))+"\n", logSigner(t, testOrigin)), Options{}, false, "non-canonical"},
		{"short root", signNote(t, testOrigin+"\n1\nAAAA\n", logSigner(t, testOrigin)), Options{}, false, "root hash of 3 bytes"},
		{"not a note", []byte("hello\n"), Options{}, false, "malformed note"},
		{"too big", make([]byte, MaxCheckpointSize+1), Options{}, false, "larger than"},
	} {
		_, err := p.VerifyCheckpoint(tc.cp, tc.opts)
		var ce *CheckpointError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrLogSignature) != tc.sig {
			t.Errorf("%s: got %v, want %q (log signature error %v)", tc.name, err, tc.want, tc.sig)
		}
	}
	c, err := p.VerifyCheckpoint(signedCheckpoint(t, testOrigin, 2, "Timestamp: 123", "other"), Options{Origin: testOrigin})
	if err != nil || len(c.Extensions) != 2 || c.Extensions[0] != "Timestamp: 123" {
		t.Fatalf("extensions: %v %+v", err, c)
	}
}

func corruptSig(n []byte) []byte {
	s := string(n)
	i := strings.LastIndex(s, " ")
	b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(s[i+1:]))
	b[len(b)-1] ^= 1
	return []byte(s[:i+1] + base64.StdEncoding.EncodeToString(b) + "\n")
}

// Rekor v1 checkpoints: ECDSA key named after the host, origin
// "<host> - <tree ID>".
func TestVerifyCheckpointRekorV1(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	vkey, err := RekorV1VKey("rekor.example", der)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte("log " + vkey + "\nwitness w1 " + witVKey(t, "w1") + "\nquorum w1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Logs[0].KeyHash != sha256.Sum256(der) || p.Logs[0].Ed25519() != nil {
		t.Fatalf("%+v", p.Logs[0])
	}
	ecSign := func(origin string) []byte {
		body := string(flog.Checkpoint{Origin: origin, Size: 4, Hash: root(4)}.Marshal())
		h := sha256.Sum256([]byte(body))
		sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		id := sha256.Sum256(der)
		return []byte(body + "\n— rekor.example " + base64.StdEncoding.EncodeToString(append(id[:4], sig...)) + "\n")
	}
	cp := ecSign("rekor.example - 1193050959916656506")
	now := uint64(time.Now().Unix())
	c, err := p.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now)), Options{})
	if err != nil || c.Size != 4 || len(c.Cosignatures) != 1 {
		t.Fatalf("%v %+v", err, c)
	}
	for _, bad := range []string{"rekor.example", "rekor.example - ", "rekor.example - 12a", "other - 1"} {
		cp := ecSign(bad)
		if _, err := p.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now)), Options{}); err == nil {
			t.Errorf("origin %q accepted", bad)
		}
	}
	if _, err := p.VerifyCheckpoint(withLines(cp, cosign(t, "w1", cp, now)), Options{Origin: "rekor.example - 1"}); err == nil {
		t.Error("pinned tree ID not enforced")
	}
}

func TestCheckQuorumByKeyHash(t *testing.T) {
	p := policy3(t, "group g 2 w1 w2 w3\nquorum g\n")
	cp := signedCheckpoint(t, testOrigin, 5)
	text, _, _ := strings.Cut(string(cp), "\n\n")
	text += "\n"
	now := uint64(time.Now().Unix())
	cs := func(name string, ts uint64) Cosignature {
		line := cosign(t, name, cp, ts)
		raw, _ := base64.StdEncoding.DecodeString(strings.Fields(line)[2])
		c := Cosignature{KeyHash: sha256.Sum256(pubOf(name)), Time: ts}
		copy(c.Signature[:], raw[12:])
		return c
	}
	got, err := p.CheckQuorum([]byte(text), []Cosignature{cs("w1", now), cs("w2", now)}, Options{})
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %+v", err, got)
	}
	bad := cs("w2", now)
	bad.Time++ // the timestamp is signed
	_, err = p.CheckQuorum([]byte(text), []Cosignature{cs("w1", now), bad, cs("stranger", now)}, Options{})
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Witnesses[1].Status != BadSignature || qe.Unknown != 1 {
		t.Fatalf("%v", err)
	}
}
