// Package rebuildertest is an in-process rebuilderd for tests: an httptest
// server that speaks the documented v0 and v1 JSON (docs/rebuilderd-api.md),
// signs in-toto link attestations the way rebuilderd does, and can be told
// to misbehave (500, HTML error page, invalid JSON, a 10 MB body, a hang).
//
// It is a fault injector, not a rebuilder: it reproduces nothing and
// answers with the packages a test adds. Its signing code is written
// independently of package rebuilder so that the two check each other.
package rebuildertest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Package is one binary package the fake rebuilder knows.
type Package struct {
	Name    string
	Version string // [epoch:]pkgver-pkgrel
	Arch    string // the package's own architecture: "any" or "x86_64"
	// Status is "GOOD", "BAD", "UNKWN", or "" (v1: null, v0: UNKWN).
	Status string
	// Filename defaults to <Name>-<Version>-<Arch>.pkg.tar.zst.
	Filename string
	// SHA256 is the product hash put in the attestation.
	SHA256 string
	// Suite is the repository (v0 suite, v1 component); default "core".
	Suite string
	// Distribution defaults to the server's.
	Distribution string
	// Unseen marks a package absent from the latest sync (v1
	// seen_in_last_sync=false: an older version).
	Unseen bool
	// Attestation, when set, is served verbatim as this package's
	// attestation. Otherwise a GOOD package gets one signed by the server's
	// key (if it has one), unless NoAttestation.
	Attestation   []byte
	NoAttestation bool
}

// FileName returns the package file name.
func (p Package) FileName() string {
	if p.Filename != "" {
		return p.Filename
	}
	return p.Name + "-" + p.Version + "-" + p.Arch + ".pkg.tar.zst"
}

// Fault makes every API request misbehave.
type Fault int

// The faults a Server can inject.
const (
	NoFault   Fault = iota
	Fault500        // HTTP 500 with a text body
	FaultHTML       // HTTP 200, an HTML page (a captive portal or a proxy)
	FaultJSON       // HTTP 200, truncated JSON
	FaultHuge       // HTTP 200, a valid-looking 10 MB JSON body, no Content-Length
	FaultHang       // no answer until the client gives up
	Fault404        // HTTP 404 for everything (no rebuilderd here)
)

// HugeSize is the body size of FaultHuge.
const HugeSize = 10 << 20

// Options configure a Server.
type Options struct {
	// Prefix is the path the API lives under ("/rebuild/" for
	// https://example.org/rebuild/); default "/".
	Prefix string
	// V0Only serves 404 for every v1 route, like rebuilderd ≤ 0.25.
	V0Only bool
	// Key is the daemon's signing key. Nil: no attestations are generated.
	Key ed25519.PrivateKey
	// Distribution is the default distribution, "archlinux" if empty.
	Distribution string
	// Latency delays every answer (a network round trip to a distant
	// rebuilder), for benchmarks.
	Latency time.Duration
	// Addr is the listen address, "127.0.0.1:0" if empty. Another
	// loopback address ("127.0.0.2:0") gives a second rebuilder a host
	// of its own without a custom transport.
	Addr string
}

// Counts are the requests a Server answered, by endpoint.
type Counts struct {
	V0List, V1Binary, Attestation, Other, Total int64
}

// Server is a running fake rebuilderd.
type Server struct {
	// URL is the base URL as a user configures it: scheme, host and
	// Prefix, ending in '/'.
	URL string
	// HTTP is the underlying test server.
	HTTP *httptest.Server

	opts Options

	mu    sync.Mutex
	pkgs  []Package
	fault Fault

	v0, v1, att, other, total atomic.Int64
	stop                      chan struct{}

	logMu sync.Mutex
	log   []string

	signed sync.Map // FileName+"\x00"+SHA256 → signed attestation
}

