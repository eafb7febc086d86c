package main

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/signer"
	"github.com/bintrans/bintrans/internal/witness"
)

// signLogHelp is the part of `bintrans sign --help` about log kinds.
const signLogHelp = `Log kinds. --log-kind says which log the signatures go to:

  rekor-v1  (the default) a Rekor with the v1 REST API: the .t itself is
            logged as a "rekord" minisign entry; --log-url and --log-key
            (its PEM key) name it.
  rekor-v2  Sigstore's tile-based Rekor v2 (rekor-tiles). It only takes
            hashedrekord v0.0.2 entries, and for Ed25519 keys only Ed25519ph,
            so the transparency key makes a second signature, Ed25519ph over
            SHA-512 of the very message the .t signs (the package's 64-character
            hex sha256), and that is what is logged. The .t is unchanged
            (seed-compatible: minisign -V verifies it). The bundle beside it
            is a C2SP tlog-proof (c2sp.org/tlog-proof@v1): the entry's index,
            its inclusion proof, the log's signed checkpoint and the Ed25519ph
            signature, from which a client rebuilds the entry. Entries are
            written to --log-url (POST /api/v2/log/entries) with up to
            --log-inflight adds at a time (the log answers each after about a
            second, when a checkpoint covers it: throughput is about
            --log-inflight entries per second); the settle reads the log's
            checkpoint and tiles from --log-read-url (default --log-url).
            --log-key is the log's Ed25519 key (a PEM file, or a file holding
            its signed-note verifier key) and --log-origin its checkpoint
            origin: both are pinned, and required. The checkpoint stored in
            --state-dir is kept per origin: a new shard (another origin) is a
            configuration change, not an inconsistency. A log that rotates
            is configured shard by shard with --log-shard (repeatable:
            'ORIGIN URL READ_URL KEYFILE NOT_BEFORE NOT_AFTER'), and sign
            writes to the shard whose window holds the time of signing; a
            package whose bundle is an earlier shard's is published
            already (not logged again).

  sigsum    a Sigsum log (sigsum.org), named with its key and URL in
            --sigsum-policy, which also sets the witness quorum. The
            transparency key signs the package's sha256 as a Sigsum leaf
            (Ed25519 over the Sigsum leaf namespace and SHA-256 of the
            package's sha256: no package is read), the leaves are submitted
            to a log of the policy with a URL, and once each is in a tree head
            that the policy's quorum of witnesses cosigned, its Sigsum proof
            (the file sigsum-verify reads) is published as the bundle. The
            proof is final: it is not settled. --log-url, --log-key and
            --log-inflight are not used (the policy names the log; the audit
            records name the URL of the policy's log).

Witnesses (rekor-v2). Rekor v2 checkpoints are meant to be witnessed, and a
client with a witness policy (--witness-policy) counts a checkpoint only
with its quorum of cosignatures. With --witness-policy (and --witness URL to
ask only some of its witnesses), the settle asks each witness to cosign the
checkpoint the run's bundles are settled on (C2SP tlog-witness
add-checkpoint, with the consistency proof from the size the witness
cosigned last, built from the log's tiles), checks every answer under the
witness's key from the policy and writes the cosignature lines into the
bundles' checkpoint. A witness that is down or refuses is a warning (the
bundles stay valid under the log's key); so is a cosigned checkpoint short of
the policy's quorum, which clients enforcing the policy will refuse: run
sign again with --refresh-bundles once the witnesses answer.

Repository statements (--statement-interval, docs/STATEMENTS.md) go into
the same log as the packages, whatever its kind: each is its own entry by
the transparency key, its proof beside it under statements/, settled with
the run's packages.

The audit records of a rekor-v2 or sigsum signer name the log kind and
origin (schema 3; log_index is the entry's index, uuid its RFC 6962 leaf
hash).`

// signHTTPClient is the client for the log's writes and reads: as
// NetFlags.httpClient, with an idle connection for each add in flight.
func (c *SignCmd) signHTTPClient(inflight int) (*http.Client, error) {
	o := httpclient.Options{Timeout: c.Timeout, Proxy: c.Proxy, UserAgent: "bintrans/" + version, MaxIdleConnsPerHost: max(inflight, httpclient.DefaultMaxIdleConnsPerHost)}
	hc, err := httpclient.New(o)
	if err != nil {
		return nil, usageErrorf("use socks5h://HOST:PORT, socks5://HOST:PORT or http://HOST:PORT", "%v", err)
	}
	return hc, nil
}

