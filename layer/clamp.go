//go:build linux

package layer

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kiln-build/kiln/internal/ctxio"
)

// ClampTimes copies the layer tar r to w with every entry's modification
// time set to at most epoch, as BuildKit's rewrite-timestamp does: a file
// older than epoch keeps its time, a newer one gets epoch. Access and
// change times are dropped and times are cut to whole seconds. Entries
// keep their order and content.
func ClampTimes(ctx context.Context, w io.Writer, r io.Reader, epoch time.Time) error {
	tr := tar.NewReader(ctxio.NewReader(ctx, r))
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("clamping layer times: %w", err)
		}
		if hdr.ModTime.After(epoch) {
			hdr.ModTime = epoch
		}
		// Whole seconds, as moby's and BuildKit's layer tars: no PAX
		// mtime record for a sub-second time.
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		delete(hdr.PAXRecords, "atime")
		delete(hdr.PAXRecords, "ctime")
		delete(hdr.PAXRecords, "mtime")
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("clamping layer times: %s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("clamping layer times: %s: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("clamping layer times: %w", err)
	}
	return nil
}
