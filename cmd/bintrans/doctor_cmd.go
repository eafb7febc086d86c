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

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/pacman"
	"github.com/bintrans/bintrans/internal/rebuilder"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/verify"
)

// DoctorCmd checks the configuration the pacman hook would run with, reaches
// every service it needs, and says what the next upgrade would do. It never
// writes: the state directory is read, not created, and no checkpoint is
// stored.
type DoctorCmd struct {
	PolicyFlags

	PacmanConf       string `name:"pacman-conf" help:"pacman's configuration: its repositories are matched with the transparency URLs." default:"/etc/pacman.conf" placeholder:"FILE"`
	UnsafeAllowLocal bool   `name:"unsafe-allow-local" help:"As for 'bintrans hook': reported, so that the relaxation is visible."`
}

// maxRebuilderProbe bounds the answer of a rebuilder to doctor's probe.
const maxRebuilderProbe = 1 << 20

// Help is shown by 'bintrans doctor --help'.
func (DoctorCmd) Help() string {
	return `Reads the configuration (/etc/bintrans.conf, --config or $BINTRANS_CONFIG;
'bintrans hook' ignores $BINTRANS_CONFIG) as 'bintrans hook' does, then:
  - parses the transparency keys and the pinned log key;
  - fetches the log's current checkpoint and verifies it under the pinned key
    (not in --offline mode), and proves it consistent with the checkpoint in
    --state-dir, if there is one;
  - asks each --rebuilder whether it answers;
  - matches pacman's repositories with their transparency URLs;
  - checks pacman's sync databases against their repository statements,
    as 'bintrans check-dbs' does (a stale or rolled-back one would abort
    the next upgrade);
and prints what the next upgrade would check. Nothing is written.

Exit codes: 0 ready; 1 the log's checkpoint does not verify or is inconsistent
with the stored one (a wrong --log-key, or a log that lies), or a sync
database is stale, rolled back or otherwise refused; 2 configuration
error; 3 the log or too many rebuilders unreachable.

Examples:
  bintrans doctor
  bintrans doctor --config ./bintrans.conf
  bintrans doctor --offline --pubkey-path key.pub --transparency-url https://example.org/t/`
}

// Run performs the checks in the order the hook depends on them.
func (d *DoctorCmd) Run(g *Globals) error {
	w := g.Stdout
	ctx := g.Context()
	fmt.Fprintf(w, "config:      %s\n", describeConfig(g.Config))

	keys, err := d.keys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		fmt.Fprintf(w, "key:         %s (minisign key id)\n", k.KeyID())
	}
	ls, err := d.logSetup()
	if err != nil {
		return err
	}
	hc, err := d.httpClient()
	if err != nil {
		return err
	}
	if _, err := d.signatureSource(hc, ""); err != nil {
		return err
	}
	rbs, err := d.rebuilders(ctx, hc, true)
	if err != nil {
		return err
	}
	if d.TransparencyURL != "" {
		fmt.Fprintf(w, "signatures:  %s\n", d.TransparencyURL)
	}
	for _, spec := range d.RepoTransparencyURL {
		repo, u, _ := strings.Cut(spec, "=")
		fmt.Fprintf(w, "signatures:  [%s] %s\n", repo, u)
	}
	if d.Proxy != "" {
		fmt.Fprintf(w, "proxy:       %s (packages: %s)\n", d.Proxy, map[bool]string{true: "direct", false: "through the proxy"}[d.BypassProxyForPkgs])
	}
	if k := ls.Verifier.Kind(); k == kindRekorV1 {
		fmt.Fprintf(w, "log:         %s (pinned key %s)\n", d.LogURL, ls.StateID[:16])
	} else {
		fmt.Fprintf(w, "log:         %s %s (pinned key %s)\n", k, safetext.Line(ls.where), ls.StateID[:min(len(ls.StateID), 16)])
	}
	if ls.Witnesses != nil {
		fmt.Fprintf(w, "witnesses:   %s: every checkpoint needs its quorum\n", d.WitnessPolicy)
	}

	if d.Offline || ls.OfflineOnly {
		why := "--offline: the log is never contacted"
		if ls.OfflineOnly {
			why = "sigsum: proofs are verified against the policy, the log is never contacted"
		}
		fmt.Fprintf(w, "log check:   skipped (%s)\n", why)
		old, err := storedCheckpoint(ctx, d.StateDir, ls)
		switch {
		case err != nil:
			return runErrorf(err, "check --state-dir (it must be a directory only root can write)", "state directory %s: %v", d.StateDir, err)
		case old == nil:
			fmt.Fprintf(w, "state:       %s: no checkpoint (offline compares the bundles' tree heads with each other only)\n", d.StateDir)
		default:
			fmt.Fprintf(w, "state:       %s: stored checkpoint size %d (offline: a bundle's tree head of that size must match it)\n", d.StateDir, old.Size)
		}
	} else if err := d.checkLog(ctx, w, g.Stderr, hc, ls); err != nil {
		return err
	}
	if rbs != nil {
		for _, m := range rbs.Merged() {
			fmt.Fprintf(w, "rebuilder:   %s: counted once\n", safetext.Line(m))
		}
		for _, u := range rbs.Unjudged() {
			fmt.Fprintf(w, "rebuilder:   %s\n", safetext.Line(u))
		}
	}
	if err := d.checkRebuilders(ctx, w, hc, rbs); err != nil {
		return err
	}
	d.describeRepos(w)
	if err := d.checkDBs(ctx, g, hc); err != nil {
		return err
	}
	d.describeNextUpgrade(w, len(keys))
	fmt.Fprintln(w, "ok: ready for the next upgrade")
	return nil
}

