package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"

	"github.com/bintrans/bintrans/internal/httpclient"
)

// Bounds and defaults of Client.
const (
	// MaxResponseSize bounds an add-checkpoint answer.
	MaxResponseSize = 16 << 10
	// MaxSnippet bounds the part of an error body quoted in a WitnessError.
	MaxSnippet = 160
	// MaxProofHashes is tlog-witness's limit on consistency proof lines.
	MaxProofHashes = 63
	// DefaultTimeout bounds one add-checkpoint exchange (both attempts).
	DefaultTimeout = 30 * time.Second
	// DefaultConcurrency bounds the witnesses asked at once.
	DefaultConcurrency = 8
	// ContentTypeTlogSize is the type of a 409 answer's body.
	ContentTypeTlogSize = "text/x.tlog.size"
)

// ProofFunc returns the RFC 6962 consistency proof from oldSize to the
// checkpoint's size (empty when oldSize is 0 or the size itself).
// AddCheckpointAll calls it concurrently.
type ProofFunc func(ctx context.Context, oldSize uint64) ([][32]byte, error)

// Client asks witnesses to cosign checkpoints with C2SP tlog-witness
// add-checkpoint. The zero value works (a private direct *http.Client that
// ignores the proxy environment); bintrans commands pass the one from
// internal/httpclient.
type Client struct {
	HTTP        *http.Client
	Timeout     time.Duration // per witness; zero: DefaultTimeout
	Concurrency int           // zero: DefaultConcurrency
}

// WitnessError is a witness that gave no cosignature.
type WitnessError struct {
	Witness string // policy name
	URL     string
	Status  int    // HTTP status; 0 when no answer was read
	Snippet string // printable start of the answer's body
	// WitnessSize is the size a 409 answer reported (HasSize set).
	WitnessSize uint64
	HasSize     bool
	Err         error // transport error or reason
}

func (e *WitnessError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "witness %s (%s)", e.Witness, e.URL)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.HasSize {
		fmt.Fprintf(&b, " (its size %d)", e.WitnessSize)
	}
	if e.Snippet != "" {
		fmt.Fprintf(&b, ": %q", e.Snippet)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *WitnessError) Unwrap() error { return e.Err }

// Result is one witness's answer to AddCheckpointAll.
type Result struct {
	Witness string
	// Lines are the witness's verified cosignature lines (newline
	// terminated), ready for MergeCosignatures; nil on error.
	Lines []byte
	Err   error
}

// AddCheckpoint asks w to cosign cp, a checkpoint note with the log's
// signature. oldSize is the size w is believed to have cosigned last (0 on
// first contact); proof supplies consistency proofs (it may be nil when
// oldSize is 0 and a conflict need not be resolved). On 409 with a
// text/x.tlog.size body, it retries once from the witness's size with a
// fresh proof. Any other non-200 answer is a *WitnessError with the status
// and a bounded body snippet. The returned lines are those of the answer
// that verify as w's cosignature of cp; an answer with none is an error.
func (c *Client) AddCheckpoint(ctx context.Context, w *Witness, cp []byte, oldSize uint64, proof ProofFunc) ([]byte, error) {
	werr := func(err error) *WitnessError { return &WitnessError{Witness: w.Name, URL: w.URL, Err: err} }
	if w.URL == "" {
		return nil, werr(errors.New("no URL in the policy"))
	}
	text, _, err := splitNote(cp)
	if err != nil {
		return nil, werr(err)
	}
	body, err := parseBody([]byte(text))
	if err != nil {
		return nil, werr(err)
	}
	if oldSize > body.Size {
		return nil, werr(fmt.Errorf("old size %d is beyond the checkpoint's %d", oldSize, body.Size))
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		var hashes [][32]byte
		if oldSize > 0 && oldSize < body.Size {
			if proof == nil {
				return nil, werr(fmt.Errorf("a consistency proof from size %d is needed but no proof source was given", oldSize))
			}
			if hashes, err = proof(ctx, oldSize); err != nil {
				return nil, werr(fmt.Errorf("consistency proof %d→%d: %w", oldSize, body.Size, err))
			}
			if len(hashes) > MaxProofHashes {
				return nil, werr(fmt.Errorf("consistency proof of %d hashes (at most %d)", len(hashes), MaxProofHashes))
			}
		}
		lines, err := c.post(ctx, w, addCheckpointBody(oldSize, hashes, cp))
		var we *WitnessError
		if errors.As(err, &we) && we.HasSize && attempt == 0 && we.WitnessSize != oldSize && we.WitnessSize <= body.Size {
			oldSize = we.WitnessSize
			continue
		}
		if err != nil {
			return nil, err
		}
		return verifiedLines(w, body.Text, lines)
	}
}

