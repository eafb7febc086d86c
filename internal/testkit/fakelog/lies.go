package fakelog

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Lie is a way for the log to misbehave. Unless noted, a lie affects what
// is served (entries, retrieve results, the checkpoint, proofs), never the
// log's honest state (Add, Entry, Checkpoint, Size).
type Lie int

const (
	// Honest serves the truth.
	Honest Lie = iota
	// LieWrongRoot serves a root hash that is not the tree's, in proofs and
	// in checkpoints correctly signed over it: inclusion and consistency
	// proofs fail against it.
	LieWrongRoot
	// LieForkedTree serves another tree that shares a prefix with the real
	// one (Fork sets it up; the default forks at Size-1 and grows by one),
	// with correctly signed checkpoints and valid proofs for the fork: a
	// split view, caught only by consistency with a stored checkpoint.
	LieForkedTree
	// LieStaleCheckpoint serves the tree as it was at an older size
	// (RollbackTo; default Size-1): a rollback. Later entries are 404.
	LieStaleCheckpoint
	// LieOtherKey serves every rekord entry with its public key replaced by
	// OtherMinisignKey, as a tree of those bodies with valid proofs and
	// SETs; GET by UUID answers under the requested UUID.
	LieOtherKey
	// LieSETForOtherBody serves SETs signed over a different body.
	LieSETForOtherBody
	// LieProofForOtherLeaf serves each entry with the inclusion proof of
	// another leaf (the next one).
	LieProofForOtherLeaf
	// LieOtherSigner signs checkpoints and SETs with OtherKey (same origin,
	// valid signatures under the wrong key).
	LieOtherSigner
	// LieProofTreeSize states an inclusion proof tree size one larger than
	// the checkpoint's, with the hashes of the real size: the hole in
	// rekor's VerifyLogEntry (the RFC 6962 path is the same for both sizes).
	LieProofTreeSize
	// LieBadConsistencyProof flips a byte of every consistency proof.
	LieBadConsistencyProof
	// LieTruncatedJSON sends the first half of the honest answer.
	LieTruncatedJSON
	// LieOversizedJSON sends an endless (100 MiB) JSON answer.
	LieOversizedJSON
	// LieGarbageJSON sends 200 with bytes that are not JSON.
	LieGarbageJSON
	// LieEmptyBody sends 200 with an empty body.
	LieEmptyBody
	// LieHTML502 sends a proxy's HTML 502 page.
	LieHTML502
	// LieHang never answers (until the client gives up or the log closes).
	LieHang
)

var lieNames = [...]string{"honest", "wrong-root", "forked-tree", "stale-checkpoint", "other-key",
	"set-for-other-body", "proof-for-other-leaf", "other-signer", "proof-tree-size",
	"bad-consistency-proof", "truncated-json", "oversized-json", "garbage-json", "empty-body",
	"html-502", "hang"}

func (l Lie) String() string {
	if l >= 0 && int(l) < len(lieNames) {
		return lieNames[l]
	}
	return fmt.Sprintf("lie(%d)", int(l))
}

// Lies lists every lie (for table-driven tests).
func Lies() []Lie {
	out := make([]Lie, 0, len(lieNames)-1)
	for l := LieWrongRoot; int(l) < len(lieNames); l++ {
		out = append(out, l)
	}
	return out
}

// Endpoint names a REST call, to aim a lie at it.
type Endpoint string

// The endpoints fakelog serves.
const (
	EndpointEntry     Endpoint = "GET /api/v1/log/entries"
	EndpointUpload    Endpoint = "POST /api/v1/log/entries"
	EndpointRetrieve  Endpoint = "POST /api/v1/log/entries/retrieve"
	EndpointSearch    Endpoint = "POST /api/v1/index/retrieve"
	EndpointLogInfo   Endpoint = "GET /api/v1/log"
	EndpointProof     Endpoint = "GET /api/v1/log/proof"
	EndpointPublicKey Endpoint = "GET /api/v1/log/publicKey"
)

// SetLie makes the log tell lie from now on, on the given endpoints only
// (none: on all of them). SetLie(Honest) makes it honest again.
func (l *Log) SetLie(lie Lie, only ...Endpoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lie = lie
	l.lieOn = nil
	if len(only) > 0 {
		l.lieOn = map[Endpoint]bool{}
		for _, e := range only {
			l.lieOn[e] = true
		}
	}
}

