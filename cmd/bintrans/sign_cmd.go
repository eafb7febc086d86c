package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jedisct1/go-minisign"
	"golang.org/x/term"

	"github.com/bintrans/bintrans/internal/durable"
	"github.com/bintrans/bintrans/internal/location"
	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/progress"
	"github.com/bintrans/bintrans/internal/rootfile"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/internal/signer"
	"github.com/bintrans/bintrans/verify"
)

// passwordEnv is the environment variable holding the secret key's password.
const passwordEnv = "BINTRANS_PASSWORD"

// maxPasswordFile bounds --password-file.
const maxPasswordFile = 4 << 10

// SignCmd is `bintrans sign`: the repository operator's signer.
type SignCmd struct {
	RepoURL           string        `name:"repo-url" required:"" placeholder:"URL" help:"Repository URL template with $$repo and $$arch, as in a pacman.conf Server line (a directory, file:// or https://; plain http:// only with --unsafe-trust-db)."`
	RepoName          []string      `name:"repo-name" required:"" placeholder:"NAME" help:"Repository to sign (repeatable): its database is <repo-url>/<NAME>.db."`
	Architecture      []string      `name:"architecture" default:"x86_64" placeholder:"ARCH" help:"Architecture to sign (repeatable)."`
	SignatureDir      string        `name:"signature-dir" required:"" placeholder:"DIR" type:"path" help:"Where <filename>.t and <filename>.t.bundle are written (publish this directory as the transparency URL)."`
	PubkeyPath        string        `name:"pubkey-path" required:"" placeholder:"FILE" type:"path" help:"The transparency key's minisign public key (.pub); the secret key must be its pair."`
	SeckeyPath        string        `name:"seckey-path" required:"" placeholder:"FILE" type:"path" help:"The transparency key's minisign secret key (minisign -G, encrypted, or -W, unencrypted)."`
	PasswordFile      string        `name:"password-file" placeholder:"FILE" type:"path" help:"File holding the secret key's password (first line). Otherwise $$BINTRANS_PASSWORD, otherwise a prompt on the terminal."`
	AuditLog          string        `name:"audit-log" placeholder:"FILE" type:"path" help:"Hash-chained audit log, one JSON line per logged signature (default: <state-dir>/audit.jsonl). Publish it for auditors."`
	StateDir          string        `name:"state-dir" default:"/var/lib/bintrans" placeholder:"DIR" type:"path" help:"State dir: the signer's intent journal for crash recovery and the log checkpoint it verified last (sign/)."`
	Jobs              int           `name:"jobs" short:"j" default:"8" placeholder:"N" help:"Packages signed and uploaded in parallel."`
	Keyring           string        `name:"keyring" default:"/etc/pacman.d/gnupg" placeholder:"DIR" type:"path" help:"GnuPG keyring of the repository's packagers (pubring.gpg or pubring.kbx, and trustdb.gpg), as pacman-key keeps it. Only keys it trusts fully release a package. It is copied, never written."`
	ReleaseSignatures string        `name:"release-signatures" default:"auto" enum:"auto,db,package" placeholder:"MODE" help:"Which packager signature releases a package: db (the database's <repo>.db.sig, repo-add --sign), package (each package's signature: the database's %PGPSIG% or <package>.sig, over the package file: reads every package), auto (db when <repo>.db.sig exists, else package)."`
	UnsafeTrustDB     bool          `name:"unsafe-trust-db" help:"UNSAFE: check no packager signature; sign whatever %SHA256SUM% the database claims, and accept plain http://. Whoever can change the database gets any file signed and logged. The audit flags every such entry."`
	VerifyDownloads   bool          `name:"verify-downloads" help:"Also download and hash every package when the database's signature releases them; refuse a package whose sha256 differs from the database's."`
	RefreshBundles    bool          `name:"refresh-bundles" help:"Re-prove every published bundle against the log's current tree, not only this run's (one checkpoint for the whole signature dir)."`
	JSON              bool          `name:"json" help:"Print the run's summary as JSON on stdout."`
	StatementInterval time.Duration `name:"statement-interval" default:"24h" placeholder:"DURATION" help:"Re-issue the repository statement of an unchanged database when the last one is this old (the heartbeat that keeps clients' --max-db-age from refusing a quiet repository; clients allow 7 days by default). Run sign at least hourly (hooks/bintrans-sign.timer)."`
	Witness           []string      `name:"witness" sep:"none" placeholder:"URL" help:"Rekor v2: ask this witness (C2SP tlog-witness: POST <URL>/add-checkpoint) to cosign the checkpoint the run's bundles are settled on; its cosignature goes into every bundle. Repeatable. Its key comes from --witness-policy (a witness line with this URL): a witness key is never trusted on first use. Without --witness, sign asks every witness of --witness-policy that has a URL."`
	LogInflight       int           `name:"log-inflight" default:"256" placeholder:"N" help:"Rekor v2: entries being added at once (1-4096). Rekor v2 answers an add after about a second, so a run logs about N entries per second."`

	// --log-url, --log-key: every entry is verified under the pinned log
	// key before anything is published.
	LogFlags `embed:""`
	NetFlags `embed:""`
}

