package rebuilder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Limits of the rebuilderd response parsers.
const (
	// MaxRecords bounds the rows of one v0 list or v1 page.
	MaxRecords = 20000
	// maxFieldLen bounds every string field of a row.
	maxFieldLen = 4096
)

// Package statuses as rebuilderd serializes them (v0 Status, v1
// ArtifactStatus). v0 maps a "FAIL" build to BAD; it is accepted as BAD.
const (
	StatusGood    = "GOOD"
	StatusBad     = "BAD"
	StatusUnknown = "UNKWN"
	statusFail    = "FAIL"
)

// V0Package is one element of `GET /api/v0/pkgs/list` (rebuilderd-common
// PkgRelease). Fields a client does not need are left out.
type V0Package struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	Status         string `json:"status"`
	Distro         string `json:"distro"`
	Suite          string `json:"suite"`
	Architecture   string `json:"architecture"`
	ArtifactURL    string `json:"artifact_url"`
	BuildID        *int64 `json:"build_id"`
	HasAttestation bool   `json:"has_attestation"`
}

// V1BinaryPackage is one record of `GET /api/v1/packages/binary`.
type V1BinaryPackage struct {
	ID           int64   `json:"id"`
	Name         string  `json:"name"`
	Version      string  `json:"version"`
	Distribution string  `json:"distribution"`
	Component    *string `json:"component"`
	Architecture string  `json:"architecture"`
	URL          *string `json:"url"`
	Status       *string `json:"status"`
	BuildID      *int64  `json:"build_id"`
	ArtifactID   *int64  `json:"artifact_id"`
	// AttestationLogID is null when the artifact has no attestation.
	AttestationLogID *int64 `json:"attestation_log_id"`
	SeenInLastSync   bool   `json:"seen_in_last_sync"`
}

// V1Page is a v1 ResultPage of binary packages. Total counts the whole
// filtered set, not just this page.
type V1Page struct {
	Total   int64             `json:"total"`
	Records []V1BinaryPackage `json:"records"`
}

// ParseV0List parses the JSON array of `/api/v0/pkgs/list`. It rejects
// anything that is not such an array (an HTML error page, an object), more
// than MaxRecords rows, rows without a name or version and over-long fields.
func ParseV0List(b []byte) ([]V0Package, error) {
	if t := firstByte(b); t != '[' {
		return nil, fmt.Errorf("v0 package list: %w", notJSON(b, "a JSON array"))
	}
	rows, err := decodeArray[V0Package](json.NewDecoder(bytes.NewReader(b)))
	if err == nil {
		err = endOfInput(b)
	}
	if err != nil {
		return nil, fmt.Errorf("v0 package list: %w", err)
	}
	for i, r := range rows {
		if err := checkRow(r.Name, r.Version, r.Status, r.Distro, r.Suite, r.Architecture, r.ArtifactURL); err != nil {
			return nil, fmt.Errorf("v0 package list: row %d: %w", i, err)
		}
	}
	return rows, nil
}

// ParseV1Page parses a `/api/v1/packages/binary` result page with the same
// bounds as ParseV0List.
func ParseV1Page(b []byte) (*V1Page, error) {
	if t := firstByte(b); t != '{' {
		return nil, fmt.Errorf("v1 package page: %w", notJSON(b, "a JSON object"))
	}
	var p struct {
		Total   *int64          `json:"total"`
		Records json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("v1 package page: %w", jsonError(b, err))
	}
	if p.Total == nil || firstByte(p.Records) != '[' {
		return nil, fmt.Errorf(`v1 package page: want {"total":…,"records":[…]}`)
	}
	recs, err := decodeArray[V1BinaryPackage](json.NewDecoder(bytes.NewReader(p.Records)))
	if err != nil {
		return nil, fmt.Errorf("v1 package page: records: %w", err)
	}
	page := &V1Page{Total: *p.Total, Records: recs}
	if page.Total < int64(len(page.Records)) {
		return nil, fmt.Errorf("v1 package page: total %d < %d records", page.Total, len(page.Records))
	}
	for i, r := range page.Records {
		if err := checkRow(r.Name, r.Version, deref(r.Status), r.Distribution, r.Architecture, deref(r.Component), deref(r.URL)); err != nil {
			return nil, fmt.Errorf("v1 package page: record %d: %w", i, err)
		}
	}
	return page, nil
}

// decodeArray decodes a JSON array element by element, refusing more than
// MaxRecords elements before they are all materialized.
func decodeArray[T any](dec *json.Decoder) ([]T, error) {
	if _, err := dec.Token(); err != nil { // '[' (checked by the caller)
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	var out []T
	for dec.More() {
		if len(out) == MaxRecords {
			return nil, fmt.Errorf("more than %d rows", MaxRecords)
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return out, nil
}

// endOfInput checks that b holds exactly one JSON value.
func endOfInput(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("invalid JSON: data after the array")
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func checkRow(name, version string, fields ...string) error {
	if name == "" || version == "" {
		return fmt.Errorf("no name or version")
	}
	for _, f := range append(fields, name, version) {
		if len(f) > maxFieldLen {
			return fmt.Errorf("field longer than %d bytes", maxFieldLen)
		}
	}
	return nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// notJSON describes a body that is not the JSON a rebuilderd sends, quoting
// its start (an HTML error page from a proxy is the usual case).
func notJSON(b []byte, want string) error {
	return fmt.Errorf("not %s (body starts with %q)", want, snippet(b))
}

func jsonError(b []byte, err error) error {
	if c := firstByte(b); c == '<' {
		return notJSON(b, "JSON")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// snippet returns the first bytes of b, for error messages.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	const n = 64
	if len(b) > n {
		return strings.ToValidUTF8(string(b[:n]), "?") + "…"
	}
	return strings.ToValidUTF8(string(b), "?")
}