// New starts a Server on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "/"
	}
	if !strings.HasPrefix(opts.Prefix, "/") {
		opts.Prefix = "/" + opts.Prefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.Distribution == "" {
		opts.Distribution = "archlinux"
	}
	s := &Server{opts: opts, stop: make(chan struct{})}
	s.HTTP = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			t.Fatalf("rebuildertest: listen on %s: %v", opts.Addr, err)
		}
		s.HTTP.Listener.Close()
		s.HTTP.Listener = ln
	}
	s.HTTP.Start()
	s.URL = s.HTTP.URL + opts.Prefix
	t.Cleanup(func() {
		close(s.stop) // releases hanging handlers
		s.HTTP.Close()
	})
	return s
}

// Add adds packages (in order: ids follow insertion).
func (s *Server) Add(pkgs ...Package) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pkgs = append(s.pkgs, pkgs...)
}

// SetFault switches the server's behaviour for subsequent requests.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Requests returns the requests answered so far.
func (s *Server) Requests() Counts {
	return Counts{V0List: s.v0.Load(), V1Binary: s.v1.Load(), Attestation: s.att.Load(), Other: s.other.Load(), Total: s.total.Load()}
}

// maxLog bounds the request log.
const maxLog = 10000

// Log returns the request URIs (path and query) answered so far, in
// arrival order (the first 10 000).
func (s *Server) Log() []string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return append([]string(nil), s.log...)
}

// Transport returns an HTTP transport that connects "host:port" names (as
// in a URL; port 80 when the URL has none) to the given servers, so that
// tests can give several fake rebuilders distinct host names (rebuilder
// confirmations are counted once per host).
func Transport(hosts map[string]*Server) *http.Transport {
	addrs := map[string]string{}
	for h, s := range hosts {
		if !strings.Contains(h, ":") {
			h += ":80"
		}
		addrs[h] = s.HTTP.Listener.Addr().String()
	}
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			a, ok := addrs[addr]
			if !ok {
				return nil, fmt.Errorf("rebuildertest: no server for %s", addr)
			}
			return d.DialContext(ctx, network, a)
		},
		MaxIdleConnsPerHost: 16,
	}
}

// Public key PEM served by /api/v1/meta/public-keys.
func (s *Server) publicKeys() []string {
	if s.opts.Key == nil {
		return []string{}
	}
	return []string{string(PublicKeyPEM(s.opts.Key.Public().(ed25519.PublicKey)))}
}

func (s *Server) snapshot() ([]Package, Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Package(nil), s.pkgs...), s.fault
}

// ids: binary package id = index+1; build id = 5000+id; artifact id = 9000+id.
const buildBase, artifactBase = 5000, 9000

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.total.Add(1)
	s.logMu.Lock()
	if len(s.log) < maxLog {
		s.log = append(s.log, r.URL.RequestURI())
	}
	s.logMu.Unlock()
	path, ok := strings.CutPrefix(r.URL.Path, s.opts.Prefix)
	if !ok {
		s.other.Add(1)
		http.NotFound(w, r)
		return
	}
	path = strings.TrimSuffix(path, "/") // rebuilderd: NormalizePath(Trim)
	if s.opts.Latency > 0 {
		select {
		case <-time.After(s.opts.Latency):
		case <-r.Context().Done():
			return
		}
	}
	pkgs, fault := s.snapshot()
	switch {
	case path == "api/v0/pkgs/list":
		s.v0.Add(1)
	case path == "api/v1/packages/binary":
		s.v1.Add(1)
	case strings.HasSuffix(path, "/attestation"):
		s.att.Add(1)
	default:
		s.other.Add(1)
	}
	if s.inject(w, r, fault, path == "api/v1/packages/binary") {
		return
	}
	parts := strings.Split(path, "/")
	q := r.URL.Query()
	switch {
	case path == "api/v0/pkgs/list":
		s.v0List(w, q, pkgs)
	case path == "api/v0/public-keys":
		writeJSON(w, map[string]any{"current": s.publicKeys()})
	case len(parts) == 5 && parts[0] == "api" && parts[1] == "v0" && parts[2] == "builds" && parts[4] == "attestation":
		s.attestation(w, pkgs, parts[3], "")
	case strings.HasPrefix(path, "api/v1/") && s.opts.V0Only:
		http.NotFound(w, r)
	case path == "api/v1/packages/binary":
		s.v1Binary(w, q, pkgs)
	case path == "api/v1/meta/public-keys":
		writeJSON(w, map[string]any{"current": s.publicKeys()})
	case len(parts) == 7 && parts[1] == "v1" && parts[2] == "builds" && parts[4] == "artifacts" && parts[6] == "attestation":
		s.attestation(w, pkgs, parts[3], parts[5])
	default:
		http.NotFound(w, r)
	}
}

