package witness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWitness answers add-checkpoint with handler; it records requests.
// These tests inject faults; the real witnesses are in integration_test.go.
func fakeWitness(t *testing.T, name string, handler func(n int, body string, w http.ResponseWriter)) (*Witness, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/prefix/add-checkpoint" {
			http.Error(w, "wrong endpoint "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		b, _ := io.ReadAll(r.Body)
		handler(int(n.Add(1)), string(b), w)
	}))
	t.Cleanup(ts.Close)
	return &Witness{Name: name, Key: pubOf(name), URL: ts.URL + "/prefix/"}, &n
}

func TestAddCheckpointConflictRetry(t *testing.T) {
	cp := signedCheckpoint(t, testOrigin, 9)
	now := uint64(time.Now().Unix())
	var bodies []string
	w, n := fakeWitness(t, "w1", func(n int, body string, rw http.ResponseWriter) {
		bodies = append(bodies, body)
		if n == 1 {
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			fmt.Fprint(rw, "4\n")
			return
		}
		// a line by another witness is dropped, the valid one kept
		fmt.Fprint(rw, cosign(t, "stranger", cp, now)+cosign(t, "w1", cp, now))
	})
	var asked []uint64
	proof := func(_ context.Context, old uint64) ([][32]byte, error) {
		asked = append(asked, old)
		return [][32]byte{{1}, {2}}, nil
	}
	var c Client
	lines, err := c.AddCheckpoint(context.Background(), w, cp, 0, proof)
	if err != nil {
		t.Fatal(err)
	}
	if string(lines) != cosign(t, "w1", cp, now) || n.Load() != 2 || len(asked) != 1 || asked[0] != 4 {
		t.Fatalf("lines %q, %d requests, proofs asked %v", lines, n.Load(), asked)
	}
	want := "old 4\nAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nAgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" + string(cp)
	if !strings.HasPrefix(bodies[0], "old 0\n\n") || bodies[1] != want {
		t.Fatalf("bodies %q", bodies)
	}
	merged, err := MergeCosignatures(cp, lines)
	if err != nil {
		t.Fatal(err)
	}
	p := policy3(t, "quorum w1\n")
	if _, err := p.VerifyCheckpoint(merged, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestAddCheckpointRefusals(t *testing.T) {
	cp := signedCheckpoint(t, testOrigin, 9)
	now := uint64(time.Now().Unix())
	noProof := func(context.Context, uint64) ([][32]byte, error) { return nil, errors.New("no proof") }
	for _, tc := range []struct {
		name     string
		handler  func(n int, body string, w http.ResponseWriter)
		requests int32
		want     string
		status   int
	}{
		{"422 fork", func(_ int, _ string, w http.ResponseWriter) {
			http.Error(w, "(422) Unprocessable Entity", http.StatusUnprocessableEntity)
		}, 1, `HTTP 422 Unprocessable Entity: "(422) Unprocessable Entity"`, 422},
		{"409 twice", func(_ int, _ string, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/x.tlog.size")
			w.WriteHeader(409)
			fmt.Fprint(w, "0\n")
		}, 1, "(its size 0)", 409},
		{"409 ahead of us", func(_ int, _ string, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/x.tlog.size")
			w.WriteHeader(409)
			fmt.Fprint(w, "12\n")
		}, 1, "(its size 12)", 409},
		{"409 without size", func(_ int, _ string, w http.ResponseWriter) { http.Error(w, "conflict", http.StatusConflict) }, 1, `HTTP 409 Conflict: "conflict"`, 409},
		{"409 bad size", func(_ int, _ string, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/x.tlog.size")
			w.WriteHeader(409)
			fmt.Fprint(w, "007\n")
		}, 1, `"007"`, 409},
		{"500 long body", func(_ int, _ string, w http.ResponseWriter) {
			http.Error(w, strings.Repeat("\x1b[31mx ", 1000), 500)
		}, 1, `"[31mx [31mx`, 500},
		{"200 garbage", func(_ int, _ string, w http.ResponseWriter) { fmt.Fprint(w, "hello\n") }, 1, "malformed answer", 200},
		{"200 only other keys", func(_ int, _ string, w http.ResponseWriter) { fmt.Fprint(w, cosign(t, "w2", cp, now)) }, 1, "none of the 1 signature line(s)", 200},
		{"200 cosignature of another checkpoint", func(_ int, _ string, w http.ResponseWriter) {
			fmt.Fprint(w, cosign(t, "w1", signedCheckpoint(t, testOrigin, 10), now))
		}, 1, "none of the 1", 200},
		{"200 too large", func(_ int, _ string, w http.ResponseWriter) { fmt.Fprint(w, strings.Repeat("x", MaxResponseSize+1)) }, 1, "larger than 16384", 200},
	} {
		w, n := fakeWitness(t, "w1", tc.handler)
		var c Client
		old := uint64(0)
		if tc.name == "409 twice" {
			old = 3 // the witness says 0: retried once from 0, then refused
		}
		_, err := c.AddCheckpoint(context.Background(), w, cp, old, noProofUnless(old, noProof))
		var we *WitnessError
		if !errors.As(err, &we) || we.Status != tc.status || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want status %d and %q", tc.name, err, tc.status, tc.want)
			continue
		}
		if tc.name == "409 twice" {
			tc.requests = 2
		}
		if n.Load() != tc.requests {
			t.Errorf("%s: %d requests, want %d", tc.name, n.Load(), tc.requests)
		}
		if len(we.Snippet) > MaxSnippet+len("…") {
			t.Errorf("%s: snippet of %d bytes", tc.name, len(we.Snippet))
		}
	}
}

func noProofUnless(old uint64, f ProofFunc) ProofFunc {
	return func(ctx context.Context, o uint64) ([][32]byte, error) {
		if o == old {
			return make([][32]byte, 3), nil
		}
		return f(ctx, o)
	}
}

func TestAddCheckpointTimeoutAndAll(t *testing.T) {
	cp := signedCheckpoint(t, testOrigin, 9)
	now := uint64(time.Now().Unix())
	release := make(chan struct{})
	slow, _ := fakeWitness(t, "w2", func(int, string, http.ResponseWriter) { <-release })
	defer close(release)
	fast, _ := fakeWitness(t, "w1", func(_ int, _ string, w http.ResponseWriter) { fmt.Fprint(w, cosign(t, "w1", cp, now)) })
	c := Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	res := c.AddCheckpointAll(context.Background(), []Witness{*fast, *slow, {Name: "w3", Key: pubOf("w3")}}, cp, nil, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	if res[0].Witness != "w1" || res[0].Err != nil || len(res[0].Lines) == 0 {
		t.Errorf("fast: %+v", res[0])
	}
	if !errors.Is(res[1].Err, context.DeadlineExceeded) {
		t.Errorf("slow: %v", res[1].Err)
	}
	if res[2].Err == nil || !strings.Contains(res[2].Err.Error(), "no URL") {
		t.Errorf("no URL: %v", res[2].Err)
	}
	// arguments checked before any request
	if _, err := c.AddCheckpoint(context.Background(), fast, cp, 10, nil); err == nil || !strings.Contains(err.Error(), "beyond") {
		t.Errorf("old beyond size: %v", err)
	}
	if _, err := c.AddCheckpoint(context.Background(), fast, cp, 3, nil); err == nil || !strings.Contains(err.Error(), "no proof source") {
		t.Errorf("no proof: %v", err)
	}
	long := func(context.Context, uint64) ([][32]byte, error) { return make([][32]byte, 64), nil }
	if _, err := c.AddCheckpoint(context.Background(), fast, cp, 3, long); err == nil || !strings.Contains(err.Error(), "64 hashes") {
		t.Errorf("long proof: %v", err)
	}
}

func TestMergeCosignatures(t *testing.T) {
	cp := signedCheckpoint(t, testOrigin, 9)
	l1a, l1b := cosign(t, "w1", cp, 100), cosign(t, "w1", cp, 200)
	l2, l3 := cosign(t, "w2", cp, 100), cosign(t, "w3", cp, 100)
	a, err := MergeCosignatures(cp, []byte(l3+l1a), []byte(l2))
	if err != nil {
		t.Fatal(err)
	}
	b, err := MergeCosignatures(withLines(cp, l2), []byte(l1a+l3), []byte(l1a))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) || string(a) != string(cp)+l1a+l2+l3 {
		t.Fatalf("merge not deterministic:\n%s\n%s", a, b)
	}
	c, err := MergeCosignatures(a, []byte(l1b))
	if err != nil || string(c) != string(cp)+l1b+l2+l3 {
		t.Fatalf("newer cosignature not kept: %v\n%s", err, c)
	}
	if again, _ := MergeCosignatures(c, []byte(l1a)); string(again) != string(c) {
		t.Fatal("older cosignature replaced a newer one")
	}
	for _, bad := range [][]byte{[]byte("x\n"), []byte("— w1\n"), []byte("— w1 !!!\n"), []byte("- w1 AAAAAAAA\n")} {
		if _, err := MergeCosignatures(cp, bad); err == nil {
			t.Errorf("merged %q", bad)
		}
	}
	if _, err := MergeCosignatures([]byte("no signatures\n")); err == nil {
		t.Error("merged a bare text")
	}
	many := ""
	for i := 0; i < maxSignatures; i++ {
		many += cosign(t, fmt.Sprintf("x%d", i), cp, 1)
	}
	if _, err := MergeCosignatures(cp, []byte(many)); err == nil {
		t.Error("more than 100 signatures merged")
	}
}
