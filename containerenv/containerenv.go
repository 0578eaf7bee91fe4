package containerenv

// DefaultPath is the PATH of a step or container whose image sets none,
// docker's and BuildKit's default on Linux.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
