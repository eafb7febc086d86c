package main

import (
	"fmt"
	"io"
	"time"

	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/internal/signer"
)

// checkStatementInterval refuses an interval of less than a minute or
// with fractions of a second (a statement carries whole seconds), and
// warns when it is more than half the clients' default maximum age: one
// missed run would then make every client refuse the repository.
func checkStatementInterval(g *Globals, d time.Duration) error {
	switch {
	case d < time.Minute:
		return usageErrorf("give a duration such as 24h (at least 1m)", "--statement-interval %s is shorter than a minute", d)
	case d%time.Second != 0:
		return usageErrorf("give whole seconds, e.g. 24h", "--statement-interval %s has a fraction of a second", d)
	case d > freshness.DefaultMaxAge/2:
		fmt.Fprintf(g.Stderr, "bintrans: sign: warning: --statement-interval %s is more than half of the clients' default --max-db-age (%s): one missed heartbeat and they refuse the repository as stale\n",
			freshness.Human(d), freshness.Human(freshness.DefaultMaxAge))
	}
	return nil
}

// printStatements writes one line per database's statement.
func printStatements(w io.Writer, sts []signer.StatementSummary) {
	for _, s := range sts {
		where := safetext.Line(s.Repo + "/" + s.Arch)
		switch s.Action {
		case "issued":
			fmt.Fprintf(w, "%s: statement %d issued (%s), log index %d, %s\n", where, s.Counter, s.Reason, *s.LogIndex, s.Path)
		case "current":
			fmt.Fprintf(w, "%s: statement %d of %s is current\n", where, s.Counter, s.Issued)
		case "withheld":
			fmt.Fprintf(w, "%s: NO statement: %s\n", where, safetext.Message(s.Reason))
		default:
			fmt.Fprintf(w, "%s: statement FAILED: %s\n", where, safetext.Message(s.Reason))
		}
	}
}
