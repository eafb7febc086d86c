package signer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/verify"
)

// ReleaseMode is how sign establishes that a package is one the
// repository's packagers released, before it signs the package's sha256.
type ReleaseMode string

// The release modes (the values of sign --release-signatures).
const (
	// ReleaseAuto: the database's signature when <repo>.db.sig exists,
	// else each package's signature. The default.
	ReleaseAuto ReleaseMode = "auto"
	// ReleaseDBSig: the database's detached signature (repo-add --sign) is
	// required; it covers every %SHA256SUM% of the database, so no package
	// is read.
	ReleaseDBSig ReleaseMode = "db"
	// ReleasePackageSig: each package's detached signature (makepkg
	// --sign), from the database's %PGPSIG% or <filename>.sig, verified
	// over the package file, whose sha256 must be the database's (as
	// pacman checks it). Reads every package.
	ReleasePackageSig ReleaseMode = "package"
	// ReleaseUnsafeTrustDB signs the database's %SHA256SUM% with no
	// packager signature: whoever controls the database (a mirror, the
	// network for http://) gets any hash signed. --unsafe-trust-db.
	ReleaseUnsafeTrustDB ReleaseMode = "unsafe-trust-db"
)

// ParseReleaseMode checks a --release-signatures value.
func ParseReleaseMode(s string) (ReleaseMode, error) {
	switch m := ReleaseMode(s); m {
	case ReleaseAuto, ReleaseDBSig, ReleasePackageSig:
		return m, nil
	}
	return "", fmt.Errorf("%q is not auto, db or package", s)
}

// DefaultKeyring is pacman's keyring (pacman-key --init, --populate).
const DefaultKeyring = "/etc/pacman.d/gnupg"

// MaxReleaseSigSize bounds a detached OpenPGP signature (a packager's is
// about 120 to 600 bytes).
const MaxReleaseSigSize = 64 << 10

// gpgTimeout bounds one gpg run over a signature that is in hand (a
// package's data streams in under the package's own deadline).
const gpgTimeout = 2 * time.Minute

// Release is a verified packager signature.
type Release struct {
	// Kind is audit.ReleaseDB or audit.ReleasePackage.
	Kind string `json:"kind"`
	// Key is the fingerprint of the primary key of the OpenPGP key that
	// made the signature (upper-case hex).
	Key string `json:"key"`
	// SigSHA256 is the hex sha256 of the detached signature's bytes.
	SigSHA256 string `json:"sig_sha256"`
}

// ReleaseError is a packager signature that is missing or does not
// establish the release: the package (or database) is refused, not
// signed.
type ReleaseError struct {
	// What is refused: a package file name or a database URL.
	What string
	// Reason says why, in the words of the check that failed (never the
	// signer's user id: key owners choose those).
	Reason string
}

func (e *ReleaseError) Error() string {
	return e.What + ": " + e.Reason
}

// Keyring verifies detached OpenPGP signatures with GnuPG (gpg) against a
// private copy of a keyring directory, with pacman's trust model: a
// signature counts only if it is good, made by a key that is neither
// expired nor revoked, and that the keyring's web of trust makes fully (or
// ultimately) valid: gpg --trust-model pgp, the validity pacman's default
// SigLevel (TrustedOnly) requires. A key merely present in the keyring,
// or only marginally valid, does not release anything.
//
// The copy (pubring.gpg or pubring.kbx, and trustdb.gpg) is taken once,
// into a temporary GNUPGHOME: gpg never writes to the operator's keyring,
// never reads ~/.gnupg or any gpg.conf (--no-options) and never fetches
// keys.
type Keyring struct {
	gpg  string
	home string
	src  string
	n    atomic.Int64 // signature temp files
}

