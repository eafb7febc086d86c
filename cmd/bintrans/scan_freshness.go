package main

import (
	"context"

	"github.com/bintrans/bintrans/internal/freshcheck"
	"github.com/bintrans/bintrans/internal/freshness"
	"github.com/bintrans/bintrans/internal/scan"
)

// checkStatements checks each scanned database against its repository
// statement: with --max-db-age, a repository whose newest statement is
// older fails the scan (an operator whose heartbeat stopped). The
// statement's architecture must be the database's when --architecture
// names it; a database given by path takes the statement's. Nothing is
// kept between scans (CI has no state): rollbacks are the clients' to see.
func (c *ScanCmd) checkStatements(ctx context.Context, g *Globals, e *engine, dbs []scan.DB, digests []freshness.Digest) (*stmtRun, error) {
	in := make([]freshcheck.DB, len(dbs))
	for i, db := range dbs {
		in[i] = freshcheck.DB{Repo: db.Repo, Path: db.Where(), Files: db.IsFiles(), Digest: digests[i]}
		if db.Arch != "" {
			in[i].Architectures = []string{db.Arch}
		}
	}
	return e.checkStatements(ctx, g, &c.PolicyFlags, in, nil, false)
}
