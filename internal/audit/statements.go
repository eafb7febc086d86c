package audit

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// StatementRef is one repository statement of the audit log.
type StatementRef struct {
	Line     int    `json:"line"`
	Counter  uint64 `json:"counter"`
	Issued   string `json:"issued"`
	Interval int64  `json:"interval"`
	DBSHA256 string `json:"db_sha256"`
	// FilesSHA256 is empty when the repository has no .files database.
	FilesSHA256 string `json:"files_sha256,omitempty"`
	SHA256      string `json:"sha256"`
	LogIndex    int64  `json:"log_index"`
	UUID        string `json:"uuid"`
}

// StatementHistory is every statement of one repository and architecture,
// in the audit log's order (the order they were issued in).
type StatementHistory struct {
	Repo       string         `json:"repo"`
	Arch       string         `json:"arch"`
	Statements []StatementRef `json:"statements"`
}

// The kinds of StatementFinding. The values appear in reports: never
// rename one.
const (
	// FindingCounterBackwards: a statement's counter is lower than an
	// earlier one's (of the same repository and architecture).
	FindingCounterBackwards = "counter-backwards"
	// FindingCounterReused: two statements carry one counter but say
	// different things (another database, another time): the transparency
	// key signed two histories.
	FindingCounterReused = "counter-reused"
	// FindingGap: two consecutive statements are further apart than the
	// first one's interval plus slack (StatementSlack), or the newest is
	// that old at the time of the audit: clients saw the repository go
	// stale (or will).
	FindingGap = "gap"
)

// StatementFinding is something wrong with a repository's statements.
type StatementFinding struct {
	Kind   string `json:"kind"`
	Repo   string `json:"repo"`
	Arch   string `json:"arch"`
	Lines  []int  `json:"lines"`
	Detail string `json:"detail"`
}

// StatementSlack is how much later than its interval the next statement
// may come before the gap is a finding: half the interval (the operators'
// timer runs hourly; a 24h heartbeat is due at most 25h after the last).
func StatementSlack(interval time.Duration) time.Duration { return interval / 2 }

// Statements lists the statement records among recs per repository and
// architecture, and finds counters that go backwards or are reused, and
// gaps longer than the interval plus slack; with a non-zero now, also a
// newest statement that old.
func Statements(recs []LineRecord, now time.Time) ([]StatementHistory, []StatementFinding) {
	byKey := map[[2]string][]LineRecord{}
	for _, r := range recs {
		if r.IsStatement() && !r.IsRefusal() {
			k := [2]string{r.Repo, r.Arch}
			byKey[k] = append(byKey[k], r)
		}
	}
	keys := make([][2]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	hist := []StatementHistory{}
	finds := []StatementFinding{}
	for _, k := range keys {
		rs := byKey[k]
		h := StatementHistory{Repo: k[0], Arch: k[1]}
		find := func(kind string, detail string, lines ...int) {
			finds = append(finds, StatementFinding{Kind: kind, Repo: k[0], Arch: k[1], Lines: lines, Detail: detail})
		}
		var top *LineRecord // the highest counter so far
		byCounter := map[uint64]LineRecord{}
		for i, r := range rs {
			h.Statements = append(h.Statements, StatementRef{Line: r.Line, Counter: r.Counter, Issued: r.Issued, Interval: r.Interval,
				DBSHA256: r.DBSHA256, FilesSHA256: r.FilesSHA256, SHA256: r.SHA256, LogIndex: r.LogIndex, UUID: r.UUID})
			if same, ok := byCounter[r.Counter]; ok && (same.SHA256 != r.SHA256) {
				find(FindingCounterReused, fmt.Sprintf("counter %d names db %s issued %s (line %d) and db %s issued %s (line %d): the transparency key signed two histories",
					r.Counter, same.DBSHA256, same.Issued, same.Line, r.DBSHA256, r.Issued, r.Line), same.Line, r.Line)
			} else if top != nil && r.Counter < top.Counter {
				find(FindingCounterBackwards, fmt.Sprintf("counter %d (line %d) after counter %d (line %d)", r.Counter, r.Line, top.Counter, top.Line), top.Line, r.Line)
			}
			if _, ok := byCounter[r.Counter]; !ok {
				byCounter[r.Counter] = r
			}
			if top == nil || r.Counter > top.Counter {
				top = &rs[i]
			}
			if i > 0 {
				prev := rs[i-1]
				if gap, limit, ok := overdue(prev, parseIssued(r.Issued)); ok {
					find(FindingGap, fmt.Sprintf("%s between statement %d (issued %s, interval %ds) and statement %d (issued %s): more than %s",
						gap, prev.Counter, prev.Issued, prev.Interval, r.Counter, r.Issued, limit), prev.Line, r.Line)
				}
			}
		}
		if last := rs[len(rs)-1]; !now.IsZero() {
			if gap, limit, ok := overdue(last, now); ok {
				find(FindingGap, fmt.Sprintf("the newest statement (counter %d, issued %s, interval %ds) is %s old at the time of this audit, more than %s: the heartbeat stopped, and clients refuse the repository once it is older than their maximum age",
					last.Counter, last.Issued, last.Interval, gap, limit), last.Line)
			}
		}
		hist = append(hist, h)
	}
	return hist, finds
}

// overdue reports whether next comes later after r than r's interval plus
// slack allows.
func overdue(r LineRecord, next time.Time) (gap, limit time.Duration, late bool) {
	issued := parseIssued(r.Issued)
	if issued.IsZero() || next.IsZero() {
		return 0, 0, false
	}
	iv := time.Duration(r.Interval) * time.Second
	limit = iv + StatementSlack(iv)
	gap = next.Sub(issued).Round(time.Second)
	return gap, limit, gap > limit
}

func parseIssued(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
