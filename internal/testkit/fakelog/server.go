package fakelog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/crypto/blake2b"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
)

// Wire types, fields in Rekor's order.
type entryJSON struct {
	Body           string            `json:"body"`
	IntegratedTime int64             `json:"integratedTime"`
	LogID          string            `json:"logID"`
	LogIndex       int64             `json:"logIndex"`
	Verification   *verificationJSON `json:"verification,omitempty"`
}

type verificationJSON struct {
	InclusionProof       *proofJSON `json:"inclusionProof,omitempty"`
	SignedEntryTimestamp []byte     `json:"signedEntryTimestamp,omitempty"`
}

type proofJSON struct {
	Checkpoint string   `json:"checkpoint"`
	Hashes     []string `json:"hashes"`
	LogIndex   int64    `json:"logIndex"`
	RootHash   string   `json:"rootHash"`
	TreeSize   int64    `json:"treeSize"`
}

type rendered struct {
	uuid string
	e    entryJSON
}

func (r rendered) entry() *rekorv1.Entry {
	body, _ := base64.StdEncoding.DecodeString(r.e.Body)
	p := r.e.Verification.InclusionProof
	root, _ := hex.DecodeString(p.RootHash)
	hashes := make([][]byte, len(p.Hashes))
	for i, h := range p.Hashes {
		hashes[i], _ = hex.DecodeString(h) // the fake log renders hex
	}
	return &rekorv1.Entry{
		UUID: r.uuid, LogIndex: r.e.LogIndex, LogID: r.e.LogID, IntegratedTime: r.e.IntegratedTime, Body: body,
		SET: r.e.Verification.SignedEntryTimestamp,
		Proof: &rekorv1.InclusionProof{LogIndex: p.LogIndex, RootHash: root, TreeSize: p.TreeSize,
			Hashes: hashes, Checkpoint: []byte(p.Checkpoint)},
	}
}

// render serves entry i of v at v's full size. The caller holds l.mu.
func (l *Log) render(v *view, i int64, lie Lie) rendered {
	return l.renderAt(v, v.size(), i, lie)
}

// renderAt serves entry i of v at tree size size (i < size <= v.size()).
func (l *Log) renderAt(v *view, size, i int64, lie Lie) rendered {
	body := v.bodies[i]
	root := l.rootAt(v, size, lie)
	proof, err := v.tree.InclusionProof(uint64(i), uint64(size))
	if err != nil {
		panic(err)
	}
	cpKey, setKey := l.Key, l.Key
	setBody := body
	proofSize := size
	switch lie {
	case LieProofForOtherLeaf:
		if size > 1 {
			proof, _ = v.tree.InclusionProof(uint64((i+1)%size), uint64(size))
		} else {
			h := sha256.Sum256([]byte("fakelog other leaf"))
			proof = [][]byte{h[:]}
		}
	case LieSETForOtherBody:
		setBody = alter(body)
	case LieOtherSigner:
		cpKey, setKey = l.OtherKey, l.OtherKey
	case LieProofTreeSize:
		proofSize = size + 1
	}
	hashes := make([]string, len(proof))
	for k, h := range proof {
		hashes[k] = hex.EncodeToString(h)
	}
	return rendered{
		uuid: l.UUID(body),
		e: entryJSON{
			Body:           base64.StdEncoding.EncodeToString(body),
			IntegratedTime: v.times[i],
			LogID:          l.LogID,
			LogIndex:       i,
			Verification: &verificationJSON{
				InclusionProof: &proofJSON{
					Checkpoint: l.checkpoint(size, root, cpKey),
					Hashes:     hashes,
					LogIndex:   i,
					RootHash:   hex.EncodeToString(root),
					TreeSize:   proofSize,
				},
				SignedEntryTimestamp: set(setBody, v.times[i], l.LogID, i, setKey),
			},
		},
	}
}

func (l *Log) rootAt(v *view, size int64, lie Lie) []byte {
	root := v.tree.HashAt(uint64(size))
	if lie == LieWrongRoot {
		h := sha256.Sum256(append([]byte("fakelog wrong root"), root...))
		root = h[:]
	}
	return root
}

func (l *Log) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/log/entries/{uuid}", l.wrap(EndpointEntry, l.getEntry))
	mux.HandleFunc("GET /api/v1/log/entries", l.wrap(EndpointEntry, l.getEntryByIndex))
	mux.HandleFunc("POST /api/v1/log/entries", l.wrap(EndpointUpload, l.upload))
	mux.HandleFunc("POST /api/v1/log/entries/retrieve", l.wrap(EndpointRetrieve, l.retrieve))
	mux.HandleFunc("POST /api/v1/index/retrieve", l.wrap(EndpointSearch, l.search))
	mux.HandleFunc("GET /api/v1/log", l.wrap(EndpointLogInfo, l.logInfo))
	mux.HandleFunc("GET /api/v1/log/proof", l.wrap(EndpointProof, l.proof))
	mux.HandleFunc("GET /api/v1/log/publicKey", l.wrap(EndpointPublicKey, l.publicKey))
	return mux
}

