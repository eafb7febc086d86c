package durable

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// TooLargeError is a file (or stream) longer than the reader's limit.
// Nothing of it is returned.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: larger than %d bytes", e.Path, e.Limit)
}

// NotRegularError is a file that ReadRegularFile refuses: a directory, a
// FIFO, a device, a socket.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s: not a regular file (%s)", e.Path, e.Mode.Type())
}

// ReadFile reads the whole file at path, at most limit bytes: a longer
// file is a *TooLargeError, never a truncated result. Any file that can be
// read is accepted (a pipe such as /dev/stdin or a process substitution,
// /dev/null); errors opening it are *fs.PathError.
func ReadFile(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, false)
}

// ReadRegularFile is ReadFile for a file that must be a regular file
// (*NotRegularError otherwise). It opens with O_NONBLOCK, so that a FIFO
// planted where a file was expected cannot block the open.
func ReadRegularFile(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, true)
}

func readFile(path string, limit int64, regularOnly bool) ([]byte, error) {
	flags := os.O_RDONLY
	if regularOnly {
		flags |= syscall.O_NONBLOCK
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var size int64
	switch {
	case fi.Mode().IsRegular():
		if fi.Size() > limit {
			return nil, &TooLargeError{Path: path, Limit: limit}
		}
		size = fi.Size()
	case regularOnly:
		return nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return readAll(f, path, limit, size)
}

// ReadAll reads r to its end, at most limit bytes (a *TooLargeError naming
// name beyond). It is the bounded read of a stream that is not a path:
// a file of an fs.FS, a pipe.
func ReadAll(r io.Reader, name string, limit int64) ([]byte, error) {
	return readAll(r, name, limit, 0)
}

// readAll reads at most limit+1 bytes into a buffer sized for sizeHint
// bytes (one read, no growth, when the hint is right: a regular file's
// size from Stat), so that it tells "exactly limit" from "more".
func readAll(r io.Reader, name string, limit, sizeHint int64) ([]byte, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%s: negative read limit %d", name, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(sizeHint, limit)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, &TooLargeError{Path: name, Limit: limit}
	}
	return buf.Bytes(), nil
}
