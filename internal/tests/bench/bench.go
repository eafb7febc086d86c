package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
)

// bench holds the data set and the results of one run.
type bench struct {
	cfg  *config
	sz   sizes
	self string
	rep  *report

	root, emptyConf, pub, sec string
	signPub, signSec          string // sign throughput runs: not the monitor's key
	core, small, big          *batch
	repos, sigs               string
	pacConf                   map[string]string // repo → pacman.conf
	treeID                    string
	mainEntries               int // log entries of the main key (monitor)
	profBin                   string
	signRuns                  int    // fresh sign databases made (freshSignRepo)
	gnupg                     string // the packager's GnuPG home: sign's --keyring
}

// bt is a bintrans command line.
func (b *bench) bt(args ...string) []string {
	return append([]string{"--config", b.emptyConf}, args...)
}

// policy is the verification policy every verifying command gets.
func (b *bench) policy(offline bool, stateDir string) []string {
	a := []string{"--pubkey-path", b.pub, "--log-url", b.cfg.LogURL, "--log-key", b.cfg.LogKey}
	if offline {
		a = append(a, "--offline")
	}
	if stateDir != "" {
		a = append(a, "--state-dir", stateDir)
	}
	return a
}

func (b *bench) prepare() error {
	b.root = b.cfg.Cache
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return err
	}
	b.emptyConf = filepath.Join(b.root, "empty.conf")
	if err := os.WriteFile(b.emptyConf, []byte("# bintrans-bench: every setting is a flag\n"), 0o644); err != nil {
		return err
	}
	b.pub = filepath.Join(b.root, "keys", "main.pub")
	b.sec = filepath.Join(b.root, "keys", "main.sec")
	b.signPub = filepath.Join(b.root, "keys", "signbench.pub")
	b.signSec = filepath.Join(b.root, "keys", "signbench.sec")
	for _, k := range [][2]string{{b.pub, b.sec}, {b.signPub, b.signSec}} {
		if _, err := os.Stat(k[1]); err != nil {
			if err := newMinisignKey(k[0], k[1]); err != nil {
				return err
			}
		}
	}
	if err := b.packagerKey(); err != nil {
		return err
	}
	var err error
	pk := filepath.Join(b.root, "pkgs")
	if b.core, err = loadOrMakeBatch(filepath.Join(pk, "core"), "core", "bench", b.sz.HookN, sizeMix, b.sz.HookMin); err != nil {
		return err
	}
	if b.small, err = loadOrMakeBatch(filepath.Join(pk, "small"), "small", "small", b.sz.SmallN, smallMix, 0); err != nil {
		return err
	}
	if b.big, err = loadOrMakeBig(filepath.Join(pk, "big"), b.sz.Big); err != nil {
		return err
	}
	b.repos = filepath.Join(b.root, "repos")
	b.pacConf = map[string]string{}
	for _, bt := range []*batch{b.core, b.small, b.big} {
		pkgs := dbPackages(bt)
		db := filepath.Join(b.repos, bt.Repo, "os", "x86_64", bt.Repo+".db")
		if err := writeDB(db, pkgs); err != nil {
			return err
		}
		if err := b.detachSign(db, db+".sig"); err != nil { // repo-add --sign
			return err
		}
		pdir := filepath.Join(b.root, "pacman", bt.Repo)
		if err := writeDB(filepath.Join(pdir, "sync", bt.Repo+".db"), pkgs); err != nil {
			return err
		}
		conf := fmt.Sprintf("[options]\nDBPath = %s/\nCacheDir = %s/\nArchitecture = x86_64\n\n[%s]\nServer = file:///nonexistent\n", pdir, bt.Dir, bt.Repo)
		b.pacConf[bt.Repo] = filepath.Join(b.root, "pacman", bt.Repo+".conf")
		if err := os.WriteFile(b.pacConf[bt.Repo], []byte(conf), 0o644); err != nil {
			return err
		}
	}
	if b.cfg.Filler >= 0 {
		b.sz.Filler = b.cfg.Filler
	}
	fillerDB := filepath.Join(b.repos, "filler", "os", "x86_64", "filler.db")
	if err := writeDB(fillerDB, fillerPackages(b.sz.Filler, 4499)); err != nil {
		return err
	}
	if err := b.detachSign(fillerDB, fillerDB+".sig"); err != nil {
		return err
	}
	b.mainEntries = len(b.core.Files) + len(b.small.Files) + len(b.big.Files) + b.sz.Filler

	// Signatures and bundles: real, from `bintrans sign` against the local
	// log; cached per log tree and key (a new stack means signing again)
	// and per sign output format (v2: bundles settled on one checkpoint per
	// run; re-signing an already logged package costs a 409, not an entry).
	if b.treeID, err = treeID(b.cfg.LogURL); err != nil {
		return err
	}
	pubText, err := os.ReadFile(b.pub)
	if err != nil {
		return err
	}
	kh := sha256.Sum256(pubText)
	signed := filepath.Join(b.root, "signed", "v2-"+b.treeID+"-"+hex.EncodeToString(kh[:6]))
	b.sigs = filepath.Join(signed, "sigs")
	// The marker names how many packages were signed: a larger data set
	// signs again (sign skips what is already signed and logged).
	marker := filepath.Join(signed, "complete")
	want := fmt.Sprint(b.mainEntries)
	if got, err := os.ReadFile(marker); err == nil && string(got) == want {
		return b.scanFixtures()
	}
	if err := os.MkdirAll(b.sigs, 0o755); err != nil {
		return err
	}
	logf("signing %d packages with bintrans sign --jobs 8 against %s (first run only)", b.mainEntries, b.cfg.LogURL)
	s, err := measure(runSpec{Name: b.cfg.Bintrans, Args: b.bt("sign",
		"--repo-url", filepath.Join(b.repos, "$repo", "os", "$arch"),
		"--repo-name", "core", "--repo-name", "small", "--repo-name", "big", "--repo-name", "filler",
		"--architecture", "x86_64", "--signature-dir", b.sigs, "--pubkey-path", b.pub, "--seckey-path", b.sec,
		"--state-dir", filepath.Join(signed, "state"), "--jobs", "8", "--keyring", b.gnupg,
		"--log-url", b.cfg.LogURL, "--log-key", b.cfg.LogKey)})
	if err != nil {
		return err
	}
	logf("signed %d packages in %.1f s (%.0f/s)", b.mainEntries, secs(s.Wall), float64(b.mainEntries)/secs(s.Wall))
	b.rep.firstSign = fmt.Sprintf("%d packages in %.1f s", b.mainEntries, secs(s.Wall))
	if err := os.WriteFile(marker, []byte(want), 0o644); err != nil {
		return err
	}
	return b.scanFixtures()
}

