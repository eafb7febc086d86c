package ci

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/verify"
)

// SchemaVersion is the schema_version of the JSON report. It changes only
// when a field is removed or changes meaning; adding a field keeps it.
// Version 2 added the sync databases' repository statements ("databases",
// summary.databases and summary.databases_failed), and "ok" is false
// when a database failed: a consumer of version 1 that read "ok" as "every
// package verified" must see the change, not a silent new meaning.
const SchemaVersion = 2

// JSONReport is the JSON report document (docs/report-schema.json). It is
// exported so that consumers in Go can decode a report.
type JSONReport struct {
	SchemaVersion int         `json:"schema_version"`
	Tool          string      `json:"tool"`
	Version       string      `json:"version"`
	Started       string      `json:"started,omitempty"` // RFC 3339, UTC
	Mode          string      `json:"mode"`
	Log           *JSONLog    `json:"log,omitempty"`
	OK            bool        `json:"ok"`
	Summary       JSONSummary `json:"summary"`
	// Databases precede packages (written last, streamed).
	Databases []JSONDatabase `json:"databases"`
	Packages  []JSONResult   `json:"packages"`
}

// JSONDatabase is the check of one sync database against its repository
// statement.
type JSONDatabase struct {
	Repo     string `json:"repo"`
	Arch     string `json:"arch,omitempty"`
	Path     string `json:"path"`
	SHA256   string `json:"sha256,omitempty"`
	Outcome  string `json:"outcome"`
	Counter  uint64 `json:"counter,omitempty"`
	Issued   string `json:"issued,omitempty"`
	LogIndex *int64 `json:"log_index,omitempty"`
	UUID     string `json:"uuid,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// JSONLog is the tree head a run was verified against.
type JSONLog struct {
	URL      string `json:"url"`
	TreeSize int64  `json:"tree_size"`
	RootHash string `json:"root_hash"`
}

// JSONSummary counts the packages. ByStatus has a key for every status of
// Statuses, zero counts included, plus any other status that occurred.
type JSONSummary struct {
	Total    int            `json:"total"`
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	ByStatus map[string]int `json:"by_status"`
	// Databases checked against their statements, and those that failed.
	Databases       int `json:"databases"`
	DatabasesFailed int `json:"databases_failed"`
}

// JSONResult is the verdict for one package. Optional fields are omitted
// when unknown; LogIndex is a pointer because index 0 is a real entry.
type JSONResult struct {
	Repo     string `json:"repo"`
	Arch     string `json:"arch"`
	Filename string `json:"filename"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Status   string `json:"status"`
	// Reason is one line, at most MaxReasonLen bytes; empty when ok.
	Reason string `json:"reason,omitempty"`
	KeyID  string `json:"key_id,omitempty"`
	// LogIndex is the entry's global index (on a sharded log not the
	// inclusion proof's tree-local index).
	LogIndex *int64 `json:"log_index,omitempty"`
	UUID     string `json:"uuid,omitempty"`
	// IntegratedTime is the log's integration time, Unix seconds.
	IntegratedTime int64        `json:"integrated_time,omitempty"`
	Rebuild        *JSONRebuild `json:"rebuild,omitempty"`
}

// JSONRebuild is what the rebuilders said about one package. Each list is
// sorted and never null.
type JSONRebuild struct {
	Confirmed   []string          `json:"confirmed"`
	Bad         []string          `json:"bad"`
	Unknown     []string          `json:"unknown"`
	Unreachable []string          `json:"unreachable"`
	Reasons     map[string]string `json:"reasons,omitempty"`
}

