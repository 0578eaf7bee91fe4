// Package user resolves Dockerfile USER and --chown values to numeric ids by
// reading /etc/passwd and /etc/group inside an image's root filesystem.
//
// Resolution follows BuildKit (and runc's GetExecUser) so that the same
// Dockerfile yields the same owners as with docker build. Files are opened
// through github.com/cyphar/filepath-securejoin so that symlinks in the image
// can never make us read the host's files.
package user