// Help is the long help of `bintrans sign --help`.
func (SignCmd) Help() string { return signHelp }

// signHelp is the long help of `bintrans sign --help`.
const signHelp = `For every package of the sync databases <repo-url>/<repo>.db (for each
--repo-name and --architecture): establish that the repository's packagers
released it (below), sign its sha256 (%SHA256SUM% of the database, a
64-character lowercase hex string) with the transparency key (minisign,
prehashed, trusted comment = file name), log the signature in the
transparency log (--log-kind, below), verify the log's answer under --log-key, append a record to the audit log
(fsync'ed), and only then publish <filename>.t and <filename>.t.bundle in
--signature-dir (atomically).

Packages whose .t and bundle already verify are skipped without touching the
network.

Release signatures. The transparency key vouches that a packager released
the file: sign signs nothing a packager did not sign first. With GnuPG, on
a private copy of --keyring (pacman's trust model: the signing key must be
valid through the keyring's web of trust, as pacman-key --populate and
--lsign-key make it; merely present, marginal, expired or revoked keys
release nothing), it verifies:

  db       <repo>.db.sig (repo-add --sign) over the database's exact bytes;
           it covers every %SHA256SUM% of the database, so no package is
           read: cheap, from anywhere.
  package  each package's own signature (makepkg --sign): the database's
           %PGPSIG%, else <package>.sig, over the package file, whose
           sha256 must be the database's. Reads every package: sign from
           the repository's own disk (a directory or file://), not over the
           network, when there are many.
  auto     db when <repo>.db.sig exists, else package (the default). A
           database signature that exists but does not verify refuses the
           whole database; it never falls back.

A package that no signature releases (missing, bad, unknown or untrusted
key, another file's signature, a package file that does not exist) is not
signed: it is listed on stderr and in the JSON summary (stage "release"),
and the audit log gets a refusal record for it (once per file and sha256).
Each signed package's audit record names the signature that released it:
"db" or "package", the signing key's fingerprint and the signature file's
sha256. Plain http:// repository URLs are refused.

--unsafe-trust-db restores the behaviour of bintrans before release
signatures: the database's %SHA256SUM% is signed as it is, and http:// is
accepted. Whoever controls the database (a mirror, a proxy, the network)
then gets any sha256 signed with the transparency key and logged; the
audit log's records have no release signature and 'bintrans audit' flags
every entry signed that way. Use it only for a repository whose packages
are not signed at all, and say so to its users.

An interrupted run (crash, kill -9, log down, disk full) leaves an
intent in --state-dir; the next run finishes it without ever logging a
signature twice. Failed packages are listed on stderr; run the same command
again to finish the job.

At the end of a run that published something, every bundle it wrote gets
a fresh inclusion proof at the newest tree head the run saw, is verified in
full again and rewritten atomically ("settle"; the proofs are computed from
the run's own entries, asking the log only for other writers' entries in
between), so that all of the run's bundles carry one checkpoint: a verifier then checks one
checkpoint signature and one consistency proof for the whole run instead of
one per upload. Before anything is rewritten, the log's current checkpoint
is proven consistent with the one this signer stored in --state-dir
(sign/checkpoint.json) last time; then it replaces it. A log that cannot be
reached at that point is a warning (the bundles stay as published, valid);
a log that contradicts itself is an error, and nothing published is ever
removed.

--refresh-bundles settles every published bundle of the databases, not
only this run's, on the log's current tree (each entry re-fetched from the
log in parallel batches of 10). Run it after a batch of runs that each published a little
(each run's bundles carry that run's checkpoint), before a mirror re-syncs
the whole signature dir anyway, or when the log's operator asks clients to
move to a newer tree head: verifiers then pay for one checkpoint for the
whole repository.

An encrypted (minisign -G) secret key is decrypted at most once per run,
and only when a package needs a new signature (scrypt: about 2.4 s and 1 GB
of RAM). Its password comes from --password-file, else $BINTRANS_PASSWORD,
else a prompt on the terminal; it is never echoed, printed or logged.

Examples:
  # sign core and extra for x86_64, from the repository's own disk; the
  # packagers' keys are in pacman's keyring (the default --keyring)
  bintrans sign --repo-url '/srv/repo/$repo/os/$arch' \
      --repo-name core --repo-name extra --architecture x86_64 \
      --signature-dir /srv/transparency --pubkey-path /etc/bintrans/key.pub \
      --seckey-path /etc/bintrans/key.sec --password-file /run/secrets/pw \
      --log-url https://rekor.example.org --log-key /etc/bintrans/rekor.pem

  # a repository whose database is signed (repo-add --sign), over https,
  # with its own keyring: require the database signature
  bintrans sign --repo-url 'https://repo.example.org/$repo/$arch' \
      --repo-name myrepo --release-signatures db --keyring /etc/bintrans/gnupg \
      --signature-dir /srv/transparency --pubkey-path /etc/bintrans/key.pub \
      --seckey-path /etc/bintrans/key.sec \
      --log-url https://rekor.example.org --log-key /etc/bintrans/rekor.pem

  # after many small runs: re-prove every published bundle on one tree head
  bintrans sign --refresh-bundles --repo-url '/srv/repo/$repo/os/$arch' \
      --repo-name core --repo-name extra --signature-dir /srv/transparency \
      --pubkey-path /etc/bintrans/key.pub --seckey-path /etc/bintrans/key.sec \
      --log-url https://rekor.example.org --log-key /etc/bintrans/rekor.pem

  # sign into a Rekor v2 shard (entries written to one host, tiles read
  # from another), 512 adds in flight
  bintrans sign --repo-url '/srv/repo/$repo/os/$arch' --repo-name core \
      --signature-dir /srv/transparency --pubkey-path /etc/bintrans/key.pub \
      --seckey-path /etc/bintrans/key.sec --log-kind rekor-v2 \
      --log-url https://log2025-1.rekor.sigstore.dev \
      --log-read-url https://log2025-1.rekor.sigstore.dev \
      --log-origin log2025-1.rekor.sigstore.dev \
      --log-key /etc/bintrans/rekor-v2.pub --log-inflight 512

  # verify the audit log's hash chain afterwards
  bintrans audit verify-chain /var/lib/bintrans/audit.jsonl

` + signLogHelp + `

Exit codes: 0 every package is signed and published; 1 a package was
refused (no packager signature releases it, hash mismatch with
--verify-downloads, the same file name with two hashes, the log's entry
does not verify), or the log contradicted itself
(SECURITY ERROR: its tree is not consistent with the checkpoint stored in
--state-dir, or a re-fetched entry differs from the one published); 2 usage,
key or keyring error (a plain http:// URL without --unsafe-trust-db, no
gpg, a keyring without pubring or trustdb); 3 the run could not finish (log
unreachable, I/O error): run it again.`

