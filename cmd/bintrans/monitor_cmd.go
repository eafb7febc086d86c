package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/monitor"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// DefaultMonitorStateDir is the monitor's (and audit's) state directory:
// hooks/bintrans-monitor.service's StateDirectory.
const DefaultMonitorStateDir = "/var/lib/bintrans-monitor"

// MonitorCmd is `bintrans monitor`: every log entry signed by the
// transparency key, verified, incrementally.
type MonitorCmd struct {
	KeyFlags
	LogFlags
	NetFlags

	StateDir string        `name:"state-dir" default:"/var/lib/bintrans-monitor" placeholder:"DIR" help:"Where the monitor keeps the last verified checkpoint and the entries it has seen (shared with 'bintrans audit')."`
	All      bool          `name:"all" help:"Report (and re-fetch and re-verify) every entry, not only those new since the last run."`
	Tail     bool          `name:"tail" help:"Also read, by index, every entry no earlier --tail run read, each proven at its index by the tree's root, to find entries of the key its search index misses (one request per 10 entries of the whole log: for a log dedicated to your repositories, not the public Rekor)."`
	Follow   bool          `name:"follow" help:"Keep running: check again every --interval (longer after errors) until interrupted."`
	Interval time.Duration `name:"interval" default:"5m" placeholder:"DURATION" help:"With --follow: time between runs."`
	Jobs     int           `name:"jobs" short:"j" default:"8" placeholder:"N" help:"Retrieve requests to the log in flight, 10 entries each, verified as they arrive (0: 8)."`
	JSON     bool          `name:"json" help:"Print the report as JSON on stdout (with --follow: one JSON object per line and run)."`
}

// Help is the long help of `bintrans monitor --help`.
func (MonitorCmd) Help() string {
	return `Lists every entry of the transparency log signed by the transparency key(s):
the log's index search by minisign public key, then the entries fetched in
batches of 10, --jobs requests in flight. Each entry is verified under the pinned --log-key: inclusion
proof, checkpoint (signature, size, root) and signed entry timestamp; and
its signature line's key id is compared with the key's (Rekor does not, so
anyone can log a variant of a published signature: such entries are
findings).

The log's current checkpoint is proven consistent with every checkpoint the
entries' proofs used and with the one stored by the previous run in
--state-dir: a log that rewrote its history is a SECURITY ERROR printing
both tree heads. Only then is the new checkpoint stored with the entries
seen; the next run reports only entries that are new (--all: every entry).
When fetching fails midway, the batches verified before the failure (a
prefix, never more) are reported and stored that way, marked incomplete,
and the run exits 3: the next run fetches the rest.

The key search is Rekor's index, written asynchronously: an entry whose
uploader disconnected mid-request is logged but never indexed, and a
hostile log can leave an entry out on purpose. --tail also reads, by index,
every entry that no earlier --tail run read (from the proven prefix kept in
--state-dir up to the log's current size) and reports entries of the key
that the index misses. The leaves read are hashed, with the proven prefix,
into the tree's root, which must be the log's signed one: a log that serves
another entry at an index, or leaves one out, is caught (tail-mismatch,
misplaced-entry) and the span is not counted as read. A run without --tail
never counts as reading: the next --tail run reads what it skipped. The
JSON report gives the span read ("tail") and the proven prefix
("tailed_size").

The log holds sha256(message), not the message (the package's sha256) nor
the file name: this is what is printed. 'bintrans audit' ties each entry to
an audit record and a released package.

Examples:
  bintrans monitor --pubkey-path /etc/bintrans/repo.pub --log-url URL --log-key rekor.pub
  bintrans monitor --pubkey 'RW…' --follow --interval 10m --json

` + monitorNoteHelp + `

Exit codes: 0 no finding; 1 a finding (an invalid or foreign entry, a
key-id mismatch, an unindexed entry, a log that lied about an index) or a
SECURITY ERROR; 2 usage; 3 could not run (log
unreachable, state unreadable). With --follow, a SECURITY ERROR ends the run
with 1; findings are printed and the monitor goes on; an interrupt exits 0.`
}

