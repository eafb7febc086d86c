package rekorv1

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/rekor/pkg/generated/models"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/verify"
)

const (
	uuidA = "6eb6456c6a7bf9ed744cfc107f8ce939a9545ebe5e1f37ffe88edc3ac4d81644d0043624f1df91a5"
	uuidB = "6eb6456c6a7bf9ed0000000000000000000000000000000000000000000000000000000000000001"
	logID = "9211423e90ab321d60d078e0cee28e23267c0b236fb8f81072a28c7ff326de83"
)

func entryJSON(index int64, body string) map[string]any {
	return map[string]any{
		"body": base64.StdEncoding.EncodeToString([]byte(body)), "integratedTime": 1795674188,
		"logID": logID, "logIndex": index,
		"verification": map[string]any{
			"inclusionProof":       map[string]any{"checkpoint": "cp", "hashes": []string{}, "logIndex": index, "rootHash": strings.Repeat("ab", 32), "treeSize": index + 1},
			"signedEntryTimestamp": "MEUC",
		},
	}
}

func uuidFor(i int64) string { return fmt.Sprintf("%016x%064x", 7, i) }

func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	hc, err := httpclient.New(httpclient.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(srv.URL, hc, WithBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func TestAnswerShapeErrors(t *testing.T) {
	huge := strings.Repeat("x", MaxEntryBodySize+1)
	manyHashes := entryJSON(0, "b")
	manyHashes["verification"].(map[string]any)["inclusionProof"].(map[string]any)["hashes"] = make([]string, verify.MaxProofHashes+1)
	numberBody := entryJSON(0, "b")
	numberBody["body"] = 42
	noIndex := entryJSON(0, "b")
	delete(noIndex, "logIndex")
	badProof := entryJSON(0, "b")
	delete(badProof["verification"].(map[string]any)["inclusionProof"].(map[string]any), "rootHash")
	for name, answer := range map[string]any{
		"another entry":       map[string]any{uuidB: entryJSON(0, "b")},
		"two entries":         map[string]any{uuidA: entryJSON(0, "a"), uuidB: entryJSON(1, "b")},
		"no entry":            map[string]any{},
		"body too large":      map[string]any{uuidA: entryJSON(0, huge)},
		"too many hashes":     map[string]any{uuidA: manyHashes},
		"body not a string":   map[string]any{uuidA: numberBody},
		"missing logIndex":    map[string]any{uuidA: noIndex},
		"proof without root":  map[string]any{uuidA: badProof},
		"array, not a map":    []any{1, 2},
		"body not base64":     map[string]any{uuidA: map[string]any{"body": "!!!", "integratedTime": 1, "logID": logID, "logIndex": 0}},
		"logID not hex":       map[string]any{uuidA: map[string]any{"body": "eA==", "integratedTime": 1, "logID": "zz", "logIndex": 0}},
		"negative index":      map[string]any{uuidA: entryJSON(-1, "b")},
		"key not an entry id": map[string]any{"hello": entryJSON(0, "b")},
	} {
		t.Run(name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, answer) })
			_, err := c.EntryByUUID(context.Background(), uuidA)
			var me *MalformedResponseError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want *MalformedResponseError", err)
			}
			var ce *CallError
			if !errors.As(err, &ce) || ce.Op != "get entry" {
				t.Errorf("err = %v, want a *CallError for get entry", err)
			}
		})
	}
}

func TestEntriesByIndexBatching(t *testing.T) {
	var inFlight, maxInFlight, requests atomic.Int32
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		requests.Add(1)
		var q struct{ LogIndexes []int64 }
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil || len(q.LogIndexes) == 0 || len(q.LogIndexes) > MaxBatch {
			writeJSON(w, 422, map[string]any{"code": 611, "message": fmt.Sprintf("%d items", len(q.LogIndexes))})
			return
		}
		time.Sleep(20 * time.Millisecond) // let requests overlap
		var out []map[string]any
		for _, i := range q.LogIndexes {
			if i == 13 {
				continue // missing on the server
			}
			out = append(out, map[string]any{uuidFor(i): entryJSON(i, fmt.Sprint("body ", i))})
			if i == 4 { // a repeat with another body, and an entry nobody asked for
				out = append(out, map[string]any{uuidFor(i): entryJSON(i, "other body")})
				out = append(out, map[string]any{uuidFor(999): entryJSON(999, "unasked")})
			}
		}
		writeJSON(w, 200, out)
	})
	var idx []int64
	for i := int64(0); i < 45; i++ {
		idx = append(idx, i, i) // every index asked twice
	}
	got, err := c.EntriesByIndex(context.Background(), idx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 44 || got[13] != nil || got[999] != nil {
		t.Errorf("%d entries (13: %v, 999: %v), want the 44 asked for and present", len(got), got[13], got[999])
	}
	if string(got[4].Body) != "body 4" {
		t.Errorf("repeat: kept %q, want the first answer", got[4].Body)
	}
	for i, e := range got {
		if e.LogIndex != i || string(e.Body) != fmt.Sprint("body ", i) && i != 4 {
			t.Errorf("index %d holds %d %q", i, e.LogIndex, e.Body)
		}
	}
	if n := requests.Load(); n != 5 {
		t.Errorf("%d requests for 45 distinct indexes, want 5", n)
	}
	if m := maxInFlight.Load(); m > DefaultConcurrency || m < 2 {
		t.Errorf("max %d requests in flight, want 2..%d", m, DefaultConcurrency)
	}
	if got, err := c.EntriesByIndex(context.Background(), nil); err != nil || len(got) != 0 {
		t.Errorf("no indexes: %v, %v", got, err)
	}
}

