// Package rebuilder asks independent rebuilderd instances whether they
// reproduced the packages of a batch, and (with a pinned key) checks their
// signed in-toto attestations. It implements verify.Rebuilders.
//
// A rebuilder confirms a package when one of its entries has the package's
// name, full `[epoch:]pkgver-pkgrel` version, architecture (the package's
// own: `any` for arch-independent packages) and status GOOD. With a key
// pinned for that rebuilder, the entry's attestation must in addition verify
// under the key and name the package file with the package's sha256 as a
// product: the rebuilder's web server alone cannot then fake a GOOD.
//
// Each rebuilder is asked once per batch, with at most Config.Concurrency
// requests in flight and within Config.Timeout for the whole batch. The v1
// API is preferred (GET {base}api/v1/packages/binary, one request per
// distinct name and version, or the whole listing of the distribution for
// large batches); a 404 there switches that rebuilder to the v0 API the
// original pacman-bintrans used (GET
// {base}api/v0/pkgs/list?distro=archlinux&name=<pkgname>). Errors and
// timeouts never fail the batch: they are recorded per package as
// unreachable and count as zero confirmations.
//
// Independence. Rebuilders count as independent confirmations only when
// nothing shows that they are one machine. Two configured rebuilders are
// one when
//
//   - their host names are equal once normalized (NormalizeHost: case,
//     trailing dot, IDNA/punycode, the canonical form of an IP address), so
//     that "rb.example", "RB.example.", "rb.example:8443/other/" and an
//     internationalized name and its xn-- form are one host; or
//   - with a Config.Resolver (cmd/bintrans sets one unless a proxy
//     resolves names), their hosts resolve
//     to address sets that share an address (a name and its IP address,
//     two names of one machine, "localhost" and "127.0.0.1"). The relation
//     is closed transitively: if A shares an address with B and B with C,
//     A, B and C are one.
//
// Such rebuilders are counted once (the first configured confirms for the
// group), not refused: a second URL of one rebuilder is a legitimate
// fallback when the first does not answer. cmd/bintrans refuses a policy
// whose --required-rebuild-confirms exceeds the number of independent
// rebuilders.
//
// A host that cannot be resolved (error, timeout, no address) cannot be
// shown to be distinct from the others, nor to be the same: when there is
// more than one host, its rebuilders are not asked and confirm nothing
// ("unjudged", with the reason in every verdict). A failed lookup never
// makes two rebuilders the same or different.
//
// The addresses are those of New's lookup; a DNS answer that changes
// during the run is not judged again (whoever controls a rebuilder's DNS
// can impersonate it anyway, unless its attestation key is pinned).
package rebuilder

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/repodb"
	"github.com/bintrans/bintrans/verify"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout       = 60 * time.Second
	DefaultConcurrency   = 8
	DefaultMaxBodySize   = 8 << 20
	DefaultListThreshold = 200
	DefaultDistribution  = "archlinux"
)

// Pagination limits of the v1 API.
const (
	listPageSize   = 1000 // rebuilderd's default LIMIT
	maxListPages   = 64   // 64 000 packages: four times Arch's core+extra
	maxSearchPages = 8    // pages for one name (several architectures, history)
)