// monitorSetup is what monitor and audit share.
type monitorSetup struct {
	keys   []verify.PublicKey
	logKey *rekorv1.LogKey
	log    *rekorv1.Client
	state  *state.Dir
	url    string
	jobs   int // retrieve requests in flight (0: monitor.DefaultConcurrency)
}

func newMonitorSetup(k *KeyFlags, l *LogFlags, n *NetFlags, stateDir string) (*monitorSetup, error) {
	keys, err := k.keys()
	if err != nil {
		return nil, err
	}
	lk, err := l.logKey()
	if err != nil {
		return nil, err
	}
	hc, err := n.httpClient()
	if err != nil {
		return nil, err
	}
	c, err := rekorv1.New(l.LogURL, hc)
	if err != nil {
		return nil, usageErrorf("check --log-url", "--log-url %q: %v", l.LogURL, err)
	}
	sd, err := state.Open(stateDir)
	if err != nil {
		return nil, runErrorf(err, "create it (as root: install -d -m 0700 "+stateDir+") or pass --state-dir DIR", "state directory: %v", err)
	}
	return &monitorSetup{keys: keys, logKey: lk, log: c, state: sd, url: c.URL()}, nil
}

func (s *monitorSetup) options(all, tail bool, extra []string) monitor.Options {
	return monitor.Options{Keys: s.keys, LogKey: s.logKey, Log: s.log, LogURL: s.url, State: s.state, All: all, Tail: tail, Extra: extra, Concurrency: s.jobs}
}

// Run runs the monitor once or, with --follow, until interrupted.
func (c *MonitorCmd) Run(g *Globals) error {
	if c.Follow && c.Interval < time.Second {
		return usageErrorf("use e.g. --interval 5m", "--interval %v is shorter than a second", c.Interval)
	}
	if c.Jobs < 0 || c.Jobs > 256 {
		return usageErrorf("give a value between 1 and 256 (0: the default, 8)", "--jobs %d is out of range", c.Jobs)
	}
	if c.LogKind != "" && c.LogKind != "rekor-v1" {
		return c.runNote(g)
	}
	s, err := newMonitorSetup(&c.KeyFlags, &c.LogFlags, &c.NetFlags, c.StateDir)
	if err != nil {
		return err
	}
	s.jobs = c.Jobs
	ctx := g.Context()
	if !c.Follow {
		rep, err := monitor.Run(ctx, s.options(c.All, c.Tail, nil))
		if printable(rep, err) {
			if werr := c.print(g, rep, true); werr != nil {
				return werr
			}
		}
		return monitorVerdict(g, rep, err)
	}
	return c.follow(ctx, g, func(ctx context.Context) (*monitor.Report, error) {
		return monitor.Run(ctx, s.options(c.All, c.Tail, nil))
	})
}

// backoff is the wait before the next run after fails consecutive failed
// runs: the interval doubled per failure, at most an hour (or the interval,
// when that is longer).
func backoff(interval time.Duration, fails int) time.Duration {
	d := interval
	limit := max(time.Hour, interval)
	for range min(fails, 20) {
		d *= 2
		if d >= limit {
			return limit
		}
	}
	return d
}

// printable says whether a run's report is printed: a complete run, one
// that found the log inconsistent (the evidence), or an incomplete one whose
// verified prefix was stored (its entries will not be reported again).
func printable(rep *monitor.Report, err error) bool {
	return rep != nil && (err == nil || isSecurity(err) || rep.Incomplete)
}

func isSecurity(err error) bool {
	var sec *verify.SecurityError
	return errors.As(err, &sec)
}