// signSetup is what one `bintrans sign` reads from its flags and opens before
// the signer starts; close releases it (the secret key is wiped).
type signSetup struct {
	mode     signer.ReleaseMode
	pub      verify.PublicKey
	logKey   *rekorv1.LogKey // rekor-v1
	note     signer.NoteLog  // rekor-v2, sigsum
	logURL   string
	auditLog string
	// key is an unencrypted secret key; an encrypted one is decrypted by
	// loadKey, only if a package needs a new signature.
	key     *minisign.PrivateKey
	loadKey func() (*minisign.PrivateKey, error)
	keyring *signer.Keyring // nil with --unsafe-trust-db
}

func (r *signSetup) close() {
	if r.keyring != nil {
		r.keyring.Close()
	}
	if r.key != nil {
		r.key.Wipe()
	}
}

// Run signs the repositories: flags → signer → run → report → exit code.
func (c *SignCmd) Run(g *Globals) error {
	r := &signSetup{}
	defer r.close()
	if err := c.setup(g, r); err != nil {
		return err
	}
	s, err := c.newSigner(g, r)
	if err != nil {
		return err
	}
	sum, runErr := s.Run(g.Context(), signer.Sources(c.RepoURL, c.RepoName, c.Architecture))
	if err := s.Close(); err != nil && runErr == nil {
		runErr = err
	}
	sec, err := signRunError(runErr)
	if err != nil {
		return err
	}
	if err := c.report(g, r.auditLog, sum, sec); err != nil {
		return err
	}
	return signVerdict(g, sum, sec)
}

