package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv2"
)

// The rekorv2 step (issue 19): bintrans against a local Rekor v2
// (rekor-tiles' posix server, scripts/rekor-v2-stack) — sign throughput
// next to the server alone, the hook offline and online, and the monitor
// over a log of 100 000 entries.
//
// Two stacks, both in the bench's data dir: "log" is cached across runs
// (the bench key's packages signed into it, then filler entries up to the
// monitor's size, so that a re-run only measures), "sign" is created and
// purged by every run (the throughput runs add thousands of entries each:
// on the cached log the monitor's figure would drift from run to run).

// v2log is a running Rekor v2 stack.
type v2log struct {
	Dir, URL, ReadURL, Key, VKey, Origin, PIDs string
}

// v2Ports are the first ports tried for the two stacks (the shared test
// stack uses 3100–3103 on the host network; in the bench's private network
// namespace nothing does).
const (
	v2FillInflight = 1024 // filler adds in flight
	v2LogPortBase  = 3110
	v2SignPortBase = 3120
)

// freePorts returns n ports from base up that nothing listens on (on
// 127.0.0.1, where the stack binds).
func freePorts(base, n int) ([]int, error) {
	var out []int
	for p := base; p < 65536 && len(out) < n; p++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("no %d free ports from %d", n, base)
	}
	return out, nil
}

// v2Script is scripts/rekor-v2-stack of the tree under test.
func (b *bench) v2Script() string { return filepath.Join(b.cfg.Repo, "scripts", "rekor-v2-stack") }

// v2Start starts (or finds running) the Rekor v2 stack in dir on free
// ports from base.
func (b *bench) v2Start(dir string, base int) (*v2log, error) {
	ports, err := freePorts(base, 4)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.v2Script(), "start", dir)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("REKORV2_HTTP_PORT=%d", ports[0]), fmt.Sprintf("REKORV2_GRPC_PORT=%d", ports[1]),
		fmt.Sprintf("REKORV2_METRICS_PORT=%d", ports[2]), fmt.Sprintf("REKORV2_TILE_PORT=%d", ports[3]))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/rekor-v2-stack start %s: %v\n%s", dir, err, stderr.String())
	}
	l := &v2log{Dir: dir}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "REKORV2_URL":
			l.URL = v
		case "REKORV2_READ_URL":
			l.ReadURL = v
		case "REKORV2_KEY":
			l.Key = v
		case "REKORV2_VKEY":
			l.VKey = v
		case "REKORV2_ORIGIN":
			l.Origin = v
		case "REKORV2_PIDS":
			l.PIDs = strings.Trim(v, `"`)
		}
	}
	if l.URL == "" || l.ReadURL == "" || l.Key == "" || l.Origin == "" {
		return nil, fmt.Errorf("scripts/rekor-v2-stack start %s printed no URL, key or origin:\n%s", dir, out)
	}
	logf("Rekor v2 stack %s: %s (tiles %s, %s)", filepath.Base(dir), l.URL, l.ReadURL, l.PIDs)
	return l, nil
}

// v2Stop stops the stack in dir (and deletes it with purge).
func (b *bench) v2Stop(dir string, purge bool) {
	args := []string{"stop"}
	if purge {
		args = append(args, "--purge")
	}
	if out, err := exec.Command(b.v2Script(), append(args, dir)...).CombinedOutput(); err != nil {
		logf("scripts/rekor-v2-stack stop %s: %v\n%s", dir, err, out)
	}
}

// policy is the verifying commands' log flags for l.
func (l *v2log) policy() []string {
	return []string{"--log-kind", "rekor-v2", "--log-url", l.URL, "--log-read-url", l.ReadURL,
		"--log-key", l.Key, "--log-origin", l.Origin}
}

// size is the log's published tree size (its verified checkpoint).
func (l *v2log) size(ctx context.Context) (uint64, error) {
	r, err := l.reader(nil)
	if err != nil {
		return 0, err
	}
	cp, err := r.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	return cp.Size, nil
}

