package rekorv2

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/testkit/tilelog"
)

func newTestWriter(t testing.TB, f *fakeRekor, withReader bool, opts ...WriterOption) *Writer {
	t.Helper()
	opts = append([]WriterOption{WithBackoff(time.Millisecond, 20*time.Millisecond), WithDuplicateWait(300 * time.Millisecond)}, opts...)
	if withReader {
		r, err := NewReader(f.URL, nil, f.lv)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, WithReader(r))
	}
	w, err := NewWriter(f.URL, nil, f.lv, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func checkLogged(t testing.TB, f *fakeRekor, l *Logged, h *HashedRekord, msg []byte) {
	t.Helper()
	if l.Entry != h || l.LeafHash != h.LeafHash() {
		t.Fatalf("logged another entry")
	}
	b, err := l.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyBundle(b, f.lv, []ed25519.PublicKey{h.PublicKey}, msg)
	if err != nil {
		t.Fatalf("bundle of index %d: %v", l.Index, err)
	}
	if v.Index != l.Index || v.Checkpoint.Size != l.Checkpoint.Size {
		t.Fatalf("bundle says index %d size %d", v.Index, v.Checkpoint.Size)
	}
}

func TestWriterAdds(t *testing.T) {
	f := newFakeRekor(t)
	w := newTestWriter(t, f, true)
	priv := testKey(1)
	for i := range 5 {
		msg := msgOf(fmt.Sprint("pkg", i))
		h, _ := Sign(priv, msg)
		l, err := w.Add(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if l.Index != uint64(i) || l.Duplicate || l.Checkpoint.Size != uint64(i+1) {
			t.Fatalf("entry %d: index %d dup %v size %d", i, l.Index, l.Duplicate, l.Checkpoint.Size)
		}
		checkLogged(t, f, l, h, msg)
	}
}

// A 409 ("already logged at index N") is proven from the tiles: the leaf at
// N must be this entry's.
func TestWriterDuplicate(t *testing.T) {
	ctx := context.Background()
	f := newFakeRekor(t)
	w := newTestWriter(t, f, true)
	priv := testKey(1)
	var first *Logged
	for i := range 300 { // the entry ends up in a full tile and a partial one above it
		h := mustSign(t, priv, fmt.Sprint("pkg", i))
		l, err := w.Add(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if i == 7 {
			first = l
		}
	}
	msg := msgOf("pkg7")
	h, _ := Sign(priv, msg)
	posts := f.posts.Load()
	again, err := w.Add(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Index != first.Index || again.Checkpoint.Size != 300 || f.posts.Load() != posts+1 {
		t.Fatalf("duplicate: %+v", again)
	}
	checkLogged(t, f, again, h, msg)

	// Without a Reader the index is all there is.
	var de *DuplicateError
	if _, err := newTestWriter(t, f, false).Add(ctx, h); !errors.As(err, &de) || de.Index != 7 {
		t.Fatalf("no reader: %v", err)
	}
	// A 409 naming an index that holds another entry: the log lies.
	f.set(func(n int64, rw http.ResponseWriter) bool {
		rw.Header().Set("X-Log-Index", "3")
		rw.WriteHeader(http.StatusConflict)
		return true
	}, nil)
	var lm *LeafMismatchError
	fresh := mustSign(t, priv, "never logged")
	if _, err := w.Add(ctx, fresh); !errors.As(err, &lm) || lm.Index != 3 || lm.Want != fresh.LeafHash() {
		t.Fatalf("409 for another entry: %v", err)
	}
	// A 409 for an index no checkpoint covers (within the wait).
	f.set(func(n int64, rw http.ResponseWriter) bool {
		rw.Header().Set("X-Log-Index", "100000")
		rw.WriteHeader(http.StatusConflict)
		return true
	}, nil)
	if _, err := w.Add(ctx, fresh); !errors.As(err, &de) || de.Index != 100000 || !strings.Contains(err.Error(), "does not cover") {
		t.Fatalf("409 beyond the tree: %v", err)
	}
	// The index from the message when the header is missing; none at all is malformed.
	f.set(func(n int64, rw http.ResponseWriter) bool {
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprint(rw, `{"code":6,"message":"an equivalent entry already exists in the transparency log with index 7"}`)
		return true
	}, nil)
	if l, err := w.Add(ctx, h); err != nil || l.Index != 7 {
		t.Fatalf("409 with the index in the message: %v", err)
	}
	f.set(func(n int64, rw http.ResponseWriter) bool {
		rw.Header().Set("X-Log-Index", "-1")
		rw.WriteHeader(http.StatusConflict)
		return true
	}, nil)
	var me *MalformedResponseError
	if _, err := w.Add(ctx, h); !errors.As(err, &me) {
		t.Fatalf("409 with a bad index: %v", err)
	}
}

// A 409 proven from tiles refuses a tile server that lies.
func TestWriterDuplicateBadTiles(t *testing.T) {
	ctx := context.Background()
	f := newFakeRekor(t)
	w := newTestWriter(t, f, true)
	h := mustSign(t, testKey(1), "a")
	if _, err := w.Add(ctx, h); err != nil {
		t.Fatal(err)
	}
	f.SetLie(tilelog.LieBadTile, 0)
	var de *DuplicateError
	var te *TileError
	if _, err := w.Add(ctx, h); !errors.As(err, &de) || !errors.As(err, &te) || te.Kind != TileInconsistent {
		t.Fatalf("bad tile: %v", err)
	}
}

func TestWriterRetries(t *testing.T) {
	ctx := context.Background()
	f := newFakeRekor(t)
	w := newTestWriter(t, f, true, WithRetries(3))
	busy := func(times int64, code int) func(int64, http.ResponseWriter) bool {
		return func(n int64, rw http.ResponseWriter) bool {
			if n > times {
				return false
			}
			rw.WriteHeader(code)
			fmt.Fprint(rw, `{"code":14,"message":"reached max pushback; retry"}`)
			return true
		}
	}
	// Two 503s, then the entry is logged.
	f.set(busy(2, http.StatusServiceUnavailable), nil)
	if _, err := w.Add(ctx, mustSign(t, testKey(1), "a")); err != nil || f.posts.Load() != 3 {
		t.Fatalf("after two 503s: %v (%d posts)", err, f.posts.Load())
	}
	// 503 for ever: a *CallError with the last status, after 1+3 attempts.
	f.posts.Store(0)
	f.set(busy(1000, http.StatusServiceUnavailable), nil)
	var ce *CallError
	var se *httpclient.StatusError
	_, err := w.Add(ctx, mustSign(t, testKey(1), "b"))
	if !errors.As(err, &ce) || ce.Attempts != 4 || !errors.As(err, &se) || se.Code != 503 || f.posts.Load() != 4 {
		t.Fatalf("503 for ever: %v (%d posts)", err, f.posts.Load())
	}
	// 400: refused, not retried.
	f.posts.Store(0)
	f.set(busy(1000, http.StatusBadRequest), nil)
	var re *RejectedError
	if _, err := w.Add(ctx, mustSign(t, testKey(1), "c")); !errors.As(err, &re) || re.Status != 400 || f.posts.Load() != 1 {
		t.Fatalf("400: %v (%d posts)", err, f.posts.Load())
	}
	// 500 (what the server answers a pure Ed25519 signature): not retried.
	f.posts.Store(0)
	f.set(busy(1000, http.StatusInternalServerError), nil)
	if _, err := w.Add(ctx, mustSign(t, testKey(1), "d")); !errors.As(err, &se) || se.Code != 500 || f.posts.Load() != 1 {
		t.Fatalf("500: %v (%d posts)", err, f.posts.Load())
	}
	// An attempt that hangs is abandoned after its timeout and retried.
	f.posts.Store(0)
	f.set(func(n int64, rw http.ResponseWriter) bool {
		if n == 1 {
			time.Sleep(300 * time.Millisecond)
			return true
		}
		return false
	}, nil)
	w2 := newTestWriter(t, f, true, WithAttemptTimeout(100*time.Millisecond))
	if _, err := w2.Add(ctx, mustSign(t, testKey(1), "e")); err != nil || f.posts.Load() != 2 {
		t.Fatalf("hanging attempt: %v (%d posts)", err, f.posts.Load())
	}
	// The caller's deadline ends the retries.
	f.set(busy(1000, http.StatusServiceUnavailable), nil)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	w3 := newTestWriter(t, f, true, WithRetries(100), WithBackoff(20*time.Millisecond, 20*time.Millisecond))
	if _, err := w3.Add(short, mustSign(t, testKey(1), "f")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	// Nobody listening: retried (connection refused is temporary), then a *CallError.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	wd, _ := NewWriter(dead, nil, f.lv, WithRetries(2), WithBackoff(time.Millisecond, time.Millisecond))
	if _, err := wd.Add(ctx, mustSign(t, testKey(1), "g")); !errors.As(err, &ce) || ce.Attempts != 3 {
		t.Fatalf("connection refused: %v", err)
	}
}

// An answer that does not prove the entry sent is refused, and the error
// names the field.
func TestWriterRefusesLyingAnswers(t *testing.T) {
	ctx := context.Background()
	f := newFakeRekor(t)
	w := newTestWriter(t, f, true, WithRetries(0))
	other := tilelog.New(t, "fake.rekor.test/v2") // same origin, another key
	other.Append([]byte("x"))
	otherCP := other.Publish()
	cases := []struct {
		name   string
		mutate func(a *answer)
		step   Step
		field  string
	}{
		{"another body", func(a *answer) { a.Body = mustSign(t, testKey(2), "z").Body() }, StepResponse, "canonicalizedBody"},
		{"another kind", func(a *answer) { a.KindVersion = map[string]string{"kind": "dsse", "version": "0.0.2"} }, StepResponse, "kindVersion"},
		{"another key id", func(a *answer) { a.LogID = map[string][]byte{"keyId": make([]byte, 32)} }, StepResponse, "logId.keyId"},
		{"logIndex differs from the proof's", func(a *answer) { a.Proof.LogIndex = "999" }, StepResponse, "inclusionProof.logIndex"},
		{"treeSize differs from the checkpoint's", func(a *answer) { a.Proof.TreeSize = "1000" }, StepResponse, "inclusionProof.treeSize"},
		{"rootHash differs from the checkpoint's", func(a *answer) { a.Proof.RootHash = make([]byte, 32) }, StepResponse, "inclusionProof.rootHash"},
		{"both indexes moved", func(a *answer) { a.LogIndex, a.Proof.LogIndex = "0", "0" }, StepInclusion, ""},
		{"proof hash altered", func(a *answer) { a.Proof.Hashes[0][0] ^= 1 }, StepInclusion, ""},
		{"checkpoint by another key", func(a *answer) { a.Proof.Checkpoint.Envelope = string(otherCP) }, StepCheckpoint, ""},
	}
	for i, c := range cases {
		// Entries first, so that the answers carry proof hashes.
		if _, err := w.Add(ctx, mustSign(t, testKey(1), fmt.Sprint("filler", i))); err != nil {
			t.Fatal(err)
		}
		f.set(nil, c.mutate)
		_, err := w.Add(ctx, mustSign(t, testKey(1), c.name))
		f.set(nil, nil)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Step != c.step || (c.field != "" && ve.Field != c.field) {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		t.Logf("%-40s %v", c.name, err)
	}
	malformed := map[string]string{
		"not JSON":      "<html>oops</html>",
		"empty":         "",
		"trailing data": `{} {}`,
		"no proof":      `{"logIndex":"1","logId":{"keyId":"AA=="},"kindVersion":{"kind":"hashedrekord","version":"0.0.2"},"canonicalizedBody":"AA=="}`,
		"negative":      `{"logIndex":"-1"}`,
	}
	for name, body := range malformed {
		f.set(func(n int64, rw http.ResponseWriter) bool {
			rw.WriteHeader(http.StatusCreated)
			fmt.Fprint(rw, body)
			return true
		}, nil)
		var me *MalformedResponseError
		if _, err := w.Add(ctx, mustSign(t, testKey(1), "m")); !errors.As(err, &me) {
			t.Errorf("%s: %v", name, err)
		}
	}
	f.set(func(n int64, rw http.ResponseWriter) bool {
		rw.WriteHeader(http.StatusCreated)
		_, _ = rw.Write(bytes.Repeat([]byte(" "), MaxResponseSize+1))
		return true
	}, nil)
	var tl *httpclient.TooLargeError
	if _, err := w.Add(ctx, mustSign(t, testKey(1), "m")); !errors.As(err, &tl) {
		t.Errorf("huge answer: %v", err)
	}
	// An entry whose signature does not verify is not sent.
	bad := mustSign(t, testKey(1), "n")
	bad.Signature[0] ^= 1
	posts := f.posts.Load()
	if _, err := w.Add(ctx, bad); err == nil || f.posts.Load() != posts {
		t.Fatalf("bad signature sent: %v", err)
	}
}

func TestAddAll(t *testing.T) {
	f := newFakeRekor(t)
	w := newTestWriter(t, f, true)
	var es []*HashedRekord
	for i := range 60 {
		es = append(es, mustSign(t, testKey(1), fmt.Sprint("pkg", i)))
	}
	es = append(es, es[3]) // a duplicate within the run
	res := w.AddAll(context.Background(), es, 8)
	seen := map[uint64]bool{}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("%d: %v", i, r.Err)
		}
		if r.Logged.Entry != es[i] {
			t.Fatalf("%d: result out of order", i)
		}
		if i < 60 {
			if seen[r.Logged.Index] {
				t.Fatalf("index %d twice", r.Logged.Index)
			}
			seen[r.Logged.Index] = true
		}
	}
	if res[60].Logged.Index != res[3].Logged.Index {
		t.Fatal("the duplicate got another index")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range w.AddAll(ctx, es[:5], 2) {
		if r.Err == nil {
			t.Fatal("added with a cancelled context")
		}
	}

	// AddEach: every outcome once, for its own entry, before it returns;
	// a slow done does not hold an add slot (4 in flight, done sleeping:
	// the adds still overlap the dones).
	var mu sync.Mutex
	got := map[int]int{}
	w.AddEach(context.Background(), es[:20], 4, func(i int, r AddResult) {
		if r.Err != nil || r.Logged.Entry != es[i] {
			t.Errorf("%d: %v", i, r.Err)
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		got[i]++
		mu.Unlock()
	})
	if len(got) != 20 {
		t.Fatalf("AddEach gave %d outcomes, want 20", len(got))
	}
	for i, n := range got {
		if n != 1 {
			t.Fatalf("entry %d: %d outcomes", i, n)
		}
	}
}

// Reprove moves a run's entries, logged under various checkpoints, to one.
func TestReprove(t *testing.T) {
	ctx := context.Background()
	f := newFakeRekor(t)
	w := newTestWriter(t, f, true)
	var ls []*Logged
	for i := range 40 {
		l, err := w.Add(ctx, mustSign(t, testKey(1), fmt.Sprint("pkg", i)))
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	r, _ := NewReader(f.URL, nil, f.lv)
	cp, err := r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := r.At(cp)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		n, err := tr.Reprove(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		if n.Checkpoint.Size != 40 || n.Index != l.Index {
			t.Fatalf("%d: %+v", i, n)
		}
		checkLogged(t, f, n, l.Entry, msgOf(fmt.Sprint("pkg", i)))
	}
	// An entry whose checkpoint the tree does not extend is refused.
	forged := *ls[5]
	forged.Checkpoint = &Checkpoint{Origin: cp.Origin, Size: 6, Root: [32]byte{1}}
	var fe *ForkError
	if _, err := tr.Reprove(ctx, &forged); !errors.As(err, &fe) {
		t.Fatalf("forged checkpoint: %v", err)
	}
}