// setup checks the flags and opens what the run needs, in the order a
// user fixes them: flags, key files, the log, the directories, the secret
// key, the release keyring. Nothing is signed or written but the state dir.
func (c *SignCmd) setup(g *Globals, r *signSetup) error {
	var err error
	if r.mode, err = c.releaseMode(g); err != nil {
		return err
	}
	if r.pub, err = c.publicKey(); err != nil {
		return err
	}
	r.logURL = c.LogURL
	if c.LogKind == "rekor-v1" || c.LogKind == "" {
		if r.logKey, err = c.logKey(); err != nil {
			return err
		}
	} else if r.note, r.logURL, err = c.noteLog(); err != nil {
		return err
	}
	if fi, err := os.Stat(c.SignatureDir); err != nil || !fi.IsDir() {
		return usageErrorf("create it first (mkdir -p)", "--signature-dir %s is not a directory", c.SignatureDir)
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return runErrorf(err, "give a writable --state-dir", "cannot create the state dir: %v", err)
	}
	r.auditLog = c.AuditLog
	if r.auditLog == "" {
		r.auditLog = filepath.Join(c.StateDir, "audit.jsonl")
	}
	if err := c.openSecretKey(g, r); err != nil {
		return err
	}
	return c.openKeyring(g, r)
}

// releaseMode checks the run's numbers and returns what releases a
// package; --unsafe-trust-db is the only way to a plain http:// repository.
func (c *SignCmd) releaseMode(g *Globals) (signer.ReleaseMode, error) {
	if c.Jobs < 1 || c.Jobs > 256 {
		return "", usageErrorf("give a value between 1 and 256", "--jobs %d is out of range", c.Jobs)
	}
	if err := checkStatementInterval(g, c.StatementInterval); err != nil {
		return "", err
	}
	mode, err := signer.ParseReleaseMode(c.ReleaseSignatures)
	if err != nil {
		return "", usageErrorf("give auto, db or package", "--release-signatures: %v", err)
	}
	if c.UnsafeTrustDB {
		if mode != signer.ReleaseAuto {
			return "", usageErrorf("drop one of them", "--unsafe-trust-db checks no signature: it cannot be combined with --release-signatures %s", mode)
		}
		return signer.ReleaseUnsafeTrustDB, nil
	}
	if strings.HasPrefix(strings.ToLower(c.RepoURL), "http://") {
		return "", usageErrorf("use https://, file:// or a directory (a plain http:// repository is accepted only with --unsafe-trust-db)",
			"--repo-url %s: plain http:// refused", c.RepoURL)
	}
	return mode, nil
}

// publicKey reads --pubkey-path. As root, the secret key and the password
// file must be root's alone: checked here, before either is read.
func (c *SignCmd) publicKey() (verify.PublicKey, error) {
	pubText, err := readSmallFile(c.PubkeyPath, 4<<10)
	if err != nil {
		return verify.PublicKey{}, usageErrorf(fileHint(err, "give the .pub file written by minisign -G"), "cannot read --pubkey-path: %v", err)
	}
	if err := checkRootFile("--seckey-path", c.SeckeyPath); err != nil {
		return verify.PublicKey{}, err
	}
	if c.PasswordFile != "" {
		if err := checkRootFile("--password-file", c.PasswordFile); err != nil {
			return verify.PublicKey{}, err
		}
	}
	pub, err := verify.ParsePublicKey(string(pubText))
	if err != nil {
		return verify.PublicKey{}, usageErrorf("give the .pub file written by minisign -G", "--pubkey-path %s: %v", c.PubkeyPath, err)
	}
	return pub, nil
}