func (l *v2log) verifier() (*rekorv2.LogVerifier, error) {
	k, err := os.ReadFile(l.Key)
	if err != nil {
		return nil, err
	}
	return rekorv2.ParseLogKey(k, l.Origin)
}

func (l *v2log) reader(hc *http.Client) (*rekorv2.Reader, error) {
	lv, err := l.verifier()
	if err != nil {
		return nil, err
	}
	return rekorv2.NewReader(l.ReadURL, hc, lv)
}

// v2Sizes are the rekorv2 step's sizes.
type v2Sizes struct {
	SignN, Inflight int    // packages per sign throughput run, adds in flight
	LogSize         uint64 // entries in the monitor's log
}

func (b *bench) v2sizes() v2Sizes {
	if b.cfg.Quick {
		return v2Sizes{SignN: 20, Inflight: 64, LogSize: 1000}
	}
	return v2Sizes{SignN: 3000, Inflight: 1024, LogSize: 100000}
}

// v2report is the step's results.
type v2report struct {
	skipped               string
	sz                    v2Sizes
	firstSign             string
	sign                  results // "v2-sign", "v2-add"
	addStats              []v2AddStats
	filled                string
	hook                  results
	hookN                 int
	hookBytes             int64
	hookRequests          string
	monitor               results
	monitorRequests       string
	monitorEntries        uint64
	monitorMine           int
	signLoad, monitorLoad string
	quick, v1Paused       bool
	cores                 int
}

// rekorv2 is the step.
func (b *bench) rekorv2() error {
	r := &v2report{sz: b.v2sizes(), quick: b.cfg.Quick, cores: runtime.NumCPU()}
	b.rep.v2 = r
	if _, err := os.Stat(b.cfg.Posix); err != nil && b.cfg.Quick {
		r.skipped = fmt.Sprintf("skipped: the Rekor v2 server %s is missing (scripts/install-deps installs it; the full `make bench` installs it itself)", b.cfg.Posix)
		logf("rekorv2: %s", r.skipped)
		return nil
	}
	// The Rekor v1 stack is not used here: paused, so that its idle
	// sequencer is not part of these figures.
	resume, err := pause(b.cfg.PausePIDs)
	if err != nil {
		return err
	}
	defer resume()
	r.v1Paused = b.cfg.PausePIDs != ""
	base := filepath.Join(b.root, "rekorv2")
	// The cached log: the bench key's packages, then filler entries.
	logDir := filepath.Join(base, "log")
	l, err := b.v2Start(logDir, v2LogPortBase)
	if err != nil {
		return err
	}
	defer b.v2Stop(logDir, false)
	sigs, err := b.v2SignSet(l, base, r)
	if err != nil {
		return err
	}
	if err := b.v2Fill(l, r); err != nil {
		return err
	}
	if err := b.v2Hook(l, sigs, r); err != nil {
		return err
	}
	if err := b.v2Monitor(l, r); err != nil {
		return err
	}
	// The throughput log: new for this run.
	signDir := filepath.Join(base, "sign")
	b.v2Stop(signDir, true) // a previous run's, interrupted
	sl, err := b.v2Start(signDir, v2SignPortBase)
	if err != nil {
		return err
	}
	defer b.v2Stop(signDir, true)
	return b.v2Throughput(sl, r)
}

