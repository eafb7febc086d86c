package sigsumlog

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"sigsum.org/sigsum-go/pkg/client"
	"sigsum.org/sigsum-go/pkg/crypto"
	slog "sigsum.org/sigsum-go/pkg/log"
	"sigsum.org/sigsum-go/pkg/policy"
	"sigsum.org/sigsum-go/pkg/requests"
	"sigsum.org/sigsum-go/pkg/submit"
)

// Unmodified sigsum-go submit and proof verification work against the
// log over HTTP; a fork shares the prefix and diverges; Publish rolls back.
func TestSubmitVerifyForkRollback(t *testing.T) {
	slog.SetLevelFromString("warning")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := New(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(t, l, 20*time.Millisecond)
	pol, err := policy.ParseConfig(strings.NewReader(srv.PolicyLine() + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, sub, _ := crypto.NewKeyPair()
	subPub := sub.Public()
	keys := map[crypto.Hash]crypto.PublicKey{crypto.HashBytes(subPub[:]): subPub}
	var msgs []crypto.Hash
	for i := 0; i < 3; i++ {
		msg := crypto.HashBytes([]byte{byte(i)})
		pr, err := submit.SubmitMessage(context.Background(), &submit.Config{Policy: pol, PollDelay: 10 * time.Millisecond, Timeout: 10 * time.Second}, sub, &msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := pr.Verify(&msg, keys, pol); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, msg)
	}
	c := client.New(client.Config{URL: srv.URL})
	leaves, err := c.GetLeaves(context.Background(), requests.Leaves{StartIndex: 0, EndIndex: 3})
	if err != nil || len(leaves) != 3 || leaves[2].Checksum != crypto.HashBytes(msgs[2][:]) {
		t.Fatalf("leaves %v %v", leaves, err)
	}

	f, err := l.Fork(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sequence(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a, _ := l.GetTreeHead(context.Background())
	b, _ := f.GetTreeHead(context.Background())
	if b.Size != 2 || a.Size != 3 {
		t.Fatalf("sizes: log %d, fork %d", a.Size, b.Size)
	}
	if pub := crypto.PublicKey(l.PublicKey()); !b.Verify(&pub) {
		t.Fatal("the fork is not signed by the log key")
	}
	p2, _ := l.GetConsistencyProof(context.Background(), requests.ConsistencyProof{OldSize: 2, NewSize: 3})
	if err := p2.Verify(&b.TreeHead, &a.TreeHead); err != nil {
		t.Fatalf("the fork's prefix is not the log's: %v", err)
	}

	h := l.History()
	l.Publish(h[1])
	got, _ := c.GetTreeHead(context.Background())
	if got.Size != h[1].Size || got.Size >= a.Size {
		t.Fatalf("rollback: serving size %d", got.Size)
	}
}
