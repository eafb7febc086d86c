package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

type envInfo struct {
	Date, CPU, Mem, Kernel, OS, Go, OpenSSL, Sha256sum, RekorCLI, Bintrans, Commit string
	Cores                                                                          int
	LoadStart, LoadEnd                                                             string
}

type growthPoint struct {
	N     int
	Bytes int64
	Res   results
}

type report struct {
	env       envInfo
	phases    []string
	total     time.Duration
	firstSign string
	// scanPaused: the log stack was paused (SIGSTOP) during the scan.
	scanPaused bool

	skipped                      []string
	rekorN                       int
	hook                         results
	hookN                        int
	hookBytes                    int64
	rekorCLIAnswer, hookRequests string
	// Requests to the log: one online hook run (hookRequestsN), the old
	// approach on oldRequestsPkgs packages (oldRequestsN).
	hookRequestsN                 int
	oldRequests                   string
	oldRequestsN, oldRequestsPkgs int
	hookGrowth, scanGrowth        []growthPoint
	scanGoal                      results
	scanGoalN                     int
	sign                          results
	signN                         map[string]int
	release                       results
	releaseN                      int
	releaseBytes                  int64
	memory                        results
	bigBytes                      int64
	monitor                       results
	monitorRequests               []string
	monitorEntries                int
	v2                            *v2report // the rekorv2 step
	profiles                      []profile
	micro                         []microResult
	microCmd, microErr, microNote string
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "?"
	}
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return l
}

func collectEnv(c *config) envInfo {
	e := envInfo{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Cores: runtime.NumCPU(), LoadStart: loadavg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "MemTotal:") {
				var kb int64
				fmt.Sscanf(strings.TrimPrefix(sc.Text(), "MemTotal:"), "%d", &kb)
				e.Mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
		f.Close()
	}
	e.Kernel = firstLine("uname", "-sr")
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				e.OS = strings.Trim(v, `"`)
			}
		}
	}
	e.Go = firstLine("go", "version")
	e.OpenSSL = firstLine("openssl", "version")
	e.Sha256sum = firstLine("sha256sum", "--version")
	e.RekorCLI = strings.TrimSpace(strings.Join(strings.Fields(grepLine(c.RekorCLI, "GitVersion")), " "))
	e.Bintrans = firstLine(c.Bintrans, "version")
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = c.Repo
	if out, err := cmd.Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out))
	}
	return e
}

func grepLine(bin, key string) string {
	out, _ := exec.Command(bin, "version").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, key) {
			return l
		}
	}
	return "?"
}