// Config is a rebuilder policy's network side. The threshold itself
// (`--required-rebuild-confirms`) belongs to verify.Policy.
type Config struct {
	// URLs are the rebuilder base URLs (http or https, no query or
	// fragment). A sub-path is kept: `https://example.org/rebuild` and
	// `https://example.org/rebuild/` both ask
	// `https://example.org/rebuild/api/...`.
	URLs []string
	// Keys pins Ed25519 attestation keys per rebuilder. The map key must
	// name a rebuilder of URLs (a trailing slash does not matter). A
	// rebuilder with keys confirms only through a verified attestation; any
	// of its keys may sign.
	Keys map[string][]ed25519.PublicKey
	// Distribution is rebuilderd's distribution name; "" means "archlinux".
	Distribution string
	// Timeout bounds everything asked of one rebuilder for one batch (all
	// its requests, attestations included); 0 means DefaultTimeout. What is
	// not answered in time is unreachable. A v0-only rebuilder gets one
	// request per package: allow about packages/Concurrency round trips.
	Timeout time.Duration
	// Concurrency bounds the requests in flight to one rebuilder; 0 means
	// DefaultConcurrency.
	Concurrency int
	// MaxBodySize bounds each response body; 0 means DefaultMaxBodySize.
	// (Attestations are also bounded by MaxAttestationSize.)
	MaxBodySize int64
	// ListThreshold is the number of distinct packages in a batch from which
	// a v1 rebuilder is asked for its whole listing (about 15 pages for
	// Arch) instead of once per package; 0 means DefaultListThreshold, a
	// negative value never. Packages the listing does not settle are still
	// asked one by one.
	ListThreshold int
	// Resolver, when set, resolves each rebuilder host when the set is
	// built, so that rebuilders whose addresses overlap count once (see the
	// package documentation). Nil: rebuilders are told apart by
	// their normalized host names only (as through a proxy that resolves
	// names itself, where a local lookup would leak them).
	Resolver Resolver
	// ResolveTimeout bounds those lookups; 0 means DefaultResolveTimeout.
	ResolveTimeout time.Duration
}

// Set is a configured group of rebuilders. It is safe for concurrent use.
type Set struct {
	hc   *http.Client
	cfg  Config
	rbs  []*rebuilderd
	dist string
}

type rebuilderd struct {
	name string // the URL as configured: the name in verdicts
	base string // normalized, ends in '/'
	host string // NormalizeHost of the URL's host
	keys []ed25519.PublicKey
	// group identifies the rebuilders that count as one (same host, or
	// overlapping addresses); groupWhy says how this one joined it.
	group    int
	groupWhy string
	// unjudged, when set, is why this rebuilder is neither asked nor
	// counted (its host could not be resolved).
	unjudged string
}

// New is NewContext with a background context.
func New(cfg Config, hc *http.Client) (*Set, error) {
	return NewContext(context.Background(), cfg, hc)
}

// NewContext checks cfg and returns the rebuilder set, with each
// rebuilder's host resolved (cfg.Resolver, within cfg.ResolveTimeout and
// ctx) to judge which rebuilders are independent. hc is used for every
// request (it carries the proxy policy); timeouts come from cfg.
func NewContext(ctx context.Context, cfg Config, hc *http.Client) (*Set, error) {
	if hc == nil {
		return nil, errors.New("rebuilder: nil http client")
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("rebuilder: no rebuilder URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.ListThreshold == 0 {
		cfg.ListThreshold = DefaultListThreshold
	}
	s := &Set{hc: hc, cfg: cfg, dist: cfg.Distribution}
	if s.dist == "" {
		s.dist = DefaultDistribution
	}
	byBase := map[string]*rebuilderd{}
	for _, raw := range cfg.URLs {
		n, err := normalizeURL(raw)
		if err != nil {
			return nil, err
		}
		if prev, dup := byBase[n.base]; dup {
			return nil, fmt.Errorf("rebuilder %q: given twice (%q is the same URL)", raw, prev.name)
		}
		rb := &rebuilderd{name: strings.TrimSpace(raw), base: n.base, host: n.host}
		byBase[n.base] = rb
		s.rbs = append(s.rbs, rb)
	}
	for raw, keys := range cfg.Keys {
		n, err := normalizeURL(raw)
		if err != nil {
			return nil, fmt.Errorf("rebuilder key: %w", err)
		}
		rb, ok := byBase[n.base]
		if !ok {
			return nil, fmt.Errorf("rebuilder key for %q: no such --rebuilder", raw)
		}
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("rebuilder key for %q: %d-byte key, want %d", raw, len(k), ed25519.PublicKeySize)
			}
		}
		rb.keys = append(rb.keys, keys...)
	}
	judgeIndependence(ctx, cfg.Resolver, cfg.ResolveTimeout, s.rbs)
	return s, nil
}

