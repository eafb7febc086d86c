package rebuilder

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// DefaultResolveTimeout bounds the address lookups of New.
const DefaultResolveTimeout = 5 * time.Second

// Resolver looks up the addresses of a host name; *net.Resolver
// (net.DefaultResolver) is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// NormalizeHost returns the form of a URL host (without port) that
// identifies it: an IP address in canonical form (IPv4-mapped IPv6
// unmapped, zone kept), a name in lowercase ASCII without trailing dots,
// internationalized names converted to punycode (IDNA lookup rules).
func NormalizeHost(host string) (string, error) {
	h := host
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String(), nil
	}
	h = strings.TrimRight(h, ".")
	if h == "" {
		return "", fmt.Errorf("host %q: empty name", host)
	}
	if !isASCII(h) {
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", fmt.Errorf("host %q is not a valid internationalized domain name: %v", host, err)
		}
		h = strings.TrimRight(a, ".")
	}
	h = strings.ToLower(h)
	if a, err := netip.ParseAddr(h); err == nil { // an IDNA-mapped address
		return a.Unmap().String(), nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || strings.IndexFunc(label, func(r rune) bool {
			return !(r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'))
		}) >= 0 {
			return "", fmt.Errorf("host %q is not a valid host name", host)
		}
	}
	return h, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// normalizedURL is a configured rebuilder URL in its canonical parts.
type normalizedURL struct {
	base string // scheme://host[:port]/path/ with the default port dropped: the request base
	host string // NormalizeHost of the URL's host
}

// normalizeURL checks a rebuilder URL and returns its canonical base (API
// paths are appended to it) and host.
func normalizeURL(raw string) (normalizedURL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return normalizedURL{}, fmt.Errorf("rebuilder %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return normalizedURL{}, fmt.Errorf("rebuilder %q: want an http:// or https:// URL", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return normalizedURL{}, fmt.Errorf("rebuilder %q: no host", raw)
	}
	if u.User != nil {
		return normalizedURL{}, fmt.Errorf("rebuilder %q: no user information allowed in a rebuilder URL", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return normalizedURL{}, fmt.Errorf("rebuilder %q: a base URL has no query or fragment", raw)
	}
	host, err := NormalizeHost(u.Hostname())
	if err != nil {
		return normalizedURL{}, fmt.Errorf("rebuilder %q: %w", raw, err)
	}
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if port != "" {
		hostport += ":" + port
	}
	u.Host = hostport
	// Dot segments and doubled slashes name the same resource.
	p := path.Clean("/" + u.Path)
	if p != "/" {
		p += "/"
	}
	u.Path, u.RawPath = p, ""
	return normalizedURL{base: u.String(), host: host}, nil
}

// judgeIndependence assigns each rebuilder its group: same normalized host,
// or (with r) overlapping resolved addresses, transitively. Rebuilders
// whose host could not be resolved get unjudged set when there is more
// than one host.
func judgeIndependence(ctx context.Context, r Resolver, timeout time.Duration, rbs []*rebuilderd) {
	var hosts []string
	byHost := map[string][]*rebuilderd{}
	for _, rb := range rbs {
		if _, ok := byHost[rb.host]; !ok {
			hosts = append(hosts, rb.host)
		}
		byHost[rb.host] = append(byHost[rb.host], rb)
	}
	addrs := make([][]netip.Addr, len(hosts))
	failed := make([]string, len(hosts))
	if r != nil && len(hosts) > 1 {
		if timeout <= 0 {
			timeout = DefaultResolveTimeout
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var wg sync.WaitGroup
		for i, h := range hosts {
			if a, err := netip.ParseAddr(h); err == nil {
				addrs[i] = []netip.Addr{a}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := r.LookupNetIP(ctx, "ip", h)
				switch {
				case err != nil:
					failed[i] = err.Error()
				case len(got) == 0:
					failed[i] = "no address"
				}
				for _, a := range got {
					addrs[i] = append(addrs[i], a.Unmap().WithZone(""))
				}
			}()
		}
		wg.Wait()
	}

	// Union-find over hosts; resolved hosts sharing an address join.
	parent := make([]int, len(hosts))
	why := make([]string, len(hosts))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[netip.Addr]int{}
	for i := range hosts {
		if failed[i] != "" {
			continue
		}
		sorted := append([]netip.Addr(nil), addrs[i]...)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a].Less(sorted[b]) })
		for _, a := range sorted {
			j, seen := owner[a]
			if !seen {
				owner[a] = i
				continue
			}
			ri, rj := find(i), find(j)
			if ri != rj {
				if ri < rj {
					ri, rj = rj, ri
				}
				parent[ri] = rj // the earlier configured host leads
				why[i] = fmt.Sprintf("%s and %s both resolve to %s", hosts[j], hosts[i], a)
			}
		}
	}
	for i, h := range hosts {
		root := find(i)
		for _, rb := range byHost[h] {
			rb.group = root
			rb.groupWhy = why[i]
			if failed[i] != "" {
				rb.unjudged = fmt.Sprintf("not counted: host %s could not be resolved when the policy was built (%s), so its independence from the other rebuilders cannot be judged", h, failed[i])
			}
		}
	}
}

// Independent is the number of rebuilders of the set that count as
// independent confirmations: one per group of URLs of the same host or
// of overlapping addresses (a rebuilder whose host could not be resolved
// counts as its own group: it may be distinct).
func (s *Set) Independent() int {
	groups := map[int]bool{}
	for _, rb := range s.rbs {
		groups[rb.group] = true
	}
	return len(groups)
}

// CountIndependent is the number of independent rebuilders among the
// given configured URLs (as given to Config.URLs): URLs that count as one
// count once; an unknown URL counts as its own.
func (s *Set) CountIndependent(urls []string) int {
	groups := map[int]bool{}
	unknown := 0
	for _, u := range urls {
		found := false
		for _, rb := range s.rbs {
			if rb.name == strings.TrimSpace(u) {
				groups[rb.group], found = true, true
				break
			}
		}
		if !found {
			unknown++
		}
	}
	return len(groups) + unknown
}

// Merged describes, one line per rebuilder that counts together with an
// earlier configured one, why ("https://b/ counts as https://a/: same host
// a"), in configuration order.
func (s *Set) Merged() []string {
	var out []string
	first := map[int]*rebuilderd{}
	for _, rb := range s.rbs {
		f, ok := first[rb.group]
		if !ok {
			first[rb.group] = rb
			continue
		}
		out = append(out, fmt.Sprintf("%s counts as the same rebuilder as %s (%s)", rb.name, f.name, sameWhy(f, rb)))
	}
	return out
}

// Unjudged lists the reasons rebuilders are not counted at all (their host
// could not be resolved), in configuration order.
func (s *Set) Unjudged() []string {
	var out []string
	for _, rb := range s.rbs {
		if rb.unjudged != "" {
			out = append(out, rb.name+": "+rb.unjudged)
		}
	}
	return out
}

// sameWhy says why rb counts with the group's first rebuilder f.
func sameWhy(f, rb *rebuilderd) string {
	if f.host == rb.host {
		return "same host " + rb.host
	}
	if rb.groupWhy != "" {
		return rb.groupWhy
	}
	return "their hosts share an address with a third rebuilder's"
}