// v2SignSet signs the bench's package set (the repositories core, small,
// big and filler: the same set as the Rekor v1 signatures) into l with
// the main key, once per log and key; it returns the signature dir.
func (b *bench) v2SignSet(l *v2log, base string, r *v2report) (string, error) {
	pubText, err := os.ReadFile(b.pub)
	if err != nil {
		return "", err
	}
	lk, err := os.ReadFile(l.Key)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(append(append(pubText, lk...), l.Origin...))
	signed := filepath.Join(base, "signed-"+hex.EncodeToString(h[:6]))
	sigs := filepath.Join(signed, "sigs")
	marker := filepath.Join(signed, "complete")
	want := fmt.Sprint(b.mainEntries)
	if got, err := os.ReadFile(marker); err == nil && string(got) == want {
		return sigs, nil
	}
	if err := os.MkdirAll(sigs, 0o755); err != nil {
		return "", err
	}
	logf("signing %d packages with bintrans sign --log-kind rekor-v2 --log-inflight %d (first run only)", b.mainEntries, r.sz.Inflight)
	s, err := measure(runSpec{Name: b.cfg.Bintrans, Args: b.bt(append([]string{"sign",
		"--repo-url", filepath.Join(b.repos, "$repo", "os", "$arch"),
		"--repo-name", "core", "--repo-name", "small", "--repo-name", "big", "--repo-name", "filler",
		"--architecture", "x86_64", "--signature-dir", sigs, "--pubkey-path", b.pub, "--seckey-path", b.sec,
		"--state-dir", filepath.Join(signed, "state"), "--jobs", "8", "--keyring", b.gnupg,
		"--log-inflight", fmt.Sprint(r.sz.Inflight)}, l.policy()...)...)})
	if err != nil {
		return "", err
	}
	r.firstSign = fmt.Sprintf("%d packages in %.1f s (%.0f/s)", b.mainEntries, secs(s.Wall), float64(b.mainEntries)/secs(s.Wall))
	logf("signed %s", r.firstSign)
	return sigs, os.WriteFile(marker, []byte(want), 0o644)
}

// v2Fill adds entries of throwaway keys until the log holds the monitor's
// size (cached: the stack's data dir stays).
func (b *bench) v2Fill(l *v2log, r *v2report) error {
	ctx := context.Background()
	n, err := l.size(ctx)
	if err != nil {
		return err
	}
	if n >= r.sz.LogSize {
		r.filled = fmt.Sprintf("cached (%d entries)", n)
		return nil
	}
	missing := r.sz.LogSize - n
	logf("filling the Rekor v2 log from %d to %d entries (bintrans-bench v2add, %d in flight; first run only)", n, r.sz.LogSize, v2FillInflight)
	st, s, err := b.v2Add(l, int(missing), v2FillInflight)
	if err != nil {
		return err
	}
	r.filled = fmt.Sprintf("%d filler entries added in %.0f s (%.0f/s)", missing, secs(s.Wall), st.Rate)
	logf("filled: %s", r.filled)
	// The adds are answered once a checkpoint covers them: the published
	// one does already.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if n, err = l.size(ctx); err == nil && n >= r.sz.LogSize {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the log's checkpoint is at %d entries after filling to %d (%v)", n, r.sz.LogSize, err)
		}
	}
}

// v2Add runs `bintrans-bench v2add` (the server alone: n fresh entries of a
// throwaway key through the rekorv2 adapter's Writer, inflight at a time).
func (b *bench) v2Add(l *v2log, n, inflight int) (v2AddStats, sample, error) {
	var out bytes.Buffer
	s, err := measure(runSpec{Name: b.self, Args: []string{"v2add", "-url", l.URL, "-read-url", l.ReadURL,
		"-key", l.Key, "-origin", l.Origin, "-n", fmt.Sprint(n), "-inflight", fmt.Sprint(inflight)}, Out: &out})
	if err != nil {
		return v2AddStats{}, s, err
	}
	var st v2AddStats
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		return st, s, fmt.Errorf("bintrans-bench v2add: %v: %q", err, out.String())
	}
	return st, s, nil
}

// v2AddStats is what `bintrans-bench v2add` prints.
type v2AddStats struct {
	N, Inflight   int
	Seconds, Rate float64
	P50, P90, Max float64 // add latency, seconds
	Checkpoints   int     // distinct checkpoints the answers carried
}

