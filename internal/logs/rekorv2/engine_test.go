package rekorv2_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/testkit/enginetest"
	"github.com/bintrans/bintrans/internal/testkit/memlog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/internal/testkit/tilelog"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// The engine (verify.VerifyAll) over the Rekor v2 kind: bundles verified
// offline, and online against tiles served over HTTP (tilelog), the
// current checkpoint and one consistency proof per older tree head, with
// and without a witness quorum.

const v2Origin = "rekor-v2.test/engine"

// v2Repo is n packages signed by one transparency key, logged in a tile
// log as hashedrekord entries, their `.t` and bundles in a Source.
type v2Repo struct {
	log   *tilelog.Log
	lv    *rekorv2.LogVerifier
	sk    *minisign.PrivateKey
	pk    verify.PublicKey
	src   *enginetest.Source
	store *enginetest.Store
	pkgs  []*memlog.Package
	// cosign, when set, adds witness cosignatures to every checkpoint a
	// bundle is made with (and the test's online client serves).
	cosign func(note []byte) []byte
}

func newV2Repo(t *testing.T, n int) *v2Repo {
	t.Helper()
	r := &v2Repo{log: tilelog.New(t, v2Origin), src: enginetest.NewSource(), store: &enginetest.Store{}}
	var err error
	if r.lv, err = rekorv2.ParseLogKey([]byte(r.log.VKey), ""); err != nil {
		t.Fatal(err)
	}
	r.sk, r.pk = memlog.Key(t, 3)
	r.add(t, n)
	return r
}

// add logs n more packages in one publish (one tree head for all their
// bundles, as a settled sign run).
func (r *v2Repo) add(t *testing.T, n int) {
	t.Helper()
	var sigs [][64]byte
	var first uint64
	for i := range n {
		p := memlog.NewPackage(t, r.sk, len(r.pkgs))
		hr, err := rekorv2.Sign(enginetest.Ed25519(r.sk), []byte(p.SHA))
		if err != nil {
			t.Fatal(err)
		}
		idx := r.log.Append(hr.Body())
		if i == 0 {
			first = idx
		}
		sigs = append(sigs, hr.Signature)
		r.pkgs = append(r.pkgs, p)
	}
	cp := r.log.Publish()
	if r.cosign != nil {
		cp = r.cosign(cp)
	}
	for i := range n {
		p := r.pkgs[len(r.pkgs)-n+i]
		r.src.Set(p.Filename, p.T, r.bundle(t, first+uint64(i), r.log.Size(), cp, sigs[i]))
	}
}

