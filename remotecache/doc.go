// Package remotecache shares kiln's build cache between machines through
// an OCI registry or an OCI layout directory. Every cache key is its own
// small image: a config holding the key's record (its layer chain and the
// step that made it) and the layers themselves, tagged by the key under
// the cache reference's repository. Writers only add entries, so builds
// exporting to one reference at the same time never erase each other's;
// an importer lists the tags once, reads the manifests of the keys it
// hits and downloads only the layers the build needs.
package remotecache
