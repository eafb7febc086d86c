package fakelog_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/jedisct1/go-minisign"
	"github.com/sigstore/rekor/pkg/generated/models"
	rekorverify "github.com/sigstore/rekor/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
)

// signer is a minisign key made in the test.
type signer struct {
	sk      minisign.PrivateKey
	pubFile []byte
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var s signer
	s.sk.SignatureAlgorithm = [2]byte{'E', 'd'}
	rand.Read(s.sk.KeyId[:])
	copy(s.sk.SecretKey[:], priv)
	raw := append(append([]byte("Ed"), s.sk.KeyId[:]...), pub...)
	s.pubFile = fmt.Appendf(nil, "untrusted comment: minisign public key %016X\n%s\n",
		binary.LittleEndian.Uint64(s.sk.KeyId[:]), base64.StdEncoding.EncodeToString(raw))
	return &s
}

func (s *signer) sign(t testing.TB, msg []byte) []byte {
	sig, err := s.sk.Sign(msg, minisign.SignOptions{TrustedComment: "pkg.pkg.tar.zst", Hashed: true})
	if err != nil {
		t.Fatal(err)
	}
	return sig.Encode()
}

func message(i int) []byte {
	h := sha256.Sum256([]byte("package " + strconv.Itoa(i) + time.Now().String()))
	return []byte(hex.EncodeToString(h[:]))
}

func client(t testing.TB, url string, opts ...rekorv1.Option) *rekorv1.Client {
	t.Helper()
	return clientWithTimeout(t, url, 20*time.Second, opts...)
}

