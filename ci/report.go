package ci

import (
	"slices"
	"strings"
	"time"

	"github.com/bintrans/bintrans/internal/safetext"
	"github.com/bintrans/bintrans/verify"
)

// Mode values of Report.Mode.
const (
	ModeOffline = "offline"
	ModeOnline  = "online"
)

// MaxReasonLen bounds the reason text of one package in every report. A
// longer reason (a log quoting a huge body back, say) is cut and marked "…".
const MaxReasonLen = 512

// Report is one run of the engine over a batch of packages, as the reports
// show it. The writers do not modify it.
type Report struct {
	// Tool and Version name the program that produced the report
	// ("bintrans", "v0.3.0").
	Tool    string
	Version string
	// Started is when the run began. Zero omits it (golden tests).
	Started time.Time
	// Mode is ModeOffline or ModeOnline.
	Mode string
	// Log describes the tree head the batch was verified against, when the
	// run was online. Nil omits it.
	Log *LogInfo
	// Results are the engine's verdicts, in any order.
	Results []verify.Result
	// Databases are the sync databases checked against their repository
	// statements (docs/STATEMENTS.md), in the order checked.
	Databases []DBResult
}

// The outcomes of a DBResult (the values of freshcheck.Outcome).
const (
	DBOK          = "ok"
	DBUnstated    = "unstated"
	DBOff         = "off"
	DBRefused     = "refused"
	DBUnavailable = "unavailable"
)

// DBResult is the check of one sync database against its repository
// statement.
type DBResult struct {
	// Repo is the repository; Arch the statement's architecture (empty
	// when there is none); Path the database as given (a path or URL).
	Repo, Arch, Path string
	SHA256           string
	// Outcome is DBOK, DBUnstated (no statement, allowed: a warning),
	// DBOff (not checked: a warning), DBRefused or DBUnavailable.
	Outcome string
	// The statement, when one was found: its counter and issue time, and
	// its log entry.
	Counter  uint64
	Issued   time.Time
	LogIndex *int64
	UUID     string
	// Reason explains every outcome but DBOK (one line once escaped).
	Reason string
}

// Failed reports whether the database fails the run: refused, or not
// checked at all. A warning (unstated, off) does not.
func (d DBResult) Failed() bool { return d.Outcome == DBRefused || d.Outcome == DBUnavailable }

// DatabasesFailed is the number of databases that fail the run.
func (r Report) DatabasesFailed() int {
	n := 0
	for _, d := range r.Databases {
		if d.Failed() {
			n++
		}
	}
	return n
}

// LogInfo is the transparency log tree head a run was checked against.
type LogInfo struct {
	URL      string
	TreeSize int64
	RootHash string // lowercase hex
}

// Statuses lists every status the engine can return, in the order reports
// show them (ok first, then the failures roughly in pipeline order). A status
// missing here still appears in reports, after these, ordered by name.
var Statuses = []verify.Status{
	verify.StatusOK,
	verify.StatusMissingSignature,
	verify.StatusMalformedSignature,
	verify.StatusBadSignature,
	verify.StatusWrongKey,
	verify.StatusCommentMismatch,
	verify.StatusMissingBundle,
	verify.StatusBundleInvalid,
	verify.StatusNotInLog,
	verify.StatusLogInconsistent,
	verify.StatusHashMismatch,
	verify.StatusRebuildUnconfirmed,
	verify.StatusNotInRepository,
	verify.StatusUnavailable,
}

// StatusCount is the number of packages that ended in one status.
type StatusCount struct {
	Status verify.Status
	Count  int
}

// Sorted returns a copy of r.Results ordered by (repo, arch, filename); ties
// keep their input order.
func (r Report) Sorted() []verify.Result {
	// Sort indexes, not the large Result values.
	idx := make([]int, len(r.Results))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		a, b := &r.Results[i].Artifact, &r.Results[j].Artifact
		if c := strings.Compare(a.Repo, b.Repo); c != 0 {
			return c
		}
		if c := strings.Compare(a.Arch, b.Arch); c != 0 {
			return c
		}
		return strings.Compare(a.Filename, b.Filename)
	})
	out := make([]verify.Result, len(idx))
	for k, i := range idx {
		out[k] = r.Results[i]
	}
	return out
}

// OK reports whether every package passed and no database failed. An
// empty report is OK: deciding that an empty repository is an error is the
// caller's policy.
func (r Report) OK() bool {
	for _, res := range r.Results {
		if !res.OK() {
			return false
		}
	}
	return r.DatabasesFailed() == 0
}

// Failed returns the number of packages whose status is not ok.
func (r Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if !res.OK() {
			n++
		}
	}
	return n
}

// Counts returns how many packages ended in each status: every status of
// Statuses (zero counts included) in that order, then any status the engine
// returned that Statuses does not know, ordered by name.
func (r Report) Counts() []StatusCount {
	n := make(map[verify.Status]int)
	for _, res := range r.Results {
		n[res.Status]++
	}
	out := make([]StatusCount, 0, len(Statuses))
	for _, s := range Statuses {
		out = append(out, StatusCount{s, n[s]})
		delete(n, s)
	}
	var extra []verify.Status
	for s := range n {
		extra = append(extra, s)
	}
	slices.Sort(extra)
	for _, s := range extra {
		out = append(out, StatusCount{s, n[s]})
	}
	return out
}

// Reason returns the one-line explanation of a result, safe to print: its
// error's text, white space folded and escaped (safetext.Fold, Cut) to at
// most MaxReasonLen bytes, or,
// for a failure without an error, the status itself. An ok result has no
// reason.
func Reason(res verify.Result) string {
	return safetext.Cut(safetext.Fold(rawReason(res)), MaxReasonLen)
}

// rawReason is Reason before escaping (for writers that escape in their
// own way, once).
func rawReason(res verify.Result) string {
	if res.OK() {
		return ""
	}
	if res.Err == nil {
		return string(res.Status)
	}
	return res.Err.Error()
}

// location is "repo/arch" for reports, with placeholders for unknown parts.
func location(a verify.Artifact) string {
	repo, arch := a.Repo, a.Arch
	if repo == "" {
		repo = "-"
	}
	if arch == "" {
		arch = "-"
	}
	return repo + "/" + arch
}
