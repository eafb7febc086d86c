package rekorv2

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bintrans/bintrans/internal/httpclient"
)

// Defaults of a Writer.
const (
	// MaxResponseSize bounds the log's answer to an add: a checkpoint of at
	// most MaxCheckpointSize, 64 hashes and a body are far less.
	MaxResponseSize = 128 << 10
	// DefaultRetries is how often an add is retried after a refused or
	// reset connection, a timeout of one attempt, or a 429/502/503/504
	// (the log's "reached max pushback; retry"). Adding is idempotent: a
	// retried entry that was logged meanwhile comes back as a 409.
	DefaultRetries = 4
	// DefaultBackoff is the first retry delay (doubled each time up to
	// DefaultMaxBackoff, with ±50 % jitter; a Retry-After up to the
	// maximum is honoured).
	DefaultBackoff    = 250 * time.Millisecond
	DefaultMaxBackoff = 8 * time.Second
	// DefaultAttemptTimeout bounds one POST. Rekor v2 answers when a
	// checkpoint covers the entry: about 1 s, more under load.
	DefaultAttemptTimeout = 30 * time.Second
	// DefaultDuplicateWait bounds how long a 409's entry may take to show
	// up in a published checkpoint (it can be sequenced but not yet
	// published when two identical adds race).
	DefaultDuplicateWait = 30 * time.Second
)

// Writer logs entries to a Rekor v2 (POST <url>/api/v2/log/entries). It is
// safe for concurrent use; an add takes about one second whatever the load
// (the log answers once a checkpoint covers the entry), so throughput is
// the number of adds in flight per second: see AddAll. Give its
// http.Client (httpclient.Options.MaxIdleConnsPerHost) as many idle
// connections as adds in flight, or connections are opened and closed at
// that rate.
type Writer struct {
	endpoint       string
	hc             *http.Client
	log            *LogVerifier
	reader         *Reader
	retries        int
	backoff        time.Duration
	maxBackoff     time.Duration
	attemptTimeout time.Duration
	maxResponse    int64
	dupWait        time.Duration
	dupPoll        time.Duration
}

// WriterOption changes a Writer's defaults.
type WriterOption func(*Writer)

// WithReader lets the Writer prove a 409 ("already logged at index N")
// from the log's tiles; without it a 409 is a *DuplicateError.
func WithReader(r *Reader) WriterOption { return func(w *Writer) { w.reader = r } }

// WithRetries sets how many times an add is retried (0: never).
func WithRetries(n int) WriterOption { return func(w *Writer) { w.retries = max(n, 0) } }

// WithBackoff sets the first retry delay and the largest one.
func WithBackoff(first, maximum time.Duration) WriterOption {
	return func(w *Writer) { w.backoff, w.maxBackoff = max(first, time.Millisecond), max(maximum, first) }
}

// WithAttemptTimeout bounds one POST (the context bounds them all).
func WithAttemptTimeout(d time.Duration) WriterOption {
	return func(w *Writer) { w.attemptTimeout = d }
}

// WithDuplicateWait bounds the wait for a 409's entry to be published.
func WithDuplicateWait(d time.Duration) WriterOption { return func(w *Writer) { w.dupWait = d } }

// NewWriter returns a Writer for the Rekor v2 at writeURL (http or https,
// optionally with a path prefix) whose answers must verify under log. Every
// request goes through hc (build it with httpclient.New; nil means
// httpclient.New(httpclient.Options{})).
func NewWriter(writeURL string, hc *http.Client, log *LogVerifier, opts ...WriterOption) (*Writer, error) {
	u, err := parseBaseURL(writeURL)
	if err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("rekor v2: a Writer needs the pinned log verifier")
	}
	if hc == nil {
		if hc, err = httpclient.New(httpclient.Options{}); err != nil {
			return nil, err
		}
	}
	w := &Writer{
		endpoint: strings.TrimSuffix(u.String(), "/") + "/api/v2/log/entries",
		hc:       hc, log: log,
		retries: DefaultRetries, backoff: DefaultBackoff, maxBackoff: DefaultMaxBackoff,
		attemptTimeout: DefaultAttemptTimeout, maxResponse: MaxResponseSize,
		dupWait: DefaultDuplicateWait, dupPoll: 250 * time.Millisecond,
	}
	for _, o := range opts {
		o(w)
	}
	return w, nil
}

func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rekor v2: log URL %q: want http(s)://host[:port][/path]", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("rekor v2: log URL %q: no user info, query or fragment allowed", httpclient.Redact(u))
	}
	return u, nil
}

