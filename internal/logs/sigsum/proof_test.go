package sigsum

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/proof"
	"sigsum.org/sigsum-go/pkg/requests"
	"sigsum.org/sigsum-go/pkg/types"

	"github.com/bintrans/bintrans/internal/testkit/sigsumlog"
	"github.com/bintrans/bintrans/internal/witness"
)

func key(label string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(label))
	return ed25519.NewKeyFromSeed(s[:])
}

// fixture is a hermetic proof: a sigsumlog tree of n leaves (no witness
// processes) whose tree head is cosigned by hand by witnesses w1..w3 at ts.
type fixture struct {
	policy *witness.Policy
	pkgs   [][32]byte
	key    ed25519.PrivateKey
	proofs [][]byte
}

func newFixture(t testing.TB, n int, ts uint64) *fixture {
	t.Helper()
	l, err := sigsumlog.New(key("log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{key: key("transparency")}
	var signer scrypto.PrivateKey
	copy(signer[:], f.key.Seed())
	s := scrypto.NewEd25519Signer(&signer)
	for i := 0; i < n; i++ {
		m := sha256.Sum256([]byte(fmt.Sprint("pkg", i)))
		f.pkgs = append(f.pkgs, m)
		sig, err := SignLeaf(f.key, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.AddLeaf(context.Background(), requests.Leaf{Message: m, Signature: sig, PublicKey: s.Public()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sequence(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	cth, _ := l.GetTreeHead(context.Background())
	text := fmt.Sprintf("log %x\n", l.PublicKey())
	for i := 1; i <= 3; i++ {
		wk := key(fmt.Sprint("w", i))
		var seed scrypto.PrivateKey
		copy(seed[:], wk.Seed())
		ws := scrypto.NewEd25519Signer(&seed)
		cs, err := cth.TreeHead.Cosign(ws, l.Origin(), ts)
		if err != nil {
			t.Fatal(err)
		}
		cth.Cosignatures[scrypto.HashBytes(wk.Public().(ed25519.PublicKey))] = cs
		text += fmt.Sprintf("witness w%d %x\n", i, wk.Public())
	}
	if f.policy, err = witness.Parse([]byte(text + "group g 2 w1 w2 w3\nquorum g\n")); err != nil {
		t.Fatal(err)
	}
	logPub := l.PublicKey()
	for i, m := range f.pkgs {
		checksum := scrypto.Hash(Checksum(m))
		sig, _ := SignLeaf(f.key, m)
		leaf := types.Leaf{Checksum: checksum, Signature: sig, KeyHash: scrypto.HashBytes(f.key.Public().(ed25519.PublicKey))}
		pr := proof.SigsumProof{LogKeyHash: scrypto.HashBytes(logPub), Leaf: proof.NewShortLeaf(&leaf), TreeHead: cth}
		if cth.Size > 1 {
			if pr.Inclusion, err = l.GetInclusionProof(context.Background(), requests.InclusionProof{Size: cth.Size, LeafHash: leaf.ToHash()}); err != nil {
				t.Fatal(err)
			}
		}
		if pr.Inclusion.LeafIndex != uint64(i) {
			t.Fatalf("leaf %d at %d", i, pr.Inclusion.LeafIndex)
		}
		b, err := marshal(&pr)
		if err != nil {
			t.Fatal(err)
		}
		f.proofs = append(f.proofs, b)
	}
	return f
}

func (f *fixture) pub() []ed25519.PublicKey {
	return []ed25519.PublicKey{f.key.Public().(ed25519.PublicKey)}
}

func TestSignLeafIsSigsumLeaf(t *testing.T) {
	k := key("transparency")
	m := sha256.Sum256([]byte("pkg"))
	sig, err := SignLeaf(k, m)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("sigsum.org/v1/tree-leaf\x00")
	c := Checksum(m)
	msg = append(msg, c[:]...)
	if len(msg) != 56 || !ed25519.Verify(k.Public().(ed25519.PublicKey), msg, sig[:]) {
		t.Fatal("not Ed25519 over the Sigsum leaf namespace and sha256(sha256(package))")
	}
	var pub scrypto.PublicKey
	copy(pub[:], k.Public().(ed25519.PublicKey))
	if !types.VerifyLeafMessage(&pub, m[:], (*scrypto.Signature)(&sig)) {
		t.Fatal("sigsum-go disagrees")
	}
	if _, err := SignLeaf(k[:10], m); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestVerifyFixture(t *testing.T) {
	now := uint64(time.Now().Unix())
	for _, n := range []int{1, 2, 5} {
		f := newFixture(t, n, now)
		v, err := NewVerifier(f.policy, f.pub(), witness.Options{MaxAge: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range f.proofs {
			r, err := v.Verify(p, f.pkgs[i])
			if err != nil {
				t.Fatalf("n=%d proof %d: %v\n%s", n, i, err, p)
			}
			if r.LeafIndex != uint64(i) || r.TreeSize != uint64(n) || len(r.Cosignatures) != 3 {
				t.Fatalf("%+v", r)
			}
			kh, size, idx, err := ParseProof(p)
			if err != nil || kh != r.LogKeyHash || size != uint64(n) || idx != uint64(i) {
				t.Fatalf("ParseProof: %v", err)
			}
		}
	}
}

// Proof files are deterministic: cosignature lines sorted by key hash.
func TestMarshalDeterministic(t *testing.T) {
	f := newFixture(t, 3, 1700000000)
	for i := 0; i < 20; i++ {
		var pr proof.SigsumProof
		if err := pr.FromASCII(bytes.NewReader(f.proofs[1])); err != nil {
			t.Fatal(err)
		}
		b, _ := marshal(&pr)
		if !bytes.Equal(b, f.proofs[1]) {
			t.Fatalf("marshal differs:\n%s\n%s", b, f.proofs[1])
		}
	}
	var back proof.SigsumProof
	if err := back.FromASCII(bytes.NewReader(f.proofs[1])); err != nil {
		t.Fatalf("sigsum-go does not read our file: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := uint64(time.Now().Unix())
	f := newFixture(t, 4, now)
	v, err := NewVerifier(f.policy, f.pub(), witness.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p := string(f.proofs[1])
	lines := strings.Split(p, "\n")
	edit := func(prefix, repl string) []byte {
		out := append([]string(nil), lines...)
		for i, l := range out {
			if strings.HasPrefix(l, prefix) {
				out[i] = repl
				return []byte(strings.Join(out, "\n"))
			}
		}
		t.Fatalf("no line %q", prefix)
		return nil
	}
	drop := func(n int) []byte { // drop the first n cosignature lines
		var out []string
		for _, l := range lines {
			if strings.HasPrefix(l, "cosignature=") && n > 0 {
				n--
				continue
			}
			out = append(out, l)
		}
		return []byte(strings.Join(out, "\n"))
	}
	flip := func(s string) string { // change the last hex digit
		b := []byte(s)
		if b[len(b)-1] == '0' {
			b[len(b)-1] = '1'
		} else {
			b[len(b)-1] = '0'
		}
		return string(b)
	}
	sigLine := ""
	rootLine := ""
	nodeLine := ""
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "signature="):
			sigLine = l
		case strings.HasPrefix(l, "root_hash="):
			rootLine = l
		case strings.HasPrefix(l, "node_hash=") && nodeLine == "":
			nodeLine = l
		}
	}
	var qe *witness.QuorumError
	for _, c := range []struct {
		name string
		b    []byte
		sha  [32]byte
		want func(error) bool
	}{
		{"other package", f.proofs[1], f.pkgs[2], func(e error) bool { return errors.Is(e, ErrOtherPackage) }},
		{"two cosignatures missing", drop(2), f.pkgs[1], func(e error) bool { return errors.As(e, &qe) && qe.Groups[0].Have == 1 }},
		{"one missing is fine", drop(1), f.pkgs[1], func(e error) bool { return e == nil }},
		{"bad log signature", edit("signature=", flip(sigLine)), f.pkgs[1], func(e error) bool { return strings.Contains(e.Error(), "invalid log signature") }},
		{"other root", edit("root_hash=", flip(rootLine)), f.pkgs[1], func(e error) bool { return strings.Contains(e.Error(), "invalid log signature") }},
		{"bad inclusion path", edit("node_hash=", flip(nodeLine)), f.pkgs[1], func(e error) bool { return strings.Contains(e.Error(), "inclusion proof") }},
		{"leaf index beyond size", edit("leaf_index=", "leaf_index=4"), f.pkgs[1], func(e error) bool { return strings.Contains(e.Error(), "beyond tree size") }},
		{"wrong leaf index", edit("leaf_index=", "leaf_index=2"), f.pkgs[1], func(e error) bool { return strings.Contains(e.Error(), "inclusion proof") }},
		{"trailing data", append(append([]byte(nil), f.proofs[1]...), "x=1\n"...), f.pkgs[1], func(e error) bool { return strings.Contains(e.Error(), "malformed") }},
		{"empty", nil, f.pkgs[1], func(e error) bool { return strings.Contains(e.Error(), "malformed") }},
		{"too large", make([]byte, MaxProofSize+1), f.pkgs[1], func(e error) bool { return strings.Contains(e.Error(), "larger than") }},
	} {
		_, err := v.Verify(c.b, c.sha)
		if !c.want(err) {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var pe *ProofError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("%s: %T is not a *ProofError", c.name, err)
		}
	}
	if _, err := NewVerifier(f.policy, nil, witness.Options{}); err == nil {
		t.Error("verifier without keys")
	}
}

// Answers beyond MaxResponse fail instead of being read whole.
func TestBoundedResponses(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), MaxResponse+10))
	}))
	defer ts.Close()
	resp, err := bounded(nil).Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n > MaxResponse {
		t.Fatalf("read %d bytes, err %v", n, err)
	}
}

func FuzzVerifyProof(f *testing.F) {
	fx := newFixture(f, 5, 1700000000)
	v, err := NewVerifier(fx.policy, fx.pub(), witness.Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range fx.proofs {
		f.Add(p)
	}
	f.Add(newFixture(f, 1, 1700000000).proofs[0])
	f.Add([]byte("version=1\nlog=00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := v.Verify(b, fx.pkgs[2])
		if err != nil {
			return
		}
		if r.LeafIndex != 2 || r.TreeSize != 5 || len(r.Cosignatures) < 2 {
			t.Fatalf("accepted %+v", r)
		}
	})
}
