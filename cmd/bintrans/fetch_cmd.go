package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/fetch"
	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/pacman"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// FetchCmd is `bintrans fetch -O %o %u`, pacman's XferCommand, with the
// original pacman-bintrans's flags:
//
//	XferCommand = /usr/bin/bintrans fetch -O %o %u --transparency-url https://… --pubkey RW…
//
// pacman runs it on the host (not through a shell, not chrooted), in the
// download directory, once per file, one file at a time (measured with
// pacman 6.0.2); %o is "<file>.part", which pacman renames to the final
// name only when the command exits 0, and keeps otherwise. Per-repository
// transparency URLs need the repository of %u: it is found among
// pacman.conf's Server lines (--pacman-conf).
type FetchCmd struct {
	PolicyFlags

	PacmanConf      string        `name:"pacman-conf" help:"pacman's configuration: its Server lines name the repository of a URL, for per-repository transparency URLs." default:"/etc/pacman.conf" placeholder:"FILE"`
	Output          string        `short:"O" name:"output" required:"" help:"File to write: pacman's %o (<file>.part)." placeholder:"FILE"`
	MaxDownloadSize int64         `name:"max-download-size" help:"Largest package downloaded (bytes); sync databases and signatures keep pacman's own limits (128 MiB, 16 KiB)." default:"4294967296" placeholder:"BYTES"`
	StallTimeout    time.Duration `name:"stall-timeout" help:"Give up on a download when no data arrived for this long." default:"60s"`

	URL string `arg:"" name:"url" help:"pacman's %u: the http(s):// or file:// URL of a package, a sync database or a signature."`
}

// Run downloads URL to --output. A package (`*.pkg.tar*`) is verified by
// the engine (signature, log inclusion, rebuilders as the policy says)
// before Run returns nil; a refused package's file is removed, so pacman
// has nothing to rename and reports the download as failed. Sync
// databases and `.sig` files pass through unverified (pacman checks .sig
// files itself, and every package a database names is verified here when
// it is downloaded) once their content is known not to be a package:
// pacman installs whatever file a database names, in any format libarchive
// reads, so a hostile mirror could list a package as "evil.db" or
// "evil.sig" (measured: repo-add and pacman 6.0.2 accept both). A database
// passes only when it reads completely as a strict sync database, a
// signature only when it is OpenPGP signature packets in which no
// libarchive reader finds an archive (fetch.CheckPassThrough); anything
// else is refused (exit 1).
//
// A `.sig` the server does not have (404) exits 3 with nothing written
// and one calm line: pacman only looks at the exit code, and treats a
// failed optional signature (DatabaseOptional) as "no signature", as with
// its own downloader; exiting 0 instead would make pacman rename an empty
// file to <db>.sig and reject the database.
//
// Exit codes: 0 downloaded (and verified, for a package); 1 the package
// failed verification; 2 usage or configuration error; 3 could not
// download (the file does not exist on the server, network, proxy) or
// could not verify (log unreachable online).
//
// A partial download (network error, stall) is kept for pacman's next
// attempt, which resumes it with a Range request and verifies the whole
// file again. When --output does not end in ".part" (used outside
// pacman), the download goes to "<output>.part" and is renamed to
// --output only after it passed.
func (c *FetchCmd) Run(g *Globals) error {
	ctx := g.Context()
	filename, err := fetch.Filename(c.URL)
	if err != nil {
		return usageErrorf("pacman passes %u: an http(s):// or file:// URL ending in the file name", "%v", err)
	}
	if c.Output == "" {
		return usageErrorf("use -O %o in XferCommand", "--output is empty")
	}
	kind := fetch.Classify(filename)
	safeName := safetext.Line(filename) // from the URL: may hold terminal escapes

	// The policy is checked for every file, not only packages, so that a
	// broken configuration shows at `pacman -Sy`, not in the middle of an
	// upgrade. The engine itself (and its state lock) is opened only for a
	// package, after the download: a slow mirror must not hold the lock.
	if err := c.checkPolicy(ctx); err != nil {
		return err
	}
	if c.Deadline < 0 {
		return usageErrorf("give a duration such as 5m, or 0 for no limit", "--deadline %s is negative", c.Deadline)
	}
	repo := ""
	if kind == fetch.KindPackage && len(c.RepoTransparencyURL) > 0 {
		if repo, err = c.repoOf(c.URL); err != nil {
			return err
		}
	}
	part, final := c.Output, ""
	if !strings.HasSuffix(c.Output, ".part") {
		part, final = c.Output+".part", c.Output
	}
	if err := c.download(ctx, g, kind, safeName, part); err != nil {
		return err
	}
	if kind != fetch.KindPackage {
		if err := c.passUnverified(ctx, g, kind, filename, part); err != nil {
			return err
		}
		return finish(part, final)
	}
	return c.verifyPackage(ctx, g, filename, repo, part, final)
}

