// Package sigsumlog is a real Sigsum log for tests, in process: it
// implements sigsum-go's api.Log (served by pkg/server.NewLog, so the
// wire format is sigsum-go's own), keeps an RFC 6962 tree in pkg/merkle,
// signs tree heads with an Ed25519 log key, and gets them cosigned the way
// the production log (log-go) does: it pushes each new checkpoint to its
// witnesses with C2SP tlog-witness add-checkpoint (internal/witness.Client)
// and publishes whatever cosignatures came back.
//
// Semantics follow log-go: add-leaf verifies the leaf signature and answers
// 202 until the leaf is in the published tree head, then 200; get-tree-head
// serves the published cosigned head; proofs are served for any size up to
// the tree's.
//
// For attack tests the log can lie: Fork makes a second log with the same
// key and a shared prefix that diverges (a split view), Publish serves any
// earlier tree head (a rollback).
package sigsumlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"sigsum.org/sigsum-go/pkg/api"
	"sigsum.org/sigsum-go/pkg/checkpoint"
	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/merkle"
	"sigsum.org/sigsum-go/pkg/requests"
	"sigsum.org/sigsum-go/pkg/server"
	token "sigsum.org/sigsum-go/pkg/submit-token"
	"sigsum.org/sigsum-go/pkg/types"

	"github.com/bintrans/bintrans/internal/witness"
)

// MaxLeaves bounds one get-leaves answer (log-go caps it too).
const MaxLeaves = 512

// Log is an in-memory Sigsum log. It is an api.Log.
type Log struct {
	signer    *scrypto.Ed25519Signer
	pub       scrypto.PublicKey
	origin    string
	witnesses []witness.Witness
	client    witness.Client

	seq sync.Mutex // serialises Sequence

	mu        sync.Mutex // guards everything below
	tree      merkle.Tree
	leaves    []types.Leaf
	pending   []types.Leaf
	pendingAt map[scrypto.Hash]bool
	published types.CosignedTreeHead
	note      []byte                   // published checkpoint note with cosignature lines
	history   []types.CosignedTreeHead // every head published, oldest first
	oldSize   map[string]uint64        // witness name -> size it last cosigned
	werrs     []error
}

// New makes a log with the Ed25519 key priv, pushing checkpoints to the
// witnesses (policy witnesses with URLs). It publishes the signed empty tree.
func New(priv ed25519.PrivateKey, witnesses []witness.Witness) (*Log, error) {
	var seed scrypto.PrivateKey
	copy(seed[:], priv.Seed())
	s := scrypto.NewEd25519Signer(&seed)
	pub := s.Public()
	l := &Log{
		signer:    s,
		pub:       pub,
		origin:    types.SigsumCheckpointOrigin(&pub),
		witnesses: append([]witness.Witness(nil), witnesses...),
		client:    witness.Client{Timeout: 10 * time.Second},
		tree:      merkle.NewTree(),
		pendingAt: map[scrypto.Hash]bool{},
		oldSize:   map[string]uint64{},
	}
	th := types.NewEmptyTreeHead()
	sth, err := th.Sign(s)
	if err != nil {
		return nil, err
	}
	l.publishLocked(types.CosignedTreeHead{SignedTreeHead: sth, Cosignatures: map[scrypto.Hash]types.Cosignature{}}, nil)
	return l, nil
}

// PublicKey is the log's Ed25519 key.
func (l *Log) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(l.pub[:]) }

// Origin is the log's checkpoint origin.
func (l *Log) Origin() string { return l.origin }

// --- api.Log ---

// GetTreeHead serves the published cosigned tree head.
func (l *Log) GetTreeHead(context.Context) (types.CosignedTreeHead, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return copyCTH(l.published), nil
}

// GetInclusionProof proves a leaf in a tree of req.Size (up to the tree's).
func (l *Log) GetInclusionProof(_ context.Context, req requests.InclusionProof) (types.InclusionProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if req.Size > l.tree.Size() {
		return types.InclusionProof{}, api.ErrBadRequest.WithError(fmt.Errorf("size %d beyond the tree's %d", req.Size, l.tree.Size()))
	}
	idx, err := l.tree.GetLeafIndex(&req.LeafHash)
	if err != nil || idx >= req.Size {
		return types.InclusionProof{}, api.ErrNotFound
	}
	path, err := l.tree.ProveInclusion(idx, req.Size)
	if err != nil {
		return types.InclusionProof{}, err
	}
	return types.InclusionProof{LeafIndex: idx, Path: path}, nil
}

