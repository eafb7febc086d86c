package monitor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// counter counts requests by method and path.
type counter struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func (c *counter) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	total := 0
	for k, v := range c.n {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		total += v
	}
	sort.Strings(parts)
	c.n = map[string]int{}
	return fmt.Sprintf("%d requests (%s)", total, strings.Join(parts, ", "))
}

// TestMonitorScale measures the monitor over many entries of one key on the
// real Rekor: BINTRANS_MONITOR_SCALE=N uploads N signatures with a fresh key
// (16 in parallel), then times a first run, a run with nothing new and an
// --all run, and logs wall time and request counts. It asserts only
// correctness; the numbers are for docs/MONITOR.md (go test -v).
func TestMonitorScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BINTRANS_MONITOR_SCALE"))
	if n <= 0 {
		t.Skip("set BINTRANS_MONITOR_SCALE=N to measure the monitor over N entries of the real Rekor")
	}
	url, keyPath := testenv.Rekor(t)
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := rekorv1.ParseLogKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := httpclient.New(httpclient.Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counter{base: hc.Transport, n: map[string]int{}}
	if cnt.base == nil {
		cnt.base = http.DefaultTransport
	}
	hc.Transport = cnt
	c, err := rekorv1.New(url, hc)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	pub := k.pub.File()
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			msg := fmt.Sprintf("%064x", i+1)
			s := k.sign(t, msg)
			_, err := c.Upload(context.Background(), s.t, pub, []byte(msg))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("uploaded %d entries in %v (%.0f/s)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	// Wait for the asynchronous index.
	for range 100 {
		u, err := c.SearchByPublicKey(context.Background(), pub)
		if err != nil {
			t.Fatal(err)
		}
		if len(u) >= n {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cnt.take()
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Keys: []verify.PublicKey{k.pub}, LogKey: lk, Log: c, LogURL: url, State: dir}
	for _, run := range []struct {
		name string
		all  bool
		new  int
	}{{"first run", false, n}, {"nothing new", false, 0}, {"--all", true, 0}} {
		o.All = run.all
		t0 := time.Now()
		rep, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(t0)
		if rep.New != run.new || rep.Total != n || len(rep.Findings) != 0 {
			t.Fatalf("%s: new %d total %d findings %d", run.name, rep.New, rep.Total, len(rep.Findings))
		}
		t.Logf("%s: %d entries reported, %d known, tree size %d: %v wall, %s", run.name, len(rep.Entries), rep.Total, rep.Current.Size, d.Round(time.Millisecond), cnt.take())
	}
	fi, _ := os.Stat(dir.Path(stateName(lk.ID())))
	t.Logf("state file: %d bytes for %d entries", fi.Size(), n)
}

// TestMonitorScaleFake measures the monitor's own cost (search, batched
// retrieve, verification, consistency, state) over
// BINTRANS_MONITOR_SCALE_FAKE=N entries of the in-process fake log, whose
// answers cost next to nothing: what is left is the client.
func TestMonitorScaleFake(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BINTRANS_MONITOR_SCALE_FAKE"))
	if n <= 0 {
		t.Skip("set BINTRANS_MONITOR_SCALE_FAKE=N to measure the monitor over N entries of the fake log")
	}
	f := newFixture(t, n)
	for _, run := range []struct {
		name string
		all  bool
	}{{"first run", false}, {"nothing new", false}, {"--all", true}} {
		o := f.opts()
		o.All = run.all
		r0 := f.log.Requests(fakelogRetrieve)
		t0 := time.Now()
		rep := f.run(o)
		t.Logf("%s: %d entries reported, %d known: %v wall, %d retrieve requests", run.name, len(rep.Entries), rep.Total,
			time.Since(t0).Round(time.Millisecond), f.log.Requests(fakelogRetrieve)-r0)
		if rep.Total != n || len(rep.Findings) != 0 {
			t.Fatalf("total %d findings %d", rep.Total, len(rep.Findings))
		}
	}
}

const fakelogRetrieve = fakelog.EndpointRetrieve
