package witness

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/bintrans/bintrans/internal/durable"
)

// Bounds on a policy file. The C2SP spec recommends supporting at least 32
// logs, 32 witnesses and 32 groups.
const (
	MaxPolicySize = 64 << 10
	MaxLineLength = 4096
	MaxLogs       = 64
	MaxWitnesses  = 256
	MaxGroups     = 256
)

// QuorumNone is the quorum that requires no cosignature.
const QuorumNone = "none"

// Policy says which logs are trusted and which witnesses must have
// cosigned a checkpoint for it to count (C2SP tlog-policy). Build it with
// Parse or ParseFile; the fields are for reading.
type Policy struct {
	Logs      []Log
	Witnesses []Witness
	Groups    []Group
	// Quorum names the witness or group that must be satisfied, or is
	// QuorumNone.
	Quorum string
}

// Log is a trusted log.
type Log struct {
	// Name is the note key name: the origin for Ed25519 logs (C2SP), the
	// host for Rekor v1 (origin "<host> - <tree ID>"), the Sigsum origin
	// for a log given as a hex key.
	Name string
	// Key is an ed25519.PublicKey or an *ecdsa.PublicKey (Rekor v1).
	Key crypto.PublicKey
	// KeyHash is SHA-256 of the raw Ed25519 key (a Sigsum log key hash) or
	// of the DER public key (a Rekor v1 log ID).
	KeyHash [32]byte
	// VKey is the note verifier key (derived for hex keys).
	VKey string
	URL  string // optional; the log's base URL
	Line int    // line in the policy file

	verifier note.Verifier
}

// Ed25519 returns the log's Ed25519 key, or nil for an ECDSA log.
func (l *Log) Ed25519() ed25519.PublicKey {
	k, _ := l.Key.(ed25519.PublicKey)
	return k
}

// Witness is a witness the policy names.
type Witness struct {
	Name string // the name in the policy (meaningless outside it)
	// KeyName is the note key name of a witness given as a vkey; empty for
	// a hex key. Cosignatures are matched by key, whatever name their
	// signature line carries (cosignature/v1 does not sign the name).
	KeyName string
	Key     ed25519.PublicKey
	URL     string // optional; the tlog-witness submission prefix
	Line    int
}

// KeyHash is SHA-256 of the witness's key, its Sigsum identifier.
func (w *Witness) KeyHash() [32]byte { return sha256.Sum256(w.Key) }

// Group is satisfied when at least K of its Members (witnesses or earlier
// groups) are.
type Group struct {
	Name    string
	K       int
	Members []string
	Line    int
}

// PolicyError is a policy file that cannot be used.
type PolicyError struct {
	File string // may be empty
	Line int    // 0 for the whole file
	Msg  string
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("witness policy")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	return b.String() + ": " + e.Msg
}

// ParseFile reads and parses the policy file at path (at most
// MaxPolicySize bytes).
func ParseFile(path string) (*Policy, error) {
	b, err := durable.ReadFile(path, MaxPolicySize)
	var tl *durable.TooLargeError
	if errors.As(err, &tl) {
		return nil, &PolicyError{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxPolicySize)}
	}
	if err != nil {
		return nil, err
	}
	p, err := Parse(b)
	var pe *PolicyError
	if errors.As(err, &pe) {
		pe.File = path
	}
	return p, err
}

// Parse reads a policy in C2SP tlog-policy syntax:
//
//	log <key> [<url>]
//	witness <name> <key> [<url>]
//	group <name> <k>|any|all <member>...
//	quorum <name>|none
//
// A key is a note verifier key (logs: type 0x01 Ed25519 or 0x02 ECDSA;
// witnesses: 0x04 cosignature/v1 or 0x01) or, as in Sigsum policy files,
// 64 hex digits of an Ed25519 key; both may be mixed. Enforced, unlike the
// upstream parsers: exactly one quorum line; names defined before use, once,
// "none" reserved; 1 <= k <= n; each name a group member at most once in the
// whole policy; no duplicate log or witness key; URLs http(s) when given;
// only whole-line comments; tab, newline and printable bytes only (no CR).
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, &PolicyError{Msg: fmt.Sprintf("larger than %d bytes", MaxPolicySize)}
	}
	ps := parser{
		p:        &Policy{},
		names:    map[string]bool{},
		member:   map[string]string{},
		logKeys:  map[string]int{},
		witKeys:  map[string]int{},
		quorumAt: 0,
	}
	for i, line := range strings.Split(string(data), "\n") {
		if err := ps.line(i+1, line); err != nil {
			return nil, err
		}
	}
	if ps.quorumAt == 0 {
		return nil, &PolicyError{Msg: `no quorum line (write "quorum none" to require no cosignature)`}
	}
	return ps.p, nil
}

