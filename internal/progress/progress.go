// Package progress draws a one-line progress bar on a terminal, for the
// commands that work through many packages (hook, scan, sign).
//
// A Bar writes only when its writer is a terminal; on anything else (a
// pipe, a file, a bytes.Buffer in a test, CI logs) it writes nothing at all,
// so that machine-read output stays clean. It redraws at most every
// RedrawInterval, uses only "\r" and spaces (no escape sequences, so a dumb
// terminal works too) and erases its line in Done.
package progress

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/bintrans/bintrans/internal/safetext"
)

// RedrawInterval is the least time between two redraws. The first draw
// waits as long, so a batch that finishes sooner never shows a bar.
const RedrawInterval = 100 * time.Millisecond

// defaultColumns is the width used when the terminal does not say.
const defaultColumns = 80

// Bar is a progress bar. The zero value and a nil *Bar are valid no-op bars.
// Its methods are safe for concurrent use.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer  // nil: no-op
	columns func() int // terminal width now
	now     func() time.Time
	label   string
	total   int
	done    int
	last    time.Time // last draw (or start)
	drawn   int       // width of what is on the line now; 0: nothing
	closed  bool
}

// fdWriter is an io.Writer with a file descriptor, like *os.File.
type fdWriter interface {
	io.Writer
	Fd() uintptr
}

// New returns a bar over total steps, drawn on w when w is a terminal
// (golang.org/x/term) and a no-op otherwise. total <= 0 means unknown: the
// bar then shows only the count. The caller must call Done when the work
// ends, also on error paths, so that the line is erased.
func New(w io.Writer, total int, label string) *Bar {
	f, ok := w.(fdWriter)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &Bar{}
	}
	fd := int(f.Fd())
	return newBar(w, total, label, func() int {
		if c, _, err := term.GetSize(fd); err == nil && c > 0 {
			return c
		}
		return defaultColumns
	}, time.Now)
}

func newBar(w io.Writer, total int, label string, columns func() int, now func() time.Time) *Bar {
	label = safetext.Line(label)
	return &Bar{w: w, columns: columns, now: now, label: label, total: total, last: now()}
}

// Add records n more steps done and redraws if RedrawInterval has passed
// since the last draw.
func (b *Bar) Add(n int) {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.done += n
	if t := b.now(); t.Sub(b.last) >= RedrawInterval {
		b.last = t
		b.draw()
	}
}

// Done erases the bar's line, if anything was drawn, and stops the bar:
// later calls to Add and Done do nothing.
func (b *Bar) Done() {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	if b.drawn > 0 {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", b.drawn))
		b.drawn = 0
	}
}

// draw writes the line: "label [=====>    ] 123/456  27%", cut to the
// terminal width minus one column (writing the last column makes some
// terminals wrap). Must be called with b.mu held.
func (b *Bar) draw() {
	width := b.columns() - 1
	if width < 10 {
		return
	}
	var counts string
	if b.total > 0 {
		done := min(b.done, b.total)
		counts = fmt.Sprintf(" %*d/%d %3d%%", len(strconv.Itoa(b.total)), done, b.total, done*100/b.total)
	} else {
		counts = fmt.Sprintf(" %d", b.done)
	}
	if len(counts) > width {
		return // not even the numbers fit
	}
	label := b.label
	if room := width - len(counts) - 12; utf8.RuneCountInString(label) > room { // 12: " [" + "]" + a 9-column bar
		label = truncate(label, max(room, 0))
	}
	line := label
	if b.total > 0 {
		barWidth := width - utf8.RuneCountInString(label) - len(counts) - 3
		if label == "" {
			barWidth++
		}
		if barWidth >= 3 {
			filled := min(b.done, b.total) * barWidth / b.total
			bar := strings.Repeat("=", filled)
			if filled < barWidth {
				bar += ">" + strings.Repeat(" ", barWidth-filled-1)
			}
			if label != "" {
				line += " "
			}
			line += "[" + bar + "]"
		}
	}
	line += counts
	n := utf8.RuneCountInString(line)
	pad := ""
	if n < b.drawn {
		pad = strings.Repeat(" ", b.drawn-n) // the terminal got narrower, or counts shrank
	}
	fmt.Fprintf(b.w, "\r%s%s", line, pad)
	b.drawn = max(n, b.drawn)
}

func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}
