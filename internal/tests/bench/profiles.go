package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The profiling build: bintrans as built by `make build`, plus (through
// go build -overlay, the source tree untouched) a CPU profile written to
// $BINTRANS_BENCH_CPUPROFILE from init to exit (and a heap profile to
// $BINTRANS_BENCH_MEMPROFILE at exit).
const profHook = `package main

import (
	"os"
	"runtime/pprof"
)

var benchProfile *os.File

func init() {
	p := os.Getenv("BINTRANS_BENCH_CPUPROFILE")
	if p == "" {
		return
	}
	f, err := os.Create(p)
	if err != nil {
		return
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return
	}
	benchProfile = f
}

func benchExit(code int) {
	if benchProfile != nil {
		pprof.StopCPUProfile()
		benchProfile.Close()
	}
	// The heap as of the last garbage collection, which ran while the
	// command's data was still live: what it kept in memory.
	if p := os.Getenv("BINTRANS_BENCH_MEMPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	os.Exit(code)
}
`

func (b *bench) buildProfiling() error {
	dir := filepath.Join(b.root, "prof-build")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mainSrc := filepath.Join(b.cfg.Repo, "cmd", "bintrans", "main.go")
	src, err := os.ReadFile(mainSrc)
	if err != nil {
		return err
	}
	const exit = "os.Exit(run("
	if strings.Count(string(src), exit) != 1 {
		return fmt.Errorf("cmd/bintrans/main.go no longer calls %s…) exactly once: cannot add the profile hook", exit)
	}
	patched := strings.Replace(string(src), exit, "benchExit(run(", 1)
	overlay := map[string]map[string]string{"Replace": {
		mainSrc: filepath.Join(dir, "main.go"),
		filepath.Join(b.cfg.Repo, "cmd", "bintrans", "zz_benchprofile.go"): filepath.Join(dir, "zz_benchprofile.go"),
	}}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(patched), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "zz_benchprofile.go"), []byte(profHook), 0o644); err != nil {
		return err
	}
	oj, _ := json.Marshal(overlay)
	if err := os.WriteFile(filepath.Join(dir, "overlay.json"), oj, 0o644); err != nil {
		return err
	}
	b.profBin = filepath.Join(dir, "bintrans-prof")
	// The flags of `make build`, so that the dependencies come from the build cache.
	cmd := exec.Command("go", "build", "-trimpath", "-overlay", filepath.Join(dir, "overlay.json"), "-o", b.profBin, "./cmd/bintrans")
	cmd.Dir = b.cfg.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("profiling build: %v\n%s", err, out)
	}
	return nil
}

// profiles: CPU profiles (pprof top) of the largest runs.
func (b *bench) profiles() error {
	if !b.cfg.Profiles {
		b.rep.skipped = append(b.rep.skipped, "profiles")
		return nil
	}
	if err := b.buildProfiling(); err != nil {
		b.rep.profiles = append(b.rep.profiles, profile{Title: "profiling build", Top: err.Error()})
		logf("no profiles: %v", err)
		return nil
	}
	largestScan := b.sz.ScanN[len(b.sz.ScanN)-1]
	fxGoal, err := loadOrMakeScanFixture(filepath.Join(b.root, ".."), b.sz.ScanGoal)
	if err != nil {
		return err
	}
	fxBig, err := loadOrMakeScanFixture(filepath.Join(b.root, ".."), largestScan)
	if err != nil {
		return err
	}
	runs := []struct {
		title string
		spec  runSpec
	}{
		{fmt.Sprintf("hook --offline, %d packages (%.0f MB)", len(b.core.Files), float64(b.core.Bytes)/1e6), b.hookSpec(b.core, len(b.core.Files), true, "")},
		{fmt.Sprintf("hook --offline, %d small packages", len(b.small.Files)), b.hookSpec(b.small, len(b.small.Files), true, "")},
		{fmt.Sprintf("scan --offline, %d packages", b.sz.ScanGoal), b.scanSpec(fxGoal.DB, fxGoal.Sigs, fxGoal.Pub, fxGoal.LogKey, true, "")},
		{fmt.Sprintf("scan --offline, %d packages", largestScan), b.scanSpec(fxBig.DB, fxBig.Sigs, fxBig.Pub, fxBig.LogKey, true, "")},
	}
	for i, r := range runs {
		if i == len(runs)-1 && largestScan == b.sz.ScanGoal { // the goal size is the largest
			continue
		}
		prof := filepath.Join(b.root, "prof-build", fmt.Sprintf("cpu-%d.pprof", i))
		os.Remove(prof)
		s := r.spec
		s.Name = b.profBin
		heap := strings.TrimSuffix(prof, ".pprof") + ".heap"
		os.Remove(heap)
		s.Env = append(s.Env, "BINTRANS_BENCH_CPUPROFILE="+prof, "BINTRANS_BENCH_MEMPROFILE="+heap)
		smp, err := measure(s)
		if err != nil {
			return err
		}
		top := pprofTop(b.profBin, prof, false)
		cum := pprofTop(b.profBin, prof, true)
		b.rep.profiles = append(b.rep.profiles, profile{Title: r.title, Wall: smp.Wall, CPU: smp.CPU, RSS: smp.RSS,
			Top: top, Cum: cum, Heap: pprofTop(b.profBin, heap, false, "-sample_index=inuse_space"), File: prof})
	}
	return nil
}

type profile struct {
	Title     string
	Wall, CPU time.Duration
	RSS       int64
	Top, Cum  string
	Heap      string // in-use heap at the last GC before exit
	File      string
}

func pprofTop(bin, prof string, cum bool, extra ...string) string {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=5"}, extra...)
	if cum {
		args = append(args, "-cum", "-nodecount=10")
	}
	out, err := exec.Command("go", append(args, bin, prof)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("pprof: %v\n%s", err, out)
	}
	var keep []string
	on := false
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Showing nodes") || strings.HasPrefix(l, "Duration:") {
			keep = append(keep, l)
		}
		if strings.Contains(l, "flat%") {
			on = true
		}
		if on && strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
