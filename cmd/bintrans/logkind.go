package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// The kinds of transparency log (--log-kind).
const (
	kindRekorV1 = rekorv1.Kind
	kindRekorV2 = rekorv2.KindName
	kindSigsum  = sigsum.KindName
)

// LogFlags name the transparency log: its kind, where it is, its pinned
// identity (key, origin) and the witnesses its checkpoints need. One struct
// for every command that talks to a log (sign, hook, verify, fetch, scan,
// monitor, audit, doctor): one vocabulary, the same config-file keys.
// logSetup turns them into the engine's parts (verify, hook, fetch, scan);
// logKey is the Rekor v1 key for the commands that speak only Rekor v1 so
// far.
type LogFlags struct {
	LogKind           string        `help:"Kind of transparency log: rekor-v1 (sigstore Rekor's REST API; the public log is the default), rekor-v2 (a tile-based rekor-tiles log: --log-url, --log-key and usually --log-origin are required, no default), sigsum (a Sigsum log and witnesses, named by --sigsum-policy; proofs are verified offline against the policy)." enum:"rekor-v1,rekor-v2,sigsum" default:"rekor-v1" placeholder:"KIND"`
	LogURL            string        `help:"Base URL of the log. rekor-v1: its REST API. rekor-v2: where entries are written (sign), and where tiles are read unless --log-read-url is given." default:"${default_log_url}" placeholder:"URL"`
	LogReadURL        string        `help:"rekor-v2: where the log's checkpoint and tiles are served (<URL>/checkpoint, <URL>/tile/…). Default: --log-url." placeholder:"URL"`
	LogKey            string        `help:"File holding the log's pinned public key. rekor-v1: PEM (GET /api/v1/log/publicKey); default: the public sigstore Rekor's key, only for the default --log-url. rekor-v2: a PEM Ed25519 key (then --log-origin is required) or a signed-note verifier key line (origin+hash+key, as the log prints it). Never trusted on first use." placeholder:"FILE"`
	LogShard          []string      `help:"rekor-v2: one shard of a log that rotates, as 'ORIGIN URL READ_URL KEYFILE NOT_BEFORE NOT_AFTER' (READ_URL '-': URL; NOT_BEFORE, NOT_AFTER: a date such as 2026-07-01 (00:00 UTC), an RFC 3339 time, or '-' for unbounded). Repeatable, one per shard; replaces --log-url, --log-read-url, --log-key and --log-origin. sign writes to the shard whose window holds the time of signing; clients accept a bundle of any listed shard whose window has begun (an origin change is a configuration event, not a SECURITY ERROR); monitor and audit read every shard." placeholder:"'ORIGIN URL READ_URL KEYFILE NOT_BEFORE NOT_AFTER'" sep:"none"`
	LogOrigin         string        `help:"rekor-v2: the checkpoint origin pinned with --log-key (the log's --hostname, e.g. log2025-1.rekor.sigstore.dev). Required with a PEM key; with a verifier key, it must equal the key's name." placeholder:"ORIGIN"`
	WitnessPolicy     string        `help:"Witness policy file (C2SP tlog-policy: 'witness NAME KEY [URL]', 'group NAME K|any|all MEMBER…', 'quorum NAME'; Sigsum's policy syntax is accepted too). A checkpoint then counts only with the quorum of witness cosignatures: offline every bundle's checkpoint, online the log's current one (monitor and audit, rekor-v2: the checkpoint they tail to). rekor-v2: the pinned log is added to the policy; rekor-v1: the policy must name the log ('log VKEY'). Not with sigsum (its policy has the witnesses). Default: no quorum." placeholder:"FILE"`
	SigsumPolicy      string        `help:"sigsum: the Sigsum policy file (the logs, the witnesses and the quorum every proof's tree head must meet). Required with --log-kind sigsum." placeholder:"FILE"`
	MaxCosignatureAge time.Duration `help:"Refuse witness cosignatures older than this (and more than 5m in the future), with --witness-policy or --log-kind sigsum. 0: no age limit (a cosigned checkpoint proves the witnesses saw it, whenever that was)." default:"0s" placeholder:"DURATION"`
}