// goalRow is one line of the summary table.
type goalRow struct{ What, Goal, Measured, Met, Prof string }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r *report) rows() []goalRow {
	var rows []goalRow
	h := r.hook
	if h != nil {
		mb := float64(r.hookBytes) / 1e6
		x := h.ratio("hook-offline", "openssl")
		rows = append(rows, goalRow{fmt.Sprintf("hook --offline, %d packages, %.0f MB ÷ openssl dgst -sha256 (1 thread)", r.hookN, mb), "≤ 0.70×", x.format(2, "×"), met(x.Med <= 0.70), fmt.Sprintf("hook --offline, %d packages", r.hookN)})
		x = h.ratio("hook-offline", "gofloor")
		rows = append(rows, goalRow{"hook --offline ÷ Go hashing on every core (true floor)", "≤ 1.15×", x.format(2, "×"), met(x.Med <= 1.15), fmt.Sprintf("hook --offline, %d packages", r.hookN)})
		rows = append(rows, goalRow{"hook --offline ÷ sha256sum", "—", h.ratio("hook-offline", "sha256sum").format(2, "×"), "—", ""})
		if r.busy() {
			cores := float64(r.env.Cores)
			rows = append(rows, goalRow{fmt.Sprintf("idle-machine projection from CPU time: (hook --offline CPU ÷ %d cores) ÷ openssl CPU", r.env.Cores), "≤ 0.70×", h.cpuRatio("hook-offline", cores, "openssl", 1).format(2, "×"), "(projection)", ""})
			rows = append(rows, goalRow{"idle-machine projection: hook --offline CPU ÷ Go floor CPU", "≤ 1.15×", h.cpuRatio("hook-offline", 1, "gofloor", 1).format(2, "×"), "(projection)", ""})
		}
		rows = append(rows, goalRow{"hook online (inclusion + consistency) ÷ openssl", "—", h.ratio("hook-online", "openssl").format(2, "×"), "—", ""})
		x = h.ratioPer("rekor-cli", r.rekorN, "scan-offline", r.hookN)
		rows = append(rows, goalRow{"verification overhead beyond hashing, offline: old (rekor-cli per package) ÷ bintrans", "≥ 100×", x.format(0, "×"), met(x.Med >= 100), fmt.Sprintf("scan --offline, %d packages", r.scanGoalN)})
		x = h.ratioPer("rekor-cli", r.rekorN, "scan-online", r.hookN)
		rows = append(rows, goalRow{"verification overhead beyond hashing, online: old ÷ bintrans", "≥ 30×", x.format(0, "×"), met(x.Med >= 30), ""})
		if q, ok := r.requestRatio(); ok {
			rows = append(rows, goalRow{fmt.Sprintf("requests to the log per online run of %d packages: old ÷ bintrans (%d)", r.hookN, r.hookRequestsN), "—", fmt.Sprintf("%.0f×", q), "—", ""})
		}
	}
	if r.scanGoal != nil {
		w := r.scanGoal.wall("scan-offline")
		rows = append(rows, goalRow{fmt.Sprintf("scan --offline of a %d-package db: wall time", r.scanGoalN), "≤ 5 s", w.format(2, " s"), met(w.Med <= 5), fmt.Sprintf("scan --offline, %d packages", r.scanGoalN)})
		if r.busy() {
			var v []float64
			for _, s := range r.scanGoal["scan-offline"] {
				v = append(v, secs(s.CPU)/float64(r.env.Cores))
			}
			rows = append(rows, goalRow{fmt.Sprintf("idle-machine projection: scan CPU time ÷ %d cores", r.env.Cores), "≤ 5 s", summarize(v).format(2, " s"), "(projection)", ""})
		}
		m := r.scanGoal.rss("scan-offline")
		rows = append(rows, goalRow{fmt.Sprintf("scan --offline of a %d-package db: peak RSS", r.scanGoalN), "≤ 150 MB", m.format(0, " MiB"), met(m.Med*1.048576 <= 150), fmt.Sprintf("scan --offline, %d packages", r.scanGoalN)})
	}
	if r.sign != nil {
		for _, k := range []string{"sign-jobs1", "sign-jobs8"} {
			var v []float64
			for _, s := range r.sign[k] {
				v = append(v, float64(r.signN[k])/secs(s.Wall))
			}
			st := summarize(v)
			goal, ok := "—", "—"
			if k == "sign-jobs8" {
				goal, ok = "≥ 60/s", met(st.Med >= 60)
			}
			rows = append(rows, goalRow{fmt.Sprintf("bintrans sign --jobs %s to the local Rekor (%d new packages per run)", strings.TrimPrefix(k, "sign-jobs"), r.signN[k]), goal, st.format(1, "/s"), ok, ""})
		}
	}
	if r.release != nil {
		mb := float64(r.releaseBytes) / 1e6
		var v []float64
		for _, s := range r.release["release-verify"] {
			v = append(v, mb/secs(s.Wall))
		}
		var o []float64
		for _, s := range r.release["openssl"] {
			o = append(o, mb/secs(s.Wall))
		}
		rows = append(rows, goalRow{fmt.Sprintf("sign --release-signatures package: gpg --verify + sha256 of %d packages, %.0f MB, one at a time", r.releaseN, mb), "—", summarize(v).format(0, " MB/s"), "—", ""})
		rows = append(rows, goalRow{"… the same files through openssl dgst -sha256 (1 thread)", "—", summarize(o).format(0, " MB/s"), "—", ""})
		rows = append(rows, goalRow{"… release check ÷ openssl (time)", "—", r.release.ratio("release-verify", "openssl").format(2, "×"), "—", ""})
	}
	if r.memory != nil {
		m := r.memory.rss("verify-big")
		rows = append(rows, goalRow{fmt.Sprintf("bintrans verify --offline of a %s package: peak RSS", sizeLabel(r.bigBytes)), "≤ 64 MB", m.format(1, " MiB"), met(m.Med*1.048576 <= 64), ""})
	}
	if r.monitor != nil {
		rows = append(rows, goalRow{fmt.Sprintf("bintrans monitor --all, %d entries of one key, from scratch", r.monitorEntries), "—", r.monitor.wall("monitor").format(1, " s"), "—", ""})
	}
	return append(rows, r.v2.rows()...)
}

