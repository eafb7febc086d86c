// Package sigsum makes Sigsum (sigsum.org) a log kind for bintrans: the
// transparency key's Ed25519 key signs a package's SHA-256 in Sigsum's leaf
// namespace, the leaf is submitted to a Sigsum log, and the log's proof
// (sigsum-go pkg/proof, the file sigsum-verify reads) lets a client verify
// offline, against a witness policy, that the signature is logged and
// witnessed. Monitors list the key's leaves with the tree head, the
// witness quorum and consistency checked between runs.
//
// What is signed. The Sigsum message is the package's 32-byte SHA-256;
// the log stores checksum = SHA-256(message) and the leaf signature is
// Ed25519 over "sigsum.org/v1/tree-leaf" 0x00 checksum (56 bytes). Minisign
// signs a 64-byte BLAKE2b prehash (or longer data), so the two signatures
// with the same key cannot be confused.
//
// It returns plain types and errors of its own; the sigsum-go library does
// the wire formats and the Merkle proofs, internal/witness the policy.
package sigsum

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"sigsum.org/sigsum-go/pkg/client"
	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	slog "sigsum.org/sigsum-go/pkg/log"
	"sigsum.org/sigsum-go/pkg/requests"
	"sigsum.org/sigsum-go/pkg/submit"
	"sigsum.org/sigsum-go/pkg/types"

	"github.com/bintrans/bintrans/internal/witness"
)

// Defaults of Config.
const (
	DefaultPollDelay      = 500 * time.Millisecond
	DefaultTimeout        = 5 * time.Minute
	DefaultRequestTimeout = 30 * time.Second
	// MaxResponse bounds every answer of a log (a get-leaves answer of 512
	// leaves is about 150 KiB).
	MaxResponse = 1 << 20
	// MaxBatch bounds the packages of one Submit.
	MaxBatch = 10000
)

// Config says where and how to talk to Sigsum logs.
type Config struct {
	// Policy names the logs (with URLs, to submit or monitor) and the
	// witness quorum. Required.
	Policy *witness.Policy
	// HTTP is the client for every request (internal/httpclient's in
	// bintrans); its answers are further limited to MaxResponse bytes.
	// Nil means a private direct client (no proxy from the environment)
	// with a 30 s timeout.
	HTTP *http.Client
	// PollDelay is the wait between add-leaf polls while a leaf is being
	// sequenced and witnessed (zero: DefaultPollDelay; sigsum-go's own
	// default is 2 s).
	PollDelay time.Duration
	// Timeout bounds a whole Submit (zero: DefaultTimeout); RequestTimeout
	// one request (zero: DefaultRequestTimeout).
	Timeout        time.Duration
	RequestTimeout time.Duration
	UserAgent      string
	// RateLimitDomain and RateLimitKey make a Sigsum submit token (public
	// logs rate-limit submitters by a DNS-published key); both or neither.
	RateLimitDomain string
	RateLimitKey    ed25519.PrivateKey
	// Witness are the verification options for tree heads: MaxAge of
	// cosignatures (Origin is ignored: a Sigsum log's origin follows from
	// its key).
	Witness witness.Options
}

var quiet sync.Once

// silence turns sigsum-go's logging (the standard library's global logger,
// INFO by default: one line per poll) down to fatal messages; bintrans
// reports errors itself.
func silence() { quiet.Do(func() { slog.SetLevel(slog.FatalLevel) }) }

// Checksum is what a Sigsum leaf records for a package: SHA-256 of the
// package's SHA-256. Auditors match leaves to packages with it.
func Checksum(pkgSHA256 [32]byte) [32]byte { return sha256.Sum256(pkgSHA256[:]) }

// SignLeaf signs a package's SHA-256 as a Sigsum leaf:
// Ed25519(priv, "sigsum.org/v1/tree-leaf" 0x00 Checksum(pkgSHA256)).
func SignLeaf(priv ed25519.PrivateKey, pkgSHA256 [32]byte) ([64]byte, error) {
	s, err := signer(priv)
	if err != nil {
		return [64]byte{}, err
	}
	return types.SignLeafMessage(s, pkgSHA256[:])
}

// VerifyLeaf reports whether sig is pub's Sigsum leaf signature over
// checksum.
func VerifyLeaf(pub ed25519.PublicKey, checksum [32]byte, sig [64]byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	var k scrypto.PublicKey
	copy(k[:], pub)
	c, s := scrypto.Hash(checksum), scrypto.Signature(sig)
	return types.VerifyLeafChecksum(&k, &c, &s)
}

func signer(priv ed25519.PrivateKey) (*scrypto.Ed25519Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("sigsum: not an Ed25519 private key")
	}
	var seed scrypto.PrivateKey
	copy(seed[:], priv.Seed())
	return scrypto.NewEd25519Signer(&seed), nil
}