// Confirmations returns how many rebuilders confirmed the package, counting
// several URLs of one host once. Compare it with the required threshold.
func Confirmations(v verify.RebuildVerdict) int {
	hosts := map[string]bool{}
	for _, c := range v.Confirmed {
		hosts[hostKey(c)] = true
	}
	return len(hosts)
}

func hostKey(raw string) string {
	if n, err := normalizeURL(raw); err == nil {
		return n.host
	}
	return raw
}

// target is what a rebuilder is asked about one artifact.
type target struct {
	name, version, arch string
	filename, sha256    string
	problem             string // non-empty: cannot be asked, why
}

type kind int

const (
	kindUnreachable kind = iota
	kindUnknown
	kindBad
	kindConfirmed
)

type outcome struct {
	kind   kind
	reason string
}

// Verdicts implements verify.Rebuilders: one verdict per artifact, in order.
// sha256s[i] is the hash the engine computed for arts[i] (empty: the
// artifact's SHA256 is used); only attestations need it.
//
// In each verdict a rebuilder appears in exactly one of Confirmed, Bad,
// Unknown, Unreachable — except that of several confirming rebuilders that
// count as one (same host, or overlapping addresses: see the package
// documentation)
// only the first configured is listed in Confirmed; the others get a
// Reasons entry saying so. A rebuilder whose independence could not be
// judged is not asked and is listed as Unreachable. Every rebuilder that
// did not confirm has a Reasons entry.
func (s *Set) Verdicts(ctx context.Context, arts []verify.Artifact, sha256s []string) []verify.RebuildVerdict {
	targets := make([]target, len(arts))
	for i, a := range arts {
		sha := ""
		if i < len(sha256s) {
			sha = sha256s[i]
		}
		targets[i] = newTarget(a, sha)
	}
	groups := groupTargets(targets)

	outs := make([][]outcome, len(s.rbs))
	var wg sync.WaitGroup
	for r, rb := range s.rbs {
		if rb.unjudged != "" {
			outs[r] = make([]outcome, len(targets))
			for i := range outs[r] {
				outs[r][i] = outcome{kindUnreachable, rb.unjudged}
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[r] = s.ask(ctx, rb, targets, groups)
		}()
	}
	wg.Wait()

	verdicts := make([]verify.RebuildVerdict, len(arts))
	for i := range arts {
		v := verify.RebuildVerdict{Confirmed: []string{}, Bad: []string{}, Unknown: []string{}, Unreachable: []string{}}
		reasons := map[string]string{}
		confirmedBy := map[int]*rebuilderd{} // group → first confirming rebuilder
		for r, rb := range s.rbs {
			o := outs[r][i]
			switch o.kind {
			case kindConfirmed:
				if first, dup := confirmedBy[rb.group]; dup {
					reasons[rb.name] = fmt.Sprintf("confirmed, counted once with %s (%s)", first.name, sameWhy(first, rb))
					continue
				}
				confirmedBy[rb.group] = rb
				v.Confirmed = append(v.Confirmed, rb.name)
			case kindBad:
				v.Bad = append(v.Bad, rb.name)
				reasons[rb.name] = o.reason
			case kindUnknown:
				v.Unknown = append(v.Unknown, rb.name)
				reasons[rb.name] = o.reason
			default:
				v.Unreachable = append(v.Unreachable, rb.name)
				reasons[rb.name] = o.reason
			}
		}
		if len(reasons) > 0 {
			v.Reasons = reasons
		}
		verdicts[i] = v
	}
	return verdicts
}

func newTarget(a verify.Artifact, sha string) target {
	t := target{name: a.Name, version: a.Version, filename: a.Filename, sha256: strings.ToLower(sha)}
	if t.sha256 == "" {
		t.sha256 = strings.ToLower(a.SHA256)
	}
	fn, fv, farch, ok := repodb.ParseFilename(a.Filename)
	if ok {
		if t.name == "" {
			t.name = fn
		}
		if t.version == "" {
			t.version = fv
		}
		t.arch = farch
	} else {
		// Artifact.Arch may be the repository's architecture rather than
		// the package's; used only when the file name says nothing.
		t.arch = a.Arch
	}
	switch {
	case t.name == "" || t.version == "":
		t.problem = "package name or version unknown"
	case t.arch == "":
		t.problem = "package architecture unknown"
	}
	return t
}

// group is one distinct (name, version) of a batch and its artifacts.
type group struct {
	name, version string
	members       []int
}

func groupTargets(targets []target) []group {
	idx := map[[2]string]int{}
	var groups []group
	for i, t := range targets {
		if t.problem != "" {
			continue
		}
		k := [2]string{t.name, t.version}
		g, ok := idx[k]
		if !ok {
			g = len(groups)
			idx[k] = g
			groups = append(groups, group{name: t.name, version: t.version})
		}
		groups[g].members = append(groups[g].members, i)
	}
	return groups
}

// row is a v0 or v1 entry, reduced to what matching needs.
type row struct {
	name, version, arch, status, distro string
	attestation                         string // API path of its attestation, "" if none
}

type api int

const (
	apiV1 api = iota
	apiV0
)

// ask queries one rebuilder about the whole batch and returns one outcome
// per target.
func (s *Set) ask(parent context.Context, rb *rebuilderd, targets []target, groups []group) []outcome {
	outs := make([]outcome, len(targets))
	for i, t := range targets {
		if t.problem != "" {
			outs[i] = outcome{kindUnknown, t.problem}
		}
	}
	if len(groups) == 0 {
		return outs
	}
	ctx, cancel := context.WithTimeout(parent, s.cfg.Timeout)
	defer cancel()
	reason := func(err error) string { return s.errReason(parent, ctx, err) }

	// jobs[k] settles groups[k]: from known rows (the listing), or by a
	// search first.
	type job struct {
		g     group
		rows  []row
		known bool
	}
	jobs := make([]job, len(groups))
	for k, g := range groups {
		jobs[k] = job{g: g}
	}
	which, probed := apiV1, false
	if s.cfg.ListThreshold > 0 && len(groups) >= s.cfg.ListThreshold {
		rows, err := s.listV1(ctx, rb)
		switch {
		case isNotFound(err):
			which, probed = apiV0, true
		case err == nil:
			// The listing holds the current packages only: a package it
			// does not settle (an older version behind a lagging mirror, a
			// newer one not synced yet) is searched for by name.
			probed = true
			byName := map[string][]row{}
			for _, r := range rows {
				byName[r.name] = append(byName[r.name], r)
			}
			for k := range jobs {
				if rs := byName[jobs[k].g.name]; hasVersion(rs, jobs[k].g.version) {
					jobs[k].rows, jobs[k].known = rs, true
				}
			}
		}
		// Any other error (too large, 5xx): search by name instead.
	}
	run := func(j job) {
		rows, err := j.rows, error(nil)
		if !j.known {
			rows, err = s.search(ctx, rb, which, j.g)
		}
		if err != nil {
			for _, i := range j.g.members {
				outs[i] = outcome{kindUnreachable, reason(err)}
			}
			return
		}
		for _, i := range j.g.members {
			outs[i] = s.judge(ctx, rb, rows, targets[i], reason)
		}
	}
	if !probed {
		// The first search doubles as the probe: a 404 means no v1 API.
		rows, err := s.search(ctx, rb, apiV1, jobs[0].g)
		switch {
		case isNotFound(err):
			which = apiV0
		case err != nil:
			for _, i := range jobs[0].g.members {
				outs[i] = outcome{kindUnreachable, reason(err)}
			}
			jobs = jobs[1:]
		default:
			jobs[0].rows, jobs[0].known = rows, true
		}
	}
	eg := new(errgroup.Group)
	eg.SetLimit(s.cfg.Concurrency)
	for _, j := range jobs {
		eg.Go(func() error { run(j); return nil })
	}
	_ = eg.Wait() // run records every error in outs
	return outs
}

func hasVersion(rows []row, version string) bool {
	for _, r := range rows {
		if r.version == version {
			return true
		}
	}
	return false
}

// errReason words a request error: the rebuilder's own deadline, the
// caller's cancellation, or the error itself.
func (s *Set) errReason(parent, ctx context.Context, err error) string {
	ctxErr := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	switch {
	case ctxErr && parent.Err() != nil:
		return "cancelled: " + parent.Err().Error()
	case ctxErr && ctx.Err() != nil:
		return fmt.Sprintf("timeout: no complete answer within %s", s.cfg.Timeout)
	}
	return err.Error()
}

// judge decides one rebuilder's outcome for one target from its rows.
func (s *Set) judge(ctx context.Context, rb *rebuilderd, rows []row, t target, reason func(error) string) outcome {
	var versions, archs, statuses []string
	var good []row
	bad := false
	for _, r := range rows {
		switch {
		case r.name != t.name || r.distro != s.dist:
		case r.version != t.version:
			versions = appendUnique(versions, r.version)
		case r.arch != t.arch:
			archs = appendUnique(archs, r.arch)
		case r.status == StatusGood:
			good = append(good, r)
		case r.status == StatusBad || r.status == statusFail:
			bad = true
		default:
			st := r.status
			if st == "" {
				st = "none"
			}
			statuses = appendUnique(statuses, st)
		}
	}
	id := fmt.Sprintf("%s %s (%s)", t.name, t.version, t.arch)
	switch {
	case len(good) > 0 && len(rb.keys) == 0:
		return outcome{kind: kindConfirmed}
	case len(good) > 0:
		return s.attest(ctx, rb, good, t, reason)
	case bad:
		return outcome{kindBad, "rebuilder reports BAD for " + id}
	case statuses != nil:
		return outcome{kindUnknown, fmt.Sprintf("status %s for %s", strings.Join(statuses, ", "), id)}
	case archs != nil:
		return outcome{kindUnknown, fmt.Sprintf("no entry for %s; only for %s", id, strings.Join(archs, ", "))}
	case versions != nil:
		sort.Strings(versions)
		if len(versions) > 3 {
			versions = append(versions[len(versions)-3:len(versions):len(versions)], "…")
		}
		return outcome{kindUnknown, fmt.Sprintf("no entry for %s; has version %s", id, strings.Join(versions, ", "))}
	}
	return outcome{kindUnknown, "no entry for " + id}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// attest confirms t through the attestation of one of its GOOD rows, under
// one of the rebuilder's pinned keys. A signed attestation that names this
// file with another sha256 is a BAD: the rebuilder reproduced a different
// file.
func (s *Set) attest(ctx context.Context, rb *rebuilderd, good []row, t target, reason func(error) string) outcome {
	if t.sha256 == "" {
		return outcome{kindUnknown, "GOOD, but no package sha256 to check the attestation against"}
	}
	var last outcome
	for _, r := range good {
		if r.attestation == "" {
			last = outcome{kindUnknown, "GOOD, but the rebuilder has no attestation for it"}
			continue
		}
		b, err := get(ctx, s.hc, rb.base+r.attestation, min(s.cfg.MaxBodySize, MaxAttestationSize))
		if err != nil {
			if isNotFound(err) {
				last = outcome{kindUnknown, "GOOD, but the rebuilder has no attestation for it"}
			} else {
				last = outcome{kindUnreachable, "GOOD, but the attestation could not be fetched: " + reason(err)}
			}
			continue
		}
		att, err := ParseAttestation(b)
		if err != nil {
			last = outcome{kindUnknown, "GOOD, but " + err.Error()}
			continue
		}
		var first error
		for _, k := range rb.keys {
			err := att.Verify(k, t.filename, t.sha256)
			if err == nil {
				return outcome{kind: kindConfirmed}
			}
			if first == nil {
				first = err
			}
		}
		var ae *AttestationError
		if errors.As(first, &ae) && ae.Check == CheckProductSHA256 {
			return outcome{kindBad, "signed attestation names another file: " + first.Error()}
		}
		last = outcome{kindUnknown, "GOOD, but " + first.Error()}
	}
	return last
}

// search asks one rebuilder about one (name, version).
func (s *Set) search(ctx context.Context, rb *rebuilderd, which api, g group) ([]row, error) {
	if which == apiV0 {
		q := url.Values{"distro": {s.dist}, "name": {g.name}}
		b, err := get(ctx, s.hc, rb.base+"api/v0/pkgs/list?"+q.Encode(), s.cfg.MaxBodySize)
		if err != nil {
			return nil, err
		}
		pkgs, err := ParseV0List(b)
		if err != nil {
			return nil, err
		}
		return v0Rows(pkgs), nil
	}
	q := url.Values{"distribution": {s.dist}, "name": {g.name}, "version": {g.version}, "limit": {strconv.Itoa(listPageSize)}}
	return s.pagesV1(ctx, rb, q, maxSearchPages)
}

// listV1 fetches the rebuilder's whole listing of current packages.
func (s *Set) listV1(ctx context.Context, rb *rebuilderd) ([]row, error) {
	q := url.Values{"distribution": {s.dist}, "seen_only": {"true"}, "limit": {strconv.Itoa(listPageSize)}}
	return s.pagesV1(ctx, rb, q, maxListPages)
}

// pagesV1 follows rebuilderd's keyset pagination (after=<last id>, records
// ordered by id) until a short page or Total (the size of the whole filtered
// set) is reached, at most maxPages pages. q must set limit=listPageSize.
func (s *Set) pagesV1(ctx context.Context, rb *rebuilderd, q url.Values, maxPages int) ([]row, error) {
	var rows []row
	var seen int64
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("more than %d pages of results", maxPages)
		}
		b, err := get(ctx, s.hc, rb.base+"api/v1/packages/binary?"+q.Encode(), s.cfg.MaxBodySize)
		if err != nil {
			return nil, err
		}
		p, err := ParseV1Page(b)
		if err != nil {
			return nil, err
		}
		var last int64 = -1
		for _, r := range p.Records {
			rows = append(rows, v1Row(r))
			last = max(last, r.ID)
		}
		seen += int64(len(p.Records))
		if len(p.Records) < listPageSize || seen >= p.Total {
			return rows, nil
		}
		if prev := q.Get("after"); prev != "" {
			if n, _ := strconv.ParseInt(prev, 10, 64); last <= n {
				return nil, fmt.Errorf("pagination does not advance (after=%d)", n)
			}
		}
		q.Set("after", strconv.FormatInt(last, 10))
	}
}

func v0Rows(pkgs []V0Package) []row {
	rows := make([]row, len(pkgs))
	for i, p := range pkgs {
		rows[i] = row{name: p.Name, version: p.Version, arch: p.Architecture, status: p.Status, distro: p.Distro}
		// v0's attestation is the build's, which for a split package can
		// be a sibling's: Verify's product check catches that.
		if p.HasAttestation && p.BuildID != nil {
			rows[i].attestation = fmt.Sprintf("api/v0/builds/%d/attestation", *p.BuildID)
		}
	}
	return rows
}

func v1Row(p V1BinaryPackage) row {
	r := row{name: p.Name, version: p.Version, arch: p.Architecture, status: deref(p.Status), distro: p.Distribution}
	if p.BuildID != nil && p.ArtifactID != nil && p.AttestationLogID != nil {
		r.attestation = fmt.Sprintf("api/v1/builds/%d/artifacts/%d/attestation", *p.BuildID, *p.ArtifactID)
	}
	return r
}