// v2addMain is `bintrans-bench v2add -url … -n N -inflight K`: n fresh
// hashedrekord entries of a new key, K adds in flight, through the
// rekorv2 adapter's Writer (every answer verified, as sign does), on one
// HTTP client with an idle connection per add in flight. It prints
// v2AddStats as JSON.
func v2addMain(args []string) int {
	fs := flag.NewFlagSet("v2add", flag.ContinueOnError)
	var l v2log
	n := fs.Int("n", 1000, "entries")
	inflight := fs.Int("inflight", 1024, "adds in flight")
	fs.StringVar(&l.URL, "url", "", "write URL")
	fs.StringVar(&l.ReadURL, "read-url", "", "tile URL")
	fs.StringVar(&l.Key, "key", "", "the log's PEM key")
	fs.StringVar(&l.Origin, "origin", "", "the log's origin")
	if fs.Parse(args) != nil {
		return 2
	}
	st, err := v2addRun(&l, *n, *inflight)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bintrans-bench v2add:", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(st)
	return 0
}

func v2addRun(l *v2log, n, inflight int) (v2AddStats, error) {
	st := v2AddStats{N: n, Inflight: inflight}
	hc, err := httpclient.New(httpclient.Options{MaxIdleConnsPerHost: inflight, UserAgent: "bintrans-bench"})
	if err != nil {
		return st, err
	}
	lv, err := l.verifier()
	if err != nil {
		return st, err
	}
	rd, err := rekorv2.NewReader(l.ReadURL, hc, lv)
	if err != nil {
		return st, err
	}
	w, err := rekorv2.NewWriter(l.URL, hc, lv, rekorv2.WithReader(rd))
	if err != nil {
		return st, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return st, err
	}
	entries := make([]*rekorv2.HashedRekord, n)
	for i := range entries {
		h := sha256.Sum256(fmt.Appendf(nil, "bintrans-bench filler %d", i))
		if entries[i], err = rekorv2.Sign(priv, []byte(hex.EncodeToString(h[:]))); err != nil {
			return st, err
		}
	}
	lat := make([]float64, n)
	sizes := map[uint64]bool{}
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, max(inflight, 1))
	var wg sync.WaitGroup
	ctx := context.Background()
	start := time.Now()
	for i, e := range entries {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			lg, err := w.Add(ctx, e)
			d := time.Since(t0).Seconds()
			mu.Lock()
			defer mu.Unlock()
			lat[i] = d
			if err != nil {
				errs = append(errs, err)
				return
			}
			sizes[lg.Checkpoint.Size] = true
		}()
	}
	wg.Wait()
	st.Seconds = time.Since(start).Seconds()
	if len(errs) > 0 {
		return st, fmt.Errorf("%d of %d adds failed, the first: %w", len(errs), n, errors.Join(errs[0]))
	}
	slices.Sort(lat)
	st.Rate = float64(n) / st.Seconds
	st.P50, st.P90, st.Max = lat[n/2], lat[n*9/10], lat[n-1]
	st.Checkpoints = len(sizes)
	return st, nil
}

// v2HookSpec is the hook over the core batch with the Rekor v2 bundles in
// sigs (readURL: where the online hook reads tiles).
func (b *bench) v2HookSpec(l *v2log, sigs string, offline bool, state string) runSpec {
	args := append([]string{"hook", "--pacman-conf", b.pacConf[b.core.Repo], "--transparency-url", sigs,
		"--pubkey-path", b.pub}, l.policy()...)
	if offline {
		args = append(args, "--offline")
	}
	if state != "" {
		args = append(args, "--state-dir", state)
	}
	return runSpec{Name: b.cfg.Bintrans, Args: b.bt(args...), Stdin: b.core.names(len(b.core.Files))}
}

func (b *bench) v2ScanSpec(l *v2log, sigs string, offline bool, state string) runSpec {
	args := append([]string{"scan", "--signature-dir", sigs, "--pubkey-path", b.pub}, l.policy()...)
	if offline {
		args = append(args, "--offline")
	}
	if state != "" {
		args = append(args, "--state-dir", state)
	}
	return runSpec{Name: b.cfg.Bintrans, Args: b.bt(append(args, filepath.Join(b.repos, "core", "os", "x86_64", "core.db"))...)}
}

