package freshness

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
)

// MaxAcceptedRecords bounds the records of an AcceptedSet (one per
// repository and architecture a client ever accepted a statement for).
const MaxAcceptedRecords = 4096

// AcceptedSet is what a client keeps: for every (repository, architecture),
// the newest statement it accepted. Its stored form is JSON Lines, one
// MarshalAccepted record per line, sorted by repository then architecture:
// one file, replaced atomically, so that a whole run's acceptances are kept
// together or not at all.
type AcceptedSet struct {
	recs map[[2]string]*Accepted
}

// NewAcceptedSet is an empty set (a client that never accepted a statement).
func NewAcceptedSet() *AcceptedSet { return &AcceptedSet{recs: map[[2]string]*Accepted{}} }

// ParseAcceptedSet reads the stored form strictly: every line a valid
// record (ParseAccepted), no (repository, architecture) twice, at most
// MaxAcceptedRecords lines, the last one ending in a newline. Empty input
// is an empty set.
func ParseAcceptedSet(b []byte) (*AcceptedSet, error) {
	s := NewAcceptedSet()
	if len(b) == 0 {
		return s, nil
	}
	if b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("freshness: stored statement records: the last line has no newline (a torn write?)")
	}
	lines := bytes.Split(b[:len(b)-1], []byte("\n"))
	if len(lines) > MaxAcceptedRecords {
		return nil, fmt.Errorf("freshness: stored statement records: %d lines, at most %d", len(lines), MaxAcceptedRecords)
	}
	for i, l := range lines {
		a, err := ParseAccepted(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		k := [2]string{a.Repository, a.Architecture}
		if s.recs[k] != nil {
			return nil, fmt.Errorf("freshness: stored statement records: line %d: %s/%s a second time", i+1, a.Repository, a.Architecture)
		}
		s.recs[k] = a
	}
	return s, nil
}

// Marshal is the stored form of s.
func (s *AcceptedSet) Marshal() ([]byte, error) {
	var b bytes.Buffer
	for _, a := range s.All() {
		line, err := MarshalAccepted(a)
		if err != nil {
			return nil, err
		}
		b.Write(line)
	}
	return b.Bytes(), nil
}

// All returns the records sorted by repository, then architecture.
func (s *AcceptedSet) All() []*Accepted {
	out := make([]*Accepted, 0, len(s.recs))
	for _, a := range s.recs {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *Accepted) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Architecture, b.Architecture))
	})
	return out
}

// Get is the record of (repo, arch), or nil.
func (s *AcceptedSet) Get(repo, arch string) *Accepted { return s.recs[[2]string{repo, arch}] }

// Seen reports whether a statement was ever accepted for repo, for any
// architecture: after that, a database of repo without one is refused.
func (s *AcceptedSet) Seen(repo string) bool {
	for k := range s.recs {
		if k[0] == repo {
			return true
		}
	}
	return false
}

// Put keeps a when it is newer than the record of its repository and
// architecture (Accepted.Newer), and reports whether it did. It refuses to
// grow the set beyond MaxAcceptedRecords.
func (s *AcceptedSet) Put(a *Accepted) (bool, error) {
	k := [2]string{a.Repository, a.Architecture}
	old := s.recs[k]
	if !a.Newer(old) {
		return false, nil
	}
	if old == nil && len(s.recs) >= MaxAcceptedRecords {
		return false, fmt.Errorf("freshness: more than %d repositories and architectures", MaxAcceptedRecords)
	}
	c := *a
	s.recs[k] = &c
	return true, nil
}