// openSecretKey reads the key file now (a missing or malformed key fails
// before any work); an encrypted key's password is obtained now too, but
// the key is decrypted (scrypt: seconds, 1 GB) only if a package needs a
// new signature.
func (c *SignCmd) openSecretKey(g *Globals, r *signSetup) error {
	sk, err := signer.OpenSecretKey(c.SeckeyPath)
	if err != nil {
		return keyUsageError(err)
	}
	if sk.IsEncrypted() {
		pw, err := c.password(g)()
		if err != nil {
			return keyUsageError(&signer.KeyError{Path: c.SeckeyPath, Reason: "encrypted", Err: err})
		}
		r.loadKey = func() (*minisign.PrivateKey, error) {
			err := signer.DecryptSecretKey(c.SeckeyPath, sk, func() (string, error) { return pw, nil })
			return sk, err
		}
		return nil
	}
	r.key = sk
	// A key of another pair is a usage error before anything else is set
	// up (an encrypted key is checked once it is decrypted).
	mpk, err := minisign.NewPublicKey(r.pub.Base64())
	if err == nil {
		err = signer.CheckKeyPair(sk, mpk)
	}
	if err != nil {
		return keyUsageError(err)
	}
	return nil
}

// openKeyring opens a private copy of the packagers' keyring, or warns
// that --unsafe-trust-db checks none.
func (c *SignCmd) openKeyring(g *Globals, r *signSetup) error {
	if r.mode == signer.ReleaseUnsafeTrustDB {
		fmt.Fprintf(g.Stderr, "bintrans: sign: WARNING: --unsafe-trust-db: no packager signature is checked; whoever can change %s gets any sha256 signed with the transparency key and logged (the audit flags these entries)\n",
			safetext.Line(location.Expand(c.RepoURL, "$repo", "$arch")))
		return nil
	}
	var err error
	r.keyring, err = signer.OpenKeyring(c.Keyring, "")
	if err != nil {
		return usageErrorf("give the packagers' keyring with --keyring DIR (pacman's: pacman-key --init && pacman-key --populate), and install gnupg",
			"cannot use the release keyring: %v", err)
	}
	return nil
}

// newSigner builds the signer: its HTTP clients, the Rekor v1 client, and
// the signer's own locks and checkpoint.
func (c *SignCmd) newSigner(g *Globals, r *signSetup) (*signer.Signer, error) {
	hc, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	// Databases, signatures and packages: no overall per-request timeout
	// (a package can take long); the signer bounds each with its own
	// deadline, and a stalled transfer still fails.
	nf := c.NetFlags
	nf.Timeout = -1
	dl, err := nf.httpClient()
	if err != nil {
		return nil, err
	}
	var log signer.Log
	if r.note == nil {
		v1, err := rekorv1.New(c.LogURL, hc)
		if err != nil {
			return nil, usageErrorf("give the log's base URL, e.g. https://rekor.sigstore.dev", "--log-url: %v", err)
		}
		log = v1
	}
	s, err := signer.New(signer.Options{
		Key: r.key, LoadKey: r.loadKey, PublicKey: r.pub,
		Log: log, LogKey: r.logKey, LogURL: r.logURL, Note: r.note,
		SignatureDir: c.SignatureDir, AuditLog: r.auditLog, StateDir: c.StateDir,
		Jobs: c.Jobs, VerifyDownloads: c.VerifyDownloads, HTTP: dl, RefreshBundles: c.RefreshBundles,
		Release: r.mode, Keyring: r.keyring,
		Version:  version,
		Progress: c.progress(g),
		// Statements, every run: clients find the statement of the exact
		// database they hold, and refuse a stale or rolled-back one.
		Statements: true, StatementInterval: c.StatementInterval,
	})
	if err != nil {
		var km *signer.KeyMismatchError
		if errors.As(err, &km) {
			return nil, usageErrorf("--seckey-path and --pubkey-path must be one minisign key pair", "%v", err)
		}
		var sce *signer.StoredCheckpointError
		if errors.As(err, &sce) {
			return nil, runErrorf(err, sce.Hint(), "%v", err)
		}
		return nil, runErrorf(err, "another bintrans sign may be running, or the audit log needs a human: run 'bintrans audit verify-chain "+r.auditLog+"'", "%v", err)
	}
	return s, nil
}