// withReadURL is s with the log's read URL replaced (a counting proxy).
func withReadURL(s runSpec, from, to string) runSpec {
	s.Args = slices.Clone(s.Args)
	for i, a := range s.Args {
		if a == from {
			s.Args[i] = to
		}
	}
	return s
}

// v2Hook: the hook batch against the Rekor v2 bundles, offline and online,
// in rounds with the hashing floors (as the Rekor v1 hook figures).
func (b *bench) v2Hook(l *v2log, sigs string, r *v2report) error {
	files := b.core.paths()
	state := filepath.Join(b.root, "state", "v2-hook-online")
	scanState := filepath.Join(b.root, "state", "v2-scan-online")
	for _, s := range []runSpec{
		{Name: b.self, Args: append([]string{"hash"}, files...)},
		b.v2HookSpec(l, sigs, true, ""),
		b.v2HookSpec(l, sigs, false, state),
		b.v2ScanSpec(l, sigs, false, scanState),
	} {
		if _, err := measure(s); err != nil {
			return err
		}
	}
	if p, err := newCountingProxy(l.ReadURL); err == nil {
		if _, err := measure(withReadURL(b.v2HookSpec(l, sigs, false, state), l.ReadURL, p.URL)); err == nil {
			r.hookRequests = p.summary()
		}
		p.Close()
	}
	res, err := b.rounds(append(b.hashers(b.core, files),
		contender{"hook-offline", b.proc(b.v2HookSpec(l, sigs, true, ""))},
		contender{"hook-online", b.proc(b.v2HookSpec(l, sigs, false, state))},
		contender{"scan-offline", b.proc(b.v2ScanSpec(l, sigs, true, ""))},
		contender{"scan-online", b.proc(b.v2ScanSpec(l, sigs, false, scanState))},
	))
	if err != nil {
		return err
	}
	r.hook, r.hookN, r.hookBytes = res, len(b.core.Files), b.core.Bytes
	return nil
}

// monitorReport is the part of `bintrans monitor --json` the bench checks.
type monitorReport struct {
	Entries    []json.RawMessage `json:"entries"`
	Checkpoint *struct {
		Size uint64 `json:"tree_size"`
	} `json:"checkpoint"`
}

// v2Monitor: `bintrans monitor --all` from an empty state dir over the
// whole log: one untimed run through a counting proxy (it also warms the
// tile server and the page cache), then the timed runs straight to the
// tile server.
func (b *bench) v2Monitor(l *v2log, r *v2report) error {
	run := func(readURL string) (sample, *monitorReport, error) {
		dir, err := os.MkdirTemp(b.root, "v2-monitor-state-")
		if err != nil {
			return sample{}, nil, err
		}
		defer os.RemoveAll(dir)
		var out bytes.Buffer
		spec := withReadURL(runSpec{Name: b.cfg.Bintrans, Args: b.bt(append([]string{"monitor", "--pubkey-path", b.pub,
			"--state-dir", dir, "--all", "--json"}, l.policy()...)...), Out: &out}, l.ReadURL, readURL)
		s, err := measure(spec)
		if err != nil {
			return s, nil, err
		}
		var rep monitorReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Checkpoint == nil {
			return s, nil, fmt.Errorf("bintrans monitor --json: no report (%v)", err)
		}
		return s, &rep, nil
	}
	p, err := newCountingProxy(l.ReadURL)
	if err != nil {
		return err
	}
	_, rep, err := run(p.URL)
	p.Close()
	if err != nil {
		return err
	}
	r.monitorRequests = p.summary()
	r.monitorEntries, r.monitorMine = rep.Checkpoint.Size, len(rep.Entries)
	if r.monitorMine != b.mainEntries {
		return fmt.Errorf("bintrans monitor listed %d entries of the bench key, want %d", r.monitorMine, b.mainEntries)
	}
	saved := b.cfg.Runs
	b.cfg.Runs = b.sz.MonitorRuns
	if b.cfg.MonitorRuns > 0 {
		b.cfg.Runs = b.cfg.MonitorRuns
	}
	defer func() { b.cfg.Runs = saved }()
	r.monitorLoad = loadavg()
	res, err := b.rounds([]contender{{"monitor", func() (sample, error) {
		s, rep, err := run(l.ReadURL)
		if err == nil && len(rep.Entries) != r.monitorMine {
			err = fmt.Errorf("bintrans monitor listed %d entries, the first run %d", len(rep.Entries), r.monitorMine)
		}
		return s, err
	}}})
	if err != nil {
		return err
	}
	r.monitor = res
	return nil
}

