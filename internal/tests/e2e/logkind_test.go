package e2e

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/logs/rekorv2"
	"github.com/bintrans/bintrans/internal/testkit/enginetest"
	"github.com/bintrans/bintrans/internal/testkit/testenv"
	"github.com/bintrans/bintrans/verify"
)

// TestRekorV2Hook: the repository logged in the real Rekor v2 stack
// (rekor-tiles; the Writer's bundles), the hook configured with
// log-kind = rekor-v2 in /etc/bintrans.conf, run by the real pacman. A
// swapped bundle aborts the transaction (online); offline, with the log
// unreachable, the genuine packages install; online they install again and
// the hook keeps the log's checkpoint under the Rekor v2 log's key id.
func TestRekorV2Hook(t *testing.T) {
	s2 := testenv.RekorV2(t)
	w := newWorld(t, 3, "pkg00", "pkg01", "pkg02") // .t and bundles below
	key, err := os.ReadFile(s2.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := rekorv2.ParseLogKey(key, s2.Origin)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := rekorv2.NewReader(s2.ReadURL, nil, lv)
	if err != nil {
		t.Fatal(err)
	}
	wr, err := rekorv2.NewWriter(s2.URL, nil, lv, rekorv2.WithReader(rd))
	if err != nil {
		t.Fatal(err)
	}
	var entries []*rekorv2.HashedRekord
	for _, p := range w.pkgs {
		w.sign(t, p, false) // the .t only
		hr, err := rekorv2.Sign(enginetest.Ed25519(w.sk), []byte(p.sha256))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, hr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bundles := map[string][]byte{}
	for i, r := range wr.AddAll(ctx, entries, len(entries)) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		b, err := r.Logged.Bundle().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		bundles[w.pkgs[i].filename] = b
		w.publish(t, w.pkgs[i].filename+verify.BundleSuffix, b)
	}
	w.s.InstallFile(t, "/etc/bintrans/rekor-v2.vkey", []byte(lv.VerifierKey()+"\n"), 0o644)
	w.set(t, "log-kind", "rekor-v2")
	w.set(t, "log-url", s2.URL)
	w.set(t, "log-read-url", s2.ReadURL)
	w.set(t, "log-key", "/etc/bintrans/rekor-v2.vkey")

	// Another package's bundle: refused, nothing installed.
	w.publish(t, w.pkgs[2].filename+verify.BundleSuffix, bundles[w.pkgs[0].filename])
	res, got := w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{w.pkgs[2].filename: verify.StatusBundleInvalid})
	w.publish(t, w.pkgs[2].filename+verify.BundleSuffix, bundles[w.pkgs[2].filename])

	// Offline, the log unreachable: from the bundles alone.
	w.set(t, "offline", "true")
	w.set(t, "log-read-url", "http://127.0.0.1:1")
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)

	// Online: the current checkpoint and consistency from tiles, stored.
	w.set(t, "offline")
	w.set(t, "log-read-url", s2.ReadURL)
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
	id := lv.KeyID()
	if _, err := os.Stat(filepath.Join(w.s.Root, "var/lib/bintrans", "checkpoint-"+hex.EncodeToString(id[:])+".json")); err != nil {
		t.Errorf("the hook kept no checkpoint of the Rekor v2 log: %v", err)
	}
}
