// Package imagediff compares two container images as `diffoci diff
// --semantic` does: manifest and config fields, history, layers by
// diffID, and in each differing layer every file (added, removed, type,
// mode, owner, size, content digest, link target, xattrs), ignoring
// timestamps unless asked. It reads images through go-containerregistry's
// v1.Image and is a leaf: how the images are found is the caller's.
package imagediff
