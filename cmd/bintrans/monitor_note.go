package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"

	"github.com/bintrans/bintrans/internal/audit"
	"github.com/bintrans/bintrans/internal/logs/sigsum"
	"github.com/bintrans/bintrans/internal/monitor"
	"github.com/bintrans/bintrans/internal/scan"
	"github.com/bintrans/bintrans/internal/state"
	"github.com/bintrans/bintrans/internal/witness"
	"github.com/bintrans/bintrans/verify"
)

// monitorNoteHelp is the part of `bintrans monitor --help` about Rekor v2.
const monitorNoteHelp = `Rekor v2 (--log-kind rekor-v2, with --log-read-url, --log-key and
--log-origin as for sign). A tile-based log has no search: the monitor reads
every entry the log appended since its last run from the entry tiles
(C2SP tlog-tiles), --jobs bundles of 256 entries at a time, checks each
entry bundle against the hash tiles authenticated by the log's signed
checkpoint, hashes the leaves read into the checkpoint's root, and reports
the hashedrekord entries whose verifier is a transparency key (by index,
with the entry's leaf hash as UUID and the SHA-512 of the signed message,
which is all the entry holds). An entry under the key whose Ed25519ph
signature does not verify, or any other entry type that names the key, is
a finding. It sees every entry of the key, not only indexed ones (--tail
is implied). The checkpoint is proven consistent with the stored one from
the tiles; the state is kept per origin (a new shard starts afresh).
With --log-shard (a log that rotates), every listed shard is read, each
with its own state, and each entry names its shard; a shard that cannot
be read leaves the others reported and stored (incomplete, exit 3).
With --witness-policy, the log's checkpoint (as served, with its
cosignature lines) must carry the policy's quorum, checked as verify
checks it online; otherwise nothing is read or stored and the run exits 3.

Sigsum (--log-kind sigsum, --sigsum-policy FILE): every log of the policy
with a URL is read (sign submits each package to one of them, whichever
accepts it). In each, the leaves appended since the last run are read
(get-leaves, each batch proven included in the log's tree head, which
must carry the policy's witness quorum and be consistent with the one
stored for that log: a state per log), and those signed by a transparency
key are reported with the log they came from and the leaf's checksum
(SHA-256 of the package's SHA-256 bytes). A leaf of the key whose
signature does not verify is a finding. A log that cannot be read does not
stop the others: their entries are reported and stored, the run is marked
incomplete and exits 3. A log that rolled back or forked is a SECURITY
ERROR and nothing is stored.`

// tilesOptions sets up the monitor of a Rekor v2 log (monitor and audit).
func tilesOptions(command string, k *KeyFlags, l *LogFlags, n *NetFlags, stateDir string) (monitor.TilesOptions, error) {
	if l.LogKind != kindRekorV2 {
		return monitor.TilesOptions{}, usageErrorf("use --log-kind rekor-v1, rekor-v2 or sigsum", "%s --log-kind %s is not supported in this version", command, l.LogKind)
	}
	if l.SigsumPolicy != "" {
		return monitor.TilesOptions{}, usageErrorf("drop --sigsum-policy, or use --log-kind sigsum (a witness quorum for rekor-v2 is --witness-policy)", "--sigsum-policy is for --log-kind sigsum")
	}
	if l.MaxCosignatureAge < 0 {
		return monitor.TilesOptions{}, usageErrorf("give a duration such as 24h, or 0 for no limit", "--max-cosignature-age %s is negative", l.MaxCosignatureAge)
	}
	keys, err := k.keys()
	if err != nil {
		return monitor.TilesOptions{}, err
	}
	hc, err := n.httpClient()
	if err != nil {
		return monitor.TilesOptions{}, err
	}
	lv, r, err := l.rekorV2(hc)
	if err != nil {
		return monitor.TilesOptions{}, err
	}
	wq, err := l.rekorV2Witnesses(lv)
	if err != nil {
		return monitor.TilesOptions{}, err
	}
	sd, err := state.Open(stateDir)
	if err != nil {
		return monitor.TilesOptions{}, runErrorf(err, "create it (as root: install -d -m 0700 "+stateDir+") or pass --state-dir DIR", "state directory: %v", err)
	}
	url := l.LogReadURL
	if url == "" {
		url = l.LogURL
	}
	return monitor.TilesOptions{Keys: keys, Log: lv, Reader: r, LogURL: url, State: sd, Witnesses: wq}, nil
}