// noteLog returns the signer's log for --log-kind rekor-v2 or sigsum, and
// the log URL its audit records name.
func (c *SignCmd) noteLog() (signer.NoteLog, string, error) {
	switch c.LogKind {
	case kindRekorV2:
		// With --log-shard: the shard whose window holds now; a package
		// whose bundle is an earlier shard's is published already.
		_, shards, err := c.LogFlags.logShards()
		if err != nil {
			return nil, "", err
		}
		now := time.Now()
		lf, err := c.LogFlags.currentShard(now)
		if err != nil {
			return nil, "", err
		}
		c.LogFlags = lf
		l, err := c.rekorV2Log()
		if err != nil {
			return nil, "", err
		}
		for _, sh := range shards {
			if sh.Log.Origin() != c.LogOrigin && sh.Started(now) {
				l.Earlier = append(l.Earlier, sh.Log)
			}
		}
		return l, c.LogURL, nil
	case kindSigsum:
		l, err := c.sigsumLog()
		if err != nil {
			return nil, "", err
		}
		return l, l.URL(), nil
	}
	return nil, "", usageErrorf("give --log-kind rekor-v1, rekor-v2 or sigsum", "--log-kind %s: unknown log kind", c.LogKind)
}

func (c *SignCmd) sigsumLog() (*signer.Sigsum, error) {
	if len(c.Witness) > 0 || c.WitnessPolicy != "" {
		return nil, usageErrorf("drop --witness and --witness-policy: the Sigsum log collects its witnesses' cosignatures, and --sigsum-policy sets the quorum",
			"--witness and --witness-policy are for --log-kind rekor-v2")
	}
	pol, err := c.LogFlags.sigsumPolicy()
	if err != nil {
		return nil, err
	}
	hc, err := c.signHTTPClient(c.LogInflight)
	if err != nil {
		return nil, err
	}
	l, err := signer.NewSigsum(sigsum.Config{Policy: pol, HTTP: hc, UserAgent: "bintrans/" + version,
		Witness: witness.Options{MaxAge: c.MaxCosignatureAge}})
	if err != nil {
		return nil, usageErrorf("add the log's URL to its line: log <hex key> https://…", "--sigsum-policy %s: %v", c.SigsumPolicy, err)
	}
	return l, nil
}

func (c *SignCmd) rekorV2Log() (*signer.RekorV2, error) {
	if c.LogInflight < 1 || c.LogInflight > 4096 {
		return nil, usageErrorf("give a value between 1 and 4096 (the log's default pushback limit is 4096 outstanding entries)", "--log-inflight %d is out of range", c.LogInflight)
	}
	hc, err := c.signHTTPClient(c.LogInflight)
	if err != nil {
		return nil, err
	}
	lv, r, err := c.LogFlags.rekorV2(hc)
	if err != nil {
		return nil, err
	}
	w, err := rekorv2.NewWriter(c.LogURL, hc, lv, rekorv2.WithReader(r))
	if err != nil {
		return nil, usageErrorf("give the log's write URL, e.g. https://log2025-1.rekor.sigstore.dev", "--log-url: %v", err)
	}
	ws, err := c.witnesses(lv, hc)
	if err != nil {
		return nil, err
	}
	nl := &signer.RekorV2{Log: lv, Writer: w, Reader: r, Inflight: c.LogInflight}
	if ws != nil {
		nl.Witnesses = ws
	}
	return nl, nil
}

