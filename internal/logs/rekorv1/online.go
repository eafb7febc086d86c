package rekorv1

import (
	"context"
	"errors"

	"github.com/bintrans/bintrans/verify"
)

// maxSearchCandidates bounds how many entries of an index search are
// fetched and tried for one package.
const maxSearchCandidates = 8

// API is what the engine's online side needs from a Rekor v1 log; *Client
// implements it.
type API interface {
	// EntryByUUID fetches one entry by its UUID (80 hex) or leaf hash (64
	// hex). A missing entry is an error wrapping verify.ErrNotFound.
	EntryByUUID(ctx context.Context, uuid string) (*Entry, error)
	// SearchByHash returns the UUIDs of entries whose artifact hash is
	// sha256:<hex>. The index is written asynchronously: a fresh entry can
	// be missing.
	SearchByHash(ctx context.Context, sha256Hex string) ([]string, error)
	verify.LogClient
}

// Online is a Rekor v1 log as the engine's online side: the log (API) and
// its pinned key. It implements verify.LogClient and verify.EntryFinder:
// Rekor v1 is the log kind that can find the entry of a `.t` published
// without a bundle (seed-signed repositories).
type Online struct {
	API
	Key *LogKey
}

// NewOnline returns the engine's online side of the log api pinned to lk.
func NewOnline(api API, lk *LogKey) *Online { return &Online{API: api, Key: lk} }

// FindEntry finds the log entry of a verified signature without a bundle:
// by the leaf hash of its canonical body, then by index search (at most
// maxSearchCandidates entries tried), and verifies it (VerifyEntry's
// steps). No entry that verifies is a *verify.NotInLogError holding every
// candidate's error; a log that cannot be asked, a
// *verify.LogUnavailableError.
func (o *Online) FindEntry(ctx context.Context, s *verify.Signature, keys []verify.PublicKey, msg []byte) (*verify.Proof, error) {
	nl := &verify.NotInLogError{SearchHash: sha256Hex(msg)}
	// The key that verified s: rebuild the body with each policy key of
	// that id (normally one).
	tried := map[string]bool{}
	for _, k := range keys {
		if k.KeyID() != s.KeyID() {
			continue
		}
		leaf := LeafHash(CanonicalBody(s, k, msg))
		if nl.LeafHash == "" {
			nl.LeafHash = leaf
		}
		e, err := o.EntryByUUID(ctx, leaf)
		if errors.Is(err, verify.ErrNotFound) {
			continue // an older server may only answer to the full UUID: search
		}
		if err != nil {
			return nil, &verify.LogUnavailableError{Op: "entry " + leaf, Err: err}
		}
		tried[leaf] = true
		p, err := o.candidate(e, s, keys, msg)
		if err == nil {
			return p, nil
		}
		nl.Candidates = append(nl.Candidates, err)
	}
	uuids, err := o.SearchByHash(ctx, nl.SearchHash)
	if err != nil && !errors.Is(err, verify.ErrNotFound) {
		return nil, &verify.LogUnavailableError{Op: "search sha256:" + nl.SearchHash, Err: err}
	}
	n := 0
	for _, u := range uuids {
		if len(u) < 64 || tried[u[len(u)-64:]] {
			continue
		}
		if n++; n > maxSearchCandidates {
			break
		}
		tried[u[len(u)-64:]] = true
		e, err := o.EntryByUUID(ctx, u)
		if errors.Is(err, verify.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, &verify.LogUnavailableError{Op: "entry " + u, Err: err}
		}
		p, err := o.candidate(e, s, keys, msg)
		if err == nil {
			return p, nil
		}
		nl.Candidates = append(nl.Candidates, err)
	}
	return nil, nl
}

// candidate verifies an entry the log returned for s.
func (o *Online) candidate(e *Entry, s *verify.Signature, keys []verify.PublicKey, msg []byte) (*verify.Proof, error) {
	cp, err := verifyEntryWith(e, s, keys, msg, o.Key)
	if err != nil {
		return nil, err
	}
	return o.Key.proofOf(e, cp), nil
}
