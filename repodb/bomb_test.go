//go:build !race

// Inflating 2 GiB takes seconds natively and minutes under the race
// detector; the limit mechanism itself is covered with small limits in
// TestMalformedArchives, which runs everywhere.

package repodb_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bintrans/bintrans/repodb"
)

// TestDefaultLimitsStopBomb: with DefaultLimits, a 3 GiB gzip bomb of about
// 3 MB stops at MaxTotalSize.
func TestDefaultLimitsStopBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("inflates 2 GiB")
	}
	_, err := repodb.Read(bytes.NewReader(gzipBomb(t, 3<<10)), repodb.DefaultLimits())
	var le *repodb.LimitError
	if !errors.As(err, &le) || le.Limit != "MaxTotalSize" {
		t.Fatalf("Read(bomb) = %v, want MaxTotalSize", err)
	}
}