// inject writes fault f; v1 selects v1-shaped bodies (an object, not an
// array) for the faults that send JSON.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, f Fault, v1 bool) bool {
	head, tail := "[", "]"
	if v1 {
		head, tail = `{"total":1000000,"records":[`, "]}"
	}
	switch f {
	case Fault500:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	case Fault404:
		http.NotFound(w, r)
	case FaultHTML:
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>\n")
	case FaultJSON:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, head+`{"name":"filesystem","version":"2025.10.12-1","status":"GOOD","distro":"archl`)
	case FaultHuge:
		w.Header().Set("Content-Type", "application/json")
		row := `{"name":"x","version":"1-1","status":"GOOD","distro":"archlinux","suite":"core","architecture":"any","artifact_url":"","build_id":null,"built_at":null,"has_diffoscope":false,"has_attestation":false}`
		if v1 {
			row = `{"id":1,"name":"x","version":"1-1","distribution":"archlinux","release":null,"component":"core","architecture":"any","url":"","status":"GOOD","build_id":null,"artifact_id":null,"diffoscope_log_id":null,"attestation_log_id":null,"last_seen":"2026-05-30T06:00:12","seen_in_last_sync":true}`
		}
		var buf bytes.Buffer
		for buf.Len() < 64<<10 {
			buf.WriteString(row)
			buf.WriteByte(',')
		}
		written, _ := fmt.Fprint(w, head)
		for written < HugeSize {
			n, err := w.Write(buf.Bytes())
			if err != nil {
				return true
			}
			written += n
		}
		fmt.Fprint(w, row+tail)
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
	default:
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *Server) dist(p Package) string {
	if p.Distribution != "" {
		return p.Distribution
	}
	return s.opts.Distribution
}

func (s *Server) hasAttestation(p Package) bool {
	return p.Attestation != nil || (p.Status == "GOOD" && s.opts.Key != nil && !p.NoAttestation)
}

// v0Row is rebuilderd-common's PkgRelease, fields in serialization order.
type v0Row struct {
	Name           string  `json:"name"`
	Version        string  `json:"version"`
	Status         string  `json:"status"`
	Distro         string  `json:"distro"`
	Suite          string  `json:"suite"`
	Architecture   string  `json:"architecture"`
	ArtifactURL    string  `json:"artifact_url"`
	BuildID        *int    `json:"build_id"`
	BuiltAt        *string `json:"built_at"`
	HasDiffoscope  bool    `json:"has_diffoscope"`
	HasAttestation bool    `json:"has_attestation"`
}