// monitorVerdict turns a run into the exit code and the error voice.
func monitorVerdict(g *Globals, rep *monitor.Report, err error) error {
	var sec *verify.SecurityError
	var lu *verify.LogUnavailableError
	var ce *state.CorruptError
	switch {
	case errors.As(err, &sec):
		fmt.Fprintf(g.Stderr, "bintrans: %s\n", safetext.Text(sec.Error()))
		return verificationFailed("keep both tree heads above and report them: the log showed two histories; the stored checkpoint was not replaced",
			"SECURITY ERROR: the transparency log is inconsistent with what this monitor verified before")
	case errors.As(err, &lu):
		return runErrorf(err, "check --log-url and the network (--proxy)", "%v", err)
	case errors.As(err, &ce):
		return runErrorf(err, "", "%v", err)
	case err != nil:
		return runErrorf(err, "", "monitor: %v", err)
	}
	if len(rep.Findings) > 0 {
		return verificationFailed("each finding above is an entry of the transparency key that no client would accept or that the log cannot prove; investigate it",
			"%d finding(s) in the log for the transparency key", len(rep.Findings))
	}
	return nil
}

func (c *MonitorCmd) print(g *Globals, rep *monitor.Report, indent bool) error {
	if c.JSON {
		var b []byte
		var err error
		if indent {
			b, err = json.MarshalIndent(rep, "", "  ")
		} else {
			b, err = json.Marshal(rep)
		}
		if err == nil {
			_, err = g.Stdout.Write(append(safetext.JSON(b), '\n'))
		}
		if err != nil {
			return runErrorf(err, "", "writing the report: %v", err)
		}
		return nil
	}
	printMonitorReport(g.Stdout, g.Stderr, rep)
	return nil
}

