package fetch

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// BenchmarkCheckDatabase15000: inspecting an extra-sized sync database
// (15 000 desc entries of about 1 KiB, gzip) before passing it through.
func BenchmarkCheckDatabase15000(b *testing.B) {
	var files []string
	for i := range 15000 {
		name := fmt.Sprintf("pkg%05d-1.0-1", i)
		files = append(files, name+"/desc", "%FILENAME%\n"+name+"-x86_64.pkg.tar.zst\n"+strings.Repeat("%DESC%\nsome description text\n", 30))
	}
	db := compressed(b, "gzip", tarOf(b, files...))
	b.SetBytes(int64(len(db)))
	b.ResetTimer()
	for b.Loop() {
		if err := CheckPassThrough(KindDatabase, bytes.NewReader(db)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGunzipOnlyBaseline(b *testing.B) {
	var files []string
	for i := range 15000 {
		name := fmt.Sprintf("pkg%05d-1.0-1", i)
		files = append(files, name+"/desc", "%FILENAME%\n"+name+"-x86_64.pkg.tar.zst\n"+strings.Repeat("%DESC%\nsome description text\n", 30))
	}
	db := compressed(b, "gzip", tarOf(b, files...))
	b.ResetTimer()
	for b.Loop() {
		z, _ := gzip.NewReader(bytes.NewReader(db))
		io.Copy(io.Discard, z)
	}
}
