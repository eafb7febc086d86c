package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
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

// TestRekorV2ShardsHook: a Rekor v2 log that rotated, through the real
// pacman. pkg00 was logged in the older shard (the shared rekor-tiles
// stack), pkg01 and pkg02 in the current one (a private rekor-tiles of
// another origin and key); /etc/bintrans.conf lists both with log-shard
// lines. While the current shard's window has not begun, its packages are
// refused and nothing is installed; then all three install online (each
// shard's checkpoint kept under its own key id, no SECURITY ERROR for the
// origin change) and offline.
func TestRekorV2ShardsHook(t *testing.T) {
	a := testenv.RekorV2(t)
	bp := testenv.InitRekorV2(t, "shard-b.hook.rekor-v2.test")
	bp.Start(t, "")
	b := bp.RekorV2Stack
	w := newWorld(t, 3, "pkg00", "pkg01", "pkg02")
	var lvs []*rekorv2.LogVerifier
	for i, s := range []testenv.RekorV2Stack{a, b} {
		key, err := os.ReadFile(s.KeyPath)
		if err != nil {
			t.Fatal(err)
		}
		lv, err := rekorv2.ParseLogKey(key, s.Origin)
		if err != nil {
			t.Fatal(err)
		}
		lvs = append(lvs, lv)
		rd, err := rekorv2.NewReader(s.ReadURL, nil, lv)
		if err != nil {
			t.Fatal(err)
		}
		wr, err := rekorv2.NewWriter(s.URL, nil, lv, rekorv2.WithReader(rd))
		if err != nil {
			t.Fatal(err)
		}
		pkgs := w.pkgs[:1]
		if i == 1 {
			pkgs = w.pkgs[1:]
		}
		var entries []*rekorv2.HashedRekord
		for _, p := range pkgs {
			w.sign(t, p, false)
			hr, err := rekorv2.Sign(enginetest.Ed25519(w.sk), []byte(p.sha256))
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, hr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		for j, r := range wr.AddAll(ctx, entries, len(entries)) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			bb, err := r.Logged.Bundle().Marshal()
			if err != nil {
				t.Fatal(err)
			}
			w.publish(t, pkgs[j].filename+verify.BundleSuffix, bb)
		}
		cancel()
		w.s.InstallFile(t, fmt.Sprintf("/etc/bintrans/shard%d.vkey", i), []byte(lv.VerifierKey()+"\n"), 0o644)
	}
	day := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.DateOnly) }
	shard := func(i int, s testenv.RekorV2Stack, from, to string) string {
		return fmt.Sprintf("%s %s %s /etc/bintrans/shard%d.vkey %s %s", s.Origin, s.URL, s.ReadURL, i, from, to)
	}
	w.set(t, "log-kind", "rekor-v2")
	w.set(t, "log-url") // the shards replace the single log's keys
	w.set(t, "log-key")

	// The current shard's window has not begun: its bundles are refused.
	w.set(t, "log-shard", shard(0, a, "2020-01-01", day(48*time.Hour)), shard(1, b, day(48*time.Hour), "-"))
	res, got := w.install(t, w.names()...)
	requireRefused(t, res, got, map[string]verify.Status{w.pkgs[1].filename: verify.StatusBundleInvalid, w.pkgs[2].filename: verify.StatusBundleInvalid})

	// Rotated yesterday: every package installs, online.
	w.set(t, "log-shard", shard(0, a, "2020-01-01", day(-24*time.Hour)), shard(1, b, day(-24*time.Hour), "-"))
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
	for _, lv := range lvs {
		id := lv.KeyID()
		if _, err := os.Stat(filepath.Join(w.s.Root, "var/lib/bintrans", "checkpoint-"+hex.EncodeToString(id[:])+".json")); err != nil {
			t.Errorf("the hook kept no checkpoint of shard %s: %v", lv.Origin(), err)
		}
	}
	// Offline, from the bundles alone.
	w.set(t, "offline", "true")
	res, got = w.install(t, w.names()...)
	requireInstalled(t, w, res, got)
}
