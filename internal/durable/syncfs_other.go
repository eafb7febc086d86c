//go:build !linux

package durable

import "os"

// syncFiles makes the data of the files durable, one fsync each.
func syncFiles(dir string, paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
