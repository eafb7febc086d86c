package rekorv1

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/go-openapi/swag/conv"
	"github.com/sigstore/rekor/pkg/generated/client/entries"
	"github.com/sigstore/rekor/pkg/generated/client/index"
	"github.com/sigstore/rekor/pkg/generated/client/tlog"
	"github.com/sigstore/rekor/pkg/generated/models"
	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/verify"
)

// MaxSearchResults bounds the UUIDs one search may return.
const MaxSearchResults = 1 << 20

// EntryByUUID fetches one entry (GET /api/v1/log/entries/{uuid}); uuid is
// the 80-hex entry id or the 64-hex leaf hash. The answer must hold exactly
// that entry. A 404 is an error wrapping verify.ErrNotFound.
func (c *Client) EntryByUUID(ctx context.Context, uuid string) (*Entry, error) {
	const op = "get entry"
	uuid = strings.ToLower(uuid)
	if err := checkArg(op, validUUID(uuid), "%q is not a 64- or 80-hex entry id", uuid); err != nil {
		return nil, err
	}
	var payload models.LogEntry
	err := c.call(ctx, op, c.maxResponse, func(ctx context.Context) error {
		resp, err := c.rc.Entries.GetLogEntryByUUIDContext(ctx, entries.NewGetLogEntryByUUIDParams().WithEntryUUID(uuid))
		if err != nil {
			return err
		}
		payload = resp.Payload
		return nil
	})
	if err != nil {
		return nil, err
	}
	return single(op, payload, uuid)
}

// single converts a one-entry answer, checking that its key is want (full
// id or leaf-hash suffix).
func single(op string, payload models.LogEntry, want string) (*Entry, error) {
	if len(payload) != 1 {
		return nil, &CallError{Op: op, Err: malformed(op, "%d entries in the answer, want 1", len(payload))}
	}
	for k, v := range payload {
		if !sameEntry(k, want) {
			return nil, &CallError{Op: op, Err: malformed(op, "asked for entry %s, got %s", want, k)}
		}
		e, err := convertEntry(op, k, v)
		if err != nil {
			return nil, &CallError{Op: op, Err: err}
		}
		return e, nil
	}
	panic("unreachable")
}

// EntriesByIndex fetches entries by global log index with
// POST /api/v1/log/entries/retrieve, MaxBatch indexes per request and at
// most the client's concurrency in flight. Results are keyed by the
// logIndex each entry states; indexes the log does not return are absent,
// entries that were not asked for and repeated ones are dropped.
func (c *Client) EntriesByIndex(ctx context.Context, indexes []int64) (map[int64]*Entry, error) {
	const op = "retrieve entries"
	want := make(map[int64]bool, len(indexes))
	var uniq []int64
	for _, i := range indexes {
		if i < 0 {
			return nil, checkArg(op, false, "negative log index %d", i)
		}
		if !want[i] {
			want[i] = true
			uniq = append(uniq, i)
		}
	}
	slices.Sort(uniq)
	var queries []*models.SearchLogQuery
	for chunk := range slices.Chunk(uniq, MaxBatch) {
		q := &models.SearchLogQuery{LogIndexes: make([]*int64, len(chunk))}
		for i := range chunk {
			q.LogIndexes[i] = &chunk[i]
		}
		queries = append(queries, q)
	}
	answers, err := c.retrieve(ctx, op, "indexes", queries)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*Entry, len(uniq))
	for _, e := range answers {
		if want[e.LogIndex] && out[e.LogIndex] == nil {
			out[e.LogIndex] = e
		}
	}
	return out, nil
}

