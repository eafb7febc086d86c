package rekorv1

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

func realLog(t testing.TB) (*Client, string) {
	t.Helper()
	url, keyPath := testenv.Rekor(t)
	hc, err := httpclient.New(httpclient.Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	return c, keyPath
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// leafHex is the RFC 6962 leaf hash of a canonical body: the UUID suffix.
func leafHex(body []byte) string { return hex.EncodeToString(rfc6962.DefaultHasher.HashLeaf(body)) }

// parseNote reads size and root of a checkpoint note (unverified: the
// engine verifies signatures; here we only check the client's plumbing).
func parseNote(t testing.TB, note []byte) (uint64, []byte) {
	t.Helper()
	lines := strings.Split(string(note), "\n")
	if len(lines) < 3 {
		t.Fatalf("checkpoint %q", note)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	return size, root
}

func checkInclusion(t testing.TB, e *Entry) {
	t.Helper()
	ip := e.Proof
	hashes, root := ip.Hashes, ip.RootHash
	leaf := rfc6962.DefaultHasher.HashLeaf(e.Body)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(ip.LogIndex), uint64(ip.TreeSize), leaf, hashes, root); err != nil {
		t.Errorf("entry %d: inclusion proof does not verify: %v", e.LogIndex, err)
	}
	size, cpRoot := parseNote(t, ip.Checkpoint)
	if int64(size) != ip.TreeSize || !bytes.Equal(cpRoot, root) {
		t.Errorf("entry %d: checkpoint (%d, %x) does not match proof (%d, %x)", e.LogIndex, size, cpRoot, ip.TreeSize, root)
	}
}

func TestRealUploadGetSearch(t *testing.T) {
	c, keyPath := realLog(t)
	ctx := ctxT(t)
	k := newTestKey(t)
	msg := randomMessage(t)
	tfile := k.sign(t, msg, "foo-1.0-1-x86_64.pkg.tar.zst")

	e, err := c.Upload(ctx, tfile, k.pubFile, msg)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if len(e.UUID) != 80 || !strings.HasSuffix(e.UUID, leafHex(e.Body)) {
		t.Errorf("uuid %s is not tree id + leaf hash %s", e.UUID, leafHex(e.Body))
	}
	if e.Proof == nil || len(e.SET) == 0 {
		t.Fatalf("upload answer without proof or SET: %+v", e)
	}
	checkInclusion(t, e)
	msgHash := sha256.Sum256(msg)
	if !bytes.Contains(e.Body, []byte(hex.EncodeToString(msgHash[:]))) {
		t.Errorf("body does not hold sha256(message): %s", e.Body)
	}

	// Same signature again: 409, the same entry comes back.
	again, err := c.Upload(ctx, tfile, k.pubFile, msg)
	if err != nil {
		t.Fatalf("re-upload (409 path): %v", err)
	}
	if again.UUID != e.UUID || again.LogIndex != e.LogIndex || !bytes.Equal(again.Body, e.Body) {
		t.Errorf("409 gave %s/%d, want %s/%d", again.UUID, again.LogIndex, e.UUID, e.LogIndex)
	}
	// Another trusted comment signs to the same signature line: same entry.
	other, err := c.Upload(ctx, k.sign(t, msg, "evil-name.pkg.tar.zst"), k.pubFile, msg)
	if err != nil || other.UUID != e.UUID {
		t.Errorf("re-signed with another trusted comment: %v, uuid %v; want 409 to %s", err, other, e.UUID)
	}

	// A signature that does not verify: 400 with Rekor's message.
	_, err = c.Upload(ctx, tfile, k.pubFile, randomMessage(t))
	var se *httpclient.StatusError
	if !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Snippet, "verify signature") {
		t.Errorf("bad signature: %v, want 400 failed to verify signature", err)
	}

	for _, id := range []string{e.UUID, e.UUID[16:], strings.ToUpper(e.UUID)} {
		got, err := c.EntryByUUID(ctx, id)
		if err != nil || got.LogIndex != e.LogIndex || !bytes.Equal(got.Body, e.Body) {
			t.Errorf("EntryByUUID(%s): %v, %+v", id, err, got)
		}
	}
	if _, err := c.EntryByUUID(ctx, leafHex([]byte("no such entry"))); !errors.Is(err, verify.ErrNotFound) {
		t.Errorf("unknown uuid: %v, want ErrNotFound", err)
	}

	// The search index is written asynchronously: allow it a moment.
	var found []string
	for i := 0; i < 50; i++ {
		if found, err = c.SearchByHash(ctx, hex.EncodeToString(msgHash[:])); err != nil || len(found) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !slices.Equal(found, []string{e.UUID}) {
		t.Errorf("SearchByHash: %v, %v; want [%s]", found, err, e.UUID)
	}
	if found, err := c.SearchByHash(ctx, leafHex([]byte("nothing"))); err != nil || len(found) != 0 {
		t.Errorf("SearchByHash(unknown): %v, %v", found, err)
	}

	pem, err := c.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(pem)) != strings.TrimSpace(string(want)) {
		t.Errorf("PublicKey:\n%s\nwant the stack's key:\n%s", pem, want)
	}
}

func TestRealBatchSearchByKeyCheckpointConsistency(t *testing.T) {
	c, _ := realLog(t)
	ctx := ctxT(t)
	k := newTestKey(t)

	info1, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size1, root1 := parseNote(t, info1.Checkpoint)
	if int64(size1) != info1.TreeSize || !bytes.Equal(root1, info1.RootHash) {
		t.Errorf("log info %d/%x disagrees with its checkpoint %d/%x", info1.TreeSize, info1.RootHash, size1, root1)
	}

	const n = 23 // three retrieve batches
	ents := make([]*Entry, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			msg := randomMessage(t)
			ents[i], errs[i] = c.Upload(ctx, k.sign(t, msg, fmt.Sprintf("p%d-1-1-any.pkg.tar.zst", i)), k.pubFile, msg)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var idx []int64
	var uuids []string
	for _, e := range ents {
		idx = append(idx, e.LogIndex)
		uuids = append(uuids, e.UUID)
	}
	// Duplicates and an index past the end are tolerated.
	ask := append(slices.Clone(idx), idx[0], idx[3], 1<<40)
	got, err := c.EntriesByIndex(ctx, ask)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("EntriesByIndex: %d entries, want %d", len(got), n)
	}
	for _, e := range ents {
		g := got[e.LogIndex]
		if g == nil || g.UUID != e.UUID || !bytes.Equal(g.Body, e.Body) {
			t.Errorf("index %d: got %+v, want uuid %s", e.LogIndex, g, e.UUID)
			continue
		}
		checkInclusion(t, g)
	}

	var byKey []string
	for i := 0; i < 50; i++ {
		if byKey, err = c.SearchByPublicKey(ctx, k.pubFile); err != nil || len(byKey) >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(uuids)
	if err != nil || !slices.Equal(byKey, uuids) {
		t.Errorf("SearchByPublicKey: %d results (%v), want the %d uploaded", len(byKey), err, n)
	}

	cp2, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size2, root2 := parseNote(t, cp2)
	if size2 < size1+n {
		t.Fatalf("tree grew from %d to %d after %d uploads", size1, size2, n)
	}
	if size1 > 0 {
		p, err := c.ConsistencyProof(ctx, int64(size1), int64(size2))
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, p, root1, root2); err != nil {
			t.Errorf("consistency %d→%d: %v", size1, size2, err)
		}
	}
	if p, err := c.ConsistencyProof(ctx, int64(size2), int64(size2)); err != nil || len(p) != 0 {
		t.Errorf("consistency proof of equal sizes: %v, %v", p, err)
	}
	var se *httpclient.StatusError
	if _, err := c.ConsistencyProof(ctx, 1, int64(size2)+1000); !errors.As(err, &se) || se.Code != 400 {
		t.Errorf("proof beyond the tree: %v, want a 400 StatusError", err)
	}
}

// BenchmarkEntriesByIndex500 fetches 500 entries of the local log in
// batches of 10; ns/op divided by 500 is the per-package online cost.
func BenchmarkEntriesByIndex500(b *testing.B) {
	c, _ := realLog(b)
	ctx := context.Background()
	info, err := c.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if info.TreeSize < 500 {
		k := newTestKey(b)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := info.TreeSize; i < 500; i++ {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				msg := randomMessage(b)
				if _, err := c.Upload(ctx, k.sign(b, msg, "bench.pkg.tar.zst"), k.pubFile, msg); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	idx := make([]int64, 500)
	for i := range idx {
		idx[i] = int64(i)
	}
	for _, conc := range []int{1, DefaultConcurrency, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			cc := *c
			WithConcurrency(conc)(&cc)
			for b.Loop() {
				got, err := cc.EntriesByIndex(ctx, idx)
				if err != nil || len(got) != 500 {
					b.Fatalf("%d entries, %v", len(got), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/500, "µs/entry")
		})
	}
}

// TestRealMinisignCLIUpload logs a signature made by the minisign CLI
// (0.11, prehashed by default) with the .pub file it wrote.
func TestRealMinisignCLIUpload(t *testing.T) {
	c, _ := realLog(t)
	mini := testenv.Tool(t, "minisign")
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(mini, args...)
		cmd.Stdin = strings.NewReader("")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("minisign %v: %v\n%s", args, err, out)
		}
	}
	pub, key, msgFile := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key"), filepath.Join(dir, "msg")
	run("-G", "-W", "-p", pub, "-s", key)
	msg := randomMessage(t)
	if err := os.WriteFile(msgFile, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	run("-S", "-s", key, "-m", msgFile, "-t", "foo-1-1-x86_64.pkg.tar.zst")
	tfile, err := os.ReadFile(msgFile + ".minisig")
	if err != nil {
		t.Fatal(err)
	}
	pubFile, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	e, err := c.Upload(ctx, tfile, pubFile, msg)
	if err != nil {
		t.Fatalf("upload of a minisign CLI signature: %v", err)
	}
	checkInclusion(t, e)
	again, err := c.Upload(ctx, tfile, pubFile, msg)
	if err != nil || again.UUID != e.UUID {
		t.Errorf("re-upload: %v, %v", again, err)
	}
}
