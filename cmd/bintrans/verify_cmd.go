package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/bintrans/bintrans/ci"
	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/location"
	"github.com/bintrans/bintrans/internal/pacman"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// VerifyCmd is `bintrans verify <file|url|name>…`: the hook's engine, ad hoc.
type VerifyCmd struct {
	PolicyFlags

	PacmanConf      string `name:"pacman-conf" help:"pacman's configuration, to resolve package names." default:"/etc/pacman.conf" placeholder:"FILE" type:"path"`
	JSON            bool   `name:"json" help:"Print a JSON report (schema_version 2, docs/report-schema.json) on stdout."`
	MaxDownloadSize int64  `name:"max-download-size" help:"Largest package downloaded for a URL argument (bytes)." default:"4294967296" placeholder:"BYTES"`

	Packages []string `arg:"" name:"package" help:"A package file, an http(s) URL of one, or a package name (resolved through pacman's sync databases and cache)."`
}

// Help is shown by 'bintrans verify --help'.
func (VerifyCmd) Help() string {
	return `Verify packages as the hook does, ad hoc: each file (or URL, or name
resolved through pacman's sync databases) must have a .t signed by a
transparency key, naming the file, and be provably in the transparency log.
Exit codes: 0 every package verified; 1 at least one refused (each named,
with its reason); 2 usage or configuration error; 3 could not verify (e.g.
the log is unreachable online).

` + logKindsHelp
}

// logKindsHelp explains --log-kind and its flags (verify, hook, fetch, scan).
const logKindsHelp = `Logs (--log-kind: the same flags on verify, hook, fetch, scan and doctor,
and keys in /etc/bintrans.conf; examples with verify):
  rekor-v1  (default) sigstore Rekor's REST API. Offline: the .t.bundle's
            inclusion proof and signed checkpoint. Online: one checkpoint and
            one consistency proof per distinct bundle checkpoint; entries are
            looked up only for a .t published without a bundle.
              bintrans verify --pubkey RW… --transparency-url URL FILE
  rekor-v2  a tile-based rekor-tiles log. --log-url, --log-key (the log's
            verifier key line, or a PEM key with --log-origin) are required;
            tiles are read from --log-read-url (default --log-url). Every .t
            needs its bundle (Rekor v2 cannot be searched).
              bintrans verify --log-kind rekor-v2 --log-url URL \
                --log-key log.vkey --pubkey RW… --transparency-url URL FILE
  sigsum    a Sigsum log: --sigsum-policy names the logs, the witnesses and
            the quorum; each .t.bundle is a Sigsum proof, verified offline
            against the policy (the witness cosignatures in every proof stand
            for the online check; the log is never contacted).
              bintrans verify --log-kind sigsum --sigsum-policy FILE \
                --pubkey RW… --transparency-url URL FILE
Witnesses: --witness-policy FILE (rekor-v1, rekor-v2) makes every checkpoint a
run relies on need the policy's quorum of cosignatures (offline: each
bundle's; online: the log's current one), so that even a first install
cannot be shown a private view of the log. --max-cosignature-age refuses
older cosignatures. See docs/WITNESSES.md.`

// Run verifies every argument in one batch. Exit 0: all verified; 1: at
// least one failed; 2: usage or configuration error; 3: could not run.
//
// A file is hashed and its `<filename>.t` looked up by its base name. A URL
// is downloaded (streaming, bounded) into a temporary file first. A name is
// resolved like the hook does: the cached file of its sync database entry
// is hashed and must match the entry's %SHA256SUM%; when it is not cached,
// the entry's SHA256 itself is verified (the repository's claim is
// logged) and no file is hashed.
func (c *VerifyCmd) Run(g *Globals) error {
	ctx := g.Context()
	pol, err := c.build(ctx)
	if err != nil {
		return err
	}
	defer pol.Close()
	t := &verifyTargets{arts: make([]verify.Artifact, len(c.Packages)), pre: make([]*verify.Result, len(c.Packages))}
	defer t.removeTemps()
	if err := c.targets(ctx, t); err != nil {
		return err
	}
	results, verr := t.verify(ctx, pol.Verifier)

	mode := ci.ModeOnline
	if pol.policy.Offline {
		mode = ci.ModeOffline
	}
	report := ci.Report{Tool: "bintrans", Version: version, Mode: mode, Results: results}
	if c.JSON {
		if err := ci.WriteJSON(g.Stdout, report); err != nil {
			return runErrorf(err, "", "writing the report: %v", err)
		}
	} else {
		for _, r := range results {
			writeVerdict(g.Stdout, r)
		}
	}
	return c.verdict(g, len(results), report.Failed(), verr)
}