// busy: the 1-minute load average at the start or the end exceeded the
// number of cores.
func (r *report) busy() bool {
	return max(loadNumber(r.env.LoadStart), loadNumber(r.env.LoadEnd)) > float64(r.env.Cores)
}

func (r *report) table() string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tgoal\tmeasured: median (min–max)\t")
	for _, row := range r.rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.What, row.Goal, row.Measured, strings.Trim(row.Met, "*"))
	}
	tw.Flush()
	return sb.String()
}

func (r *report) markdown(c *config) string {
	var b strings.Builder
	r.mdSummary(&b, c)
	r.mdHook(&b)
	r.mdGrowth(&b)
	r.mdSign(&b)
	r.mdMemoryMonitor(&b)
	r.v2.markdown(printer(&b))
	r.mdProfiles(&b)
	r.mdMicro(&b)
	p := printer(&b)
	if len(r.skipped) > 0 {
		p("Not measured in this run (-only): %s.\n\n", strings.Join(r.skipped, ", "))
	}
	p("## How to reproduce\n\n```\n%s\n```\n\nData is generated once and cached under `${BINTRANS_CACHE:-$HOME/.cache/bintrans}/bench` (packages, dbs, keys; signatures per log tree); the local Rekor stack's data dir is cached there too, so re-runs only measure. As root the whole run is in a private network namespace (only loopback). `BENCH_QUICK=1 make bench` is the smoke mode (tiny sizes, one run, about a minute once its data is cached). The BENCH_* knobs are documented in scripts/bench. Phases of this run: %s.\n", c.Command, strings.Join(r.phases, ", "))
	return b.String()
}

// printer is fmt.Fprintf into b.
func printer(b *strings.Builder) func(f string, a ...any) {
	return func(f string, a ...any) { fmt.Fprintf(b, f, a...) }
}

