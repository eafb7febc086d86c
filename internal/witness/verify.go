package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// MaxCheckpointSize bounds a checkpoint note with its signature lines
// (x/mod's note.Open also refuses more than 100 signatures).
const MaxCheckpointSize = 32 << 10

// DefaultClockSkew is how far in the future a cosignature timestamp may be
// when Options.MaxAge is set.
const DefaultClockSkew = 5 * time.Minute

// Options tune checkpoint verification. The zero value checks no age and
// the C2SP origin rule.
type Options struct {
	// Origin, when set, is the exact origin the checkpoint must carry.
	// Otherwise an Ed25519 log's origin must equal its key name (C2SP) and
	// an ECDSA (Rekor v1) log's must be "<key name> - <decimal tree ID>".
	Origin string
	// MaxAge, when positive, refuses cosignatures older than MaxAge, and
	// ones more than ClockSkew in the future.
	MaxAge    time.Duration
	ClockSkew time.Duration // zero: DefaultClockSkew
	Now       time.Time     // zero: time.Now()
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

func (o Options) skew() time.Duration {
	if o.ClockSkew <= 0 {
		return DefaultClockSkew
	}
	return o.ClockSkew
}

// Checkpoint is a checkpoint that verified under a policy.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Hash       [32]byte // root hash
	Extensions []string // body lines after the root hash (e.g. Rekor's "Timestamp: …")
	Log        *Log     // the policy log whose signature verified
	// Cosignatures are the valid (and, with MaxAge, fresh) cosignatures of
	// policy witnesses, one per witness, in policy order.
	Cosignatures []Cosigned
	Text         []byte // the signed checkpoint body
}

// Cosigned is one witness's valid cosignature.
type Cosigned struct {
	Witness string // policy name
	Time    time.Time
}

// Status is what a policy witness contributed to a checkpoint.
type Status int

const (
	Missing      Status = iota // no cosignature by its key
	OK                         // a valid cosignature (fresh enough, with MaxAge)
	BadSignature               // its key ID, but no valid cosignature of this checkpoint (e.g. one of another checkpoint)
	Stale                      // valid but older than MaxAge
	Future                     // valid but dated beyond the clock skew
)

