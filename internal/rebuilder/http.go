package rebuilder

import (
	"context"
	"errors"
	"net/http"

	"github.com/bintrans/bintrans/internal/httpclient"
	"github.com/bintrans/bintrans/verify"
)

// get fetches url with the project's bounded GET: errors are
// *httpclient.StatusError (a 404 wraps verify.ErrNotFound),
// *httpclient.TooLargeError, or transport errors. ctx bounds the whole
// exchange, body included.
func get(ctx context.Context, hc *http.Client, url string, max int64) ([]byte, error) {
	return httpclient.Get(ctx, hc, url, max)
}

func isNotFound(err error) bool { return errors.Is(err, verify.ErrNotFound) }
