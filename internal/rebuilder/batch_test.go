package rebuilder_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/rebuilder"
	"github.com/bintrans/bintrans/internal/testkit/rebuildertest"
	"github.com/bintrans/bintrans/verify"
)

// batch returns n GOOD packages and their artifacts (a third arch "any").
func batch(n int) ([]rebuildertest.Package, []verify.Artifact) {
	pkgs := make([]rebuildertest.Package, n)
	arts := make([]verify.Artifact, n)
	for i := range n {
		arch := "x86_64"
		if i%3 == 0 {
			arch = "any"
		}
		name := fmt.Sprintf("pkg%04d", i)
		pkgs[i] = pkg(name, "1.0-1", arch, "GOOD")
		arts[i] = art(name, "1.0-1", arch)
	}
	return pkgs, arts
}

type batchMode struct {
	name          string
	listThreshold int
	keyed         bool
	// wanted requests per rebuilder: v1 (r1, r2) and v0-only (r3)
	v1Binary, v1Attest, v0Binary, v0List int64
}

var batchModes = []batchMode{
	{name: "per-name", listThreshold: -1, v1Binary: 500, v0Binary: 1, v0List: 500},
	{name: "listing", listThreshold: 0, v1Binary: 1, v0Binary: 1, v0List: 500},
	{name: "listing+pinned-key", listThreshold: 0, keyed: true, v1Binary: 1, v1Attest: 500, v0Binary: 1, v0List: 500},
}

// setupBatch starts two v1 rebuilders and one v0-only rebuilder (rebuilderd
// ≤ 0.25), each knowing the n packages.
func setupBatch(t testing.TB, n int, m batchMode, latency time.Duration) (*rebuilder.Set, []rb, []verify.Artifact) {
	_, priv := newKey(t)
	pkgs, arts := batch(n)
	r1 := start(t, "r1.test", rebuildertest.Options{Key: priv, Latency: latency}, pkgs...)
	r2 := start(t, "r2.test", rebuildertest.Options{Key: priv, Latency: latency}, pkgs...)
	r3 := start(t, "r3.test", rebuildertest.Options{V0Only: true, Latency: latency}, pkgs...)
	// The budget is generous on purpose: this counts requests, and a loaded
	// CI machine under -race must not turn a slow answer into a miss.
	cfg := rebuilder.Config{ListThreshold: m.listThreshold, Timeout: 20 * time.Minute}
	if m.keyed {
		cfg.Keys = map[string][]ed25519.PublicKey{r1.url(): {pinnedKey(t, priv)}, r2.url(): {pinnedKey(t, priv)}}
	}
	return newSet(t, cfg, r1, r2, r3), []rb{r1, r2, r3}, arts
}

// TestBatch500x3 asks three rebuilders about a 500-package batch and checks
// how many requests each received. The wall time is logged (go test -v),
// not asserted; BenchmarkBatch500x3 measures it.
func TestBatch500x3(t *testing.T) {
	for _, m := range batchModes {
		t.Run(m.name, func(t *testing.T) {
			if testing.Short() && m.name != "listing" {
				t.Skip("-short: the listing mode only")
			}
			s, rbs, arts := setupBatch(t, 500, m, 0)
			t0 := time.Now()
			vs := s.Verdicts(context.Background(), arts, nil)
			wall := time.Since(t0)
			for i, v := range vs {
				if got := rebuilder.Confirmations(v); got != 3 {
					t.Fatalf("%s: %d confirmations, want 3: %+v", arts[i].Filename, got, v)
				}
			}
			var total int64
			for i, r := range rbs {
				n := r.srv.Requests()
				total += n.Total
				want := rebuildertest.Counts{V1Binary: m.v1Binary, Attestation: m.v1Attest}
				if i == 2 {
					want = rebuildertest.Counts{V1Binary: m.v0Binary, V0List: m.v0List}
				}
				want.Total = want.V0List + want.V1Binary + want.Attestation
				if n != want {
					t.Errorf("%s: requests %+v, want %+v", r.host, n, want)
				}
			}
			t.Logf("%s: 500 packages x 3 rebuilders: %d requests, %v wall", m.name, total, wall)
		})
	}
}

// BenchmarkBatch500x3 measures the wall time of a 500-package batch against
// three rebuilders, on loopback and with 50 ms added to every answer (a
// distant rebuilder; requests in flight are bounded by Concurrency).
func BenchmarkBatch500x3(b *testing.B) {
	for _, lat := range []time.Duration{0, 50 * time.Millisecond} {
		for _, m := range batchModes {
			b.Run(fmt.Sprintf("%s/latency=%v", m.name, lat), func(b *testing.B) { benchBatch(b, m, lat) })
		}
	}
}

func benchBatch(b *testing.B, m batchMode, lat time.Duration) {
	s, rbs, arts := setupBatch(b, 500, m, lat)
	b.ResetTimer()
	for b.Loop() {
		s.Verdicts(context.Background(), arts, nil)
	}
	var total int64
	for _, r := range rbs {
		total += r.srv.Requests().Total
	}
	b.ReportMetric(float64(total)/float64(b.N), "requests/op")
}

// A listing of several pages is followed to its end; a package the listing
// does not hold in that version (an older one, behind a lagging mirror) is
// still found by name.
func TestListingPagesAndStragglers(t *testing.T) {
	pkgs, arts := batch(2500)
	old := pkg("straggler", "1-1", "x86_64", "GOOD")
	old.Unseen = true
	pkgs = append(pkgs, old, pkg("straggler", "1-2", "x86_64", "GOOD"))
	r := start(t, "r1.test", rebuildertest.Options{}, pkgs...)
	s := newSet(t, rebuilder.Config{ListThreshold: 2}, r)
	ask := []verify.Artifact{arts[1], arts[2400], art("straggler", "1-1", "x86_64")}
	vs := s.Verdicts(context.Background(), ask, nil)
	for i, v := range vs {
		check(t, ask[i].Filename, v, r.url(), want{"confirmed", ""})
	}
	if n := r.srv.Requests(); n.V1Binary != 4 {
		t.Errorf("requests %+v, want 3 listing pages + 1 search", n)
	}
	wantLog := []string{
		"/api/v1/packages/binary?distribution=archlinux&limit=1000&seen_only=true",
		"/api/v1/packages/binary?after=1000&distribution=archlinux&limit=1000&seen_only=true",
		"/api/v1/packages/binary?after=2000&distribution=archlinux&limit=1000&seen_only=true",
		"/api/v1/packages/binary?distribution=archlinux&limit=1000&name=straggler&version=1-1",
	}
	if got := r.srv.Log(); fmt.Sprint(got) != fmt.Sprint(wantLog) {
		t.Errorf("requests\n%q\nwant\n%q", got, wantLog)
	}
}

// A listing that does not fit the body limit falls back to searches.
func TestListingTooLargeFallsBackToSearch(t *testing.T) {
	pkgs, arts := batch(2500)
	r := start(t, "r1.test", rebuildertest.Options{}, pkgs...)
	s := newSet(t, rebuilder.Config{ListThreshold: 2, MaxBodySize: 64 << 10}, r)
	vs := s.Verdicts(context.Background(), arts[:3], nil)
	for i, v := range vs {
		check(t, arts[i].Filename, v, r.url(), want{"confirmed", ""})
	}
	if n := r.srv.Requests(); n.V1Binary != 4 {
		t.Errorf("requests %+v, want 1 refused listing + 3 searches", n)
	}
}
