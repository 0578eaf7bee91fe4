// Package exporter writes built images out of kiln: as OCI image layouts
// (directories or tars), as docker-archive tars, or as the plain filesystem,
// and parses the --output flag that chooses between them.
package exporter