// Logged is an entry in the log, with a verified proof: the entry with
// LeafHash is at Index in the tree of Checkpoint (signed by the pinned key,
// with the pinned origin), by the inclusion proof Hashes.
type Logged struct {
	Entry      *HashedRekord
	Index      uint64
	LeafHash   [32]byte
	Checkpoint *Checkpoint
	Hashes     [][32]byte
	// Duplicate: the log answered 409 (the entry was logged before) and the
	// proof was built from its tiles.
	Duplicate bool
}

// Bundle is the entry's proof bundle.
func (l *Logged) Bundle() *Bundle {
	return &Bundle{Index: l.Index, Hashes: l.Hashes, Checkpoint: l.Checkpoint.Raw, Signature: l.Entry.Signature}
}

// Add logs entry and returns it with a verified inclusion proof. The log's
// answer must be this entry's canonical body with an inclusion proof that
// verifies against a checkpoint signed by the pinned key; every field the
// answer repeats (index, tree size, root, key id, kind) must agree. A 409
// is proven from the tiles (WithReader). Errors: *RejectedError (the log
// refused the entry), *CallError (transport, 5xx, limits; after retries),
// *MalformedResponseError, *VerifyError (an answer that does not prove the
// entry), *DuplicateError, *LeafMismatchError, or the context's error.
func (w *Writer) Add(ctx context.Context, entry *HashedRekord) (*Logged, error) {
	if entry == nil || !entry.Verify() {
		return nil, errors.New("rekor v2 add: the entry's Ed25519ph signature does not verify")
	}
	reqBody := entry.requestJSON()
	delay := w.backoff
	var last error
	for attempt := 1; ; attempt++ {
		out, retryAfter, err := w.post(ctx, entry, reqBody)
		if err == nil || !w.retryable(ctx, err) || attempt > w.retries {
			if err != nil && isCallFailure(err) {
				err = &CallError{Op: "add", URL: w.endpoint, Attempts: attempt, Err: err}
			}
			return out, err
		}
		last = err
		d := delay/2 + rand.N(delay+1)
		if retryAfter > 0 {
			d = min(retryAfter, w.maxBackoff)
		}
		delay = min(2*delay, w.maxBackoff)
		select {
		case <-ctx.Done():
			return nil, &CallError{Op: "add", URL: w.endpoint, Attempts: attempt, Err: errors.Join(ctx.Err(), last)}
		case <-time.After(d):
		}
	}
}

// isCallFailure: errors of the exchange itself (not verdicts on the entry
// or on the log's honesty) are wrapped in a *CallError.
func isCallFailure(err error) bool {
	var (
		re *RejectedError
		ve *VerifyError
		de *DuplicateError
		lm *LeafMismatchError
		ce *CallError
	)
	return !errors.As(err, &re) && !errors.As(err, &ve) && !errors.As(err, &de) && !errors.As(err, &lm) && !errors.As(err, &ce)
}

// attemptTimeoutError is one POST that ran out of its own time while the
// caller's context had time left.
type attemptTimeoutError struct{ d time.Duration }

func (e *attemptTimeoutError) Error() string {
	return fmt.Sprintf("no answer within %s", e.d)
}
func (e *attemptTimeoutError) Unwrap() error { return context.DeadlineExceeded }

func (w *Writer) retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var at *attemptTimeoutError
	return errors.As(err, &at) || httpclient.Temporary(err)
}

// post makes one attempt. retryAfter is the server's Retry-After, if any.
func (w *Writer) post(ctx context.Context, entry *HashedRekord, reqBody []byte) (*Logged, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, w.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.endpoint, bytes.NewReader(reqBody))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, 0, w.timeoutOr(ctx, actx, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
		b, err := httpclient.ReadAll(resp, w.maxResponse)
		if err != nil {
			return nil, 0, w.timeoutOr(ctx, actx, err)
		}
		l, err := w.checkAnswer(entry, b)
		return l, 0, err
	case resp.StatusCode == http.StatusConflict:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		idx, err := conflictIndex(resp.Header.Get("X-Log-Index"), b)
		if err != nil {
			return nil, 0, err
		}
		l, err := w.proveDuplicate(ctx, entry, idx)
		return l, 0, err
	}
	serr := httpclient.CheckStatus(resp)
	var se *httpclient.StatusError
	if errors.As(serr, &se) {
		switch {
		case httpclient.Temporary(se):
			return nil, retryAfter(resp.Header.Get("Retry-After")), se
		case se.Code >= 400 && se.Code < 500 && se.Code != http.StatusRequestTimeout:
			return nil, 0, &RejectedError{Status: se.Code, Message: se.Snippet}
		case se.Code == http.StatusRequestTimeout:
			return nil, 0, &attemptTimeoutError{d: w.attemptTimeout}
		}
	}
	return nil, 0, serr
}