func (b *bench) scanFixtures() error {
	for _, n := range b.sz.ScanN {
		if _, err := loadOrMakeScanFixture(filepath.Join(b.root, ".."), n); err != nil {
			return err
		}
	}
	return nil
}

func newMinisignKey(pub, sec string) error {
	if err := os.MkdirAll(filepath.Dir(pub), 0o700); err != nil {
		return err
	}
	out, err := exec.Command("minisign", "-G", "-W", "-f", "-p", pub, "-s", sec).CombinedOutput()
	if err != nil {
		return fmt.Errorf("minisign -G -W: %v\n%s", err, out)
	}
	return nil
}

// treeID asks the log for its tree id (GET /api/v1/log).
func treeID(logURL string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(logURL, "/")+"/api/v1/log", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		TreeID string `json:"treeID"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil || v.TreeID == "" {
		return "", fmt.Errorf("GET %s/api/v1/log: no tree id (%v)", logURL, err)
	}
	return v.TreeID, nil
}

// contender is one command measured in a round.
type contender struct {
	name string
	run  func() (sample, error)
}

// results maps a contender to its samples across rounds.
type results map[string][]sample

func (r results) wall(name string) stat {
	var v []float64
	for _, s := range r[name] {
		v = append(v, secs(s.Wall))
	}
	return summarize(v)
}

func (r results) cpu(name string) stat {
	var v []float64
	for _, s := range r[name] {
		v = append(v, secs(s.CPU))
	}
	return summarize(v)
}

func (r results) rss(name string) stat {
	var v []float64
	for _, s := range r[name] {
		v = append(v, mib(s.RSS))
	}
	return summarize(v)
}

// ratio is a/b computed round by round.
func (r results) ratio(a, b string) stat {
	var v []float64
	for i := range r[a] {
		if i < len(r[b]) && r[b][i].Wall > 0 {
			v = append(v, secs(r[a][i].Wall)/secs(r[b][i].Wall))
		}
	}
	return summarize(v)
}

// cpuRatio is (a's CPU ÷ ka) ÷ (b's CPU ÷ kb) round by round: on an idle
// machine a command using k cores takes about CPU/k of wall time.
func (r results) cpuRatio(a string, ka float64, b string, kb float64) stat {
	var v []float64
	for i := range r[a] {
		if i < len(r[b]) && r[b][i].CPU > 0 {
			v = append(v, (secs(r[a][i].CPU)/ka)/(secs(r[b][i].CPU)/kb))
		}
	}
	return summarize(v)
}

// ratioPer is (a/na)/(b/nb) round by round: per-package costs of runs over
// na and nb packages.
func (r results) ratioPer(a string, na int, b string, nb int) stat {
	var v []float64
	for i := range r[a] {
		if i < len(r[b]) && r[b][i].Wall > 0 {
			v = append(v, (secs(r[a][i].Wall)/float64(na))/(secs(r[b][i].Wall)/float64(nb)))
		}
	}
	return summarize(v)
}

// rounds runs every contender once per round, the order rotated each round
// so that no contender always follows the same neighbour.
func (b *bench) rounds(cs []contender) (results, error) {
	res := results{}
	for i := 0; i < b.cfg.Runs; i++ {
		for k := range cs {
			c := cs[(k+i)%len(cs)]
			s, err := c.run()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			res[c.name] = append(res[c.name], s)
		}
		logf("round %d/%d done", i+1, b.cfg.Runs)
	}
	return res, nil
}

func (b *bench) proc(s runSpec) func() (sample, error) {
	return func() (sample, error) { return measure(s) }
}

func (b *bench) hookSpec(bt *batch, n int, offline bool, state string) runSpec {
	args := b.bt(append([]string{"hook", "--pacman-conf", b.pacConf[bt.Repo], "--transparency-url", b.sigs},
		b.policy(offline, state)...)...)
	return runSpec{Name: b.cfg.Bintrans, Args: args, Stdin: bt.names(n)}
}

func (b *bench) scanSpec(db, sigs, pub, logKey string, offline bool, state string) runSpec {
	args := []string{"scan", "--signature-dir", sigs, "--pubkey-path", pub, "--log-url", b.cfg.LogURL, "--log-key", logKey}
	if offline {
		args = append(args, "--offline")
	}
	if state != "" {
		args = append(args, "--state-dir", state)
	}
	return runSpec{Name: b.cfg.Bintrans, Args: b.bt(append(args, db)...)}
}

// oldRequestSample is how many packages the old approach's requests are
// counted on (the count per package is the same for every package).
const oldRequestSample = 10

// rekorCLIAt runs the old approach on files against the log at logURL.
func (b *bench) rekorCLIAt(logURL string, files []pkgFile) error {
	for _, f := range files {
		if _, err := measure(b.rekorCLISpec(logURL, f)); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) rekorCLISpec(logURL string, f pkgFile) runSpec {
	return runSpec{Name: b.cfg.RekorCLI, Args: []string{"upload",
		"--rekor_server", logURL, "--type", "rekord", "--pki-format", "minisign",
		"--public-key", b.pub, "--signature", filepath.Join(b.sigs, f.Filename+".t"),
		"--artifact", "/dev/stdin", "--format", "json"}, Stdin: f.SHA256}
}

// rekorCLI is the old approach's "verification" of a batch: one rekor-cli
// process per package, as pacman-bintrans v0.5.0 runs it (the hex sha256 on
// stdin as the artifact). The log answers 409 for an already-logged
// signature; rekor-cli reports the existing entry and nothing is proven.
func (b *bench) rekorCLI(bt *batch, n int) func() (sample, error) {
	return func() (sample, error) {
		var total sample
		start := time.Now()
		for _, f := range bt.Files[:n] {
			s, err := measure(b.rekorCLISpec(b.cfg.LogURL, f))
			if err != nil {
				return sample{}, err
			}
			total.CPU += s.CPU
			total.RSS = max(total.RSS, s.RSS)
		}
		total.Wall = time.Since(start)
		return total, nil
	}
}

func (b *bench) hashers(bt *batch, files []string) []contender {
	return []contender{
		{"openssl", b.proc(runSpec{Name: "openssl", Args: append([]string{"dgst", "-sha256"}, files...)})},
		{"sha256sum", b.proc(runSpec{Name: "sha256sum", Args: files})},
		{"gofloor", b.proc(runSpec{Name: b.self, Args: append([]string{"hash"}, files...)})},
	}
}

// hookBatch: (1) hook offline vs the hashing floors, (2) online and the
// verification overhead vs the old approach, all in the same rounds.
func (b *bench) hookBatch() error {
	files := b.core.paths()
	state := filepath.Join(b.root, "state", "hook-online")
	scanState := filepath.Join(b.root, "state", "scan-online")
	db := filepath.Join(b.repos, "core", "os", "x86_64", "core.db")
	// Warm the page cache and the online state (first checkpoint).
	for _, s := range []runSpec{
		{Name: b.self, Args: append([]string{"hash"}, files...)},
		b.hookSpec(b.core, len(b.core.Files), true, ""),
		b.hookSpec(b.core, len(b.core.Files), false, state),
		b.scanSpec(db, b.sigs, b.pub, b.cfg.LogKey, false, scanState),
	} {
		if _, err := measure(s); err != nil {
			return err
		}
	}
	// rekor-cli's answer for an already-logged package (shown in the doc).
	f := b.core.Files[0]
	cmd := exec.Command(b.cfg.RekorCLI, "upload", "--rekor_server", b.cfg.LogURL, "--type", "rekord", "--pki-format", "minisign",
		"--public-key", b.pub, "--signature", filepath.Join(b.sigs, f.Filename+".t"), "--artifact", "/dev/stdin", "--format", "json")
	cmd.Stdin = strings.NewReader(f.SHA256)
	out, _ := cmd.CombinedOutput()
	b.rep.rekorCLIAnswer = strings.TrimSpace(string(out))

	// Requests one online hook makes, and the old approach per package
	// (through a counting proxy each, untimed).
	if p, err := newCountingProxy(b.cfg.LogURL); err == nil {
		s := b.hookSpec(b.core, len(b.core.Files), false, state)
		for i, a := range s.Args {
			if a == b.cfg.LogURL {
				s.Args[i] = p.URL
			}
		}
		if _, err := measure(s); err == nil {
			b.rep.hookRequests, b.rep.hookRequestsN = p.summary(), p.total()
		}
		p.Close()
	}
	if p, err := newCountingProxy(b.cfg.LogURL); err == nil {
		n := min(oldRequestSample, len(b.core.Files))
		if err := b.rekorCLIAt(p.URL, b.core.Files[:n]); err == nil {
			b.rep.oldRequests, b.rep.oldRequestsN, b.rep.oldRequestsPkgs = p.summary(), p.total(), n
		}
		p.Close()
	}

	cs := append(b.hashers(b.core, files),
		contender{"hook-offline", b.proc(b.hookSpec(b.core, len(b.core.Files), true, ""))},
		contender{"hook-online", b.proc(b.hookSpec(b.core, len(b.core.Files), false, state))},
		contender{"scan-offline", b.proc(b.scanSpec(db, b.sigs, b.pub, b.cfg.LogKey, true, ""))},
		contender{"scan-online", b.proc(b.scanSpec(db, b.sigs, b.pub, b.cfg.LogKey, false, scanState))},
		contender{"rekor-cli", b.rekorCLI(b.core, b.rekorN())},
	)
	res, err := b.rounds(cs)
	if err != nil {
		return err
	}
	b.rep.rekorN = b.rekorN()
	b.rep.hook = res
	b.rep.hookN, b.rep.hookBytes = len(b.core.Files), b.core.Bytes
	return nil
}

func (b *bench) rekorN() int {
	if n := b.cfg.RekorCLIN; n > 0 && n < len(b.core.Files) {
		return n
	}
	return len(b.core.Files)
}

// growth: hook offline at three batch sizes, each paired with openssl.
func (b *bench) growth() error {
	type point struct {
		bt *batch
		n  int
	}
	pts := []point{{b.core, b.sz.GrowthSmallN}, {b.core, len(b.core.Files)}, {b.small, len(b.small.Files)}}
	for _, p := range pts {
		var bytes int64
		for _, f := range p.bt.Files[:p.n] {
			bytes += f.Size
		}
		if p.bt == b.core && p.n == len(b.core.Files) && b.rep.hook != nil {
			// The hook batch's rounds measured this point (same pairs).
			b.rep.hookGrowth = append(b.rep.hookGrowth, growthPoint{N: p.n, Bytes: bytes, Res: b.rep.hook})
			continue
		}
		files := p.bt.paths()[:p.n]
		if _, err := measure(runSpec{Name: b.self, Args: append([]string{"hash"}, files...)}); err != nil {
			return err
		}
		res, err := b.rounds([]contender{
			{"openssl", b.proc(runSpec{Name: "openssl", Args: append([]string{"dgst", "-sha256"}, files...)})},
			{"gofloor", b.proc(runSpec{Name: b.self, Args: append([]string{"hash"}, files...)})},
			{"hook-offline", b.proc(b.hookSpec(p.bt, p.n, true, ""))},
		})
		if err != nil {
			return err
		}
		b.rep.hookGrowth = append(b.rep.hookGrowth, growthPoint{N: p.n, Bytes: bytes, Res: res})
	}
	return nil
}

func (b *bench) scan() error {
	// The scan is offline: the local log stack (Trillian's sequencer wakes
	// every 10 ms, about a fifth of a core while idle) is paused meanwhile,
	// so that the figure is the scan's and not the scan's plus an idle log's.
	resume, err := pause(b.cfg.PausePIDs)
	if err != nil {
		return err
	}
	defer resume()
	b.rep.scanPaused = b.cfg.PausePIDs != ""
	for _, n := range b.sz.ScanN {
		fx, err := loadOrMakeScanFixture(filepath.Join(b.root, ".."), n)
		if err != nil {
			return err
		}
		res, err := b.rounds([]contender{{"scan-offline", b.proc(b.scanSpec(fx.DB, fx.Sigs, fx.Pub, fx.LogKey, true, ""))}})
		if err != nil {
			return err
		}
		b.rep.scanGrowth = append(b.rep.scanGrowth, growthPoint{N: n, Res: res})
		if n == b.sz.ScanGoal {
			b.rep.scanGoal = res
			b.rep.scanGoalN = n
		}
	}
	return nil
}

// sign: packages/second of `bintrans sign` to the local log, --jobs 1 vs 8,
// each run a fresh database (new sha256s: every upload is a new entry).
func (b *bench) sign() error {
	mk := func(jobs, n int) contender {
		return contender{fmt.Sprintf("sign-jobs%d", jobs), func() (sample, error) {
			dir, err := b.freshSignRepo(n)
			if err != nil {
				return sample{}, err
			}
			defer os.RemoveAll(dir)
			s, err := measure(runSpec{Name: b.cfg.Bintrans, Args: b.bt("sign",
				"--repo-url", filepath.Join(dir, "repo", "$repo", "os", "$arch"), "--repo-name", "sign",
				"--signature-dir", filepath.Join(dir, "sigs"), "--pubkey-path", b.signPub, "--seckey-path", b.signSec,
				"--state-dir", filepath.Join(dir, "state"), "--jobs", fmt.Sprint(jobs), "--keyring", b.gnupg,
				"--log-url", b.cfg.LogURL, "--log-key", b.cfg.LogKey)})
			if err != nil {
				return sample{}, err
			}
			return s, nil
		}}
	}
	res, err := b.rounds([]contender{mk(1, b.sz.SignJobs1), mk(8, b.sz.SignJobs8)})
	if err != nil {
		return err
	}
	b.rep.sign = res
	b.rep.signN = map[string]int{"sign-jobs1": b.sz.SignJobs1, "sign-jobs8": b.sz.SignJobs8}
	return nil
}

// freshSignRepo is a new directory holding repo/sign/os/x86_64/sign.db:
// n packages with new sha256s (every upload a new log entry), released by
// the database's detached signature, and an empty sigs/.
func (b *bench) freshSignRepo(n int) (string, error) {
	b.signRuns++
	dir, err := os.MkdirTemp(b.root, "sign-run-")
	if err != nil {
		return "", err
	}
	pkgs := repodbtest.Packages(n, repodbtest.Options{Seed: uint64(time.Now().UnixNano()), NoPGPSig: true})
	for i := range pkgs {
		h := sha256.Sum256([]byte(fmt.Sprintf("%d %d %d %s", time.Now().UnixNano(), b.signRuns, i, pkgs[i].Filename)))
		pkgs[i].SHA256Sum = hex.EncodeToString(h[:])
	}
	db := filepath.Join(dir, "repo", "sign", "os", "x86_64", "sign.db")
	err = writeDB(db, pkgs)
	if err == nil {
		err = b.detachSign(db, db+".sig") // released by the database's signature
	}
	if err == nil {
		err = os.MkdirAll(filepath.Join(dir, "sigs"), 0o755)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// memory: bintrans verify --offline of one large package: peak RSS.
func (b *bench) memory() error {
	path := b.big.paths()[0]
	res, err := b.rounds([]contender{
		{"verify-big", b.proc(runSpec{Name: b.cfg.Bintrans, Args: b.bt(append([]string{"verify", "--transparency-url", b.sigs},
			append(b.policy(true, ""), path)...)...)})},
	})
	if err != nil {
		return err
	}
	b.rep.memory = res
	b.rep.bigBytes = b.big.Bytes
	return nil
}

// monitor: every entry of the main key, from scratch, through a counting
// proxy (issue 9: wall time and request count).
func (b *bench) monitor() error {
	p, err := newCountingProxy(b.cfg.LogURL)
	if err != nil {
		return err
	}
	defer p.Close()
	var reqs []string
	saved := b.cfg.Runs
	b.cfg.Runs = b.sz.MonitorRuns
	if b.cfg.MonitorRuns > 0 {
		b.cfg.Runs = b.cfg.MonitorRuns
	}
	defer func() { b.cfg.Runs = saved }()
	res, err := b.rounds([]contender{{"monitor", func() (sample, error) {
		dir, err := os.MkdirTemp(b.root, "monitor-state-")
		if err != nil {
			return sample{}, err
		}
		defer os.RemoveAll(dir)
		p.reset()
		s, err := measure(runSpec{Name: b.cfg.Bintrans, Args: b.bt("monitor", "--pubkey-path", b.pub,
			"--log-url", p.URL, "--log-key", b.cfg.LogKey, "--state-dir", dir, "--all", "--json"),
			Out: &entryCounter{}})
		reqs = append(reqs, p.summary())
		return s, err
	}}})
	if err != nil {
		return err
	}
	b.rep.monitor = res
	b.rep.monitorRequests = reqs
	b.rep.monitorEntries = b.mainEntries
	return nil
}

// entryCounter discards the monitor's JSON.
type entryCounter struct{ n int64 }

func (e *entryCounter) Write(p []byte) (int, error) { e.n += int64(len(p)); return len(p), nil }

// pause stops the processes named by a space-separated PID list
// (SIGSTOP) and returns the function that resumes them (SIGCONT).
func pause(pids string) (func(), error) {
	var ps []*os.Process
	resume := func() {
		for _, p := range ps {
			p.Signal(syscall.SIGCONT)
		}
	}
	for _, f := range strings.Fields(pids) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("-pause-pids: %q is not a PID", f)
		}
		p, err := os.FindProcess(pid)
		if err == nil {
			err = p.Signal(syscall.SIGSTOP)
		}
		if err != nil {
			resume()
			return nil, fmt.Errorf("pausing the log stack (PID %d): %w", pid, err)
		}
		ps = append(ps, p)
	}
	return resume, nil
}