// tilesShardOptions is tilesOptions for each shard of --log-shard (one
// TilesOptions without it).
func tilesShardOptions(command string, k *KeyFlags, l *LogFlags, n *NetFlags, stateDir string) ([]monitor.TilesOptions, error) {
	specs, _, err := l.logShards()
	if err != nil {
		return nil, err
	}
	if specs == nil {
		o, err := tilesOptions(command, k, l, n, stateDir)
		if err != nil {
			return nil, err
		}
		return []monitor.TilesOptions{o}, nil
	}
	var out []monitor.TilesOptions
	for _, sp := range specs {
		g := l.forShard(sp)
		o, err := tilesOptions(command, k, &g, n, stateDir)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// sigsumOptions sets up the monitor of a Sigsum log (monitor and audit).
func sigsumOptions(k *KeyFlags, l *LogFlags, n *NetFlags, stateDir string) (monitor.SigsumOptions, error) {
	keys, err := k.keys()
	if err != nil {
		return monitor.SigsumOptions{}, err
	}
	if l.WitnessPolicy != "" {
		return monitor.SigsumOptions{}, usageErrorf("put the witnesses and the quorum in the Sigsum policy, and drop --witness-policy", "--witness-policy is not used with --log-kind sigsum")
	}
	pol, err := l.sigsumPolicy()
	if err != nil {
		return monitor.SigsumOptions{}, err
	}
	hc, err := n.httpClient()
	if err != nil {
		return monitor.SigsumOptions{}, err
	}
	sd, err := state.Open(stateDir)
	if err != nil {
		return monitor.SigsumOptions{}, runErrorf(err, "create it (as root: install -d -m 0700 "+stateDir+") or pass --state-dir DIR", "state directory: %v", err)
	}
	return monitor.SigsumOptions{Keys: keys, State: sd, Config: sigsum.Config{Policy: pol, HTTP: hc, UserAgent: "bintrans/" + version,
		Witness: witness.Options{MaxAge: l.MaxCosignatureAge}}}, nil
}

// runNote is monitor for --log-kind rekor-v2 and sigsum.
func (c *MonitorCmd) runNote(g *Globals) error {
	var run func(ctx context.Context) (*monitor.Report, error)
	if c.LogKind == kindSigsum {
		opts, err := sigsumOptions(&c.KeyFlags, &c.LogFlags, &c.NetFlags, c.StateDir)
		if err != nil {
			return err
		}
		opts.All = c.All
		run = func(ctx context.Context) (*monitor.Report, error) { return monitor.RunSigsum(ctx, opts) }
	} else {
		opts, err := tilesShardOptions("monitor", &c.KeyFlags, &c.LogFlags, &c.NetFlags, c.StateDir)
		if err != nil {
			return err
		}
		for i := range opts {
			opts[i].All, opts[i].Jobs = c.All, c.Jobs
		}
		run = func(ctx context.Context) (*monitor.Report, error) { return monitor.RunTilesShards(ctx, opts) }
	}
	ctx := g.Context()
	if !c.Follow {
		rep, err := run(ctx)
		if printable(rep, err) { // an incomplete run's report first: what it stored
			if werr := c.print(g, rep, true); werr != nil {
				return werr
			}
		}
		if err := c.unavailable(err); err != nil {
			return err
		}
		return monitorVerdict(g, rep, err)
	}
	return c.follow(ctx, g, run)
}

// runNote is audit for --log-kind rekor-v2 and sigsum: the monitor's
// entries (read from the tiles, or the Sigsum log's leaves) cross-checked as
// for Rekor v1 (a Rekor v2 entry signs SHA-512 of the record's sha256 with
// Ed25519ph; a Sigsum leaf signs SHA-256 of its bytes).
func (c *AuditCheckCmd) runNote(g *Globals, dbs []scan.DB) error {
	var keys []verify.PublicKey
	var run func(ctx context.Context) (*monitor.Report, error)
	if c.LogKind == kindSigsum {
		opts, err := sigsumOptions(&c.KeyFlags, &c.LogFlags, &c.NetFlags, c.StateDir)
		if err != nil {
			return err
		}
		keys = opts.Keys
		run = func(ctx context.Context) (*monitor.Report, error) { return monitor.RunSigsum(ctx, opts) }
	} else {
		opts, err := tilesShardOptions("audit", &c.KeyFlags, &c.LogFlags, &c.NetFlags, c.StateDir)
		if err != nil {
			return err
		}
		keys = opts[0].Keys
		run = func(ctx context.Context) (*monitor.Report, error) { return monitor.RunTilesShards(ctx, opts) }
	}
	f, err := os.Open(c.AuditLog)
	if err != nil {
		return runErrorf(err, "check --audit-log", "%v", err)
	}
	read, err := audit.ReadAll(f)
	f.Close()
	if err != nil {
		return runErrorf(err, "", "reading %s: %v", c.AuditLog, err)
	}
	mrep, err := run(g.Context())
	if err := c.LogFlags.unavailable(err); err != nil {
		return err
	}
	if err != nil {
		return monitorVerdict(g, mrep, err)
	}
	in := audit.CrossCheckInput{Keys: keys, Audit: read, DBsGiven: len(dbs) > 0}
	for _, e := range mrep.AllEntries() {
		if e.SigsumChecksum != "" {
			k, err1 := verify.ParsePublicKey(e.Key)
			c, err2 := hex.DecodeString(e.SigsumChecksum)
			sig, err3 := base64.StdEncoding.DecodeString(e.Signature)
			if err := errors.Join(err1, err2, err3); err != nil || len(c) != 32 || len(sig) != 64 {
				return runErrorf(err, "", "monitor state entry %s: not a Sigsum leaf: %v", e.UUID, err)
			}
			in.Entries = append(in.Entries, audit.LoggedEntry{UUID: e.UUID, LogIndex: e.LogIndex, Indexed: true, LogOrigin: e.Log,
				Sigsum: &audit.SigsumBody{Key: k, Checksum: [32]byte(c), Signature: [64]byte(sig)}})
			continue
		}
		k, err1 := verify.ParsePublicKey(e.Key)
		d, err2 := hex.DecodeString(e.MessageSHA512)
		sig, err3 := base64.StdEncoding.DecodeString(e.Signature)
		if err := errors.Join(err1, err2, err3); err != nil || len(d) != 64 {
			return runErrorf(err, "", "monitor state entry %s: not a Rekor v2 entry: %v", e.UUID, err)
		}
		in.Entries = append(in.Entries, audit.LoggedEntry{UUID: e.UUID, LogIndex: e.LogIndex, V2: &audit.V2Body{Key: k, Digest: d, Signature: sig}, Indexed: true, LogOrigin: e.Log})
	}
	return c.crossCheck(g, in, mrep, dbs)
}

// unavailable is the error (exit 3) of a log that could not be read, with
// the hint of its kind; nil for any other outcome.
func (f *LogFlags) unavailable(err error) error {
	var lu *verify.LogUnavailableError
	if !errors.As(err, &lu) {
		return nil
	}
	hint := "check the URL of the log in --sigsum-policy and the network (--proxy)"
	var qe *witness.QuorumError
	switch {
	case f.LogKind == kindRekorV2 && errors.As(err, &qe) && qe.NoCosignatures():
		hint = "the log serves its checkpoint without any witness cosignature (it does not gather them): the monitor can enforce --witness-policy only on a log that does (rekor-tiles --witness-policy-path); drop --witness-policy here, or ask the log's operator; nothing was read or stored"
	case f.LogKind == kindRekorV2 && errors.As(err, &qe):
		hint = "the log's current checkpoint lacks the cosignatures --witness-policy requires: check that the policy names the witnesses this log uses and that they are up (a view no quorum of witnesses saw is refused on purpose); nothing was read or stored, the next run retries"
	case errors.As(err, &qe):
		hint = "the log's tree head lacks the cosignatures the --sigsum-policy quorum requires: check that the policy names the witnesses this log uses and that they are up; that log was not read (the others were), the next run retries"
	case f.LogKind == kindRekorV2:
		hint = "check --log-read-url (where the log's checkpoint and tiles are served; default: --log-url) and the network (--proxy)"
	}
	return runErrorf(err, hint, "%v", err)
}