// download fetches --url into part (a package resumes a partial
// download).
func (c *FetchCmd) download(ctx context.Context, g *Globals, kind fetch.Kind, safeName, part string) error {
	hc, err := c.downloadClient()
	if err != nil {
		return err
	}
	opts := fetch.Options{MaxSize: fetch.MaxSize(kind, c.MaxDownloadSize), StallTimeout: c.StallTimeout, Resume: kind == fetch.KindPackage}
	res, err := fetch.Download(ctx, hc, c.URL, part, opts)
	if err != nil {
		return c.downloadFailed(kind, safeName, part, err)
	}
	if g.Verbose {
		switch {
		case res.Resumed > 0 && res.Resumed == res.Size:
			fmt.Fprintf(g.Stderr, "bintrans: %s: already complete (%d bytes), not downloaded again\n", safeName, res.Size)
		case res.Resumed > 0:
			fmt.Fprintf(g.Stderr, "bintrans: %s: resumed at byte %d, %d bytes\n", safeName, res.Resumed, res.Size)
		default:
			fmt.Fprintf(g.Stderr, "bintrans: %s: downloaded %d bytes\n", safeName, res.Size)
		}
	}
	return nil
}

// passUnverified lets a file that is not a package through, unverified, once
// it is shown not to be a package in disguise and, for a database, its
// repository statement is checked. A refused file is removed.
func (c *FetchCmd) passUnverified(ctx context.Context, g *Globals, kind fetch.Kind, filename, part string) error {
	safeName := safetext.Line(filename)
	if err := passThrough(kind, part); err != nil {
		discardPart(g, part)
		hint := "pacman installs whatever file a database names: a mirror serving a package under this name wants it installed unverified; use another mirror and report it"
		var fe *fetch.FormatError
		if errors.As(err, &fe) {
			hint = "bintrans passes a " + kind.String() + " through only when it reads exactly as one repo-add or gpg writes (pacman could load anything else as a package); check the mirror, or report the file if the mirror is genuine"
		}
		return verificationFailed(hint, "refused %s: %v", safeName, err)
	}
	if kind == fetch.KindDatabase {
		// Its repository statement, before pacman sees it: a refused
		// download leaves pacman its current database.
		if err := c.checkDB(ctx, g, filename, part); err != nil {
			discardPart(g, part)
			return err
		}
	}
	if g.Verbose {
		fmt.Fprintf(g.Stderr, "bintrans: %s: %s, passed through unverified (checked not to be a package)\n", safeName, kind)
	}
	return nil
}

