package verify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Bounds of a checkpoint note beyond MaxCheckpointSize.
const (
	maxCheckpointExtraLines = 16
	maxCheckpointSignatures = 16
)

// Checkpoint is a signed tree head: a signed note whose body is
// "<origin>\n<size>\n<base64 root>\n" plus optional extension lines.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   []byte // 32 bytes
	// Extra holds the body's extension lines (Rekor writes none today).
	Extra []string
	// Text is the whole signed note, as received: the evidence to show.
	Text []byte

	body []byte // the signed part, through the final newline of the body
	sigs []noteSignature
}

type noteSignature struct {
	name string
	hint [4]byte
	sig  []byte
}

const noteSigPrefix = "\u2014 " // em dash + space

// ParseCheckpoint parses a signed checkpoint note strictly (form only, no
// signature check): at most MaxCheckpointSize bytes; body lines origin
// (non-empty), size (canonical decimal), root (base64 of 32 bytes), at most
// 16 extension lines; a blank line; 1..16 signature lines
// "— <name> <base64(4-byte key hint ‖ signature)>", each ending in "\n".
func ParseCheckpoint(text []byte) (*Checkpoint, error) {
	bad := func(format string, args ...any) (*Checkpoint, error) {
		return nil, &CheckpointError{Reason: "malformed note", Err: fmt.Errorf(format, args...)}
	}
	if len(text) > MaxCheckpointSize {
		return bad("%d bytes, at most %d accepted", len(text), MaxCheckpointSize)
	}
	split := bytes.Index(text, []byte("\n\n"))
	if split < 0 {
		return bad("no blank line before the signatures")
	}
	body, sigs := text[:split+1], text[split+2:]
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(lines) < 3 {
		return bad("%d body lines, want at least origin, size and root", len(lines))
	}
	if len(lines) > 3+maxCheckpointExtraLines {
		return bad("%d body lines, at most %d accepted", len(lines), 3+maxCheckpointExtraLines)
	}
	c := &Checkpoint{Origin: lines[0], Text: text, body: body, Extra: lines[3:]}
	if c.Origin == "" || strings.ContainsAny(c.Origin, "\r") {
		return bad("empty or invalid origin line")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return bad("size line %q is not a canonical decimal", truncate(lines[1], 32))
	}
	c.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return bad("root line is not base64 of 32 bytes")
	}
	c.Root = root
	if len(sigs) == 0 || sigs[len(sigs)-1] != '\n' {
		return bad("signature block missing or not newline-terminated")
	}
	for _, l := range strings.Split(string(sigs[:len(sigs)-1]), "\n") {
		if len(c.sigs) == maxCheckpointSignatures {
			return bad("more than %d signature lines", maxCheckpointSignatures)
		}
		rest, ok := strings.CutPrefix(l, noteSigPrefix)
		if !ok {
			return bad("signature line does not start with %q", noteSigPrefix)
		}
		name, b64, ok := strings.Cut(rest, " ")
		if !ok || name == "" || strings.ContainsAny(b64, " \t\r") {
			return bad("signature line is not \"— <name> <signature>\"")
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(raw) < 5 {
			return bad("signature of %q is not base64 of a key hint and a signature", name)
		}
		var s noteSignature
		s.name = name
		copy(s.hint[:], raw[:4])
		s.sig = raw[4:]
		c.sigs = append(c.sigs, s)
	}
	return c, nil
}

// SignedBy reports whether one of the checkpoint's signature lines carries
// the key hint and verifies under check over the signed body (the note's
// text through the body's final newline). Lines by other keys (witness
// cosignatures) are ignored. Log kinds whose checkpoints are signed notes
// build VerifyCheckpoint on it.
func (c *Checkpoint) SignedBy(hint [4]byte, check func(body, sig []byte) bool) bool {
	for _, s := range c.sigs {
		if s.hint == hint && check(c.body, s.sig) {
			return true
		}
	}
	return false
}

// Body is the signed part of the note: origin, size, root and extension
// lines, each ending in a newline.
func (c *Checkpoint) Body() []byte { return c.body }

// String is the tree head in one line, for messages.
func (c *Checkpoint) String() string {
	return fmt.Sprintf("%s size %d root %x", c.Origin, c.Size, c.Root)
}
