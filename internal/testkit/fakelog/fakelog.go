// Package fakelog is a Rekor v1 for tests only: an httptest server speaking
// the REST subset bintrans uses, backed by an in-memory RFC 6962 tree, that
// tells the truth until told to lie.
//
// Honest answers are real: inclusion and consistency proofs come from
// transparency-dev/merkle, checkpoints are signed notes and SETs are ECDSA
// P-256 signatures over the same bytes Rekor signs, so Rekor's own verifier
// accepts them (tested). Lies (SetLie) are self-consistent where a real
// attacker's would be: a forked or rolled-back tree still comes with
// correctly signed checkpoints and valid proofs for what it shows.
//
// Search (index/retrieve) always answers from the honest index, which
// AddUnindexed leaves entries out of (as Rekor does when an uploader
// disconnects mid-request, or as a hostile log can do on purpose).
// Substitute makes the by-index reads (retrieve by log index, GET
// ?logIndex=) serve one entry in another's place: a log that hides an
// unindexed entry from monitors that read it by index.
//
// Endpoints: GET/POST /api/v1/log/entries, GET /api/v1/log/entries/{uuid},
// POST /api/v1/log/entries/retrieve, POST /api/v1/index/retrieve,
// GET /api/v1/log, GET /api/v1/log/proof, GET /api/v1/log/publicKey.
package fakelog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
)

// Hostname is the origin host of every checkpoint ("rekor.local - <tree id>").
const Hostname = "rekor.local"

// Log is a fake Rekor. Its exported fields are fixed at New.
type Log struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string
	// KeyPEM is the log's public key (PEM, "PUBLIC KEY"): pin it.
	KeyPEM []byte
	// Key is the log's signing key, for tests that forge with it.
	Key *ecdsa.PrivateKey
	// OtherKey signs checkpoints and SETs under LieOtherSigner.
	OtherKey *ecdsa.PrivateKey
	// OtherKeyPEM is OtherKey's public key (a "wrong log key" to pin).
	OtherKeyPEM []byte
	// LogID is hex sha256 of the DER public key, as Rekor reports it.
	LogID string
	// TreeID is the tree id; Origin is the checkpoint origin line.
	TreeID int64
	Origin string

	srv  *httptest.Server
	done chan struct{}

	mu       sync.Mutex
	main     *view
	byLeaf   map[string]int64   // leaf hash hex -> index
	byHash   map[string][]int64 // "sha256:<hex>" and key line -> indexes
	lie      Lie
	lieOn    map[Endpoint]bool // nil: every endpoint
	forked   *view
	rollback int64 // size served under LieStaleCheckpoint; 0 = size-1
	requests map[Endpoint]int
	now      func() time.Time
	subst    map[int64]int64 // by-index reads: index → the entry served there
}

// view is a tree as served: leaves, their bodies and times.
type view struct {
	tree   *testonly.Tree
	bodies [][]byte
	times  []int64
}

func newView() *view { return &view{tree: testonly.New(rfc6962.DefaultHasher)} }

func (v *view) add(body []byte, t int64) int64 {
	v.tree.AppendData(body)
	v.bodies = append(v.bodies, body)
	v.times = append(v.times, t)
	return int64(len(v.bodies) - 1)
}

func (v *view) size() int64 { return int64(len(v.bodies)) }

// New starts a fake log for the duration of the test.
func New(t testing.TB) *Log {
	t.Helper()
	l, err := newLog()
	if err != nil {
		t.Fatal(err)
	}
	l.srv = httptest.NewServer(l.handler())
	l.URL = l.srv.URL
	t.Cleanup(l.Close)
	return l
}

func newLog() (*Log, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	otherDER, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256(der)
	tid, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	l := &Log{
		KeyPEM:      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		Key:         key,
		OtherKey:    other,
		OtherKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: otherDER}),
		LogID:       hex.EncodeToString(id[:]),
		TreeID:      tid.Int64() + 1,
		done:        make(chan struct{}),
		main:        newView(),
		byLeaf:      map[string]int64{},
		byHash:      map[string][]int64{},
		requests:    map[Endpoint]int{},
		now:         time.Now,
	}
	l.Origin = fmt.Sprintf("%s - %d", Hostname, l.TreeID)
	return l, nil
}

// Close stops the server, releasing hanging requests first. New registers
// it with t.Cleanup.
func (l *Log) Close() {
	select {
	case <-l.done:
		return
	default:
	}
	close(l.done)
	if l.srv != nil {
		l.srv.Close()
	}
}

// Add appends a canonical entry body to the log, indexes it for search
// (rekord bodies: by data hash and public key) and returns the entry as
// Rekor answers an upload: honest, with an inclusion proof against the tree
// that includes it. Adding the same body twice appends it twice.
func (l *Log) Add(body []byte) *rekorv1.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := l.addLocked(body)
	return l.render(l.main, i, Honest).entry()
}

// AddUnindexed is Add without the search index: the entry is in the tree
// and found by UUID and by index, but the key and hash searches do not
// list it. It returns the entry's index.
func (l *Log) AddUnindexed(body []byte) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addLockedIndexed(body, false)
}

func (l *Log) addLocked(body []byte) int64 { return l.addLockedIndexed(body, true) }

