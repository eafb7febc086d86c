// Package enginetest holds in-memory implementations of the engine's edge
// interfaces for tests: a SignatureSource and a CheckpointStore, and the
// Ed25519 half of a minisign key (what every log kind's entry is signed
// with).
package enginetest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"sync"

	"github.com/jedisct1/go-minisign"

	"github.com/bintrans/bintrans/verify"
)

// Source is an in-memory verify.SignatureSource: `.t` files and bundles by
// package file name.
type Source struct {
	mu      sync.Mutex
	Sigs    map[string][]byte
	Bundles map[string][]byte
	// Err, when set, is every answer.
	Err error
}

// NewSource returns an empty Source.
func NewSource() *Source {
	return &Source{Sigs: map[string][]byte{}, Bundles: map[string][]byte{}}
}

// Signature implements verify.SignatureSource.
func (s *Source) Signature(ctx context.Context, a verify.Artifact) ([]byte, error) {
	return s.get(s.Sigs, a.Filename+verify.SignatureSuffix)
}

// Bundle implements verify.SignatureSource.
func (s *Source) Bundle(ctx context.Context, a verify.Artifact) ([]byte, error) {
	return s.get(s.Bundles, a.Filename+verify.BundleSuffix)
}

// Set publishes a package's `.t` and bundle (nil: none).
func (s *Source) Set(filename string, t, bundle []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := func(m map[string][]byte, b []byte) {
		if b == nil {
			delete(m, filename)
		} else {
			m[filename] = b
		}
	}
	set(s.Sigs, t)
	set(s.Bundles, bundle)
}

func (s *Source) get(m map[string][]byte, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	b, ok := m[strings.TrimSuffix(strings.TrimSuffix(name, verify.BundleSuffix), verify.SignatureSuffix)]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, verify.ErrNotFound)
	}
	return b, nil
}

// Store is an in-memory verify.CheckpointStore that counts its writes.
type Store struct {
	mu     sync.Mutex
	CP     []byte
	Stores int
}

// Load implements verify.CheckpointStore.
func (s *Store) Load(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.CP, nil
}

// Store implements verify.CheckpointStore.
func (s *Store) Store(ctx context.Context, cp []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.CP = append([]byte(nil), cp...)
	s.Stores++
	return nil
}

// Ed25519 is the Ed25519 private key of a minisign secret key (its
// SecretKey is crypto/ed25519's seed ‖ public key layout).
func Ed25519(sk *minisign.PrivateKey) ed25519.PrivateKey {
	return ed25519.PrivateKey(append([]byte(nil), sk.SecretKey[:]...))
}