// OpenKeyring copies the keyring in dir and checks that gpg runs on it.
// gpg is the gpg program ("" looks up "gpg" in $PATH).
func OpenKeyring(dir, gpg string) (*Keyring, error) {
	if gpg == "" {
		gpg = "gpg"
	}
	path, err := exec.LookPath(gpg)
	if err != nil {
		return nil, fmt.Errorf("GnuPG (%s) is needed to verify the packagers' signatures: %w", gpg, err)
	}
	var found []string
	for _, name := range []string{"pubring.kbx", "pubring.gpg", "trustdb.gpg"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
			found = append(found, name)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("keyring %s: %w", dir, err)
		}
	}
	switch {
	case len(found) == 0 || (len(found) == 1 && found[0] == "trustdb.gpg"):
		return nil, fmt.Errorf("keyring %s has no public keyring (pubring.gpg or pubring.kbx)", dir)
	case found[len(found)-1] != "trustdb.gpg":
		return nil, fmt.Errorf("keyring %s has no trust database (trustdb.gpg): no key in it is trusted", dir)
	}
	home, err := os.MkdirTemp("", "bintrans-gnupg-")
	if err != nil {
		return nil, err
	}
	k := &Keyring{gpg: path, home: home, src: dir}
	for _, name := range found {
		if err := copyFile(filepath.Join(dir, name), filepath.Join(home, name)); err != nil {
			k.Close()
			return nil, fmt.Errorf("copying keyring %s: %w", dir, err)
		}
	}
	// Bring the copy's validity up to date once, so that the parallel
	// verifications only read it.
	ctx, cancel := context.WithTimeout(context.Background(), gpgTimeout)
	defer cancel()
	if out, err := k.command(ctx, "--check-trustdb").CombinedOutput(); err != nil {
		k.Close()
		return nil, fmt.Errorf("gpg --check-trustdb on a copy of %s: %v: %s", dir, err, bytes.TrimSpace(out))
	}
	return k, nil
}

// Dir is the keyring directory the copy was taken from.
func (k *Keyring) Dir() string { return k.src }

// Close removes the private copy.
func (k *Keyring) Close() error {
	if k.home == "" {
		return nil
	}
	err := os.RemoveAll(k.home)
	k.home = ""
	return err
}