type parser struct {
	p        *Policy
	names    map[string]bool   // witness and group names
	member   map[string]string // name -> group it is a member of
	logKeys  map[string]int    // raw key -> line
	witKeys  map[string]int    // raw key -> line
	quorumAt int
}

// line parses line n of a policy file (comments and blank lines are
// skipped) into ps.
func (ps *parser) line(n int, line string) error {
	f, err := fields(n, line)
	if err != nil || len(f) == 0 {
		return err
	}
	switch f[0] {
	case "log":
		return ps.log(n, f)
	case "witness":
		return ps.witness(n, f)
	case "group":
		return ps.group(n, f)
	case "quorum":
		return ps.quorum(n, f)
	}
	return failAt(n)("unknown keyword %q (want log, witness, group or quorum)", f[0])
}

// failAt makes the *PolicyError of line n.
func failAt(n int) func(format string, a ...any) error {
	return func(format string, a ...any) error {
		return &PolicyError{Line: n, Msg: fmt.Sprintf(format, a...)}
	}
}

// fields splits line n into its words (space or tab separated); none for
// a blank line or a comment. A line too long, with a carriage return or
// another control character, or with a comment after a word, is refused.
func fields(n int, line string) ([]string, error) {
	fail := failAt(n)
	if len(line) > MaxLineLength {
		return nil, fail("longer than %d bytes", MaxLineLength)
	}
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\r':
			return nil, fail("carriage return (save the file with Unix line endings)")
		case c < 0x20 && c != '\t', c == 0x7f:
			return nil, fail("control character 0x%02x", c)
		}
	}
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return nil, nil
	}
	for _, x := range f[1:] {
		if strings.HasPrefix(x, "#") {
			return nil, fail("a comment must be on its own line")
		}
	}
	return f, nil
}

// log is a line "log <key> [<url>]".
func (ps *parser) log(n int, f []string) error {
	fail := failAt(n)
	if len(f) < 2 || len(f) > 3 {
		return fail("want: log <key> [<url>]")
	}
	if len(ps.p.Logs) >= MaxLogs {
		return fail("more than %d logs", MaxLogs)
	}
	l, err := parseLogKey(f[1])
	if err != nil {
		return fail("log key: %v", err)
	}
	raw := string(l.KeyHash[:])
	if prev, dup := ps.logKeys[raw]; dup {
		return fail("log key already listed on line %d", prev)
	}
	ps.logKeys[raw] = n
	if len(f) == 3 {
		if l.URL, err = checkURL(f[2]); err != nil {
			return fail("%v", err)
		}
	}
	l.Line = n
	ps.p.Logs = append(ps.p.Logs, l)
	return nil
}

// witness is a line "witness <name> <key> [<url>]".
func (ps *parser) witness(n int, f []string) error {
	fail := failAt(n)
	if len(f) < 3 || len(f) > 4 {
		return fail("want: witness <name> <key> [<url>]")
	}
	if len(ps.p.Witnesses) >= MaxWitnesses {
		return fail("more than %d witnesses", MaxWitnesses)
	}
	if err := ps.define(f[1]); err != nil {
		return fail("%v", err)
	}
	w, err := parseWitnessKey(f[2])
	if err != nil {
		return fail("witness %s key: %v", f[1], err)
	}
	raw := string(w.Key)
	if prev, dup := ps.witKeys[raw]; dup {
		return fail("witness %s: key already listed on line %d", f[1], prev)
	}
	ps.witKeys[raw] = n
	if len(f) == 4 {
		if w.URL, err = checkURL(f[3]); err != nil {
			return fail("witness %s: %v", f[1], err)
		}
	}
	w.Name, w.Line = f[1], n
	ps.p.Witnesses = append(ps.p.Witnesses, w)
	return nil
}