// verifyTargets is what verify's arguments name: an artifact for each, or
// a verdict known before the engine runs (pre: a name in no sync
// database), and the temporary files of downloaded URLs.
type verifyTargets struct {
	arts  []verify.Artifact
	pre   []*verify.Result
	temps []string
}

func (t *verifyTargets) removeTemps() {
	for _, p := range t.temps {
		os.Remove(p)
	}
}

// targets turns each argument into an artifact: a URL is downloaded, a
// file is itself, a name is resolved through pacman's sync databases.
func (c *VerifyCmd) targets(ctx context.Context, t *verifyTargets) error {
	var names []string
	var nameIdx []int
	for i, arg := range c.Packages {
		switch {
		case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://"):
			p, err := c.download(ctx, arg)
			if err != nil {
				return err
			}
			t.temps = append(t.temps, p)
			t.arts[i] = fileArtifact(p, urlFilename(arg))
		case isRegularFile(arg):
			t.arts[i] = fileArtifact(arg, filepath.Base(arg))
		case strings.ContainsAny(arg, "/") || strings.HasPrefix(arg, "."):
			return usageErrorf("give a package file, an http(s) URL, or a package name", "%s: no such package file", arg)
		default:
			names = append(names, arg)
			nameIdx = append(nameIdx, i)
		}
	}
	if len(names) == 0 {
		return nil
	}
	conf, err := pacman.ParseFile(c.PacmanConf, pacman.Limits{})
	if err != nil {
		return usageErrorf("package names are resolved through pacman's sync databases; use --pacman-conf, or give a file", "%v", err)
	}
	targets, err := pacman.Resolve(conf, names)
	if err != nil {
		return runErrorf(err, "", "%v", err)
	}
	batch := pacman.NewBatch(targets, pacman.BatchOptions{VerifyUncachedClaim: true, CacheDirs: conf.CacheDirs})
	// Every target is either an artifact or a ready-made verdict (the
	// placeholders for the artifacts are not used).
	ready, err := batch.Results(make([]verify.Result, len(batch.Artifacts)))
	if err != nil {
		return runErrorf(err, "", "%v", err)
	}
	for j, i := range nameIdx {
		t.arts[i] = targets[j].Artifact()
		if targets[j].NotInSyncDB {
			r := ready[j]
			t.pre[i] = &r
		}
	}
	return nil
}

// verify runs the engine on the artifacts without a verdict yet: one
// result per argument, in order. When the engine could not run, its error
// is each such artifact's (unavailable) and is returned.
func (t *verifyTargets) verify(ctx context.Context, v *verify.Verifier) ([]verify.Result, error) {
	var todo []verify.Artifact
	var todoIdx []int
	for i := range t.arts {
		if t.pre[i] == nil {
			todo = append(todo, t.arts[i])
			todoIdx = append(todoIdx, i)
		}
	}
	engine, verr := v.VerifyAll(ctx, todo)
	results := make([]verify.Result, len(t.arts))
	for i := range t.arts {
		if t.pre[i] != nil {
			results[i] = *t.pre[i]
		} else {
			results[i] = verify.Result{Artifact: t.arts[i], Status: verify.StatusUnavailable, Err: verr}
		}
	}
	for j, r := range engine {
		results[todoIdx[j]] = r
	}
	return results, verr
}

