package rekorv1

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/verify"
)

// FuzzRESTAnswers serves fuzzed bodies (with a fuzzed status code) to the
// client's calls that FuzzEntryAnswer does not cover: log info and
// checkpoint, index search, consistency proof, entries by index. The
// client must never panic, and what it accepts respects every bound.
func FuzzRESTAnswers(f *testing.F) {
	var mu sync.Mutex
	var body []byte
	var code int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b, c := body, code
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c)
		w.Write(b)
	}))
	f.Cleanup(srv.Close)
	hc, err := httpclient.New(httpclient.Options{Timeout: 10 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	c, err := New(srv.URL, hc, WithRetries(0), WithMaxResponseSize(64<<10), WithMaxSearchResponseSize(64<<10))
	if err != nil {
		f.Fatal(err)
	}
	root := "1d5ac6e4e2d6a4d5b4b1f0f5b4d3c2b1a09f8e7d6c5b4a392817161514131211"
	f.Add(uint8(0), uint16(200), []byte(`{"rootHash":"`+root+`","signedTreeHead":"rekor.local - 1\n5\nHVrG5OLWpNW0sfD1tNPCsaCfjn1sW0o5KBcWFRQTEhE=\n\n— rekor.local AAAA\n","treeID":"1","treeSize":5}`))
	f.Add(uint8(1), uint16(200), []byte(`["`+root+`","0000000000000001`+root+`"]`))
	f.Add(uint8(2), uint16(200), []byte(`{"hashes":["`+root+`"],"rootHash":"`+root+`"}`))
	f.Add(uint8(3), uint16(200), []byte(`[{"`+root+`":{"body":"eA==","integratedTime":1,"logID":"`+root+`","logIndex":0}}]`))
	f.Add(uint8(0), uint16(502), []byte("<html>502 Bad Gateway</html>"))
	f.Add(uint8(1), uint16(200), []byte(``))
	f.Fuzz(func(t *testing.T, op uint8, status uint16, b []byte) {
		if status < 200 || status > 599 {
			status = 200
		}
		mu.Lock()
		body, code = b, int(status)
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		switch op % 4 {
		case 0:
			info, err := c.Info(ctx)
			if err != nil {
				return
			}
			if len(info.Checkpoint) == 0 || len(info.Checkpoint) > verify.MaxCheckpointSize || len(info.RootHash) != 32 || info.TreeSize < 0 {
				t.Fatalf("accepted log info out of bounds: %+v", info)
			}
		case 1:
			uuids, err := c.SearchByHash(ctx, root)
			if err != nil {
				return
			}
			for _, u := range uuids {
				if !validUUID(u) {
					t.Fatalf("accepted search result %q", u)
				}
			}
		case 2:
			hs, err := c.ConsistencyProof(ctx, 1, 5)
			if err != nil {
				return
			}
			if len(hs) > verify.MaxProofHashes {
				t.Fatalf("accepted %d proof hashes", len(hs))
			}
			for _, h := range hs {
				if len(h) != 32 {
					t.Fatalf("accepted a %d-byte proof hash", len(h))
				}
			}
		case 3:
			es, err := c.EntriesByIndex(ctx, []int64{0, 1})
			if err != nil {
				return
			}
			for i, e := range es {
				if (i != 0 && i != 1) || e == nil || len(e.Body) == 0 || len(e.Body) > MaxEntryBodySize {
					t.Fatalf("accepted entry %d: %+v", i, e)
				}
			}
		}
	})
}
