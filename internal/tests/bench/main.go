// Command bintrans-bench is `make bench` (scripts/bench starts the local
// Rekor stack and runs it): it generates its own data (cached), measures
// bintrans side by side with its floors and with the old approach in one
// run, prints a table and writes docs/PERFORMANCE.md.
//
//	bintrans-bench -bintrans BIN -rekor-cli BIN -log-url URL -log-key PEM -cache DIR -out FILE [-quick]
//	bintrans-bench hash FILE…   (the all-core hashing floor)
//	bintrans-bench relverify KEYRING SIGDIR FILE…   (sign's per-package release check)
//	bintrans-bench scan-fixture CACHE N   (generate a scan fixture ahead of time)
//	bintrans-bench v2add -url URL -read-url URL -key PEM -origin O -n N -inflight K
//	                                      (the Rekor v2 server alone: N new entries, K adds in flight)
//
// Every figure is the median of -runs runs with its range; ratios are taken
// run by run between commands measured back to back, because the machine
// may be shared.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is what scripts/bench passes in.
type config struct {
	Bintrans, RekorCLI, LogURL, LogKey string
	Cache, Out, Repo, Command, Note    string
	Posix                              string // the Rekor v2 server (rekorv2 step)
	Quick, Micro, Profiles             bool
	Runs, RekorCLIN, Filler            int
	MonitorRuns                        int
	Only, ScanSizes, MicroFile         string
	// PausePIDs are the local log stack's processes, paused (SIGSTOP)
	// while an offline-only phase runs.
	PausePIDs string
}

// sizes are the data set sizes of one mode.
type sizes struct {
	HookN          int   // packages in the main hook batch
	HookMin        int64 // their minimum total size
	SmallN         int   // the large-batch growth point (small packages)
	GrowthSmallN   int   // the small-batch growth point (subset of the main batch)
	Big            int64 // the memory test package
	Filler         int   // extra db entries signed with the main key (monitor)
	ScanN          []int // scan sizes, the goal one is ScanGoal
	ScanGoal       int
	SignJobs1      int // packages per sign run with --jobs 1
	SignJobs8      int // … with --jobs 8
	MonitorRuns    int
	MicroBenchTime string
}

var (
	fullSizes = sizes{HookN: 500, HookMin: 500e6, SmallN: 5000, GrowthSmallN: 50, Big: 2 << 30, Filler: 4499,
		ScanN: []int{1500, 15000, 150000}, ScanGoal: 15000, SignJobs1: 60, SignJobs8: 300, MonitorRuns: 3,
		MicroBenchTime: "300ms"}
	quickSizes = sizes{HookN: 10, HookMin: 4e6, SmallN: 20, GrowthSmallN: 3, Big: 64 << 20, Filler: 5,
		ScanN: []int{100, 300}, ScanGoal: 300, SignJobs1: 5, SignJobs8: 20, MonitorRuns: 1,
		MicroBenchTime: "1x"}
)