// AddCheckpointAll asks every witness with a URL at once (at most
// Concurrency in flight), oldSize and proof as for AddCheckpoint. Results
// are in the order of ws; it never fails as a whole.
func (c *Client) AddCheckpointAll(ctx context.Context, ws []Witness, cp []byte, oldSize func(w *Witness) uint64, proof ProofFunc) []Result {
	res := make([]Result, len(ws))
	g, ctx := errgroup.WithContext(ctx)
	n := c.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	g.SetLimit(n)
	for i := range ws {
		w := &ws[i]
		res[i].Witness = w.Name
		g.Go(func() error {
			var old uint64
			if oldSize != nil {
				old = oldSize(w)
			}
			res[i].Lines, res[i].Err = c.AddCheckpoint(ctx, w, cp, old, proof)
			return nil
		})
	}
	_ = g.Wait()
	return res
}

// defaultHTTP is the client of a zero Client: direct (the proxy
// environment is ignored, as internal/httpclient does unless told).
var defaultHTTP = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	return &http.Client{Timeout: DefaultTimeout, Transport: t}
}()

func addCheckpointBody(oldSize uint64, hashes [][32]byte, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", oldSize)
	for _, h := range hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

func (c *Client) post(ctx context.Context, w *Witness, body []byte) ([]byte, error) {
	werr := &WitnessError{Witness: w.Name, URL: w.URL}
	u := strings.TrimSuffix(w.URL, "/") + "/add-checkpoint"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		werr.Err = err
		return nil, werr
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		werr.Err = err
		return nil, werr
	}
	defer resp.Body.Close()
	b, err := httpclient.ReadAll(resp, MaxResponseSize)
	werr.Status = resp.StatusCode
	var tl *httpclient.TooLargeError
	if errors.As(err, &tl) {
		werr.Err = fmt.Errorf("answer larger than %d bytes", MaxResponseSize)
		return nil, werr
	}
	if err != nil {
		werr.Err = fmt.Errorf("reading the answer: %w", err)
		return nil, werr
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusConflict:
		if strings.HasPrefix(resp.Header.Get("Content-Type"), ContentTypeTlogSize) {
			s, ok := strings.CutSuffix(string(b), "\n")
			if n, err := strconv.ParseUint(s, 10, 64); ok && err == nil && strconv.FormatUint(n, 10) == s {
				werr.WitnessSize, werr.HasSize = n, true
				werr.Err = errors.New("the witness has cosigned another size")
				return nil, werr
			}
		}
	}
	werr.Snippet = snippet(b)
	return nil, werr
}

// verifiedLines keeps the lines of an add-checkpoint answer that verify as
// w's cosignature of text.
func verifiedLines(w *Witness, text []byte, answer []byte) ([]byte, error) {
	werr := func(format string, a ...any) error {
		return &WitnessError{Witness: w.Name, URL: w.URL, Status: http.StatusOK, Err: fmt.Errorf(format, a...)}
	}
	lines, err := parseSigLines(string(answer))
	if err != nil {
		return nil, werr("malformed answer: %v", err)
	}
	var out bytes.Buffer
	p := Policy{Witnesses: []Witness{*w}}
	for _, l := range lines {
		cands, _ := p.noteCandidates(text, []note.Signature{{Name: l.name, Hash: l.keyID, Base64: l.b64}})
		if len(cands) == 1 && cands[0].valid {
			out.WriteString(l.text + "\n")
		}
	}
	if out.Len() == 0 {
		return nil, werr("none of the %d signature line(s) in the answer is a valid cosignature by the policy's key", len(lines))
	}
	return out.Bytes(), nil
}

// snippet is a printable, bounded summary of an error body.
func snippet(b []byte) string {
	var s strings.Builder
	n := 0
	space := false
	for len(b) > 0 && n < MaxSnippet {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == utf8.RuneError:
		case unicode.IsSpace(r):
			space = s.Len() > 0
		case unicode.IsPrint(r):
			if space {
				s.WriteByte(' ')
				n++
				space = false
			}
			s.WriteRune(r)
			n++
		}
	}
	if len(b) > 0 {
		s.WriteString("…")
	}
	return s.String()
}
