package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sample is one run of one child process.
type sample struct {
	Wall time.Duration
	CPU  time.Duration // user + system of the child
	RSS  int64         // peak resident set of the child, bytes (getrusage ru_maxrss)
}

// runSpec is a child process to measure.
type runSpec struct {
	Name  string
	Args  []string
	Stdin string
	Env   []string // added to the environment
	// OK lists the exit codes that count as success (default: 0).
	OK []int
	// Out, when set, receives stdout (otherwise discarded).
	Out io.Writer
}

// measure runs the child once and returns its wall time, CPU time and peak
// RSS. A child that exits with a code not in s.OK is an error carrying the
// tail of its stderr.
func measure(s runSpec) (sample, error) {
	// Peak RSS comes from GNU time when it is installed: Go starts children
	// with vfork (CLONE_VM), and Linux counts the parent's resident set
	// before the exec into the child's ru_maxrss, so getrusage of a child of
	// this (large) process reports at least this process's RSS. GNU time is
	// small and forks normally.
	var rssFile string
	name, args := s.Name, s.Args
	if timeBin != "" {
		f, err := os.CreateTemp("", "bench-rss-")
		if err != nil {
			return sample{}, err
		}
		rssFile = f.Name()
		f.Close()
		defer os.Remove(rssFile)
		name, args = timeBin, append([]string{"-f", "%M", "-o", rssFile, s.Name}, s.Args...)
	}
	cmd := exec.Command(name, args...)
	if s.Stdin != "" {
		cmd.Stdin = strings.NewReader(s.Stdin)
	}
	cmd.Env = append(os.Environ(), s.Env...)
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	if s.Out != nil {
		cmd.Stdout = s.Out
	}
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		return sample{}, fmt.Errorf("%s: %v", s.Name, err)
	}
	code := cmd.ProcessState.ExitCode()
	ok := len(s.OK) == 0 && code == 0
	for _, c := range s.OK {
		ok = ok || c == code
	}
	if !ok {
		tail := stderr.String()
		if len(tail) > 2000 {
			tail = "…" + tail[len(tail)-2000:]
		}
		return sample{}, fmt.Errorf("%s %s: exit %d (%v)\n%s", s.Name, shortArgs(s.Args), code, err, tail)
	}
	out := sample{Wall: wall, CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if rssFile != "" {
		b, err := os.ReadFile(rssFile)
		if err != nil {
			return sample{}, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return sample{}, fmt.Errorf("%s: no peak RSS from %s", s.Name, timeBin)
		}
		kb, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			return sample{}, fmt.Errorf("%s: peak RSS %q from %s", s.Name, f[len(f)-1], timeBin)
		}
		out.RSS = kb * 1024
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		out.RSS = ru.Maxrss * 1024 // Linux: kilobytes (an upper bound, see above)
	}
	return out, nil
}

// timeBin is GNU time (Debian package "time"), used for peak RSS; empty
// when absent (then RSS figures are upper bounds: this process's RSS at
// the fork, at least).
var timeBin = func() string {
	p, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		return ""
	}
	return p
}()

func shortArgs(a []string) string {
	if len(a) > 8 {
		return strings.Join(a[:8], " ") + fmt.Sprintf(" … (%d args)", len(a))
	}
	return strings.Join(a, " ")
}

// stat summarises repeated figures: median and range.
type stat struct {
	Med, Min, Max float64
	N             int
}

func summarize(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Med: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// format prints "med (min–max)" with the given precision and unit.
func (s stat) format(prec int, unit string) string {
	if s.N == 0 {
		return "n/a"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.*f%s (1 run)", prec, s.Med, unit)
	}
	return fmt.Sprintf("%.*f%s (%.*f–%.*f)", prec, s.Med, unit, prec, s.Min, prec, s.Max)
}

func secs(d time.Duration) float64 { return d.Seconds() }
func mib(b int64) float64          { return float64(b) / (1 << 20) }