// logKey returns the pinned Rekor v1 log key. A non-default log without
// --log-key is refused: the log key is what makes every proof meaningful.
// It is for the commands that speak only Rekor v1: another --log-kind, or
// a witness policy, which they would not enforce, is refused (exit 2).
func (f *LogFlags) logKey() (*rekorv1.LogKey, error) {
	if f.LogKind != "" && f.LogKind != kindRekorV1 {
		return nil, usageErrorf("verify, hook, fetch and scan take --log-kind "+f.LogKind+"; use --log-kind rekor-v1 here (or drop 'log-kind' from /etc/bintrans.conf for this command)",
			"--log-kind %s: this command works with Rekor v1 logs only so far", f.LogKind)
	}
	if len(f.LogShard) > 0 {
		return nil, usageErrorf("add --log-kind rekor-v2, or drop --log-shard", "--log-shard is for --log-kind rekor-v2 (a log that rotates shards)")
	}
	if f.WitnessPolicy != "" || f.SigsumPolicy != "" {
		return nil, usageErrorf("verify, hook, fetch and scan enforce witness policies; drop --witness-policy/--sigsum-policy here",
			"this command does not enforce a witness policy yet, and will not pretend to")
	}
	return f.rekorV1Key()
}

// rekorV1Key parses --log-key as a Rekor v1 PEM key (default: the public
// sigstore Rekor's, for the default --log-url only).
func (f *LogFlags) rekorV1Key() (*rekorv1.LogKey, error) {
	var pemBytes []byte
	switch {
	case f.LogKey != "":
		b, err := readSmallFile(f.LogKey, 16<<10)
		if err != nil {
			return nil, usageErrorf(fileHint(err, "check the path given to --log-key"), "--log-key: %v", err)
		}
		pemBytes = b
	case strings.TrimRight(f.LogURL, "/") == DefaultLogURL:
		pemBytes = []byte(publicRekorKey)
	default:
		return nil, usageErrorf("pin the log's key: curl "+strings.TrimRight(f.LogURL, "/")+"/api/v1/log/publicKey > rekor.pub, check it out of band, then --log-key rekor.pub",
			"--log-url %s needs --log-key: bintrans never trusts a log key on first use", f.LogURL)
	}
	k, err := rekorv1.ParseLogKey(pemBytes)
	if err != nil {
		return nil, usageErrorf("the file must be the log's PEM public key (GET /api/v1/log/publicKey)", "--log-key: %v", err)
	}
	return k, nil
}

// logSetup is the engine's view of the configured log: the pure verifier,
// the online side, the witness quorum, and where its checkpoint is kept.
type logSetup struct {
	// Verifier is the kind's verify.LogVerifier.
	Verifier verify.LogVerifier
	// Witnesses is the quorum (--witness-policy), or nil.
	Witnesses verify.Witnesses
	// StateID names the log's checkpoint file in the state directory.
	StateID string
	// OfflineOnly: the kind is verified from its proofs alone (sigsum:
	// the witness quorum in every proof stands for the online check).
	OfflineOnly bool
	// online builds the online side over hc.
	online func(hc *http.Client) (verify.LogClient, error)
	// Where the log is read, for messages.
	where string
	// shards is the online side of a log with --log-shard (its stores
	// are bound to the state directory once it is open), or nil.
	shards *shardedOnline
}

// bindState gives a log with shards the state directory its shards'
// checkpoints are stored in (readOnly: read, never written).
func (s *logSetup) bindState(sd *state.Dir, readOnly bool) {
	if s.shards != nil {
		s.shards.bindState(sd, readOnly)
	}
}

// logSetup checks the log flags and builds the kind's parts. Every
// mistake is a usage error (exit 2) naming the flag.
func (f *LogFlags) logSetup() (*logSetup, error) {
	if f.MaxCosignatureAge < 0 {
		return nil, usageErrorf("give a duration such as 24h, or 0 for no limit", "--max-cosignature-age %s is negative", f.MaxCosignatureAge)
	}
	if len(f.LogShard) > 0 && f.LogKind != kindRekorV2 {
		return nil, usageErrorf("add --log-kind rekor-v2, or drop --log-shard", "--log-shard is for --log-kind rekor-v2 (a log that rotates shards)")
	}
	var s *logSetup
	var err error
	switch f.LogKind {
	case "", kindRekorV1:
		s, err = f.rekorV1Setup()
	case kindRekorV2:
		s, err = f.rekorV2Setup()
	case kindSigsum:
		return f.sigsumSetup()
	default:
		return nil, usageErrorf("use --log-kind rekor-v1, rekor-v2 or sigsum", "--log-kind %q: unknown kind of log", f.LogKind)
	}
	if err != nil {
		return nil, err
	}
	if f.SigsumPolicy != "" {
		return nil, usageErrorf("drop --sigsum-policy, or use --log-kind sigsum (a witness quorum for "+f.LogKind+" is --witness-policy)", "--sigsum-policy is for --log-kind sigsum")
	}
	return s, nil
}