func (w *Writer) timeoutOr(ctx, actx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &attemptTimeoutError{d: w.attemptTimeout}
	}
	return err
}

func retryAfter(h string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		return time.Duration(min(s, 3600)) * time.Second
	}
	return 0
}

var indexInMessage = regexp.MustCompile(`with index ([0-9]{1,20})\b`)

// conflictIndex reads a 409's index: the X-Log-Index header, else the
// message ("… already exists in the transparency log with index N").
func conflictIndex(header string, body []byte) (uint64, error) {
	if header != "" {
		if len(header) > 20 || strings.TrimLeft(header, "0123456789") != "" {
			return 0, &MalformedResponseError{Reason: fmt.Sprintf("409 with X-Log-Index %q", sanitize(header, 40))}
		}
		n, err := strconv.ParseUint(header, 10, 64)
		if err != nil {
			return 0, &MalformedResponseError{Reason: "409 with an X-Log-Index out of range", Err: err}
		}
		return n, nil
	}
	if m := indexInMessage.FindSubmatch(body); m != nil {
		if n, err := strconv.ParseUint(string(m[1]), 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, &MalformedResponseError{Reason: "409 without the existing entry's index (no X-Log-Index)"}
}

// proveDuplicate builds the proof of an entry the log says it holds at
// index, from tiles authenticated against the newest checkpoint; the leaf
// at index must be entry's.
func (w *Writer) proveDuplicate(ctx context.Context, entry *HashedRekord, index uint64) (*Logged, error) {
	if w.reader == nil {
		return nil, &DuplicateError{Index: index, Err: errors.New("no tile reader configured to prove it")}
	}
	deadline := time.Now().Add(w.dupWait)
	leaf := entry.LeafHash()
	for {
		cp, err := w.reader.Checkpoint(ctx)
		if err != nil {
			return nil, &DuplicateError{Index: index, Err: err}
		}
		if cp.Size > index {
			t, err := w.reader.At(cp)
			if err != nil {
				return nil, err
			}
			hashes, err := t.InclusionProof(ctx, index, leaf)
			if err != nil {
				var lm *LeafMismatchError
				if errors.As(err, &lm) {
					return nil, err
				}
				return nil, &DuplicateError{Index: index, Err: err}
			}
			return &Logged{Entry: entry, Index: index, LeafHash: leaf, Checkpoint: cp, Hashes: hashes, Duplicate: true}, nil
		}
		if time.Now().After(deadline) {
			return nil, &DuplicateError{Index: index, Err: fmt.Errorf("the newest checkpoint (size %d) still does not cover it after %s", cp.Size, w.dupWait)}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(w.dupPoll):
		}
	}
}

// AddResult is one entry's outcome in AddAll.
type AddResult struct {
	Logged *Logged
	Err    error
}

// AddAll logs entries with at most inflight adds at a time and returns the
// outcomes in the order of entries. Rekor v2 answers each add after about
// a second, so the throughput is about inflight per second (measured
// locally: 512 in flight for 300+ entries/s; docs/PERFORMANCE.md).
func (w *Writer) AddAll(ctx context.Context, entries []*HashedRekord, inflight int) []AddResult {
	out := make([]AddResult, len(entries))
	w.AddEach(ctx, entries, inflight, func(i int, r AddResult) { out[i] = r })
	return out
}

// AddEach is AddAll handing each outcome to done as soon as it is known
// (entries[i]'s as done(i, …), from many goroutines at once, outside the
// inflight limit: a slow done does not hold back the adds). It returns
// when every done returned.
func (w *Writer) AddEach(ctx context.Context, entries []*HashedRekord, inflight int, done func(int, AddResult)) {
	sem := make(chan struct{}, max(inflight, 1))
	var wg sync.WaitGroup
	for i, e := range entries {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < len(entries); j++ {
				done(j, AddResult{Err: ctx.Err()})
			}
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := w.Add(ctx, e)
			<-sem
			done(i, AddResult{Logged: l, Err: err})
		}()
	}
	wg.Wait()
}

// ---- the answer ----------------------------------------------------------

// u64 decodes a protojson int64 (a decimal string, or a number) that must
// not be negative.
type u64 uint64

func (n *u64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("not a non-negative int64: %s", sanitize(string(b), 30))
	}
	*n = u64(v)
	return nil
}

