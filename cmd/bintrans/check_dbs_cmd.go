package main

import (
	"fmt"
	"io"
	"time"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/freshcheck"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/pacman"
	"github.com/bintrans/bintrans/internal/safetext"
)

// CheckDBsCmd is `bintrans check-dbs`: the sync databases pacman holds,
// checked against their repository statements without a transaction (the
// freeze that makes 'pacman -Syu' say "there is nothing to do" runs no
// hook). Run daily by hooks/bintrans-check-dbs.timer.
type CheckDBsCmd struct {
	PolicyFlags

	PacmanConf string `name:"pacman-conf" help:"pacman's configuration: its repositories, DBPath and Architecture." default:"/etc/pacman.conf" placeholder:"FILE"`
	JSON       bool   `name:"json" help:"Print the result as JSON on stdout (the report document of docs/report-schema.json, schema_version 2, with the databases only)."`
}

// Help is shown by 'bintrans check-dbs --help'.
func (CheckDBsCmd) Help() string {
	return `Checks every sync database pacman holds (<DBPath>/sync/<repo>.db of each
repository of --pacman-conf that has one) against its repository statement
(docs/STATEMENTS.md), as the pacman hook does before a transaction:
  - the statement named by the database's sha256 is signed by the
    transparency key and provably in the log;
  - it names this repository and one of pacman's architectures;
  - it is at most --max-db-age old (default 7 days): an older one means a
    frozen mirror, or an operator who stopped signing;
  - it is not older than the newest statement this machine accepted for the
    repository (kept in --state-dir): an older one is a rollback.
A repository without statements is judged by its mode (--repo-statements,
or 'statements = required|optional|off' in its [repo NAME] section).

Nothing is downloaded but the statements, and pacman is not run: this is the
check for a frozen mirror, which makes 'pacman -Syu' say "there is nothing
to do" so that no hook runs. hooks/bintrans-check-dbs.timer runs it daily;
its findings are in the journal (journalctl -u bintrans-check-dbs).

One line per database on stdout: ok, warning, REFUSED or "not checked".
The accepted statements become the new rollback baseline once every
database passed.

Exit codes: 0 every database is fresh (or only warnings); 1 at least one is
stale, rolled back or otherwise refused; 2 usage or configuration error;
3 could not run (a statement or the log unreachable, a database unreadable).

Examples:
  bintrans check-dbs
  bintrans check-dbs --max-db-age 72h --json`
}

// Run checks the databases.
func (c *CheckDBsCmd) Run(g *Globals) error {
	ctx := g.Context()
	started := time.Now()
	conf, err := pacman.ParseFile(c.PacmanConf, pacman.DefaultLimits())
	if err != nil {
		return usageErrorf("check-dbs reads pacman's repositories, DBPath and Architecture from --pacman-conf", "%v", err)
	}
	dbs, err := syncDBs(pacman.HostFS{}, conf)
	if err != nil {
		return runErrorf(err, "check pacman's DBPath", "%v", err)
	}
	if len(dbs) == 0 {
		return runErrorf(nil, "refresh them with 'pacman -Sy', or check --pacman-conf",
			"%s: no sync database to check (none of its %d repositories has one under %s/sync)", c.PacmanConf, len(conf.Repos), conf.DBPath)
	}
	e, err := c.build(ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	run, err := e.checkStatements(ctx, g, &c.PolicyFlags, dbs, conf.Architectures, true)
	if err != nil {
		return err
	}
	rep := ci.Report{Tool: "bintrans", Version: version, Started: started, Mode: ci.ModeOnline, Databases: run.results()}
	if c.Offline {
		rep.Mode = ci.ModeOffline
	}
	if c.JSON {
		if err := ci.WriteJSON(g.Stdout, rep); err != nil {
			return runErrorf(err, "", "writing the JSON report: %v", err)
		}
	} else {
		writeDBLines(g.Stdout, run, time.Now())
	}
	if err := run.verdict(g, ""); err != nil {
		return err
	}
	run.keep(ctx, g, e, &c.PolicyFlags)
	if !c.JSON {
		fmt.Fprintf(g.Stdout, "ok: %d sync database(s) checked\n", len(dbs))
	}
	return nil
}

// writeDBLines writes one line per database: its verdict and, for a
// statement, its counter, architecture and age.
func writeDBLines(w io.Writer, r *stmtRun, now time.Time) {
	for _, v := range r.verdicts {
		name := safetext.Line("[" + v.DB.Repo + "] " + v.DB.Path)
		switch v.Outcome {
		case freshcheck.OK:
			st := v.Statement
			fmt.Fprintf(w, "ok          %s: statement %d for %s/%s, issued %s ago\n", name, st.Counter,
				safetext.Line(st.Repository), safetext.Line(st.Architecture), freshness.Human(now.Sub(st.Issued)))
		case freshcheck.Unstated, freshcheck.Off:
			fmt.Fprintf(w, "warning     %s: %s\n", name, safetext.Message(v.Err.Error()))
		case freshcheck.Refused:
			fmt.Fprintf(w, "REFUSED     %s: %s\n", name, safetext.Message(v.Err.Error()))
		default:
			fmt.Fprintf(w, "not checked %s: %s\n", name, safetext.Message(v.Err.Error()))
		}
	}
}