// verifyPackage verifies the downloaded package at part as filename (of
// repo, with --repo-transparency-url) and renames it to final; a refused
// package is removed.
func (c *FetchCmd) verifyPackage(ctx context.Context, g *Globals, filename, repo, part, final string) error {
	// --deadline bounds the verification, from here: the download took
	// as long as the mirror needed (bounded by --stall-timeout).
	ctx, cancel, err := withDeadline(ctx, c.Deadline)
	if err != nil {
		return err
	}
	defer cancel()
	pol, err := c.build(ctx)
	if err != nil {
		return deadlineExceeded(ctx, err)
	}
	defer pol.Close()
	art := verify.Artifact{Filename: filename, Repo: repo, Open: func() (io.ReadCloser, error) { return os.Open(part) }}
	if name, ver, arch, ok := repodb.ParseFilename(filename); ok {
		art.Name, art.Version, art.Arch = name, ver, arch
	}
	results, verr := pol.Verifier.VerifyAll(ctx, []verify.Artifact{art})
	var r verify.Result
	if len(results) == 1 {
		r = results[0]
	}
	safeName := safetext.Line(filename)
	if verr != nil || !r.OK() {
		// Nothing of a refused package may stay where pacman (or a later
		// resume) would take it for a good download.
		discardPart(g, part)
		return c.refused(g, safeName, r, verr)
	}
	if err := finish(part, final); err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "bintrans: verified %s (%s)\n", safeName, verifiedHow(r))
	return nil
}

// discardPart removes a refused download, saying so if it cannot.
func discardPart(g *Globals, part string) {
	if derr := fetch.Discard(part); derr != nil {
		fmt.Fprintf(g.Stderr, "bintrans: could not remove %s: %v\n", safetext.Line(part), derr)
	}
}

// passThrough checks that the downloaded file at p, of a kind pacman gets
// unverified, is not a package in disguise (fetch.CheckPassThrough).
func passThrough(kind fetch.Kind, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return fetch.CheckPassThrough(kind, f)
}

// runDeadline: fetch applies --deadline itself, after the download (see
// Run), not to its whole run.
func (c *FetchCmd) runDeadline() time.Duration { return 0 }

// checkPolicy checks the settings every file needs (keys, pinned log key,
// proxy, transparency URL, rebuilders) without opening the engine.
func (c *FetchCmd) checkPolicy(ctx context.Context) error {
	if _, err := c.keys(); err != nil {
		return err
	}
	if _, err := c.logSetup(); err != nil {
		return err
	}
	hc, err := c.httpClient()
	if err != nil {
		return err
	}
	if _, err := c.signatureSource(hc, ""); err != nil {
		return err
	}
	// Names only: this runs for every file pacman downloads (databases
	// and signatures too); a package's own run resolves the hosts.
	_, err = c.rebuilders(ctx, hc, false)
	return err
}

// repoOf names the repository whose Server (from pacman.conf, $repo and
// $arch substituted) the package URL is under, the longest match winning;
// "" when none is (then --transparency-url is used). A wrong guess cannot
// let a package through: every transparency URL is checked against the
// same keys and log.
func (c *FetchCmd) repoOf(rawURL string) (string, error) {
	conf, err := pacman.ParseFile(c.PacmanConf, pacman.Limits{})
	if err != nil {
		return "", usageErrorf("per-repository transparency URLs need pacman's configuration to tell the repository of a URL: pass --pacman-conf FILE", "%v", err)
	}
	best, bestLen := "", 0
	for _, r := range conf.Repos {
		for _, server := range r.Servers {
			prefix := strings.TrimRight(server, "/") + "/"
			if strings.HasPrefix(rawURL, prefix) && len(prefix) > bestLen {
				best, bestLen = r.Name, len(prefix)
			}
		}
	}
	return best, nil
}

// downloadClient is the one client constructor with the policy's proxy
// rules and no overall timeout: a large package may take long; the
// download is bounded by --stall-timeout and --max-download-size instead.
func (c *FetchCmd) downloadClient() (*http.Client, error) {
	o := httpclient.Options{Timeout: -1, Proxy: c.Proxy, UserAgent: "bintrans/" + version}
	if c.BypassProxyForPkgs {
		if c.Proxy == "" {
			return nil, usageErrorf("drop --bypass-proxy-for-pkgs, or add --proxy URL", "--bypass-proxy-for-pkgs without --proxy")
		}
		o.BypassProxyFor = httpclient.IsPackageDownload
	}
	hc, err := httpclient.New(o)
	if err != nil {
		return nil, usageErrorf("use socks5h://HOST:PORT, socks5://HOST:PORT or http://HOST:PORT", "%v", err)
	}
	return hc, nil
}