// retrieve sends each query (at most MaxBatch items) to
// POST /api/v1/log/entries/retrieve, at most the client's concurrency in
// flight, and returns every entry answered, converted and bounded, in query
// order. what names the queried items in errors ("indexes", "uuids").
func (c *Client) retrieve(ctx context.Context, op, what string, queries []*models.SearchLogQuery) ([]*Entry, error) {
	answers := make([][]*Entry, len(queries))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.concurrency)
	for qi, q := range queries {
		g.Go(func() error {
			var payload []models.LogEntry
			err := c.call(gctx, op, c.maxResponse, func(ctx context.Context) error {
				resp, err := c.rc.Entries.SearchLogQueryContext(ctx, entries.NewSearchLogQueryParams().WithEntry(q))
				if err != nil {
					return err
				}
				payload = resp.Payload
				return nil
			})
			if err != nil {
				return err
			}
			if len(payload) > 2*MaxBatch {
				return &CallError{Op: op, Err: malformed(op, "%d entries for %d %s", len(payload), len(q.LogIndexes)+len(q.EntryUUIDs), what)}
			}
			for _, m := range payload {
				for k, v := range m {
					e, err := convertEntry(op, k, v)
					if err != nil {
						return &CallError{Op: op, Err: err}
					}
					answers[qi] = append(answers[qi], e)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(answers...), nil
}

// SearchByHash returns the UUIDs the search index holds for the artifact
// hash sha256:<sha256Hex> (POST /api/v1/index/retrieve), sorted, without
// repeats. The index is written asynchronously: a fresh entry can be
// missing.
func (c *Client) SearchByHash(ctx context.Context, sha256Hex string) ([]string, error) {
	const op = "search by hash"
	sha256Hex = strings.ToLower(sha256Hex)
	if err := checkArg(op, isHex(sha256Hex, 64), "%q is not a hex sha256", sha256Hex); err != nil {
		return nil, err
	}
	return c.search(ctx, op, &models.SearchIndex{Hash: "sha256:" + sha256Hex})
}

// SearchByPublicKey returns the UUIDs of every entry signed by the minisign
// key in pubKeyFile (the .pub file text or its base64 key line), sorted,
// without repeats. Rekor v1 has no paging: this is the whole answer,
// bounded by the client's search size limit.
func (c *Client) SearchByPublicKey(ctx context.Context, pubKeyFile []byte) ([]string, error) {
	const op = "search by public key"
	if err := checkArg(op, len(pubKeyFile) > 0 && len(pubKeyFile) <= maxPubKeyFileSize, "public key of %d bytes", len(pubKeyFile)); err != nil {
		return nil, err
	}
	return c.search(ctx, op, &models.SearchIndex{PublicKey: &models.SearchIndexPublicKey{
		Format:  conv.Pointer(models.SearchIndexPublicKeyFormatMinisign),
		Content: pubKeyFile,
	}})
}

func (c *Client) search(ctx context.Context, op string, q *models.SearchIndex) ([]string, error) {
	var payload []string
	err := c.call(ctx, op, c.maxSearch, func(ctx context.Context) error {
		resp, err := c.rc.Index.SearchIndexContext(ctx, index.NewSearchIndexParams().WithQuery(q))
		if err != nil {
			return err
		}
		payload = resp.Payload
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(payload) > MaxSearchResults {
		return nil, &CallError{Op: op, Err: malformed(op, "%d results", len(payload))}
	}
	out := make([]string, 0, len(payload))
	for _, u := range payload {
		u = strings.ToLower(u)
		if !validUUID(u) {
			return nil, &CallError{Op: op, Err: malformed(op, "%q is not an entry id", truncate(u))}
		}
		out = append(out, u)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// LogInfo is the log's answer to GET /api/v1/log.
type LogInfo struct {
	TreeID   string
	TreeSize int64
	RootHash []byte
	// Checkpoint is the signed note (unverified).
	Checkpoint []byte
	// InactiveShards counts the frozen shards of a sharded log.
	InactiveShards int
}

// Info fetches the current tree head (GET /api/v1/log), unverified.
func (c *Client) Info(ctx context.Context) (*LogInfo, error) {
	const op = "get log info"
	var p *models.LogInfo
	err := c.call(ctx, op, c.maxResponse, func(ctx context.Context) error {
		resp, err := c.rc.Tlog.GetLogInfoContext(ctx, tlog.NewGetLogInfoParams())
		if err != nil {
			return err
		}
		p = resp.Payload
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p == nil || p.SignedTreeHead == nil || p.TreeSize == nil || p.RootHash == nil || p.TreeID == nil {
		return nil, &CallError{Op: op, Err: malformed(op, "missing signedTreeHead, treeSize, rootHash or treeID")}
	}
	if len(*p.SignedTreeHead) == 0 || len(*p.SignedTreeHead) > verify.MaxCheckpointSize {
		return nil, &CallError{Op: op, Err: malformed(op, "signedTreeHead of %d bytes", len(*p.SignedTreeHead))}
	}
	root, err := hex.DecodeString(*p.RootHash)
	if err != nil || len(root) != 32 || *p.TreeSize < 0 {
		return nil, &CallError{Op: op, Err: malformed(op, "rootHash %q, treeSize %d", truncate(*p.RootHash), *p.TreeSize)}
	}
	return &LogInfo{TreeID: *p.TreeID, TreeSize: *p.TreeSize, RootHash: root,
		Checkpoint: []byte(*p.SignedTreeHead), InactiveShards: len(p.InactiveShards)}, nil
}

// Checkpoint returns the log's current signed checkpoint (note text),
// unverified.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	return info.Checkpoint, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof between tree
// sizes first and last of the active tree (GET /api/v1/log/proof),
// unverified. The root hash the log sends along is ignored: the caller
// has it from a verified checkpoint. On a sharded log this is the active
// shard's tree: a stored checkpoint whose origin names another tree id
// (an inactive shard) cannot be proven consistent this way; compare
// origins first.
func (c *Client) ConsistencyProof(ctx context.Context, first, last int64) ([][]byte, error) {
	const op = "get consistency proof"
	if err := checkArg(op, first > 0 && first <= last, "sizes %d..%d (want 0 < first <= last)", first, last); err != nil {
		return nil, err
	}
	var p *models.ConsistencyProof
	err := c.call(ctx, op, c.maxResponse, func(ctx context.Context) error {
		resp, err := c.rc.Tlog.GetLogProofContext(ctx, tlog.NewGetLogProofParams().WithFirstSize(&first).WithLastSize(last))
		if err != nil {
			return err
		}
		p = resp.Payload
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p == nil || p.RootHash == nil {
		return nil, &CallError{Op: op, Err: malformed(op, "empty answer")}
	}
	hashes, err := decodeHashes(op, p.Hashes)
	if err != nil {
		return nil, &CallError{Op: op, Err: err}
	}
	return hashes, nil
}

func decodeHashes(op string, hs []string) ([][]byte, error) {
	if len(hs) > verify.MaxProofHashes {
		return nil, malformed(op, "%d proof hashes (max %d)", len(hs), verify.MaxProofHashes)
	}
	if hs == nil {
		return nil, nil // as sent: a bundle keeps "hashes": null
	}
	out := make([][]byte, len(hs))
	for i, h := range hs {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return nil, malformed(op, "proof hash %d %q is not 32 hex bytes", i, truncate(h))
		}
		out[i] = b
	}
	return out, nil
}

// convertEntry turns one entry of an answer into an Entry: every field
// decoded once (base64 body, hex root and proof hashes: an undecodable one
// makes the answer malformed), shape and size checked, nothing verified.
func convertEntry(op, uuid string, v models.LogEntryAnon) (*Entry, error) {
	uuid = strings.ToLower(uuid)
	if !validUUID(uuid) {
		return nil, malformed(op, "entry id %q", truncate(uuid))
	}
	if v.LogIndex == nil || v.IntegratedTime == nil || v.LogID == nil || v.Body == nil {
		return nil, malformed(op, "entry %s lacks logIndex, integratedTime, logID or body", uuid)
	}
	b64, ok := v.Body.(string)
	if !ok {
		return nil, malformed(op, "entry %s: body is a %T, want a base64 string", uuid, v.Body)
	}
	if base64.StdEncoding.DecodedLen(len(b64)) > MaxEntryBodySize {
		return nil, malformed(op, "entry %s: body of %d base64 bytes (max %d decoded)", uuid, len(b64), MaxEntryBodySize)
	}
	body, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(body) == 0 {
		return nil, malformed(op, "entry %s: body is not base64", uuid)
	}
	if *v.LogIndex < 0 || !isHex(*v.LogID, 64) {
		return nil, malformed(op, "entry %s: logIndex %d, logID %q", uuid, *v.LogIndex, truncate(*v.LogID))
	}
	e := &Entry{
		UUID:           uuid,
		LogIndex:       *v.LogIndex,
		LogID:          *v.LogID,
		IntegratedTime: *v.IntegratedTime,
		Body:           body,
	}
	if v.Verification == nil {
		return e, nil
	}
	if len(v.Verification.SignedEntryTimestamp) > maxSETSize {
		return nil, malformed(op, "entry %s: SET of %d bytes", uuid, len(v.Verification.SignedEntryTimestamp))
	}
	e.SET = v.Verification.SignedEntryTimestamp
	if ip := v.Verification.InclusionProof; ip != nil {
		if e.Proof, err = convertProof(op, uuid, ip); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// convertProof decodes an inclusion proof: its root and hashes must be 32
// hex bytes each.
func convertProof(op, uuid string, ip *models.InclusionProof) (*InclusionProof, error) {
	if ip.Checkpoint == nil || ip.LogIndex == nil || ip.RootHash == nil || ip.TreeSize == nil {
		return nil, malformed(op, "entry %s: inclusion proof lacks checkpoint, logIndex, rootHash or treeSize", uuid)
	}
	if len(*ip.Checkpoint) > verify.MaxCheckpointSize {
		return nil, malformed(op, "entry %s: oversized inclusion proof", uuid)
	}
	root, err := hex.DecodeString(*ip.RootHash)
	if err != nil || len(root) != 32 {
		return nil, malformed(op, "entry %s: inclusion proof rootHash %q is not 32 hex bytes", uuid, truncate(*ip.RootHash))
	}
	hashes, err := decodeHashes(op, ip.Hashes)
	if err != nil {
		return nil, fmt.Errorf("entry %s: %w", uuid, err)
	}
	return &InclusionProof{LogIndex: *ip.LogIndex, TreeSize: *ip.TreeSize, RootHash: root, Hashes: hashes, Checkpoint: []byte(*ip.Checkpoint)}, nil
}

// sameEntry reports whether the answer's key names the entry asked for: the
// same id, or the same leaf hash (last 64 hex digits).
func sameEntry(got, want string) bool {
	got, want = strings.ToLower(got), strings.ToLower(want)
	if !validUUID(got) {
		return false
	}
	return got == want || got[len(got)-64:] == want[len(want)-64:]
}

func validUUID(s string) bool { return isHex(s, 64) || isHex(s, 80) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