// witnesses is the Cosigner of --witness and --witness-policy (nil when
// neither is given).
func (c *SignCmd) witnesses(lv *rekorv2.LogVerifier, hc *http.Client) (*signer.Witnesses, error) {
	if len(c.Witness) == 0 && c.WitnessPolicy == "" {
		return nil, nil
	}
	if c.WitnessPolicy == "" {
		return nil, usageErrorf("name the witness's key in a policy file (witness <name> <vkey> <URL>) and give it with --witness-policy FILE",
			"--witness needs --witness-policy: a witness's cosignature is checked under its pinned key")
	}
	pol, err := c.LogFlags.witnessPolicy()
	if err != nil {
		return nil, err
	}
	if pol.LogByKeyHash(sha256.Sum256(lv.PublicKey())) == nil {
		if pol, err = pol.WithLogs(lv.VerifierKey()); err != nil {
			return nil, usageErrorf("fix the policy file", "--witness-policy %s: %v", c.WitnessPolicy, err)
		}
	}
	ws := &signer.Witnesses{Client: &witness.Client{HTTP: hc}, Policy: pol,
		Options: witness.Options{Origin: lv.Origin(), MaxAge: c.MaxCosignatureAge}}
	norm := func(u string) string { return strings.TrimRight(u, "/") }
	for _, u := range c.Witness {
		found := false
		for _, w := range pol.Witnesses {
			if w.URL != "" && norm(w.URL) == norm(u) {
				ws.Ask = append(ws.Ask, w)
				found = true
				break
			}
		}
		if !found {
			return nil, usageErrorf("add a line 'witness <name> <vkey> "+u+"' to "+c.WitnessPolicy+" with the witness's key, checked out of band",
				"--witness %s is not a witness of --witness-policy", u)
		}
	}
	if len(c.Witness) == 0 {
		for _, w := range pol.Witnesses {
			if w.URL != "" {
				ws.Ask = append(ws.Ask, w)
			}
		}
		if len(ws.Ask) == 0 {
			return nil, usageErrorf("give the witnesses' URLs in the policy (witness <name> <vkey> <URL>) or with --witness URL",
				"--witness-policy %s names no witness URL to ask", c.WitnessPolicy)
		}
	}
	return ws, nil
}

// rekorV2 returns the pinned identity of the Rekor v2 named by --log-url,
// --log-read-url, --log-key and --log-origin, and a reader of its tiles.
func (f *LogFlags) rekorV2(hc *http.Client) (*rekorv2.LogVerifier, *rekorv2.Reader, error) {
	if strings.TrimRight(f.LogURL, "/") == DefaultLogURL {
		return nil, nil, usageErrorf("give the Rekor v2's URL with --log-url (and --log-read-url, --log-key, --log-origin)",
			"--log-kind rekor-v2 needs --log-url: %s is the Rekor v1 API", DefaultLogURL)
	}
	if f.LogKey == "" {
		return nil, nil, usageErrorf("pin the log's Ed25519 key with --log-key FILE (its PEM public key, or its signed-note verifier key <origin>+<hash>+<base64>), checked out of band",
			"--log-kind rekor-v2 needs --log-key: bintrans never trusts a log key on first use")
	}
	b, err := readSmallFile(f.LogKey, rekorv2.MaxLogKeySize)
	if err != nil {
		return nil, nil, usageErrorf(fileHint(err, "check the path given to --log-key"), "--log-key: %v", err)
	}
	lv, err := rekorv2.ParseLogKey(b, f.LogOrigin)
	if err != nil {
		hint := "give the log's Ed25519 PEM public key or its verifier key line, and its checkpoint origin with --log-origin"
		return nil, nil, usageErrorf(hint, "--log-key %s: %v", f.LogKey, err)
	}
	readURL := f.LogReadURL
	if readURL == "" {
		readURL = f.LogURL
	}
	r, err := rekorv2.NewReader(readURL, hc, lv)
	if err != nil {
		return nil, nil, usageErrorf("give the base URL the log's tiles and checkpoint are served from, e.g. https://log2025-1.rekor.sigstore.dev", "--log-read-url: %v", err)
	}
	return lv, r, nil
}

// sigsumPolicy reads --sigsum-policy.
func (f *LogFlags) sigsumPolicy() (*witness.Policy, error) {
	if len(f.LogShard) > 0 {
		return nil, usageErrorf("name the Sigsum logs in --sigsum-policy ('log KEY URL' lines), and drop --log-shard", "--log-shard is for --log-kind rekor-v2 (a log that rotates shards)")
	}
	if f.SigsumPolicy == "" {
		return nil, usageErrorf("give the Sigsum policy file with --sigsum-policy FILE (the log's key and URL, the witnesses and the quorum)",
			"--log-kind sigsum needs --sigsum-policy")
	}
	return f.readPolicy("--sigsum-policy", f.SigsumPolicy)
}
