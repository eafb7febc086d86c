package rekorv1_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/bintrans/bintrans/internal/logs/rekorv1"
	"github.com/bintrans/bintrans/internal/testkit/fakelog"
)

// BenchmarkEntriesByIndex500Fake is the same batch against the in-process
// fake log: the client's own cost (HTTP, JSON, conversion) plus fakelog's
// proofs and two ECDSA signatures per entry, without Trillian and MariaDB.
func BenchmarkEntriesByIndex500Fake(b *testing.B) {
	l := fakelog.New(b)
	for i := range 500 {
		l.Add(fmt.Appendf(nil, `{"apiVersion":"0.0.1","kind":"rekord","spec":{"n":%d}}`, i))
	}
	c, err := rekorv1.New(l.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	idx := make([]int64, 500)
	for i := range idx {
		idx[i] = int64(i)
	}
	ctx := context.Background()
	for b.Loop() {
		got, err := c.EntriesByIndex(ctx, idx)
		if err != nil || len(got) != 500 {
			b.Fatalf("%d entries, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/500, "µs/entry")
}