// describeConfig says which configuration file is in effect.
// $BINTRANS_CONFIG is in effect here, not for the pacman hook (configPath):
// doctor says so.
func describeConfig(path string) string {
	note := ""
	if path == defaultConfigPath {
		if env := os.Getenv("BINTRANS_CONFIG"); env != "" {
			path = env
			note = "; the pacman hook ignores $BINTRANS_CONFIG and reads " + defaultConfigPath
		}
	}
	if _, err := os.Stat(path); err != nil {
		return path + " (absent: flags and defaults only" + note + ")"
	}
	return path + " (every key accepted" + note + ")"
}

// checkLog fetches the current checkpoint, verifies it under the pinned key
// and proves it consistent with the stored one, without storing anything.
func (d *DoctorCmd) checkLog(ctx context.Context, w, stderr io.Writer, hc *http.Client, ls *logSetup) error {
	c, err := ls.online(hc)
	if err != nil {
		return err
	}
	text, err := c.Checkpoint(ctx)
	if err != nil {
		return runErrorf(err, "check the network, --proxy and --log-url (--log-read-url); or use --offline with proof bundles",
			"log %s unreachable: %s (the hook would refuse every package)", safetext.Line(ls.where), safetext.Message(err.Error()))
	}
	cur, err := ls.Verifier.VerifyCheckpoint(text)
	if err != nil {
		hint := "check that --log-key (and --log-origin) pin the key of " + ls.where + ", compared out of band; if they do, the log is misbehaving"
		if ls.Verifier.Kind() == kindRekorV1 {
			hint = "check that --log-key is the key of " + d.LogURL + " (GET /api/v1/log/publicKey, compared out of band); if it is, the log is misbehaving"
		}
		return verificationFailed(hint,
			"the log's checkpoint does not verify under the pinned log key: %v", err)
	}
	fmt.Fprintf(w, "log check:   checkpoint verified under the pinned key: %s size %d\n", safetext.Line(cur.Origin), cur.Size)
	if ls.Witnesses != nil {
		if err := ls.Witnesses.CheckCosignatures(text); err != nil {
			return verificationFailed("the log's witnesses have not cosigned its current checkpoint: check that --witness-policy names the witnesses the log uses, and that they are up; the hook would refuse every package",
				"the log's checkpoint misses the witness quorum: %s", safetext.Message(err.Error()))
		}
		fmt.Fprintln(w, "witnesses:   the current checkpoint meets the quorum")
	}

	old, err := storedCheckpoint(ctx, d.StateDir, ls)
	switch {
	case err != nil:
		return runErrorf(err, "check --state-dir (it must be a directory only root can write)", "state directory %s: %v", d.StateDir, err)
	case old == nil:
		fmt.Fprintf(w, "state:       %s: no checkpoint yet (the first online run stores one)\n", d.StateDir)
	default:
		if err := verify.ProveConsistent(ctx, c, old, cur, "the stored checkpoint"); err != nil {
			var se *verify.SecurityError
			if errors.As(err, &se) {
				fmt.Fprintln(stderr, safetext.Text(se.Error()))
				return verificationFailed("the log shows you a different history than before: keep both tree heads above as evidence and report them",
					"the log's current checkpoint is inconsistent with the stored one (SECURITY ERROR above)")
			}
			return runErrorf(err, "check the network and --log-url", "consistency proof: %v", err)
		}
		fmt.Fprintf(w, "state:       %s: stored checkpoint size %d, consistent with the log\n", d.StateDir, old.Size)
	}
	return nil
}

// storedCheckpoint reads the verified checkpoint the hook keeps, without
// creating the state directory. nil means none yet.
func storedCheckpoint(ctx context.Context, dir string, ls *logSetup) (*verify.Checkpoint, error) {
	sd, err := state.OpenReadOnly(dir)
	if err != nil {
		return nil, err
	}
	b, err := sd.CheckpointsFor(ls.StateID).Load(ctx)
	if err != nil || b == nil {
		return nil, err
	}
	cp, err := ls.Verifier.VerifyCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("stored checkpoint: %w", err)
	}
	return cp, nil
}

