package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// microPackages hold the hot paths: db parsing, .t and entry verification,
// the batch engine, the log client, rebuilder batches, report writers.
// Benchmarks that need the Rekor stack skip here (BINTRANS_TEST_REKOR_URL
// is not passed on); the table above measures those paths end to end.
var microPackages = []string{"./repodb", "./verify", "./internal/logs/rekorv1", "./internal/rebuilder", "./ci"}

type microResult struct {
	Pkg, Name string
	Metrics   map[string][]float64 // unit → values across -count runs
	Units     []string
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+(.*)$`)

func (b *bench) micro() error {
	if !b.cfg.Micro {
		return nil
	}
	count := b.cfg.Runs
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", strconv.Itoa(count),
		"-benchtime", b.sz.MicroBenchTime, "-timeout", "15m"}, microPackages...)
	b.rep.microCmd = "go " + strings.Join(args, " ")
	var out bytes.Buffer
	var err error
	if f := b.cfg.MicroFile; f != "" {
		// Recorded earlier by the same command (a loaded machine: run it
		// next to the data generation instead of after everything).
		data, rerr := os.ReadFile(f)
		if rerr != nil {
			return rerr
		}
		out.Write(data)
		if fi, serr := os.Stat(f); serr == nil {
			b.rep.microNote = fmt.Sprintf("recorded at %s (output file %s), before the rest of this run", fi.ModTime().UTC().Format("15:04 MST"), f)
		}
		if !bytes.Contains(data, []byte("\nok ")) || bytes.Contains(data, []byte("\nFAIL")) {
			err = fmt.Errorf("the recorded output shows a failure")
		}
	} else {
		err = b.runMicro(args, &out)
	}
	return b.parseMicro(&out, err)
}

func (b *bench) runMicro(args []string, out *bytes.Buffer) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = b.cfg.Repo
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "BINTRANS_TEST_REKOR_") || strings.HasPrefix(e, "CI=") {
			continue
		}
		env = append(env, e)
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if werr := os.WriteFile(b.root+"/micro.txt", out.Bytes(), 0o644); werr != nil {
		return werr
	}
	return err
}

func (b *bench) parseMicro(out *bytes.Buffer, err error) error {
	res := map[string]*microResult{}
	var order []string
	pkg := ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "pkg: ") {
			pkg = strings.TrimPrefix(strings.TrimPrefix(l, "pkg: "), "github.com/bintrans/bintrans/")
			continue
		}
		m := benchLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		key := pkg + " " + m[1]
		r := res[key]
		if r == nil {
			r = &microResult{Pkg: pkg, Name: m[1], Metrics: map[string][]float64{}}
			res[key] = r
			order = append(order, key)
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			u := f[i+1]
			if _, ok := r.Metrics[u]; !ok {
				r.Units = append(r.Units, u)
			}
			r.Metrics[u] = append(r.Metrics[u], v)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return res[order[i]].Pkg < res[order[j]].Pkg })
	for _, k := range order {
		b.rep.micro = append(b.rep.micro, *res[k])
	}
	if err != nil {
		b.rep.microErr = fmt.Sprintf("go test: %v (see %s/micro.txt or -micro-file): some benchmarks failed to build or run", err, b.root)
		logf("%s", b.rep.microErr)
	}
	return nil
}