// SubmitError is a submission that did not end with a proof.
type SubmitError struct {
	Err error
	// Diagnosis, when the logs could be asked afterwards, says what each
	// log of the policy answered (unreachable, tree head not witnessed …).
	Diagnosis []error
}

func (e *SubmitError) Error() string {
	s := "sigsum submit: " + e.Err.Error()
	for _, d := range e.Diagnosis {
		s += "; " + d.Error()
	}
	return s
}

func (e *SubmitError) Unwrap() error { return e.Err }

// Submit logs one leaf per package SHA-256, signed by priv, in one of the
// policy's logs (those with a URL, tried in random order, as sigsum-go
// does), and waits until each leaf is in a tree head that satisfies the
// policy's quorum. It returns one proof file (sigsum-go's format, version
// 2) per package, in order, each verified with Verify before it is
// returned. Errors: *SubmitError.
func Submit(ctx context.Context, cfg Config, priv ed25519.PrivateKey, pkgSHA256s [][32]byte) ([][]byte, error) {
	silence()
	if cfg.Policy == nil {
		return nil, &SubmitError{Err: errors.New("no policy")}
	}
	if len(pkgSHA256s) == 0 || len(pkgSHA256s) > MaxBatch {
		return nil, &SubmitError{Err: fmt.Errorf("%d packages (1 to %d per call)", len(pkgSHA256s), MaxBatch)}
	}
	s, err := signer(priv)
	if err != nil {
		return nil, &SubmitError{Err: err}
	}
	sp, err := cfg.Policy.SigsumPolicy()
	if err != nil {
		return nil, &SubmitError{Err: err}
	}
	sc := &submit.Config{
		Policy:         sp,
		PollDelay:      or(cfg.PollDelay, DefaultPollDelay),
		Timeout:        or(cfg.Timeout, DefaultTimeout),
		RequestTimeout: or(cfg.RequestTimeout, DefaultRequestTimeout),
		UserAgent:      cfg.userAgent(),
		HTTPClient:     bounded(cfg.HTTP),
	}
	if cfg.RateLimitDomain != "" || cfg.RateLimitKey != nil {
		if sc.RateLimitSigner, err = signer(cfg.RateLimitKey); err != nil || cfg.RateLimitDomain == "" {
			return nil, &SubmitError{Err: errors.New("a rate-limit token needs both a domain and an Ed25519 key")}
		}
		sc.Domain = cfg.RateLimitDomain
	}
	reqs := make([]requests.Leaf, len(pkgSHA256s))
	for i, m := range pkgSHA256s {
		sig, err := types.SignLeafMessage(s, m[:])
		if err != nil {
			return nil, &SubmitError{Err: err}
		}
		reqs[i] = requests.Leaf{Message: m, Signature: sig, PublicKey: s.Public()}
	}
	proofs, err := submit.SubmitLeafRequests(ctx, sc, reqs)
	if err != nil {
		return nil, &SubmitError{Err: err, Diagnosis: diagnose(ctx, cfg)}
	}
	if len(proofs) != len(reqs) {
		return nil, &SubmitError{Err: fmt.Errorf("%d proofs for %d leaves", len(proofs), len(reqs))}
	}
	v, err := NewVerifier(cfg.Policy, []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}, cfg.Witness)
	if err != nil {
		return nil, &SubmitError{Err: err}
	}
	out := make([][]byte, len(proofs))
	for i := range proofs {
		b, err := marshal(&proofs[i])
		if err != nil {
			return nil, &SubmitError{Err: err}
		}
		if _, err := v.Verify(b, pkgSHA256s[i]); err != nil {
			return nil, &SubmitError{Err: fmt.Errorf("the proof the log returned does not verify: %w", err)}
		}
		out[i] = b
	}
	return out, nil
}

// diagnose asks each policy log for its tree head after a failed submit,
// to say why (unreachable, bad signature, quorum not met).
func diagnose(ctx context.Context, cfg Config) []error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), or(cfg.RequestTimeout, DefaultRequestTimeout))
	defer cancel()
	var out []error
	for i := range cfg.Policy.Logs {
		l := &cfg.Policy.Logs[i]
		if l.URL == "" || l.Ed25519() == nil {
			continue
		}
		if _, _, err := treeHead(ctx, cfg, l); err != nil {
			out = append(out, err)
		}
	}
	return out
}

func (c Config) userAgent() string {
	if c.UserAgent != "" {
		return c.UserAgent
	}
	return "bintrans"
}

func (c Config) client(l *witness.Log) *client.Client {
	return client.New(client.Config{URL: l.URL, UserAgent: c.userAgent(), HTTPClient: bounded(c.HTTP)})
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