func (l *Log) addLockedIndexed(body []byte, indexed bool) int64 {
	body = append([]byte(nil), body...)
	i := l.main.add(body, l.now().Unix())
	leaf := hex.EncodeToString(rfc6962.DefaultHasher.HashLeaf(body))
	if _, ok := l.byLeaf[leaf]; !ok {
		l.byLeaf[leaf] = i
	}
	if indexed {
		for _, k := range indexKeys(body) {
			l.byHash[k] = append(l.byHash[k], i)
		}
	}
	return i
}

// Substitute makes by-index reads answer index i with entry j of the
// honest tree, presented as entry i: its body and inclusion proof hashes,
// with log index i in the entry and the proof and a SET signed (with the
// log's key) for index i. A monitor that trusts the index it asked for
// sees entry j's body where entry i is. Reads by UUID and the tree are
// not affected.
func (l *Log) Substitute(i, j int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.subst == nil {
		l.subst = map[int64]int64{}
	}
	l.subst[i] = j
}

// ClearSubstitutions ends every Substitute.
func (l *Log) ClearSubstitutions() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subst = nil
}

// Size is the honest tree size.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.main.size()
}

// Entry returns entry i as the honest log serves it now (proof against the
// current tree), or nil.
func (l *Log) Entry(i int64) *rekorv1.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < 0 || i >= l.main.size() {
		return nil
	}
	return l.render(l.main, i, Honest).entry()
}

// Checkpoint returns the honest signed checkpoint of the current tree.
func (l *Log) Checkpoint() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return []byte(l.checkpoint(l.main.size(), l.main.tree.HashAt(uint64(l.main.size())), l.Key))
}

// CheckpointAt returns an honest signed checkpoint of the tree at size n
// (0 < n <= Size): what a client that synced at that size has stored.
func (l *Log) CheckpointAt(n int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 || n > l.main.size() {
		panic(fmt.Sprintf("fakelog: CheckpointAt(%d) of a tree of %d", n, l.main.size()))
	}
	return []byte(l.checkpoint(n, l.main.tree.HashAt(uint64(n)), l.Key))
}

// UUID is the entry id Rekor gives a body in this log: 16 hex digits of
// tree id, then the leaf hash.
func (l *Log) UUID(body []byte) string {
	return fmt.Sprintf("%016x%x", l.TreeID, rfc6962.DefaultHasher.HashLeaf(body))
}

// Requests returns how many requests each endpoint has served.
func (l *Log) Requests(ep Endpoint) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests[ep]
}

// checkpoint signs a note in Rekor's format.
func (l *Log) checkpoint(size int64, root []byte, key *ecdsa.PrivateKey) string {
	text := fmt.Sprintf("%s\n%d\n%s\n", l.Origin, size, base64.StdEncoding.EncodeToString(root))
	return text + "\n" + signatureLine(text, key) + "\n"
}

// signatureLine is "— <host> <base64(key hint ‖ DER ECDSA signature)>".
func signatureLine(text string, key *ecdsa.PrivateKey) string {
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	id := sha256.Sum256(der)
	d := sha256.Sum256([]byte(text))
	sig, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	if err != nil {
		panic(err)
	}
	return "— " + Hostname + " " + base64.StdEncoding.EncodeToString(append(id[:4:4], sig...))
}

// set signs Rekor's SET payload: canonical JSON of body, integratedTime,
// logID, logIndex (global), in that order.
func set(body []byte, integrated int64, logID string, index int64, key *ecdsa.PrivateKey) []byte {
	payload, _ := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogID          string `json:"logID"`
		LogIndex       int64  `json:"logIndex"`
	}{base64.StdEncoding.EncodeToString(body), integrated, logID, index})
	d := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, d[:])
	if err != nil {
		panic(err)
	}
	return sig
}

// indexKeys are the search keys of a rekord body: "sha256:<data hash>" and
// "key:<base64 key line>". Other bodies are not indexed.
func indexKeys(body []byte) []string {
	var b rekordBody
	if json.Unmarshal(body, &b) != nil || b.Kind != "rekord" {
		return nil
	}
	var keys []string
	if h := b.Spec.Data.Hash; h != nil && h.Algorithm == "sha256" {
		keys = append(keys, "sha256:"+strings.ToLower(h.Value))
	}
	if b.Spec.Signature != nil && b.Spec.Signature.PublicKey != nil {
		if raw, err := base64.StdEncoding.DecodeString(b.Spec.Signature.PublicKey.Content); err == nil {
			if line, ok := keyLine(raw); ok {
				keys = append(keys, "key:"+line)
			}
		}
	}
	return keys
}

// keyLine finds the base64 minisign key line (42 bytes "Ed"‖id‖key) in a
// .pub file or a bare line.
func keyLine(pub []byte) (string, bool) {
	for _, line := range strings.Split(strings.ReplaceAll(string(pub), "\r", ""), "\n") {
		line = strings.TrimSpace(line)
		raw, err := base64.StdEncoding.DecodeString(line)
		if err == nil && len(raw) == 42 && raw[0] == 'E' && raw[1] == 'd' {
			return line, true
		}
	}
	return "", false
}
