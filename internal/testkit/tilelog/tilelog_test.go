package tilelog

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The fake's tree is an RFC 6962 tree: its roots are transparency-dev/merkle's.
func TestRootsAreRFC6962(t *testing.T) {
	l := New(t, "tilelog.test/a")
	ref := testonly.New(rfc6962.DefaultHasher)
	for i := 0; i < 700; i++ {
		e := []byte(fmt.Sprintf("entry %d", i))
		l.Append(e)
		ref.AppendData(e)
		if i%37 == 0 || i == 255 || i == 256 || i == 699 {
			if got, want := l.Root(uint64(i+1)), ref.Hash(); string(got[:]) != string(want) {
				t.Fatalf("size %d: root %x, RFC 6962 root %x", i+1, got, want)
			}
		}
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Honest tiles are the ones tlog authenticates; the checkpoint is signed
// by VKey; tiles beyond the tree are 404.
func TestServesAuthenticTiles(t *testing.T) {
	l := New(t, "tilelog.test/b")
	for i := 0; i < 300; i++ {
		l.Append([]byte(fmt.Sprintf("e%d", i)))
	}
	cp := l.Publish()
	v, err := note.NewVerifier(l.VKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(cp, note.VerifierList(v)); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	code, served := get(t, l.URL+"/checkpoint")
	if code != 200 || string(served) != string(cp) {
		t.Fatalf("GET /checkpoint: %d %q", code, served)
	}
	for _, p := range []string{"/tile/0/000", "/tile/0/001.p/44", "/tile/1/000.p/1"} {
		if code, b := get(t, l.URL+p); code != 200 || len(b)%32 != 0 {
			t.Fatalf("GET %s: %d, %d bytes", p, code, len(b))
		}
	}
	code, b := get(t, l.URL+"/tile/entries/001.p/44")
	if code != 200 || len(b) != 44*(2+4) || string(b[:6]) != "\x00\x04e256" {
		t.Fatalf("GET entries: %d %q", code, b)
	}
	for _, p := range []string{"/tile/0/001", "/tile/0/001.p/45", "/tile/2/000.p/1", "/tile/entries/002.p/1", "/x"} {
		if code, _ := get(t, l.URL+p); code != 404 {
			t.Fatalf("GET %s: %d, want 404", p, code)
		}
	}
	// tlog authenticates what is served against the checkpoint's root.
	root := l.Root(300)
	hr := tlog.TileHashReader(tlog.Tree{N: 300, Hash: root}, &httpTiles{t: t, url: l.URL})
	if _, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, 7), tlog.StoredHashIndex(0, 299)}); err != nil {
		t.Fatal(err)
	}
	l.SetLie(LieBadTile, 0)
	if _, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, 7)}); err == nil {
		t.Fatal("a bad tile was authenticated")
	}
}

type httpTiles struct {
	t   *testing.T
	url string
}

func (h *httpTiles) Height() int { return 8 }
func (h *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	var out [][]byte
	for _, tl := range tiles {
		p := tl.Path()[len("tile/8/"):]
		code, b := get(h.t, h.url+"/tile/"+p)
		if code != 200 {
			return nil, fmt.Errorf("%s: %d", p, code)
		}
		out = append(out, b)
	}
	return out, nil
}
func (h *httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}
