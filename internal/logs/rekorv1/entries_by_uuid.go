package rekorv1

import (
	"context"
	"slices"
	"strings"

	"github.com/sigstore/rekor/pkg/generated/models"
)

// EntriesByUUID fetches entries by UUID (80-hex entry id or 64-hex leaf
// hash) with POST /api/v1/log/entries/retrieve, MaxBatch UUIDs per request
// and at most the client's concurrency in flight: what a monitor needs
// after a key search. Results are keyed by leaf hash (the last 64 hex
// digits, lower case); UUIDs the log does not return are absent, entries
// that were not asked for and repeated ones are dropped. Like every
// method of Client, nothing is verified but the shape.
func (c *Client) EntriesByUUID(ctx context.Context, uuids []string) (map[string]*Entry, error) {
	const op = "retrieve entries by uuid"
	want := make(map[string]bool, len(uuids))
	var uniq []string
	for _, u := range uuids {
		u = strings.ToLower(u)
		if err := checkArg(op, validUUID(u), "%q is not a 64- or 80-hex entry id", truncate(u)); err != nil {
			return nil, err
		}
		leaf := u[len(u)-64:]
		if !want[leaf] {
			want[leaf] = true
			uniq = append(uniq, u)
		}
	}
	var queries []*models.SearchLogQuery
	for chunk := range slices.Chunk(uniq, MaxBatch) {
		queries = append(queries, &models.SearchLogQuery{EntryUUIDs: chunk})
	}
	answers, err := c.retrieve(ctx, op, "uuids", queries)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Entry, len(uniq))
	for _, e := range answers {
		leaf := e.UUID[len(e.UUID)-64:]
		if want[leaf] && out[leaf] == nil {
			out[leaf] = e
		}
	}
	return out, nil
}