func (f *LogFlags) rekorV1Setup() (*logSetup, error) {
	if f.LogOrigin != "" || f.LogReadURL != "" {
		return nil, usageErrorf("drop them for a Rekor v1 log (its key names it), or add --log-kind rekor-v2", "--log-origin and --log-read-url are for --log-kind rekor-v2")
	}
	lk, err := f.rekorV1Key()
	if err != nil {
		return nil, err
	}
	s := &logSetup{Verifier: lk, StateID: lk.ID(), where: f.LogURL}
	s.online = func(hc *http.Client) (verify.LogClient, error) {
		c, err := rekorv1.New(f.LogURL, hc)
		if err != nil {
			return nil, usageErrorf("check --log-url", "--log-url %q: %v", f.LogURL, err)
		}
		return rekorv1.NewOnline(c, lk), nil
	}
	if f.WitnessPolicy != "" {
		pol, err := f.witnessPolicy()
		if err != nil {
			return nil, err
		}
		if len(pol.Logs) == 0 {
			return nil, usageErrorf("add the log to the policy: 'log <name>+<hash>+<key>' with its note verifier key (a Rekor v1 log's key name is its host name)",
				"--witness-policy %s names no log: bintrans cannot derive a Rekor v1 log's note key name", f.WitnessPolicy)
		}
		s.Witnesses = witness.Quorum{Policy: pol, Options: witness.Options{MaxAge: f.MaxCosignatureAge}}
	}
	return s, nil
}

func (f *LogFlags) rekorV2Setup() (*logSetup, error) {
	if specs, shards, err := f.logShards(); err != nil || specs != nil {
		if err != nil {
			return nil, err
		}
		return f.rekorV2ShardsSetup(specs, shards)
	}
	switch {
	case strings.TrimRight(f.LogURL, "/") == DefaultLogURL:
		return nil, usageErrorf("give the Rekor v2 log's URL with --log-url (public Rekor v2 shards rotate: take the URL, key and origin from sigstore's trusted root)",
			"--log-kind rekor-v2 needs --log-url: the default is the public Rekor v1 log")
	case f.LogKey == "":
		return nil, usageErrorf("pin the log's key with --log-key FILE (a PEM Ed25519 key with --log-origin, or the log's verifier key line), checked out of band",
			"--log-kind rekor-v2 needs --log-key: bintrans never trusts a log key on first use")
	}
	b, err := readSmallFile(f.LogKey, rekorv2.MaxLogKeySize)
	if err != nil {
		return nil, usageErrorf(fileHint(err, "check the path given to --log-key"), "--log-key: %v", err)
	}
	lv, err := rekorv2.ParseLogKey(b, f.LogOrigin)
	if err != nil {
		return nil, usageErrorf("--log-key must hold the log's Ed25519 key as PEM (with --log-origin ORIGIN) or its verifier key line ('ORIGIN+hash+key')", "--log-key %s: %v", f.LogKey, err)
	}
	read := f.LogReadURL
	if read == "" {
		read = f.LogURL
	}
	if _, err := checkHTTPURL(read); err != nil {
		return nil, usageErrorf("give the http(s) URL the tiles are served at", "--log-read-url %q: %v", read, err)
	}
	id := lv.KeyID()
	s := &logSetup{Verifier: rekorv2.NewKindVerifier(lv), StateID: hex.EncodeToString(id[:]), where: read}
	s.online = func(hc *http.Client) (verify.LogClient, error) {
		r, err := rekorv2.NewReader(read, hc, lv)
		if err != nil {
			return nil, usageErrorf("check --log-read-url", "--log-read-url %q: %v", read, err)
		}
		return rekorv2.NewOnline(r), nil
	}
	if s.Witnesses, err = f.rekorV2Witnesses(lv); err != nil {
		return nil, err
	}
	return s, nil
}