func (s Status) String() string {
	switch s {
	case Missing:
		return "missing"
	case OK:
		return "ok"
	case BadSignature:
		return "bad signature"
	case Stale:
		return "stale"
	case Future:
		return "dated in the future"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// rank orders statuses for picking a witness's best line.
func (s Status) rank() int {
	return map[Status]int{Missing: 0, BadSignature: 1, Stale: 2, Future: 2, OK: 3}[s]
}

// WitnessResult is one witness's status for a checkpoint.
type WitnessResult struct {
	Witness string
	Status  Status
	Time    time.Time // cosignature time (zero when Missing or BadSignature)
}

// GroupResult is a group short of its threshold.
type GroupResult struct {
	Group      string
	Have, Need int
}

// QuorumError is a checkpoint whose cosignatures do not satisfy the
// policy's quorum. It carries every unsatisfied group on the way to the
// quorum and every witness's status.
type QuorumError struct {
	Quorum    string
	Groups    []GroupResult   // unsatisfied groups, in policy order
	Witnesses []WitnessResult // witnesses under the quorum, in policy order
	Unknown   int             // cosignatures by keys the policy does not name (ignored)
	MaxAge    time.Duration
}

// NoCosignatures reports whether the checkpoint carried no cosignature by
// a witness the quorum counts, nor by a key the policy does not name: a
// log that does not gather cosignatures, rather than witnesses that
// refused, are down or are stale.
func (e *QuorumError) NoCosignatures() bool {
	if e.Unknown > 0 {
		return false
	}
	for _, w := range e.Witnesses {
		if w.Status != Missing {
			return false
		}
	}
	return true
}

func (e *QuorumError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "witness quorum %q not met", e.Quorum)
	for i, g := range e.Groups {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s has %d of the %d cosignatures it needs", sep, g.Group, g.Have, g.Need)
	}
	b.WriteString(" (")
	for i, w := range e.Witnesses {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", w.Witness, w.Status)
		switch w.Status {
		case Stale:
			fmt.Fprintf(&b, ", cosigned %s, more than %s ago", w.Time.UTC().Format(time.RFC3339), e.MaxAge)
		case Future:
			fmt.Fprintf(&b, ", cosigned %s", w.Time.UTC().Format(time.RFC3339))
		}
	}
	b.WriteString(")")
	if e.Unknown > 0 {
		fmt.Fprintf(&b, "; %d cosignature(s) by witnesses not in the policy ignored", e.Unknown)
	}
	return b.String()
}

// CheckpointError is a checkpoint that is malformed, not signed by a log of
// the policy, or signed for another origin.
type CheckpointError struct {
	Origin string // as found in the checkpoint, when it could be read
	Reason string
	Err    error // ErrLogSignature for a missing or invalid log signature
}

func (e *CheckpointError) Error() string {
	if e.Origin != "" {
		return fmt.Sprintf("checkpoint %q: %s", e.Origin, e.Reason)
	}
	return "checkpoint: " + e.Reason
}

func (e *CheckpointError) Unwrap() error { return e.Err }

// ErrLogSignature is wrapped by a CheckpointError whose log signature is
// missing or invalid.
var ErrLogSignature = errors.New("no valid signature by a log of the policy")

// VerifyCheckpoint verifies a checkpoint note (C2SP tlog-checkpoint with
// cosignature/v1 lines): its body, a signature by one of the policy's logs,
// the origin (Options.Origin), then the quorum. Each witness counts at most
// once; cosignatures by keys the policy does not name are ignored; a
// cosignature of another checkpoint does not count. Errors: *CheckpointError
// (errors.Is(err, ErrLogSignature) for the log signature) or *QuorumError.
func (p *Policy) VerifyCheckpoint(cp []byte, opts Options) (*Checkpoint, error) {
	if len(cp) > MaxCheckpointSize {
		return nil, &CheckpointError{Reason: fmt.Sprintf("larger than %d bytes", MaxCheckpointSize)}
	}
	vs := make([]note.Verifier, 0, len(p.Logs))
	for i := range p.Logs {
		v, err := p.Logs[i].noteVerifier()
		if err != nil {
			return nil, &CheckpointError{Reason: err.Error()}
		}
		vs = append(vs, v)
	}
	n, err := note.Open(cp, note.VerifierList(vs...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return nil, &CheckpointError{Origin: firstLine(cp), Reason: "not signed by any log of the policy", Err: ErrLogSignature}
		case errors.As(err, &invalid):
			return nil, &CheckpointError{Origin: firstLine(cp), Reason: fmt.Sprintf("invalid signature by log key %s+%08x", invalid.Name, invalid.Hash), Err: ErrLogSignature}
		}
		return nil, &CheckpointError{Reason: "malformed note: " + err.Error()}
	}
	c, err := parseBody([]byte(n.Text))
	if err != nil {
		return nil, err
	}
	for _, s := range n.Sigs {
		for i, v := range vs {
			if v.Name() == s.Name && v.KeyHash() == s.Hash && c.Log == nil && originOK(&p.Logs[i], c.Origin, opts.Origin) {
				c.Log = &p.Logs[i]
			}
		}
	}
	if c.Log == nil {
		want := opts.Origin
		if want == "" {
			want = "the log key's name"
		}
		return nil, &CheckpointError{Origin: c.Origin, Reason: fmt.Sprintf("origin is not %s", want)}
	}
	cands, unknown := p.noteCandidates(c.Text, n.UnverifiedSigs)
	c.Cosignatures, err = p.judge(cands, unknown, opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Quorum is a policy's witness quorum as the verification engine applies
// it (it implements verify.Witnesses): a checkpoint note counts only with
// the quorum of cosignatures, within Options' age limit. The note's log
// signature is checked again, under the policy's logs: the log's key must
// be one (Policy.WithLogs adds the key configured elsewhere).
type Quorum struct {
	Policy  *Policy
	Options Options
}

// CheckCosignatures is VerifyCheckpoint's verdict on note. Errors:
// *CheckpointError, *QuorumError.
func (q Quorum) CheckCosignatures(note []byte) error {
	_, err := q.Policy.VerifyCheckpoint(note, q.Options)
	return err
}

// Cosignature is a cosignature/v1 identified by the SHA-256 of the
// witness's Ed25519 key, as in Sigsum tree heads and proofs.
type Cosignature struct {
	KeyHash   [32]byte
	Time      uint64 // Unix seconds
	Signature [64]byte
}

// CheckQuorum counts cosignatures of the checkpoint body text (origin,
// size, root hash lines) against the quorum, as VerifyCheckpoint does.
// It does not check the log signature: the caller has. Errors:
// *QuorumError.
func (p *Policy) CheckQuorum(text []byte, cs []Cosignature, opts Options) ([]Cosigned, error) {
	var cands []candidate
	unknown := 0
	for _, c := range cs {
		i := -1
		for j := range p.Witnesses {
			if p.Witnesses[j].KeyHash() == c.KeyHash {
				i = j
				break
			}
		}
		if i < 0 {
			unknown++
			continue
		}
		sig := binary.BigEndian.AppendUint64(nil, c.Time)
		sig = append(sig, c.Signature[:]...)
		cands = append(cands, candidate{witness: i, time: c.Time, valid: p.Witnesses[i].verifyCosignature(text, sig)})
	}
	return p.judge(cands, unknown, opts)
}

type candidate struct {
	witness int
	time    uint64
	valid   bool
}

// noteCandidates maps signature lines to policy witnesses by key ID.
func (p *Policy) noteCandidates(text []byte, sigs []note.Signature) ([]candidate, int) {
	var cands []candidate
	unknown := 0
	for _, s := range sigs {
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		matched := false
		for i := range p.Witnesses {
			w := &p.Witnesses[i]
			if noteKeyHash(s.Name, append([]byte{algCosignV1}, w.Key...)) != s.Hash {
				continue
			}
			matched = true
			c := candidate{witness: i}
			if err == nil && len(raw) == 4+8+ed25519.SignatureSize {
				c.time = binary.BigEndian.Uint64(raw[4:12])
				c.valid = w.verifyCosignature(text, raw[4:])
			}
			cands = append(cands, c)
		}
		if !matched {
			unknown++
		}
	}
	return cands, unknown
}

// judge turns candidates into per-witness statuses and evaluates the quorum.
func (p *Policy) judge(cands []candidate, unknown int, opts Options) ([]Cosigned, error) {
	now := opts.now()
	res := make([]WitnessResult, len(p.Witnesses))
	for i := range res {
		res[i].Witness = p.Witnesses[i].Name
	}
	for _, c := range cands {
		r := WitnessResult{Witness: p.Witnesses[c.witness].Name, Status: BadSignature}
		if c.valid {
			r.Status = OK
			if c.time > math.MaxInt64 {
				r.Status = Future
			} else {
				r.Time = time.Unix(int64(c.time), 0)
				if opts.MaxAge > 0 {
					switch {
					case r.Time.After(now.Add(opts.skew())):
						r.Status = Future
					case now.Sub(r.Time) > opts.MaxAge:
						r.Status = Stale
					}
				}
			}
		}
		if old := res[c.witness]; r.Status.rank() > old.Status.rank() ||
			(r.Status == old.Status && r.Status == OK && r.Time.After(old.Time)) {
			res[c.witness] = r
		}
	}
	var counted []Cosigned
	for _, r := range res {
		if r.Status == OK {
			counted = append(counted, Cosigned{Witness: r.Witness, Time: r.Time})
		}
	}
	if p.Quorum == QuorumNone {
		return counted, nil
	}
	e := evaluator{p: p, res: res, memo: map[string]bool{}, seen: map[string]bool{}}
	if e.satisfied(p.Quorum) {
		return counted, nil
	}
	qe := &QuorumError{Quorum: p.Quorum, Unknown: unknown, MaxAge: opts.MaxAge}
	if p.group(p.Quorum) == nil { // a single witness as the quorum
		qe.Groups = []GroupResult{{Group: p.Quorum, Have: 0, Need: 1}}
	}
	for _, g := range p.Groups {
		if r, ok := e.short[g.Name]; ok {
			qe.Groups = append(qe.Groups, r)
		}
	}
	for i, w := range p.Witnesses {
		if e.seen[w.Name] {
			qe.Witnesses = append(qe.Witnesses, res[i])
		}
	}
	return nil, qe
}

type evaluator struct {
	p     *Policy
	res   []WitnessResult
	memo  map[string]bool
	seen  map[string]bool // witnesses under the quorum
	short map[string]GroupResult
}

func (e *evaluator) satisfied(name string) bool {
	if v, ok := e.memo[name]; ok {
		return v
	}
	v := false
	if g := e.p.group(name); g != nil {
		have := 0
		for _, m := range g.Members {
			if e.satisfied(m) {
				have++
			}
		}
		v = have >= g.K
		if !v {
			if e.short == nil {
				e.short = map[string]GroupResult{}
			}
			e.short[name] = GroupResult{Group: name, Have: have, Need: g.K}
		}
	} else {
		for i := range e.p.Witnesses {
			if e.p.Witnesses[i].Name == name {
				e.seen[name] = true
				v = e.res[i].Status == OK
			}
		}
	}
	e.memo[name] = v
	return v
}

// verifyCosignature checks sig (timestamp || Ed25519 signature) as a
// cosignature/v1 of the checkpoint body text, with transparency-dev/formats'
// verifier (the key name is not signed: any works).
func (w *Witness) verifyCosignature(text, sig []byte) bool {
	vkey, err := CosignatureVKey("witness", w.Key)
	if err != nil {
		return false
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return false
	}
	return v.Verify(text, sig)
}

// noteVerifier returns the verifier Parse made, or makes one (a Log built
// by hand); it never writes to l, so a Policy is safe for concurrent use.
func (l *Log) noteVerifier() (note.Verifier, error) {
	if l.verifier != nil {
		return l.verifier, nil
	}
	v, err := fnote.NewVerifier(l.VKey)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", l.Name, err)
	}
	return v, nil
}

func originOK(l *Log, origin, want string) bool {
	if want != "" {
		return origin == want
	}
	if _, isEd25519 := l.Key.(ed25519.PublicKey); isEd25519 {
		return origin == l.Name
	}
	tree, ok := strings.CutPrefix(origin, l.Name+" - ")
	if !ok || tree == "" || len(tree) > 20 {
		return false
	}
	for _, c := range tree {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseBody reads the checkpoint body strictly: origin, decimal size, a
// base64 SHA-256 root, then extension lines, all canonical.
func parseBody(text []byte) (*Checkpoint, error) {
	var fc flog.Checkpoint
	rest, err := fc.Unmarshal(text)
	if err != nil {
		return nil, &CheckpointError{Origin: firstLine(text), Reason: err.Error()}
	}
	if len(fc.Hash) != sha256.Size {
		return nil, &CheckpointError{Origin: fc.Origin, Reason: fmt.Sprintf("root hash of %d bytes", len(fc.Hash))}
	}
	if canon := fc.Marshal(); !bytes.HasPrefix(text, canon) {
		return nil, &CheckpointError{Origin: fc.Origin, Reason: "non-canonical size or root hash"}
	}
	c := &Checkpoint{Origin: fc.Origin, Size: fc.Size, Text: text}
	copy(c.Hash[:], fc.Hash)
	if len(rest) > 0 {
		if rest[len(rest)-1] != '\n' {
			return nil, &CheckpointError{Origin: fc.Origin, Reason: "extension lines not newline-terminated"}
		}
		for _, x := range strings.Split(string(rest[:len(rest)-1]), "\n") {
			if x == "" {
				return nil, &CheckpointError{Origin: fc.Origin, Reason: "empty extension line"}
			}
			c.Extensions = append(c.Extensions, x)
		}
	}
	return c, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b[:min(len(b), 256)]), "\n")
	return strings.ToValidUTF8(s, "?")
}