// signRunError sorts the signer's error: a key problem is a usage error,
// a *verify.SecurityError is returned as such (the run's summary is still
// reported), anything else means the run could not finish.
func signRunError(runErr error) (*verify.SecurityError, error) {
	var ke *signer.KeyError
	var km *signer.KeyMismatchError
	if errors.As(runErr, &ke) || errors.As(runErr, &km) {
		return nil, keyUsageError(runErr)
	}
	var sec *verify.SecurityError
	if runErr != nil && !errors.As(runErr, &sec) {
		return nil, runErrorf(runErr, "run the same command again to finish", "sign: %v", runErr)
	}
	return sec, nil
}

// report prints the run: each failed package on stderr, the summary on
// stdout (--json: as JSON), then the warnings.
func (c *SignCmd) report(g *Globals, auditLog string, sum *signer.Summary, sec *verify.SecurityError) error {
	for _, f := range sum.Failures {
		where := f.Filename
		if where == "" {
			where = f.URL
		}
		if f.Repo != "" {
			where = f.Repo + "/" + f.Arch + " " + where
		}
		what := string(f.Stage)
		if f.Stage == signer.StageRelease {
			what = "REFUSED, not signed"
		}
		fmt.Fprintf(g.Stderr, "bintrans: sign %s: %s: %s\n", safetext.Line(where), what, safetext.Message(f.Error))
	}
	if c.JSON {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err == nil {
			_, err = g.Stdout.Write(append(safetext.JSON(b), '\n'))
		}
		if err != nil {
			return runErrorf(err, "", "writing the summary: %v", err)
		}
	} else {
		printSignSummary(g.Stdout, auditLog, sum)
	}
	if sum.RemovedTempFiles > 0 {
		fmt.Fprintf(g.Stderr, "bintrans: sign: removed %d temp file(s) left by an interrupted run\n", sum.RemovedTempFiles)
	}
	if sum.TempFilesError != "" {
		fmt.Fprintf(g.Stderr, "bintrans: sign: warning: temp files of an interrupted run: %s\n", safetext.Message(sum.TempFilesError))
	}
	for _, w := range sum.WitnessErrors {
		fmt.Fprintf(g.Stderr, "bintrans: sign: warning: no cosignature: %s\n", safetext.Message(w))
	}
	if sum.SettleError != "" && sec == nil {
		fmt.Fprintf(g.Stderr, "bintrans: sign: warning: %d bundle(s) not settled, they stay as published and valid: %s\n", sum.SettleFailed, safetext.Message(sum.SettleError))
	}
	return nil
}

// printSignSummary is the text summary: how each database was released,
// the counts, the statements, the settled checkpoint and its cosigners.
func printSignSummary(w io.Writer, auditLog string, sum *signer.Summary) {
	for _, d := range sum.Databases {
		where := safetext.Line(d.Repo + "/" + d.Arch + " " + d.URL)
		switch {
		case d.ReleaseCheck == "db" && d.Release != nil:
			fmt.Fprintf(w, "%s: released by its signature, key %s\n", where, d.Release.Key)
		case d.ReleaseCheck == "package":
			fmt.Fprintf(w, "%s: each package's own signature checked\n", where)
		case d.ReleaseCheck == "none":
			fmt.Fprintf(w, "%s: UNSAFE: no packager signature checked (--unsafe-trust-db)\n", where)
		}
	}
	fmt.Fprintf(w, "%d packages: %d signed, %d already published, %d recovered, %d refused (no release signature), %d failed; audit log %s: head %d:%s (%.1fs)\n",
		sum.Packages, sum.Signed, sum.AlreadyPublished, sum.Recovered, sum.Refused, sum.Failed, safetext.Line(auditLog), sum.AuditHead.Records, sum.AuditHead.Hash, sum.Seconds)
	printStatements(w, sum.Statements)
	if sum.Checkpoint != nil {
		fmt.Fprintf(w, "%d bundles settled on %d tree head(s); log checkpoint %s size %d root %s stored (%.2fs)\n",
			sum.Settled, sum.BundleCheckpoints, safetext.Line(sum.Checkpoint.Origin), sum.Checkpoint.Size, sum.Checkpoint.Root, sum.SettleSeconds)
	}
	if len(sum.Cosignatures) > 0 {
		fmt.Fprintf(w, "checkpoint cosigned by %d witness(es): %s\n", len(sum.Cosignatures), safetext.Line(strings.Join(sum.Cosignatures, ", ")))
	}
}

