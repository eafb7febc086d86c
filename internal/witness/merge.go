package witness

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// maxSignatures is x/mod note.Open's limit on signature lines.
const maxSignatures = 100

// sigLine is one "— <name> <base64>" line of a signed note.
type sigLine struct {
	text  string // the whole line, without newline
	name  string
	b64   string
	keyID uint32
	time  uint64 // cosignature/v1 timestamp, when the signature has that shape
	cosig bool
}

func parseSigLine(line string) (sigLine, error) {
	rest, ok := strings.CutPrefix(line, "— ")
	if !ok {
		return sigLine{}, fmt.Errorf("signature line %q does not start with \"— \"", clip(line))
	}
	name, b64, ok := strings.Cut(rest, " ")
	if !ok || !validKeyName(name) {
		return sigLine{}, fmt.Errorf("signature line %q: bad key name", clip(line))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) < 5 {
		return sigLine{}, fmt.Errorf("signature line %q: bad signature", clip(line))
	}
	s := sigLine{text: line, name: name, b64: b64, keyID: binary.BigEndian.Uint32(raw)}
	if len(raw) == 4+8+64 {
		s.cosig, s.time = true, binary.BigEndian.Uint64(raw[4:])
	}
	return s, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// splitNote returns a note's text (ending in a newline) and its signature
// lines, checked for shape only.
func splitNote(n []byte) (string, []sigLine, error) {
	if len(n) > MaxCheckpointSize {
		return "", nil, &CheckpointError{Reason: fmt.Sprintf("larger than %d bytes", MaxCheckpointSize)}
	}
	i := bytes.LastIndex(n, []byte("\n\n"))
	if i < 0 || len(n) == i+2 || n[len(n)-1] != '\n' {
		return "", nil, &CheckpointError{Reason: "not a signed note (no signature block)"}
	}
	lines, err := parseSigLines(string(n[i+2:]))
	if err != nil {
		return "", nil, &CheckpointError{Origin: firstLine(n), Reason: err.Error()}
	}
	return string(n[:i+1]), lines, nil
}

func parseSigLines(s string) ([]sigLine, error) {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil, nil
	}
	var out []sigLine
	for _, l := range strings.Split(s, "\n") {
		if len(out) >= maxSignatures {
			return nil, fmt.Errorf("more than %d signature lines", maxSignatures)
		}
		sl, err := parseSigLine(l)
		if err != nil {
			return nil, err
		}
		out = append(out, sl)
	}
	return out, nil
}

// MergeCosignatures adds signature lines (such as a witness's add-checkpoint
// answer) to a checkpoint note, for storing in a bundle. The note's first
// signature line (the log's) stays first; the others, old and new, are
// deduplicated by key name and key ID, keeping the newest cosignature/v1
// timestamp (then the smallest line), and sorted by name and key ID, so the
// result does not depend on the order cosignatures arrived in. It checks
// shapes only: verify the result with VerifyCheckpoint.
func MergeCosignatures(cp []byte, lines ...[]byte) ([]byte, error) {
	text, sigs, err := splitNote(cp)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, &CheckpointError{Origin: firstLine(cp), Reason: "no signature line"}
	}
	for _, l := range lines {
		more, err := parseSigLines(string(l))
		if err != nil {
			return nil, fmt.Errorf("cosignature: %w", err)
		}
		sigs = append(sigs, more...)
	}
	first := sigs[0]
	type id struct {
		name  string
		keyID uint32
	}
	best := map[id]sigLine{}
	for _, s := range sigs[1:] {
		k := id{s.name, s.keyID}
		if k == (id{first.name, first.keyID}) {
			continue
		}
		old, ok := best[k]
		if !ok || s.time > old.time || (s.time == old.time && s.text < old.text) {
			best[k] = s
		}
	}
	rest := make([]sigLine, 0, len(best))
	for _, s := range best {
		rest = append(rest, s)
	}
	slices.SortFunc(rest, func(a, b sigLine) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.keyID, b.keyID))
	})
	if 1+len(rest) > maxSignatures {
		return nil, &CheckpointError{Origin: firstLine(cp), Reason: fmt.Sprintf("more than %d signature lines after merging", maxSignatures)}
	}
	var b strings.Builder
	b.WriteString(text)
	b.WriteString("\n")
	b.WriteString(first.text + "\n")
	for _, s := range rest {
		b.WriteString(s.text + "\n")
	}
	if b.Len() > MaxCheckpointSize {
		return nil, &CheckpointError{Origin: firstLine(cp), Reason: fmt.Sprintf("larger than %d bytes after merging", MaxCheckpointSize)}
	}
	return []byte(b.String()), nil
}