// mdSummary is the head of PERFORMANCE.md: how it was measured, the
// machine, and the goals met or missed.
func (r *report) mdSummary(b *strings.Builder, c *config) {
	p := printer(b)
	runs := "median (min–max) of %d runs"
	p("# Performance\n\n")
	p("Measured by `%s` (scripts/bench → internal/tests/bench) on %s, in %.1f minutes.\n", c.Command, r.env.Date, r.total.Minutes())
	p("Every figure is the "+runs+"; ratios are computed run by run between commands run back to back (the order rotated each round), then summarised.\n\n", c.Runs)
	if c.Quick {
		p("**Smoke mode (BENCH_QUICK=1): tiny data sets, one run — these numbers say nothing about performance.**\n\n")
	}
	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s, %d cores |\n| memory | %s |\n| system | %s, %s |\n", r.env.CPU, r.env.Cores, r.env.Mem, r.env.OS, r.env.Kernel)
	p("| load average (1/5/15 min) | %s at start, %s at the end |\n", r.env.LoadStart, r.env.LoadEnd)
	p("| bintrans | %s (commit %s) |\n| Go | %s |\n| openssl | %s |\n| sha256sum | %s |\n| rekor-cli | %s |\n", r.env.Bintrans, r.env.Commit, r.env.Go, r.env.OpenSSL, r.env.Sha256sum, r.env.RekorCLI)
	rss := "GNU time's %M (`/usr/bin/time`)"
	if timeBin == "" {
		rss = "getrusage of the child: an upper bound (Go's vfork counts this driver's RSS; install Debian's `time` package)"
	}
	p("| peak RSS | %s |\n", rss)
	p("| log | local Rekor v1.5.4 on Trillian v1.8.0 and MariaDB (scripts/rekor-stack), 10 ms sequencer interval%s |\n\n", c.Note)
	if r.busy() {
		p("> **The machine was busy while these numbers were taken** (load average %s at the start, %s at the end, on %d cores: other jobs were running). Wall times and the ratios to single-threaded openssl suffer most (parallel hashing needs idle cores); CPU times are given next to wall times, and the goals table adds projections for an idle machine from CPU time (a command keeping k cores busy takes about CPU ÷ k). CPU time itself is inflated on a crowded machine (caches, frequency), so the projections are conservative. Re-run `make bench` on a quiet machine for the true figures: the harness needs no change.\n\n", r.env.LoadStart, r.env.LoadEnd, r.env.Cores)
	}
	p("## Goals\n\n| figure | goal | measured: median (min–max) | |\n|---|---|---|---|\n")
	for _, row := range r.rows() {
		p("| %s | %s | %s | %s |\n", row.What, row.Goal, row.Measured, row.Met)
	}
	p("\n")
	for _, row := range r.rows() {
		if row.Met != met(false) {
			continue
		}
		p("- **%s** missed (%s, goal %s).", row.What, row.Measured, row.Goal)
		for _, pr := range r.profiles {
			if row.Prof != "" && strings.HasPrefix(pr.Title, row.Prof) {
				p(" Its CPU profile (below, \"%s\"), flat top: %s.", pr.Title, topFuncs(pr.Top, 3))
			}
		}
		p("\n")
	}
	p("\n")
}

// mdHook is sections 1–2: the hook batch, offline and online, next to
// hashing alone and the old approach.
func (r *report) mdHook(b *strings.Builder) {
	p := printer(b)
	if h := r.hook; h != nil {
		p("## 1–2. Hook batch: %d packages, %.0f MB, offline and online\n\n", r.hookN, float64(r.hookBytes)/1e6)
		p("Random (incompressible) `.pkg.tar.zst` files with a realistic size mix (60 %% 16–512 KiB, 28 %% 0.5–2 MiB, 10 %% 2–6 MiB, 2 %% 6–30 MiB), in a pacman CacheDir with a sync db; `.t` and bundles made by `bintrans sign` against the local Rekor. Page cache warm. `bintrans hook` reads the target names on stdin like the alpm hook.\n\n")
		p("| command | wall s | CPU s (user+sys) | peak RSS MiB |\n|---|---|---|---|\n")
		for _, k := range []struct{ name, desc string }{
			{"openssl", "`openssl dgst -sha256 FILE…` (one thread, SHA extensions)"},
			{"sha256sum", "`sha256sum FILE…` (Debian coreutils)"},
			{"gofloor", "`bintrans-bench hash FILE…` (Go, sha256 only, every core)"},
			{"hook-offline", "`bintrans hook --offline` (bundles only)"},
			{"hook-online", "`bintrans hook` online (+ batched inclusion against the current tree, consistency with the stored checkpoint)"},
			{"scan-offline", fmt.Sprintf("`bintrans scan --offline core.db` (the same %d verifications, no hashing)", r.hookN)},
			{"scan-online", "`bintrans scan core.db` online (no hashing)"},
			{"rekor-cli", fmt.Sprintf("old approach: %d × `rekor-cli upload --type rekord --pki-format minisign …` (no hashing)", r.rekorN)},
		} {
			p("| %s | %s | %s | %s |\n", k.desc, h.wall(k.name).format(2, ""), h.cpu(k.name).format(2, ""), h.rss(k.name).format(0, ""))
		}
		p("\nOverhead beyond hashing, per package: old approach %s ms; bintrans offline %s ms, online %s ms (scan of the same packages' db: the whole verification without the hashing). ",
			perPkg(h, "rekor-cli", r.rekorN), perPkg(h, "scan-offline", r.hookN), perPkg(h, "scan-online", r.hookN))
		var d []float64
		for i := range h["hook-offline"] {
			if i < len(h["gofloor"]) {
				d = append(d, 1000*(secs(h["hook-offline"][i].Wall)-secs(h["gofloor"][i].Wall))/float64(r.hookN))
			}
		}
		p("Cross-check from the hook itself: (hook --offline − Go floor) ÷ packages = %s ms per package (noisy: a difference of two wall times).\n\n", summarize(d).format(3, ""))
		p("The old approach proves nothing for an already-logged package: the log answers 409 and rekor-cli prints\n\n```\n%s\n```\n\n", r.rekorCLIAnswer)
		if r.hookRequests != "" {
			p("Requests of one online hook run to the log (counting proxy): %s.\n\n", r.hookRequests)
		}
		if x, ok := r.requestRatio(); ok {
			p("Requests of the old approach (rekor-cli per package, counting proxy, %d packages): %s; %.1f per package, %.0f for the %d packages of the hook run: %.0f× the requests of one bintrans online run.\n\n",
				r.oldRequestsPkgs, r.oldRequests, float64(r.oldRequestsN)/float64(r.oldRequestsPkgs), float64(r.oldRequestsN)/float64(r.oldRequestsPkgs)*float64(r.hookN), r.hookN, x)
		}
	}
}

