package durable

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFiles makes the data of the files (all in dir) durable: on Linux one
// syncfs(2) of dir's file system instead of an fsync per file (one journal
// commit for a whole batch). Since Linux 5.8 it reports the writeback
// errors of the file system.
func syncFiles(dir string, paths []string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