func (k *Keyring) command(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{"--homedir", k.home, "--no-options", "--batch", "--no-tty", "--trust-model", "pgp",
		"--no-auto-key-retrieve", "--no-auto-key-locate", "--lock-never"}
	cmd := exec.CommandContext(ctx, k.gpg, append(base, args...)...)
	env := []string{"GNUPGHOME=" + k.home, "LC_ALL=C"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GNUPGHOME=") && !strings.HasPrefix(kv, "LC_ALL=") && !strings.HasPrefix(kv, "GPG_AGENT_INFO=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Verify checks the detached signature sig over the bytes of data (read to
// the end exactly once, streamed into gpg). It returns the signing key's
// primary fingerprint and the signature's sha256, or a *ReleaseError when
// the signature does not release the data (what names the data in it),
// or another error when the data could not be read or gpg could not run.
func (k *Keyring) Verify(ctx context.Context, what string, sig []byte, data io.Reader) (*Release, error) {
	refuse := func(format string, a ...any) (*Release, error) {
		return nil, &ReleaseError{What: what, Reason: fmt.Sprintf(format, a...)}
	}
	if len(sig) == 0 {
		return refuse("the signature is empty")
	}
	if len(sig) > MaxReleaseSigSize {
		return refuse("the signature is larger than %d bytes", MaxReleaseSigSize)
	}
	sigPath := filepath.Join(k.home, fmt.Sprintf("sig-%d", k.n.Add(1)))
	if err := os.WriteFile(sigPath, sig, 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(sigPath)
	var status bytes.Buffer
	// The copy's validity was brought up to date by OpenKeyring: parallel
	// verifications only read it (no trustdb check writing under them).
	cmd := k.command(ctx, "--no-auto-check-trustdb", "--status-fd", "1", "--verify", sigPath, "-")
	in := &trackedReader{r: data}
	cmd.Stdin = in
	cmd.Stdout = &limitedBuffer{b: &status, max: 64 << 10}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 4 << 10}
	runErr := cmd.Run()
	if in.err != nil && !errors.Is(in.err, io.EOF) {
		return nil, in.err // the data could not be read: not a verdict
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	st := parseStatus(status.Bytes())
	sum := sha256.Sum256(sig)
	switch {
	case st.sigs == 0:
		return refuse("not an OpenPGP signature (gpg found none)")
	case st.sigs > 1:
		return refuse("%d signatures in one file; bintrans accepts exactly one", st.sigs)
	case st.has("NO_PUBKEY"):
		return refuse("signed by key %s, which is not in the keyring", st.arg("NO_PUBKEY", 0))
	case st.has("BADSIG"):
		return refuse("BAD signature by key %s: the signed data differ", st.arg("BADSIG", 0))
	case st.has("ERRSIG"):
		return refuse("the signature by key %s cannot be checked (gpg error %s)", st.arg("ERRSIG", 0), st.arg("ERRSIG", 5))
	case st.has("REVKEYSIG"):
		return refuse("signed by key %s, which is revoked", st.arg("REVKEYSIG", 0))
	case st.has("EXPKEYSIG"):
		return refuse("signed by key %s, which has expired", st.arg("EXPKEYSIG", 0))
	case st.has("EXPSIG"):
		return refuse("the signature by key %s has expired", st.arg("EXPSIG", 0))
	case !st.has("GOODSIG") || !st.has("VALIDSIG"):
		return refuse("gpg did not report a good signature")
	}
	fpr := st.arg("VALIDSIG", 0)
	if p := st.arg("VALIDSIG", 9); p != "" {
		fpr = p // the primary key's fingerprint
	}
	if !isFingerprint(fpr) {
		return refuse("gpg reported no fingerprint for the signing key")
	}
	if class := st.arg("VALIDSIG", 8); class != "00" {
		return refuse("the signature by key %s is of class %s, not a binary document signature (00)", fpr, class)
	}
	switch {
	case st.has("TRUST_ULTIMATE"), st.has("TRUST_FULLY"):
	case st.has("TRUST_MARGINAL"):
		return refuse("signed by key %s, which the keyring trusts only marginally (pacman's default SigLevel refuses it too)", fpr)
	case st.has("TRUST_NEVER"):
		return refuse("signed by key %s, which the keyring distrusts", fpr)
	default:
		return refuse("signed by key %s, which is in the keyring but not trusted (no valid signature from a trusted key: pacman-key --lsign-key it, or --populate)", fpr)
	}
	if runErr != nil {
		return nil, fmt.Errorf("gpg --verify: %v (%s)", runErr, bytes.TrimSpace(stderr.Bytes()))
	}
	if !in.eof {
		return refuse("gpg stopped before the end of the data")
	}
	return &Release{Key: fpr, SigSHA256: hex.EncodeToString(sum[:])}, nil
}

// gpgStatus is gpg's --status-fd output: keyword → arguments (the last
// occurrence), and the number of signatures (NEWSIG lines).
type gpgStatus struct {
	sigs int
	kw   map[string][]string
}

func parseStatus(b []byte) gpgStatus {
	st := gpgStatus{kw: map[string][]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "[GNUPG:]" {
			continue
		}
		if f[1] == "NEWSIG" {
			st.sigs++
		}
		st.kw[f[1]] = f[2:]
	}
	return st
}

func (s gpgStatus) has(kw string) bool { _, ok := s.kw[kw]; return ok }

func (s gpgStatus) arg(kw string, i int) string {
	a := s.kw[kw]
	if i < len(a) {
		return a[i]
	}
	return ""
}

func isFingerprint(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// trackedReader remembers whether its reader reached the end, and the
// first error other than EOF.
type trackedReader struct {
	r   io.Reader
	eof bool
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.eof = true
	} else if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// releaseDB establishes what releases the packages of db, per the release
// mode: the database's own signature (verified now, kept in db.Release),
// each package's signature (checked per package), or nothing under
// --unsafe-trust-db. A database whose signature is required or present
// but does not verify is a *ReleaseError: none of its packages is signed.
func (s *Signer) releaseDB(ctx context.Context, db *DB) (string, error) {
	switch s.o.Release {
	case ReleaseUnsafeTrustDB:
		return "none", nil
	case ReleasePackageSig:
		return audit.ReleasePackage, nil
	}
	sigURL := db.Source.DBSigURL()
	sig, err := fetchFile(ctx, s.o.HTTP, sigURL, MaxReleaseSigSize)
	var tl *httpclient.TooLargeError
	switch {
	case errors.Is(err, verify.ErrNotFound) && s.o.Release == ReleaseDBSig:
		return "", &ReleaseError{What: db.URL, Reason: "no database signature " + sigURL + " (--release-signatures db requires one: repo-add --sign)"}
	case errors.Is(err, verify.ErrNotFound):
		return audit.ReleasePackage, nil // auto: each package's own signature
	case errors.As(err, &tl):
		return "", &ReleaseError{What: db.URL, Reason: fmt.Sprintf("the database signature %s is larger than %d bytes", sigURL, MaxReleaseSigSize)}
	case err != nil:
		return "", fmt.Errorf("database signature: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, gpgTimeout)
	defer cancel()
	rel, err := s.o.Keyring.Verify(ctx, db.URL, sig, bytes.NewReader(db.raw))
	if err != nil {
		var re *ReleaseError
		if errors.As(err, &re) {
			re.Reason = "database signature " + sigURL + ": " + re.Reason
		}
		return "", err
	}
	rel.Kind = audit.ReleaseDB
	db.Release = rel
	return audit.ReleaseDB, nil
}

// release establishes that the package of j was released: by its
// database's verified signature, or by its own signature (the database's
// %PGPSIG%, else <filename>.sig) verified over the package file, whose
// sha256 must be the database's. Under --unsafe-trust-db it returns nil.
// A missing or bad signature, a missing package file or another sha256 is
// a *ReleaseError; an error reading them is not.
func (s *Signer) release(ctx context.Context, j *job) (*Release, error) {
	switch j.check {
	case "none":
		return nil, nil
	case audit.ReleaseDB:
		if j.db.Release == nil {
			return nil, errors.New("publish: database release not established")
		}
		return j.db.Release, nil
	}
	p := j.pkg
	refuse := func(format string, a ...any) (*Release, error) {
		return nil, &ReleaseError{What: p.Filename, Reason: fmt.Sprintf(format, a...)}
	}
	var sig []byte
	if p.PGPSig != "" {
		b, err := base64.StdEncoding.DecodeString(p.PGPSig)
		if err != nil {
			return refuse("the database's %%PGPSIG%% is not base64")
		}
		sig = b
	} else {
		u := j.src.PackageURL(p.Filename + ".sig")
		b, err := fetchFile(ctx, s.o.HTTP, u, MaxReleaseSigSize)
		var tl *httpclient.TooLargeError
		switch {
		case errors.Is(err, verify.ErrNotFound):
			return refuse("no packager signature: the database has no %%PGPSIG%% for it and %s does not exist", u)
		case errors.As(err, &tl):
			return refuse("the package signature %s is larger than %d bytes", u, MaxReleaseSigSize)
		case err != nil:
			return nil, fmt.Errorf("package signature: %w", err)
		}
		sig = b
	}
	ctx, cancel := context.WithTimeout(ctx, packageTimeout)
	defer cancel()
	r, err := openPackage(ctx, s.o.HTTP, j.src, p.Filename)
	if errors.Is(err, verify.ErrNotFound) {
		return refuse("the package file %s does not exist: no packager signed what the database claims", j.src.PackageURL(p.Filename))
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rel, err := s.o.Keyring.Verify(ctx, p.Filename, sig, r)
	if err != nil {
		return nil, err
	}
	if got := r.sum(); got != p.SHA256Sum {
		return refuse("the packager signed a file whose sha256 is %s, but the database says %s", got, p.SHA256Sum)
	}
	rel.Kind = audit.ReleasePackage
	return rel, nil
}

// refusalKey identifies a refusal in the audit log: a package file and its
// sha256, or a database file and its sha256.
func refusalKey(r audit.Record) string {
	if r.SHA256 != "" {
		return r.Filename + "\x00" + r.SHA256
	}
	return r.Filename + "\x00db\x00" + r.DBSHA256
}

// refuse appends a refusal record for r (package or database fields set)
// unless the audit log has one for the same file and sha256 already. An
// error means the audit log could not be written: the run stops.
func (s *Signer) refuse(r audit.Record, why *ReleaseError) error {
	r.Refused = safetext.Message(why.Reason)
	r.LogURL, r.KeyID, r.BintransVersion = s.o.LogURL, s.keyID, s.o.Version
	r.ReleaseSig, r.ReleaseKey, r.ReleaseSigSHA256 = "", "", ""
	r.LogIndex, r.UUID, r.IntegratedTime, r.Time = 0, "", 0, ""
	key := refusalKey(r)
	s.auditedMu.Lock()
	if s.refusedRecs[key] {
		s.auditedMu.Unlock()
		return nil
	}
	s.refusedRecs[key] = true
	s.auditedMu.Unlock()
	if _, err := s.audit.Append(r); err != nil {
		return err
	}
	return nil
}