// checkRebuilders asks each rebuilder one bounded question. It fails only
// when fewer rebuilders answer than --required-rebuild-confirms: then every
// package of the next upgrade would be refused.
func (d *DoctorCmd) checkRebuilders(ctx context.Context, w io.Writer, hc *http.Client, rbs *rebuilder.Set) error {
	if len(d.Rebuilder) == 0 {
		return nil
	}
	var answered []string
	for _, r := range d.Rebuilder {
		u := strings.TrimRight(r, "/") + "/api/v0/pkgs/list?distro=archlinux&name=pacman"
		_, err := httpclient.Get(ctx, hc, u, maxRebuilderProbe)
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // a 404 answers too
			fmt.Fprintf(w, "rebuilder:   %s: unreachable: %s\n", r, safetext.Message(err.Error()))
			continue
		}
		answered = append(answered, r)
		fmt.Fprintf(w, "rebuilder:   %s: answers\n", r)
	}
	// URLs of one rebuilder (same host, shared addresses) count once.
	up := len(answered)
	if rbs != nil {
		up = rbs.CountIndependent(answered)
	}
	if up < d.RequiredRebuildConfirms {
		return runErrorf(nil, "check the --rebuilder URLs and the network, or lower --required-rebuild-confirms",
			"only %d independent rebuilder(s) of the %d --rebuilder URL(s) answer but %d confirmations are required: the next upgrade would be refused", up, len(d.Rebuilder), d.RequiredRebuildConfirms)
	}
	return nil
}

// describeRepos matches pacman's repositories with transparency URLs.
func (d *DoctorCmd) describeRepos(w io.Writer) {
	conf, err := pacman.ParseFile(d.PacmanConf, pacman.DefaultLimits())
	if err != nil {
		fmt.Fprintf(w, "pacman:      %s: %s\n", d.PacmanConf, safetext.Message(err.Error()))
		return
	}
	perRepo := map[string]string{}
	for _, spec := range d.RepoTransparencyURL {
		repo, u, _ := strings.Cut(spec, "=")
		perRepo[repo] = u
	}
	for _, r := range conf.Repos {
		switch u := perRepo[r.Name]; {
		case u != "":
			fmt.Fprintf(w, "repository:  %s: signatures from %s\n", r.Name, u)
		case d.TransparencyURL != "":
			fmt.Fprintf(w, "repository:  %s: signatures from %s\n", r.Name, d.TransparencyURL)
		default:
			fmt.Fprintf(w, "repository:  %s: no transparency URL: its packages would be refused\n", r.Name)
		}
	}
}

// describeNextUpgrade states the policy the hook would apply.
func (d *DoctorCmd) describeNextUpgrade(w io.Writer, keys int) {
	fmt.Fprintf(w, "next upgrade: every package needs a .t signed by one of %d key(s), with its trusted comment naming the file,", keys)
	if d.Offline || d.LogKind == kindSigsum {
		fmt.Fprintln(w, " and a proof bundle (.t.bundle) proving it is in the log; the log is not contacted.")
	} else {
		fmt.Fprintln(w, " provably in the log's current tree, consistent with the last tree seen.")
	}
	if d.RequiredRebuildConfirms > 0 {
		fmt.Fprintf(w, "next upgrade: %d of %d rebuilder(s) must have reproduced each package.\n", d.RequiredRebuildConfirms, len(d.Rebuilder))
	}
	if d.UnsafeAllowLocal {
		fmt.Fprintln(w, "next upgrade: UNSAFE: packages in no sync database (pacman -U FILE) pass unverified.")
	}
}

// checkDBs checks pacman's sync databases against their repository
// statements, as check-dbs does, without keeping anything.
func (d *DoctorCmd) checkDBs(ctx context.Context, g *Globals, hc *http.Client) error {
	w := g.Stdout
	conf, err := pacman.ParseFile(d.PacmanConf, pacman.DefaultLimits())
	if err != nil {
		return nil // describeRepos said so
	}
	dbs, err := syncDBs(pacman.HostFS{}, conf)
	if err != nil {
		fmt.Fprintf(w, "databases:   %s\n", safetext.Message(err.Error()))
		return runErrorf(err, "check pacman's DBPath", "%v", err)
	}
	if len(dbs) == 0 {
		fmt.Fprintf(w, "databases:   none under %s/sync yet ('pacman -Sy' downloads them)\n", safetext.Line(conf.DBPath))
		return nil
	}
	e, err := d.statementsEngine(hc)
	if err != nil {
		return err
	}
	run, err := e.checkStatements(ctx, g, &d.PolicyFlags, dbs, conf.Architectures, true)
	if err != nil {
		return err
	}
	var b strings.Builder
	writeDBLines(&b, run, time.Now())
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if line != "" {
			fmt.Fprintf(w, "database:    %s", line)
		}
	}
	if err := run.verdict(g, ": the next upgrade would be refused"); err != nil {
		return err
	}
	return nil
}