// mdGrowth is sections 6a, 3 and 6b: hook and scan by size.
func (r *report) mdGrowth(b *strings.Builder) {
	p := printer(b)
	if len(r.hookGrowth) > 0 {
		p("## 6a. Growth: hook --offline by transaction size\n\n")
		p("| packages | MB | hook wall s | ÷ openssl | ÷ Go floor | hook CPU s | µs wall per package | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n")
		for _, g := range r.hookGrowth {
			w := g.Res.wall("hook-offline")
			p("| %d | %.1f | %s | %s | %s | %s | %.0f | %s |\n", g.N, float64(g.Bytes)/1e6, w.format(3, ""), g.Res.ratio("hook-offline", "openssl").format(2, "×"),
				g.Res.ratio("hook-offline", "gofloor").format(2, "×"), g.Res.cpu("hook-offline").format(2, ""), 1e6*w.Med/float64(g.N), g.Res.rss("hook-offline").format(0, ""))
		}
		g := r.hookGrowth
		p("\nThe %d- and %d-package points are the same size mix (the smaller a prefix of the larger); the %d-package point uses small packages (2–30 KiB), so it measures the per-package cost rather than hashing.\n\n", g[0].N, g[1].N, g[len(g)-1].N)
	}
	if len(r.scanGrowth) > 0 {
		p("## 3, 6b. Scan --offline by database size\n\n")
		p("A sync db shaped like Arch's extra (repodbtest: epochs, split packages, long descriptions, %%PGPSIG%%), gzip, with a `.t` and a bundle per package in a local --signature-dir. These bundles come from an in-memory log (internal/tests/bench/scanfix.go: canonical rekord bodies, RFC 6962 proofs, signed checkpoints and SETs, exactly the format of the local Rekor's answers): 150 000 uploads to the local Rekor would take ≈ 40 minutes. The repository is signed as `bintrans sign` publishes it: in runs of 1 000 packages whose bundles share one checkpoint.\n\n")
		if r.scanPaused {
			p("The local log stack is paused (SIGSTOP) while the scans run: the scan is offline, and Trillian's sequencer, waking every 10 ms, takes about a fifth of a core while idle.\n\n")
		}
		p("| packages | wall s | CPU s | µs wall per package | µs CPU per package | peak RSS MiB |\n|---|---|---|---|---|---|\n")
		for _, g := range r.scanGrowth {
			w, cp := g.Res.wall("scan-offline"), g.Res.cpu("scan-offline")
			p("| %d | %s | %s | %.0f | %.0f | %s |\n", g.N, w.format(2, ""), cp.format(2, ""), 1e6*w.Med/float64(g.N), 1e6*cp.Med/float64(g.N), g.Res.rss("scan-offline").format(0, ""))
		}
		first, last := r.scanGrowth[0], r.scanGrowth[len(r.scanGrowth)-1]
		a := first.Res.cpu("scan-offline").Med / float64(first.N)
		z := last.Res.cpu("scan-offline").Med / float64(last.N)
		p("\nCPU per package from %d to %d packages: ×%.2f (1.00 = exactly linear).\n\n", first.N, last.N, z/a)
	}
}

