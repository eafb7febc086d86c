package testenv

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var portMu sync.Mutex
var nextPort int

// FreePort returns a port free on 127.0.0.1 now: from BINTRANS_TEST_PORTS
// (LO-HI) when set, else one the kernel picks.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi, ok := portRange()
	if !ok {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	portMu.Lock()
	defer portMu.Unlock()
	if nextPort < lo || nextPort > hi {
		r, _ := rand.Int(rand.Reader, big.NewInt(int64(hi-lo+1)))
		nextPort = lo + int(r.Int64())
	}
	for i := 0; i <= hi-lo; i++ {
		p := nextPort
		nextPort++
		if nextPort > hi {
			nextPort = lo
		}
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatalf("no free port in BINTRANS_TEST_PORTS=%d-%d", lo, hi)
	return 0
}

func portRange() (lo, hi int, ok bool) {
	a, b, found := strings.Cut(os.Getenv("BINTRANS_TEST_PORTS"), "-")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}
