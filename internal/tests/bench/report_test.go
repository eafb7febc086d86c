package main

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in            []float64
		med, min, max float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{7}, 7, 7, 7},
	} {
		s := summarize(tc.in)
		if s.Med != tc.med || s.Min != tc.min || s.Max != tc.max || s.N != len(tc.in) {
			t.Errorf("summarize(%v) = %+v, want med %v min %v max %v", tc.in, s, tc.med, tc.min, tc.max)
		}
	}
	if got := summarize([]float64{1, 2, 3}).format(1, " s"); got != "2.0 s (1.0–3.0)" {
		t.Errorf("format = %q", got)
	}
	if got := summarize(nil).format(1, ""); got != "n/a" {
		t.Errorf("empty format = %q", got)
	}
}

// Ratios pair the runs of the same round, not the medians.
func TestRatiosPairRounds(t *testing.T) {
	r := results{
		"a": {{Wall: 2 * time.Second, CPU: 4 * time.Second}, {Wall: 10 * time.Second, CPU: 4 * time.Second}},
		"b": {{Wall: 1 * time.Second, CPU: 1 * time.Second}, {Wall: 10 * time.Second, CPU: 2 * time.Second}},
	}
	got := r.ratio("a", "b")
	if got.Min != 1 || got.Max != 2 || got.Med != 1.5 {
		t.Errorf("ratio = %+v, want 1 and 2 (paired by round)", got)
	}
	per := r.ratioPer("a", 10, "b", 100) // 10 packages vs 100: per package ×10
	if math.Abs(per.Max-20) > 1e-9 || math.Abs(per.Min-10) > 1e-9 {
		t.Errorf("ratioPer = %+v, want 10–20", per)
	}
	cpu := r.cpuRatio("a", 2, "b", 1)
	if cpu.Min != 1 || cpu.Max != 2 {
		t.Errorf("cpuRatio = %+v, want 1–2", cpu)
	}
}

func TestParseMicro(t *testing.T) {
	out := bytes.NewBufferString(`goos: linux
pkg: github.com/bintrans/bintrans/verify
BenchmarkVerifyEntry-2   	    1000	    250000 ns/op	    5000 B/op	      60 allocs/op
BenchmarkVerifyEntry-2   	    1000	    230000 ns/op	    5000 B/op	      60 allocs/op
BenchmarkVerifyEntry-2   	    1000	    270000 ns/op	    5000 B/op	      60 allocs/op
pkg: github.com/bintrans/bintrans/repodb
BenchmarkReadDB-2   	       2	 500000000 ns/op	     33.3 µs/entry	 9000 B/op	 100 allocs/op
ok  	github.com/bintrans/bintrans/repodb	3.1s
`)
	b := &bench{rep: &report{}, cfg: &config{}}
	if err := b.parseMicro(out, nil); err != nil {
		t.Fatal(err)
	}
	if len(b.rep.micro) != 2 {
		t.Fatalf("got %d results, want 2: %+v", len(b.rep.micro), b.rep.micro)
	}
	m := b.rep.micro[1] // sorted by package: repodb, verify
	if m.Pkg != "verify" || m.Name != "BenchmarkVerifyEntry-2" || summarize(m.Metrics["ns/op"]).Med != 250000 {
		t.Errorf("verify result = %+v", m)
	}
	if r := b.rep.micro[0]; r.Pkg != "repodb" || summarize(r.Metrics["µs/entry"]).Med != 33.3 {
		t.Errorf("repodb result = %+v", r)
	}
}

func TestTopFuncs(t *testing.T) {
	top := `Showing nodes accounting for 740ms, 77.89% of 950ms total
      flat  flat%   sum%        cum   cum%
     150ms 15.79% 15.79%      150ms 15.79%  p256MulInternal
     100ms 10.53% 26.32%      100ms 10.53%  internal/runtime/syscall/linux.Syscall6
      90ms  9.47% 35.79%       90ms  9.47%  crypto/internal/fips140/edwards25519/field.feMul`
	got := topFuncs(top, 2)
	want := "`p256MulInternal` 15.79%, `internal/runtime/syscall/linux.Syscall6` 10.53%"
	if got != want {
		t.Errorf("topFuncs = %q, want %q", got, want)
	}
}

// The markdown names every goal and says met or missed.
func TestMarkdownGoals(t *testing.T) {
	s := func(w time.Duration) sample { return sample{Wall: w, CPU: w, RSS: 20 << 20} }
	r := &report{env: envInfo{Cores: 2, LoadStart: "0.5 0.5 0.5"}, scanGoalN: 15000,
		scanGoal: results{"scan-offline": {s(4 * time.Second), s(6 * time.Second), s(5 * time.Second)}}}
	md := r.markdown(&config{Command: "make bench", Runs: 3})
	if !strings.Contains(md, "| scan --offline of a 15000-package db: wall time | ≤ 5 s | 5.00 s (4.00–6.00) | met |") {
		t.Errorf("scan row missing or wrong:\n%s", md)
	}
	if strings.Contains(md, "busy") {
		t.Errorf("a quiet machine is reported busy")
	}
}

// Tile requests are counted per level (entry bundles apart), partial
// tiles apart from full ones.
func TestTilePathFolding(t *testing.T) {
	for in, want := range map[string]string{
		"/tile/0/000":               "/tile/0/{N}",
		"/tile/0/x001/x234/067.p/8": "/tile/0/{N}.p/{W}",
		"/tile/entries/390.p/160":   "/tile/entries/{N}.p/{W}",
		"/tile/entries/001":         "/tile/entries/{N}",
		"/checkpoint":               "",
	} {
		m := tilePath.FindStringSubmatch(in)
		got := ""
		if m != nil {
			got = m[1] + "/{N}"
			if m[2] != "" {
				got += ".p/{W}"
			}
		}
		if got != want {
			t.Errorf("%s: folded to %q, want %q", in, got, want)
		}
	}
}

// The Rekor v2 goals: sign ≥ 300/s and monitor ≤ 10 s over 100 000
// entries are judged in a full run, not in quick mode.
func TestV2Goals(t *testing.T) {
	s := func(w time.Duration) sample { return sample{Wall: w, CPU: w} }
	r := &v2report{sz: v2Sizes{SignN: 3000, Inflight: 1024, LogSize: 100000}, monitorEntries: 100000, monitorMine: 10000,
		sign:    results{"v2-sign": {s(10 * time.Second)}, "v2-add": {s(8 * time.Second)}},
		monitor: results{"monitor": {s(4 * time.Second)}}}
	rows := r.rows()
	if len(rows) != 3 {
		t.Fatalf("rows = %+v", rows)
	}
	if rows[0].Measured != "300.0/s (1 run)" || rows[0].Met != "met" || rows[2].Goal != "≤ 10 s" || rows[2].Met != "met" {
		t.Errorf("rows = %+v", rows)
	}
	r.quick = true
	if rows := r.rows(); rows[0].Met != "—" || rows[2].Goal != "—" {
		t.Errorf("quick rows judged: %+v", rows)
	}
	var b strings.Builder
	(&v2report{skipped: "skipped: no posix"}).markdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
	if !strings.Contains(b.String(), "Not measured: skipped: no posix") {
		t.Errorf("skipped section: %q", b.String())
	}
}
