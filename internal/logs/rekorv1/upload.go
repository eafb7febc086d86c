package rekorv1

import (
	"context"
	"encoding/pem"
	"errors"
	"path"
	"regexp"
	"strings"

	"github.com/go-openapi/strfmt"
	"github.com/go-openapi/swag/conv"
	"github.com/sigstore/rekor/pkg/generated/client/entries"
	"github.com/sigstore/rekor/pkg/generated/client/pubkey"
	"github.com/sigstore/rekor/pkg/generated/models"

	"github.com/bintrans/bintrans/verify"
)

// Upload logs a minisign signature as a rekord v0.0.1 entry
// (POST /api/v1/log/entries): t is the `.t` file, pubKeyFile the minisign
// public key (.pub file text or its base64 line), message the signed bytes
// (the 64-byte hex sha256 of a package). Rekor verifies the signature over
// message and stores only its hash.
//
// A 409 (the same signature is already logged) is not an error: Upload
// fetches and returns the existing entry named by the answer's Location.
// Because of that an upload is safe to repeat, and transport failures are
// retried like reads. A rejected entry (400, e.g. a signature that does
// not verify) is a *CallError wrapping a *httpclient.StatusError whose
// Snippet is the server's message. The returned entry is not verified.
func (c *Client) Upload(ctx context.Context, t []byte, pubKeyFile []byte, message []byte) (*Entry, error) {
	const op = "upload"
	if err := checkArg(op, len(t) > 0 && len(t) <= verify.MaxSignatureSize, "signature of %d bytes (max %d)", len(t), verify.MaxSignatureSize); err != nil {
		return nil, err
	}
	if err := checkArg(op, len(pubKeyFile) > 0 && len(pubKeyFile) <= maxPubKeyFileSize, "public key of %d bytes", len(pubKeyFile)); err != nil {
		return nil, err
	}
	if err := checkArg(op, len(message) > 0 && len(message) <= maxMessageSize, "message of %d bytes", len(message)); err != nil {
		return nil, err
	}
	sig := strfmt.Base64(t)
	pe := &models.Rekord{
		APIVersion: conv.Pointer("0.0.1"),
		Spec: models.RekordV001Schema{
			Signature: &models.RekordV001SchemaSignature{
				Format:    conv.Pointer(models.RekordV001SchemaSignatureFormatMinisign),
				Content:   &sig,
				PublicKey: &models.RekordV001SchemaSignaturePublicKey{Content: (*strfmt.Base64)(&pubKeyFile)},
			},
			Data: &models.RekordV001SchemaData{Content: strfmt.Base64(message)},
		},
	}
	var (
		created  models.LogEntry
		existing string
	)
	err := c.call(ctx, op, c.maxResponse, func(ctx context.Context) error {
		resp, err := c.rc.Entries.CreateLogEntryContext(ctx, entries.NewCreateLogEntryParams().WithProposedEntry(pe))
		var conflict *entries.CreateLogEntryConflict
		if errors.As(err, &conflict) {
			existing = conflictUUID(conflict)
			if existing == "" {
				return malformed(op, "409 without the existing entry's id")
			}
			return nil
		}
		if err != nil {
			return err
		}
		created = resp.Payload
		return nil
	})
	if err != nil {
		return nil, err
	}
	if existing != "" {
		return c.EntryByUUID(ctx, existing)
	}
	if len(created) != 1 {
		return nil, &CallError{Op: op, Err: malformed(op, "%d entries in the answer, want 1", len(created))}
	}
	for k, v := range created {
		e, err := convertEntry(op, k, v)
		if err != nil {
			return nil, &CallError{Op: op, Err: err}
		}
		return e, nil
	}
	panic("unreachable")
}

var uuidInMessage = regexp.MustCompile(`\b([0-9a-fA-F]{80}|[0-9a-fA-F]{64})\b`)

// conflictUUID finds the existing entry's id in a 409: the Location header,
// else the message ("… already exists … with UUID <id>").
func conflictUUID(c *entries.CreateLogEntryConflict) string {
	if id := strings.ToLower(path.Base(c.Location.String())); validUUID(id) {
		return id
	}
	if c.Payload != nil {
		if m := uuidInMessage.FindString(c.Payload.Message); m != "" {
			return strings.ToLower(m)
		}
	}
	return ""
}

// PublicKey returns the log's public key as PEM (GET /api/v1/log/publicKey).
// Never trust it on first use: compare it with the pinned key.
func (c *Client) PublicKey(ctx context.Context) ([]byte, error) {
	const op = "get public key"
	var p string
	err := c.call(ctx, op, 64<<10, func(ctx context.Context) error {
		resp, err := c.rc.Pubkey.GetPublicKeyContext(ctx, pubkey.NewGetPublicKeyParams())
		if err != nil {
			return err
		}
		p = resp.Payload
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode([]byte(p)); b == nil || b.Type != "PUBLIC KEY" {
		return nil, &CallError{Op: op, Err: malformed(op, "not a PEM public key")}
	}
	return []byte(p), nil
}
