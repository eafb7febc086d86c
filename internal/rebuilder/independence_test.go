package rebuilder_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/rebuilder"
	"github.com/bintrans/bintrans/internal/testkit/rebuildertest"
	"github.com/bintrans/bintrans/verify"
)

func TestNormalizeHost(t *testing.T) {
	same := [][]string{
		{"rb.example", "RB.example", "rb.example.", "Rb.Example.."},
		{"bücher.example", "BÜCHER.example", "xn--bcher-kva.example", "XN--BCHER-KVA.example.", "bücher。example"},
		{"127.0.0.1", "::ffff:127.0.0.1", "[::ffff:127.0.0.1]"},
		{"2001:db8::1", "2001:DB8:0::1", "[2001:db8::1]"},
	}
	for _, group := range same {
		want, err := rebuilder.NormalizeHost(group[0])
		if err != nil {
			t.Fatalf("%q: %v", group[0], err)
		}
		for _, h := range group[1:] {
			got, err := rebuilder.NormalizeHost(h)
			if err != nil || got != want {
				t.Errorf("NormalizeHost(%q) = %q, %v; want %q (as %q)", h, got, err, want, group[0])
			}
		}
	}
	if got, _ := rebuilder.NormalizeHost("bücher.example"); got != "xn--bcher-kva.example" {
		t.Errorf("IDNA: %q", got)
	}
	for _, bad := range []string{".", "...", "a\u200b\u0600b.example", "].", "a..b", "a b.example", "a%2fb"} {
		if got, err := rebuilder.NormalizeHost(bad); err == nil {
			t.Errorf("NormalizeHost(%q) = %q, want an error", bad, got)
		}
	}
}

// TestNewSameURL: URLs that are one URL once normalized are refused as
// given twice; the key of a pinned rebuilder matches it in any spelling.
func TestNewSameURL(t *testing.T) {
	for _, pair := range [][2]string{
		{"https://rb.example/", "https://RB.example.:443/"},
		{"http://rb.example/r/", "http://rb.example:80/r"},
		{"https://rb.example/a/", "https://rb.example/a/b/../"},
		{"https://rb.example//x/", "https://rb.example/x"},
		{"https://bücher.example/", "https://xn--bcher-kva.example/"},
	} {
		_, err := rebuilder.New(rebuilder.Config{URLs: pair[:]}, http.DefaultClient)
		if err == nil || !strings.Contains(err.Error(), "given twice") {
			t.Errorf("%q: %v, want \"given twice\"", pair, err)
		}
	}
	pub, _ := newKey(t)
	if _, err := rebuilder.New(rebuilder.Config{URLs: []string{"https://rb.example/"},
		Keys: map[string][]ed25519.PublicKey{"https://RB.EXAMPLE.:443": {pub}}}, http.DefaultClient); err != nil {
		t.Errorf("key for another spelling of the URL: %v", err)
	}
}

// loopback starts a fake rebuilder on addr (127.0.0.1 or 127.0.0.2) that
// reproduced every package of pkgs, and returns it with its port.
func loopback(t *testing.T, addr string, pkgs ...rebuildertest.Package) (*rebuildertest.Server, string) {
	t.Helper()
	s := rebuildertest.New(t, rebuildertest.Options{Addr: addr + ":0"})
	s.Add(pkgs...)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s, u.Port()
}

// TestIndependenceLoopback: real rebuilders on 127.0.0.1 and 127.0.0.2,
// resolved with the system resolver as bintrans does without a proxy.
func TestIndependenceLoopback(t *testing.T) {
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	good := pkg("a", "1-1", "x86_64", "GOOD")
	a := art("a", "1-1", "x86_64")
	_, p1 := loopback(t, "127.0.0.1", good)
	_, p2 := loopback(t, "127.0.0.2", good)
	_, p3 := loopback(t, "127.0.0.1", good) // another rebuilderd on the first machine
	hc := &http.Client{Timeout: 10 * time.Second}
	verdict := func(t *testing.T, urls ...string) (*rebuilder.Set, verify.RebuildVerdict) {
		t.Helper()
		s, err := rebuilder.New(rebuilder.Config{URLs: urls, Resolver: net.DefaultResolver}, hc)
		if err != nil {
			t.Fatal(err)
		}
		return s, s.Verdicts(context.Background(), []verify.Artifact{a}, nil)[0]
	}
	t.Run("two machines", func(t *testing.T) {
		u1, u2 := "http://127.0.0.1:"+p1+"/", "http://127.0.0.2:"+p2+"/"
		s, v := verdict(t, u1, u2)
		if s.Independent() != 2 || len(v.Confirmed) != 2 || len(s.Merged()) != 0 {
			t.Fatalf("independent %d, confirmed %v, merged %v", s.Independent(), v.Confirmed, s.Merged())
		}
	})
	for name, second := range map[string]string{
		"a name and its address": "http://localhost:" + p3 + "/",
		"trailing dot and case":  "http://LOCALHOST.:" + p3 + "/",
		"mapped IPv6 form":       "http://[::ffff:127.0.0.1]:" + p3 + "/",
	} {
		t.Run(name, func(t *testing.T) {
			u1 := "http://127.0.0.1:" + p1 + "/"
			s, v := verdict(t, u1, second)
			if s.Independent() != 1 || !slices.Equal(v.Confirmed, []string{u1}) {
				t.Fatalf("independent %d, confirmed %v: want one confirmation from %s", s.Independent(), v.Confirmed, u1)
			}
			m := s.Merged()
			if len(m) != 1 || !strings.Contains(m[0], second) || !strings.Contains(m[0], u1) {
				t.Errorf("merged %q does not name both", m)
			}
			if r := v.Reasons[second]; !strings.Contains(r, "counted once with "+u1) || !strings.Contains(r, "127.0.0.1") {
				t.Errorf("reason for the second URL: %q", r)
			}
		})
	}
}