// signVerdict is the run's exit: a SECURITY ERROR (with its evidence on
// stderr) first, then a failure the next run can finish (3), a package no
// packager released (1), any other refusal (1), and last a published
// bundle the log contradicts (1).
func signVerdict(g *Globals, sum *signer.Summary, sec *verify.SecurityError) error {
	if sec != nil {
		// The evidence, in full: both signed tree heads.
		fmt.Fprintf(g.Stderr, "bintrans: %s\n", safetext.Text(sec.Error()))
		return verificationFailed("keep both tree heads above and report them: the log showed two histories; everything published stays, the stored checkpoint was not replaced",
			"SECURITY ERROR: the transparency log is inconsistent with what this signer verified before (%d packages published in this run)", sum.Signed+sum.Recovered)
	}
	if sum.Failed == 0 {
		return nil
	}
	for _, f := range sum.Failures {
		switch f.Stage {
		case signer.StageDB, signer.StageIntent, signer.StageUpload, signer.StageAudit, signer.StagePublish, signer.StageCanceled:
			return runErrorf(nil, "fix the cause above and run the same command again: it finishes the job without duplicates",
				"%d of %d packages could not be signed and published", sum.Failed, sum.Packages)
		}
	}
	for _, f := range sum.Failures {
		if f.Stage == signer.StageRelease {
			return verificationFailed("no packager signature released the packages (or databases) above: nothing was signed for them and the audit log records the refusal; if they are genuine, have the packager sign them, or add and trust the packager's key in --keyring",
				"%d of %d packages refused", sum.Failed, sum.Packages)
		}
	}
	for _, f := range sum.Failures {
		if f.Stage != signer.StageSettle {
			return verificationFailed("the packages above were refused; nothing was published for them",
				"%d of %d packages refused", sum.Failed, sum.Packages)
		}
	}
	return verificationFailed("those packages are published, with the proof of their upload; the log's later answer for them contradicts it: keep the output and investigate the log",
		"the log contradicts %d published bundle(s)", sum.Failed)
}

// keyUsageError maps a secret key problem to a usage error with a hint.
func keyUsageError(err error) error {
	var km *signer.KeyMismatchError
	switch {
	case errors.Is(err, signer.ErrNoPassword):
		return usageErrorf("give --password-file FILE, set "+passwordEnv+", or run on a terminal to be asked", "%v", err)
	case errors.As(err, &km):
		return usageErrorf("--seckey-path and --pubkey-path must be one minisign key pair", "%v", err)
	}
	return usageErrorf("check --seckey-path and the password", "%v", err)
}

// progress draws a bar per phase on a terminal (nothing otherwise).
func (c *SignCmd) progress(g *Globals) func(done, total int) {
	var bar *progress.Bar
	return func(done, total int) {
		if done == 1 {
			bar = progress.New(g.Stderr, total, "signing")
		}
		bar.Add(1)
		if done == total {
			bar.Done()
		}
	}
}

// password returns the secret key's password source: --password-file, then
// $BINTRANS_PASSWORD, then a no-echo prompt when stdin is a terminal.
func (c *SignCmd) password(g *Globals) signer.PasswordFunc {
	return func() (string, error) {
		if c.PasswordFile != "" {
			b, err := readSmallFile(c.PasswordFile, maxPasswordFile)
			if err != nil {
				return "", fmt.Errorf("--password-file: %w", err)
			}
			pw, _, _ := strings.Cut(string(b), "\n")
			clear(b)
			return strings.TrimSuffix(pw, "\r"), nil
		}
		if pw, ok := os.LookupEnv(passwordEnv); ok {
			os.Unsetenv(passwordEnv) // not inherited by anything this process starts
			return pw, nil
		}
		if f, ok := g.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprintf(g.Stderr, "Password for %s: ", c.SeckeyPath)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(g.Stderr)
			if err != nil {
				return "", err
			}
			pw := string(b)
			clear(b)
			return pw, nil
		}
		return "", signer.ErrNoPassword
	}
}

// readSmallFile reads a whole file of at most max bytes; as root, only a
// file that no one but root can have written (rootfile).
func readSmallFile(path string, max int64) ([]byte, error) {
	if err := rootfile.Check(path); err != nil {
		return nil, err
	}
	return durable.ReadFile(path, max)
}
