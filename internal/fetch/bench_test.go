package fetch

import (
	"bytes"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
)

// extraDB is an extra-sized sync database (15 000 packages as repo-add
// writes them, with %PGPSIG%, gzip).
func extraDB(b *testing.B) []byte {
	var db bytes.Buffer
	if err := repodbtest.Generate(&db, 15000, repodbtest.Options{Compression: "gzip"}); err != nil {
		b.Fatal(err)
	}
	return db.Bytes()
}

// BenchmarkCheckDatabase15000: inspecting an extra-sized sync database
// before passing it through (a complete strict read, repodb.Walk).
func BenchmarkCheckDatabase15000(b *testing.B) {
	db := extraDB(b)
	b.SetBytes(int64(len(db)))
	b.ResetTimer()
	for b.Loop() {
		if err := CheckPassThrough(KindDatabase, bytes.NewReader(db)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGunzipOnlyBaseline(b *testing.B) {
	db := extraDB(b)
	b.ResetTimer()
	for b.Loop() {
		z, _ := gzip.NewReader(bytes.NewReader(db))
		io.Copy(io.Discard, z)
	}
}
