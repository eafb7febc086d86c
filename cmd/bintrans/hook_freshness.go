package main

import (
	"context"

	"github.com/bintrans/bintrans/internal/pacman"
)

// checkDBs checks every sync database of the transaction's configuration
// against its repository statement, before any package: libalpm resolves
// names, dependencies and upgrades against all of them, so a frozen one
// can withhold an update even when no target comes from it. A refused
// database aborts the transaction, naming the repository and why.
func (c *HookCmd) checkDBs(ctx context.Context, g *Globals, e *engine, req pacman.Request) (*stmtRun, error) {
	dbs, err := syncDBs(req.FS, req.Config)
	if err != nil {
		return nil, runErrorf(err, "bintrans reads the sync databases as pacman does; check DBPath", "%v: transaction aborted", err)
	}
	run, err := e.checkStatements(ctx, g, &c.PolicyFlags, dbs, req.Config.Architectures, true)
	if err != nil {
		return nil, err
	}
	if err := run.report(g, g.Verbose, ": transaction aborted"); err != nil {
		return nil, err
	}
	return run, nil
}