func TestConflictWithoutLocation(t *testing.T) {
	var gets atomic.Int32
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST" && strings.Contains(r.Header.Get("X-Test"), "none"):
			writeJSON(w, 409, map[string]any{"code": 409, "message": "exists"})
		case r.Method == "POST":
			writeJSON(w, 409, map[string]any{"code": 409, "message": "an equivalent entry already exists in the transparency log with UUID " + uuidA})
		default:
			gets.Add(1)
			if !strings.HasSuffix(r.URL.Path, "/"+uuidA) {
				w.WriteHeader(404)
				return
			}
			writeJSON(w, 200, map[string]any{uuidA: entryJSON(7, "existing")})
		}
	})
	e, err := c.Upload(context.Background(), []byte("t"), []byte("k"), []byte("m"))
	if err != nil || e.LogIndex != 7 || e.UUID != uuidA || gets.Load() != 1 {
		t.Fatalf("409 with the id in the message: %+v, %v", e, err)
	}
	hc := &http.Client{Transport: headerRT{base: http.DefaultTransport, k: "X-Test", v: "none"}}
	c2, _ := New(c.base, hc)
	_, err = c2.Upload(context.Background(), []byte("t"), []byte("k"), []byte("m"))
	var me *MalformedResponseError
	if !errors.As(err, &me) {
		t.Errorf("409 without any id: %v, want *MalformedResponseError", err)
	}
}

type headerRT struct {
	base http.RoundTripper
	k, v string
	n    *atomic.Int32
}

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.k, h.v)
	if h.n != nil {
		h.n.Add(1)
	}
	return h.base.RoundTrip(r)
}

func TestRetries(t *testing.T) {
	var calls atomic.Int32
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1: // connection cut before any answer
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case 2:
			w.WriteHeader(503)
		default:
			writeJSON(w, 200, map[string]any{"treeSize": 3, "rootHash": strings.Repeat("00", 32), "signedTreeHead": "note", "treeID": "1"})
		}
	})
	cp, err := c.Checkpoint(context.Background())
	if err != nil || string(cp) != "note" || calls.Load() != 3 {
		t.Fatalf("after a cut and a 503: %q, %v, %d calls", cp, err, calls.Load())
	}
	calls.Store(0)
	c0 := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(503)
	})
	c0.retries = 0
	if _, err := c0.Checkpoint(context.Background()); err == nil || calls.Load() != 1 {
		t.Errorf("WithRetries(0): %v after %d calls", err, calls.Load())
	}
	// A 4xx is the server's answer: never retried.
	calls.Store(0)
	c4 := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, 422, map[string]any{"code": 609, "message": "firstSize in query should be greater than or equal to 1"})
	})
	_, err = c4.ConsistencyProof(context.Background(), 1, 2)
	var se *httpclient.StatusError
	if !errors.As(err, &se) || se.Code != 422 || !strings.Contains(se.Snippet, "firstSize") || calls.Load() != 1 {
		t.Errorf("422: %v after %d calls", err, calls.Load())
	}
}

