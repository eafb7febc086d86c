package rebuilder

import (
	"context"
	"errors"
	"io/fs"
	"net/http"

	"github.com/bintrans/bintrans/internal/httpclient"
)

// get fetches url with the project's bounded GET: errors are
// *httpclient.StatusError (a 404 wraps fs.ErrNotExist),
// *httpclient.TooLargeError, or transport errors. ctx bounds the whole
// exchange, body included.
func get(ctx context.Context, hc *http.Client, url string, max int64) ([]byte, error) {
	return httpclient.Get(ctx, hc, url, max)
}

func isNotFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }
