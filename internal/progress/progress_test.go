package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// clock is a fake time source: tests advance it, so nothing here depends
// on how fast the machine is.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }
func fixedColumns(n int) func() int      { return func() int { return n } }
func newTestBar(w io.Writer, total int, label string, cols int, c *clock) *Bar {
	return newBar(w, total, label, fixedColumns(cols), c.now)
}

func TestNoOutputWhenNotATerminal(t *testing.T) {
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	var buf bytes.Buffer
	for name, w := range map[string]io.Writer{"buffer": &buf, "file": file, "pipe": pw} {
		b := New(w, 10, "scan")
		if b.w != nil {
			t.Errorf("%s: bar is active on a non-terminal", name)
		}
		for range 10 {
			b.Add(1)
		}
		b.Done()
	}
	pw.Close()
	piped, _ := io.ReadAll(pr)
	st, _ := file.Stat()
	if buf.Len() != 0 || st.Size() != 0 || len(piped) != 0 {
		t.Errorf("wrote %d bytes to a buffer, %d to a file, %d to a pipe; want none", buf.Len(), st.Size(), len(piped))
	}
	var nilBar *Bar
	nilBar.Add(1)
	nilBar.Done()
}

// openPTY opens a pseudo-terminal pair with a 60-column window: a real
// terminal for term.IsTerminal and term.GetSize.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 60}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestTerminal drives a bar made by New on a real pseudo-terminal and reads
// what the terminal received.
func TestTerminal(t *testing.T) {
	master, slave := openPTY(t)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the slave is closed
		got <- b
	}()

	b := New(slave, 100, "scan core")
	if b.w == nil {
		t.Fatal("bar is a no-op on a terminal")
	}
	c := new(clock)
	b.now, b.last = c.now, c.now()
	c.advance(RedrawInterval / 2)
	b.Add(5) // too soon: no draw
	c.advance(RedrawInterval)
	b.Add(5) // draws 10/100
	b.Done()
	b.Add(50) // after Done: nothing
	slave.Close()

	line := "scan core [===>" + strings.Repeat(" ", 30) + "]  10/100  10%"
	if len(line) != 59 {
		t.Fatalf("test expectation is %d columns, want 59", len(line))
	}
	want := "\r" + line + "\r" + strings.Repeat(" ", 59) + "\r"
	if out := string(<-got); out != want {
		t.Errorf("terminal received\n%q\nwant\n%q", out, want)
	}
}

func TestThrottle(t *testing.T) {
	var buf bytes.Buffer
	c := new(clock)
	b := newTestBar(&buf, 1000, "x", 80, c)
	for range 1000 {
		c.advance(time.Millisecond)
		b.Add(1)
	}
	if n := strings.Count(buf.String(), "\r"); n != 10 {
		t.Errorf("%d redraws for 1000 steps over 1 s, want 10 (one per %v)", n, RedrawInterval)
	}
	if !strings.HasSuffix(buf.String(), "1000/1000 100%") {
		t.Errorf("last draw %q", buf.String()[strings.LastIndex(buf.String(), "\r"):])
	}
}

func TestNoDrawNoErase(t *testing.T) {
	var buf bytes.Buffer
	b := newTestBar(&buf, 3, "quick", 80, new(clock))
	b.Add(3)
	b.Done()
	if buf.Len() != 0 {
		t.Errorf("a batch faster than %v wrote %q", RedrawInterval, buf.String())
	}
}

// TestLayout: every drawn line fits the terminal minus one column, whatever
// the label, the width and the counts.
func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		label       string
		total, cols int
		done        int
		want        string // the drawn line, when checked exactly; "-": nothing drawn
	}{
		{"scan", 10, 31, 5, "scan [======>     ]  5/10  50%"},
		{"", 4, 20, 4, "[========] 4/4 100%"},
		{"unknown total", 0, 40, 1234, "unknown total 1234"},
		{"over", 10, 40, 25, ""}, // done > total is clamped
		{strings.Repeat("long label ", 20), 15000, 80, 7, ""},
		{"ünïcödé \x1b[2J label", 5, 40, 1, ""},
		{"narrow", 15000, 20, 1, "     1/15000   0%"},
		{"numbers do not fit", 15000, 12, 1, "-"},
		{"tiny", 5, 9, 1, "-"},
	} {
		var buf bytes.Buffer
		c := new(clock)
		b := newTestBar(&buf, tc.total, tc.label, tc.cols, c)
		c.advance(RedrawInterval)
		b.Add(tc.done)
		out := strings.TrimPrefix(buf.String(), "\r")
		if tc.want == "-" {
			if out != "" {
				t.Errorf("cols %d: drew %q, want nothing", tc.cols, out)
			}
			continue
		}
		if strings.ContainsFunc(out, func(r rune) bool { return r < ' ' }) {
			t.Errorf("control character in %q", out)
		}
		if n := len([]rune(out)); n > tc.cols-1 || n == 0 {
			t.Errorf("label %.20q cols %d: line %q is %d columns", tc.label, tc.cols, out, n)
		}
		if tc.want != "" && out != tc.want {
			t.Errorf("line %q, want %q", out, tc.want)
		}
		if tc.total > 0 && tc.done > tc.total && !strings.Contains(out, fmt.Sprintf("%d/%d 100%%", tc.total, tc.total)) {
			t.Errorf("overflow not clamped: %q", out)
		}
	}
}

// TestShrinkingLineIsPadded: when the terminal gets narrower, the next draw
// pads with spaces over the rest of the previous, longer line.
func TestShrinkingLineIsPadded(t *testing.T) {
	var buf bytes.Buffer
	c := new(clock)
	cols := 80
	b := newBar(&buf, 100, "scan", func() int { return cols }, c.now)
	c.advance(RedrawInterval)
	b.Add(1)
	first := buf.Len() - 1
	buf.Reset()
	cols = 40
	c.advance(RedrawInterval)
	b.Add(1)
	if got := buf.Len() - 1; got != first {
		t.Errorf("second draw covers %d columns, want %d (the first line's width)", got, first)
	}
	b.Done()
}

func TestConcurrentAdd(t *testing.T) {
	var buf bytes.Buffer
	c := new(clock)
	b := newTestBar(&buf, 8000, "parallel", 80, c)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.advance(time.Millisecond)
				b.Add(1)
			}
		})
	}
	wg.Wait()
	b.mu.Lock()
	done := b.done
	b.mu.Unlock()
	if done != 8000 {
		t.Errorf("done = %d, want 8000", done)
	}
	b.Done()
	if !strings.HasSuffix(buf.String(), "\r") {
		t.Error("Done did not erase the line")
	}
}