func clientWithTimeout(t testing.TB, url string, timeout time.Duration, opts ...rekorv1.Option) *rekorv1.Client {
	t.Helper()
	hc, err := httpclient.New(httpclient.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	c, err := rekorv1.New(url, hc, append([]rekorv1.Option{rekorv1.WithBackoff(time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// anon converts back to Rekor's model, to check with Rekor's own verifier.
func anon(e *rekorv1.Entry) *models.LogEntryAnon {
	p := e.Proof
	hashes := make([]string, len(p.Hashes))
	for i, h := range p.Hashes {
		hashes[i] = hex.EncodeToString(h)
	}
	checkpoint, root := string(p.Checkpoint), hex.EncodeToString(p.RootHash)
	return &models.LogEntryAnon{
		Body:           base64.StdEncoding.EncodeToString(e.Body),
		IntegratedTime: &e.IntegratedTime,
		LogID:          &e.LogID,
		LogIndex:       &e.LogIndex,
		Verification: &models.LogEntryAnonVerification{
			SignedEntryTimestamp: strfmt.Base64(e.SET),
			InclusionProof: &models.InclusionProof{
				Checkpoint: &checkpoint, Hashes: hashes, LogIndex: &p.LogIndex, RootHash: &root, TreeSize: &p.TreeSize,
			},
		},
	}
}

func verifier(t testing.TB, pemKey []byte) signature.Verifier {
	t.Helper()
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func note(t testing.TB, cp []byte) (uint64, []byte) {
	t.Helper()
	lines := strings.Split(string(cp), "\n")
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("checkpoint %q", cp)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	return size, root
}

// populate uploads n real minisign rekords through the client.
func populate(t testing.TB, c *rekorv1.Client, s *signer, n int) []*rekorv1.Entry {
	t.Helper()
	var out []*rekorv1.Entry
	for i := range n {
		m := message(i)
		e, err := c.Upload(ctx(t), s.sign(t, m), s.pubFile, m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestHonestLogPassesRekorsOwnVerifier(t *testing.T) {
	l := fakelog.New(t)
	c := client(t, l.URL)
	s := newSigner(t)
	ents := populate(t, c, s, 25)
	v := verifier(t, l.KeyPEM)
	bg := ctx(t)

	// Upload answers, and fresh reads, verify with rekor's VerifyLogEntry
	// (inclusion + checkpoint signature + SET) and with merkle directly.
	idx := make([]int64, len(ents))
	for i, e := range ents {
		idx[i] = e.LogIndex
		if err := rekorverify.VerifyLogEntry(bg, anon(e), v); err != nil {
			t.Fatalf("upload answer %d: rekor's verifier: %v", i, err)
		}
		if e.UUID != l.UUID(e.Body) || e.LogIndex != int64(i) {
			t.Errorf("entry %d: uuid %s index %d", i, e.UUID, e.LogIndex)
		}
	}
	got, err := c.EntriesByIndex(bg, idx)
	if err != nil || len(got) != len(ents) {
		t.Fatalf("EntriesByIndex: %d, %v", len(got), err)
	}
	size := uint64(l.Size())
	for i, e := range got {
		if err := rekorverify.VerifyLogEntry(bg, anon(e), v); err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
		ip := e.Proof
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), size, rfc6962.DefaultHasher.HashLeaf(e.Body), ip.Hashes, ip.RootHash); err != nil {
			t.Errorf("entry %d: merkle: %v", i, err)
		}
	}
	byUUID, err := c.EntryByUUID(bg, ents[3].UUID[16:])
	if err != nil || !bytes.Equal(byUUID.Body, ents[3].Body) {
		t.Fatalf("EntryByUUID: %v", err)
	}

	// Checkpoints: consistency from every earlier size verifies.
	cp, err := c.Checkpoint(bg)
	if err != nil {
		t.Fatal(err)
	}
	n2, root2 := note(t, cp)
	for n1 := int64(1); n1 <= int64(n2); n1++ {
		_, root1 := note(t, l.CheckpointAt(n1))
		p, err := c.ConsistencyProof(bg, n1, int64(n2))
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(n1), n2, p, root1, root2); err != nil {
			t.Errorf("consistency %d→%d: %v", n1, n2, err)
		}
	}
	if pem, err := c.PublicKey(bg); err != nil || !bytes.Equal(pem, l.KeyPEM) {
		t.Errorf("PublicKey: %v", err)
	}

	// Search by hash and by key.
	h := sha256.Sum256(message(-1))
	if r, err := c.SearchByHash(bg, hex.EncodeToString(h[:])); err != nil || len(r) != 0 {
		t.Errorf("search unknown hash: %v %v", r, err)
	}
	keyed, err := c.SearchByPublicKey(bg, s.pubFile)
	if err != nil || len(keyed) != len(ents) {
		t.Errorf("SearchByPublicKey: %d results, %v", len(keyed), err)
	}
	var b struct {
		Spec struct {
			Data struct {
				Hash struct{ Value string }
			}
		}
	}
	if err := json.Unmarshal(ents[7].Body, &b); err != nil {
		t.Fatal(err)
	}
	if r, err := c.SearchByHash(bg, b.Spec.Data.Hash.Value); err != nil || len(r) != 1 || r[0] != ents[7].UUID {
		t.Errorf("SearchByHash: %v, %v; want %s", r, err, ents[7].UUID)
	}
}

func TestUploadSemantics(t *testing.T) {
	l := fakelog.New(t)
	c := client(t, l.URL)
	s := newSigner(t)
	m := message(1)
	tf := s.sign(t, m)
	e, err := c.Upload(ctx(t), tf, s.pubFile, m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Upload(ctx(t), tf, s.pubFile, m)
	if err != nil || again.UUID != e.UUID || l.Size() != 1 {
		t.Errorf("duplicate: %v, %v, size %d; want the 409 followed to the same entry", again, err, l.Size())
	}
	_, err = c.Upload(ctx(t), tf, s.pubFile, message(2))
	var se *httpclient.StatusError
	if !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Snippet, "failed to verify signature") {
		t.Errorf("bad signature: %v", err)
	}
	if l.Size() != 1 {
		t.Errorf("a rejected upload was logged")
	}
}

// TestCanonicalBodyMatchesRealRekor uploads the same signature to the real
// log and to fakelog: the stored bodies (hence UUIDs) must be identical.
func TestCanonicalBodyMatchesRealRekor(t *testing.T) {
	url, _ := testenv.Rekor(t)
	real := client(t, url, rekorv1.WithRetries(0))
	l := fakelog.New(t)
	fake := client(t, l.URL)
	s := newSigner(t)
	for _, hashed := range []bool{true, false} {
		m := message(3)
		sig, err := s.sk.Sign(m, minisign.SignOptions{TrustedComment: "x.pkg.tar.zst", Hashed: hashed})
		if err != nil {
			t.Fatal(err)
		}
		re, err := real.Upload(ctx(t), sig.Encode(), s.pubFile, m)
		if err != nil {
			t.Fatal(err)
		}
		fe, err := fake.Upload(ctx(t), sig.Encode(), s.pubFile, m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(re.Body, fe.Body) || re.UUID[16:] != fe.UUID[16:] {
			t.Errorf("hashed=%v: bodies differ:\nreal: %s\nfake: %s", hashed, re.Body, fe.Body)
		}
	}
}

func TestKeyPEMMatchesFormat(t *testing.T) {
	l := fakelog.New(t)
	if _, err := cryptoutils.UnmarshalPEMToPublicKey(l.KeyPEM); err != nil {
		t.Fatal(err)
	}
	der, _ := cryptoutils.MarshalPublicKeyToDER(l.Key.Public())
	id := sha256.Sum256(der)
	if l.LogID != hex.EncodeToString(id[:]) {
		t.Error("LogID is not sha256 of the DER key")
	}
	if !strings.HasPrefix(l.Origin, fakelog.Hostname+" - ") {
		t.Errorf("origin %q", l.Origin)
	}
	// Add is honest and self-contained too.
	e := l.Add([]byte(`{"not":"a rekord"}`))
	if err := rekorverify.VerifyLogEntry(context.Background(), anon(e), verifier(t, l.KeyPEM)); err != nil {
		t.Error(err)
	}
	if string(l.Entry(0).Body) != `{"not":"a rekord"}` || l.Entry(1) != nil {
		t.Error("Entry")
	}
}
