package rekor

import (
	"context"
	"slices"
	"strings"

	"github.com/sigstore/rekor/pkg/generated/client/entries"
	"github.com/sigstore/rekor/pkg/generated/models"
	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/verify"
)

// EntriesByUUID fetches entries by UUID (80-hex entry id or 64-hex leaf
// hash) with POST /api/v1/log/entries/retrieve, MaxBatch UUIDs per request
// and at most the client's concurrency in flight: what a monitor needs
// after a key search. Results are keyed by leaf hash (the last 64 hex
// digits, lower case); UUIDs the log does not return are absent, entries
// that were not asked for and repeated ones are dropped. Like every
// method of Client, nothing is verified but the shape.
func (c *Client) EntriesByUUID(ctx context.Context, uuids []string) (map[string]*verify.LogEntry, error) {
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
	chunks := slices.Collect(slices.Chunk(uniq, MaxBatch))
	answers := make([][]*verify.LogEntry, len(chunks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.concurrency)
	for ci, chunk := range chunks {
		g.Go(func() error {
			q := &models.SearchLogQuery{EntryUUIDs: chunk}
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
				return &CallError{Op: op, Err: malformed(op, "%d entries for %d uuids", len(payload), len(chunk))}
			}
			for _, m := range payload {
				for k, v := range m {
					e, err := convertEntry(op, k, v)
					if err != nil {
						return &CallError{Op: op, Err: err}
					}
					answers[ci] = append(answers[ci], e)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[string]*verify.LogEntry, len(uniq))
	for _, a := range answers {
		for _, e := range a {
			leaf := e.UUID[len(e.UUID)-64:]
			if want[leaf] && out[leaf] == nil {
				out[leaf] = e
			}
		}
	}
	return out, nil
}