// printMonitorReport writes the human report: the tree head and its
// consistency, one line per reported entry, findings on stderr.
func printMonitorReport(out, errw io.Writer, rep *monitor.Report) {
	L, M := safetext.Line, safetext.Message
	logURL := map[string]string{} // origin -> URL, in a run over several logs
	for _, lr := range rep.Logs {
		logURL[lr.Origin] = lr.URL
		switch {
		case lr.Error != "":
			fmt.Fprintf(out, "log %s (%s): NOT READ this run: %s\n", L(lr.URL), L(lr.Origin), M(lr.Error))
		case lr.Current != nil:
			fmt.Fprintf(out, "log %s: tree size %d, root %s (%s); %d entr%s new, %d known\n", L(lr.URL), lr.Current.Size, lr.Current.RootHash, L(lr.Origin),
				lr.New, plural(lr.New, "y", "ies"), lr.Total)
			if lr.Previous != nil {
				fmt.Fprintf(out, "  consistent with the tree head of the previous run (tree size %d)\n", lr.Previous.Size)
			} else {
				fmt.Fprintln(out, "  first run: tree head stored")
			}
		}
	}
	if rep.Current != nil && len(rep.Logs) == 0 {
		fmt.Fprintf(out, "log %s: tree size %d, root %s (%s)\n", L(rep.LogURL), rep.Current.Size, rep.Current.RootHash, L(rep.Current.Origin))
		if rep.Previous != nil {
			fmt.Fprintf(out, "consistent with the checkpoint of the previous run (tree size %d)\n", rep.Previous.Size)
		} else {
			fmt.Fprintln(out, "first run: checkpoint stored")
		}
	}
	if len(rep.Entries) > 0 {
		fmt.Fprintf(out, "%-10s %-20s %-16s %-64s %s\n", "INDEX", "INTEGRATED (UTC)", "KEY ID", "SHA256 OF MESSAGE (the package's hex sha256)", "UUID")
		for _, e := range rep.Entries {
			kid := e.KeyID
			if e.SigKeyID != e.KeyID {
				kid = e.SigKeyID + "!"
			}
			if e.SigsumChecksum != "" { // Sigsum: SHA-256 of the package's sha256 bytes, and the log
				where := e.Log
				if u := logURL[e.Log]; u != "" {
					where = u
				}
				fmt.Fprintf(out, "%-10d %-20s %-16s checksum:%s %s log %s\n", e.LogIndex, "-", L(kid), L(e.SigsumChecksum), L(e.UUID), L(where))
				continue
			}
			if e.MessageSHA512 != "" { // Rekor v2: no integrated time, the message's SHA-512
				fmt.Fprintf(out, "%-10d %-20s %-16s sha512:%s %s", e.LogIndex, "-", L(kid), L(e.MessageSHA512), L(e.UUID))
				if e.Log != "" {
					fmt.Fprintf(out, " log %s", L(e.Log))
				}
				fmt.Fprintln(out)
				continue
			}
			fmt.Fprintf(out, "%-10d %-20s %-16s %-64s %s\n", e.LogIndex, time.Unix(e.IntegratedTime, 0).UTC().Format("2006-01-02T15:04:05Z"), L(kid), L(e.MessageSHA256), L(e.UUID))
		}
	}
	what := "new"
	if len(rep.Entries) != rep.New {
		what = fmt.Sprintf("reported (%d new)", rep.New)
	}
	fmt.Fprintf(out, "%d entr%s %s, %d known for key %s; %d finding(s)\n", len(rep.Entries), plural(len(rep.Entries), "y", "ies"), what, rep.Total, strings.Join(rep.KeyIDs, ", "), len(rep.Findings))
	if t := rep.Tail; t != nil {
		switch {
		case t.From == t.To:
			fmt.Fprintf(out, "read by index: nothing new (every index below %d proven)\n", rep.TailedSize)
		case t.Proven:
			fmt.Fprintf(out, "read by index: %d to %d, every leaf proven at its index (root of the tree of %d); every index below %d proven\n", t.From, t.To-1, t.To, rep.TailedSize)
		default:
			fmt.Fprintf(out, "read by index: %d to %d, NOT proven (see the findings); still proven: every index below %d\n", t.From, t.To-1, rep.TailedSize)
		}
	}
	switch {
	case rep.Incomplete && len(rep.Logs) > 0:
		fmt.Fprintln(out, "incomplete: a log was not read (above); the other logs' entries are stored, the next run reads it again")
	case rep.Incomplete:
		fmt.Fprintf(out, "incomplete: the run stopped at an error; %d entr%s left for the next run\n", rep.Remaining, plural(rep.Remaining, "y", "ies"))
	}
	for _, f := range rep.Findings {
		where := fmt.Sprint(f.LogIndex)
		if f.UUID != "" {
			where += " " + L(f.UUID)
		}
		if f.Log != "" {
			where += " of log " + L(f.Log)
		}
		fmt.Fprintf(errw, "bintrans: FINDING %s: entry %s: %s\n", f.Kind, where, M(f.Detail))
	}
	for _, u := range rep.Vanished {
		fmt.Fprintf(errw, "bintrans: warning: entry %s, seen by an earlier run, is no longer listed by the log's key search (it is still in the tree)\n", L(u))
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// follow runs the monitor every --interval until interrupted (a clean
// stop): a failed run is retried with backoff, a SECURITY ERROR ends it.
func (c *MonitorCmd) follow(ctx context.Context, g *Globals, run func(context.Context) (*monitor.Report, error)) error {
	fails := 0
	for {
		rep, err := run(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: a clean stop
		}
		if printable(rep, err) {
			if werr := c.print(g, rep, false); werr != nil {
				return werr
			}
		}
		wait := c.Interval
		switch {
		case isSecurity(err):
			return monitorVerdict(g, rep, err)
		case err != nil:
			fails++
			wait = backoff(c.Interval, fails)
			fmt.Fprintf(g.Stderr, "bintrans: monitor: %s (next try in %v)\n", safetext.Message(err.Error()), wait)
		default:
			fails = 0
			if len(rep.Findings) > 0 {
				fmt.Fprintf(g.Stderr, "bintrans: monitor: %d finding(s) above; still watching\n", len(rep.Findings))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
