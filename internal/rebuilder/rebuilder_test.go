package rebuilder_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/rebuilder"
	"github.com/bintrans/bintrans/internal/testkit/rebuildertest"
	"github.com/bintrans/bintrans/verify"
)

// rb is one fake rebuilder under a host name of the test's choosing.
type rb struct {
	host string // "r1.test" or "r1.test:8080"
	srv  *rebuildertest.Server
}

// url is the rebuilder's base URL as a user would configure it.
func (r rb) url() string {
	return "http://" + r.host + strings.TrimPrefix(r.srv.URL, r.srv.HTTP.URL)
}

func start(t testing.TB, host string, opts rebuildertest.Options, pkgs ...rebuildertest.Package) rb {
	t.Helper()
	s := rebuildertest.New(t, opts)
	s.Add(pkgs...)
	return rb{host: host, srv: s}
}

// newSet builds a Set over the fake rebuilders, reached by their host names.
func newSet(t testing.TB, cfg rebuilder.Config, rbs ...rb) *rebuilder.Set {
	t.Helper()
	hosts := map[string]*rebuildertest.Server{}
	for _, r := range rbs {
		hosts[r.host] = r.srv
		if len(cfg.URLs) < len(rbs) {
			cfg.URLs = append(cfg.URLs, r.url())
		}
	}
	tr := rebuildertest.Transport(hosts)
	t.Cleanup(tr.CloseIdleConnections)
	s, err := rebuilder.New(cfg, &http.Client{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pkg(name, version, arch, status string) rebuildertest.Package {
	return rebuildertest.Package{Name: name, Version: version, Arch: arch, Status: status, SHA256: shaOf(name + version + arch)}
}

func art(name, version, arch string) verify.Artifact {
	return verify.Artifact{Filename: name + "-" + version + "-" + arch + ".pkg.tar.zst", Repo: "core", Arch: "x86_64",
		Name: name, Version: version, SHA256: shaOf(name + version + arch)}
}

func shaOf(s string) string {
	return fmt.Sprintf("%064x", []byte(s))[:64]
}

type want struct {
	list   string // confirmed, bad, unknown, unreachable
	reason string // substring of the reason (not for confirmed)
}

// check asserts that rebuilder u is in exactly the wanted list of v.
func check(t *testing.T, label string, v verify.RebuildVerdict, u string, w want) {
	t.Helper()
	lists := map[string][]string{"confirmed": v.Confirmed, "bad": v.Bad, "unknown": v.Unknown, "unreachable": v.Unreachable}
	var in []string
	for name, l := range lists {
		if slices.Contains(l, u) {
			in = append(in, name)
		}
	}
	if len(in) != 1 || in[0] != w.list {
		t.Errorf("%s: %s is in %v, want [%s] (verdict %+v)", label, u, in, w.list, v)
		return
	}
	r, has := v.Reasons[u]
	if w.list == "confirmed" {
		if has {
			t.Errorf("%s: confirmed with reason %q", label, r)
		}
		return
	}
	if !strings.Contains(r, w.reason) {
		t.Errorf("%s: reason %q, want it to contain %q", label, r, w.reason)
	}
}

func TestStatusMatrix(t *testing.T) {
	pkgs := []rebuildertest.Package{
		pkg("good", "1.0-1", "x86_64", "GOOD"),
		pkg("bad", "1.0-1", "x86_64", "BAD"),
		pkg("unkwn", "1.0-1", "x86_64", "UNKWN"),
		pkg("nostatus", "1.0-1", "x86_64", ""),
		pkg("oldver", "1.0-1", "x86_64", "GOOD"),
		pkg("epoch", "1:2.0-3", "x86_64", "GOOD"),
		pkg("filesystem", "2025.10.12-1", "any", "GOOD"),
		pkg("archonly", "1.0-1", "any", "GOOD"),
		{Name: "debianpkg", Version: "1.0-1", Arch: "x86_64", Status: "GOOD", Distribution: "debian"},
		pkg("bad", "0.9-1", "x86_64", "GOOD"), // an older GOOD row does not mask the current BAD
	}
	cases := []struct {
		a verify.Artifact
		w want
	}{
		{art("good", "1.0-1", "x86_64"), want{"confirmed", ""}},
		{art("bad", "1.0-1", "x86_64"), want{"bad", "BAD"}},
		{art("unkwn", "1.0-1", "x86_64"), want{"unknown", "status UNKWN"}},
		{art("oldver", "1.0-2", "x86_64"), want{"unknown", "no entry for oldver 1.0-2"}},
		{art("epoch", "1:2.0-3", "x86_64"), want{"confirmed", ""}},
		{art("epoch", "2.0-3", "x86_64"), want{"unknown", "no entry"}},
		{art("filesystem", "2025.10.12-1", "any"), want{"confirmed", ""}},
		{art("archonly", "1.0-1", "x86_64"), want{"unknown", "only for any"}},
		{art("missing", "1.0-1", "x86_64"), want{"unknown", "no entry for missing"}},
		{art("debianpkg", "1.0-1", "x86_64"), want{"unknown", "no entry"}},
		{verify.Artifact{Filename: "weird.bin"}, want{"unknown", "name or version unknown"}},
	}
	for _, api := range []string{"v1", "v0"} {
		t.Run(api, func(t *testing.T) {
			r := start(t, "r1.test", rebuildertest.Options{V0Only: api == "v0"}, pkgs...)
			s := newSet(t, rebuilder.Config{}, r)
			arts := make([]verify.Artifact, len(cases))
			for i, c := range cases {
				arts[i] = c.a
			}
			vs := s.Verdicts(context.Background(), arts, nil)
			if len(vs) != len(arts) {
				t.Fatalf("%d verdicts for %d artifacts", len(vs), len(arts))
			}
			for i, c := range cases {
				check(t, c.a.Filename, vs[i], r.url(), c.w)
			}
			// The v0-only case kept nostatus: UNKWN in v0, null in v1.
			n := r.srv.Requests()
			if api == "v1" && (n.V0List != 0 || n.V1Binary != 10) {
				t.Errorf("v1 rebuilder: requests %+v, want 10 v1 searches (one per distinct name+version) and no v0", n)
			}
			if api == "v0" && (n.V1Binary != 1 || n.V0List != 10) {
				t.Errorf("v0 rebuilder: requests %+v, want one v1 probe then 10 v0 lists", n)
			}
		})
	}
}

func TestNullStatusIsUnknown(t *testing.T) {
	r := start(t, "r1.test", rebuildertest.Options{}, pkg("nostatus", "1.0-1", "x86_64", ""))
	v := newSet(t, rebuilder.Config{}, r).Verdicts(context.Background(), []verify.Artifact{art("nostatus", "1.0-1", "x86_64")}, nil)
	check(t, "null status", v[0], r.url(), want{"unknown", "status none"})
}

// The seed's exact request keeps working against a v0-only rebuilder.
func TestSeedV0Path(t *testing.T) {
	r := start(t, "r1.test", rebuildertest.Options{V0Only: true}, pkg("rebuilderd", "0.18.1-1", "x86_64", "GOOD"))
	v := newSet(t, rebuilder.Config{}, r).Verdicts(context.Background(), []verify.Artifact{art("rebuilderd", "0.18.1-1", "x86_64")}, nil)
	check(t, "v0", v[0], r.url(), want{"confirmed", ""})
	if !slices.Contains(r.srv.Log(), "/api/v0/pkgs/list?distro=archlinux&name=rebuilderd") {
		t.Errorf("requests %q lack the seed's v0 query", r.srv.Log())
	}
}

func TestSubPathBaseURL(t *testing.T) {
	_, priv := newKey(t)
	for _, v0 := range []bool{false, true} {
		r := start(t, "example.test", rebuildertest.Options{Prefix: "/rebuild/", V0Only: v0, Key: priv},
			pkg("rebuilderd", "0.18.1-1", "x86_64", "GOOD"))
		base := "http://example.test/rebuild" // no trailing slash: must still be a base
		cfg := rebuilder.Config{URLs: []string{base}, Keys: map[string][]ed25519.PublicKey{base + "/": {pinnedKey(t, priv)}}}
		v := newSet(t, cfg, r).Verdicts(context.Background(), []verify.Artifact{art("rebuilderd", "0.18.1-1", "x86_64")}, nil)
		check(t, fmt.Sprintf("v0only=%v", v0), v[0], base, want{"confirmed", ""})
		for _, p := range r.srv.Log() {
			if !strings.HasPrefix(p, "/rebuild/api/") {
				t.Errorf("request %q outside the sub-path", p)
			}
		}
		if n := r.srv.Requests(); n.Attestation != 1 || n.Other != 0 {
			t.Errorf("requests %+v, want one attestation and nothing outside the API", n)
		}
	}
}

func TestFaults(t *testing.T) {
	cases := []struct {
		fault  rebuildertest.Fault
		reason string
	}{
		{rebuildertest.Fault500, "HTTP 500"},
		{rebuildertest.FaultHTML, "Bad Gateway"},
		{rebuildertest.FaultJSON, "invalid JSON"},
		{rebuildertest.FaultHuge, "larger than"},
		{rebuildertest.FaultHang, "timeout"},
		{rebuildertest.Fault404, "404"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.fault), func(t *testing.T) {
			r := start(t, "r1.test", rebuildertest.Options{}, pkg("good", "1.0-1", "x86_64", "GOOD"), pkg("other", "1.0-1", "any", "GOOD"))
			r.srv.SetFault(c.fault)
			timeout := time.Minute // a hang is stopped by the timeout, nothing else may be
			if c.fault == rebuildertest.FaultHang {
				timeout = 300 * time.Millisecond
			}
			s := newSet(t, rebuilder.Config{Timeout: timeout}, r)
			arts := []verify.Artifact{art("good", "1.0-1", "x86_64"), art("other", "1.0-1", "any")}
			vs := s.Verdicts(context.Background(), arts, nil)
			for i := range arts {
				check(t, arts[i].Filename, vs[i], r.url(), want{"unreachable", c.reason})
				if got := rebuilder.Confirmations(vs[i]); got != 0 {
					t.Errorf("confirmations = %d, want 0", got)
				}
			}
		})
	}
}

func TestHTMLBodyWith200IsNotJSON(t *testing.T) {
	r := start(t, "r1.test", rebuildertest.Options{}, pkg("good", "1.0-1", "x86_64", "GOOD"))
	r.srv.SetFault(rebuildertest.FaultHTML)
	v := newSet(t, rebuilder.Config{}, r).Verdicts(context.Background(), []verify.Artifact{art("good", "1.0-1", "x86_64")}, nil)
	check(t, "html", v[0], r.url(), want{"unreachable", "not a JSON object"})
}

func TestCancelled(t *testing.T) {
	r := start(t, "r1.test", rebuildertest.Options{}, pkg("good", "1.0-1", "x86_64", "GOOD"))
	r.srv.SetFault(rebuildertest.FaultHang)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	v := newSet(t, rebuilder.Config{Timeout: time.Minute}, r).Verdicts(ctx, []verify.Artifact{art("good", "1.0-1", "x86_64")}, nil)
	check(t, "cancelled", v[0], r.url(), want{"unreachable", "cancelled"})
}

func TestThresholdWithThreeRebuilders(t *testing.T) {
	// a: GOOD, GOOD, BAD.  b: GOOD, UNKWN, missing.  c: BAD everywhere.
	r1 := start(t, "r1.test", rebuildertest.Options{}, pkg("a", "1-1", "x86_64", "GOOD"), pkg("b", "1-1", "x86_64", "GOOD"), pkg("c", "1-1", "x86_64", "BAD"))
	r2 := start(t, "r2.test", rebuildertest.Options{V0Only: true}, pkg("a", "1-1", "x86_64", "GOOD"), pkg("b", "1-1", "x86_64", "UNKWN"), pkg("c", "1-1", "x86_64", "BAD"))
	r3 := start(t, "r3.test", rebuildertest.Options{}, pkg("a", "1-1", "x86_64", "BAD"), pkg("c", "1-1", "x86_64", "BAD"))
	down := start(t, "down.test", rebuildertest.Options{})
	down.srv.SetFault(rebuildertest.Fault500)
	arts := []verify.Artifact{art("a", "1-1", "x86_64"), art("b", "1-1", "x86_64"), art("c", "1-1", "x86_64")}

	vs := newSet(t, rebuilder.Config{}, r1, r2, r3).Verdicts(context.Background(), arts, nil)
	confirms := []int{2, 1, 0}
	for i, v := range vs {
		if got := rebuilder.Confirmations(v); got != confirms[i] || len(v.Confirmed) != got {
			t.Fatalf("%s: confirmations %d (listed %v), want %d", arts[i].Filename, got, v.Confirmed, confirms[i])
		}
		for threshold := 0; threshold <= 3; threshold++ {
			if meets := rebuilder.Confirmations(v) >= threshold; meets != (confirms[i] >= threshold) {
				t.Errorf("%s threshold %d: meets=%v", arts[i].Filename, threshold, meets)
			}
		}
	}
	check(t, "a", vs[0], r3.url(), want{"bad", "BAD"})
	check(t, "b", vs[1], r2.url(), want{"unknown", "UNKWN"})
	check(t, "b", vs[1], r3.url(), want{"unknown", "no entry"})
	if len(vs[2].Bad) != 3 {
		t.Errorf("c: bad = %v, want all three", vs[2].Bad)
	}

	// An unreachable rebuilder counts zero, the others still count.
	vs = newSet(t, rebuilder.Config{}, r1, down, r3).Verdicts(context.Background(), arts[:1], nil)
	if got := rebuilder.Confirmations(vs[0]); got != 1 {
		t.Errorf("with one rebuilder down: %d confirmations, want 1", got)
	}
	check(t, "a", vs[0], down.url(), want{"unreachable", "HTTP 500"})
}

func TestHostDedupe(t *testing.T) {
	good := pkg("a", "1-1", "x86_64", "GOOD")
	same1 := start(t, "same.test", rebuildertest.Options{Prefix: "/amd64/"}, good)
	same2 := start(t, "same.test:8080", rebuildertest.Options{Prefix: "/all/"}, good)
	other := start(t, "other.test", rebuildertest.Options{}, good)
	v := newSet(t, rebuilder.Config{}, same1, same2, other).Verdicts(context.Background(), []verify.Artifact{art("a", "1-1", "x86_64")}, nil)[0]
	if got := rebuilder.Confirmations(v); got != 2 {
		t.Fatalf("confirmations = %d, want 2 (same host counted once): %+v", got, v)
	}
	if !slices.Equal(v.Confirmed, []string{same1.url(), other.url()}) {
		t.Errorf("confirmed = %v", v.Confirmed)
	}
	if r := v.Reasons[same2.url()]; !strings.Contains(r, "counted once with "+same1.url()) {
		t.Errorf("reason for the duplicate = %q", r)
	}
	// The helper also dedupes lists it did not build.
	if got := rebuilder.Confirmations(verify.RebuildVerdict{Confirmed: []string{"https://x.org/a/", "https://X.org:443/b/", "https://y.org/"}}); got != 2 {
		t.Errorf("Confirmations = %d, want 2", got)
	}
}

func TestPinnedKeyAttestations(t *testing.T) {
	_, priv := newKey(t)
	_, stranger := newKey(t)
	forged := pkg("forged", "1-1", "x86_64", "GOOD")
	forged.Attestation = rebuildertest.SignLink(rebuildertest.DefaultLink(forged), rebuildertest.Signer{Key: stranger})
	lying := pkg("lying", "1-1", "x86_64", "GOOD")
	lying.SHA256 = other // the rebuilder reproduced (and signed) another content
	noatt := pkg("noatt", "1-1", "x86_64", "GOOD")
	noatt.NoAttestation = true
	html := pkg("html", "1-1", "x86_64", "GOOD")
	html.Attestation = []byte("<html><title>502 Bad Gateway</title></html>")
	pkgs := []rebuildertest.Package{pkg("ok", "1-1", "x86_64", "GOOD"), forged, lying, noatt, pkg("isbad", "1-1", "x86_64", "BAD"), html}
	arts := []verify.Artifact{art("ok", "1-1", "x86_64"), art("forged", "1-1", "x86_64"), art("lying", "1-1", "x86_64"),
		art("noatt", "1-1", "x86_64"), art("isbad", "1-1", "x86_64"), art("html", "1-1", "x86_64")}
	for _, v0 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v0only=%v", v0), func(t *testing.T) {
			keyed := start(t, "keyed.test", rebuildertest.Options{V0Only: v0, Key: priv}, pkgs...)
			open := start(t, "open.test", rebuildertest.Options{V0Only: v0, Key: priv}, pkgs...)
			cfg := rebuilder.Config{Keys: map[string][]ed25519.PublicKey{keyed.url(): {pinnedKey(t, priv)}}}
			vs := newSet(t, cfg, keyed, open).Verdicts(context.Background(), arts, nil)
			check(t, "ok", vs[0], keyed.url(), want{"confirmed", ""})
			check(t, "forged", vs[1], keyed.url(), want{"unknown", "no signature by the pinned key"})
			check(t, "lying", vs[2], keyed.url(), want{"bad", "product sha256 " + other})
			check(t, "noatt", vs[3], keyed.url(), want{"unknown", "no attestation"})
			check(t, "isbad", vs[4], keyed.url(), want{"bad", "BAD"})
			check(t, "html", vs[5], keyed.url(), want{"unknown", "malformed in-toto link"})
			// Without a pinned key a GOOD is taken as it comes.
			for i := range 4 {
				check(t, arts[i].Filename, vs[i], open.url(), want{"confirmed", ""})
			}
			if n := open.srv.Requests(); n.Attestation != 0 {
				t.Errorf("unpinned rebuilder: %d attestation requests, want 0", n.Attestation)
			}
			if n := keyed.srv.Requests(); n.Attestation != 4 { // ok, forged, lying, html (noatt has none listed)
				t.Errorf("pinned rebuilder: %d attestation requests, want 4", n.Attestation)
			}

			// The engine's computed hash wins over the db's.
			vs = newSet(t, cfg, keyed).Verdicts(context.Background(), arts[:1], []string{other})
			check(t, "ok with another computed sha", vs[0], keyed.url(), want{"bad", "product sha256"})
		})
	}
}

func TestNewRejects(t *testing.T) {
	hc := http.DefaultClient
	pub, _ := newKey(t)
	cases := map[string]rebuilder.Config{
		"no urls":         {},
		"ftp":             {URLs: []string{"ftp://x.org/"}},
		"no host":         {URLs: []string{"https:///x"}},
		"query":           {URLs: []string{"https://x.org/?a=b"}},
		"fragment":        {URLs: []string{"https://x.org/#f"}},
		"duplicate":       {URLs: []string{"https://x.org/r", "https://x.org/r/"}},
		"key for nothing": {URLs: []string{"https://x.org/"}, Keys: map[string][]ed25519.PublicKey{"https://y.org/": {pub}}},
		"short key":       {URLs: []string{"https://x.org/"}, Keys: map[string][]ed25519.PublicKey{"https://x.org": {pub[:31]}}},
	}
	for name, cfg := range cases {
		if _, err := rebuilder.New(cfg, hc); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := rebuilder.New(rebuilder.Config{URLs: []string{"https://x.org"}}, nil); err == nil {
		t.Error("New accepted a nil client")
	}
}