// v2Throughput: `bintrans sign --log-kind rekor-v2` of a fresh database of
// SignN packages (every upload a new entry) with Inflight adds in flight,
// in rounds with the server alone (`bintrans-bench v2add`: the same number
// of new entries at the same concurrency through the adapter's Writer, no
// signer around it).
func (b *bench) v2Throughput(l *v2log, r *v2report) error {
	n, k := r.sz.SignN, r.sz.Inflight
	r.signLoad = loadavg()
	res, err := b.rounds([]contender{
		{"v2-sign", func() (sample, error) {
			dir, err := b.freshSignRepo(n)
			if err != nil {
				return sample{}, err
			}
			defer os.RemoveAll(dir)
			return measure(runSpec{Name: b.cfg.Bintrans, Args: b.bt(append([]string{"sign",
				"--repo-url", filepath.Join(dir, "repo", "$repo", "os", "$arch"), "--repo-name", "sign",
				"--signature-dir", filepath.Join(dir, "sigs"), "--pubkey-path", b.signPub, "--seckey-path", b.signSec,
				"--state-dir", filepath.Join(dir, "state"), "--keyring", b.gnupg,
				"--log-inflight", fmt.Sprint(k)}, l.policy()...)...)})
		}},
		{"v2-add", func() (sample, error) {
			st, s, err := b.v2Add(l, n, k)
			if err == nil {
				r.addStats = append(r.addStats, st)
			}
			return s, err
		}},
	})
	if err != nil {
		return err
	}
	r.sign = res
	return nil
}

// perSec is n ÷ wall time of each run.
func perSec(res results, name string, n int) stat {
	var v []float64
	for _, s := range res[name] {
		v = append(v, float64(n)/secs(s.Wall))
	}
	return summarize(v)
}

func (r *v2report) rows() []goalRow {
	if r == nil || r.skipped != "" {
		return nil
	}
	var rows []goalRow
	if r.sign != nil {
		x := perSec(r.sign, "v2-sign", r.sz.SignN)
		goal, ok := "≥ 300/s", met(x.Med >= 300)
		if r.quick {
			goal, ok = "(≥ 300/s)", "—"
		}
		rows = append(rows, goalRow{fmt.Sprintf("Rekor v2: bintrans sign --log-inflight %d (%d new packages per run)", r.sz.Inflight, r.sz.SignN), goal, x.format(1, "/s"), ok, ""},
			goalRow{fmt.Sprintf("Rekor v2: the server alone, %d new entries, %d adds in flight (bintrans-bench v2add)", r.sz.SignN, r.sz.Inflight), "—", perSec(r.sign, "v2-add", r.sz.SignN).format(1, "/s"), "—", ""})
	}
	if h := r.hook; h != nil {
		rows = append(rows, goalRow{fmt.Sprintf("Rekor v2: hook --offline, %d packages ÷ openssl dgst -sha256 (1 thread)", r.hookN), "—", h.ratio("hook-offline", "openssl").format(2, "×"), "—", ""},
			goalRow{"Rekor v2: hook --offline ÷ Go hashing on every core", "—", h.ratio("hook-offline", "gofloor").format(2, "×"), "—", ""},
			goalRow{"Rekor v2: hook online (checkpoint + consistency from tiles) ÷ Go hashing on every core", "—", h.ratio("hook-online", "gofloor").format(2, "×"), "—", ""})
	}
	if r.monitor != nil {
		w := r.monitor.wall("monitor")
		goal, ok := "—", "—"
		if r.monitorEntries >= 100000 && !r.quick {
			goal, ok = "≤ 10 s", met(w.Med <= 10)
		}
		rows = append(rows, goalRow{fmt.Sprintf("Rekor v2: bintrans monitor --all over %d entries (%d of the key), warm local tile server", r.monitorEntries, r.monitorMine), goal, w.format(2, " s"), ok, ""})
	}
	return rows
}

