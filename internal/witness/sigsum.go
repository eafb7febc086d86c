package witness

import (
	"errors"
	"fmt"

	scrypto "sigsum.org/sigsum-go/pkg/crypto"
	"sigsum.org/sigsum-go/pkg/policy"
)

// SigsumPolicy builds the same policy for sigsum-go (pkg/submit,
// pkg/proof, pkg/policy) with its exported builder. Only Ed25519 logs can be
// Sigsum logs; ECDSA (Rekor v1) logs are left out, and a policy without an
// Ed25519 log is an error. sigsum-go checks neither cosignature age nor
// the stricter rules Parse enforces: verify with this package too.
func (p *Policy) SigsumPolicy() (*policy.Policy, error) {
	var settings []policy.Setting
	for i := range p.Logs {
		k := p.Logs[i].Ed25519()
		if k == nil {
			continue
		}
		var pub scrypto.PublicKey
		copy(pub[:], k)
		settings = append(settings, policy.AddLog(&policy.Entity{PublicKey: pub, URL: p.Logs[i].URL}))
	}
	if len(settings) == 0 {
		return nil, errors.New("witness policy: no Ed25519 log, so no Sigsum log")
	}
	for _, w := range p.Witnesses {
		var pub scrypto.PublicKey
		copy(pub[:], w.Key)
		settings = append(settings, policy.AddWitness(w.Name, &policy.Entity{PublicKey: pub, URL: w.URL}))
	}
	for _, g := range p.Groups {
		settings = append(settings, policy.AddGroup(g.Name, g.K, append([]string(nil), g.Members...)))
	}
	settings = append(settings, policy.SetQuorum(p.Quorum))
	sp, err := policy.NewPolicy(settings...)
	if err != nil {
		return nil, fmt.Errorf("witness policy: sigsum-go refuses it: %w", err)
	}
	return sp, nil
}
