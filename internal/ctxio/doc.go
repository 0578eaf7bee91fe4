// Package ctxio is the io.Reader and io.Writer that stop once a context is
// done, so that a long copy (a layer pulled or unpacked, an archive, an
// export) ends soon after a cancel rather than at EOF; both count the bytes
// they pass. It is a leaf.
package ctxio