// GetConsistencyProof proves req.OldSize to req.NewSize (up to the tree's).
func (l *Log) GetConsistencyProof(_ context.Context, req requests.ConsistencyProof) (types.ConsistencyProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if req.NewSize > l.tree.Size() || req.OldSize > req.NewSize {
		return types.ConsistencyProof{}, api.ErrBadRequest.WithError(fmt.Errorf("sizes %d, %d (tree %d)", req.OldSize, req.NewSize, l.tree.Size()))
	}
	path, err := l.tree.ProveConsistency(req.OldSize, req.NewSize)
	if err != nil {
		return types.ConsistencyProof{}, err
	}
	return types.ConsistencyProof{Path: path}, nil
}

// GetLeaves returns at most MaxLeaves leaves from the published tree.
func (l *Log) GetLeaves(_ context.Context, req requests.Leaves) ([]types.Leaf, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := l.published.Size
	if req.StartIndex >= size {
		return nil, api.ErrNotFound
	}
	end := min(req.EndIndex, size, req.StartIndex+MaxLeaves)
	return append([]types.Leaf(nil), l.leaves[req.StartIndex:end]...), nil
}

// AddLeaf verifies and queues a leaf; true (200) once it is in the
// published tree head, false (202) before.
func (l *Log) AddLeaf(_ context.Context, req requests.Leaf, _ *token.SubmitHeader) (bool, error) {
	leaf, err := req.Verify()
	if err != nil {
		return false, api.ErrForbidden.WithError(err)
	}
	h := leaf.ToHash()
	l.mu.Lock()
	defer l.mu.Unlock()
	if idx, err := l.tree.GetLeafIndex(&h); err == nil {
		return idx < l.published.Size, nil
	}
	if !l.pendingAt[h] {
		l.pendingAt[h] = true
		l.pending = append(l.pending, leaf)
	}
	return false, nil
}

// --- sequencing ---

// Sequence adds the pending leaves, signs the new tree head, asks every
// witness to cosign it and publishes it with the cosignatures that came
// back (fail-open, like log-go). With nothing pending it does nothing
// unless force (fresh cosignatures on the same head).
func (l *Log) Sequence(ctx context.Context, force bool) error {
	l.seq.Lock()
	defer l.seq.Unlock()
	l.mu.Lock()
	if len(l.pending) == 0 && !force {
		l.mu.Unlock()
		return nil
	}
	for _, leaf := range l.pending {
		h := leaf.ToHash()
		if l.tree.AddLeafHash(&h) {
			l.leaves = append(l.leaves, leaf)
		}
	}
	l.pending, l.pendingAt = nil, map[scrypto.Hash]bool{}
	th := types.TreeHead{Size: l.tree.Size(), RootHash: l.tree.GetRootHash()}
	l.mu.Unlock()

	sth, err := th.Sign(l.signer)
	if err != nil {
		return err
	}
	cp := checkpoint.Checkpoint{SignedTreeHead: sth, Origin: l.origin, KeyId: checkpoint.NewLogKeyId(l.origin, &l.pub)}
	var buf bytes.Buffer
	if err := cp.ToASCII(&buf); err != nil {
		return err
	}
	note := buf.Bytes()
	proof := func(ctx context.Context, old uint64) ([][32]byte, error) {
		p, err := l.GetConsistencyProof(ctx, requests.ConsistencyProof{OldSize: old, NewSize: th.Size})
		if err != nil {
			return nil, err
		}
		out := make([][32]byte, len(p.Path))
		for i, h := range p.Path {
			out[i] = h
		}
		return out, nil
	}
	l.mu.Lock()
	old := make(map[string]uint64, len(l.oldSize))
	for k, v := range l.oldSize {
		old[k] = v
	}
	l.mu.Unlock()
	res := l.client.AddCheckpointAll(ctx, l.witnesses, note, func(w *witness.Witness) uint64 { return old[w.Name] }, proof)

	cth := types.CosignedTreeHead{SignedTreeHead: sth, Cosignatures: map[scrypto.Hash]types.Cosignature{}}
	var lines [][]byte
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, r := range res {
		if r.Err != nil {
			l.werrs = append(l.werrs, r.Err)
			continue
		}
		cls, err := checkpoint.CosignatureLinesFromASCII(bytes.NewReader(r.Lines))
		if err != nil || len(cls) == 0 {
			l.werrs = append(l.werrs, fmt.Errorf("witness %s: %d lines, %v", r.Witness, len(cls), err))
			continue
		}
		cth.Cosignatures[scrypto.HashBytes(l.witnesses[i].Key)] = cls[0].Cosignature
		lines = append(lines, r.Lines)
		l.oldSize[r.Witness] = th.Size
	}
	l.publishLocked(cth, lines)
	return nil
}