var started = time.Now()

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench [%5.0fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, a...))
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hash" {
		os.Exit(hashFiles(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "v2add" {
		os.Exit(v2addMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "relverify" {
		os.Exit(relverify(os.Args[2:]))
	}
	if len(os.Args) == 4 && os.Args[1] == "scan-fixture" { // bintrans-bench scan-fixture CACHE N: pre-generate
		n, err := strconv.Atoi(os.Args[3])
		if err == nil {
			_, err = loadOrMakeScanFixture(os.Args[2], n)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bintrans-bench:", err)
			os.Exit(1)
		}
		return
	}
	var c config
	flag.StringVar(&c.Bintrans, "bintrans", "", "bintrans binary to measure")
	flag.StringVar(&c.RekorCLI, "rekor-cli", "", "rekor-cli v1.5.4 (the old approach)")
	flag.StringVar(&c.LogURL, "log-url", "", "local Rekor URL")
	flag.StringVar(&c.LogKey, "log-key", "", "local Rekor's PEM public key")
	flag.StringVar(&c.Cache, "cache", "", "data cache directory")
	flag.StringVar(&c.Posix, "posix", "", "rekor-tiles' posix server (the rekorv2 step; in -quick mode the step is skipped when it is missing)")
	flag.StringVar(&c.Out, "out", "", "Markdown report to write (empty: none)")
	flag.StringVar(&c.Repo, "repo", ".", "the bintrans source tree (micro-benchmarks, profiling build)")
	flag.StringVar(&c.Command, "command", "make bench", "the command line to print in the report")
	flag.StringVar(&c.Note, "note", "", "a line about the setup for the report")
	flag.BoolVar(&c.Quick, "quick", false, "smoke mode: tiny sizes, one run")
	flag.BoolVar(&c.Micro, "micro", true, "run the Go micro-benchmarks")
	flag.IntVar(&c.Filler, "filler", -1, "extra packages signed with the main key so that the monitor has more entries (default: 10 000 entries in all; quick 5)")
	flag.StringVar(&c.MicroFile, "micro-file", "", "use this recorded output of the micro-benchmark command instead of running it")
	flag.IntVar(&c.MonitorRuns, "monitor-runs", 0, "runs of the monitor figure (default 3; quick 1)")
	flag.IntVar(&c.Runs, "runs", 0, "runs per figure (default 3, quick 1)")
	flag.BoolVar(&c.Profiles, "profiles", true, "CPU profiles of the largest runs (a second, profiling build of bintrans)")
	flag.IntVar(&c.RekorCLIN, "rekor-cli-n", 0, "run the old approach on the first N packages of the batch only (0: all); overheads compare per package")
	flag.StringVar(&c.Only, "only", "", "comma-separated steps to run (data,hook,growth,scan,sign,release,memory,monitor,rekorv2,profiles,micro); data always runs")
	flag.StringVar(&c.PausePIDs, "pause-pids", "", "space-separated PIDs of the log stack, paused (SIGSTOP/SIGCONT) while the offline scan runs: its 10 ms sequencer is not part of a scan")
	flag.StringVar(&c.ScanSizes, "scan-sizes", "", "comma-separated scan sizes (default 1500,15000,150000; quick 100,300)")
	flag.Parse()
	if c.Bintrans == "" || c.LogURL == "" || c.LogKey == "" || c.Cache == "" || c.RekorCLI == "" {
		fmt.Fprintln(os.Stderr, "bintrans-bench: -bintrans, -rekor-cli, -log-url, -log-key and -cache are required (run it through scripts/bench)")
		os.Exit(2)
	}
	if c.Runs == 0 {
		c.Runs = 3
		if c.Quick {
			c.Runs = 1
		}
	}
	if err := run(&c); err != nil {
		fmt.Fprintln(os.Stderr, "bintrans-bench:", err)
		os.Exit(1)
	}
}

func run(c *config) error {
	sz := fullSizes
	if c.Quick {
		sz = quickSizes
	}
	if c.ScanSizes != "" {
		sz.ScanN = nil
		for _, f := range strings.Split(c.ScanSizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("-scan-sizes: bad size %q", f)
			}
			sz.ScanN = append(sz.ScanN, n)
		}
		if !slices.Contains(sz.ScanN, sz.ScanGoal) {
			sz.ScanGoal = sz.ScanN[len(sz.ScanN)/2]
		}
	}
	only := map[string]bool{}
	for _, s := range strings.Split(c.Only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			only[s] = true
		}
	}
	var err error
	for _, p := range []*string{&c.Bintrans, &c.RekorCLI, &c.LogKey, &c.Cache, &c.Repo} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := &bench{cfg: c, sz: sz, self: self, rep: &report{}}
	defer b.stopAgent()
	b.rep.env = collectEnv(c)
	logf("load average at start: %s", b.rep.env.LoadStart)
	steps := []struct {
		name string
		fn   func() error
	}{
		{"data", b.prepare},
		{"hook", b.hookBatch},
		{"growth", b.growth},
		{"scan", b.scan},
		{"sign", b.sign},
		{"release", b.release},
		{"memory", b.memory},
		{"monitor", b.monitor},
		{"rekorv2", b.rekorv2},
		{"profiles", b.profiles},
		{"micro", b.micro},
	}
	for _, s := range steps {
		if len(only) > 0 && s.name != "data" && !only[s.name] {
			b.rep.skipped = append(b.rep.skipped, s.name)
			continue
		}
		t := time.Now()
		logf("== %s", s.name)
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.rep.phases = append(b.rep.phases, fmt.Sprintf("%s %.0f s", s.name, time.Since(t).Seconds()))
	}
	b.rep.env.LoadEnd = loadavg()
	b.rep.total = time.Since(started)
	fmt.Print(b.rep.table())
	if c.Out != "" {
		if err := os.WriteFile(c.Out, []byte(b.rep.markdown(c)), 0o644); err != nil {
			return err
		}
		logf("wrote %s", c.Out)
	}
	return nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