// NewJSONReport builds the JSON document of r.
func NewJSONReport(r Report) JSONReport {
	res := r.Sorted()
	out := JSONReport{
		SchemaVersion: SchemaVersion,
		Tool:          r.Tool,
		Version:       r.Version,
		Mode:          r.Mode,
		OK:            r.OK(),
		Summary: JSONSummary{
			Total:    len(res),
			Failed:   r.Failed(),
			ByStatus: make(map[string]int),
		},
		Packages:  make([]JSONResult, 0, len(res)),
		Databases: make([]JSONDatabase, 0, len(r.Databases)),
	}
	out.Summary.Databases, out.Summary.DatabasesFailed = len(r.Databases), r.DatabasesFailed()
	for _, d := range r.Databases {
		jd := JSONDatabase{Repo: d.Repo, Arch: d.Arch, Path: d.Path, SHA256: d.SHA256, Outcome: d.Outcome, Counter: d.Counter,
			LogIndex: d.LogIndex, UUID: d.UUID, Reason: safetext.Cut(safetext.Fold(d.Reason), MaxReasonLen)}
		if !d.Issued.IsZero() {
			jd.Issued = d.Issued.UTC().Format(time.RFC3339)
		}
		out.Databases = append(out.Databases, jd)
	}
	out.Summary.OK = out.Summary.Total - out.Summary.Failed
	if !r.Started.IsZero() {
		out.Started = r.Started.UTC().Format(time.RFC3339)
	}
	if r.Log != nil {
		out.Log = &JSONLog{URL: r.Log.URL, TreeSize: r.Log.TreeSize, RootHash: r.Log.RootHash}
	}
	for _, c := range r.Counts() {
		out.Summary.ByStatus[string(c.Status)] = c.Count
	}
	for _, x := range res {
		out.Packages = append(out.Packages, jsonResult(x))
	}
	return out
}

func jsonResult(x verify.Result) JSONResult {
	a := x.Artifact
	j := JSONResult{
		Repo:     a.Repo,
		Arch:     a.Arch,
		Filename: a.Filename,
		Name:     a.Name,
		Version:  a.Version,
		SHA256:   x.SHA256,
		Status:   string(x.Status),
		Reason:   Reason(x),
		KeyID:    x.KeyID,
	}
	if j.SHA256 == "" {
		j.SHA256 = a.SHA256
	}
	if e := x.Entry; e != nil {
		idx := e.LogIndex
		j.LogIndex = &idx
		j.UUID = e.UUID
		j.IntegratedTime = e.IntegratedTime
	}
	if v := x.Rebuild; v != nil {
		j.Rebuild = &JSONRebuild{
			Confirmed:   sortedCopy(v.Confirmed),
			Bad:         sortedCopy(v.Bad),
			Unknown:     sortedCopy(v.Unknown),
			Unreachable: sortedCopy(v.Unreachable),
		}
		if len(v.Reasons) > 0 {
			j.Rebuild.Reasons = make(map[string]string, len(v.Reasons))
			for k, s := range v.Reasons {
				j.Rebuild.Reasons[k] = safetext.Cut(safetext.Fold(s), MaxReasonLen)
			}
		}
	}
	return j
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}

// WriteJSON writes r as an indented JSON document (schema_version 2,
// docs/report-schema.json) followed by a newline. Packages are encoded one
// at a time, so memory does not grow with the size of the output. Strings
// are escaped by safetext.JSON (same values): the report can be printed in
// a terminal or a CI log without control, bidi or format characters and
// without a workflow command.
func WriteJSON(w io.Writer, r Report) error {
	doc := NewJSONReport(r)
	pkgs := doc.Packages
	doc.Packages = nil
	// packages is the last field: encode the rest with an empty list, then
	// stream the list in its place.
	head, err := json.MarshalIndent(struct {
		JSONReport
		Packages []JSONResult `json:"packages"`
	}{doc, []JSONResult{}}, "", "  ")
	if err != nil {
		return err
	}
	head = safetext.JSON(head)
	const tail = "[]\n}"
	if !bytes.HasSuffix(head, []byte(tail)) {
		return fmt.Errorf("ci: unexpected JSON layout %q", head[max(len(head)-20, 0):])
	}
	bw := bufio.NewWriter(w)
	if len(pkgs) == 0 {
		bw.Write(head)
		bw.WriteString("\n")
		return bw.Flush()
	}
	bw.Write(head[:len(head)-len(tail)])
	bw.WriteString("[")
	for i, p := range pkgs {
		b, err := json.MarshalIndent(p, "    ", "  ")
		if err != nil {
			return err
		}
		b = safetext.JSON(b)
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n    ")
		bw.Write(b)
	}
	bw.WriteString("\n  ]\n}\n")
	return bw.Flush()
}