func (l *Log) publishLocked(cth types.CosignedTreeHead, lines [][]byte) {
	cp := checkpoint.Checkpoint{SignedTreeHead: cth.SignedTreeHead, Origin: l.origin, KeyId: checkpoint.NewLogKeyId(l.origin, &l.pub)}
	var buf bytes.Buffer
	_ = cp.ToASCII(&buf)
	n := buf.Bytes()
	if len(lines) > 0 {
		if m, err := witness.MergeCosignatures(n, lines...); err == nil {
			n = m
		}
	}
	l.published, l.note = copyCTH(cth), n
	l.history = append(l.history, copyCTH(cth))
}

// Checkpoint is the published tree head as a C2SP checkpoint note with the
// witnesses' cosignature lines.
func (l *Log) Checkpoint() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.note...)
}

// Size of the published tree.
func (l *Log) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.published.Size
}

// WitnessErrors returns and forgets the witnesses' refusals so far.
func (l *Log) WitnessErrors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.werrs
	l.werrs = nil
	return e
}

// History returns every tree head published so far, oldest first.
func (l *Log) History() []types.CosignedTreeHead {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]types.CosignedTreeHead, len(l.history))
	for i, c := range l.history {
		out[i] = copyCTH(c)
	}
	return out
}

// Publish serves cth as the current tree head (a lie when it is older
// than the last one: a rollback). Its checkpoint note carries no
// cosignature lines.
func (l *Log) Publish(cth types.CosignedTreeHead) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.publishLocked(cth, nil)
}

// Fork returns a log with the same key and witnesses (and what this log
// believes they cosigned) holding this log's first n leaves: adding other
// leaves to it makes a split view of the same log.
func (l *Log) Fork(n uint64) (*Log, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > uint64(len(l.leaves)) {
		return nil, fmt.Errorf("fork at %d beyond %d leaves", n, len(l.leaves))
	}
	seed := l.signer.Private()
	f, err := New(ed25519.NewKeyFromSeed(seed[:]), l.witnesses)
	if err != nil {
		return nil, err
	}
	for _, leaf := range l.leaves[:n] {
		h := leaf.ToHash()
		f.tree.AddLeafHash(&h)
		f.leaves = append(f.leaves, leaf)
	}
	for k, v := range l.oldSize {
		f.oldSize[k] = v
	}
	return f, nil
}

// Run sequences every interval until ctx is done.
func (l *Log) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = l.Sequence(ctx, false)
		}
	}
}

// Server is a Log served over HTTP on 127.0.0.1.
type Server struct {
	Log *Log
	URL string // base URL for a policy "log" line
}

// Serve serves l on 127.0.0.1 (a free port) and, when interval > 0,
// sequences every interval; both stop when the test ends.
func Serve(t testing.TB, l *Log, interval time.Duration) *Server {
	t.Helper()
	ts := httptest.NewServer(server.NewLog(&server.Config{}, l))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if interval > 0 {
			l.Run(ctx, interval)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		ts.Close()
	})
	return &Server{Log: l, URL: ts.URL}
}

// PolicyLine is the Sigsum-syntax policy line "log <hex key> <URL>".
func (s *Server) PolicyLine() string {
	return fmt.Sprintf("log %x %s", s.Log.pub[:], s.URL)
}

func copyCTH(c types.CosignedTreeHead) types.CosignedTreeHead {
	m := make(map[scrypto.Hash]types.Cosignature, len(c.Cosignatures))
	for k, v := range c.Cosignatures {
		m[k] = v
	}
	c.Cosignatures = m
	return c
}