func (s *Server) v0List(w http.ResponseWriter, q map[string][]string, pkgs []Package) {
	get := func(k string) (string, bool) {
		v, ok := q[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	if st, ok := get("status"); ok && st != "GOOD" && st != "BAD" && st != "UNKWN" {
		http.Error(w, "Query deserialize error: unknown variant", http.StatusBadRequest)
		return
	}
	rows := []v0Row{}
	for i, p := range pkgs {
		status := p.Status
		if status == "" {
			status = "UNKWN"
		}
		if v, ok := get("name"); ok && v != p.Name {
			continue
		}
		if v, ok := get("distro"); ok && v != s.dist(p) {
			continue
		}
		if v, ok := get("architecture"); ok && v != p.Arch {
			continue
		}
		if v, ok := get("status"); ok && v != status {
			continue
		}
		row := v0Row{Name: p.Name, Version: p.Version, Status: status, Distro: s.dist(p), Suite: suite(p),
			Architecture: p.Arch, ArtifactURL: "https://mirror.example/archlinux/" + suite(p) + "/os/x86_64/" + p.FileName(),
			HasAttestation: s.hasAttestation(p)}
		if status != "UNKWN" {
			id := buildBase + i + 1
			at := "2025-10-13T04:21:07.482911"
			row.BuildID, row.BuiltAt = &id, &at
		}
		rows = append(rows, row)
	}
	writeJSON(w, rows)
}

func suite(p Package) string {
	if p.Suite == "" {
		return "core"
	}
	return p.Suite
}

// v1Record is rebuilderd's v1 BinaryPackage, fields in serialization order.
type v1Record struct {
	ID               int     `json:"id"`
	Name             string  `json:"name"`
	Version          string  `json:"version"`
	Distribution     string  `json:"distribution"`
	Release          *string `json:"release"`
	Component        string  `json:"component"`
	Architecture     string  `json:"architecture"`
	URL              string  `json:"url"`
	Status           *string `json:"status"`
	BuildID          *int    `json:"build_id"`
	ArtifactID       *int    `json:"artifact_id"`
	DiffoscopeLogID  *int    `json:"diffoscope_log_id"`
	AttestationLogID *int    `json:"attestation_log_id"`
	LastSeen         string  `json:"last_seen"`
	SeenInLastSync   bool    `json:"seen_in_last_sync"`
}

func (s *Server) v1Binary(w http.ResponseWriter, q map[string][]string, pkgs []Package) {
	get := func(k string) (string, bool) {
		v, ok := q[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	limit, after := 1000, -1
	if v, ok := get("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "Query deserialize error: invalid limit", http.StatusBadRequest)
			return
		}
		limit = n
	}
	if v, ok := get("after"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			http.Error(w, "Query deserialize error: invalid after", http.StatusBadRequest)
			return
		}
		after = n
	}
	type filter struct {
		key  string
		of   func(Package) string
		want string
		on   bool
	}
	filters := []filter{
		{key: "name", of: func(p Package) string { return p.Name }},
		{key: "version", of: func(p Package) string { return p.Version }},
		{key: "architecture", of: func(p Package) string { return p.Arch }},
		{key: "distribution", of: s.dist},
		{key: "component", of: suite},
	}
	for i := range filters {
		filters[i].want, filters[i].on = get(filters[i].key)
	}
	seenOnly, _ := get("seen_only")
	keep := func(p Package) bool {
		for _, f := range filters {
			if f.on && f.of(p) != f.want {
				return false
			}
		}
		return seenOnly != "true" || !p.Unseen
	}
	var matched []v1Record
	for i, p := range pkgs {
		if !keep(p) {
			continue
		}
		id := i + 1
		rec := v1Record{ID: id, Name: p.Name, Version: p.Version, Distribution: s.dist(p), Component: suite(p),
			Architecture: p.Arch, URL: "https://mirror.example/archlinux/" + suite(p) + "/os/x86_64/" + p.FileName(),
			LastSeen: "2026-05-30T06:00:12.123456", SeenInLastSync: !p.Unseen}
		if p.Status != "" {
			st, b, a := p.Status, buildBase+id, artifactBase+id
			rec.Status, rec.BuildID, rec.ArtifactID = &st, &b, &a
			if s.hasAttestation(p) {
				l := 11000 + id
				rec.AttestationLogID = &l
			}
		}
		matched = append(matched, rec)
	}
	page := []v1Record{}
	for _, rec := range matched {
		if rec.ID > after && len(page) < limit {
			page = append(page, rec)
		}
	}
	writeJSON(w, map[string]any{"total": len(matched), "records": page})
}

func (s *Server) attestation(w http.ResponseWriter, pkgs []Package, build, artifact string) {
	b, err := strconv.Atoi(build)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	i := b - buildBase - 1
	if i < 0 || i >= len(pkgs) {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if artifact != "" {
		if a, err := strconv.Atoi(artifact); err != nil || a != artifactBase+i+1 {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
	}
	p := pkgs[i]
	if !s.hasAttestation(p) {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	body := p.Attestation
	if body == nil {
		// Signed once per package content (rebuilderd persists it too).
		key := p.FileName() + "\x00" + p.SHA256
		if b, ok := s.signed.Load(key); ok {
			body = b.([]byte)
		} else {
			body = SignLink(DefaultLink(p), Signer{Key: s.opts.Key})
			s.signed.Store(key, body)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// Digest is one material or product of a link.
type Digest struct{ SHA256, SHA512 string }

// Link is the signed part of a rebuilderd attestation.
type Link struct {
	Type      string // "link"
	Name      string // "rebuild <filename>"
	Materials map[string]Digest
	Products  map[string]Digest
}

// DefaultLink is the link rebuilderd writes for a reproduced package: the
// package file is both material and product.
func DefaultLink(p Package) Link {
	fn := p.FileName()
	sum := sha512.Sum512([]byte(fn)) // stands in for the file's sha512
	d := Digest{SHA256: p.SHA256, SHA512: hex.EncodeToString(sum[:])}
	return Link{Type: "link", Name: "rebuild " + fn, Materials: map[string]Digest{fn: d}, Products: map[string]Digest{fn: d}}
}

// Signer signs a link. KeyID overrides the key id written next to the
// signature (default: the key's own in-toto key id).
type Signer struct {
	Key   ed25519.PrivateKey
	KeyID string
}

// SignLink returns the metablock rebuilderd serves: the link in serde's
// field order (not canonical) with one signature per signer over the
// in-toto-rs canonical form.
func SignLink(l Link, signers ...Signer) []byte {
	msg := canonicalLink(l)
	var sigs []string
	for _, s := range signers {
		id := s.KeyID
		if id == "" {
			id = KeyID(s.Key.Public().(ed25519.PublicKey))
		}
		sig := ed25519.Sign(s.Key, msg)
		sigs = append(sigs, `{"keyid":"`+id+`","sig":"`+hex.EncodeToString(sig)+`"}`)
	}
	var b strings.Builder
	b.WriteString(`{"signatures":[` + strings.Join(sigs, ",") + `],"signed":{"_type":` + quote(l.Type) + `,"name":` + quote(l.Name))
	b.WriteString(`,"materials":` + digestsServed(l.Materials) + `,"products":` + digestsServed(l.Products))
	b.WriteString(`,"environment":null,"byproducts":{},"command":[]}}`)
	return []byte(b.String())
}

// canonicalLink writes the canonical JSON in-toto-rs signs, by hand: keys of
// the link in byte order, then its `\n` replacement.
func canonicalLink(l Link) []byte {
	s := `{"_type":` + quote(l.Type) + `,"byproducts":{},"command":[],"environment":null,"materials":` +
		digestsCanonical(l.Materials) + `,"name":` + quote(l.Name) + `,"products":` + digestsCanonical(l.Products) + `}`
	return []byte(strings.ReplaceAll(s, `\n`, "\n"))
}

func digestsCanonical(m map[string]Digest) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = quote(n) + `:{"sha256":` + quote(m[n].SHA256) + `,"sha512":` + quote(m[n].SHA512) + `}`
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// digestsServed is the served (HashMap) order: sha512 before sha256, names
// in reverse order, so that a client that does not canonicalize fails.
func digestsServed(m map[string]Digest) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = quote(n) + `: {"sha512": ` + quote(m[n].SHA512) + `, "sha256": ` + quote(m[n].SHA256) + `}`
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// quote escapes like serde_json for the characters tests use: `"`, `\`,
// newline, tab; other bytes are written raw.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// KeyID is the in-toto key id of an Ed25519 key: sha256 of the canonical
// JSON of its securesystemslib key description (encoding/json sorts map
// keys and adds no whitespace).
func KeyID(pub ed25519.PublicKey) string {
	doc, err := json.Marshal(map[string]any{
		"keyid_hash_algorithms": []string{"sha256", "sha512"},
		"keytype":               "ed25519",
		"keyval":                map[string]string{"public": hex.EncodeToString(pub)},
		"scheme":                "ed25519",
	})
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

// PublicKeyPEM writes pub the way rebuilderd (in-toto-rs) does: a
// SubjectPublicKeyInfo whose Ed25519 algorithm identifier carries an
// explicit NULL parameter, in a CRLF PEM block.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der := append([]byte{0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00, 0x03, 0x21, 0x00}, pub...)
	return []byte("-----BEGIN PUBLIC KEY-----\r\n" + base64.StdEncoding.EncodeToString(der) + "\r\n-----END PUBLIC KEY-----\r\n")
}
