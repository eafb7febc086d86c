package rekorv2

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/bintrans/bintrans/verify"
)

// Shards: a Rekor v2 log rotates (sigstore starts a new shard, with a new
// origin, key and URL, about every six months; the old shard's entries stay
// verifiable, it just takes no new ones). Each configured shard is pinned
// like a single log (key and origin) and has a window [NotBefore,
// NotAfter): signing writes to the shard whose window holds the time of
// signing; a checkpoint (and so a bundle) of a shard whose window has not
// begun is refused; a shard whose window has ended keeps verifying. A
// Rekor v2 entry carries no time (no integrated time, and a checkpoint has
// no timestamp), so the window cannot bound an old bundle further.

// Shard is one shard of a log: its pinned key and origin, and its window
// (a zero NotBefore or NotAfter is unbounded).
type Shard struct {
	Log                 *LogVerifier
	NotBefore, NotAfter time.Time
}

// Covers says whether t is in the shard's window.
func (s *Shard) Covers(t time.Time) bool {
	return (s.NotBefore.IsZero() || !t.Before(s.NotBefore)) && (s.NotAfter.IsZero() || t.Before(s.NotAfter))
}

// Started says whether the shard's window has begun at t.
func (s *Shard) Started(t time.Time) bool { return s.NotBefore.IsZero() || !t.Before(s.NotBefore) }

// CheckShards checks a shard list: at least one, distinct origins and
// keys, each window non-empty.
func CheckShards(shards []Shard) error {
	if len(shards) == 0 {
		return errors.New("no shard")
	}
	origins := map[string]bool{}
	keys := map[string]bool{}
	for _, s := range shards {
		if s.Log == nil {
			return errors.New("a shard without a log key")
		}
		o := s.Log.Origin()
		if origins[o] {
			return fmt.Errorf("two shards with origin %q", o)
		}
		origins[o] = true
		if keys[string(s.Log.PublicKey())] {
			return fmt.Errorf("shard %q has the key of another shard (each shard has its own key)", o)
		}
		keys[string(s.Log.PublicKey())] = true
		if !s.NotBefore.IsZero() && !s.NotAfter.IsZero() && !s.NotBefore.Before(s.NotAfter) {
			return fmt.Errorf("shard %q: its window ends (%s) before it begins (%s)", o, s.NotAfter.UTC().Format(time.RFC3339), s.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// Current returns the shard whose window holds t: of several, the one
// that began last. nil when none does.
func Current(shards []Shard, t time.Time) *Shard {
	var cur *Shard
	for i := range shards {
		s := &shards[i]
		if s.Covers(t) && (cur == nil || s.NotBefore.After(cur.NotBefore)) {
			cur = s
		}
	}
	return cur
}

// ShardedVerifier is the engine's verifier (verify.LogVerifier) of a log
// with several shards: a checkpoint or bundle is verified by the shard of
// its origin, which must have begun.
type ShardedVerifier struct {
	shards []Shard
	now    func() time.Time
}

// NewShardedVerifier returns the verifier of shards (CheckShards must
// hold); now is the clock (nil: time.Now).
func NewShardedVerifier(shards []Shard, now func() time.Time) (*ShardedVerifier, error) {
	if err := CheckShards(shards); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &ShardedVerifier{shards: append([]Shard(nil), shards...), now: now}, nil
}

// Kind is "rekor-v2".
func (v *ShardedVerifier) Kind() string { return KindName }

// shard returns the shard of a checkpoint note's origin (its first line),
// or a *verify.CheckpointError.
func (v *ShardedVerifier) shard(note []byte) (*Shard, error) {
	origin, _, _ := bytes.Cut(note, []byte("\n"))
	for i := range v.shards {
		s := &v.shards[i]
		if s.Log.Origin() != string(origin) {
			continue
		}
		if now := v.now(); !s.Started(now) {
			return nil, &verify.CheckpointError{Origin: s.Log.Origin(),
				Reason: fmt.Sprintf("a checkpoint of shard %q, whose window begins at %s (now %s): refused until then", s.Log.Origin(), s.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
		}
		return s, nil
	}
	return nil, &verify.CheckpointError{Reason: fmt.Sprintf("origin %q is none of the configured shards' (%s)", sanitize(string(origin), 200), v.origins())}
}

func (v *ShardedVerifier) origins() string {
	var b bytes.Buffer
	for i, s := range v.shards {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.Log.Origin())
	}
	return b.String()
}

// VerifyCheckpoint verifies a checkpoint note of one of the shards.
func (v *ShardedVerifier) VerifyCheckpoint(note []byte) (*verify.Checkpoint, error) {
	s, err := v.shard(note)
	if err != nil {
		return nil, err
	}
	return NewKindVerifier(s.Log).VerifyCheckpoint(note)
}

// VerifyBundle verifies a Rekor v2 bundle against the shard of its
// checkpoint's origin (KindVerifier.VerifyBundle).
func (v *ShardedVerifier) VerifyBundle(bundle []byte, sig *verify.Signature, keys []verify.PublicKey, msg []byte) (*verify.Proof, error) {
	b, err := ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	s, err := v.shard(b.Checkpoint)
	if err != nil {
		return nil, &VerifyError{Step: StepCheckpoint, Reason: "the bundle's checkpoint is not a configured shard's", Index: b.Index, Err: err}
	}
	return NewKindVerifier(s.Log).VerifyBundle(bundle, sig, keys, msg)
}

// Shards returns the shards.
func (v *ShardedVerifier) Shards() []Shard { return append([]Shard(nil), v.shards...) }

var _ verify.LogVerifier = (*ShardedVerifier)(nil)