// tleJSON is the protojson form of a TransparencyLogEntry
// (dev.sigstore.rekor.v1). protojson leaves out zero values: a missing
// logIndex is 0, missing hashes are none.
type tleJSON struct {
	LogIndex u64 `json:"logIndex"`
	LogID    *struct {
		KeyID []byte `json:"keyId"`
	} `json:"logId"`
	KindVersion *struct {
		Kind    string `json:"kind"`
		Version string `json:"version"`
	} `json:"kindVersion"`
	InclusionProof *struct {
		LogIndex   u64      `json:"logIndex"`
		RootHash   []byte   `json:"rootHash"`
		TreeSize   u64      `json:"treeSize"`
		Hashes     [][]byte `json:"hashes"`
		Checkpoint *struct {
			Envelope string `json:"envelope"`
		} `json:"checkpoint"`
	} `json:"inclusionProof"`
	CanonicalizedBody []byte `json:"canonicalizedBody"`
}

// checkAnswer verifies a 201: the entry sent, proven in a checkpoint of the
// pinned log, every repeated field in agreement.
func (w *Writer) checkAnswer(entry *HashedRekord, b []byte) (*Logged, error) {
	var t tleJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&t); err != nil {
		return nil, &MalformedResponseError{Reason: "not a TransparencyLogEntry", Err: err}
	}
	if dec.More() {
		return nil, &MalformedResponseError{Reason: "trailing data after the entry"}
	}
	ip := t.InclusionProof
	switch {
	case t.KindVersion == nil:
		return nil, &MalformedResponseError{Reason: "no kindVersion"}
	case t.LogID == nil:
		return nil, &MalformedResponseError{Reason: "no logId"}
	case ip == nil || ip.Checkpoint == nil:
		return nil, &MalformedResponseError{Reason: "no inclusion proof with a checkpoint"}
	case len(t.CanonicalizedBody) == 0:
		return nil, &MalformedResponseError{Reason: "no canonicalizedBody"}
	case len(ip.Hashes) > MaxProofHashes:
		return nil, &MalformedResponseError{Reason: fmt.Sprintf("%d proof hashes", len(ip.Hashes))}
	}
	index := uint64(t.LogIndex)
	mismatch := func(field, want, got string) error {
		return &VerifyError{Step: StepResponse, Field: field, Reason: "the log's answer disagrees", Expected: want, Got: got, Index: index}
	}
	if kv := t.KindVersion; kv.Kind != Kind || kv.Version != APIVersion {
		return nil, mismatch("kindVersion", Kind+"/"+APIVersion, sanitize(kv.Kind+"/"+kv.Version, 60))
	}
	body := entry.Body()
	if !bytes.Equal(t.CanonicalizedBody, body) {
		return nil, mismatch("canonicalizedBody", "the entry sent ("+strconv.Itoa(len(body))+" bytes)",
			sanitize(string(t.CanonicalizedBody), 120))
	}
	kid := w.log.KeyID()
	if !bytes.Equal(t.LogID.KeyID, kid[:]) {
		return nil, mismatch("logId.keyId", hex.EncodeToString(kid[:]), hex.EncodeToString(t.LogID.KeyID))
	}
	cp, err := w.log.VerifyCheckpoint([]byte(ip.Checkpoint.Envelope))
	if err != nil {
		return nil, &VerifyError{Step: StepCheckpoint, Reason: "the log's answer carries a checkpoint that is not the pinned log's", Index: index, Err: err}
	}
	if uint64(ip.LogIndex) != index {
		return nil, mismatch("inclusionProof.logIndex", fmt.Sprint(index), fmt.Sprint(ip.LogIndex))
	}
	if uint64(ip.TreeSize) != cp.Size {
		return nil, mismatch("inclusionProof.treeSize", fmt.Sprintf("%d (the checkpoint's)", cp.Size), fmt.Sprint(ip.TreeSize))
	}
	if !bytes.Equal(ip.RootHash, cp.Root[:]) {
		return nil, mismatch("inclusionProof.rootHash", hex.EncodeToString(cp.Root[:])+" (the checkpoint's)", hex.EncodeToString(ip.RootHash))
	}
	hashes := make([][32]byte, len(ip.Hashes))
	for i, h := range ip.Hashes {
		if len(h) != 32 {
			return nil, &MalformedResponseError{Reason: fmt.Sprintf("proof hash %d of %d bytes", i, len(h))}
		}
		hashes[i] = [32]byte(h)
	}
	leaf := entry.LeafHash()
	if err := verifyInclusion(index, cp, leaf, hashes); err != nil {
		return nil, err
	}
	return &Logged{Entry: entry, Index: index, LeafHash: leaf, Checkpoint: cp, Hashes: hashes}, nil
}