func TestContextAndTimeouts(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.EntryByUUID(ctx, uuidA)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang past the context deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := c.SearchByHash(ctx, strings.Repeat("a", 64)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestArgumentsCheckedBeforeAnyRequest(t *testing.T) {
	var calls atomic.Int32
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	ctx := context.Background()
	for name, err := range map[string]error{
		"short uuid":      second(c.EntryByUUID(ctx, "abc")),
		"uuid not hex":    second(c.EntryByUUID(ctx, strings.Repeat("g", 64))),
		"negative index":  second(c.EntriesByIndex(ctx, []int64{1, -1})),
		"hash not sha256": second(c.SearchByHash(ctx, "sha256:abc")),
		"first size 0":    second(c.ConsistencyProof(ctx, 0, 5)),
		"first > last":    second(c.ConsistencyProof(ctx, 6, 5)),
		"empty signature": second(c.Upload(ctx, nil, []byte("k"), []byte("m"))),
		"huge signature":  second(c.Upload(ctx, make([]byte, verify.MaxSignatureSize+1), []byte("k"), []byte("m"))),
		"no message":      second(c.Upload(ctx, []byte("t"), []byte("k"), nil)),
		"no public key":   second(c.SearchByPublicKey(ctx, nil)),
		"huge public key": second(c.SearchByPublicKey(ctx, make([]byte, 5000))),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("%d requests sent for invalid arguments", calls.Load())
	}
}

func second[T any](_ T, err error) error { return err }

func TestNew(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "rekor.example", "http://", "http://x/?q=1", "http://x/#f"} {
		if _, err := New(u, nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	// A path prefix is kept, and the caller's client (its transport, hence
	// its proxy and user agent) carries every request.
	var paths []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path+" "+r.Header.Get("X-Via"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-pem-file")
		io.WriteString(w, "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9jT+rc3eV5YTMIqzuLCIhoWZQ20i\n2mDFoWIFYt/7GznUM0IChuaQ3idbjd8RWPlcf8nLqYzMPPAOLy7mUB+Z+Q==\n-----END PUBLIC KEY-----\n")
	}))
	defer srv.Close()
	var n atomic.Int32
	hc := &http.Client{Transport: headerRT{base: http.DefaultTransport, k: "X-Via", v: "ours", n: &n}}
	c, err := New(srv.URL+"/prefix/", hc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublicKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || paths[0] != "/prefix/api/v1/log/publicKey ours" || n.Load() != 1 {
		t.Errorf("requests %v (%d through the caller's transport)", paths, n.Load())
	}
	if hc.Transport.(headerRT).n != &n {
		t.Error("New modified the caller's client")
	}
}

func TestPublicKeyNotPEM(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		io.WriteString(w, "<html>hello</html>")
	})
	var me *MalformedResponseError
	if _, err := c.PublicKey(context.Background()); !errors.As(err, &me) {
		t.Errorf("not PEM: %v", err)
	}
}

func TestSearchAnswerChecked(t *testing.T) {
	for name, answer := range map[string]any{
		"not an id":  []string{"hello"},
		"not a list": map[string]any{"a": 1},
	} {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, answer) })
		var me *MalformedResponseError
		if _, err := c.SearchByHash(context.Background(), strings.Repeat("a", 64)); !errors.As(err, &me) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []string{strings.ToUpper(uuidB), uuidA, uuidB})
	})
	got, err := c.SearchByPublicKey(context.Background(), []byte("RW…"))
	if err != nil || len(got) != 2 || got[0] != uuidB || got[1] != uuidA {
		t.Errorf("search results sorted, lower-case, without repeats: %v, %v", got, err)
	}
}

// FuzzEntryAnswer feeds arbitrary JSON to the entry conversion: it must
// never panic, and what it accepts respects every bound.
func FuzzEntryAnswer(f *testing.F) {
	seed, _ := json.Marshal(map[string]any{uuidA: entryJSON(3, `{"kind":"rekord"}`)})
	f.Add(seed)
	f.Add([]byte(`{"` + uuidA + `":{"body":null}}`))
	f.Add([]byte(`{"x":{"body":"eA==","logIndex":-5,"logID":"","integratedTime":0,"verification":{"inclusionProof":{}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var payload models.LogEntry
		if json.Unmarshal(data, &payload) != nil {
			return
		}
		for k, v := range payload {
			e, err := convertEntry("fuzz", k, v)
			if err != nil {
				continue
			}
			if len(e.Body) == 0 || len(e.Body) > MaxEntryBodySize || e.LogIndex < 0 || !validUUID(e.UUID) {
				t.Fatalf("accepted out of bounds: %+v", e)
			}
			if p := e.Proof; p != nil {
				if len(p.Hashes) > verify.MaxProofHashes || len(p.Checkpoint) > verify.MaxCheckpointSize || len(p.RootHash) != 32 {
					t.Fatal("oversized or undecoded proof accepted")
				}
				for _, h := range p.Hashes {
					if len(h) != 32 {
						t.Fatal("undecoded proof hash accepted")
					}
				}
			}
		}
	})
}