// answer is what a handler produces; wrap writes it, or a transport lie.
type answer struct {
	code   int
	ctype  string
	body   []byte
	header http.Header
}

func jsonAnswer(code int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return answer{code: code, ctype: "application/json", body: append(b, '\n')}
}

func errAnswer(code int, msg string) answer {
	return jsonAnswer(code, map[string]any{"code": code, "message": msg})
}

func (l *Log) wrap(ep Endpoint, h func(*http.Request) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		l.mu.Lock()
		l.requests[ep]++
		lie := l.lie
		if l.lieOn != nil && !l.lieOn[ep] {
			lie = Honest
		}
		l.mu.Unlock()
		if lie == LieHang {
			select {
			case <-r.Context().Done():
			case <-l.done:
			}
			return
		}
		a := h(r)
		switch lie {
		case LieTruncatedJSON:
			a.body = a.body[:len(a.body)/2]
		case LieGarbageJSON:
			a = answer{code: 200, ctype: "application/json", body: []byte("\x00\xffnot json at all {[\n")}
		case LieEmptyBody:
			a = answer{code: 200, ctype: "application/json"}
		case LieHTML502:
			a = answer{code: http.StatusBadGateway, ctype: "text/html",
				body: []byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")}
		case LieOversizedJSON:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			chunk := bytes.Repeat([]byte(`"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",`), 640)
			if _, err := io.WriteString(w, "["); err != nil {
				return
			}
			for written := 0; written < 100<<20; written += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			io.WriteString(w, `""]`)
			return
		}
		for k, v := range a.header {
			w.Header()[k] = v
		}
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.code)
		w.Write(a.body)
	}
}

func (l *Log) getEntry(r *http.Request) answer {
	id := strings.ToLower(r.PathValue("uuid"))
	if !isHex(id, 64) && !isHex(id, 80) {
		return errAnswer(400, "invalid uuid")
	}
	leaf := id[len(id)-64:]
	l.mu.Lock()
	defer l.mu.Unlock()
	v, size, lie := l.served(EndpointEntry)
	i, ok := l.lookup(v, leaf)
	if !ok || i >= size {
		return answer{code: 404}
	}
	e := l.renderAt(v, size, i, lie)
	return jsonAnswer(200, map[string]entryJSON{fmt.Sprintf("%016x%s", l.TreeID, leaf): e.e})
}

// lookup finds a leaf in the served view (a fork's own entries), else
// its index in the honest log (whose body the view may replace).
func (l *Log) lookup(v *view, leaf string) (int64, bool) {
	if v != l.main {
		for i, b := range v.bodies {
			if hex.EncodeToString(rfc6962.DefaultHasher.HashLeaf(b)) == leaf {
				return int64(i), true
			}
		}
	}
	i, ok := l.byLeaf[leaf]
	return i, ok
}

