package repodb_test

import (
	"bytes"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/bintrans/bintrans/internal/testkit/repodbtest"
	"github.com/bintrans/bintrans/repodb"
)

// BenchmarkReadDB walks a generated 15 000-package database shaped like
// Arch's extra (what repo-add writes, %PGPSIG% included) from memory, and
// reports the cost per package entry.
func BenchmarkReadDB(b *testing.B) {
	const n = 15000
	for _, comp := range []string{"gzip", "zstd"} {
		var db bytes.Buffer
		if err := repodbtest.Generate(&db, n, repodbtest.Options{Compression: comp}); err != nil {
			b.Fatal(err)
		}
		data := db.Bytes()
		b.Run(fmt.Sprintf("%s/%dentries", comp, n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				count := 0
				err := repodb.Walk(bytes.NewReader(data), repodb.DefaultLimits(), func(repodb.Package) error {
					count++
					return nil
				})
				if err != nil || count != n {
					b.Fatalf("Walk: %d packages, %v", count, err)
				}
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			runtime.ReadMemStats(&ms1)
			// CPU time of the process (GC included): meaningful on a
			// shared, overloaded machine where wall time is not.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/entry")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N*n), "allocs/entry")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
