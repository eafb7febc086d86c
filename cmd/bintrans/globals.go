package main

import (
	"context"
	"io"
)

// Globals holds the flags every command shares and the process's streams.
// Commands receive it in Run(*Globals) and must write only to g.Stdout and
// g.Stderr, so that tests can run them in-process.
type Globals struct {
	Config  string `help:"Configuration file: the same keys as the flags, pacman.conf syntax (env: BINTRANS_CONFIG, which the pacman hook ignores). As root, it is refused when anyone but root could have written it or a directory above it (so are the key files it names)." default:"/etc/bintrans.conf" placeholder:"FILE"`
	Verbose bool   `short:"v" help:"Say more about what is being checked."`

	ctx    context.Context
	Stdin  io.Reader `kong:"-"`
	Stdout io.Writer `kong:"-"`
	Stderr io.Writer `kong:"-"`
}

// Context is cancelled on SIGINT/SIGTERM.
func (g *Globals) Context() context.Context {
	if g.ctx == nil {
		return context.Background()
	}
	return g.ctx
}