func (l *Log) getEntryByIndex(r *http.Request) answer {
	i, err := strconv.ParseInt(r.URL.Query().Get("logIndex"), 10, 64)
	if err != nil || i < 0 {
		return errAnswer(422, "logIndex in query must be an integer >= 0")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v, size, lie := l.served(EndpointEntry)
	if i >= size {
		return answer{code: 404}
	}
	e := l.renderIndex(v, size, i, lie)
	return jsonAnswer(200, map[string]entryJSON{e.uuid: e.e})
}

// renderIndex is renderAt for a read by index, with Substitute applied.
func (l *Log) renderIndex(v *view, size, i int64, lie Lie) rendered {
	j, ok := l.subst[i]
	if !ok || v != l.main || j < 0 || j >= size {
		return l.renderAt(v, size, i, lie)
	}
	e := l.renderAt(v, size, j, lie)
	e.e.LogIndex = i
	e.e.Verification.InclusionProof.LogIndex = i
	body, _ := base64.StdEncoding.DecodeString(e.e.Body)
	e.e.Verification.SignedEntryTimestamp = set(body, e.e.IntegratedTime, l.LogID, i, l.Key)
	return e
}

func (l *Log) retrieve(r *http.Request) answer {
	var q struct {
		EntryUUIDs []string `json:"entryUUIDs"`
		LogIndexes []*int64 `json:"logIndexes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		return errAnswer(400, "parsing body: "+err.Error())
	}
	if len(q.EntryUUIDs) > 10 {
		return errAnswer(422, "entryUUIDs in body should have at most 10 items")
	}
	if len(q.LogIndexes) > 10 {
		return errAnswer(422, "logIndexes in body should have at most 10 items")
	}
	if len(q.EntryUUIDs)+len(q.LogIndexes) > 10 {
		return errAnswer(422, "search query must have at most 10 items")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v, size, lie := l.served(EndpointRetrieve)
	out := []map[string]entryJSON{}
	for _, id := range q.EntryUUIDs {
		id = strings.ToLower(id)
		if !isHex(id, 64) && !isHex(id, 80) {
			return errAnswer(400, "invalid uuid "+id)
		}
		if i, ok := l.lookup(v, id[len(id)-64:]); ok && i < size {
			e := l.renderAt(v, size, i, lie)
			out = append(out, map[string]entryJSON{e.uuid: e.e})
		}
	}
	for _, p := range q.LogIndexes {
		if p == nil || *p < 0 {
			return errAnswer(422, "logIndexes must be >= 0")
		}
		if *p < size {
			e := l.renderIndex(v, size, *p, lie)
			out = append(out, map[string]entryJSON{e.uuid: e.e})
		}
	}
	return jsonAnswer(200, out)
}

func (l *Log) search(r *http.Request) answer {
	var q struct {
		Hash      string `json:"hash"`
		PublicKey *struct {
			Format  string `json:"format"`
			Content []byte `json:"content"`
		} `json:"publicKey"`
		Operator string `json:"operator"`
	}
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		return errAnswer(400, "parsing body: "+err.Error())
	}
	var sets [][]int64
	if q.Hash != "" {
		h := strings.ToLower(strings.TrimPrefix(q.Hash, "sha256:"))
		if !isHex(h, 64) {
			return errAnswer(422, "hash must be a sha256")
		}
		l.mu.Lock()
		sets = append(sets, slices.Clone(l.byHash["sha256:"+h]))
		l.mu.Unlock()
	}
	if q.PublicKey != nil {
		if q.PublicKey.Format != "minisign" {
			return errAnswer(400, "unsupported PKI format")
		}
		line, ok := keyLine(q.PublicKey.Content)
		if !ok {
			return errAnswer(400, "malformed public key")
		}
		l.mu.Lock()
		sets = append(sets, slices.Clone(l.byHash["key:"+line]))
		l.mu.Unlock()
	}
	var idx []int64
	for k, s := range sets {
		if k == 0 || q.Operator != "and" {
			idx = append(idx, s...)
			continue
		}
		idx = slices.DeleteFunc(idx, func(i int64) bool { return !slices.Contains(s, i) })
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	uuids := []string{}
	for _, i := range idx {
		uuids = append(uuids, l.UUID(l.main.bodies[i]))
	}
	slices.Sort(uuids)
	return jsonAnswer(200, slices.Compact(uuids))
}

func (l *Log) logInfo(r *http.Request) answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, size, lie := l.served(EndpointLogInfo)
	root := l.rootAt(v, size, lie)
	key := l.Key
	if lie == LieOtherSigner {
		key = l.OtherKey
	}
	return jsonAnswer(200, map[string]any{
		"inactiveShards": nil,
		"rootHash":       hex.EncodeToString(root),
		"signedTreeHead": l.checkpoint(size, root, key),
		"treeID":         strconv.FormatInt(l.TreeID, 10),
		"treeSize":       size,
	})
}

func (l *Log) proof(r *http.Request) answer {
	q := r.URL.Query()
	first := int64(1)
	if s := q.Get("firstSize"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return errAnswer(422, "firstSize in query should be greater than or equal to 1")
		}
		first = n
	}
	last, err := strconv.ParseInt(q.Get("lastSize"), 10, 64)
	if err != nil || last < 1 {
		return errAnswer(422, "lastSize in query should be greater than or equal to 1")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v, size, lie := l.served(EndpointProof)
	if last > size {
		return errAnswer(400, fmt.Sprintf("the tree size requested(%d) was greater than what is currently observable(%d)", last, size))
	}
	if first > last {
		return errAnswer(400, fmt.Sprintf("firstSize(%d) must be less than or equal to lastSize(%d)", first, last))
	}
	p, err := v.tree.ConsistencyProof(uint64(first), uint64(last))
	if err != nil {
		return errAnswer(500, err.Error())
	}
	hashes := make([]string, len(p))
	for i, h := range p {
		if lie == LieBadConsistencyProof && i == 0 {
			h = slices.Clone(h)
			h[0] ^= 1
		}
		hashes[i] = hex.EncodeToString(h)
	}
	return jsonAnswer(200, map[string]any{"hashes": hashes, "rootHash": hex.EncodeToString(l.rootAt(v, last, lie))})
}

func (l *Log) publicKey(r *http.Request) answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _, lie := l.served(EndpointPublicKey)
	k := l.KeyPEM
	if lie == LieOtherSigner {
		k = l.OtherKeyPEM
	}
	return answer{code: 200, ctype: "application/x-pem-file", body: k}
}

// upload accepts a rekord v0.0.1 minisign entry the way Rekor does: the
// Ed25519 signature must verify over data.content (prehashed with
// BLAKE2b-512 for "ED"); key ids are not compared; the stored body is the
// canonical one. A duplicate is a 409 with Location.
func (l *Log) upload(r *http.Request) answer {
	var pe struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Spec       struct {
			Signature *struct {
				Format    string `json:"format"`
				Content   []byte `json:"content"`
				PublicKey *struct {
					Content []byte `json:"content"`
				} `json:"publicKey"`
			} `json:"signature"`
			Data *struct {
				Content []byte `json:"content"`
			} `json:"data"`
		} `json:"spec"`
	}
	if err := json.NewDecoder(r.Body).Decode(&pe); err != nil {
		return errAnswer(400, "parsing body: "+err.Error())
	}
	if pe.Kind != "rekord" || pe.APIVersion != "0.0.1" {
		return errAnswer(400, fmt.Sprintf("fakelog accepts only rekord 0.0.1, not %s %s", pe.Kind, pe.APIVersion))
	}
	s := pe.Spec.Signature
	if s == nil || s.Format != "minisign" || s.PublicKey == nil {
		return errAnswer(400, "error processing entry: fakelog accepts only minisign signatures")
	}
	if pe.Spec.Data == nil || len(pe.Spec.Data.Content) == 0 {
		return errAnswer(400, "error processing entry: entry not insertable into log: missing data content")
	}
	sigRaw, ok := sigLine(s.Content)
	if !ok {
		return errAnswer(400, "error processing entry: invalid signature provided")
	}
	line, ok := keyLine(s.PublicKey.Content)
	if !ok {
		return errAnswer(400, "error processing entry: unable to read minisign public key")
	}
	keyRaw, _ := base64.StdEncoding.DecodeString(line)
	msg := pe.Spec.Data.Content
	if sigRaw[1] == 'D' {
		h := blake2b.Sum512(msg)
		msg = h[:]
	}
	if !ed25519.Verify(ed25519.PublicKey(keyRaw[10:]), msg, sigRaw[10:]) {
		return errAnswer(400, "error processing entry: failed to verify signature")
	}
	dataHash := sha256.Sum256(pe.Spec.Data.Content)
	body, _ := json.Marshal(rekordBody{
		APIVersion: "0.0.1", Kind: "rekord",
		Spec: rekordSpec{
			Data: rekordData{Hash: &rekordHash{Algorithm: "sha256", Value: hex.EncodeToString(dataHash[:])}},
			Signature: &rekordSignature{
				Content:   base64.StdEncoding.EncodeToString([]byte("untrusted comment:\n" + base64.StdEncoding.EncodeToString(sigRaw))),
				Format:    "minisign",
				PublicKey: &rekordPubKey{Content: base64.StdEncoding.EncodeToString([]byte(line))},
			},
		},
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	uuid := l.UUID(body)
	if _, dup := l.byLeaf[uuid[16:]]; dup {
		a := errAnswer(409, "an equivalent entry already exists in the transparency log with UUID "+uuid)
		a.header = http.Header{"Location": {"/api/v1/log/entries/" + uuid}}
		return a
	}
	i := l.addLocked(body)
	// The answer lies like the other endpoints (the new entry is logged
	// honestly either way); a view without the new entry answers honestly.
	e := l.render(l.main, i, Honest)
	if v, size, lie := l.served(EndpointUpload); i < size {
		e.e = l.renderAt(v, size, i, lie).e
	}
	a := jsonAnswer(201, map[string]entryJSON{e.uuid: e.e})
	a.header = http.Header{"Location": {"/api/v1/log/entries/" + e.uuid}, "Etag": {e.uuid}}
	return a
}

// sigLine decodes the signature line of a minisign signature file (4
// lines, or Rekor's 2-line form): 74 bytes "E[dD]" ‖ key id ‖ signature.
func sigLine(content []byte) ([]byte, bool) {
	lines := strings.Split(strings.ReplaceAll(string(content), "\r", ""), "\n")
	if len(lines) < 2 {
		return nil, false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[1]))
	if err != nil || len(raw) != 74 || raw[0] != 'E' || (raw[1] != 'd' && raw[1] != 'D') {
		return nil, false
	}
	return raw, true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
