package httpclient

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestBudget: bytes read from open bodies are charged, closing a body
// releases them, and the read that would go over the budget fails with a
// *BudgetError naming the request.
func TestBudget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Write(bytes.Repeat([]byte("x"), n))
	}))
	defer srv.Close()
	b := NewBudget("test answers", 100<<10)
	hc := b.Client(srv.Client())
	get := func(n int) *http.Response {
		t.Helper()
		resp, err := hc.Get(srv.URL + "/?n=" + strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	a := get(60 << 10)
	if got, err := io.ReadAll(a.Body); err != nil || len(got) != 60<<10 {
		t.Fatalf("within the budget: %d bytes, %v", len(got), err)
	}
	if b.Held() != 60<<10 {
		t.Fatalf("held %d, want %d while the body is open", b.Held(), 60<<10)
	}
	// A second answer that does not fit next to the first fails.
	c := get(60 << 10)
	_, err := io.ReadAll(c.Body)
	var be *BudgetError
	if !errors.As(err, &be) || be.Max != 100<<10 || be.URL == "" {
		t.Fatalf("over the budget: %v", err)
	}
	c.Body.Close()
	if b.Held() != 60<<10 {
		t.Fatalf("held %d after the failed body closed, want %d", b.Held(), 60<<10)
	}
	// Closing the first releases its bytes: the same answer now fits.
	a.Body.Close()
	if b.Held() != 0 {
		t.Fatalf("held %d after both bodies closed", b.Held())
	}
	d := get(60 << 10)
	if got, err := io.ReadAll(d.Body); err != nil || len(got) != 60<<10 {
		t.Fatalf("after the release: %d bytes, %v", len(got), err)
	}
	d.Body.Close()
	if p := b.Peak(); p > 100<<10 || p < 60<<10 {
		t.Errorf("peak %d, want between 60 KiB and the budget", p)
	}
	if Temporary(be) {
		t.Error("a budget error must not be retried")
	}
}