// mdSign is section 4, sign throughput, and the release signature
// check.
func (r *report) mdSign(b *strings.Builder) {
	p := printer(b)
	if r.sign != nil {
		p("## 4. Sign throughput\n\n`bintrans sign` of a fresh database each run (new sha256s, so every upload is a new log entry), unencrypted key, against the local Rekor: wall time of the whole command (db read, sign, upload, wait for the inclusion proof, verify, audit record with fsync, atomic publish).\n\n")
		p("| run | packages | wall s | packages/s | CPU s |\n|---|---|---|---|---|\n")
		for _, k := range []string{"sign-jobs1", "sign-jobs8"} {
			var v []float64
			for _, s := range r.sign[k] {
				v = append(v, float64(r.signN[k])/secs(s.Wall))
			}
			p("| --jobs %s | %d | %s | %s | %s |\n", strings.TrimPrefix(k, "sign-jobs"), r.signN[k], r.sign.wall(k).format(2, ""), summarize(v).format(1, ""), r.sign.cpu(k).format(2, ""))
		}
		if r.firstSign != "" {
			p("\nFirst-run signing of the data set (--jobs 8): %s.\n", r.firstSign)
		}
		p("\n")
	}
	if r.release != nil {
		mb := float64(r.releaseBytes) / 1e6
		p("## Release signatures (issue 21)\n\nWhat `bintrans sign --release-signatures package` does for each package before signing it, on the main batch (%d packages, %.0f MB, page cache warm): the package's detached signature (made by gpg --detach-sign, as makepkg --sign) verified by `gpg --verify` on a private copy of the keyring, the bytes streamed through it and through sha256 once (`bintrans-bench relverify`: the signer's own `Keyring.Verify`), one package at a time; next to `openssl dgst -sha256` of the same files. The database-signature mode (`--release-signatures db`, or auto with a `<repo>.db.sig`) is one gpg run over the database: the sign throughput above includes it.\n\n", r.releaseN, mb)
		p("| command | wall s | MB/s | CPU s |\n|---|---|---|---|\n")
		for _, k := range []string{"release-verify", "openssl"} {
			var v []float64
			for _, s := range r.release[k] {
				v = append(v, mb/secs(s.Wall))
			}
			p("| %s | %s | %s | %s |\n", map[string]string{"release-verify": "per-package release check", "openssl": "openssl dgst -sha256"}[k],
				r.release.wall(k).format(2, ""), summarize(v).format(0, ""), r.release.cpu(k).format(2, ""))
		}
		p("\nRatio (release check ÷ openssl, wall, run by run): %s.\n\n", r.release.ratio("release-verify", "openssl").format(2, "×"))
	}
}

// mdMemoryMonitor is section 5, one large package, and the monitor.
func (r *report) mdMemoryMonitor(b *strings.Builder) {
	p := printer(b)
	if r.memory != nil {
		p("## 5. Memory: one %s package\n\nA sparse file (1 MiB of random data, then a hole): every byte is read and hashed, none costs disk. `bintrans verify --offline FILE`.\n\n", sizeLabel(r.bigBytes))
		p("| command | wall s | CPU s | peak RSS MiB |\n|---|---|---|---|\n")
		p("| bintrans verify --offline | %s | %s | %s |\n\n", r.memory.wall("verify-big").format(2, ""), r.memory.cpu("verify-big").format(2, ""), r.memory.rss("verify-big").format(1, ""))
	}
	if r.monitor != nil {
		p("## Monitor (issue 9)\n\n`bintrans monitor --all --json` with an empty state dir over every entry of a key that signed %d packages, through a counting proxy: wall %s s, CPU %s s, peak RSS %s MiB.\n\n", r.monitorEntries,
			r.monitor.wall("monitor").format(1, ""), r.monitor.cpu("monitor").format(2, ""), r.monitor.rss("monitor").format(0, ""))
		for i, q := range r.monitorRequests {
			p("- run %d: %s\n", i+1, q)
		}
		p("\n")
	}
}