// verdict is the exit: a SECURITY ERROR (its evidence on stderr) or a
// failed package 1, a log that cannot be reached or a run that did not
// complete 3, else 0.
func (c *VerifyCmd) verdict(g *Globals, total, failed int, verr error) error {
	var sec *verify.SecurityError
	var unavailable *verify.LogUnavailableError
	switch {
	case errors.As(verr, &sec):
		fmt.Fprintln(g.Stderr, safetext.Text(verr.Error()))
		return verificationFailed("keep both tree heads above and report them", "%d of %d packages could not be verified against a consistent log", failed, total)
	case errors.As(verr, &unavailable):
		return runErrorf(verr, logUnavailableHint(verr, "retry when the log is reachable, or use --offline to verify from proof bundles only"), "%v", verr)
	case verr != nil:
		return runErrorf(verr, "", "verification did not complete: %v", verr)
	case failed > 0:
		return verificationFailed("", "%d of %d packages failed verification", failed, total)
	}
	if !c.JSON {
		fmt.Fprintf(g.Stderr, "bintrans: %d packages verified (%s)\n", total, c.mode())
	}
	return nil
}

// writeVerdict prints one line per package: OK with the key and log entry,
// or FAIL with the status and the reason.
func writeVerdict(w io.Writer, r verify.Result) {
	name := describeArtifact(r.Artifact)
	if !r.OK() {
		fmt.Fprintf(w, "FAIL %s: %s\n", name, failureReason(r))
		return
	}
	var how []string
	if r.Artifact.Open == nil {
		how = append(how, "repository claim (file not hashed)")
	}
	if r.KeyID != "" {
		how = append(how, "signed by "+r.KeyID)
	}
	if r.Entry != nil {
		how = append(how, fmt.Sprintf("log index %d", r.Entry.LogIndex))
	}
	if v := r.Rebuild; v != nil && len(v.Confirmed) > 0 {
		how = append(how, fmt.Sprintf("reproduced by %d rebuilder(s)", len(v.Confirmed)))
	}
	fmt.Fprintf(w, "OK   %s: %s\n", name, strings.Join(how, ", "))
}

// fileArtifact verifies the file at p under the package file name filename.
func fileArtifact(p, filename string) verify.Artifact {
	a := verify.Artifact{Filename: filename, Open: func() (io.ReadCloser, error) { return os.Open(p) }}
	if name, ver, arch, ok := repodb.ParseFilename(filename); ok {
		a.Name, a.Version, a.Arch = name, ver, arch
	}
	return a
}

func isRegularFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// urlFilename is the unescaped last path segment of a package URL.
func urlFilename(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

// download fetches a package URL into a temporary file (streaming, at most
// MaxDownloadSize bytes, through the policy's proxy rules) and returns its
// path; the caller removes it.
func (c *VerifyCmd) download(ctx context.Context, raw string) (string, error) {
	name := urlFilename(raw)
	if _, _, _, ok := repodb.ParseFilename(name); !ok {
		return "", usageErrorf("the URL must end in the package file name (<name>-<ver>-<rel>-<arch>.pkg.tar.*)", "%s: not a package URL", raw)
	}
	opts := httpclient.Options{Timeout: -1, Proxy: c.Proxy}
	if c.BypassProxyForPkgs {
		opts.BypassProxyFor = httpclient.IsPackageDownload
	}
	hc, err := httpclient.New(opts)
	if err != nil {
		return "", usageErrorf("check --proxy", "%v", err)
	}
	l, err := location.Parse(raw)
	if err != nil {
		return "", usageErrorf("", "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	body, err := location.Open(ctx, l, location.Options{HTTP: hc, Limit: c.MaxDownloadSize})
	if err != nil {
		return "", c.downloadError(raw, err)
	}
	defer body.Close()
	f, err := os.CreateTemp("", "bintrans-verify-*-"+name)
	if err != nil {
		return "", runErrorf(err, "", "%v", err)
	}
	_, err = io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", c.downloadError(raw, err)
	}
	return f.Name(), nil
}

// downloadError reports a failed download (a body over --max-download-size
// by that name).
func (c *VerifyCmd) downloadError(raw string, err error) error {
	var tl *httpclient.TooLargeError
	if errors.As(err, &tl) {
		err = fmt.Errorf("larger than --max-download-size %d bytes", c.MaxDownloadSize)
	}
	return runErrorf(err, "", "downloading %s: %v", raw, err)
}
