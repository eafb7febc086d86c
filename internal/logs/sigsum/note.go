package sigsum

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"

	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/types"

	"github.com/bintrans/bintrans/internal/witness"
)

// maxNoteCosignatures bounds the cosignature lines of a checkpoint note
// (the log's line and these must fit a client's note limits).
const maxNoteCosignatures = 15

// Signature types of C2SP signed notes.
const (
	noteAlgEd25519     = 0x01
	noteAlgCosignature = 0x04
)

// noteHint is the signed-note key hash of a key named name:
// SHA-256(name ‖ "\n" ‖ alg ‖ key)[:4].
func noteHint(name string, alg byte, key []byte) [4]byte {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{alg})
	h.Write(key)
	return [4]byte(h.Sum(nil)[:4])
}

// noteLine is a signature line "— <name> <base64(hint ‖ sig)>".
func noteLine(name string, hint [4]byte, sig []byte) string {
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(append(hint[:], sig...)) + "\n"
}

// checkpointNote writes a verified tree head as a signed note: Sigsum signs
// tree heads as C2SP checkpoints with origin SigsumOrigin(log key), and
// witnesses cosign the same body (cosignature/v1).
func checkpointNote(p *witness.Policy, logPub ed25519.PublicKey, th *types.CosignedTreeHead, cosigned []witness.Cosigned) []byte {
	origin := witness.SigsumOrigin(logPub)
	var b strings.Builder
	b.WriteString(th.FormatCheckpoint(origin))
	b.WriteString("\n")
	b.WriteString(noteLine(origin, noteHint(origin, noteAlgEd25519, logPub), th.Signature[:]))
	n := 0
	for _, c := range cosigned {
		w := p.Witness(c.Witness)
		if w == nil || n == maxNoteCosignatures {
			continue
		}
		cs, ok := th.Cosignatures[scrypto.Hash(w.KeyHash())]
		name := w.KeyName
		if name == "" {
			name = w.Name
		}
		if !ok || name == "" || strings.ContainsAny(name, " \t\n+") {
			continue
		}
		sig := binary.BigEndian.AppendUint64(nil, cs.Timestamp)
		b.WriteString(noteLine(name, noteHint(name, noteAlgCosignature, w.Key), append(sig, cs.Signature[:]...)))
		n++
	}
	return []byte(b.String())
}
