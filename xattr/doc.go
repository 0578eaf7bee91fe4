// Package xattr lists and reads extended attributes (the one copy of that
// code: layer tars, COPY and content keys all use it), of a path without
// following a final symlink or of an open file, retrying when an attribute
// grows between the size query and the read. Where a filesystem has no
// xattrs, the lists are empty rather than an error.
package xattr