// mdProfiles is the CPU profiles of the profiling build.
func (r *report) mdProfiles(b *strings.Builder) {
	p := printer(b)
	if len(r.profiles) > 0 {
		p("## Where the time goes (CPU profiles)\n\nOne extra run each of the profiling build (bintrans plus a CPU profile from start to exit and a heap profile at exit, added by `go build -overlay`; the source is untouched). `go tool pprof -top`: flat top 5, then cumulative top 10, then the in-use heap.\n\n")
		for _, pr := range r.profiles {
			p("### %s\n\nwall %.2f s, CPU %.2f s, peak RSS %.0f MiB\n\n```\n%s\n```\n\n```\n%s\n```\n\n", pr.Title, pr.Wall.Seconds(), pr.CPU.Seconds(), mib(pr.RSS), pr.Top, pr.Cum)
			if pr.Heap != "" {
				p("In-use heap at the last garbage collection before exit (what the command kept), top 5:\n\n```\n%s\n```\n\n", pr.Heap)
			}
		}
	}
}

// mdMicro is the Go micro-benchmarks.
func (r *report) mdMicro(b *strings.Builder) {
	p := printer(b)
	if len(r.micro) > 0 || r.microErr != "" {
		p("## Go micro-benchmarks\n\n`%s` — median (min–max) of the runs.", r.microCmd)
		if r.microNote != "" {
			p(" Output %s.", r.microNote)
		}
		p("\n\n")
		if r.microErr != "" {
			p("> %s\n\n", r.microErr)
		}
		p("| package | benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---|---|---|---|\n")
		for _, m := range r.micro {
			var other []string
			for _, u := range m.Units {
				if u == "ns/op" || u == "B/op" || u == "allocs/op" {
					continue
				}
				other = append(other, summarize(m.Metrics[u]).format(prec(summarize(m.Metrics[u]).Med), " "+u))
			}
			p("| %s | %s | %s | %s | %s | %s |\n", m.Pkg, m.Name, summarize(m.Metrics["ns/op"]).format(0, ""),
				summarize(m.Metrics["B/op"]).format(0, ""), summarize(m.Metrics["allocs/op"]).format(0, ""), strings.Join(other, "; "))
		}
		p("\n")
	}
}

func perPkg(h results, name string, n int) string {
	var v []float64
	for _, s := range h[name] {
		v = append(v, 1000*secs(s.Wall)/float64(n))
	}
	return summarize(v).format(3, "")
}

func prec(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 1:
		return 2
	default:
		return 4
	}
}

func loadNumber(s string) float64 {
	var f float64
	fmt.Sscanf(s, "%g", &f)
	return f
}

// sizeLabel is "2 GiB" or "64 MiB".
func sizeLabel(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.0f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

// topFuncs is "name (flat%), …" for the first n rows of a pprof -top table.
func topFuncs(top string, n int) string {
	var out []string
	on := false
	for _, l := range strings.Split(top, "\n") {
		f := strings.Fields(l)
		if strings.Contains(l, "flat%") {
			on = true
			continue
		}
		if !on || len(f) < 6 || len(out) >= n {
			continue
		}
		out = append(out, fmt.Sprintf("`%s` %s", strings.Join(f[5:], " "), f[1]))
	}
	return strings.Join(out, ", ")
}

// requestRatio is the old approach's requests for the hook batch (per
// package × packages) ÷ one bintrans online hook run's.
func (r *report) requestRatio() (float64, bool) {
	if r.hookRequestsN == 0 || r.oldRequestsPkgs == 0 {
		return 0, false
	}
	return float64(r.oldRequestsN) / float64(r.oldRequestsPkgs) * float64(r.hookN) / float64(r.hookRequestsN), true
}