// rekorV2Witnesses is the witness quorum of --witness-policy for the Rekor
// v2 log lv (the pinned log is added to the policy when it does not name
// it), or nil without a policy. Verify, hook, fetch, scan and monitor
// check the same quorum.
func (f *LogFlags) rekorV2Witnesses(lv *rekorv2.LogVerifier) (verify.Witnesses, error) {
	if f.WitnessPolicy == "" {
		return nil, nil
	}
	pol, err := f.witnessPolicy()
	if err != nil {
		return nil, err
	}
	if h := sha256.Sum256(lv.PublicKey()); pol.LogByKeyHash(h) == nil {
		if pol, err = pol.WithLogs(lv.VerifierKey()); err != nil {
			return nil, usageErrorf("fix the policy's log lines", "--witness-policy %s: %v", f.WitnessPolicy, err)
		}
	}
	return witness.Quorum{Policy: pol, Options: witness.Options{Origin: lv.Origin(), MaxAge: f.MaxCosignatureAge}}, nil
}

func (f *LogFlags) sigsumSetup() (*logSetup, error) {
	switch {
	case f.SigsumPolicy == "":
		return nil, usageErrorf("give the Sigsum policy with --sigsum-policy FILE (or 'sigsum-policy = FILE' in /etc/bintrans.conf)", "--log-kind sigsum needs --sigsum-policy")
	case f.WitnessPolicy != "":
		return nil, usageErrorf("put the witnesses and the quorum in the Sigsum policy, and drop --witness-policy", "--witness-policy is not used with --log-kind sigsum")
	case f.LogKey != "" || f.LogOrigin != "" || f.LogReadURL != "":
		return nil, usageErrorf("name the Sigsum logs in the --sigsum-policy file ('log KEY [URL]') and drop --log-key, --log-origin and --log-read-url", "--log-key, --log-origin and --log-read-url are not used with --log-kind sigsum")
	}
	pol, err := f.readPolicy("--sigsum-policy", f.SigsumPolicy)
	if err != nil {
		return nil, err
	}
	if len(pol.Logs) == 0 {
		return nil, usageErrorf("add the Sigsum log: 'log <64 hex digits of its key> [URL]'", "--sigsum-policy %s names no log", f.SigsumPolicy)
	}
	kv, err := sigsum.NewKindVerifier(pol, witness.Options{MaxAge: f.MaxCosignatureAge})
	if err != nil {
		return nil, usageErrorf("the Sigsum policy's logs must be Ed25519 keys (64 hex digits or a verifier key)", "--sigsum-policy %s: %v", f.SigsumPolicy, err)
	}
	h := sha256.New()
	for _, l := range pol.Logs {
		h.Write(l.KeyHash[:])
	}
	return &logSetup{Verifier: kv, StateID: "sigsum-" + hex.EncodeToString(h.Sum(nil)), OfflineOnly: true, where: "the Sigsum policy " + f.SigsumPolicy}, nil
}

// witnessPolicy reads --witness-policy.
func (f *LogFlags) witnessPolicy() (*witness.Policy, error) {
	return f.readPolicy("--witness-policy", f.WitnessPolicy)
}

// readPolicy reads and parses a policy file named by flag. As root, a file
// someone else could write is refused, as for every file of the policy.
func (f *LogFlags) readPolicy(flag, path string) (*witness.Policy, error) {
	if err := checkRootFile(flag, path); err != nil {
		return nil, err
	}
	b, err := readSmallFile(path, witness.MaxPolicySize)
	if err != nil {
		hint := "check the path given to " + flag
		if errors.Is(err, fs.ErrNotExist) {
			hint = "create it (see docs/SECURITY.md, 'Witnesses'), or fix the path given to " + flag
		}
		return nil, usageErrorf(fileHint(err, hint), "%s: %v", flag, err)
	}
	pol, err := witness.Parse(b)
	if err != nil {
		var pe *witness.PolicyError
		if errors.As(err, &pe) {
			pe.File = path
		}
		return nil, usageErrorf("fix the policy: 'log KEY [URL]', 'witness NAME KEY [URL]', 'group NAME K|any|all MEMBER…', one 'quorum NAME|none' (C2SP tlog-policy)", "%s: %v", flag, err)
	}
	return pol, nil
}

// checkHTTPURL parses an absolute http(s) URL.
func checkHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("want an http:// or https:// URL")
	}
	return u, nil
}
