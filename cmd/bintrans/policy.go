package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"crypto/ed25519"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/rebuilder"
	"github.com/bintrans/bintrans/internal/rootfile"
	"github.com/bintrans/bintrans/internal/sigsource"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// DefaultLogURL is the public sigstore Rekor (v1 API).
const DefaultLogURL = "https://rekor.sigstore.dev"

// publicRekorKey is the public sigstore Rekor's log key (logID
// c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d), pinned
// when --log-url is the default and --log-key is not given. Any other log
// needs --log-key: a log key is never trusted on first use.
const publicRekorKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr
kBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
-----END PUBLIC KEY-----
`

// KeyFlags name the transparency keys.
type KeyFlags struct {
	Pubkey     []string `help:"Transparency public key (minisign, the 'RW…' line). Repeatable." placeholder:"RW…" sep:"none"`
	PubkeyPath []string `help:"File holding a minisign public key (.pub). Repeatable." placeholder:"FILE" sep:"none"`
}

// keys parses every --pubkey and --pubkey-path.
func (f *KeyFlags) keys() ([]verify.PublicKey, error) {
	var keys []verify.PublicKey
	for _, s := range f.Pubkey {
		k, err := verify.ParsePublicKey(s)
		if err != nil {
			return nil, usageErrorf("pass the second line of the minisign .pub file, e.g. --pubkey 'RWS…'", "--pubkey %q: %v", short(s), err)
		}
		keys = append(keys, k)
	}
	for _, p := range f.PubkeyPath {
		b, err := readSmallFile(p, 4096)
		if err != nil {
			return nil, usageErrorf(fileHint(err, "check the path given to --pubkey-path"), "--pubkey-path: %v", err)
		}
		k, err := verify.ParsePublicKey(string(b))
		if err != nil {
			return nil, usageErrorf("the file must be a minisign public key (minisign -G writes one)", "--pubkey-path %s: %v", p, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, usageErrorf("give the repository's transparency key with --pubkey 'RW…' or --pubkey-path FILE (or 'pubkey = RW…' in /etc/bintrans.conf)", "no transparency key configured")
	}
	return keys, nil
}

// NetFlags are the network settings shared by every command.
type NetFlags struct {
	Proxy              string        `help:"Send every connection through this proxy: socks5h://127.0.0.1:9050 (Tor; DNS through the proxy), socks5://…, http://…." placeholder:"URL"`
	BypassProxyForPkgs bool          `help:"Download packages directly; signatures, proofs, the log and rebuilders still go through --proxy."`
	Timeout            time.Duration `help:"Timeout of each request to the log, the signature server and rebuilders." default:"30s"`
}

// httpClient is the one HTTP client of a command run.
func (f *NetFlags) httpClient() (*http.Client, error) {
	o := httpclient.Options{Timeout: f.Timeout, Proxy: f.Proxy, UserAgent: "bintrans/" + version}
	if f.BypassProxyForPkgs {
		if f.Proxy == "" {
			return nil, usageErrorf("drop --bypass-proxy-for-pkgs, or add --proxy URL", "--bypass-proxy-for-pkgs without --proxy")
		}
		o.BypassProxyFor = httpclient.IsPackageDownload
	}
	c, err := httpclient.New(o)
	if err != nil {
		return nil, usageErrorf("use socks5h://HOST:PORT, socks5://HOST:PORT or http://HOST:PORT", "%v", err)
	}
	return c, nil
}

// RebuilderFlags are the rebuilder policy.
type RebuilderFlags struct {
	Rebuilder               []string `help:"rebuilderd instance to ask whether a package was reproduced. Repeatable. URLs of one rebuilder count once: the same host (compared without case, trailing dot, default port or path; internationalized names as punycode) or, without --proxy, hosts whose addresses overlap when bintrans starts (a name and its IP address). A rebuilder whose host does not resolve then is not counted (its independence cannot be judged)." placeholder:"URL" sep:"none"`
	RequiredRebuildConfirms int      `help:"How many independent rebuilders must have reproduced a package (0: do not ask). More than the independent --rebuilder hosts is refused." default:"0" placeholder:"N"`
	RebuilderKey            []string `help:"Pin a rebuilder's attestation key: only signed attestations naming the package's sha256 count. Repeatable." placeholder:"URL=PEM-FILE" sep:"none"`
}

// rebuilders builds the rebuilder set, or nil when none is configured.
// Rebuilders that are one machine (see rebuilder's Independence) count
// once; a threshold above the number of independent rebuilders is refused
// (exit 2) naming the URLs that count together. With resolve and without
// a proxy, hosts are resolved here (bounded by
// rebuilder.DefaultResolveTimeout and ctx); through a proxy, which
// resolves names itself, they are compared by name only: a local lookup
// would leak them. Without resolve (a check of the configuration only),
// names alone are compared.
func (f *PolicyFlags) rebuilders(ctx context.Context, hc *http.Client, resolve bool) (*rebuilder.Set, error) {
	if f.RequiredRebuildConfirms < 0 {
		return nil, usageErrorf("", "--required-rebuild-confirms must be 0 or more")
	}
	if len(f.Rebuilder) == 0 {
		if len(f.RebuilderKey) > 0 {
			return nil, usageErrorf("add the matching --rebuilder URL", "--rebuilder-key without --rebuilder")
		}
		if f.RequiredRebuildConfirms > 0 {
			return nil, usageErrorf("add --rebuilder URL for each independent rebuilder, or lower --required-rebuild-confirms",
				"--required-rebuild-confirms %d but no --rebuilder is configured: no package could ever pass", f.RequiredRebuildConfirms)
		}
		return nil, nil
	}
	cfg := rebuilder.Config{URLs: f.Rebuilder, Keys: map[string][]ed25519.PublicKey{}}
	if resolve && f.Proxy == "" {
		cfg.Resolver = net.DefaultResolver
	}
	for _, spec := range f.RebuilderKey {
		u, file, err := rebuilder.ParseKeyFlag(spec)
		if err != nil {
			return nil, usageErrorf("use --rebuilder-key https://rebuilder.example/=/etc/bintrans/rebuilder.pem", "--rebuilder-key %q: %v", spec, err)
		}
		if err := checkRootFile("--rebuilder-key", file); err != nil {
			return nil, err
		}
		k, err := rebuilder.ReadKeyFile(file)
		if err != nil {
			return nil, usageErrorf("the file must be the rebuilder's PEM key (GET /api/v1/meta/public-keys)", "--rebuilder-key %s: %v", file, err)
		}
		cfg.Keys[u] = append(cfg.Keys[u], k)
	}
	set, err := rebuilder.NewContext(ctx, cfg, hc)
	if err != nil {
		return nil, usageErrorf("check the --rebuilder URLs", "%v", err)
	}
	if n := set.Independent(); f.RequiredRebuildConfirms > n {
		why := ""
		if m := set.Merged(); len(m) > 0 {
			why = ": " + strings.Join(m, "; ")
		}
		return nil, usageErrorf("add --rebuilder URL for each independent rebuilder (another machine, another operator), or lower --required-rebuild-confirms",
			"--required-rebuild-confirms %d but the %d --rebuilder URL(s) are only %d independent rebuilder(s)%s: no package could ever pass",
			f.RequiredRebuildConfirms, len(f.Rebuilder), n, why)
	}
	return set, nil
}

// PolicyFlags are the verification policy shared by hook, verify, fetch and
// scan: one vocabulary, one meaning (design.md).
type PolicyFlags struct {
	KeyFlags
	LogFlags
	NetFlags
	RebuilderFlags
	FreshnessFlags

	TransparencyURL     string        `help:"Where <package>.t and <package>.t.bundle are published (http(s)://, file:// or a directory)." placeholder:"URL"`
	RepoTransparencyURL []string      `help:"Per-repository transparency URL (in the config: 'transparency-url = URL' in a [repo NAME] section). Repeatable." placeholder:"REPO=URL" sep:"none"`
	Offline             bool          `help:"Verify from proof bundles only; never contact the log (nobody learns what you install). The bundles' checkpoints are compared with each other and with the one stored in --state-dir (read only): the same tree size with another root is a SECURITY ERROR. Forks at other sizes need the log: run online now and then."`
	StateDir            string        `help:"Where the last verified log checkpoint is kept (rollback and split-view detection). Online runs lock and update it; offline runs only read it (a missing directory is fine)." default:"/var/lib/bintrans" placeholder:"DIR"`
	Jobs                int           `help:"Packages verified in parallel (0: twice the number of CPUs)." default:"0" placeholder:"N"`
	Deadline            time.Duration `help:"Longest a run may take (0: no limit): the state lock, the sync databases, hashing, package URLs, the log and the rebuilders together (--timeout bounds each request; fetch counts from the end of its download, which --stall-timeout bounds). When it passes, the packages not verified yet are refused with the cause and bintrans exits 3 (the hook aborts the transaction). Default: 5m for hook, verify and fetch; none for scan (in CI, set one below the job's timeout)." default:"${deadline_default=0s}"`
}

// runDeadline is the --deadline a command applies to its whole run (main
// does, for every command but fetch, which applies it itself after the
// download).
func (f *PolicyFlags) runDeadline() time.Duration { return f.Deadline }

// deadlineError is the cause of a run's context when --deadline passed.
type deadlineError struct{ limit time.Duration }

func (e *deadlineError) Error() string {
	return fmt.Sprintf("run deadline of %s exceeded (--deadline)", e.limit)
}

// Hint says what to do about it.
func (e *deadlineError) Hint() string {
	return "raise --deadline (or 'deadline = ...' in /etc/bintrans.conf), or find out what is slow: 'bintrans doctor' reaches the log and each rebuilder"
}

// withDeadline bounds ctx by d (none when d is 0); the context's cause is
// then a *deadlineError. A negative d is a usage error.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc, error) {
	switch {
	case d < 0:
		return ctx, func() {}, usageErrorf("give a duration such as 5m, or 0 for no limit", "--deadline %s is negative", d)
	case d == 0:
		return ctx, func() {}, nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d, &deadlineError{limit: d})
	return ctx, cancel, nil
}

// fileHint is the hint for a file that could not be used: how to fix an
// *rootfile.InsecureError, or def.
func fileHint(err error, def string) string {
	var ie *rootfile.InsecureError
	if errors.As(err, &ie) {
		return ie.Hint()
	}
	return def
}

// checkRootFile refuses (exit 2), when bintrans runs as root, a file named
// by flag that someone other than root could have written. Other errors
// (a missing file) are left to the code that reads it.
func checkRootFile(flag, path string) error {
	err := rootfile.Check(path)
	var ie *rootfile.InsecureError
	if errors.As(err, &ie) {
		return usageErrorf(ie.Hint(), "%s: %v", flag, err)
	}
	return nil
}

// logUnavailableHint is the hint of a run that failed because the log
// could not be used: the run's answer budget, or the given default.
func logUnavailableHint(err error, def string) string {
	var be *httpclient.BudgetError
	if errors.As(err, &be) {
		return "the log sent answers far larger than any honest one (a hostile or broken log, or a man in the middle): check --log-url; nothing was installed"
	}
	var qe *witness.QuorumError
	if errors.As(err, &qe) && qe.NoCosignatures() {
		return "the log serves its checkpoint without any witness cosignature (it does not gather them; sign --witness puts them in the proof bundles only): verify offline (offline = true, or --offline), against the cosigned checkpoints the bundles carry, or ask the log's operator to run it with a witness policy (rekor-tiles --witness-policy-path); nothing was installed"
	}
	if errors.As(err, &qe) {
		return "the log's current checkpoint lacks the cosignatures --witness-policy requires: check that the policy names the witnesses this log uses and that they are up (a log showing a view no witness saw is refused on purpose); nothing was installed"
	}
	return def
}

// The run's memory budget for answers (httpclient.Budget): what the
// responses being read at once may hold, whatever --jobs and the number of
// rebuilders. Per-response limits stay as they are (the log: 1 MiB, 32 MiB
// for an index search; a rebuilder: 8 MiB); an honest run holds well
// under 2 MiB of either. Log and rebuilders have budgets of their own, so
// that a hostile rebuilder cannot make the log's answers fail (and the run
// with them), nor the reverse. A run that exceeds one fails closed: the
// log's answers with exit 3 (the log is unusable), a rebuilder's as that
// rebuilder being unreachable.
const (
	logAnswerBudget       = 64 << 20
	rebuilderAnswerBudget = 64 << 20
)

// engine is everything a verifying command needs, built once per run.
type engine struct {
	Verifier *verify.Verifier
	policy   verify.Policy
	log      *logSetup
	http     *http.Client
	state    *state.Dir
	unlock   func()
	// logBudget and rbBudget bound the answers held at once.
	logBudget, rbBudget *httpclient.Budget
	// What the statements' verifier shares with the packages'.
	stmt stmtParts
}

// Close releases the state lock.
func (e *engine) Close() {
	if e.unlock != nil {
		e.unlock()
	}
}

// signatureSource builds the source of `.t` files and bundles: the
// per-repository URLs, falling back to --transparency-url (or dir, for scan).
func (f *PolicyFlags) signatureSource(hc *http.Client, fallbackDir string) (verify.SignatureSource, error) {
	var fallback verify.SignatureSource
	base := f.TransparencyURL
	if base == "" {
		base = fallbackDir
	}
	if base != "" {
		s, err := sigsource.New(base, hc)
		if err != nil {
			return nil, usageErrorf("use an http(s):// or file:// URL or a directory", "transparency URL %q: %v", base, err)
		}
		fallback = s
	}
	byRepo := map[string]verify.SignatureSource{}
	for _, spec := range f.RepoTransparencyURL {
		repo, u, ok := strings.Cut(spec, "=")
		if !ok || repo == "" || u == "" {
			return nil, usageErrorf("use --repo-transparency-url core=https://… (or [repo core] transparency-url = … in the config)", "--repo-transparency-url %q: want REPO=URL", spec)
		}
		s, err := sigsource.New(u, hc)
		if err != nil {
			return nil, usageErrorf("use an http(s):// or file:// URL or a directory", "transparency URL for %s %q: %v", repo, u, err)
		}
		byRepo[repo] = s
	}
	if fallback == nil && len(byRepo) == 0 {
		return nil, usageErrorf("give --transparency-url URL (where the repository publishes <package>.t), or 'transparency-url = URL' in /etc/bintrans.conf", "no transparency URL configured")
	}
	if len(byRepo) == 0 {
		return fallback, nil
	}
	return sigsource.PerRepo(byRepo, fallback), nil
}

// build is open without a fallback signature directory.
func (f *PolicyFlags) build(ctx context.Context) (*engine, error) { return f.open(ctx, "") }

// open builds the engine: keys, pinned log key, one HTTP client, the log
// client (online), the state directory (locked for the run), rebuilders.
// fallbackDir is a local signature directory used when no transparency URL
// is configured ("" for none). The caller must Close the engine.
func (f *PolicyFlags) open(ctx context.Context, fallbackDir string) (*engine, error) {
	keys, err := f.keys()
	if err != nil {
		return nil, err
	}
	ls, err := f.logSetup()
	if err != nil {
		return nil, err
	}
	hc, err := f.httpClient()
	if err != nil {
		return nil, err
	}
	src, err := f.signatureSource(hc, fallbackDir)
	if err != nil {
		return nil, err
	}
	e := &engine{http: hc,
		logBudget: httpclient.NewBudget("transparency log answers", logAnswerBudget),
		rbBudget:  httpclient.NewBudget("rebuilder answers", rebuilderAnswerBudget)}
	set, err := f.rebuilders(ctx, e.rbBudget.Client(hc), true)
	if err != nil {
		return nil, err
	}
	var rb verify.Rebuilders
	if set != nil {
		rb = set
	}
	// A kind verified from its proofs alone (sigsum) runs as offline does:
	// the stored checkpoint is read, never written.
	offline := f.Offline || ls.OfflineOnly
	e.policy = verify.Policy{
		Keys:                    keys,
		Log:                     ls.Verifier,
		Witnesses:               ls.Witnesses,
		Offline:                 offline,
		Concurrency:             f.Jobs,
		RequiredRebuildConfirms: f.RequiredRebuildConfirms,
	}
	e.log = ls
	var log verify.LogClient
	if !offline {
		if log, err = ls.online(e.logBudget.Client(hc)); err != nil {
			return nil, err
		}
		sd, err := state.Open(f.StateDir)
		if err != nil {
			return nil, runErrorf(err, "create it (as root: install -d -m 0700 "+f.StateDir+") or pass --state-dir DIR", "state directory: %v", err)
		}
		e.state = sd
	} else {
		// Offline reads the stored checkpoint (a bundle's tree head of the
		// same size must match it) but never writes or locks: it works on a
		// read-only state directory, and a missing one is an empty state.
		sd, err := state.OpenReadOnly(f.StateDir)
		if err != nil {
			hint := "fix the directory's owner and mode (chmod 0700, chown root), or pass --state-dir DIR"
			if errors.Is(err, fs.ErrPermission) {
				hint = "run as root (the stored checkpoint is root's), or pass --state-dir DIR (a directory of yours: offline compares the bundles with the checkpoint an online run stored there, if any)"
			}
			return nil, runErrorf(err, hint, "state directory: %v", err)
		}
		e.state = sd
	}
	ls.bindState(e.state, false)
	store := e.state.CheckpointsFor(ls.StateID)
	e.stmt = stmtParts{src: src, log: log, store: store}
	vlog := log
	if offline && ls.shards != nil {
		vlog = ls.shards // offline, for each shard's stored checkpoint
	}
	v, err := verify.NewVerifier(e.policy, src, vlog, store, rb)
	if err != nil {
		return nil, usageErrorf("", "%v", err)
	}
	e.Verifier = v
	if !e.state.ReadOnly() {
		// One run at a time per state directory: concurrent hooks must not
		// race on the checkpoint (a lost update could hide a rollback).
		unlock, err := e.state.Lock(ctx)
		if err != nil {
			return nil, runErrorf(err, "another bintrans run holds the state lock; wait for it, or pass another --state-dir", "%v", err)
		}
		e.unlock = unlock
	}
	return e, nil
}

// short abbreviates a user-supplied value for an error message.
func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}