// group is a line "group <name> <k>|any|all <member>...": every member
// defined on an earlier line, and a member of no other group.
func (ps *parser) group(n int, f []string) error {
	fail := failAt(n)
	if len(f) < 4 {
		return fail("want: group <name> <k>|any|all <member>...")
	}
	if len(ps.p.Groups) >= MaxGroups {
		return fail("more than %d groups", MaxGroups)
	}
	if f[1] == QuorumNone || ps.names[f[1]] {
		return fail("%v", ps.define(f[1]))
	}
	members := f[3:]
	k, err := threshold(f[2], len(members))
	if err != nil {
		return fail("group %s: %v", f[1], err)
	}
	for _, m := range members {
		switch {
		case m == QuorumNone:
			return fail("group %s: %q cannot be a group member", f[1], m)
		case m == f[1]:
			return fail("group %s: a group cannot be its own member", f[1])
		case !ps.names[m]:
			return fail("group %s: %q is not defined on an earlier line", f[1], m)
		case ps.member[m] == f[1]:
			return fail("group %s: %q listed twice", f[1], m)
		case ps.member[m] != "":
			return fail("group %s: %q is already a member of group %s (each name may be a member once)", f[1], m, ps.member[m])
		}
		ps.member[m] = f[1]
	}
	if err := ps.define(f[1]); err != nil {
		return fail("%v", err)
	}
	ps.p.Groups = append(ps.p.Groups, Group{Name: f[1], K: k, Members: append([]string(nil), members...), Line: n})
	return nil
}

// quorum is the one line "quorum <name>|none".
func (ps *parser) quorum(n int, f []string) error {
	fail := failAt(n)
	if len(f) != 2 {
		return fail("want: quorum <name>|none")
	}
	if ps.quorumAt != 0 {
		return fail("second quorum line (the first is on line %d)", ps.quorumAt)
	}
	if f[1] != QuorumNone && !ps.names[f[1]] {
		return fail("quorum %q is not defined on an earlier line", f[1])
	}
	ps.p.Quorum, ps.quorumAt = f[1], n
	return nil
}

func (ps *parser) define(name string) error {
	if name == QuorumNone {
		return fmt.Errorf("%q is reserved", name)
	}
	if ps.names[name] {
		return fmt.Errorf("name %q already defined", name)
	}
	ps.names[name] = true
	return nil
}

func threshold(s string, n int) (int, error) {
	switch s {
	case "any":
		return 1, nil
	case "all":
		return n, nil
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("threshold %q is not a decimal number, any or all", s)
		}
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 || k > n {
		return 0, fmt.Errorf("threshold %s out of range 1..%d", s, n)
	}
	return k, nil
}

func checkURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return "", fmt.Errorf("URL %q: want http(s)://host[/path]", s)
	}
	return s, nil
}

// LogByKeyHash returns the log whose KeyHash is h, or nil.
func (p *Policy) LogByKeyHash(h [32]byte) *Log {
	for i := range p.Logs {
		if p.Logs[i].KeyHash == h {
			return &p.Logs[i]
		}
	}
	return nil
}

// Witness returns the witness called name, or nil.
func (p *Policy) Witness(name string) *Witness {
	for i := range p.Witnesses {
		if p.Witnesses[i].Name == name {
			return &p.Witnesses[i]
		}
	}
	return nil
}

func (p *Policy) group(name string) *Group {
	for i := range p.Groups {
		if p.Groups[i].Name == name {
			return &p.Groups[i]
		}
	}
	return nil
}

// WithLogs returns a copy of p that also trusts the logs with the given
// keys, written as on a log line (a vkey, or 64 hex digits): a witness
// policy without log lines combined with a log key configured elsewhere
// (bintrans's --log-key). A key already in p is an error.
func (p *Policy) WithLogs(keys ...string) (*Policy, error) {
	q := *p
	q.Logs = append([]Log(nil), p.Logs...)
	for _, k := range keys {
		if len(q.Logs) >= MaxLogs {
			return nil, &PolicyError{Msg: fmt.Sprintf("more than %d logs", MaxLogs)}
		}
		l, err := parseLogKey(k)
		if err != nil {
			return nil, &PolicyError{Msg: "log key: " + err.Error()}
		}
		if q.LogByKeyHash(l.KeyHash) != nil {
			return nil, &PolicyError{Msg: "log key " + l.VKey + " already in the policy"}
		}
		q.Logs = append(q.Logs, l)
	}
	return &q, nil
}