func (r *v2Repo) bundle(t *testing.T, index, size uint64, cp []byte, sig [64]byte) []byte {
	t.Helper()
	b, err := (&rekorv2.Bundle{Index: index, Hashes: r.log.InclusionProof(index, size), Checkpoint: cp, Signature: sig}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *v2Repo) arts() []verify.Artifact {
	a := make([]verify.Artifact, len(r.pkgs))
	for i, p := range r.pkgs {
		a[i] = p.Artifact(true)
	}
	return a
}

// online is the engine's online side: the tiles over HTTP, and, with
// cosign, the checkpoint as a witnessed log serves it.
func (r *v2Repo) online(t *testing.T) verify.LogClient {
	t.Helper()
	rd, err := rekorv2.NewReader(r.log.URL, nil, r.lv, rekorv2.WithReadRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if r.cosign == nil {
		return rekorv2.NewOnline(rd)
	}
	return cosigned{rekorv2.NewOnline(rd), r.cosign}
}

type cosigned struct {
	*rekorv2.Online
	cosign func([]byte) []byte
}

func (c cosigned) Checkpoint(ctx context.Context) ([]byte, error) {
	b, err := c.Online.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return c.cosign(b), nil
}

func (r *v2Repo) run(t *testing.T, p verify.Policy) ([]verify.Result, error) {
	t.Helper()
	p.Keys, p.Log = []verify.PublicKey{r.pk}, rekorv2.NewKindVerifier(r.lv)
	var lc verify.LogClient
	if !p.Offline {
		lc = r.online(t)
	}
	v, err := verify.NewVerifier(p, r.src, lc, r.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return v.VerifyAll(ctx, r.arts())
}

func wantStatuses(t *testing.T, res []verify.Result, want map[string]verify.Status) {
	t.Helper()
	for _, x := range res {
		w, ok := want[x.Artifact.Filename]
		if !ok {
			w = verify.StatusOK
		}
		if x.Status != w {
			t.Errorf("%s: %s (%v), want %s", x.Artifact.Filename, x.Status, x.Err, w)
		}
		if x.OK() && (x.Entry == nil || len(x.Entry.UUID) != 64) {
			t.Errorf("%s: ok without the entry: %+v", x.Artifact.Filename, x.Entry)
		}
	}
}

// TestEngineRekorV2Offline: a batch verifies from Rekor v2 bundles alone;
// each way a bundle can be wrong is its package's verdict.
func TestEngineRekorV2Offline(t *testing.T) {
	r := newV2Repo(t, 8)
	before := r.log.Requests("")
	res, err := r.run(t, verify.Policy{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if n := r.log.Requests("") - before; n != 0 {
		t.Fatalf("offline run made %d requests", n)
	}

	ps := r.pkgs
	r.src.Bundles[ps[1].Filename] = r.src.Bundles[ps[2].Filename] // another package's
	delete(r.src.Bundles, ps[3].Filename)
	b := append([]byte(nil), r.src.Bundles[ps[4].Filename]...)
	b[len(b)/2] ^= 1
	r.src.Bundles[ps[4].Filename] = b
	other := memlog.NewPackage(t, r.sk, 99) // a bundle for another message
	hr, _ := rekorv2.Sign(enginetest.Ed25519(r.sk), []byte(other.SHA))
	idx := r.log.Append(hr.Body())
	cp := r.log.Publish()
	r.src.Bundles[ps[5].Filename] = r.bundle(t, idx, r.log.Size(), cp, hr.Signature)
	res, err = r.run(t, verify.Policy{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, map[string]verify.Status{
		ps[1].Filename: verify.StatusBundleInvalid, ps[3].Filename: verify.StatusMissingBundle,
		ps[4].Filename: verify.StatusBundleInvalid, ps[5].Filename: verify.StatusBundleInvalid,
	})
	var ve *rekorv2.VerifyError
	if !errors.As(res[5].Err, &ve) || ve.Step != rekorv2.StepSignature {
		t.Fatalf("bundle of another message: %v", res[5].Err)
	}
}

// TestEngineRekorV2Online: online costs the current checkpoint and one
// consistency proof per older tree head, read from authenticated tiles;
// no entry, no entry bundle. A log that forks or rolls back is a SECURITY
// ERROR with both tree heads, and nothing is stored.
func TestEngineRekorV2Online(t *testing.T) {
	r := newV2Repo(t, 8)
	res, err := r.run(t, verify.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if r.store.Stores != 1 {
		t.Fatalf("%d stores", r.store.Stores)
	}
	// The log grows by a second settled run: two older tree heads (8, and
	// 8 stored) → one proof; 12 is current.
	r.add(t, 4)
	r.log.Append([]byte("another writer's entry"))
	r.log.Publish()
	entries := r.log.Requests("/tile/entries")
	res, err = r.run(t, verify.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	if n := r.log.Requests("/tile/entries") - entries; n != 0 {
		t.Fatalf("%d entry bundles read", n)
	}
	cp, err := rekorv2.NewKindVerifier(r.lv).VerifyCheckpoint(r.store.CP)
	if err != nil || cp.Size != 13 {
		t.Fatalf("stored %v %v", cp, err)
	}

	stored := append([]byte(nil), r.store.CP...)
	for name, lie := range map[string]struct {
		lie    tilelog.Lie
		arg    uint64
		reason string
	}{
		"fork":     {tilelog.LieFork, 10, "different roots"},
		"rollback": {tilelog.LieRollback, 9, "ROLLBACK"},
	} {
		t.Run(name, func(t *testing.T) {
			r.log.SetLie(lie.lie, lie.arg)
			defer r.log.SetLie(tilelog.Honest, 0)
			res, err := r.run(t, verify.Policy{})
			var se *verify.SecurityError
			if !errors.As(err, &se) || !strings.Contains(se.Reason, lie.reason) || len(se.Old) == 0 || len(se.New) == 0 {
				t.Fatalf("err %v, want a SECURITY ERROR (%s)", err, lie.reason)
			}
			for _, x := range res {
				if x.Status != verify.StatusLogInconsistent {
					t.Errorf("%s: %s", x.Artifact.Filename, x.Status)
				}
			}
			if string(r.store.CP) != string(stored) {
				t.Fatal("stored checkpoint changed")
			}
		})
	}
}

// witnesses are cosigners of checkpoints (C2SP cosignature/v1).
type witnesses struct {
	names []string
	keys  []ed25519.PrivateKey
}

func newWitnesses(n int) *witnesses {
	w := &witnesses{}
	for i := range n {
		seed := sha256.Sum256([]byte(fmt.Sprint("witness ", i)))
		w.names = append(w.names, fmt.Sprintf("w%d.example", i))
		w.keys = append(w.keys, ed25519.NewKeyFromSeed(seed[:]))
	}
	return w
}

// policy requires k of the witnesses, for the log lv.
func (w *witnesses) policy(t *testing.T, k int, lv *rekorv2.LogVerifier) *witness.Policy {
	t.Helper()
	text := ""
	for i, name := range w.names {
		vk, err := witness.CosignatureVKey(name, w.keys[i].Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		text += fmt.Sprintf("witness %s %s\n", name, vk)
	}
	text += fmt.Sprintf("group g %d %s\nquorum g\n", k, strings.Join(w.names, " "))
	p, err := witness.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if p, err = p.WithLogs(lv.VerifierKey()); err != nil {
		t.Fatal(err)
	}
	return p
}

// cosigner adds the cosignatures of the first n witnesses to a note.
func (w *witnesses) cosigner(n int) func([]byte) []byte {
	return func(cp []byte) []byte {
		body, _, _ := strings.Cut(string(cp), "\n\n")
		body += "\n"
		ts := uint64(time.Now().Unix())
		out := string(cp)
		for i := range n {
			msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, body)
			h := sha256.Sum256(append([]byte(w.names[i]+"\n\x04"), w.keys[i].Public().(ed25519.PublicKey)...))
			sig := append(h[:4:4], binary.BigEndian.AppendUint64(nil, ts)...)
			sig = append(sig, ed25519.Sign(w.keys[i], []byte(msg))...)
			out += "\u2014 " + w.names[i] + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
		}
		return []byte(out)
	}
}

// TestEngineRekorV2Witnessed: with a 2-of-3 witness policy, offline every
// bundle's checkpoint needs the quorum; online the current checkpoint does
// (every other one is proven a prefix of it).
func TestEngineRekorV2Witnessed(t *testing.T) {
	w := newWitnesses(3)
	r := newV2Repo(t, 0)
	r.cosign = w.cosigner(2)
	r.add(t, 4)
	quorum := witness.Quorum{Policy: w.policy(t, 2, r.lv)}
	res, err := r.run(t, verify.Policy{Offline: true, Witnesses: quorum})
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
	res, err = r.run(t, verify.Policy{Witnesses: quorum})
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)

	// One cosignature short: offline, the new bundles are refused; online,
	// the current checkpoint is no usable view of the log.
	r.cosign = w.cosigner(1)
	r.add(t, 2)
	res, err = r.run(t, verify.Policy{Offline: true, Witnesses: quorum})
	if err != nil {
		t.Fatal(err)
	}
	var qe *witness.QuorumError
	for i, x := range res {
		if i < 4 {
			continue
		}
		if x.Status != verify.StatusBundleInvalid || !errors.As(x.Err, &qe) {
			t.Errorf("%s: %s (%v), want bundle-invalid for want of a quorum", x.Artifact.Filename, x.Status, x.Err)
		}
	}
	_, err = r.run(t, verify.Policy{Witnesses: quorum})
	var lu *verify.LogUnavailableError
	if !errors.As(err, &lu) || !errors.As(err, &qe) {
		t.Fatalf("online without the quorum: err %v", err)
	}
	// Without a policy the same batch verifies (no quorum is the default
	// for Rekor).
	res, err = r.run(t, verify.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses(t, res, nil)
}

// TestEngineRekorV2RealStack: the same against the local rekor-tiles
// (scripts/rekor-v2-stack): entries logged by the Writer, their bundles
// verified offline, then online from the tiles the stack serves.
func TestEngineRekorV2RealStack(t *testing.T) {
	s := testenv.RekorV2(t)
	key, err := os.ReadFile(s.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := rekorv2.ParseLogKey(key, s.Origin)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := rekorv2.NewReader(s.ReadURL, nil, lv)
	if err != nil {
		t.Fatal(err)
	}
	wr, err := rekorv2.NewWriter(s.URL, nil, lv, rekorv2.WithReader(rd))
	if err != nil {
		t.Fatal(err)
	}
	// A fresh transparency key: the log answers 409 for a repeat.
	_, edsk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk := &minisign.PrivateKey{SignatureAlgorithm: [2]byte{'E', 'd'}, ChecksumAlgorithm: [2]byte{'B', '2'}}
	copy(sk.SecretKey[:], edsk)
	rand.Read(sk.KeyId[:])
	mpk := sk.PublicKey()
	pk, err := verify.ParsePublicKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), mpk.KeyId[:]...), mpk.PublicKey[:]...)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := enginetest.NewSource()
	var arts []verify.Artifact
	var entries []*rekorv2.HashedRekord
	var pkgs []*memlog.Package
	for i := range 3 {
		p := memlog.NewPackage(t, sk, i)
		hr, err := rekorv2.Sign(edsk, []byte(p.SHA))
		if err != nil {
			t.Fatal(err)
		}
		pkgs, entries = append(pkgs, p), append(entries, hr)
		arts = append(arts, p.Artifact(true))
	}
	for i, r := range wr.AddAll(ctx, entries, 3) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		b, err := r.Logged.Bundle().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		src.Set(pkgs[i].Filename, pkgs[i].T, b)
	}
	store := &enginetest.Store{}
	for _, offline := range []bool{true, false} {
		var lc verify.LogClient
		if !offline {
			lc = rekorv2.NewOnline(rd)
		}
		v, err := verify.NewVerifier(verify.Policy{Keys: []verify.PublicKey{pk}, Log: rekorv2.NewKindVerifier(lv), Offline: offline}, src, lc, store, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.VerifyAll(ctx, arts)
		if err != nil {
			t.Fatalf("offline=%v: %v", offline, err)
		}
		wantStatuses(t, res, nil)
	}
	if store.Stores != 1 {
		t.Fatalf("%d checkpoints stored online", store.Stores)
	}
}
