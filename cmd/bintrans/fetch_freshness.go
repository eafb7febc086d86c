package main

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/bintrans/bintrans/internal/freshcheck"
	"github.com/bintrans/bintrans/internal/pacman"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/internal/scan"
)

// checkDB checks a downloaded sync database (the file at part, named
// filename on the server: <repo>.db or <repo>.files) against its
// repository statement, as the hook checks the databases it holds; the
// accepted statement is kept. The repository is the file's name (pacman
// names the download after the repository); the architectures are
// pacman.conf's (--pacman-conf), as the hook reads them.
func (c *FetchCmd) checkDB(ctx context.Context, g *Globals, filename, part string) error {
	repo, err := scan.RepoName(filename)
	if err != nil {
		return usageErrorf("pacman downloads <repo>.db and <repo>.files", "%s: %v", safetext.Line(filename), err)
	}
	conf, err := pacman.ParseFile(c.PacmanConf, pacman.Limits{})
	if err != nil {
		return usageErrorf("fetch reads pacman's Architecture from --pacman-conf to check a database's repository statement; pass --pacman-conf FILE",
			"%v", err)
	}
	ctx, cancel, err := withDeadline(ctx, c.Deadline)
	if err != nil {
		return err
	}
	defer cancel()
	e, err := c.build(ctx)
	if err != nil {
		return deadlineExceeded(ctx, err)
	}
	defer e.Close()
	db := freshcheck.DB{Repo: repo, Path: filename, Files: strings.Contains(filename, ".files"),
		Open: func() (io.ReadCloser, error) { return os.Open(part) }}
	run, err := e.checkStatements(ctx, g, &c.PolicyFlags, []freshcheck.DB{db}, conf.Architectures, true)
	if err != nil {
		return deadlineExceeded(ctx, err)
	}
	if err := run.report(g, g.Verbose, ": not given to pacman"); err != nil {
		return deadlineExceeded(ctx, err)
	}
	run.keep(ctx, g, e, &c.PolicyFlags)
	return nil
}