// downloadFailed reports a failed download. A `.sig` the server does not
// have is not an error for pacman when the signature is optional, so it
// is said in one calm line; the partial file is removed. Other files
// keep their partial download for a resume (a package is verified whole
// before it is ever accepted).
func (c *FetchCmd) downloadFailed(kind fetch.Kind, name, part string, err error) error {
	var pe *fetch.PathError
	if errors.As(err, &pe) {
		return usageErrorf("pacman's %o must be a regular file (or not exist yet)", "%v", err)
	}
	if errors.Is(err, fs.ErrNotExist) { // a 404, or a missing file:// path
		_ = fetch.Discard(part)
		if kind == fetch.KindSignature {
			return &cliError{code: ExitInternal, msg: name + ": not on the mirror; pacman skips a signature that is optional"}
		}
		return &cliError{code: ExitInternal, err: err, msg: fmt.Sprintf("%s: not on the server: %v", name, err),
			hint: "pacman tries the next Server; if every mirror lacks it, refresh the databases with 'pacman -Syy'"}
	}
	if kind != fetch.KindPackage {
		_ = fetch.Discard(part)
	}
	var tl *httpclient.TooLargeError
	if errors.As(err, &tl) {
		_ = fetch.Discard(part)
		return runErrorf(err, "raise --max-download-size if the file is really that large", "downloading %s: %v", name, err)
	}
	hint := "check the network and the mirror; pacman resumes the partial download on the next attempt"
	if c.Proxy != "" {
		hint = "check that the proxy " + c.Proxy + " is up; pacman resumes the partial download on the next attempt"
	}
	return runErrorf(err, hint, "downloading %s: %v", name, err)
}

// refused reports a package that did not pass, in the one voice: what
// failed and why, then what to do.
func (c *FetchCmd) refused(g *Globals, name string, r verify.Result, verr error) error {
	var sec *verify.SecurityError
	var unavailable *verify.LogUnavailableError
	switch {
	case errors.As(verr, &sec):
		fmt.Fprintln(g.Stderr, safetext.Text(verr.Error()))
		return verificationFailed("keep both tree heads above and report them; do not install until the log is explained",
			"refused %s: the log is inconsistent", name)
	case errors.As(verr, &unavailable):
		return runErrorf(verr, logUnavailableHint(verr, "retry when the log is reachable, or set offline = true to verify from proof bundles only"),
			"refused %s: %v", name, verr)
	case verr != nil:
		return runErrorf(verr, "", "refused %s: verification did not complete: %v", name, verr)
	}
	hint := "do not install packages that are not provably in the transparency log; the download was removed"
	if r.Status == verify.StatusRebuildUnconfirmed {
		hint = fmt.Sprintf("fewer than %d rebuilders reproduced it; wait for the rebuilders, or lower --required-rebuild-confirms", c.RequiredRebuildConfirms)
	}
	return verificationFailed(hint, "refused %s: %s", name, failureReason(r))
}

// finish renames the verified download to its final name when bintrans
// chose the ".part" name itself (final != "").
func finish(part, final string) error {
	if final == "" {
		return nil
	}
	if err := os.Rename(part, final); err != nil {
		return runErrorf(err, "", "%v", err)
	}
	return nil
}

// verifiedHow says what proved a package, for the success line.
func verifiedHow(r verify.Result) string {
	var how []string
	if r.KeyID != "" {
		how = append(how, "signed by "+r.KeyID)
	}
	if r.Entry != nil {
		how = append(how, fmt.Sprintf("log index %d", r.Entry.LogIndex))
	}
	if v := r.Rebuild; v != nil && len(v.Confirmed) > 0 {
		how = append(how, fmt.Sprintf("reproduced by %d rebuilder(s)", len(v.Confirmed)))
	}
	if len(how) == 0 {
		return "ok"
	}
	return strings.Join(how, ", ")
}