// fakeResolver answers from a table; a missing name is an error.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	as, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if as == nil {
		<-ctx.Done() // a resolver that never answers
		return nil, ctx.Err()
	}
	var out []netip.Addr
	for _, s := range as {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// TestIndependenceByAddress: names whose addresses overlap count once,
// transitively; a name that does not resolve (or whose lookup times out)
// is neither asked nor counted, and makes no other two the same.
func TestIndependenceByAddress(t *testing.T) {
	good := pkg("a", "1-1", "x86_64", "GOOD")
	rbs := []rb{
		start(t, "a.test", rebuildertest.Options{}, good),
		start(t, "b.test", rebuildertest.Options{}, good),
		start(t, "c.test", rebuildertest.Options{}, good),
		start(t, "d.test", rebuildertest.Options{}, good),
		start(t, "gone.test", rebuildertest.Options{}, good),
		start(t, "slow.test", rebuildertest.Options{}, good),
	}
	res := fakeResolver{
		"a.test":    {"192.0.2.1"},
		"b.test":    {"192.0.2.2", "2001:db8::2"},
		"c.test":    {"2001:db8::2", "192.0.2.3"}, // shares an address with b
		"d.test":    {"192.0.2.3"},                // with c, hence with b
		"slow.test": nil,
	}
	s := newSet(t, rebuilder.Config{Resolver: res, ResolveTimeout: 300 * time.Millisecond}, rbs...)
	v := s.Verdicts(context.Background(), []verify.Artifact{art("a", "1-1", "x86_64")}, nil)[0]
	if !slices.Equal(v.Confirmed, []string{rbs[0].url(), rbs[1].url()}) {
		t.Fatalf("confirmed %v, want a and b (c and d count with b; gone and slow not at all)", v.Confirmed)
	}
	// a, {b,c,d}, gone, slow: four groups, of which two cannot be judged.
	if s.Independent() != 4 {
		t.Errorf("independent = %d, want 4", s.Independent())
	}
	if m := s.Merged(); len(m) != 2 || !strings.Contains(m[0], "both resolve to 2001:db8::2") || !strings.Contains(m[1], "192.0.2.3") {
		t.Errorf("merged %q", m)
	}
	for _, i := range []int{4, 5} {
		check(t, rbs[i].host, v, rbs[i].url(), want{"unreachable", "could not be resolved"})
		if n := rbs[i].srv.Requests().Total; n != 0 {
			t.Errorf("%s was asked %d times although its independence is unknown", rbs[i].host, n)
		}
	}
	if u := s.Unjudged(); len(u) != 2 {
		t.Errorf("unjudged %q", u)
	}

	// With one host only there is nothing to judge: no lookup at all.
	calls := 0
	one := newSet(t, rebuilder.Config{Resolver: countingResolver{&calls}}, rbs[4])
	v = one.Verdicts(context.Background(), []verify.Artifact{art("a", "1-1", "x86_64")}, nil)[0]
	if calls != 0 || len(v.Confirmed) != 1 {
		t.Errorf("one rebuilder: %d lookups, confirmed %v", calls, v.Confirmed)
	}
	// Without a resolver (through a proxy), names alone decide.
	byName := newSet(t, rebuilder.Config{}, rbs[1], rbs[2])
	if byName.Independent() != 2 {
		t.Errorf("by name: independent = %d, want 2", byName.Independent())
	}
}

type countingResolver struct{ n *int }

func (c countingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	*c.n++
	return nil, errors.New("not expected")
}

// TestRebuilderAnswerBudget: a rebuilder whose answers exceed the run's
// budget for rebuilder answers (cmd/bintrans gives the set a budgeted
// client) is unreachable for the packages it was asked about; the other
// rebuilder still confirms.
func TestRebuilderAnswerBudget(t *testing.T) {
	good := pkg("a", "1-1", "x86_64", "GOOD")
	huge := start(t, "huge.test", rebuildertest.Options{}, good)
	huge.srv.SetFault(rebuildertest.FaultHuge)
	fine := start(t, "fine.test", rebuildertest.Options{}, good)
	budget := httpclient.NewBudget("rebuilder answers", 1<<20)
	hosts := map[string]*rebuildertest.Server{huge.host: huge.srv, fine.host: fine.srv}
	tr := rebuildertest.Transport(hosts)
	t.Cleanup(tr.CloseIdleConnections)
	s, err := rebuilder.New(rebuilder.Config{URLs: []string{huge.url(), fine.url()}}, budget.Client(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	v := s.Verdicts(context.Background(), []verify.Artifact{art("a", "1-1", "x86_64")}, nil)[0]
	check(t, "a", v, huge.url(), want{"unreachable", "run memory budget exhausted"})
	check(t, "a", v, fine.url(), want{"confirmed", ""})
	if p := budget.Peak(); p > 1<<20 || budget.Held() != 0 {
		t.Errorf("peak %d, held %d after the batch", p, budget.Held())
	}
}

func TestCountIndependent(t *testing.T) {
	s, err := rebuilder.New(rebuilder.Config{URLs: []string{"https://a.example/", "https://A.example.:443/x/", "https://b.example/"}}, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		urls []string
		want int
	}{
		{nil, 0},
		{[]string{"https://a.example/", "https://A.example.:443/x/"}, 1},
		{[]string{"https://a.example/", "https://b.example/"}, 2},
		{[]string{"https://A.example.:443/x/", "https://b.example/", "https://unknown.example/"}, 3},
	} {
		if got := s.CountIndependent(c.urls); got != c.want {
			t.Errorf("CountIndependent(%q) = %d, want %d", c.urls, got, c.want)
		}
	}
}