// Fork prepares the tree LieForkedTree serves: the first prefix entries of
// the real log followed by bodies (none: altered copies of the real
// entries after prefix, plus one more, so the fork is one larger), and
// turns the lie on for every endpoint.
func (l *Log) Fork(prefix int64, bodies ...[]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forkLocked(prefix, bodies)
	l.lie, l.lieOn = LieForkedTree, nil
}

func (l *Log) forkLocked(prefix int64, bodies [][]byte) {
	prefix = min(max(prefix, 0), l.main.size())
	if len(bodies) == 0 {
		for i := prefix; i < l.main.size(); i++ {
			bodies = append(bodies, alter(l.main.bodies[i]))
		}
		bodies = append(bodies, alter([]byte(fmt.Sprintf(`{"fakelog":"fork extra %d"}`, prefix))))
	}
	v := newView()
	for i := range prefix {
		v.add(l.main.bodies[i], l.main.times[i])
	}
	for _, b := range bodies {
		v.add(append([]byte(nil), b...), l.now().Unix())
	}
	l.forked = v
}

// RollbackTo sets the size LieStaleCheckpoint serves (0 < size <= Size)
// and turns that lie on for every endpoint.
func (l *Log) RollbackTo(size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rollback = size
	l.lie, l.lieOn = LieStaleCheckpoint, nil
}

// OtherMinisignKey is the minisign public key line LieOtherKey puts into
// entries (a real key nobody holds the secret of).
var OtherMinisignKey = func() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	raw := append([]byte("Ed"), make([]byte, 8)...)
	if _, err := rand.Read(raw[2:10]); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(append(raw, pub...))
}()

// served returns the view, its size and the lie that apply to ep.
func (l *Log) served(ep Endpoint) (*view, int64, Lie) {
	lie := l.lie
	if l.lieOn != nil && !l.lieOn[ep] {
		lie = Honest
	}
	switch lie {
	case LieForkedTree:
		if l.forked == nil {
			l.forkLocked(l.main.size()-1, nil)
		}
		return l.forked, l.forked.size(), lie
	case LieStaleCheckpoint:
		n := l.rollback
		if n <= 0 || n > l.main.size() {
			n = max(l.main.size()-1, 0)
		}
		return l.main, n, lie
	case LieOtherKey:
		v := newView()
		for i, b := range l.main.bodies {
			v.add(withKey(b, OtherMinisignKey), l.main.times[i])
		}
		return v, v.size(), lie
	}
	return l.main, l.main.size(), lie
}

// rekordBody is Rekor's canonical rekord v0.0.1 body, fields in the
// canonical (sorted) order.
type rekordBody struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Spec       rekordSpec `json:"spec"`
}

type rekordSpec struct {
	Data      rekordData       `json:"data"`
	Signature *rekordSignature `json:"signature"`
}

type rekordData struct {
	Hash *rekordHash `json:"hash"`
}

type rekordHash struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type rekordSignature struct {
	Content   string        `json:"content"`
	Format    string        `json:"format"`
	PublicKey *rekordPubKey `json:"publicKey"`
}

type rekordPubKey struct {
	Content string `json:"content"`
}

// withKey returns a rekord body with its public key replaced by line;
// other bodies unchanged.
func withKey(body []byte, line string) []byte {
	var b rekordBody
	if json.Unmarshal(body, &b) != nil || b.Kind != "rekord" || b.Spec.Signature == nil {
		return body
	}
	b.Spec.Signature.PublicKey = &rekordPubKey{Content: base64.StdEncoding.EncodeToString([]byte(line))}
	out, err := json.Marshal(b)
	if err != nil {
		return body
	}
	return out
}

// alter returns a different body of the same kind: a rekord for another
// artifact hash, or the bytes with a space appended.
func alter(body []byte) []byte {
	var b rekordBody
	if json.Unmarshal(body, &b) == nil && b.Kind == "rekord" && b.Spec.Data.Hash != nil {
		h := sha256.Sum256([]byte(b.Spec.Data.Hash.Value))
		b.Spec.Data.Hash.Value = hex.EncodeToString(h[:])
		if out, err := json.Marshal(b); err == nil {
			return out
		}
	}
	return append(append([]byte(nil), body...), ' ')
}