// markdown writes the step's section.
func (r *v2report) markdown(p func(string, ...any)) {
	if r == nil {
		return
	}
	p("## Rekor v2 (issue 19)\n\n")
	if r.skipped != "" {
		p("Not measured: %s.\n\n", r.skipped)
		return
	}
	p("A local Rekor v2: rekor-tiles v2.3.0's `posix` server (`--checkpoint-interval=200ms --persistent-antispam`) and a static tile server for its storage dir (python3 `http.server`), started by `scripts/rekor-v2-stack` in the bench's data dir, loopback only. Two of them: the monitor's log (cached: the bench key's packages, then filler entries up to %d) and a log for the throughput runs, new for each bench run and deleted after it.", r.sz.LogSize)
	if r.v1Paused {
		p(" The bench's Rekor v1 stack is paused (SIGSTOP) during this step.")
	}
	p("\n\n")
	if r.sign != nil {
		p("### Sign throughput\n\n`bintrans sign --log-kind rekor-v2 --log-inflight %d` of a fresh database of %d packages each run (new sha256s: every upload a new entry), released by the database's GnuPG signature, unencrypted key: wall time of the whole command (db read and release check, Ed25519ph signatures, intents, adds, verification of every answer, audit records with fsync, atomic publish, the settle re-proving every bundle at one checkpoint from the tiles). In the same rounds, the server alone: `bintrans-bench v2add -n %d -inflight %d` adds as many new entries at the same concurrency through the rekorv2 adapter's Writer (every answer verified, one HTTP client with an idle connection per add in flight), nothing else. Load average at the start of these runs: %s.\n\n",
			r.sz.Inflight, r.sz.SignN, r.sz.SignN, r.sz.Inflight, r.signLoad)
		p("| run | entries | wall s | entries/s | CPU s | peak RSS MiB |\n|---|---|---|---|---|---|\n")
		for _, k := range []struct{ name, desc string }{
			{"v2-sign", "`bintrans sign --log-kind rekor-v2`"},
			{"v2-add", "the server alone (`bintrans-bench v2add`)"},
		} {
			p("| %s | %d | %s | %s | %s | %s |\n", k.desc, r.sz.SignN, r.sign.wall(k.name).format(2, ""), perSec(r.sign, k.name, r.sz.SignN).format(1, ""),
				r.sign.cpu(k.name).format(2, ""), r.sign.rss(k.name).format(0, ""))
		}
		p("\nsign ÷ server alone (wall, run by run): %s.", r.sign.ratio("v2-sign", "v2-add").format(2, "×"))
		for i, st := range r.addStats {
			p(" Server alone, run %d: add latency p50 %.2f s, p90 %.2f s, max %.2f s; the answers carried %d distinct checkpoints.", i+1, st.P50, st.P90, st.Max, st.Checkpoints)
		}
		p("\n\n")
	}
	if r.firstSign != "" {
		p("First-run signing of the bench set into the monitor's log (`--jobs 8 --log-inflight %d`): %s.\n\n", r.sz.Inflight, r.firstSign)
	}
	if r.filled != "" {
		p("Filler entries (throwaway keys, `bintrans-bench v2add`): %s.\n\n", r.filled)
	}
	if h := r.hook; h != nil {
		p("### Hook: %d packages, %.0f MB, offline and online\n\n", r.hookN, float64(r.hookBytes)/1e6)
		p("The hook batch of section 1–2 with the `.t` and tlog-proof bundles `bintrans sign --log-kind rekor-v2` made (settled: one checkpoint for the run). Offline: each bundle's checkpoint signature and origin, RFC 6962 inclusion, the hashedrekord body rebuilt from digest, Ed25519ph signature and key, and the `.t`. Online, in addition: the log's checkpoint, and consistency from the bundles' checkpoint and the stored one, proven from authenticated hash tiles (no per-entry request).\n\n")
		p("| command | wall s | CPU s (user+sys) | peak RSS MiB |\n|---|---|---|---|\n")
		for _, k := range []struct{ name, desc string }{
			{"openssl", "`openssl dgst -sha256 FILE…` (one thread, SHA extensions)"},
			{"sha256sum", "`sha256sum FILE…` (Debian coreutils)"},
			{"gofloor", "`bintrans-bench hash FILE…` (Go, sha256 only, every core)"},
			{"hook-offline", "`bintrans hook --log-kind rekor-v2 --offline`"},
			{"hook-online", "`bintrans hook --log-kind rekor-v2` online"},
			{"scan-offline", fmt.Sprintf("`bintrans scan --log-kind rekor-v2 --offline core.db` (the same %d verifications, no hashing)", r.hookN)},
			{"scan-online", "`bintrans scan --log-kind rekor-v2 core.db` online (no hashing)"},
		} {
			p("| %s | %s | %s | %s |\n", k.desc, h.wall(k.name).format(2, ""), h.cpu(k.name).format(2, ""), h.rss(k.name).format(0, ""))
		}
		p("\n| ratio (run by run) | offline | online |\n|---|---|---|\n")
		p("| hook ÷ openssl | %s | %s |\n", h.ratio("hook-offline", "openssl").format(2, "×"), h.ratio("hook-online", "openssl").format(2, "×"))
		p("| hook ÷ Go floor | %s | %s |\n", h.ratio("hook-offline", "gofloor").format(2, "×"), h.ratio("hook-online", "gofloor").format(2, "×"))
		p("| hook ÷ sha256sum | %s | %s |\n", h.ratio("hook-offline", "sha256sum").format(2, "×"), h.ratio("hook-online", "sha256sum").format(2, "×"))
		p("| CPU time: hook ÷ Go floor | %s | %s |\n", h.cpuRatio("hook-offline", 1, "gofloor", 1).format(2, "×"), h.cpuRatio("hook-online", 1, "gofloor", 1).format(2, "×"))
		p("| idle-machine projection: (hook CPU ÷ %d cores) ÷ openssl CPU | %s | %s |\n", r.cores, h.cpuRatio("hook-offline", float64(r.cores), "openssl", 1).format(2, "×"), h.cpuRatio("hook-online", float64(r.cores), "openssl", 1).format(2, "×"))
		p("\nOn a shared machine the wall-time ratios swing with the other jobs (each command gets whatever share of the cores is left); the CPU-time rows do not.\n")
		p("\nVerification beyond hashing, per package (scan of the same packages' db): offline %s ms, online %s ms.", perPkg(h, "scan-offline", r.hookN), perPkg(h, "scan-online", r.hookN))
		if r.hookRequests != "" {
			p(" Requests of one online hook run to the tile server (counting proxy): %s.", r.hookRequests)
		}
		p("\n\n")
	}
	if r.monitor != nil {
		p("### Monitor over %d entries\n\n`bintrans monitor --log-kind rekor-v2 --all --json` with an empty state dir: every entry bundle of the log read from the tile server, checked against the authenticated hash tiles and the checkpoint's root, every body parsed; it lists the %d entries of the bench key among %d. One untimed run first, through a counting proxy (it warms the tile server and the page cache): %s. Then the timed runs, straight to the tile server (load average at their start: %s): wall %s s, CPU %s s, peak RSS %s MiB.\n\n",
			r.monitorEntries, r.monitorMine, r.monitorEntries, r.monitorRequests, r.monitorLoad,
			r.monitor.wall("monitor").format(2, ""), r.monitor.cpu("monitor").format(2, ""), r.monitor.rss("monitor").format(0, ""))
	}
}
